"""simulate SCENARIO on the local AWS (a server subprocess): each scenario puts its detection's alarm in ALARM and
only that one, with the ALARM notification in the inbox. Needs the local data plane's evaluation of anomaly-band
and Contributor Insights alarms (branch fw-local): skipped, saying so, on a local AWS without it."""

from __future__ import annotations

import io

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
        from datetime import datetime, timezone

        from flowwatch.errors import error_code

        try:
            ctx.aws.cloudwatch.get_insight_rule_report(RuleName="flowwatch-probe", StartTime=datetime.now(timezone.utc),
                                                       EndTime=datetime.now(timezone.utc), Period=300)
        except Exception as exc:   # moto: NotImplemented (HTTP 500); the data plane: no such rule
            if error_code(exc) not in ("ResourceNotFoundException", "ResourceNotFound"):
                pytest.skip(f"this local AWS does not evaluate Contributor Insights yet (fw-local): "
                            f"{error_code(exc) or type(exc).__name__}")
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
    report = ctx.aws.cloudwatch.get_insight_rule_report(
        RuleName=ctx.names.insight_rule("top-rejected-sources"),
        StartTime=__import__("datetime").datetime.fromtimestamp(scenarios.local_now(ctx) - 600,
                                                                 __import__("datetime").timezone.utc),
        EndTime=__import__("datetime").datetime.fromtimestamp(scenarios.local_now(ctx) + 60,
                                                               __import__("datetime").timezone.utc), Period=300)
    top = report["Contributors"][0]
    assert top["ApproximateAggregateValue"] == 25
