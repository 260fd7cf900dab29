"""CloudWatch alarm evaluation rules (flowwatch.local.alarms), pure: no server, no clock.

The two tables come from the CloudWatch User Guide, "Configuring how CloudWatch alarms treat
missing data" (evaluation range 5, most recent datapoint on the right; 0 = not breaching,
X = breaching, - = missing; RETAIN = the alarm keeps its current state).
"""

from __future__ import annotations

import json

import pytest

from flowwatch.local.alarms import (ALARM, INSUFFICIENT, OK, AlarmSpec, email_text, evaluate, notification,
                                    sns_message, subject)

RETAIN = "RETAIN"
TREATS = ("missing", "ignore", "breaching", "notBreaching")


def spec(n: int = 1, m: int | None = None, treat: str = "notBreaching", comparison: str = "GreaterThanOrEqualToThreshold",
         threshold: float = 1.0, statistic: str = "Sum") -> AlarmSpec:
    return AlarmSpec(name="a", namespace="NS", metric="M", statistic=statistic, period=60, evaluation_periods=n,
                     datapoints_to_alarm=m or n, threshold=threshold, comparison=comparison,
                     treat_missing_data=treat)


def points(text: str) -> list[float | None]:
    return [None if c == "-" else (5.0 if c == "X" else 0.0) for c in text.split()]


def run(row: str, n: int, m: int, treat: str, current: str = "SOMETHING") -> str:
    state = evaluate(spec(n, m, treat), points(row), current).state
    return RETAIN if state == current else state


# Table 1: Datapoints to Alarm = Evaluation Periods = 3.   MISSING, IGNORE, BREACHING, NOT BREACHING
TABLE_3_OF_3 = [
    ("0 - X - X", (OK, OK, OK, OK)),
    ("0 - - - -", (OK, OK, OK, OK)),
    ("- - - - -", (INSUFFICIENT, RETAIN, ALARM, OK)),
    ("0 X X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("- - X - -", (ALARM, RETAIN, ALARM, OK)),
]
# Table 2: 2 out of 3 (M of N)
TABLE_2_OF_3 = [
    ("0 - X - X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 0 X 0 X", (ALARM, ALARM, ALARM, ALARM)),
    ("0 - X - -", (OK, OK, ALARM, OK)),
    ("- - - - 0", (OK, OK, ALARM, OK)),
    ("- - - X -", (ALARM, RETAIN, ALARM, OK)),
]


@pytest.mark.parametrize(("row", "expected"), TABLE_3_OF_3)
def test_aws_table_3_of_3(row, expected):
    assert tuple(run(row, 3, 3, t) for t in TREATS) == expected


@pytest.mark.parametrize(("row", "expected"), TABLE_2_OF_3)
def test_aws_table_m_of_n(row, expected):
    assert tuple(run(row, 3, 2, t) for t in TREATS) == expected


def test_premature_alarm_is_avoided_while_the_breach_is_recent():
    # "- - - - X" with 3 of 3: the next datapoint may be fine, so no ALARM yet (and no OK either)
    assert run("- - - - X", 3, 3, "missing") == RETAIN
    assert run("- - - X -", 3, 3, "missing") == RETAIN


def test_lab_alarm_one_of_one_not_breaching():
    s = spec()  # Sum >= 1, 1 of 1, notBreaching: the lab's alarm
    assert evaluate(s, [None, None, 3.0], INSUFFICIENT).state == ALARM
    assert evaluate(s, [None, 3.0, None], ALARM).state == ALARM      # re-evaluates the last real datapoint
    assert evaluate(s, [3.0, 0.0, None], ALARM).state == OK          # a default-value 0 ends it
    assert evaluate(s, [None, None, None], ALARM).state == OK        # return to OK once the range is empty
    assert evaluate(spec(treat="missing"), [None, None, None], OK).state == INSUFFICIENT
    assert evaluate(spec(treat="breaching"), [None, None, None], OK).state == ALARM
    assert evaluate(spec(treat="ignore"), [None, None, None], ALARM).state == ALARM


def test_comparisons_and_threshold_edges():
    assert evaluate(spec(threshold=1), [None, None, 1.0], OK).state == ALARM
    assert evaluate(spec(comparison="GreaterThanThreshold", threshold=1), [None, None, 1.0], OK).state == OK
    assert evaluate(spec(comparison="LessThanThreshold", threshold=1), [None, None, 0.0], OK).state == ALARM
    assert evaluate(spec(comparison="LessThanOrEqualToThreshold", threshold=1), [None, None, 2.0], ALARM).state == OK


def test_range_and_periods_are_aligned():
    s = spec(n=3)
    assert s.evaluation_range == 5
    starts = s.period_starts(1_000_000_030.5)
    assert starts[-1] == 1_000_000_020 and all(b - a == 60 for a, b in zip(starts, starts[1:])) and len(starts) == 5


def test_reason_names_the_datapoints():
    s = spec()
    ev = evaluate(s, [None, None, 3.0], OK, starts=s.period_starts(1_700_000_000))
    assert ev.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints [3.0 (")
    assert "greater than or equal to the threshold (1.0)" in ev.reason
    assert ev.reason_data(s, 1_700_000_000)["recentDatapoints"] == [3.0]


def test_from_describe_refuses_what_it_cannot_evaluate():
    base = {"AlarmName": "a", "Namespace": "N", "MetricName": "M", "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 2, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    s = AlarmSpec.from_describe(base)
    assert (s.datapoints_to_alarm, s.treat_missing_data) == (2, "missing")
    for bad in ({"Statistic": None, "ExtendedStatistic": "p99"}, {"Metrics": [{"Id": "m1"}]},
                {"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}):
        with pytest.raises(ValueError):
            AlarmSpec.from_describe({**base, **bad})


def test_notification_is_the_cloudwatch_alarm_json():
    s = spec()
    alarm = {"AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:a", "AlarmActions": ["arn:t"],
             "OKActions": ["arn:t"]}
    msg = notification(alarm, s, old=OK, new=ALARM, reason="Threshold Crossed: x", when=1_700_000_000,
                       account="123456789012", region="us-east-1")
    assert msg["NewStateValue"] == ALARM and msg["OldStateValue"] == OK
    assert msg["Region"] == "US East (N. Virginia)"
    assert msg["StateChangeTime"] == "2023-11-14T22:13:20.000+0000"
    assert msg["Trigger"]["Statistic"] == "SUM" and msg["Trigger"]["TreatMissingData"] == "notBreaching"
    assert subject(msg) == 'ALARM: "a" in US East (N. Virginia)'
    body = json.loads(sns_message(msg))
    assert json.loads(body["default"]) == msg
    assert body["email"] == email_text(msg) and "has entered the ALARM state" in body["email"]
