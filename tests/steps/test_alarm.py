"""alarm: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.alarm import AlarmSeen, AlarmSpec, AlarmStep, alarm_props

from tests.support.context import make_config
from tests.support.steps import converge_step, destroy_step, parents

STEP = AlarmStep()
PROPS = alarm_props(make_config().alerts.rules[0], "arn:topic")


def test_plan():
    want = {"a": AlarmSpec("a", PROPS)}
    assert [c.action for c in STEP.plan(want, None)] == ["create"]
    assert STEP.plan(want, {"a": AlarmSeen("a", PROPS, "OK", True)}) == []
    (change,) = STEP.plan(want, {"a": AlarmSeen("a", {**PROPS, "Threshold": 5.0}, "OK", True)})
    assert change.reason == "Threshold 5.0 -> 1.0"
    with pytest.raises(OwnershipError):
        STEP.plan(want, {"a": AlarmSeen("a", PROPS, "OK", False)})
    assert STEP.plan({}, {"x": AlarmSeen("x", PROPS, "OK", False)}) == []   # not ours: never deleted
    assert [c.action for c in STEP.plan({}, {"x": AlarmSeen("x", PROPS, "OK", True)})] == ["delete"]


def test_the_alarm_is_the_labs():
    assert {k: PROPS[k] for k in ("Statistic", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                                  "ComparisonOperator", "TreatMissingData")} == {
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching"}
    assert PROPS["AlarmActions"] == PROPS["OKActions"] == ["arn:topic"]


def test_plan_destroy_and_status():
    have = {"a": AlarmSeen("a", PROPS, "ALARM", True), "x": AlarmSeen("x", PROPS, "OK", False)}
    assert [c.params["name"] for c in STEP.plan_destroy(have, DestroyOptions())] == ["a"]
    assert [(a.name, a.state) for a in STEP.status(have).alarms] == [("a", "ALARM"), ("x", "OK")]


def test_apply_then_discover_agree(ctx):
    parents(ctx, "sns")
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert seen.keys() == created.keys() == {"flowwatch-test-ping-deny"}
    assert seen["flowwatch-test-ping-deny"].props["AlarmActions"] == [ctx.stack.topic_arn]
    assert STEP.plan(STEP.desired(ctx), seen) == []
    assert destroy_step(STEP, ctx, seen) == {} == STEP.discover(ctx)


ALL4 = {"detections": ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]}


def _rule(config, name):
    return next(r for r in config.alerts.rules if r.name == name)


def test_an_anomaly_alarm_is_outside_the_band_of_its_metric():
    config = make_config(alerts=ALL4)
    rule = _rule(config, "egress-spike")
    props = alarm_props(rule, "arn:topic")
    assert "MetricName" not in props and "Threshold" not in props
    m1, ad1 = props["Metrics"]
    assert m1["MetricStat"] == {"Metric": {"Namespace": "flowwatch/test", "MetricName": rule.metric},
                                "Period": rule.period, "Stat": "Sum"} and m1["ReturnData"] is True
    assert ad1["Expression"] == f"ANOMALY_DETECTION_BAND(m1, {rule.band:g})" and ad1["ReturnData"] is True
    assert props["ThresholdMetricId"] == ad1["Id"]
    assert props["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    assert props["TreatMissingData"] == "notBreaching"


def test_a_contributors_alarm_reads_the_top_contributor():
    config = make_config(alerts=ALL4)
    rule = _rule(config, "ssh-rdp-probe")
    props = alarm_props(rule, "arn:topic", "flowwatch-test-ssh-rdp-probe")
    (m1,) = props["Metrics"]
    assert m1["Expression"] == "INSIGHT_RULE_METRIC('flowwatch-test-ssh-rdp-probe', 'MaxContributorValue')"
    assert m1["Period"] == rule.period == 300
    assert props["Threshold"] == rule.threshold and props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_metrics_are_compared_normalised():
    config = make_config(alerts=ALL4)
    props = alarm_props(_rule(config, "rejected-spike"), "arn:topic")
    # as DescribeAlarms gives them back: defaults filled in, numbers as floats, another order
    back = [{**props["Metrics"][1]}, {"Id": "m1", "ReturnData": True, "MetricStat": {
        "Metric": {**props["Metrics"][0]["MetricStat"]["Metric"], "Dimensions": []}, "Period": 300.0, "Stat": "Sum"}}]
    want = {"a": AlarmSpec("a", props)}
    assert STEP.plan(want, {"a": AlarmSeen("a", {**props, "Metrics": back}, "OK", True)}) == []
    wider = [dict(m, Expression="ANOMALY_DETECTION_BAND(m1, 4)") if m["Id"] == "ad1" else m for m in back]
    (change,) = STEP.plan(want, {"a": AlarmSeen("a", {**props, "Metrics": wider}, "OK", True)})
    assert "ANOMALY_DETECTION_BAND(m1, 4)" in change.reason and "ANOMALY_DETECTION_BAND(m1, 2)" in change.reason


def test_every_kind_round_trips_and_switching_kind_updates(ctx, session):
    ctx.config = make_config(alerts=ALL4)
    parents(ctx, "sns")
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert seen.keys() == created.keys() and len(seen) == 5
    assert STEP.plan(STEP.desired(ctx), seen) == []
    ctx.config = make_config(alerts={"rules": [{"name": "rejected-spike", "match": {"action": "REJECT"},
                                                "threshold": 3}]})
    (update, *deletes) = STEP.plan(STEP.desired(ctx), seen)
    assert update.action == "update" and update.params["name"] == "flowwatch-test-rejected-spike"
    assert {c.action for c in deletes} == {"delete"} and len(deletes) == 4
    converge_step(STEP, ctx, seen)
    (alarm,) = session.client("cloudwatch").describe_alarms(AlarmNamePrefix="flowwatch-test-")["MetricAlarms"]
    assert (alarm["MetricName"], alarm["Threshold"], alarm.get("Metrics") or []) == ("Rejected-Spike", 3.0, [])
    assert STEP.plan(STEP.desired(ctx), STEP.discover(ctx)) == []
