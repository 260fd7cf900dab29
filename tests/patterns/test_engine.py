"""Unit tests for flowwatch.patterns beyond the shared conformance vectors.

Errors and their positions, the regex subset, event splitting (tabs, quotes, brackets), VPC
NODATA records, JSON details, metric transformations, and agreement between the specialised
``matches`` and the general ``extract`` paths.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from flowwatch.patterns import (
    MAX_PATTERN_LENGTH,
    STANDARD_UNITS,
    Pattern,
    PatternError,
    compile_pattern,
)

LAB = (
    "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol=1, "
    "packets, bytes, start, end, action=REJECT, log_status]"
)
ICMP_REJECT = "2 123456789010 eni-0a1b2c3d4e5f60718 10.0.0.5 8.8.8.8 0 0 1 4 336 1700000000 1700000060 REJECT OK"
TCP_REJECT = "2 123456789010 eni-0a1b2c3d4e5f60718 10.0.0.5 8.8.8.8 40000 22 6 4 336 1700000000 1700000060 REJECT OK"
ICMP_ACCEPT = "2 123456789010 eni-0a1b2c3d4e5f60718 10.0.0.5 8.8.8.8 0 0 1 4 336 1700000000 1700000060 ACCEPT OK"
NODATA = "2 123456789010 eni-0a1b2c3d4e5f60718 - - - - - - - 1700000000 1700000060 - NODATA"
SKIPDATA = "2 123456789010 eni-0a1b2c3d4e5f60718 - - - - - - - 1700000000 1700000060 - SKIPDATA"
V2_FIELDS = (
    "[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, "
    "windowstart, windowend, action, flowlogstatus]"
)


def error_of(text: str) -> PatternError:
    with pytest.raises(PatternError) as info:
        compile_pattern(text)
    return info.value


# --------------------------------------------------------------------------------------------
# Kinds, API surface, limits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", "all"),
        ("   ", "all"),
        ('""', "all"),
        ('" "', "all"),
        ("ERROR", "terms"),
        ('  "ERROR" - "Exiting"  ', "terms"),
        ("%ERR%", "regex"),
        ("[a, b]", "delimited"),
        ("{ $.a = 1 }", "json"),
    ],
)
def test_kind(text: str, kind: str) -> None:
    pattern = compile_pattern(text)
    assert pattern.kind == kind
    assert pattern.text == text


@pytest.mark.parametrize("text", ["", '""', '" "', "  "])
def test_match_all_patterns_match_every_event(text: str) -> None:
    pattern = compile_pattern(text)
    for message in ("", "x", "ERROR", '{"a": 1}'):
        assert pattern.matches(message) is True
        assert pattern.extract(message) == {}


def test_pattern_error_is_a_value_error_with_a_column() -> None:
    err = error_of("[a b]")
    assert isinstance(err, ValueError)
    assert err.column == 4
    assert str(err) == "column 4: expected ',' or ']', found 'b'"
    assert err.reason == "expected ',' or ']', found 'b'"


def test_length_limit() -> None:
    longest = "[a=" + "x" * (MAX_PATTERN_LENGTH - 4) + "]"
    assert len(longest) == 1024
    assert compile_pattern(longest).matches("x" * 1020)
    err = error_of(longest[:-1] + "x]")
    assert err.column == 1025
    assert "at most 1024 characters" in str(err)


def test_compile_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        compile_pattern(None)  # type: ignore[arg-type]


def test_compile_is_cached_and_patterns_are_reusable() -> None:
    first = compile_pattern(LAB)
    assert compile_pattern(LAB) is first
    assert isinstance(first, Pattern)
    assert "delimited" in repr(first)


# --------------------------------------------------------------------------------------------
# Errors and where they are
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("[a, b", 5, "starts with '[' it must end with ']'"),
        ("{ $.a = 1", 9, "starts with '{' it must end with '}'"),
        ("[a, ..., b, ...]", 13, "only one '...'"),
        ("[a, a]", 5, "used twice"),
        ("[status = 4* && bytes > 1000]", 17, "same field"),
        ("[a=x], b]", 5, "unexpected ']'"),
        ("[a > foo]", 6, "not a number"),
        ('[a > "5"]', 6, "not a quoted string"),
        ("[a > %5%]", 6, "not a regex"),
        ("[a ! 5]", 4, "'!='"),
        ("[a = ]", 6, "expected a value"),
        ("[a = x&y]", 7, "'&&' or '||'"),
        ("[a && a=1]", 4, "expected an operator"),
        ("[a = (x)]", 6, "double quotes"),
        ("[a=%x%, b=%y%, c=%z%]", 18, "at most 2 regexes"),
        ('[a = "x]', 6, "unterminated quoted string"),
        ("[a = %x]", 6, "unterminated regex"),
        ("{ }", 3, "expected a condition"),
        ("{ $a = 1 }", 3, "'$.'"),
        ("{ $. = 1 }", 5, "property name"),
        ("{ $.a[x] = 1 }", 7, "expected an index"),
        ("{ $.a[0 = 1 }", 8, "expected ']'"),
        ("{ $.a == 1 }", 8, "double quotes"),
        ("{ $.a = 1 & $.b = 2 }", 11, "'&&' or '||'"),
        ("{ ($.a = 1 }", 12, "expected ')'"),
        ("{ $.a = 1 $.b = 2 }", 11, "expected '&&', '||' or '}'"),
        ("{ $.a IS NOT NULL }", 7, "IS NOT is not supported"),
        ("{ $.a EXISTS }", 7, "EXISTS is not supported"),
        ("{ $.a IS EMPTY }", 10, "NULL, TRUE or FALSE"),
        ("{ $.a is null }", 7, "found 'is'"),
        ("{ $.a > abc }", 9, "not a number"),
        ("{ $.a = foo:bar }", 12, "double quotes"),
        ("{ $.*[*] = 1 }", 3, "at most one wildcard"),
        ("{ $.a[*] = 1 && $.b[*] = 1 && $.c[*] = 1 && $.d[*] = 1 }", 45, "at most 3 selector wildcards"),
        ("{ $.a = %x% || $.b = %y% || $.c = %z% }", 35, "at most 2 regexes"),
        ('"ERROR', 1, "unterminated quoted string"),
        ('"ERROR"x', 8, "whitespace after a quoted term"),
        ('ab"c"', 3, "quote must enclose the whole term"),
        ("ERROR -", 7, "expected a term after '-'"),
        ("ERROR ? ", 7, "expected a term after '?'"),
        ("ERROR - -x", 7, "expected a term after '-'"),
        ("ERROR %x%", 7, "must be the whole filter pattern"),
        ("%abc", 1, "unterminated regex"),
        ("%abc% def", 6, "nothing may follow"),
    ],
)
def test_invalid_patterns_say_where(text: str, column: int, fragment: str) -> None:
    err = error_of(text)
    assert err.column == column, str(err)
    assert fragment in err.reason
    assert str(err).startswith(f"column {column}: ")


# --------------------------------------------------------------------------------------------
# Regular expressions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regex", "column", "fragment"),
    [
        ("%something!%", 11, "'!' is not allowed"),
        ("%(ERROR|WARN)%", 2, "no groups"),
        ("%a)%", 3, "no groups"),
        ("%日本%", 2, "multi-byte"),
        ("%é%", 2, "multi-byte"),
        ("%a\tb%", 3, "not allowed"),
        ("%a'b%", 3, "not allowed"),
        ("%%", 2, "empty regex"),
        ("%*a%", 2, "nothing to repeat"),
        ("%^*a%", 3, "nothing to repeat"),
        ("%a**%", 4, "another quantifier"),
        ("%a+?%", 4, "another quantifier"),
        ("%a{2}{3}%", 6, "another quantifier"),
        ("%a{,}%", 3, "{m,n}"),
        ("%a{}%", 3, "{m,n}"),
        ("%a{x}%", 3, "{m,n}"),
        ("%a{2%", 3, "{m,n}"),
        ("%a{3,2}%", 3, "minimum is larger"),
        ("%a}%", 3, "unbalanced '}'"),
        ("%a]%", 3, "unbalanced ']'"),
        ("%[abc%", 2, "unterminated character class"),
        ("%[z-a]%", 4, "bad range"),
        ("%[\\d-z]%", 5, "class escape cannot start a range"),
        ("%|a%", 2, "empty alternative"),
        ("%a|%", 3, "empty alternative"),
        ("%a||b%", 4, "empty alternative"),
        ("%\\b%", 2, "unsupported escape"),
        ("%\\n%", 2, "unsupported escape"),
        ("%\\1%", 2, "unsupported escape"),
        ("%\\x4%", 2, "two hex digits"),
        ("%\\xZZ%", 2, "two hex digits"),
        ("%\\x80%", 2, "not an ASCII character"),
        ("%a\\%", 3, "end with '\\'"),
    ],
)
def test_regex_outside_the_documented_subset_is_rejected(regex: str, column: int, fragment: str) -> None:
    err = error_of(regex)
    assert err.column == column, str(err)
    assert fragment in err.reason


@pytest.mark.parametrize(
    ("regex", "matching", "not_matching"),
    [
        ("%\\x3A%", ["key:value"], ["key=value"]),
        ("%\\x28%", ["f(x)"], ["fx"]),
        ("%[\\x41-\\x43]x%", ["Bx"], ["Dx"]),
        ("%a{,2}b$%", ["b", "ab", "xaab"], ["ba"]),
        ("%^a{2,}$%", ["aa", "aaaa"], ["a", "aab"]),
        ("%^a{2}$%", ["aa"], ["a", "aaa"]),
        ("%^[^c]at$%", ["bat", "#at"], ["cat"]),
        ("%^[]x]$%", ["]", "x"], ["y"]),
        ("%[a-]%", ["-"], ["b"]),
        ("%^\\d+$%", ["0123"], ["12a", "١٢٣"]),  # \d is ASCII only
        ("%^\\w+$%", ["a_1"], ["é"]),
        ("%\\S\\s\\S%", ["a b", "a\tb"], ["ab"]),
        ("%^a.b$%", ["a b", "a\nb"], ["ab"]),  # . matches any character, newline included
        ("%ab$%", ["xab"], ["ab\n"]),  # $ is the very end of the text
        ("%^#=@/;,-:_ %", ["#=@/;,-:_ x"], ["x"]),
        ("%10\\.0\\.0\\.1$%", ["10.0.0.1"], ["10a0b0c1"]),
        ("%^ERROR|^WARN%", ["WARN x"], ["x WARN"]),
        ("%\\*\\+\\?\\.\\[\\]\\{\\}\\|\\\\\\^\\$%", ["*+?.[]{}|\\^$"], ["x"]),
    ],
)
def test_regex_semantics(regex: str, matching: list[str], not_matching: list[str]) -> None:
    pattern = compile_pattern(regex)
    for message in matching:
        assert pattern.matches(message), message
    for message in not_matching:
        assert not pattern.matches(message), message


def test_regex_in_a_field_is_an_unanchored_search_of_that_field() -> None:
    pattern = compile_pattern("[level=%WARN%, msg]")
    assert pattern.matches("XWARNINGX disk")
    assert not pattern.matches("INFO WARN")  # WARN is in the second field, not the first
    anchored = compile_pattern("[level=%^WARN$%, msg]")
    assert anchored.matches("WARN disk")
    assert not anchored.matches("WARNING disk")
    negated = compile_pattern("[level!=%^WARN%, msg]")
    assert negated.matches("INFO x")
    assert not negated.matches("WARNING x")


# --------------------------------------------------------------------------------------------
# Term patterns
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "expected"),
    [
        ("ERROR", "xxERRORyy", True),
        ("ERROR", "error", False),
        ("ERROR   ARGUMENTS", "ARGUMENTS then ERROR", True),
        ("ERROR\tARGUMENTS", "ARGUMENTS then ERROR", True),
        ('"ERROR ARGUMENTS"', "ERROR  ARGUMENTS", False),
        ("-ERROR -WARN", "INFO ok", True),
        ("-ERROR -WARN", "WARN ok", False),
        ('ERROR - "Exiting"', "ERROR Exiting", False),
        ('ERROR -"level=DEBUG"', "ERROR level=DEBUG", False),
        ('ERROR -"level=DEBUG"', "ERROR level=INFO", True),
        ("?ERROR ?WARN", "WARN", True),
        ("?ERROR ?WARN", "INFO", False),
        ("?ERROR ?WARN REQUEST", "REQUEST only", True),  # ? terms ignored beside include terms
        ("?ERROR ?WARN -DEBUG", "INFO", True),  # ... and beside exclude terms
        ('? "clean up"', "will clean up", True),
        ("ORDER-ITEM-1", "got ORDER-ITEM-12", False),  # read as ORDER -ITEM -1
        ("ORDER-ITEM-1", "ORDER ok", True),
        ('"ORDER-ITEM-1"', "got ORDER-ITEM-12", True),  # quoted, the hyphens are literal
        ("a=b", "x a=b", True),  # '=' is allowed in an unquoted term
        ("-1", "code -1", False),
        ('""', "", True),
        ('"" -x', "x", False),
        ('-""', "anything", False),  # the empty term occurs in every event
        ('-" "', "no-spaces", True),  # a whitespace exclusion is literal
        ('-" "', "has spaces", False),
        ('?" " ?x', "abc", True),
        ("é", "café", True),
    ],
)
def test_terms(text: str, message: str, expected: bool) -> None:
    pattern = compile_pattern(text)
    assert pattern.matches(message) is expected
    assert pattern.extract(message) == ({} if expected else None)


def test_quoted_term_escapes() -> None:
    pattern = compile_pattern(r'"say \"hi\"" "C:\temp" "a\\b"')
    assert pattern.matches(r'say "hi" from C:\temp and a\b')
    assert not pattern.matches(r"say hi from C:\temp and a\b")


# --------------------------------------------------------------------------------------------
# Space-delimited: splitting events
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("x y z", {"a": "x", "b": "y", "c": "z"}),
        ("x\ty\tz", {"a": "x", "b": "y", "c": "z"}),
        ("  x  \t y   z \n", {"a": "x", "b": "y", "c": "z"}),
        ('x "y 1" z', {"a": "x", "b": "y 1", "c": "z"}),
        ("x [y 1] z", {"a": "x", "b": "y 1", "c": "z"}),
        ('x "y [1" z', {"a": "x", "b": "y [1", "c": "z"}),  # brackets inside quotes
        ('x [y "1] z', {"a": "x", "b": 'y "1', "c": "z"}),  # quotes inside brackets
        ('x "" z', {"a": "x", "b": "", "c": "z"}),  # an empty quoted field is a field
        ("x [] z", {"a": "x", "b": "", "c": "z"}),
        (r'x "a \" b" z', {"a": "x", "b": r"a \" b", "c": "z"}),  # \" does not close, kept as is
        ('x "y z', {"a": "x", "b": '"y', "c": "z"}),  # unterminated: an ordinary character
        ("x [y z", {"a": "x", "b": "[y", "c": "z"}),
        ('x a"b c', {"a": "x", "b": 'a"b', "c": "c"}),  # quotes group only at a field's start
        ('x "y"z', {"a": "x", "b": "y", "c": "z"}),  # the closing quote ends the field
        ("x [a [b] c", {"a": "x", "b": "a [b", "c": "c"}),  # the first ']' closes
    ],
)
def test_event_splitting(message: str, expected: dict[str, str]) -> None:
    pattern = compile_pattern("[a, b, c]")
    assert pattern.extract(message) == expected
    assert pattern.matches(message)


@pytest.mark.parametrize("message", ["x y", "x y z w", "", "   ", '"x y z"'])
def test_field_count_must_be_exact_without_ellipsis(message: str) -> None:
    pattern = compile_pattern("[a, b, c]")
    assert not pattern.matches(message)
    assert pattern.extract(message) is None


def test_ellipsis_positions_and_extraction() -> None:
    line = "1 2 3 4 5 6"
    assert compile_pattern("[a, ...]").extract(line) == {"a": "1"}
    assert compile_pattern("[..., z]").extract(line) == {"z": "6"}
    assert compile_pattern("[a, b, ..., y, z]").extract(line) == {"a": "1", "b": "2", "y": "5", "z": "6"}
    assert compile_pattern("[a, b, c, ..., d, e, f]").extract(line) == {
        "a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"
    }  # fmt: skip
    assert compile_pattern("[a, b, c, ..., d, e, f, g]").extract(line) is None  # one too many
    assert compile_pattern("[...]").extract("") == {}
    assert compile_pattern("[a, ..., z=6]").matches(line)
    assert not compile_pattern("[a, ..., z=5]").matches(line)


def test_anonymous_fields_count_but_are_not_extracted() -> None:
    pattern = compile_pattern("[a, , c,]")
    assert pattern.extract("1 2 3 4") == {"a": "1", "c": "3"}
    assert pattern.extract("1 2 3") is None


def test_names_may_contain_dashes_and_digits() -> None:
    pattern = compile_pattern("[log-status, 2nd]")
    assert pattern.extract("OK x") == {"log-status": "OK", "2nd": "x"}


# --------------------------------------------------------------------------------------------
# Space-delimited: conditions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("=5", "5", True),
        ("=5", "05", True),
        ("=5", "5.0", True),
        ("=5", "5e0", True),
        ("=5", "0.5e1", True),
        ("=5", "+5", True),
        ("=5", "4.99999999999999999999", True),  # equal as doubles: no digit shortcut here
        ("=5", "15", False),
        ("=5", "-", False),
        ("=0", "-0.0", True),
        ("=0", "0e9", True),
        ("=-1.5", "-1.50", True),
        ('="5"', "05", False),  # quoted: exact string equality
        ('="5"', "5", True),
        ("!=5", "-", True),  # not a number, so not equal
        ("!=5", "5.0", False),
        ("!=5", "6", True),
        ("<10", "9.5", True),
        ("<10", "10", False),
        ("<=10", "10", True),
        (">10", "1e2", True),
        (">10", "-", False),
        (">10", "n/a", False),
        (">10", "1_000", False),
        (">10", "nan", False),
        (">10", "inf", False),
        (">10", "٢٠", False),  # non-ASCII digits are not numbers
        (">=10", "10.0", True),
        (">-1", "-0.5", True),
        ("=REJECT", "REJECT", True),
        ("=REJECT", "REJECTED", False),
        ("=REJECT", "reject", False),
        ("!=REJECT", "ACCEPT", True),
        ("=4*", "404", True),
        ("=4*", "304", False),
        ("=*.php", "index.php", True),
        ("=*.php", "index.php5", False),
        ("=*html*", "a.html?x", True),
        ("!=*html*", "a.htm", True),
        ("=a*b", "a*b", True),  # an interior * is literal
        ("=a*b", "axb", False),
        ("=*", "-", True),
        ("!=*", "x", False),
        ('="*"', "anything", True),
        ('="2001:db8:*"', "2001:db8::1", True),
        ("=10.0.0.*", "10.0.0.7", True),
        ("=10.0.0.*", "10.0.1.7", False),
        ('="GET /x HTTP/1.1"', "GET /x HTTP/1.1", True),
        ("=4* && a!=403", "404", True),
        ("=4* && a!=403", "403", False),
        ("=403 || a=404", "404", True),
        ("=403 || a=404", "405", False),
        ("=1 || a=2 && a=3", "1", True),  # && binds tighter than ||
        ("=1 || a=2 && a=3", "2", False),
        (">1 && a<5 || a=9", "9", True),
    ],
)
def test_field_conditions(condition: str, value: str, expected: bool) -> None:
    pattern = compile_pattern(f"[a{condition}, b]")
    assert pattern.matches(f'"{value}" end') is expected
    if " " not in value and "[" not in value and '"' not in value:
        assert pattern.matches(f"{value} end") is expected


def test_whitespace_in_patterns_is_optional() -> None:
    tight = compile_pattern("[a=1&&a!=2,b]")
    loose = compile_pattern("[  a = 1  &&  a != 2 ,  b  ]")
    for line in ("1 x", "2 x", "1 x y"):
        assert tight.matches(line) is loose.matches(line)
    assert tight.matches("1 x")


# --------------------------------------------------------------------------------------------
# VPC flow logs
# --------------------------------------------------------------------------------------------


def test_lab_pattern() -> None:
    pattern = compile_pattern(LAB)
    assert pattern.matches(ICMP_REJECT)
    assert not pattern.matches(TCP_REJECT)
    assert not pattern.matches(ICMP_ACCEPT)
    assert not pattern.matches(NODATA)
    assert not pattern.matches(SKIPDATA)
    assert not pattern.matches(ICMP_REJECT + " extra")
    assert not pattern.matches("REJECT")
    assert pattern.extract(ICMP_REJECT)["protocol"] == "1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("condition_pattern", "nodata_matches"),
    [
        (V2_FIELDS, True),
        (V2_FIELDS.replace("protocol,", "protocol=1,"), False),
        (V2_FIELDS.replace("bytes,", "bytes>0,"), False),
        (V2_FIELDS.replace("bytes,", "bytes<1,"), False),
        (V2_FIELDS.replace("destport,", "destport!=22,"), True),  # "-" is not equal to 22
        (V2_FIELDS.replace("action,", 'action="REJECT",'), False),
        (V2_FIELDS.replace("action,", 'action="-",'), True),
        (V2_FIELDS.replace("flowlogstatus]", "flowlogstatus=NODATA]"), True),
        (V2_FIELDS.replace("flowlogstatus]", "flowlogstatus=NODATA || flowlogstatus=SKIPDATA]"), True),
        (V2_FIELDS.replace("source,", "source=*,"), True),
    ],
)
def test_nodata_records(condition_pattern: str, nodata_matches: bool) -> None:
    pattern = compile_pattern(condition_pattern)
    assert pattern.matches(NODATA) is nodata_matches
    assert (pattern.extract(NODATA) is not None) is nodata_matches


def test_nodata_extraction_keeps_dashes() -> None:
    extracted = compile_pattern(V2_FIELDS).extract(NODATA)
    assert extracted is not None
    assert extracted["source"] == "-"
    assert extracted["flowlogstatus"] == "NODATA"
    assert len(extracted) == 14


PLAIN_PIECES = ["2", "123456789010", "eni-1", "10.0.0.1", "0", "22", "1", "6", "17", "-", "REJECT", "ACCEPT"]
PLAIN_PIECES += ["OK", "NODATA", "5e0", "1.0", "01", "REJECTED", "x-REJECT"]
GROUPED_PIECES = ['"a b"', "[c d]", '"REJECT"', "[1]", '"unterminated', "[open", '""', 'x"y']


def _random_line(rng: random.Random) -> str:
    """A flow-log-like line: a mutated real record, or random pieces; some with quotes/brackets."""
    separators = [" ", " ", " ", "  ", "\t"]
    pieces = PLAIN_PIECES + (GROUPED_PIECES if rng.random() < 0.4 else [])
    if rng.random() < 0.5:
        fields = rng.choice([ICMP_REJECT, TCP_REJECT, NODATA]).split()
        for _ in range(rng.randrange(0, 3)):
            fields[rng.randrange(len(fields))] = rng.choice(pieces)
        if rng.random() < 0.2:
            fields.insert(rng.randrange(len(fields)), rng.choice(pieces))
    else:
        fields = [rng.choice(pieces) for _ in range(rng.choice([12, 13, 14, 14, 14, 15, 16]))]
    return "".join(field + rng.choice(separators) for field in fields).strip()


@pytest.mark.parametrize(
    "text",
    [
        LAB,
        V2_FIELDS,
        V2_FIELDS.replace("bytes,", "bytes>=5,"),
        "[..., action=REJECT, log_status]",
        "[version=2, ..., protocol=1 || protocol=17, a, b, c, d, e]",
        "[a, ..., b=%^[0-9]+$%]",
        "[a=*REJECT*, ...]",
        "[x, ..., y=REJECT && y!=ACCEPT, z]",
    ],
)
def test_matches_and_extract_agree(text: str) -> None:
    """``matches`` is a specialised fast path; ``extract`` the general one: same answers."""
    pattern = compile_pattern(text)
    rng = random.Random(text)
    outcomes: set[tuple[bool, bool]] = set()  # (took the quote/bracket path, matched)
    for _ in range(3000):
        line = _random_line(rng)
        expected = pattern.extract(line) is not None
        assert pattern.matches(line) is expected, line
        outcomes.add(('"' in line or "[" in line, expected))
    assert {(False, True), (False, False), (True, False)} <= outcomes


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------

DOC = (
    '{"a": {"b.c": 1, "list": [[1, 2], [3, 4]], "s": "x"}, "flag": false, "none": null, '
    '"num": 1.50, "int": 400, "str400": "400", "users": [{"id": 1, "n": "al"}, {"id": 2, "n": "bo"}],'
    ' "tags": ["red", "blue"], "neg": -3, "big": 1e3}'
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{ $.a.['b.c'] = 1 }", True),
        ('{ $.a["b.c"] = 1 }', True),
        ("{ $.a.list[1][0] = 3 }", True),
        ("{ $.a.list[2][0] = 3 }", False),
        ("{ $.a.list[0] = 1 }", False),  # an array is not a value node
        ("{ $.a.list[0] != 1 }", False),
        ("{ $.a = * }", False),
        ("{ $.users[*].n = bo }", True),
        ("{ $.users[*].n = zz }", False),
        ("{ $.tags[*] = \"bl*\" }", True),
        ("{ $.a.* = x }", True),
        ("{ $.missing != 1 }", False),
        ("{ $.a.s.deeper = x }", False),
        ("{ $.flag IS FALSE }", True),
        ("{ $.flag IS TRUE }", False),
        ("{ $.none IS NULL }", True),
        ("{ $.missing IS NULL }", False),
        ("{ $.none NOT EXISTS }", False),
        ("{ $.missing NOT EXISTS }", True),
        ("{ $.a.s.deeper NOT EXISTS }", True),
        ("{ $.tags[5] NOT EXISTS }", True),
        ("{ $.num = 1.5 }", True),
        ("{ $.num = %^1\\.50$% }", True),  # numbers compare as written
        ("{ $.int = \"400\" }", True),
        ("{ $.str400 = 400 }", True),
        ("{ $.str400 > 4 }", False),  # numeric comparisons need a JSON number
        ("{ $.int > 4 }", True),
        ("{ $.neg < -2 }", True),
        ("{ $.big = 1000 }", True),
        ("{ $.flag = false }", True),
        ("{ $.flag > 0 }", False),
        ("{ $.none = * }", True),
        ("{ $.a.s = x || $.int = 1 && $.flag IS TRUE }", True),
        ("{ ($.a.s = x || $.int = 1) && $.flag IS TRUE }", False),
        ("{ $.a.s = x && ($.int = 1 || $.int = 400) }", True),
        ("{ (($.int = 400)) }", True),
        ("{ $.users[1].id = 2 && $.users[0].id != 2 }", True),
    ],
)
def test_json(text: str, expected: bool) -> None:
    pattern = compile_pattern(text)
    assert pattern.matches(DOC) is expected
    assert pattern.extract(DOC) == ({} if expected else None)


@pytest.mark.parametrize(
    "message",
    [
        'prefix {"a": 1}',
        "[1, 2]",
        '"a"',
        "1",
        '{"a": 1',
        '{"a": NaN}',
        "",
        "not json",
    ],
)
def test_json_patterns_need_a_json_object_event(message: str) -> None:
    assert not compile_pattern("{ $.a = * }").matches(message)
    assert not compile_pattern("{ $.zzz NOT EXISTS }").matches(message)


def test_json_event_may_have_surrounding_whitespace() -> None:
    assert compile_pattern("{ $.a = 1 }").matches('  {"a": 1}\n')


# --------------------------------------------------------------------------------------------
# Metric transformations
# --------------------------------------------------------------------------------------------


def test_metric_literal_value_and_default() -> None:
    pattern = compile_pattern(LAB)
    transformation = {"metricName": "Ping-Deny", "metricNamespace": "Lab", "metricValue": "1", "defaultValue": 0}
    assert pattern.metric(ICMP_REJECT, transformation) == {"value": 1.0, "unit": "None"}
    assert pattern.metric(TCP_REJECT, transformation) == {"value": 0.0, "unit": "None", "default": True}
    assert pattern.metric(TCP_REJECT, {"metricValue": "1"}) is None
    result = pattern.metric(ICMP_REJECT, {"metricValue": "2.5", "unit": "Count"})
    assert result == {"value": 2.5, "unit": "Count"}
    assert isinstance(result["value"], float)  # type: ignore[index]


def test_metric_field_value_and_dimensions() -> None:
    pattern = compile_pattern(LAB)
    result = pattern.metric(
        ICMP_REJECT,
        {"metricValue": "$bytes", "unit": "Bytes", "dimensions": {"Eni": "$interface_id", "Lab": "vpc"}},
    )
    assert result == {
        "value": 336.0,
        "unit": "Bytes",
        "dimensions": {"Eni": "eni-0a1b2c3d4e5f60718", "Lab": "vpc"},
    }


def test_metric_non_numeric_field_publishes_nothing() -> None:
    pattern = compile_pattern(V2_FIELDS)
    assert pattern.metric(NODATA, {"metricValue": "$bytes"}) is None
    assert pattern.metric(NODATA, {"metricValue": "$bytes", "defaultValue": 0}) is None
    assert pattern.metric(NODATA, {"metricValue": "1"}) == {"value": 1.0, "unit": "None"}


def test_metric_from_json() -> None:
    pattern = compile_pattern("{ $.latency = * && $.route = * }")
    transformation = {"metricValue": "$.latency", "unit": "Milliseconds", "dimensions": {"Route": "$.route"}}
    assert pattern.metric('{"latency": 12.5, "route": "/a"}', transformation) == {
        "value": 12.5,
        "unit": "Milliseconds",
        "dimensions": {"Route": "/a"},
    }
    assert pattern.metric('{"latency": "7", "route": 3}', transformation) == {
        "value": 7.0,
        "unit": "Milliseconds",
        "dimensions": {"Route": "3"},
    }
    # dimension values are the JSON text of the value: booleans in lower case, numbers as written
    for route, text in (("true", "true"), ("1.50", "1.50"), ("null", "null")):
        result = pattern.metric(f'{{"latency": 1, "route": {route}}}', transformation)
        assert result == {"value": 1.0, "unit": "Milliseconds", "dimensions": {"Route": text}}
    assert pattern.metric('{"latency": "slow", "route": "/a"}', transformation) is None
    assert pattern.metric('{"latency": true, "route": "/a"}', transformation) is None
    assert pattern.metric('{"latency": 1, "route": {"x": 1}}', transformation) is None
    assert pattern.metric('{"route": "/a"}', transformation) is None


def test_metric_for_term_and_regex_patterns() -> None:
    assert compile_pattern("ERROR").metric("ERROR x", {"metricValue": "1"}) == {"value": 1.0, "unit": "None"}
    assert compile_pattern("%ERR%").metric("INFO", {"metricValue": "1", "defaultValue": 0.5}) == {
        "value": 0.5,
        "unit": "None",
        "default": True,
    }
    assert compile_pattern("").metric("x", {"metricValue": 1}) == {"value": 1.0, "unit": "None"}


@pytest.mark.parametrize(
    ("pattern_text", "transformation", "fragment"),
    [
        (LAB, {}, "metricValue is required"),
        (LAB, {"metricValue": "abc"}, "neither a number"),
        (LAB, {"metricValue": "inf"}, "neither a number"),
        (LAB, {"metricValue": ""}, "1-100 characters"),
        (LAB, {"metricValue": True}, "must be a string"),
        (LAB, {"metricValue": "$nope"}, "not a field the pattern names"),
        (LAB, {"metricValue": "$.bytes"}, "not a $field reference"),
        (LAB, {"metricValue": "$7"}, "not a field the pattern names"),
        ("[..., bytes]", {"metricValue": "$bytes", "dimensions": {"X": "$eni"}}, "not a field"),
        ("ERROR", {"metricValue": "$bytes"}, "needs a space-delimited or JSON"),
        ("ERROR", {"metricValue": "1", "dimensions": {"X": "y"}}, "only available with JSON or space-delimited"),
        ("{ $.a = 1 }", {"metricValue": "$a"}, "not a $.path reference"),
        ("{ $.a = 1 }", {"metricValue": "$.a", "dimensions": {"B": "$.b"}}, "not a property the pattern names"),
        ("{ $.a[*] = 1 }", {"metricValue": "$.a[*]"}, "wildcard"),
        ("{ $.a = 1 }", {"metricValue": "$.a b"}, "invalid selector"),
        (LAB, {"metricValue": "1", "defaultValue": 0, "dimensions": {"A": "$action"}}, "can't be combined"),
        (
            LAB,
            {"metricValue": "1", "dimensions": {"A": "$action", "B": "$bytes", "C": "$end", "D": "$start"}},
            "at most 3 dimensions",
        ),
        (LAB, {"metricValue": "1", "dimensions": ["$action"]}, "must be a mapping"),
        (LAB, {"metricValue": "1", "dimensions": {"A": ""}}, "1-255 characters"),
        (LAB, {"metricValue": "1", "unit": "Packets"}, "not a CloudWatch StandardUnit"),
        (LAB, {"metricValue": "1", "unit": "count"}, "not a CloudWatch StandardUnit"),
        (LAB, {"metricValue": "1", "defaultValue": "0"}, "defaultValue must be a number"),
        (LAB, {"metricValue": "1", "defaultValue": float("nan")}, "finite"),
        (LAB, {"metricValue": "1", "metricName": "a:b"}, "metricName"),
        (LAB, {"metricValue": "1", "metricNamespace": ""}, "metricNamespace"),
        (LAB, {"metricValue": "1", "defaultvalue": 0}, "unknown metric transformation key"),
    ],
)
def test_invalid_transformations(pattern_text: str, transformation: dict[str, Any], fragment: str) -> None:
    pattern = compile_pattern(pattern_text)
    with pytest.raises(ValueError) as info:
        pattern.metric(ICMP_REJECT, transformation)
    assert not isinstance(info.value, PatternError)
    assert fragment in str(info.value)


def test_every_standard_unit_is_accepted() -> None:
    pattern = compile_pattern("x")
    assert len(STANDARD_UNITS) == 27
    for unit in STANDARD_UNITS:
        assert pattern.metric("x", {"metricValue": "1", "unit": unit}) == {"value": 1.0, "unit": unit}


def test_standard_units_match_botocore_when_available() -> None:
    botocore_session = pytest.importorskip("botocore.session")
    model = botocore_session.get_session().get_service_model("logs")
    assert set(model.shape_for("StandardUnit").enum) == STANDARD_UNITS


def test_invalid_transformation_fails_even_when_the_event_does_not_match() -> None:
    with pytest.raises(ValueError):
        compile_pattern(LAB).metric(TCP_REJECT, {"metricValue": "$nope", "defaultValue": 0})


def test_transformation_validation_is_cached_per_content() -> None:
    pattern = compile_pattern(V2_FIELDS)
    transformation = {"metricValue": "$bytes", "dimensions": {"Action": "$action"}}
    first = pattern.metric(TCP_REJECT, transformation)
    transformation["dimensions"] = {"Action": "$nope"}
    with pytest.raises(ValueError):
        pattern.metric(TCP_REJECT, transformation)
    assert first == {"value": 336.0, "unit": "None", "dimensions": {"Action": "REJECT"}}


# -- what AWS answers: TestMetricFilter matches and InvalidParameterException messages ----------


def test_test_metric_filter_reports_named_fields_by_name_and_anonymous_ones_by_position() -> None:
    pattern = compile_pattern("[ip, , ..., status=4*, ]")
    lines = ["10.0.0.1 - frank GET 404 512", "10.0.0.1 - frank GET 200 512"]
    assert pattern.test_metric_filter(lines) == [
        {"eventNumber": 1, "eventMessage": lines[0],
         "extractedValues": {"$ip": "10.0.0.1", "$2": "-", "$status": "404", "$6": "512"}},
    ]


def test_empty_field_list_matches_every_event_and_reports_every_field() -> None:
    pattern = compile_pattern("[]")
    assert pattern.kind == "delimited"
    assert pattern.test_metric_filter(["a [b c] d", "", "x"]) == [
        {"eventNumber": 1, "eventMessage": "a [b c] d", "extractedValues": {"$1": "a", "$2": "b c", "$3": "d"}},
        {"eventNumber": 2, "eventMessage": "", "extractedValues": {}},
        {"eventNumber": 3, "eventMessage": "x", "extractedValues": {"$1": "x"}},
    ]
    assert pattern.extract("a b") == {}  # extract() keeps to named fields


@pytest.mark.parametrize(
    ("text", "aws_message"),
    [
        ("ERROR: disk", "Invalid character(s) in term ':'"),
        ("user@example.com", "Invalid character(s) in term '@'"),
        ("f(x)", "Invalid character(s) in term '('"),
        ("ok -a,b", "Invalid character(s) in term ','"),
        ("x] y", "Invalid character(s) in term ']'"),
        ("%a(b)%", "Invalid character(s) in term '('"),
        ('{ $.a = 1, $.b = 2 }', "Invalid character(s) in term ','"),
        ('{ $.a = 1 && $."b" = 2 }', "Invalid character(s) in term '$.\"'"),
        ("{ $.a = 1", "If a filter pattern starts with '{' it must end with '}'"),
        ("[a b]", "Invalid filter pattern"),
    ],
)
def test_pattern_errors_carry_aws_message(text: str, aws_message: str) -> None:
    assert error_of(text).aws_message == aws_message


def test_quoting_allows_every_refused_character() -> None:
    pattern = compile_pattern('"a:b(c)[d]@e\\\\f`g,h"')
    assert pattern.matches("x a:b(c)[d]@e\\f`g,h y")


def test_json_metric_value_may_name_a_selector_the_pattern_does_not() -> None:
    pattern = compile_pattern("{ $.val = * }")
    transformation = {"metricValue": "$.value"}
    assert pattern.metric('{"val": 1, "value": 3}', transformation) == {"value": 3.0, "unit": "None"}
    assert pattern.metric('{"val": 1}', transformation) is None  # nothing to publish
    assert pattern.metric('{"val": 1, "value": "slow"}', transformation) is None
