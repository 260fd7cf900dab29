"""simulate-reject: instance mode and inject mode on moto in-process (mock_aws), the wait loop with
an injected clock, and inject mode through the local AWS (a server subprocess, never mixed with
mock_aws in this process: the mock is only active inside the tests that ask for `session`).
"""

from __future__ import annotations

import base64
import io
import time

import pytest

from flowwatch import engine
from flowwatch.actions import simulate
from flowwatch.errors import UsageError
from flowwatch.naming import STACK_TAG, STEP_TAG
from flowwatch.patterns import compile_pattern
from tests.support.context import make_config, make_ctx

pytestmark = pytest.mark.slow   # local servers and whole stacks

STACK_STEPS = ("vpc", "subnet", "igw", "log_group", "delivery_role", "bucket", "flow_logs", "nacl", "sns",
               "metric_filter", "alarm")


@pytest.fixture
def stack(ctx):
    engine.up(ctx, only=STACK_STEPS)
    return ctx


def _tags(resource) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


# ---- instance mode ---------------------------------------------------------------------------

def test_instance_mode_launches_a_locked_down_pinging_instance(stack):
    ctx = stack
    ec2, ssm = ctx.aws.ec2, ctx.aws.ssm
    assert simulate.simulate(ctx, mode="instance", wait=False) == 0

    reservations = ec2.describe_instances(Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [ctx.stack.name]}])
    (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
    ami = ssm.get_parameter(Name=simulate.AMI_PARAMETER)["Parameter"]["Value"]
    assert instance["ImageId"] == ami                                   # the current AL2023 AMI, from SSM
    assert instance["InstanceType"] == simulate.INSTANCE_TYPE
    assert instance["MetadataOptions"]["HttpTokens"] == "required"      # IMDSv2 only
    assert "KeyName" not in instance                                    # no key pair
    subnet = ec2.describe_subnets(SubnetIds=[instance["SubnetId"]])["Subnets"][0]
    assert _tags(subnet)[STEP_TAG] == "subnet" and _tags(subnet)[STACK_TAG] == ctx.stack.name
    assert _tags(instance) == {STACK_TAG: ctx.stack.name, STEP_TAG: "instance", "Name": ctx.names.of("instance")}

    (group_ref,) = instance["SecurityGroups"]
    group = ec2.describe_security_groups(GroupIds=[group_ref["GroupId"]])["SecurityGroups"][0]
    assert group["GroupName"] == ctx.names.of("security_group")
    assert group["IpPermissions"] == []                                 # NO inbound rule
    assert _tags(group)[STEP_TAG] == "security_group"

    user_data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    script = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert script.startswith("#!/bin/bash") and f"ping -c {simulate.PING_SECONDS}" in script
    assert simulate.PING_TARGET in script and "shutdown -h now" in script
    behaviour = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                                Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"

    acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}])
    rule = [e for a in acl["NetworkAcls"] for e in a["Entries"] if e["RuleNumber"] == 90 and e["Egress"]]
    assert rule and rule[0]["RuleAction"] == "deny" and rule[0]["Protocol"] == "1"

    # a second run while it still pings reuses it; `down`'s cleanup step finds both for removal
    assert simulate.simulate(ctx, mode="instance", wait=False) == 0
    again = ec2.describe_instances(Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [ctx.stack.name]}])
    assert len([i for r in again["Reservations"] for i in r["Instances"]]) == 1
    from flowwatch.steps.cleanup import CleanupStep

    seen = CleanupStep().discover(ctx)
    assert seen.instances == (instance["InstanceId"],) and seen.security_groups == (group["GroupId"],)


def test_instance_mode_revokes_inbound_rules_found_on_its_group(stack):
    ctx = stack
    target = simulate.find_target(ctx)
    group_id = simulate.ensure_security_group(ctx, target.vpc_id)
    ctx.aws.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert simulate.ensure_security_group(ctx, target.vpc_id) == group_id
    group = ctx.aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["IpPermissions"] == []


def test_without_a_stack_it_says_run_up(ctx):
    from flowwatch.errors import FlowwatchError

    with pytest.raises(FlowwatchError, match="has no subnet") as err:
        simulate.simulate(ctx, mode="inject", wait=False)
    assert err.value.hint == "run `flowwatch up` first"


def test_local_refuses_instance_mode(session):
    ctx = make_ctx(session)
    ctx.local = True
    with pytest.raises(UsageError, match="--mode inject"):
        simulate.simulate(ctx, mode="instance", wait=False)


# ---- inject mode (AWS) -----------------------------------------------------------------------

def test_inject_writes_reject_records_one_stream_per_eni(stack):
    ctx = stack
    assert simulate.simulate(ctx, mode="inject", wait=False, count=7) == 0
    target = simulate.find_target(ctx)
    eni = simulate.synthetic_eni(target.subnet_id)
    logs = ctx.aws.logs
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=ctx.log_group)["logStreams"]]
    assert streams == [f"{eni}-all"]
    events = logs.get_log_events(logGroupName=ctx.log_group, logStreamName=f"{eni}-all")["events"]
    assert len(events) == 7
    fmt = ctx.config.record_format
    records = fmt.parser().parse(e["message"] for e in events).records
    assert len(records) == 7
    for rec, event in zip(records, events):
        assert (rec.action, rec.protocol, rec.interface_id, rec.dstaddr) == ("REJECT", 1, eni, simulate.PING_TARGET)
        assert rec.srcaddr.startswith("10.0.0.") and event["timestamp"] == rec.start * 1000
    # what CloudWatch will evaluate: the stack's own metric filter pattern matches every record
    (mf,) = logs.describe_metric_filters(logGroupName=ctx.log_group)["metricFilters"]
    pattern = compile_pattern(mf["filterPattern"])
    assert all(pattern.matches(e["message"]) for e in events)


def test_inject_follows_a_custom_record_format(session):
    ctx = make_ctx(session, make_config(flow_logs={"format": ["srcaddr", "dstaddr", "action", "protocol",
                                                               "interface-id", "start", "end", "log-status"]}))
    engine.up(ctx, only=STACK_STEPS)
    simulate.simulate(ctx, mode="inject", wait=False, count=2)
    events = ctx.aws.logs.filter_log_events(logGroupName=ctx.log_group)["events"]
    assert [e["message"].split()[2:4] for e in events] == [["REJECT", "1"]] * 2
    (mf,) = ctx.aws.logs.describe_metric_filters(logGroupName=ctx.log_group)["metricFilters"]
    assert all(compile_pattern(mf["filterPattern"]).matches(e["message"]) for e in events)


# ---- the wait loop ---------------------------------------------------------------------------

class FakeTime:
    """clock() and sleep() of a test: sleeping advances the clock; `on_sleep` runs after each."""

    def __init__(self, on_sleep=None):
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def test_wait_returns_when_the_alarm_fires(stack):
    ctx = stack
    alarm = ctx.names.alarm("ping-deny")
    cw = ctx.aws.cloudwatch
    rule = ctx.config.alerts.rules[0]
    cw.put_metric_data(Namespace=rule.namespace, MetricData=[{"MetricName": rule.metric, "Value": 3.0}])

    def fire(n: int) -> None:
        if n == 3:
            cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="Threshold Crossed")

    fake = FakeTime(fire)
    result = simulate.wait_for_alarm(ctx, timeout=900, clock=fake.clock, sleep=fake.sleep, interval=10)
    assert (result.state, result.alarm, result.elapsed, result.datapoints) == ("ALARM", alarm, 30.0, 1)
    assert fake.sleeps == [10, 10, 10]
    shown = ctx.out.err.file.getvalue()
    assert f"alarm {alarm}: OK   datapoints: 1 (sum 3)   elapsed: 0:00" in shown
    assert "ALARM   datapoints: 1 (sum 3)   elapsed: 0:30" in shown


def test_wait_times_out_with_exit_1_and_explains_the_delay(stack):
    ctx = stack
    fake = FakeTime()
    code = simulate.simulate(ctx, mode="inject", wait=True, timeout=60, clock=fake.clock, sleep=fake.sleep)
    assert code == 1
    assert fake.now - 1000.0 == 60 and fake.sleeps == [10.0] * 6
    err = ctx.out.err.file.getvalue()
    assert "timed out after 60 s" in err and "is OK, not ALARM" in err
    assert "5-10 minutes" in err
    # moto evaluates no metric filter: the metric stayed at 0, below the threshold; the line says so
    assert f"its metric flowwatch/{ctx.stack.name}/Ping-Deny reached 0 in one 60 s period" in err
    assert "below the threshold 1, so the alarm had nothing to fire on" in err


def test_a_timeout_at_the_threshold_blames_the_evaluation_not_the_data(stack):
    ctx = stack
    rule = ctx.config.alerts.rules[0]
    ctx.aws.cloudwatch.put_metric_data(Namespace=rule.namespace, MetricData=[{"MetricName": rule.metric, "Value": 3.0}])
    fake = FakeTime()
    assert simulate.simulate(ctx, mode="inject", wait=True, timeout=30, clock=fake.clock, sleep=fake.sleep) == 1
    err = ctx.out.err.file.getvalue()
    assert "below the threshold" not in err and "the alarm may still fire" in err


def test_an_alarm_already_in_alarm_is_not_said_to_have_notified(stack):
    ctx = stack
    alarm = ctx.names.alarm("ping-deny")
    ctx.aws.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="earlier run")
    fake = FakeTime()
    assert simulate.simulate(ctx, mode="inject", wait=True, timeout=60, clock=fake.clock, sleep=fake.sleep) == 0
    err = " ".join(ctx.out.err.file.getvalue().split())
    assert f"alarm {alarm} was already in ALARM before this run" in err
    assert "no new notification was sent" in err
    assert "its actions were notified" not in err and "were notified" not in err


def test_without_the_nacl_rule_the_pings_are_accepted_and_nothing_waits(session):
    ctx = make_ctx(session, make_config(nacl={"deny_icmp_egress": False}))
    engine.up(ctx, only=STACK_STEPS)
    fake = FakeTime()
    assert simulate.simulate(ctx, mode="inject", wait=True, count=3, clock=fake.clock, sleep=fake.sleep) == 0
    assert fake.sleeps == []                                   # no alarm can fire: no wait
    events = ctx.aws.logs.filter_log_events(logGroupName=ctx.log_group)["events"]
    records = ctx.config.record_format.parser().parse(e["message"] for e in events).records
    assert [r.action for r in records] == ["ACCEPT"] * 3       # the truth: no deny rule, the pings pass
    err = " ".join(ctx.out.err.file.getvalue().split())
    assert "3 synthetic ACCEPT records -> log group" in err
    assert "nacl.deny_icmp_egress is false: no NACL rule denies ICMP egress, so these pings are ACCEPTed" in err
    assert "the alarm will not fire" in err


def test_wait_without_alarms_says_run_up(ctx):
    engine.up(ctx, only=("vpc", "subnet"))
    from flowwatch.errors import FlowwatchError

    with pytest.raises(FlowwatchError, match="has no alarm"):
        simulate.wait_for_alarm(ctx, timeout=10, clock=FakeTime().clock, sleep=FakeTime().sleep)


# ---- inject mode on the local AWS --------------------------------------------------------------

@pytest.fixture
def local_server(tmp_path):
    from flowwatch.local import process

    directory = tmp_path / "local-aws"
    info, _ = process.start(0, directory)
    try:
        yield info
    finally:
        process.stop(directory)
    assert not process.pid_alive(info.pid)


def test_local_inject_reaches_logs_s3_metric_alarm_and_inbox(local_server):
    import gzip

    from flowwatch.console import Output
    from flowwatch.context import build_context
    from flowwatch.local.client import LocalApi
    from flowwatch.settings import Settings

    config = make_config(alerts={"email": "ops@example.com"})
    err = io.StringIO()
    out = Output(stderr=err, stdout=io.StringIO(), color=False)
    api = LocalApi(local_server.url)
    ctx = build_context(Settings(stack="test", local=True), config=config, out=out, endpoint_url=local_server.url,
                        local_api=api)
    engine.up(ctx, only=STACK_STEPS)
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)

    assert simulate.simulate(ctx, wait=True, count=5, sleep=sleep) == 0   # local default: inject, 2 min timeout
    assert all(p <= 0.5 for p in pauses)                                  # the local poll: every 0.5 s

    eni = simulate.synthetic_eni(simulate.find_target(ctx).subnet_id)
    events = ctx.aws.logs.get_log_events(logGroupName=ctx.log_group, logStreamName=f"{eni}-all")["events"]
    assert len(events) == 5
    layout = ctx.s3_layout()
    (obj,) = ctx.aws.s3.list_objects_v2(Bucket=layout.bucket, Prefix=layout.base_prefix())["Contents"]
    lines = gzip.decompress(ctx.aws.s3.get_object(Bucket=layout.bucket, Key=obj["Key"])["Body"].read()).decode()
    assert lines.splitlines()[0] == config.record_format.header() and len(lines.splitlines()) == 6
    alarm = ctx.aws.cloudwatch.describe_alarms(AlarmNames=[ctx.names.alarm("ping-deny")])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"
    fired = [m for m in api.inbox() if str(m["subject"]).startswith("ALARM")]
    assert fired and fired[-1]["recipients"] == ["ops@example.com"]
    assert "ALARM after" in err.getvalue()
