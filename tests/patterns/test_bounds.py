"""Hostile filter patterns are answered in bounded time: regexes run on a linear-time engine (RE2),
JSON parentheses nest to a limit, patterns and the part of an event read are bounded.

These tests assert results, never durations: on a backtracking engine the catastrophic cases below
do not fail, they run for minutes (the whole fast lane would stall)."""

from __future__ import annotations

import pytest

from flowwatch.patterns import (MAX_EVENT_LENGTH, MAX_JSON_NESTING, MAX_PATTERN_LENGTH, MAX_REPEAT, PatternError,
                                compile_pattern)
from tests.support.cli import run_cli

# A 96-character version-2 flow-log record, and the same record with the regex's literal in it.
LINE = "2 123456789012 eni-0a1b2c3d4e5f60718 10.0.1.5 203.0.11.9 49152 443 6 10 840 1790000000 ACCEPT OK"
assert len(LINE) == 96
HIT = LINE[:-9] + "REJECTX OK"

CATASTROPHIC = "%.*.*.*.*.*.*.*.*REJECTX%"


def test_the_catastrophic_regex_answers_with_the_right_result():
    pattern = compile_pattern(CATASTROPHIC)
    assert pattern.matches(LINE) is False
    assert pattern.matches(HIT) is True
    assert pattern.matches("REJECTX") is True
    assert pattern.matches("REJECT" + "X" * 0) is False


@pytest.mark.parametrize("text, matching, other", [
    ("%a*a*a*a*a*a*a*a*a*a*a*b%", "a" * 3000 + "b", "a" * 3000),
    ("%\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\w*\\s$%", "x" * 3000 + " ", "x" * 3000 + " y"),
    ("%[a-z]+[a-z]+[a-z]+[a-z]+[a-z]+[a-z]+[0-9]%", "q" * 3000 + "7", "q" * 3000),
    ("%x|.*.*.*.*.*.*.*.*.*.*y$%", "z" * 3000 + "y", "z" * 3000 + "yz"),
])
def test_nested_quantifiers_answer_on_long_lines(text, matching, other):
    pattern = compile_pattern(text)
    assert pattern.matches(matching) is True
    assert pattern.matches(other) is False


def test_the_catastrophic_regex_as_a_field_value_and_a_json_value():
    delimited = compile_pattern(f"[..., action={CATASTROPHIC}, status]")
    assert delimited.matches(LINE) is False
    assert delimited.extract(HIT) == {"action": "REJECTX", "status": "OK"}
    json_pattern = compile_pattern(f"{{ $.message = {CATASTROPHIC} }}")
    assert json_pattern.matches('{"message": "%s"}' % LINE) is False
    assert json_pattern.matches('{"message": "%s"}' % HIT) is True
    negated = compile_pattern(f"{{ $.message != {CATASTROPHIC} }}")
    assert negated.matches('{"message": "%s"}' % LINE) is True


def test_pattern_test_cli_answers_the_catastrophic_regex(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "pattern", "test", CATASTROPHIC, stdin=f"{LINE}\n{HIT}\n")
    assert result.code == 0
    assert result.out.splitlines() == [HIT]


def test_whitespace_classes_keep_their_meaning():
    """RE2's \\s lacks \\v; the translation keeps CloudWatch's (and Java's) whitespace set."""
    assert compile_pattern("%a\\sb%").matches("a\x0bb") is True
    assert compile_pattern("%a\\Sb%").matches("a\x0bb") is False
    assert compile_pattern("%a[\\s]b%").matches("a\tb") is True
    assert compile_pattern("%a\\Sb%").matches("a-b") is True
    assert compile_pattern("%^a.b$%").matches("a\nb") is True       # '.' matches a newline, '$' is the end
    assert compile_pattern("%^b%").matches("a\nb") is False         # '^' is the start of the event only


def test_a_json_string_with_a_lone_surrogate_is_searched():
    pattern = compile_pattern("{ $.a = %x$% }")
    assert pattern.matches('{"a": "\\ud800x"}') is True
    assert pattern.matches('{"a": "x\\ud800"}') is False


def _nested(depth: int) -> str:
    return "{ " + "(" * depth + "$.a = 1" + ")" * depth + " }"


def test_json_nesting_at_the_limit_is_evaluated():
    pattern = compile_pattern(_nested(MAX_JSON_NESTING))
    assert pattern.matches('{"a": 1}') is True
    assert pattern.matches('{"a": 2}') is False
    chained = compile_pattern("{ " + "($.a = 1 && " * MAX_JSON_NESTING + "$.b = 2" + ")" * MAX_JSON_NESTING + " }")
    assert chained.matches('{"a": 1, "b": 2}') is True
    assert chained.matches('{"a": 1, "b": 3}') is False


def test_json_nesting_past_the_limit_is_a_pattern_error():
    with pytest.raises(PatternError, match=f"at most {MAX_JSON_NESTING} levels") as caught:
        compile_pattern(_nested(MAX_JSON_NESTING + 1))
    assert caught.value.column == 3 + MAX_JSON_NESTING


def test_deep_json_nesting_is_exit_2_in_one_line(capsys, monkeypatch):
    text = _nested(480)
    assert len(text) <= MAX_PATTERN_LENGTH
    result = run_cli(capsys, monkeypatch, "pattern", "test", text, stdin='{"a": 1}\n')
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: invalid filter pattern: column {3 + MAX_JSON_NESTING}: parentheses nest more than "
        f"{MAX_JSON_NESTING} deep; a JSON filter pattern allows at most {MAX_JSON_NESTING} levels"]


def test_a_pattern_too_long_is_exit_2(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "pattern", "test", "%" + "a" * MAX_PATTERN_LENGTH + "%", stdin="a\n")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: invalid filter pattern: column {MAX_PATTERN_LENGTH + 1}: a filter pattern is at most "
        f"{MAX_PATTERN_LENGTH} characters, this one has {MAX_PATTERN_LENGTH + 2}"]


def test_a_repeat_count_past_the_bound_is_exit_2(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "pattern", "test", f"%a{{2,{MAX_REPEAT + 1}}}%", stdin="aa\n")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: invalid filter pattern: column 3: {{2,{MAX_REPEAT + 1}}}: a repeat count is at most {MAX_REPEAT}"]


@pytest.mark.parametrize("text", ["%" + "[a-z]{1000}" * 90 + "%", "%a[ab]{1000}c%", "%.{200}%", "%a[ab]{200}c%",
                                  "%[a-z]{100}[0-9]{100}%"])
def test_a_regex_too_large_for_the_engine_is_a_pattern_error(text):
    """Within 1024 characters, repeat counts multiply into programs whose search costs their size per
    character (or more states than RE2's memory budget): refused at compile time."""
    with pytest.raises(PatternError, match="invalid regex"):
        compile_pattern(text)


def test_a_regex_at_the_size_bound_still_compiles():
    assert compile_pattern("%a[ab]{150}c%").matches("a" + "b" * 150 + "c") is True
    assert compile_pattern("%[0-9a-f]{64}%").matches("sha256 " + "0f" * 32) is True
    assert compile_pattern("%[0-9a-f]{64}%").matches("sha256 " + "0f" * 31) is False
    assert compile_pattern("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%").matches("dst 10.0.1.5 ok") is True


def test_a_regex_reads_at_most_the_largest_event():
    """PutLogEvents takes events up to 1 MB: what lies past that is never searched."""
    pattern = compile_pattern("%REJECT%")
    assert pattern.matches("a" * (MAX_EVENT_LENGTH - 6) + "REJECT") is True
    assert pattern.matches("a" * MAX_EVENT_LENGTH + "REJECT") is False
    anchored = compile_pattern("%a$%")
    assert anchored.matches("a" * MAX_EVENT_LENGTH) is True


def test_a_json_event_past_the_largest_event_does_not_match():
    pattern = compile_pattern("{ $.a = 1 }")
    padding = " " * MAX_EVENT_LENGTH
    assert pattern.matches('{"a": 1}' + padding[:100]) is True
    assert pattern.matches('{"a": 1, "b": "' + "x" * MAX_EVENT_LENGTH + '"}') is False
