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


def test_only_threshold_and_anomaly_rules_get_filters_and_value_sums_its_column(ctx):
    from tests.support.context import make_config

    ctx.config = make_config(alerts={"detections": ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe",
                                                    "egress-spike"]})
    want = STEP.desired(ctx)
    assert sorted(want) == ["flowwatch-test-egress-spike", "flowwatch-test-ping-deny", "flowwatch-test-rejected-spike"]
    egress = want["flowwatch-test-egress-spike"]
    assert egress.transformation()["metricValue"] == "$bytes" and egress.transformation()["defaultValue"] == 0
    assert want["flowwatch-test-rejected-spike"].transformation()["metricValue"] == "1"
    # the configured VPC block (10.0.0.0/24): from the VPC, to anywhere else
    assert "srcaddr=10.0.0.*" in egress.pattern and "dstaddr!=10.0.0.*" in egress.pattern
    assert ", bytes," in egress.pattern       # $bytes names a field the pattern names


def test_an_adopted_vpc_lends_its_own_block(session):
    from flowwatch import engine

    from tests.support.context import make_config, make_ctx

    vpc = session.client("ec2").create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    config = make_config(network={"vpc_id": vpc, "subnet_cidr": "10.20.1.0/24"},
                         alerts={"detections": ["egress-spike"]})
    ctx = make_ctx(session, config)
    engine.converge(ctx, "log_group")          # the vpc step (read only) publishes the adopted VPC's block
    assert ctx.stack.vpc_cidr == "10.20.0.0/16"
    pattern = STEP.desired(ctx)["flowwatch-test-egress-spike"].pattern
    assert "srcaddr=10.20.*" in pattern and "10.0.0." not in pattern
