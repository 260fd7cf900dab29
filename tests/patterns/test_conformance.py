"""flowwatch.patterns against the CloudWatch Logs filter-pattern conformance vectors.

The vectors are facts with their sources (AWS's documentation, mostly): they are vendored in
``tests/patterns/vectors/filter_patterns.json``, so the suite passes in a plain clone. Their format
is described in ``FILTER_PATTERNS.md`` beside them (section 6). ``FLOWWATCH_CONFORMANCE`` runs the
cases of another file instead. ``aws_recorded.json`` beside them holds cases recorded against AWS
itself (``confidence``: ``recorded`` for AWS-validated test snapshots, ``observed`` for AWS answers
quoted in public reports, ``documented`` for AWS's examples), in the same format plus: ``message``
null (only that AWS accepted the pattern, and its ``metric`` transformation), ``aws_message`` (the
text of AWS's InvalidParameterException), and ``messages`` with ``expected_matches`` (TestMetricFilter's
``matches``). docs/PATTERNS.md lists where the two files disagree. When the team's shared copy sits beside the repository, one test
checks that the vendored copy has every case of it (a cross-check only: nothing passes because of it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from flowwatch.patterns import PatternError, compile_pattern

DEFAULT_PATH = Path(__file__).resolve().parent / "vectors" / "filter_patterns.json"
RECORDED_PATH = Path(__file__).resolve().parent / "vectors" / "aws_recorded.json"
SHARED_PATH = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "filter_patterns.json"

# Cases where the AWS documentation contradicts a vector: id -> reason (listed in docs/PATTERNS.md).
XFAIL: dict[str, str] = {}


def conformance_path() -> Path:
    override = os.environ.get("FLOWWATCH_CONFORMANCE")
    return Path(override) if override else DEFAULT_PATH


# Resolved at import: test fixtures may clear FLOWWATCH_* variables while tests run.
CONFORMANCE_PATH = conformance_path()


def load_cases(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return cases


CASES = load_cases(CONFORMANCE_PATH)
RECORDED = load_cases(RECORDED_PATH)


def params() -> list[Any]:
    marks = {case_id: pytest.mark.xfail(reason=reason, strict=True) for case_id, reason in XFAIL.items()}
    return [pytest.param(case, id=case["id"], marks=marks.get(case["id"], ())) for case in CASES + RECORDED]


def test_conformance_file_is_present() -> None:
    path = CONFORMANCE_PATH
    assert path.is_file(), f"conformance vectors not found at {path} (set FLOWWATCH_CONFORMANCE)"
    assert CASES, f"{path} holds no cases"
    assert RECORDED, f"{RECORDED_PATH} holds no cases"
    assert len({case["id"] for case in CASES + RECORDED}) == len(CASES + RECORDED), "case ids must be unique"
    assert {case["confidence"] for case in RECORDED} <= {"recorded", "observed", "documented"}


@pytest.mark.skipif(not SHARED_PATH.is_file(), reason="no shared/ beside the repository: nothing to cross-check")
def test_vendored_vectors_hold_every_shared_case() -> None:
    shared = {case["id"]: case for case in load_cases(SHARED_PATH)}
    vendored = {case["id"]: case for case in load_cases(DEFAULT_PATH)}
    assert {i: c for i, c in shared.items() if vendored.get(i) != c} == {}


def test_xfail_ids_exist() -> None:
    assert set(XFAIL) <= {case["id"] for case in CASES + RECORDED}


@pytest.mark.parametrize("case", params())
def test_case(case: dict[str, Any]) -> None:
    pattern_text: str = case["pattern"]
    message: str = case["message"]

    if case.get("invalid_pattern"):
        assert case["match"] is False
        with pytest.raises(PatternError) as info:
            compile_pattern(pattern_text)
        if "aws_message" in case:
            assert info.value.aws_message == case["aws_message"]
        return

    pattern = compile_pattern(pattern_text)
    if "expected_matches" in case:
        assert pattern.test_metric_filter(case["messages"]) == case["expected_matches"]
    if case["message"] is None:  # AWS accepted the pattern (and its transformation): nothing more was recorded
        if "metric" in case:
            pattern.metric("", case["metric"])
        return
    assert pattern.matches(message) is case["match"]

    extracted = pattern.extract(message)
    if not case["match"]:
        assert extracted is None
    elif "extracted" in case:
        assert extracted == case["extracted"]
    elif pattern.kind != "delimited":
        assert extracted == {}

    if "metric" in case:
        expected = case["expected_metric"]
        if isinstance(expected, dict) and "error" in expected:
            with pytest.raises(ValueError):
                pattern.metric(message, case["metric"])
        else:
            assert pattern.metric(message, case["metric"]) == expected
