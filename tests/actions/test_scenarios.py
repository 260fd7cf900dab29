"""simulate SCENARIO: each scenario's traffic, checked with the evaluators the local AWS runs (flowwatch.patterns
for metric filters, local/contributors.py for Contributor Insights, local/anomaly.py for bands): it reaches its
own detection's threshold or band and stays below every other rule's; refusal when the detection is off; the
CLI wiring. Planning is pure (a Target handed in), so most cases need no AWS at all.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from typing import Any

import pytest

from flowwatch.actions import scenarios, simulate
from flowwatch.errors import UsageError
from flowwatch.local import anomaly
from flowwatch.local.contributors import Evaluator, parse_rule
from flowwatch.patterns import compile_pattern
from flowwatch.steps.insight_rule import rule_definition
from flowwatch.steps.metric_filter import metric_value, rule_pattern
from tests.support.cli import run_cli

ALL = ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]
NOW = 1_767_225_900.0 + 137          # 2026-01-01 00:07:17 UTC: inside a 300 s period


class FakeAws:
    account = "123456789012"
    partition = "aws"


def ctx_of(detections: list[Any] | None = None, fmt: Any = "v2", *, local: bool = True, **extra: Any):
    from flowwatch.console import Output
    from flowwatch.model import Context, Stack
    from flowwatch.naming import Names
    from tests.support.context import make_config

    alerts = {"detections": ALL if detections is None else detections}
    config = make_config(alerts=alerts, flow_logs={"format": fmt}, **extra)
    stack = Stack(config.stack, account="123456789012")
    return Context(config=config, aws=FakeAws(), out=Output(stderr=io.StringIO(), stdout=io.StringIO(), color=False),
                   names=Names.from_config(config), stack=stack, local=local)


TARGET = simulate.Target(vpc_id="vpc-0abc", subnet_id="subnet-0abc", cidr="10.0.0.0/26", az_id="use1-az1")


def lines_by_period(ctx, plan) -> tuple[list[str], list[str]]:
    return ([line for part in plan.baseline for line in part.lines],
            [line for part in plan.traffic for line in part.lines])


def start_of(ctx, line: str) -> int:
    return int(line.split()[ctx.config.record_format.index("start")])


def metric_sums(ctx, rule, lines: list[str]) -> dict[int, float]:
    """What the rule's metric filter puts, per period of the rule (Sum)."""
    pattern = compile_pattern(rule_pattern(ctx, rule))
    value = metric_value(ctx, rule)
    column = value[1:] if value.startswith("$") else None
    sums: dict[int, float] = defaultdict(float)
    for line in lines:
        match = pattern.matches(line)
        if match:
            amount = 1.0
            if column is not None:
                amount = float(line.split()[ctx.config.record_format.index(column)])
            sums[start_of(ctx, line) // rule.period * rule.period] += amount
    return dict(sums)


def top_contributor(ctx, rule, lines: list[str]) -> dict[int, float]:
    """MaxContributorValue per period of the rule's Contributor Insights rule (the local evaluator)."""
    definition = rule_definition(ctx.config.record_format, rule, ctx.log_group, ctx.config.network.vpc_cidr)
    ev = Evaluator({rule.name: parse_rule(definition)})
    ev.feed(ctx.log_group, [(start_of(ctx, line) * 1000, line) for line in lines])
    periods = {start_of(ctx, line) // rule.period * rule.period for line in lines}
    values = {p: ev.series[rule.name].metric("MaxContributorValue", p, rule.period) for p in periods}
    return {p: v for p, v in values.items() if v is not None}


def fired(ctx, baseline: list[str], traffic: list[str]) -> dict[str, bool]:
    """Which rule's alarm the traffic's period would put in ALARM, the baseline's periods being history."""
    result = {}
    everything = baseline + traffic
    for rule in ctx.config.alerts.rules:
        if rule.kind == "contributors":
            tops = top_contributor(ctx, rule, everything)
            assert all(v < rule.threshold for p, v in tops.items() if any(start_of(ctx, l) // rule.period *
                       rule.period == p for l in baseline) and not any(
                       start_of(ctx, l) // rule.period * rule.period == p for l in traffic)), rule.name
            result[rule.name] = any(v >= rule.threshold for v in tops.values())
        elif rule.kind == "threshold":
            result[rule.name] = any(v >= rule.threshold for v in metric_sums(ctx, rule, everything).values())
        else:
            history = metric_sums(ctx, rule, baseline)
            now_period = int(NOW) // rule.period * rule.period
            current = metric_sums(ctx, rule, traffic).get(now_period, 0.0)
            b = anomaly.band(sorted(history.items()), now_period, rule.period, rule.band)
            assert b is not None, f"{rule.name}: no band: the baseline does not train the detector"
            # every baseline period is inside the band the periods before it give
            for start, value in history.items():
                earlier = anomaly.band(sorted(history.items()), start, rule.period, rule.band)
                assert earlier is None or earlier.lower <= value <= earlier.upper, (rule.name, start, value, earlier)
            result[rule.name] = not b.lower <= current <= b.upper
    return result


@pytest.mark.parametrize("fmt", ["v2", "v5"])
@pytest.mark.parametrize("scenario", ["port-scan", "ssh-probe", "reject-spike", "egress-spike"])
def test_each_scenario_fires_its_detection_and_only_it(scenario, fmt):
    ctx = ctx_of(fmt=fmt)
    plan = scenarios.plan_scenario(ctx, scenario, TARGET, now=NOW)
    baseline, traffic = lines_by_period(ctx, plan)
    if scenario in scenarios.ANOMALY_SCENARIOS:
        assert len(plan.baseline) == scenarios.BASELINE_PERIODS > anomaly.MIN_TRAINING
    else:
        # the other scenarios meet a trained stack: the baseline another run left
        baseline = [line for part in scenarios.baseline(scenarios.Generator(ctx, TARGET), NOW, {})
                    for line in part.lines]
    assert traffic
    assert fired(ctx, baseline, traffic) == {r.name: r.name == scenarios.DETECTION[scenario]
                                             for r in ctx.config.alerts.rules}
    assert all(start_of(ctx, line) < NOW for line in baseline)      # the past, on the local clock


def test_port_scan_is_one_source_on_threshold_distinct_ports_without_ssh_rdp():
    ctx = ctx_of()
    rule = scenarios.detection_rule(ctx, "port-scan")
    (part,) = scenarios.plan_scenario(ctx, "port-scan", TARGET, now=NOW).traffic
    fmt = ctx.config.record_format
    rows = [line.split() for line in part.lines]
    assert {r[fmt.index("srcaddr")] for r in rows} == {scenarios.Generator(ctx, TARGET).outside[7]}
    ports = [int(r[fmt.index("dstport")]) for r in rows]
    assert len(set(ports)) == len(ports) == rule.threshold == 25
    assert not {22, 3389} & set(ports)
    assert {r[fmt.index("action")] for r in rows} == {"REJECT"}


def test_sizes_follow_the_rules_knobs():
    ctx = ctx_of([{"name": "top-rejected-sources", "threshold": 40}, {"name": "ssh-rdp-probe", "threshold": 3},
                  {"name": "rejected-spike", "band": 4}, "egress-spike"])
    scan = scenarios.plan_scenario(ctx, "port-scan", TARGET, now=NOW).traffic[0]
    assert len(scan.lines) == 40
    probe = scenarios.plan_scenario(ctx, "ssh-probe", TARGET, now=NOW).traffic[0]
    assert len(probe.lines) == 3
    spike = scenarios.plan_scenario(ctx, "reject-spike", TARGET, now=NOW)
    rule = scenarios.detection_rule(ctx, "reject-spike")
    assert scenarios.center(ctx, rule) == 40                                  # the largest other scenario
    assert len(spike.traffic[0].lines) == math.ceil(2 * (40 + 4 * scenarios.SIGMA * scenarios.DEVIATION * 40))
    baseline, traffic = lines_by_period(ctx, spike)
    assert fired(ctx, baseline, traffic)["rejected-spike"]


def test_ssh_probe_would_reach_top_rejected_sources_so_it_is_accepted():
    ctx = ctx_of([{"name": "top-rejected-sources", "threshold": 5}, "ssh-rdp-probe"])
    (part,) = scenarios.plan_scenario(ctx, "ssh-probe", TARGET, now=NOW).traffic
    fmt = ctx.config.record_format
    assert {line.split()[fmt.index("action")] for line in part.lines} == {"ACCEPT"}
    assert fired(ctx, [], part.lines) == {"ping-deny": False, "top-rejected-sources": False, "ssh-rdp-probe": True}


def test_a_second_run_keeps_the_baseline_it_finds():
    ctx = ctx_of()
    gen = scenarios.Generator(ctx, TARGET)
    current = int(NOW) // 300 * 300
    existing = {"rejected-spike": {current - 300 * i: 30.0 for i in range(1, 15)}}
    assert scenarios.baseline(gen, NOW, existing) == []
    partial = {"rejected-spike": {current - 300: 200.0}}
    assert len(scenarios.baseline(gen, NOW, partial)) == scenarios.BASELINE_PERIODS - 1
    rule = scenarios.detection_rule(ctx, "reject-spike")
    assert scenarios.spike_size(gen, rule, partial) == math.ceil(2 * scenarios.expected_upper(ctx, rule) + 200)


@pytest.mark.parametrize("scenario", ["port-scan", "ssh-probe", "reject-spike", "egress-spike"])
def test_a_scenario_whose_detection_is_off_is_refused(scenario):
    ctx = ctx_of([])
    with pytest.raises(UsageError) as err:
        scenarios.run(ctx, scenario)
    assert err.value.exit_code == 2
    detection = scenarios.DETECTION[scenario]
    assert f"needs the detection {detection}, which is not turned on" in str(err.value)
    assert f"alerts.detections (alerts: {{detections: [{detection}]}})" in err.value.hint


def test_instance_mode_only_where_the_instance_makes_the_traffic():
    with pytest.raises(UsageError, match="no instance mode"):
        scenarios.run(ctx_of(local=False), "port-scan", mode="instance")
    with pytest.raises(UsageError, match="runs no EC2 instance"):
        scenarios.run(ctx_of(), "ssh-probe", mode="instance")


def test_ssh_probe_on_aws_is_made_by_the_instance():
    ctx = ctx_of(local=False)
    plan = scenarios.plan_scenario(ctx, "ssh-probe", TARGET, now=NOW, mode="instance")
    assert plan.traffic == [] and plan.baseline == []
    assert "/dev/tcp/10.0.0.62/$port" in plan.user_data and "for port in 22 3389" in plan.user_data
    assert "seq 1 20" in plan.user_data and "shutdown -h now" in plan.user_data
    assert any("the traffic instance makes the probes itself" in n for n in plan.notes)
    inject = scenarios.plan_scenario(ctx, "reject-spike", TARGET, now=NOW, mode="inject")
    assert inject.baseline == []                                   # no past to write on AWS
    assert any("no EC2 instance can make this traffic" in n for n in inject.notes)


def test_cli_refuses_a_scenario_that_is_off(tmp_path, capsys, monkeypatch):
    config = tmp_path / "flowwatch.yaml"
    config.write_text("stack: lab\n")
    result = run_cli(capsys, monkeypatch, "--config", str(config), "simulate", "port-scan")
    assert result.code == 2
    assert "scenario port-scan needs the detection top-rejected-sources, which is not turned on" in result.err
    assert "alerts.detections" in result.err


def test_cli_lists_the_scenarios(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "simulate", "--help")
    assert result.code == 0
    for name in scenarios.SCENARIOS:
        assert name in result.out
    bad = run_cli(capsys, monkeypatch, "simulate", "nope")
    assert bad.code == 2 and "nope" in bad.err
