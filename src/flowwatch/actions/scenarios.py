"""flowwatch simulate SCENARIO: the traffic one detection exists for, then the live wait for its alarm.
NOT idempotent: every run adds traffic.

=================  ===========================  ===========================================================
scenario           detection (alarm it fires)   traffic
=================  ===========================  ===========================================================
``ping-reject``    the lab's rule (``ping-deny``)  ``simulate-reject`` itself (same options, same behaviour)
``port-scan``      ``top-rejected-sources``     one outside source REJECTed on ``threshold`` distinct ports
                                                of one VPC address, in one period (one flow per port)
``ssh-probe``      ``ssh-rdp-probe``            one source, ``threshold`` flows to the rule's ports (22 and
                                                3389) on the VPC's addresses, in one period
``reject-spike``   ``rejected-spike``           a baseline, then rejected flows far above its band
``egress-spike``   ``egress-spike``             a baseline, then bytes out of the VPC far above its band
=================  ===========================  ===========================================================

A scenario whose detection is not turned on is refused (exit 2) with the line that turns it on. Every record
is made by :meth:`flowwatch.records.RecordFormat.synth` in the configured record format, with the values
the targeted rule's ``match`` asks for (its conditions as :mod:`flowwatch.matching` reads them: the ports,
the action, ``vpc`` = the stack VPC's block), and checked against that rule's filter pattern before it is
sent (no field position is written here). Sizes come from the rule's knobs (``threshold``, ``period``,
``band``).

Where the traffic goes: locally (``ctx.local``) it is injected through the local flow-log service (the
only mode). On AWS, ``ping-reject`` and ``ssh-probe`` default to the traffic instance, which makes the
traffic itself (``ssh-probe``: it opens TCP connections to ports 22 and 3389 of an unused address of its
own subnet; the VPC's own addresses count, since Contributor Insights cannot exclude a source block);
the others, and ``--mode inject``, write the records into the log group. The run says which.

Keeping the other alarms quiet (all four detections on at once, scenarios run one after the other on the
same stack): only the targeted alarm may go to ALARM.

* Contributors rules count per source and period: a scenario's own source sends ``threshold`` flows to its
  rule and fewer than the other rule's threshold (``ssh-probe``'s flows are REJECTed, as the lab's security
  group has no inbound rule, unless that would give its source ``top-rejected-sources``' threshold of
  rejects: then they are ACCEPTed). ``port-scan`` leaves out the ports of ``ssh-rdp-probe``. Baseline and
  spike traffic comes from many sources, each far below every contributors threshold, to other ports.
* Anomaly alarms compare the period with a band on BOTH sides, and a metric filter reports 0 (its default
  value) in every period with log events but no match, so the baseline must make 0 normal as well as the
  other scenarios' traffic. The baseline alternates a low and a high period around a centre C with a
  deviation d = 0.9 C (values 0.1 C and 1.9 C): a robust model (median, MAD; the local AWS's is
  median ± w * 1.4826 * MAD, flowwatch.local.anomaly) then has a band [C - w*1.48*d, C + w*1.48*d] whose
  lower bound is below 0 for any width w >= 1 (clipped to 0: an empty period is normal) and whose upper
  bound U is at least 3.3 C for the default widths. For ``rejected-spike`` C is the most any other scenario
  rejects in one period (``top-rejected-sources``' threshold, ``ssh-rdp-probe``'s, the 10 pings of
  ping-reject), so those stay inside the band; for ``egress-spike`` C is :data:`EGRESS_CENTER` bytes (a
  quiet small VPC). The spike is 2 U plus the largest value already in the window, clearly outside.
* The baseline covers :data:`BASELINE_PERIODS` periods (more than the local model's minimum training of 12
  periods, ``flowwatch.local.anomaly.MIN_TRAINING``) right before the current one, on the local AWS's
  clock (its ``now``, which ``LocalApi.advance`` moves): records stamped in those past periods, as a VPC
  that had been running for an hour would have them. It is written at once rather than by advancing the
  local clock period by period: the clock only moves forward, the log service (moto) refuses events more
  than 2 hours ahead of the wall clock, and a later simulate-reject stamps wall-clock records, so an
  hour of advance per run would break the next runs. Periods of the window that already hold data
  (an earlier run's baseline or scenario) are kept and not written again, so a second run trains on the
  same kind of baseline instead of doubling it.

On AWS there is no past to write (CloudWatch trains a new detector on real history, for hours): the anomaly
scenarios inject the spike only, sized as above from the metric's periods in the window, and say when the
detector is still training.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flowwatch.actions import simulate
from flowwatch.console import plural
from flowwatch.errors import AwsError, FlowwatchError, UsageError
from flowwatch.model import Context

SCENARIOS = ("ping-reject", "port-scan", "ssh-probe", "reject-spike", "egress-spike")
DETECTION = {"port-scan": "top-rejected-sources", "ssh-probe": "ssh-rdp-probe", "reject-spike": "rejected-spike",
             "egress-spike": "egress-spike"}
ANOMALY_SCENARIOS = ("reject-spike", "egress-spike")
INSTANCE_SCENARIOS = ("ping-reject", "ssh-probe")

BASELINE_PERIODS = 14          # > the local model's minimum training (12 periods)
DEVIATION = 0.9                # d = 0.9 C: low periods 0.1 C, high ones 1.9 C
SIGMA = 1.4826                 # MAD -> standard deviation: how a robust model reads the baseline's spread
EGRESS_CENTER = 250_000        # bytes per period out of the VPC in the baseline (a quiet small VPC)
PING_COUNT = 10                # what ping-reject injects by default (simulate-reject --count)
PER_SOURCE = 2                 # flows per noise source and period: far below any contributors threshold
#: scanned ports, most probed first (flowwatch's list, from what internet scanners try), then 1024 upwards
SCAN_PORTS = (21, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1521, 1723, 2049, 3306,
              5432, 5900, 5985, 6379, 8080, 8443, 9200, 11211, 27017)
NOISE_PORTS = (23, 445, 1433, 8080, 5900, 3306)   # background rejects (none is SSH or RDP)
#: addresses outside any VPC block flowwatch makes: documentation ranges (RFC 5737), then more
OUTSIDE = ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "100.64.0.0/16")
SSH_SECONDS = 180


@dataclass(frozen=True)
class Traffic:
    """What one step of a scenario sends: lines in the record format, and what they are (for the output)."""

    lines: list[str]
    what: str


@dataclass
class Plan:
    """A scenario's traffic, computed before anything is sent (tests read it)."""

    scenario: str
    rule: Any
    mode: str
    baseline: list[Traffic] = field(default_factory=list)
    traffic: list[Traffic] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    user_data: str | None = None          # instance mode: the script


# ---- the command -------------------------------------------------------------------------------

def run(ctx: Context, scenario: str, *, mode: str | None = None, wait: bool = True, timeout: float | None = None,
        count: int = PING_COUNT, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep, output: str = "table", suggest: bool = True) -> int:
    """``flowwatch simulate SCENARIO``. Exit code: 0 when the alarm fired (or not waiting), 1 at the timeout;
    UsageError (2) when the scenario's detection is off or the mode does not apply."""
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    if scenario == "ping-reject":
        return simulate.simulate(ctx, mode=mode, wait=wait, timeout=timeout, count=count, clock=clock, sleep=sleep,
                                 output=output, suggest=suggest)
    rule = detection_rule(ctx, scenario)
    if ctx.local and mode == "instance":
        raise UsageError("the local AWS runs no EC2 instance: use --mode inject (the default with --local)")
    if mode == "instance" and scenario not in INSTANCE_SCENARIOS:
        raise UsageError(f"scenario {scenario} has no instance mode: an instance of the VPC cannot make that "
                         "traffic itself (use --mode inject, its default)")
    mode = mode or ("instance" if scenario in INSTANCE_SCENARIOS and not ctx.local else "inject")
    out = ctx.out
    out.heading(f"simulate {scenario} -> detection {rule.name} ({mode}; not idempotent: every run adds traffic)")
    target = simulate.find_target(ctx)
    alarm = ctx.names.alarm(rule.name)
    before = simulate.alarm_states(ctx, [alarm])
    if not before:
        raise FlowwatchError(f"stack {ctx.stack.name!r} has no alarm {alarm}", hint=simulate.up_first(ctx))
    now = local_now(ctx)
    plan = plan_scenario(ctx, scenario, target, now=now, mode=mode, existing=existing_values(ctx, now))
    done: dict[str, Any] = {"scenario": scenario, "detection": rule.name, "mode": mode, "stack": ctx.stack.name,
                            "alarm": alarm, "instance_id": None, "baseline_records": 0, "records": 0,
                            "state": None, "elapsed_s": None}
    for note in plan.notes:
        out.info(f"  [dim]{note}[/dim]")
    from flowwatch.lock import held

    with held(ctx, ctx.lock):
        for part in plan.baseline:
            send(ctx, target, part)
            done["baseline_records"] += len(part.lines)
        if plan.user_data is not None:
            done["instance_id"] = simulate.launch_instance(
                ctx, target, user_data=plan.user_data,
                doing=f"opens TCP connections to ports 22/3389 of {probe_address(ctx, target)} for "
                      f"{SSH_SECONDS // 60} min")
        for part in plan.traffic:
            send(ctx, target, part)
            done["records"] += len(part.lines)
    if not wait:
        out.info("[dim]not waiting (--no-wait); watch the alarm with `flowwatch watch` or `flowwatch status`[/dim]")
        if output == "json":
            out.json(done)
        return 0
    result = simulate.await_alarm(ctx, [rule], timeout=timeout, clock=clock, sleep=sleep,
                                  aws_delay="flow logs and Contributor Insights take minutes to see the traffic")
    done.update(state=result.state, elapsed_s=round(result.elapsed, 1))
    if output == "json":
        out.json(done)
    if result.state == "ALARM" and before.get(alarm) == "ALARM":
        out.info(f"[yellow]·[/yellow] alarm {alarm} was already in ALARM before this run: its state did not change, "
                 "so no new notification was sent; it returns to OK once a period passes without the traffic")
        return 0
    if result.state == "ALARM":
        out.info(f"[green]✓[/green] alarm {alarm} ({rule.name}) is in [bold red]ALARM[/bold red] after "
                 f"{result.elapsed:.0f} s; it changed state, so its actions were notified")
        if ctx.local_api is not None:
            show_notification(ctx, alarm)
        return 0
    out.error(f"timed out after {result.elapsed:.0f} s: alarm {alarm} is {result.state}, not ALARM",
              "the local AWS evaluates anomaly-band and Contributor Insights alarms in its data plane: check "
              "`flowwatch local status` and `flowwatch --local watch`" if ctx.local else
              "flow-log delivery and Contributor Insights take 5-10 minutes or more; the alarm may still fire: "
              "`flowwatch watch`")
    return 1


def detection_rule(ctx: Context, scenario: str) -> Any:
    """The alert rule of the scenario's detection; UsageError (exit 2) naming how to turn it on."""
    name = DETECTION[scenario]
    for rule in ctx.config.alerts.rules:
        if rule.name == name:
            return rule
    raise UsageError(f"scenario {scenario} needs the detection {name}, which is not turned on in the config",
                     hint=f"add it to alerts.detections (alerts: {{detections: [{name}]}}) and run "
                          f"`flowwatch{' --local' if ctx.local else ''} up`")


def show_notification(ctx: Context, alarm: str) -> None:
    """The ALARM e-mail of ``alarm`` from the local inbox (what AWS would have sent)."""
    assert ctx.local_api is not None
    fired = [m for m in ctx.local_api.inbox()
             if str(m.get("subject", "")).startswith("ALARM") and alarm in str(m.get("subject", ""))]
    if fired:
        ctx.out.notification(fired[-1])
    else:
        ctx.out.warn(f"no ALARM notification of {alarm} in the local inbox yet")


# ---- planning (pure but for the reads handed in) -------------------------------------------------

def local_now(ctx: Context) -> float:
    """Now on the target's clock: the local AWS's (wall clock + what ``advance`` added), else the wall clock."""
    health = getattr(ctx.local_api, "health", None)
    if health is not None:
        doc = health()
        if doc and isinstance(doc.get("now"), (int, float)):
            return float(doc["now"])
    return time.time()


def plan_scenario(ctx: Context, scenario: str, target: simulate.Target, *, now: float, mode: str = "inject",
                  existing: dict[str, dict[int, float]] | None = None) -> Plan:
    """Every record a scenario sends (``existing``: per anomaly rule, the period start -> value already in the
    baseline window; see :func:`existing_values`)."""
    rule = detection_rule(ctx, scenario)
    plan = Plan(scenario, rule, mode)
    gen = Generator(ctx, target)
    existing = existing or {}
    if scenario in ANOMALY_SCENARIOS:
        if ctx.local:
            plan.baseline = baseline(gen, now, existing)
            plan.notes.append(baseline_note(gen, plan.baseline, now, existing))
        elif detector_training(ctx, rule):
            plan.notes.append(f"the anomaly detector of {rule.name} is still training (PENDING_TRAINING): its alarm "
                              "has no band yet; CloudWatch needs hours of the metric's history")
    start = period_start(now, rule.period)
    at = max(start, int(now) - ctx.config.flow_logs.aggregation_seconds)
    if scenario == "port-scan":
        plan.traffic = [gen.port_scan(rule, at)]
    elif scenario == "ssh-probe":
        if mode == "instance":
            plan.user_data = ssh_user_data(probe_address(ctx, target), rule, gen.ports_of(rule, (22, 3389)))
            plan.notes.append("the traffic instance makes the probes itself: TCP connections to ports "
                              f"{'/'.join(map(str, gen.ports_of(rule, (22, 3389))))} of {probe_address(ctx, target)}")
        else:
            plan.traffic = [gen.ssh_probe(rule, at)]
    elif scenario == "reject-spike":
        plan.traffic = [gen.reject_spike(rule, at, spike_size(gen, rule, existing))]
    else:
        plan.traffic = [gen.egress_spike(rule, at, spike_size(gen, rule, existing))]
    if not ctx.local and mode == "inject":
        plan.notes.append("injecting synthetic records into the log group (no EC2 instance can make this traffic "
                          "from inside the VPC)" if scenario not in INSTANCE_SCENARIOS else
                          "injecting synthetic records into the log group (--mode inject)")
    return plan


def period_start(t: float, period: int) -> int:
    return int(t) // period * period


def anomaly_rules(ctx: Context) -> list[Any]:
    return [r for r in ctx.config.alerts.rules if r.kind == "anomaly"]


def center(ctx: Context, rule: Any) -> float:
    """C of the baseline of anomaly rule ``rule`` (module docstring): bytes for a rule summing a field, else
    the most any other scenario puts in one period (so it stays inside the band)."""
    if rule.value is not None:
        return float(EGRESS_CENTER)
    sizes = [float(PING_COUNT)]
    for r in ctx.config.alerts.rules:
        if r.kind == "contributors" and r.threshold is not None:
            sizes.append(float(math.ceil(r.threshold)))
    return max(sizes)


def baseline_values(ctx: Context, rule: Any) -> tuple[float, float]:
    """(low, high): the values of the baseline's periods, alternating."""
    c = center(ctx, rule)
    rounding = math.ceil if rule.value is None else round
    return float(rounding(c * (1 - DEVIATION))), float(rounding(c * (1 + DEVIATION)))


def expected_upper(ctx: Context, rule: Any) -> float:
    """The upper bound a robust model draws over the planned baseline: C + band * 1.4826 * d."""
    c = center(ctx, rule)
    return c + float(rule.band or 2) * SIGMA * DEVIATION * c


def spike_size(gen: "Generator", rule: Any, existing: dict[str, dict[int, float]]) -> int:
    """2 U plus the largest value already in the baseline window (module docstring)."""
    seen = max(existing.get(rule.name, {}).values(), default=0.0)
    return int(math.ceil(2 * expected_upper(gen.ctx, rule) + seen))


def baseline(gen: "Generator", now: float, existing: dict[str, dict[int, float]]) -> list[Traffic]:
    """The normal traffic of the BASELINE_PERIODS periods before the current one, for every anomaly rule on;
    periods that already hold data are left as they are."""
    ctx = gen.ctx
    rules = anomaly_rules(ctx)
    if not rules:
        return []
    period = max(r.period for r in rules)
    current = period_start(now, period)
    taken = [(s, r.period) for r in rules for s in existing.get(r.name, {})]
    parts = []
    for i in range(BASELINE_PERIODS, 0, -1):
        start = current - i * period
        if any(s < start + period and s + length > start for s, length in taken):
            continue
        high = i % 2 == 0
        lines: list[str] = []
        for r in rules:
            low_value, high_value = baseline_values(ctx, r)
            lines += gen.noise(r, start, period, high_value if high else low_value)
        parts.append(Traffic(lines, f"baseline {datetime.fromtimestamp(start, tz=timezone.utc):%H:%M}"))
    return parts


def baseline_note(gen: "Generator", parts: list[Traffic], now: float, existing: dict[str, dict[int, float]]) -> str:
    rules = anomaly_rules(gen.ctx)
    described = "; ".join(f"{r.name}: {baseline_values(gen.ctx, r)[0]:g} / {baseline_values(gen.ctx, r)[1]:g} "
                          f"{'bytes' if r.value else 'flows'} per {r.period} s" for r in rules)
    kept = f", {plural(len({s for v in existing.values() for s in v}), 'period')} already there kept" if existing else ""
    return (f"baseline on the local clock: {plural(len(parts), 'period')} of normal traffic before now "
            f"({described}, alternating){kept}, so each anomaly detector has a band before the spike")


def existing_values(ctx: Context, now: float) -> dict[str, dict[int, float]]:
    """Per anomaly rule, the Sum per period of its metric over the baseline window (periods with data)."""
    found: dict[str, dict[int, float]] = {}
    for rule in anomaly_rules(ctx):
        start = period_start(now, rule.period) - BASELINE_PERIODS * rule.period
        end = period_start(now, rule.period) + rule.period
        try:
            points = ctx.aws.cloudwatch.get_metric_statistics(
                Namespace=rule.namespace, MetricName=rule.metric, StartTime=datetime.fromtimestamp(start, timezone.utc),
                EndTime=datetime.fromtimestamp(end, timezone.utc), Period=rule.period, Statistics=["Sum"])["Datapoints"]
        except Exception as exc:
            raise AwsError.from_client_error(exc, step="simulate", operation="GetMetricStatistics") from None
        values = {period_start(p["Timestamp"].timestamp(), rule.period): float(p.get("Sum", 0.0)) for p in points}
        if values:
            found[rule.name] = values
    return found


def detector_training(ctx: Context, rule: Any) -> bool:
    try:
        found = ctx.aws.cloudwatch.describe_anomaly_detectors(Namespace=rule.namespace, MetricName=rule.metric)
    except Exception:
        return False
    return any(d.get("StateValue") == "PENDING_TRAINING" for d in found.get("AnomalyDetectors", []))


# ---- the records -------------------------------------------------------------------------------

class Generator:
    """Records of the stack's subnet in the configured format, with the values a rule's match asks for."""

    def __init__(self, ctx: Context, target: simulate.Target) -> None:
        import random

        self.ctx = ctx
        self.target = target
        self.fmt = ctx.config.record_format
        self.vpc = ipaddress.IPv4Network(vpc_block(ctx), strict=False)
        subnet = ipaddress.IPv4Network(target.cidr)
        self.hosts = [str(subnet[i]) for i in range(10, min(subnet.num_addresses - 1, 20))]
        self.outside = [str(a) for block in OUTSIDE for a in ipaddress.IPv4Network(block).hosts()
                        if ipaddress.IPv4Address(a) not in self.vpc]
        self.rng = random.Random(0)
        self.eni = simulate.synthetic_eni(target.subnet_id)
        self.agg = ctx.config.flow_logs.aggregation_seconds

    # the rule's match, read through flowwatch.matching
    def conditions(self, rule: Any) -> dict[str, Any]:
        conds = self.fmt.match_conditions(rule.match or {}, vpc_cidr=str(self.vpc)) if rule.match else {}
        return {self.fmt.fields[i]: c for i, c in conds.items()}

    def wanted(self, rule: Any, name: str, default: Any) -> Any:
        """The value the rule's match asks for on ``name`` (a single '=' value), else ``default``."""
        cond = self.conditions(rule).get(name)
        if cond is None or cond.op != "=" or cond.wild or len(cond.values) != 1:
            return default
        value = cond.values[0]
        return int(value) if value.lstrip("-").isdigit() else value

    def ports_of(self, rule: Any, default: Sequence[int]) -> list[int]:
        cond = self.conditions(rule).get("dstport")
        if cond is None or cond.op != "=" or cond.wild:
            return list(default)
        return [int(v) for v in cond.values]

    def avoided_ports(self, rule: Any) -> set[int]:
        """Ports other rules (than ``rule``) single out: a scan or noise leaves them out."""
        avoid: set[int] = set()
        for r in self.ctx.config.alerts.rules:
            if r is not rule and r.match and "dstport" in self.fmt:
                avoid |= {int(v) for v in getattr(self.conditions(r).get("dstport"), "values", ()) if v.isdigit()}
        return avoid

    def record(self, *, src: str, dst: str, start: int, protocol: int = 6, action: str = "REJECT",
               dstport: int | None = None, nbytes: int | None = None, count: int = 1) -> list[str]:
        overrides: dict[str, Any] = {}
        if nbytes is not None and "bytes" in self.fmt:
            overrides["bytes"] = nbytes
            if "packets" in self.fmt:
                overrides["packets"] = max(1, nbytes // 1400)
        inbound = ipaddress.IPv4Address(dst) in self.vpc and ipaddress.IPv4Address(src) not in self.vpc
        return self.fmt.synth(
            account=self.ctx.account, eni=self.eni, srcaddr=src, dstaddr=dst, protocol=protocol,
            action="ACCEPT" if action == "ACCEPT" else "REJECT", start=start, end=start + self.agg, count=count,
            rng=self.rng, vpc_id=self.target.vpc_id, subnet_id=self.target.subnet_id, region=self.ctx.region,
            az_id=self.target.az_id, dstport=dstport, flow_direction="ingress" if inbound else "egress",
            overrides=overrides)

    def checked(self, rule: Any, lines: list[str], what: str) -> Traffic:
        """The lines, after checking each matches ``rule``'s filter pattern (UsageError when the rule's match
        asks for traffic the scenario cannot make)."""
        from flowwatch.patterns import compile_pattern

        pattern = compile_pattern(self.fmt.filter_pattern(rule.match or {}, vpc_cidr=str(self.vpc))
                                  if rule.pattern is None else rule.pattern)
        bad = [line for line in lines if not pattern.matches(line)]
        if bad:
            raise UsageError(f"rule {rule.name}: its match {rule.match or rule.pattern} does not select the "
                             f"{what} this scenario makes (e.g. {bad[0]!r})",
                             hint="the scenarios follow the built-in detection's match; keep its fields")
        return Traffic(lines, what)

    def port_scan(self, rule: Any, at: int) -> Traffic:
        """One outside source, ``threshold`` distinct ports of one VPC address, one REJECTed flow each."""
        n = int(math.ceil(rule.threshold or 1))
        avoid = self.avoided_ports(rule)
        ports = [p for p in (*SCAN_PORTS, *range(1024, 65536)) if p not in avoid][:n]
        src, dst = self.outside[7], self.hosts[0]
        per = self.value_per_flow(rule, n)
        action = self.wanted(rule, "action", "REJECT")
        protocol = self.wanted(rule, "protocol", 6)
        lines = [line for port in ports
                 for line in self.record(src=src, dst=dst, start=at, protocol=protocol, action=action, dstport=port,
                                         nbytes=per)]
        return self.checked(rule, lines, f"port scan: {src} -> {dst} on {plural(n, 'distinct port')}")

    def ssh_probe(self, rule: Any, at: int) -> Traffic:
        """One outside source, ``threshold`` flows to the rule's ports on VPC addresses."""
        n = int(math.ceil(rule.threshold or 1))
        ports = self.ports_of(rule, (22, 3389))
        src = self.outside[23]
        action = self.wanted(rule, "action", None) or self.probe_action(n)
        per = self.value_per_flow(rule, n)
        lines = [line for i in range(n)
                 for line in self.record(src=src, dst=self.hosts[i % len(self.hosts)], start=at, action=action,
                                         dstport=ports[i % len(ports)], nbytes=per,
                                         protocol=self.wanted(rule, "protocol", 6))]
        return self.checked(rule, lines, f"SSH/RDP probe: {src} -> the VPC's addresses, {plural(n, 'flow')} to "
                                         f"port {'/'.join(map(str, ports))} ({action})")

    def probe_action(self, flows: int) -> str:
        """REJECT (no inbound rule), unless that many rejects from one source would reach a contributors rule
        over rejects (top-rejected-sources): then ACCEPT."""
        for r in self.ctx.config.alerts.rules:
            if (r.kind == "contributors" and r.name != DETECTION["ssh-probe"]
                    and self.wanted(r, "action", None) == "REJECT" and flows >= (r.threshold or 0)):
                return "ACCEPT"
        return "REJECT"

    def value_per_flow(self, rule: Any, flows: int) -> int | None:
        """A contributors rule summing a field: each flow's share of the threshold."""
        if rule.value is None:
            return None
        return int(math.ceil((rule.threshold or 1) / flows))

    def noise(self, rule: Any, start: int, period: int, value: float) -> list[str]:
        """``value`` of anomaly rule ``rule`` spread over the period: rejected flows from many sources
        (PER_SOURCE each), or bytes out of the VPC in a few flows."""
        minutes = max(1, period // 60)
        if rule.value is not None:
            flows = max(1, min(10, int(value) // 10_000))
            share = int(value) // flows
            rest = int(value) - share * flows
            lines: list[str] = []
            for i in range(flows):
                lines += self.record(src=self.hosts[i % len(self.hosts)], dst=self.outside[300 + i % 40],
                                     start=start + 60 * (i % minutes), action="ACCEPT", dstport=443,
                                     nbytes=share + (rest if i == 0 else 0))
            return self.checked(rule, lines, "baseline egress").lines
        n = int(value)
        ports = [p for p in NOISE_PORTS if p not in self.avoided_ports(rule)] or [8080]
        action = self.wanted(rule, "action", "REJECT")
        lines = [line for i in range(n)
                 for line in self.record(src=self.outside[100 + (i // PER_SOURCE) % 150],
                                         dst=self.hosts[i % len(self.hosts)], start=start + 60 * (i % minutes),
                                         action=action, dstport=ports[i % len(ports)],
                                         protocol=self.wanted(rule, "protocol", 6))]
        return self.checked(rule, lines, "baseline rejects").lines

    def reject_spike(self, rule: Any, at: int, size: int) -> Traffic:
        """``size`` rejected flows in one period from many sources, each below every contributors threshold."""
        per = max(1, min(5, int(min((r.threshold or 10) for r in self.ctx.config.alerts.rules
                                    if r.kind == "contributors") // 3) if any(
            r.kind == "contributors" for r in self.ctx.config.alerts.rules) else 5))
        ports = [p for p in NOISE_PORTS if p not in self.avoided_ports(rule)] or [8080]
        action = self.wanted(rule, "action", "REJECT")
        lines = [line for i in range(size)
                 for line in self.record(src=self.outside[400 + (i // per) % 2000], dst=self.hosts[i % len(self.hosts)],
                                         start=at, action=action, dstport=ports[i % len(ports)],
                                         protocol=self.wanted(rule, "protocol", 6))]
        return self.checked(rule, lines, f"reject spike: {plural(size, 'rejected flow')} from "
                                         f"{plural(math.ceil(size / per), 'source')} in one period")

    def egress_spike(self, rule: Any, at: int, size: int) -> Traffic:
        """``size`` bytes from one VPC host to a few outside addresses, in one period."""
        flows = 20
        share = size // flows + 1
        lines = [line for i in range(flows)
                 for line in self.record(src=self.hosts[0], dst=self.outside[500 + i % 4], start=at, action="ACCEPT",
                                         dstport=443, nbytes=share)]
        return self.checked(rule, lines, f"egress spike: {share * flows:,} bytes from {self.hosts[0]} out of the VPC "
                                         f"in {plural(flows, 'flow')}")


def vpc_block(ctx: Context) -> str:
    """The stack VPC's CIDR block (what ``vpc`` means in a match)."""
    from flowwatch.steps.base import vpc_cidr

    return vpc_cidr(ctx) or ctx.config.network.vpc_cidr


def probe_address(ctx: Context, target: simulate.Target) -> str:
    """The unused address of the subnet that the traffic instance probes (no host answers there)."""
    subnet = ipaddress.IPv4Network(target.cidr)
    return str(subnet[subnet.num_addresses - 2])


def ssh_user_data(address: str, rule: Any, ports: Sequence[int]) -> str:
    attempts = max(1, int(math.ceil(rule.threshold or 1))) * 2
    plist = " ".join(map(str, ports))
    return f"""#!/bin/bash
# flowwatch simulate ssh-probe: {attempts} TCP connection attempts to ports {plist} of {address} (no host answers
# there), one flow each, spread over {SSH_SECONDS // 60} minutes: the flows the ssh-rdp-probe detection counts.
for i in $(seq 1 {attempts}); do
  for port in {plist}; do timeout 2 bash -c "</dev/tcp/{address}/$port" 2>/dev/null || true; done
  sleep {max(1, SSH_SECONDS // attempts)}
done
shutdown -h now
"""


# ---- sending -----------------------------------------------------------------------------------

def send(ctx: Context, target: simulate.Target, part: Traffic) -> None:
    """Deliver ``part``'s lines: the local flow-log service, or the stack's log group on AWS."""
    if not part.lines:
        return
    eni = simulate.synthetic_eni(target.subnet_id)
    if ctx.local_api is not None:
        result = ctx.local_api.traffic(region=ctx.region, fields=ctx.config.record_format.fields, lines=part.lines,
                                       eni=eni, vpc_id=target.vpc_id, subnet_id=target.subnet_id)
        if not result["deliveries"]:
            raise FlowwatchError(f"no flow log of stack {ctx.stack.name!r} covers {eni}: nothing was delivered",
                                 hint=simulate.up_first(ctx))
        errors = [d["error"] for d in result["deliveries"] if d.get("error")]
        for error in errors:
            ctx.out.warn(error)
        ctx.out.info(f"  [green]+[/green] {part.what}: {plural(len(part.lines), 'record')} -> "
                     f"{plural(len(result['deliveries']) - len(errors), 'flow log')}")
        return
    put_log_events(ctx, eni, part.lines)
    ctx.out.info(f"  [green]+[/green] {part.what}: {plural(len(part.lines), 'synthetic record')} -> log group "
                 f"{ctx.log_group}")


def put_log_events(ctx: Context, eni: str, lines: list[str]) -> None:
    from flowwatch.errors import error_code

    logs = ctx.aws.logs
    stream = f"{eni}-all"
    try:
        logs.create_log_stream(logGroupName=ctx.log_group, logStreamName=stream)
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            raise FlowwatchError(f"log group {ctx.log_group} does not exist", hint=simulate.up_first(ctx)) from None
        if code != "ResourceAlreadyExistsException":
            raise AwsError.from_client_error(exc, step="simulate", operation="CreateLogStream") from None
    fmt = ctx.config.record_format
    at = fmt.index("start") if "start" in fmt else None
    now_ms = int(time.time() * 1000)
    stamped = sorted((int(line.split()[at]) * 1000 if at is not None else now_ms, line) for line in lines)
    events: list[dict[str, Any]] = [{"timestamp": ms, "message": line} for ms, line in stamped]
    for i in range(0, len(events), 10_000):
        try:
            logs.put_log_events(logGroupName=ctx.log_group, logStreamName=stream, logEvents=events[i:i + 10_000])
        except Exception as exc:
            raise AwsError.from_client_error(exc, step="simulate", operation="PutLogEvents") from None

