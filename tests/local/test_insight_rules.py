"""The data plane's Contributor Insights service (flowwatch.local.insight_rules) and the metric-math
notification (flowwatch.local.alarms.metric_math_trigger), in-process: the rules come from a stub of
moto's DescribeInsightRules, events from PutLogEvents requests as the tap receives them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowwatch.local import alarms, insight_rules
from flowwatch.local.api import ServiceError
from flowwatch.local.insight_rules import InsightRules

GROUP = "/flowwatch/t/flow-logs"
RULE = {"Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": [GROUP], "LogFormat": "CLF",
        "Fields": {"4": "srcaddr", "13": "action"},
        "Contribution": {"Keys": ["srcaddr"], "Filters": [{"Match": "action", "In": ["REJECT"]}]},
        "AggregateOn": "Count"}


class Moto:
    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.reads = 0

    def client(self, service: str, region: str) -> Any:
        return self

    def account(self, region: str) -> str:
        return "123456789012"

    def describe_insight_rules(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        return {"InsightRules": [dict(r) for r in self.rules]}


def put(rules: InsightRules, *events: tuple[int, str], region: str = "us-east-1") -> int:
    request = {"logGroupName": GROUP, "logStreamName": "s", "logEvents": [{"timestamp": t, "message": m}
                                                                          for t, m in events]}
    return rules.tap_put_log_events(region, request, {})


def line(src: str, action: str = "REJECT") -> str:
    return f"2 123456789012 eni-1 {src} 10.0.0.5 1234 443 6 1 60 0 30 {action} OK"


@pytest.fixture
def moto():
    m = Moto()
    m.rules = [{"Name": "top", "State": "ENABLED", "Definition": json.dumps(RULE)}]
    return m


def test_rules_are_read_once_until_a_rule_changes_and_disabled_rules_get_no_data(moto):
    woken = []
    rules = InsightRules(moto, lambda: 600.0, on_data=lambda: woken.append(1))
    assert put(rules, (60_000, line("1.1.1.1")), (61_000, line("1.1.1.1")), (62_000, line("2.2.2.2", "ACCEPT"))) == 2
    assert put(rules, (63_000, line("1.1.1.1"))) == 1
    assert moto.reads == 1 and len(woken) == 2
    assert rules.metric("us-east-1", "top", "MaxContributorValue", 0, 300) == 3.0
    moto.rules[0]["State"] = "DISABLED"
    rules.mark_stale("us-east-1")
    assert put(rules, (64_000, line("1.1.1.1"))) == 0
    assert rules.metric("us-east-1", "top", "MaxContributorValue", 0, 300) == 3.0    # its data so far stays
    assert moto.reads == 2
    assert rules.metric("eu-west-1", "top", "Sum", 0, 300) is None                # rules are per region


def test_a_new_definition_starts_from_nothing_and_a_deleted_rule_is_not_found(moto):
    rules = InsightRules(moto, lambda: 600.0)
    put(rules, (60_000, line("1.1.1.1")))
    moto.rules[0]["Definition"] = json.dumps({**RULE, "AggregateOn": "Sum"})
    rules.mark_stale("us-east-1")
    assert rules.metric("us-east-1", "top", "SampleCount", 0, 300) is None
    moto.rules = []
    rules.mark_stale("us-east-1")
    with pytest.raises(ServiceError) as err:
        rules.get_insight_rule_report("us-east-1", {"RuleName": "top", "StartTime": 0, "EndTime": 600, "Period": 300})
    assert err.value.code == "ResourceNotFoundException"


def test_memory_is_bounded(moto, monkeypatch):
    monkeypatch.setattr(insight_rules, "MAX_CONTRIBUTORS", 3)
    monkeypatch.setattr(insight_rules, "MAX_BUCKETS", 2)
    now = [100 * 86400.0]
    rules = InsightRules(moto, lambda: now[0])
    old = int(now[0] - 20 * 86400) * 1000
    put(rules, (old, line("9.9.9.9")))
    base = int(now[0]) * 1000
    put(rules, *[(base, line(f"1.1.1.{i}")) for i in range(5)], *[(base, line("1.1.1.0"))] * 2)
    series = rules._regions["us-east-1"].rules["top"].series
    assert sorted(series.buckets) == [int(now[0]) // 60 * 60]       # the 20-day-old bucket is gone
    (bucket,) = series.buckets.values()
    assert len(bucket.contributors) == 3 and bucket.contributors[("1.1.1.0",)] == 3.0
    assert bucket.samples == 7                                      # the statistics stay exact
    put(rules, *[(base + k * 60_000, line("1.1.1.1")) for k in range(1, 4)])
    assert len(series.buckets) == 2                                 # the newest MAX_BUCKETS minutes


def test_report_errors_are_aws_errors(moto):
    rules = InsightRules(moto, lambda: 600.0)
    with pytest.raises(ServiceError) as err:
        rules.get_insight_rule_report("us-east-1", {"RuleName": "top", "StartTime": 0, "EndTime": 600, "Period": 7})
    assert err.value.code == "InvalidParameterValue"
    with pytest.raises(ServiceError) as err:
        rules.get_insight_rule_report("us-east-1", {})
    assert err.value.code == "MissingParameter"


BAND_ALARM = {
    "AlarmName": "a", "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "ThresholdMetricId": "ad1",
    "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "TreatMissingData": "notBreaching",
    "Metrics": [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "M",
                                                       "Dimensions": [{"Name": "k", "Value": "v"}]},
                                            "Period": 300, "Stat": "Sum"}, "ReturnData": True},
                {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "M (expected)",
                 "ReturnData": True}]}


def test_the_trigger_of_a_band_alarm_is_the_metric_math_shape():
    message = alarms.notification(BAND_ALARM, None, old="OK", new="ALARM", reason="Thresholds Crossed: ...",
                                  when=0.0, account="123456789012", region="us-east-1")
    assert message["Trigger"] == {
        "Period": 300, "EvaluationPeriods": 2, "DatapointsToAlarm": 2,
        "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "ThresholdMetricId": "ad1",
        "TreatMissingData": "notBreaching", "EvaluateLowSampleCountPercentile": "",
        "Metrics": [{"Id": "m1", "MetricStat": {"Metric": {"Dimensions": [{"value": "v", "name": "k"}],
                                                           "MetricName": "M", "Namespace": "N"},
                                                "Period": 300, "Stat": "Sum"}, "ReturnData": True},
                    {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "M (expected)",
                     "ReturnData": True}]}
    text = alarms.email_text(message)
    assert "outside the band" in text and "- ad1: ANOMALY_DETECTION_BAND(m1, 2)" in text
    assert "- m1: N M [k = v], Sum over 300 seconds" in text


def test_the_trigger_of_an_insight_alarm_has_its_threshold():
    alarm = {"AlarmName": "c", "EvaluationPeriods": 1, "Threshold": 25.0,
             "ComparisonOperator": "GreaterThanOrEqualToThreshold",
             "Metrics": [{"Id": "m1", "Expression": "INSIGHT_RULE_METRIC('r', 'MaxContributorValue')", "Period": 300,
                          "ReturnData": True}]}
    trigger = alarms.notification(alarm, None, old="OK", new="ALARM", reason="r", when=0.0, account="1",
                                  region="us-east-1")["Trigger"]
    assert trigger["Threshold"] == 25.0 and trigger["Period"] == 300 and "ThresholdMetricId" not in trigger
    assert "greater than or equal to 25.0" in alarms.email_text(
        alarms.notification(alarm, None, old="OK", new="ALARM", reason="r", when=0.0, account="1", region="x"))
