"""simulate-reject: make forbidden traffic happen, then watch the alarm fire. NOT idempotent: every
run adds traffic (and, in instance mode, may launch an instance).

Modes:

* ``instance`` (default on AWS): converge the NACL step (rule 90 denies ICMP egress), then launch
  one ``t3.micro`` in the stack's subnet from the current Amazon Linux 2023 SSM parameter, with
  IMDSv2 required, no key pair, the security group ``names.security_group`` (step tag
  ``security_group``, NO inbound rule; an inbound rule found on it is revoked) and user data
  that pings a public address for five minutes and then shuts the instance down
  (InstanceInitiatedShutdownBehavior=terminate, so it stops costing by itself). The instance is
  named ``names.instance`` and carries the step tag ``instance``; ``down`` removes it and the
  security group. A traffic instance still pending/running is reused, not doubled.
* ``inject``: synthetic REJECTed ICMP records (ACCEPTed ones when ``nacl.deny_icmp_egress`` is false: with no
  deny rule that is what the pings get; then no alarm fires and the run says so instead of waiting) in the
  configured record format (``RecordFormat.synth``) from an address of the subnet to that public address, on a synthetic
  ENI of the subnet. On AWS they are written into the stack's log group, one stream per ENI
  (``<eni>-all``, like the flow-log service), so the metric filter sees them at once. On the
  local AWS they are handed to the local flow-log service through ``ctx.local_api.traffic``
  (``POST /_flowwatch/traffic``), which delivers them to every flow log of the VPC: the log group
  AND the S3 bucket. Locally this is the only mode (moto runs no instance).

Then, unless ``--no-wait``, :func:`wait_for_alarm` watches the stack's alarms with a live line
(state, datapoints so far, elapsed time) until one is in ALARM (exit 0) or the timeout (exit 1;
default 15 min on AWS, 2 min locally). It is the same code on AWS and locally: DescribeAlarms +
GetMetricStatistics, with an injectable clock and sleep for tests.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from flowwatch.console import plural, safe
from flowwatch.errors import error_code
from flowwatch.errors import AwsError, FlowwatchError, OwnershipError, UsageError
from flowwatch.model import Context
from flowwatch.naming import tag_filters, tag_spec
from flowwatch.polling import Poll

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
INSTANCE_TYPE = "t3.micro"
PING_TARGET = "8.8.8.8"
PING_SECONDS = 300
AWS_TIMEOUT = 900
LOCAL_TIMEOUT = 120
USER_DATA = f"""#!/bin/bash
# flowwatch simulate-reject: ping a public address for {PING_SECONDS // 60} minutes. The subnet's network ACL
# denies ICMP egress (rule 90), so every echo request is REJECTed and lands in the flow logs.
ping -c {PING_SECONDS} -i 1 {PING_TARGET} || true
shutdown -h now
"""


@dataclass(frozen=True)
class Target:
    vpc_id: str
    subnet_id: str
    cidr: str
    az_id: str | None


@dataclass(frozen=True)
class WaitResult:
    state: str                 # ALARM, or the last state seen at the timeout
    alarm: str
    elapsed: float
    datapoints: int
    total: float = 0.0         # Sum of the alarm's metric over the datapoints seen
    peak: float = 0.0          # the largest Sum of one period: what the alarm compares with its threshold
    threshold: float | None = None
    metric: str = ""           # "<namespace>/<metric>"
    period: int = 60


def simulate(ctx: Context, *, mode: str | None = None, wait: bool = True, timeout: float | None = None,
             count: int = 10, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep, suggest: bool = True, output: str = "table") -> int:
    """Exit code: 0 when the alarm fired (or not waiting, or no alarm can fire), 1 at the timeout.
    ``suggest``: name follow-up commands (the demo says no when its server is gone afterwards).
    ``output="json"``: also what was done as one JSON object on stdout (README.md "JSON output")."""
    if ctx.local and mode == "instance":
        raise UsageError("the local AWS runs no EC2 instance: use --mode inject (the default with --local)")
    mode = mode or ("inject" if ctx.local else "instance")
    out = ctx.out
    out.heading(f"simulate-reject ({mode}; not idempotent: every run adds traffic)")
    target = find_target(ctx)
    action = ping_action(ctx)
    rules = rules_seeing(ctx, target, action)
    states = alarm_states(ctx, [ctx.names.alarm(r.name) for r in rules]) if rules else {}
    done: dict[str, Any] = {"mode": mode, "stack": ctx.stack.name, "region": ctx.region, "vpc_id": target.vpc_id,
                            "subnet_id": target.subnet_id, "instance_id": None, "action": action, "injected": None,
                            "waited": wait and bool(rules), "alarm": None, "state": None, "elapsed_s": None,
                            "datapoints": None}
    from flowwatch.lock import held

    with held(ctx, ctx.lock):                  # the mutating part only: not the wait for the alarm
        if mode == "instance":
            done["instance_id"] = launch_instance(ctx, target)
        else:
            done["injected"] = inject(ctx, target, count, action)
    if not rules:
        out.info(no_alarm_will_fire(ctx, action))
        if output == "json":
            out.json(done)
        return 0
    if not wait:
        out.info("[dim]not waiting (--no-wait); watch the alarm with `flowwatch status`[/dim]")
        if output == "json":
            out.json(done)
        return 0
    result = await_alarm(ctx, rules, timeout=timeout, clock=clock, sleep=sleep,
                         aws_delay="flow logs deliver records 5-10 minutes after the traffic (aggregation interval "
                                   "+ delivery), then the metric filter and alarm react")
    if output == "json":
        out.json({**done, "alarm": result.alarm, "state": result.state, "elapsed_s": round(result.elapsed, 1),
                  "datapoints": result.datapoints})
    if result.state == "ALARM" and states.get(result.alarm) == "ALARM":
        out.info(f"[yellow]·[/yellow] alarm {result.alarm} was already in ALARM before this run: its state did not "
                 "change, so no new notification was sent (alarm actions run on state changes only). It returns "
                 f"to OK after a period of {result.period} s with no matching record; run simulate-reject again "
                 "then to see it fire")
        return 0
    if result.state == "ALARM":
        out.info(f"[green]✓[/green] alarm {result.alarm} is in [bold red]ALARM[/bold red] after "
                 f"{result.elapsed:.0f} s ({plural(result.datapoints, 'datapoint')}); it changed state, so its actions "
                 "were notified" + (" — see `flowwatch --local local inbox`" if ctx.local and suggest else ""))
        return 0
    message, hint = timed_out(ctx, result)
    out.error(message, hint)
    return 1


def await_alarm(ctx: Context, rules: list[Any], *, timeout: float | None, aws_delay: str,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
                ) -> WaitResult:
    """The live wait until the rules' alarm is in ALARM (``timeout``: seconds, default by where it runs); on
    AWS it first says how long and why (``aws_delay``: what makes AWS slow to see the traffic)."""
    limit = timeout or (LOCAL_TIMEOUT if ctx.local else AWS_TIMEOUT)
    if not ctx.local:
        ctx.out.info(f"[dim]waiting up to {limit // 60:.0f} min: on AWS, {aws_delay}[/dim]")
    return wait_for_alarm(ctx, timeout=limit, clock=clock, sleep=sleep, interval=0.5 if ctx.local else 10.0,
                          rules=rules)


def timed_out(ctx: Context, result: WaitResult) -> tuple[str, str]:
    """The timeout's line and hint: below the threshold, the alarm had nothing to fire on (say how far off it
    is); at or above it, the alarm's evaluation (or, on AWS, delivery) is what is late."""
    head = f"timed out after {result.elapsed:.0f} s: alarm {result.alarm} is {result.state}, not ALARM"
    if result.threshold is not None and result.peak < result.threshold:
        head += (f"; its metric {result.metric} reached {result.peak:g} in one {result.period} s period "
                 f"(sum {result.total:g} over {plural(result.datapoints, 'datapoint')}), below the threshold "
                 f"{result.threshold:g}, so the alarm had nothing to fire on")
        if result.total == 0:
            hint = ("no record matched the metric filter: check `flowwatch --local logs tail --rejects` and the "
                    "rule's match" if ctx.local else
                    "no matching record has reached the metric filter yet: flow-log delivery takes 5-10 minutes "
                    "or more; run `flowwatch status` in a few minutes, or `flowwatch logs tail --rejects`")
        else:
            hint = (f"the rule needs {result.threshold:g} matching records in one period: inject more (--count) or "
                    "lower the rule's threshold")
        return head, hint
    hint = ("the local data plane evaluates alarms every few seconds: check `flowwatch local status`" if ctx.local
            else "flow-log delivery can take 10 minutes or more; the alarm may still fire: run `flowwatch status` "
                 "in a few minutes")
    return head, hint


def ping_action(ctx: Context) -> str:
    """What a ping to a public address gets: REJECT with the NACL rule denying ICMP egress, else ACCEPT."""
    return "REJECT" if ctx.config.deny_icmp_egress else "ACCEPT"


def rules_seeing(ctx: Context, target: Target, action: str) -> list[Any]:
    """The alert rules whose metric filter matches the pings this run makes (evaluated offline, as CloudWatch
    would): only their alarms can fire. Rules with a filter pattern only (threshold and anomaly rules);
    a contributors rule has no metric filter (its Contributor Insights rule counts by source, not pings)."""
    from flowwatch.patterns import compile_pattern
    from flowwatch.steps.base import metric_rules
    from flowwatch.steps.metric_filter import rule_pattern

    _, lines = synth_lines(ctx, target, 1, action=action)
    return [r for r in metric_rules(ctx) if any(compile_pattern(rule_pattern(ctx, r)).matches(line)
                                                 for line in lines)]


def no_alarm_will_fire(ctx: Context, action: str) -> str:
    if action == "ACCEPT":
        return ("[yellow]·[/yellow] nacl.deny_icmp_egress is false: no NACL rule denies ICMP egress, so these pings "
                "are ACCEPTed (the records say so) and no alert rule matches them: the alarm will not fire. Set "
                "nacl.deny_icmp_egress: true and run `flowwatch up` to see it fire; not waiting")
    return ("[yellow]·[/yellow] no alert rule matches rejected pings (alerts.rules: "
            f"{', '.join(r.name for r in ctx.config.alerts.rules)}): no alarm will fire; not waiting")


def alarm_states(ctx: Context, names: list[str]) -> dict[str, str]:
    """The alarms' states before the run (to tell a state change, which notifies, from none)."""
    try:
        alarms = ctx.aws.cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    except Exception as exc:
        raise AwsError.from_client_error(exc, step="simulate-reject", operation="DescribeAlarms") from None
    return {a["AlarmName"]: a["StateValue"] for a in alarms}


def up_first(ctx: Context) -> str:
    """The exact command that builds the stack on this target."""
    return "run `flowwatch --local up` first" if ctx.local else "run `flowwatch up` first"


# ---- the stack's network -------------------------------------------------------------------

def find_target(ctx: Context) -> Target:
    subnets = ctx.aws.ec2.describe_subnets(Filters=tag_filters(ctx.stack.name, "subnet"))["Subnets"]
    if not subnets:
        raise FlowwatchError(f"stack {ctx.stack.name!r} has no subnet in {ctx.region}", hint=up_first(ctx))
    if len(subnets) > 1:
        from flowwatch.errors import AmbiguousStateError

        raise AmbiguousStateError("subnet", [s["SubnetId"] for s in subnets])
    s = subnets[0]
    return Target(vpc_id=s["VpcId"], subnet_id=s["SubnetId"], cidr=s["CidrBlock"], az_id=s.get("AvailabilityZoneId"))


# ---- inject ----------------------------------------------------------------------------------

def synthetic_eni(subnet_id: str) -> str:
    """A stable ENI id for synthetic traffic of a subnet (17 hex digits, like a real one)."""
    return "eni-" + hashlib.sha256(subnet_id.encode()).hexdigest()[:17]


def synth_lines(ctx: Context, target: Target, count: int, now: float | None = None,
                action: str = "REJECT") -> tuple[str, list[str]]:
    """(eni, lines): ``count`` pings from the subnet to a public address, in the configured format: REJECTed, or
    ACCEPTed when no NACL rule denies them (``ping_action``)."""
    eni = synthetic_eni(target.subnet_id)
    source = str(ipaddress.IPv4Network(target.cidr)[10])
    end = int(now if now is not None else time.time())
    lines = ctx.config.record_format.synth(
        account=ctx.account, eni=eni, srcaddr=source, dstaddr=PING_TARGET, protocol=1,
        action="ACCEPT" if action == "ACCEPT" else "REJECT",
        start=end - ctx.config.flow_logs.aggregation_seconds, end=end, count=count, vpc_id=target.vpc_id,
        subnet_id=target.subnet_id, region=ctx.region, az_id=target.az_id)
    return eni, lines


def inject(ctx: Context, target: Target, count: int, action: str = "REJECT") -> dict[str, Any]:
    """Write ``count`` synthetic records of the pings (``action``: what the NACL does to them); returns what
    was written where (the JSON of simulate-reject)."""
    eni, lines = synth_lines(ctx, target, count, action=action)
    written: list[dict[str, Any]] = []
    if ctx.local_api is not None:
        result = ctx.local_api.traffic(
            region=ctx.region, fields=ctx.config.record_format.fields, lines=lines, eni=eni,
            vpc_id=target.vpc_id, subnet_id=target.subnet_id)
        if not result["deliveries"]:
            raise FlowwatchError(f"no flow log of stack {ctx.stack.name!r} covers {eni}: nothing was delivered",
                                 hint=up_first(ctx))
        for d in result["deliveries"]:
            where = (f"log group {d['destination']} (stream {', '.join(d['target'])})"
                     if d["destination_type"] == "cloud-watch-logs" else
                     f"s3://{d['destination'].split(':::', 1)[-1].split('/')[0]}/{', '.join(d['target'])}")
            if d.get("error"):
                ctx.out.warn(f"flow log {d['flow_log_id']}: {d['error']}")
            else:
                ctx.out.info(f"  [green]+[/green] {plural(d['records'], action + ' record')} -> {safe(where)}")
            written.append({"flow_log_id": d.get("flow_log_id"), "destination_type": d["destination_type"],
                            "destination": d["destination"], "records": d.get("records", 0), "error": d.get("error")})
        return {"eni": eni, "records": len(lines), "deliveries": written}
    logs = ctx.aws.logs
    stream = f"{eni}-all"
    try:
        logs.create_log_stream(logGroupName=ctx.log_group, logStreamName=stream)
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            raise FlowwatchError(f"log group {ctx.log_group} does not exist", hint=up_first(ctx)) from None
        if code != "ResourceAlreadyExistsException":
            raise AwsError.from_client_error(exc, step="simulate-reject", operation="CreateLogStream") from None
    fields = ctx.config.record_format
    start_at = fields.index("start") if "start" in fields else None
    now_ms = int(time.time() * 1000)
    events: list[dict[str, Any]] = sorted(
        ({"timestamp": int(line.split()[start_at]) * 1000 if start_at is not None else now_ms, "message": line}
         for line in lines), key=lambda e: e["timestamp"])
    try:
        logs.put_log_events(logGroupName=ctx.log_group, logStreamName=stream, logEvents=events)
    except Exception as exc:
        raise AwsError.from_client_error(exc, step="simulate-reject", operation="PutLogEvents") from None
    ctx.out.info(f"  [green]+[/green] {plural(len(events), f'synthetic {action} record')} -> log group {ctx.log_group} "
                 f"(stream {stream})")
    return {"eni": eni, "records": len(events), "deliveries": [
        {"flow_log_id": None, "destination_type": "cloud-watch-logs", "destination": ctx.log_group,
         "records": len(events), "error": None}]}


# ---- instance --------------------------------------------------------------------------------

def launch_instance(ctx: Context, target: Target, *, user_data: str = USER_DATA,
                    doing: str = f"pings {PING_TARGET} for {PING_SECONDS // 60} min") -> str:
    """The traffic instance (one at a time): launched with ``user_data`` (``doing`` says what it does, for the
    output), or the one still pending/running, reused."""
    from flowwatch import engine
    from flowwatch.steps.cleanup import find_instances

    engine.converge(ctx, "nacl")            # rule 90 denies ICMP egress; its parents are only read
    ec2 = ctx.aws.ec2
    existing = [i["InstanceId"] for i in find_instances(ec2, ctx.stack.name, ["pending", "running"])]
    if existing:
        ctx.out.info(f"  [dim]✓ traffic instance {existing[0]} is still up (it pings for {PING_SECONDS // 60} min, "
                     "then terminates itself); not launching another[/dim]")
        return existing[0]
    group_id = ensure_security_group(ctx, target.vpc_id)
    ami = ctx.aws.ssm.get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    name = ctx.names.of("instance")
    try:
        resp = ec2.run_instances(
            ImageId=ami, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1, SubnetId=target.subnet_id,
            SecurityGroupIds=[group_id], UserData=user_data, InstanceInitiatedShutdownBehavior="terminate",
            MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
            TagSpecifications=tag_spec("instance", ctx.stack.name, "instance", name),
            ClientToken=ctx.client_token("RunInstances", target.subnet_id))
    except Exception as exc:
        raise AwsError.from_client_error(exc, step="simulate-reject", operation="RunInstances") from None
    instance_id = resp["Instances"][0]["InstanceId"]
    ctx.out.info(f"  [green]+[/green] instance {instance_id} ({INSTANCE_TYPE}, {ami}, IMDSv2, no key pair, "
                 f"security group {group_id} without inbound rules) {doing}, then terminates itself; "
                 "`flowwatch down` removes what is left")
    return instance_id


def ensure_security_group(ctx: Context, vpc_id: str) -> str:
    """The traffic instance's security group: ours (step tag ``security_group``), no inbound rule."""
    from flowwatch.steps.cleanup import find_security_groups

    ec2 = ctx.aws.ec2
    name = ctx.names.of("security_group")
    found = find_security_groups(ec2, ctx.stack.name, vpc_id)
    if found:
        group = found[0]
        if group.get("IpPermissions"):
            ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
            ctx.out.warn(f"security group {group['GroupId']} had inbound rules; removed them")
        return group["GroupId"]
    try:
        group_id = ec2.create_security_group(
            GroupName=name, VpcId=vpc_id,
            Description="flowwatch simulate-reject traffic instance: no inbound rule",
            TagSpecifications=tag_spec("security-group", ctx.stack.name, "security_group", name))["GroupId"]
    except Exception as exc:
        if error_code(exc) == "InvalidGroup.Duplicate":
            raise OwnershipError(f"simulate-reject: security group {name} already exists in {vpc_id} without "
                                 f"stack {ctx.stack.name!r}'s tag",
                                 hint="remove it, or set names.security_group in the config") from None
        raise AwsError.from_client_error(exc, step="simulate-reject", operation="CreateSecurityGroup") from None
    ctx.out.info(f"  [green]+[/green] security group {group_id} ({name}): no inbound rule")
    return group_id


# ---- waiting for the alarm -------------------------------------------------------------------

def wait_for_alarm(ctx: Context, *, timeout: float, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep, interval: float = 10.0,
                   now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                   rules: list[Any] | None = None) -> WaitResult:
    """Poll the stack's alarms until one is in ALARM or ``timeout`` seconds passed (same code on AWS
    and locally). The live line shows the state, the datapoints of the alarm's metric since the
    wait began, and the elapsed time."""
    cw = ctx.aws.cloudwatch
    names = [ctx.names.alarm(rule.name) for rule in (ctx.config.alerts.rules if rules is None else rules)]
    since = now() - timedelta(minutes=5)
    state, alarm_name, points, elapsed = "?", names[0], 0, 0.0
    total, peak, alarm = 0.0, 0.0, {}
    poll = Poll(timeout, interval=interval, max_interval=interval, sleep=sleep, clock=clock)
    with ctx.out.live() as update:
        for elapsed in poll.ticks():
            alarms = cw.describe_alarms(AlarmNames=names)["MetricAlarms"]
            if not alarms:
                raise FlowwatchError(f"stack {ctx.stack.name!r} has no alarm ({', '.join(names)})",
                                     hint=up_first(ctx))
            firing = [a for a in alarms if a["StateValue"] == "ALARM"]
            alarm = firing[0] if firing else alarms[0]
            state, alarm_name = alarm["StateValue"], alarm["AlarmName"]
            points, total, peak = _datapoints(cw, alarm, since, now())
            color = {"ALARM": "bold red", "OK": "green"}.get(state, "yellow")
            update(f"  alarm {alarm_name}: [{color}]{state}[/{color}]   datapoints: {points} (sum {total:g})   "
                   f"elapsed: {int(elapsed) // 60}:{int(elapsed) % 60:02d}")
            if state == "ALARM":
                break
    metric = f"{alarm.get('Namespace')}/{alarm.get('MetricName')}" if alarm.get("MetricName") else ""
    return WaitResult(state, alarm_name, elapsed, points, total, peak, alarm.get("Threshold"), metric,
                      int(alarm.get("Period") or 60))


def _datapoints(cw: Any, alarm: dict[str, Any], since: datetime, until: datetime) -> tuple[int, float, float]:
    """(datapoints, their total Sum, the largest Sum of one period) of the alarm's metric."""
    if not alarm.get("MetricName"):
        return 0, 0.0, 0.0
    period = int(alarm.get("Period") or 60)
    resp = cw.get_metric_statistics(Namespace=alarm["Namespace"], MetricName=alarm["MetricName"],
                                    Dimensions=alarm.get("Dimensions") or [], StartTime=since,
                                    EndTime=until + timedelta(seconds=period), Period=period, Statistics=["Sum"])
    points = resp["Datapoints"]
    sums = [p.get("Sum", 0.0) for p in points]
    return len(points), sum(sums), max(sums, default=0.0)
