"""metric_filter: pure plans first, then a moto round trip."""

from __future__ import annotations

from flowwatch.model import DestroyOptions
from flowwatch.steps.metric_filter import FilterSeen, FilterSpec, MetricFilterStep

from tests.support.steps import converge_step, destroy_step, parents

STEP = MetricFilterStep()


def test_plan():
    want = {"f": FilterSpec("f", "[a, b=1]", "M", "N", "/g")}
    assert [c.action for c in STEP.plan(want, None)] == ["create"]
    same = {"f": FilterSeen("f", "[a, b=1]", want["f"].transformation(), "/g")}
    assert STEP.plan(want, same) == []
    changed = {"f": FilterSeen("f", "[a, b=2]", want["f"].transformation(), "/g"), "old": FilterSeen("old", "x", {}, "/g")}
    assert [(c.action, c.reason) for c in STEP.plan(want, changed)] == [
        ("update", "pattern differs"), ("delete", "rule no longer configured")]
    other_metric = {"f": FilterSeen("f", "[a, b=1]", {**want["f"].transformation(), "metricName": "X"}, "/g")}
    assert [c.reason for c in STEP.plan(want, other_metric)] == ["metric differs"]


def test_plan_destroy():
    have = {"b": FilterSeen("b", "x", {}, "/g"), "a": FilterSeen("a", "x", {}, "/g")}
    assert [(c.params["name"], c.params["log_group"]) for c in STEP.plan_destroy(have, DestroyOptions())] == [
        ("a", "/g"), ("b", "/g")]


def test_no_log_group_yet_discovers_nothing(ctx):
    assert STEP.discover(ctx) is None


def test_apply_then_discover_agree(ctx):
    parents(ctx, "log_group")
    created = converge_step(STEP, ctx)
    assert STEP.discover(ctx) == created and list(created) == ["flowwatch-test-ping-deny"]
    assert created["flowwatch-test-ping-deny"].pattern.endswith("protocol=1, packets, bytes, start, end, "
                                                                "action=REJECT, log_status]")
    assert destroy_step(STEP, ctx, created) == {} == STEP.discover(ctx)
