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
