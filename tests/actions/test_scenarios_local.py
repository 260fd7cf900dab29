"""simulate SCENARIO on the local AWS (a server subprocess): each scenario puts its detection's alarm in ALARM and
only that one, with the ALARM notification in the inbox (the data plane evaluates the anomaly-band and
Contributor Insights alarms)."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest

from flowwatch import engine
from flowwatch.actions import scenarios
from tests.support.context import make_config

pytestmark = pytest.mark.slow

ALL = ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]


@pytest.fixture
def local_ctx(tmp_path):
    from flowwatch.console import Output
    from flowwatch.context import build_context
    from flowwatch.local import process
    from flowwatch.local.client import LocalApi
    from flowwatch.settings import Settings

    directory = tmp_path / "local-aws"
    info, _ = process.start(0, directory)
    try:
        config = make_config(alerts={"email": "ops@example.com", "detections": ALL})
        out = Output(stderr=io.StringIO(), stdout=io.StringIO(), color=False)
        ctx = build_context(Settings(stack="test", local=True), config=config, out=out, endpoint_url=info.url,
                            local_api=LocalApi(info.url))
        engine.up(ctx)
        yield ctx
    finally:
        process.stop(directory)


def states(ctx) -> dict[str, str]:
    names = [ctx.names.alarm(r.name) for r in ctx.config.alerts.rules]
    return {a["AlarmName"]: a["StateValue"] for a in ctx.aws.cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}


@pytest.mark.parametrize("scenario", ["port-scan", "ssh-probe", "reject-spike", "egress-spike"])
def test_each_scenario_fires_its_alarm_and_only_it(local_ctx, scenario):
    ctx = local_ctx
    assert scenarios.run(ctx, scenario, timeout=60) == 0
    alarm = ctx.names.alarm(scenarios.DETECTION[scenario])
    got = states(ctx)
    assert got.pop(alarm) == "ALARM"
    assert "ALARM" not in got.values(), got
    assert any(str(m["subject"]).startswith("ALARM") and alarm in str(m["subject"]) for m in ctx.local_api.inbox())


def test_the_scenarios_one_after_the_other_on_one_stack(local_ctx):
    ctx = local_ctx
    for scenario in ("reject-spike", "port-scan"):
        assert scenarios.run(ctx, scenario, timeout=60) == 0
    got = states(ctx)
    assert got[ctx.names.alarm("egress-spike")] != "ALARM" and got[ctx.names.alarm("ssh-rdp-probe")] != "ALARM"
    now = scenarios.local_now(ctx)
    report = ctx.aws.cloudwatch.get_insight_rule_report(
        RuleName=ctx.names.insight_rule("top-rejected-sources"), StartTime=datetime.fromtimestamp(now - 600, timezone.utc),
        EndTime=datetime.fromtimestamp(now + 60, timezone.utc), Period=300)
    threshold = next(r.threshold for r in ctx.config.alerts.rules if r.name == "top-rejected-sources")
    top = report["Contributors"][0]
    assert top["ApproximateAggregateValue"] >= threshold
