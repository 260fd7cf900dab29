"""The core of the local data plane (flowwatch.local.dataplane): the clock, the composition of the
parts, the alarm thread, and the whole chain end to end on a real server process: flow records ->
log group -> metric filter -> metric -> alarm -> SetAlarmState + SNS notification -> inbox.

This module also holds what the other tests/local/test_<part>.py modules share: a server of their
own (``python -m flowwatch.local.server`` on 127.0.0.1, free port, stopped at the end of the
module), the product's client of its ``/_flowwatch/`` routes (flowwatch.local.client.LocalApi),
clients of moto in-process for the unit tests.

Assertions are on what AWS would show (objects, streams, metric statistics, alarm state, the
published message), never on moto's silence. The fast clock (POST /_flowwatch/clock) stands in
for "five minutes later"; waits are bounded (flowwatch.polling.Poll), timings are benchmarks'.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowwatch.local.client import LocalApi
from flowwatch.local.dataplane import Clock, DataPlane
from flowwatch.polling import Poll
from flowwatch.records import RecordFormat

ACCOUNT = "123456789012"
REGION = "us-east-1"
V2 = RecordFormat.parse("v2")


# ---- a server of the test module's own ----------------------------------------------------

@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    directory: Path


def start_server(directory: Path, tick: float = 3600) -> Server:
    """The server as `flowwatch local start` runs it; ``tick=3600``: evaluations only when data
    arrives, the clock moves or on demand."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(directory / "server.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flowwatch.local.server", "--port", "0",
                                 "--state-dir", str(directory), "--tick", str(tick)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    state = directory / "server.json"
    for _ in Poll(timeout=30, interval=0.05).ticks():
        if state.exists():
            return Server(proc, json.loads(state.read_text())["url"], directory)
        if proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    raise AssertionError(f"the local server did not start: {(directory / 'server.log').read_text()[-2000:]}")


def stop_server(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    try:
        assert server.proc.wait(timeout=15) == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    assert not (server.directory / "server.json").exists()   # the server removed its state file


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("local-aws"))
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def aws(server):
    kw = {"region_name": REGION, "endpoint_url": server.url, "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    return lambda service: boto3.client(service, **kw)


@pytest.fixture
def api(server):
    return LocalApi(server.url)


@pytest.fixture
def network(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/24")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/26")["Subnet"]["SubnetId"]
    return vpc, subnet


class SessionClients:
    """A flowwatch.local.loopback.Clients over a boto3 session (moto in-process): for unit tests."""

    def __init__(self, session) -> None:
        self.session = session
        self.made: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        if (service, region) not in self.made:
            self.made[(service, region)] = self.session.client(service, region_name=region)
        return self.made[(service, region)]

    def account(self, region: str) -> str:
        return self.client("sts", region).get_caller_identity()["Account"]


def name() -> str:
    return uuid.uuid4().hex[:10]


def server_now(api) -> int:
    """The server's clock (wall clock + fast-forward offset)."""
    return int(api.health()["now"])


def records(api, eni: str, n: int, action: str = "REJECT", protocol: int = 1, start: int | None = None) -> list[str]:
    start = start if start is not None else server_now(api) - 60
    return V2.synth(account=ACCOUNT, eni=eni, srcaddr="10.0.0.10", dstaddr="8.8.8.8", protocol=protocol,
                    action=action, start=start, count=n)


def flow_log(ec2, vpc: str, **kw) -> str:
    resp = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", **kw)
    assert not resp.get("Unsuccessful"), resp
    return resp["FlowLogIds"][0]


def objects(s3, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def alarm_stack(aws, *, treat="notBreaching", n=1, m=1, email="ops@example.com"):
    """Log group + ping metric filter + topic (+ e-mail subscriber) + a Sum >= 1 alarm on the metric."""
    logs, cw, sns = aws("logs"), aws("cloudwatch"), aws("sns")
    suffix = name()
    group, ns = f"/fw/{suffix}", f"NS{suffix}"
    logs.create_log_group(logGroupName=group)
    logs.put_metric_filter(logGroupName=group, filterName="pings", filterPattern=V2.filter_pattern(
        {"protocol": 1, "action": "REJECT"}), metricTransformations=[
        {"metricName": "Ping-Deny", "metricNamespace": ns, "metricValue": "1", "defaultValue": 0}])
    topic = sns.create_topic(Name=f"t{suffix}")["TopicArn"]
    if email:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
    alarm = f"a{suffix}"
    cw.put_metric_alarm(AlarmName=alarm, Namespace=ns, MetricName="Ping-Deny", Statistic="Sum", Period=60,
                        EvaluationPeriods=n, DatapointsToAlarm=m, Threshold=1,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData=treat,
                        AlarmActions=[topic], OKActions=[topic])
    return group, alarm, topic


def alarm_state(aws, alarm: str) -> str:
    return aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]


def messages(api, topic: str) -> list[dict]:
    return [m for m in api.inbox() if m["topic_arn"] == topic]


# ---- unit: the clock and the composition ---------------------------------------------------

def test_clock_is_the_wall_clock_plus_an_offset_that_only_advance_moves():
    wall = [1_000.0]
    clock = Clock(lambda: wall[0])
    assert clock.now() == 1_000.0
    assert clock.advance(300) == 300.0 and clock.advance(60) == 360.0
    wall[0] = 1_010.0
    assert clock.now() == 1_370.0


def test_every_part_reads_the_one_clock():
    plane = DataPlane(clock=Clock(lambda: 5_000.0))
    plane.advance(300)
    assert plane.flow_logs.now() == plane.alarms.now() == plane.inbox.now() == 5_300.0
    parts = (plane.flow_logs, plane.metric_filters, plane.alarms, plane.inbox)
    assert all(part.clients is plane.clients for part in parts)
    plane.endpoint = "http://127.0.0.1:1"
    assert plane.clients.endpoint == "http://127.0.0.1:1"


class RecordingEvaluator:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.called = threading.Event()

    def evaluate(self, regions):
        self.calls.append(list(regions))
        self.called.set()
        return []


def test_alarms_are_evaluated_in_every_region_seen_in_order():
    plane = DataPlane()
    plane.alarms = RecordingEvaluator()   # type: ignore[assignment]
    for region in ("eu-west-1", None, "us-east-1", "eu-west-1", ""):
        plane.saw_region(region)
    plane.evaluate_alarms()
    assert plane.alarms.calls == [["eu-west-1", "us-east-1"]]


@pytest.mark.parametrize("trigger", ["metric data", "clock"])
def test_the_alarm_thread_evaluates_at_once_after_metric_data_or_a_clock_move(trigger):
    plane = DataPlane("http://127.0.0.1:9", tick=3600)   # no server needed; never on its own within this test
    evaluator = plane.alarms = RecordingEvaluator()   # type: ignore[assignment]
    plane.saw_region(REGION)
    plane.start()
    try:
        if trigger == "metric data":
            plane.metric_filters.on_data()  # what MetricFilters calls after PutMetricData
        else:
            plane.advance(60)
        assert evaluator.called.wait(timeout=30)
        assert evaluator.calls[0] == [REGION]
    finally:
        plane.stop()
    assert plane._thread is not None and not plane._thread.is_alive()


def test_the_alarm_thread_survives_a_failed_evaluation():
    plane = DataPlane("http://127.0.0.1:9", tick=3600)
    done = threading.Event()
    calls = []

    class Failing:
        def evaluate(self, regions):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("transient")
            done.set()
            return []

    plane.alarms = Failing()   # type: ignore[assignment]
    plane.start()
    try:
        plane.wake()
        for _ in Poll(timeout=30, interval=0.02).ticks():
            if calls:
                break
        plane.wake()
        assert done.wait(timeout=30)
    finally:
        plane.stop()


# ---- end to end on the server --------------------------------------------------------------

@pytest.mark.slow
def test_health_clock_and_unknown_routes(api):
    before = api.health()
    assert before["service"] == "flowwatch-local" and before["pid"] > 0
    offset = api.advance(90)
    after = api.health()
    assert offset == after["offset"] == before["offset"] + 90
    assert after["now"] - before["now"] >= 90
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{api.url}/_flowwatch/nothing-here", timeout=30)
    assert err.value.code == 404
    assert json.loads(err.value.read()) == {"error": "no route GET /_flowwatch/nothing-here"}


@pytest.mark.slow
def test_pattern_metric_alarm_notification_and_back_to_ok(aws, api, network):
    vpc, subnet = network
    group, alarm, topic = alarm_stack(aws)
    flow_log(aws("ec2"), vpc, TrafficType="ALL", LogDestinationType="cloud-watch-logs", LogGroupName=group,
             DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/delivery")
    api.evaluate()
    assert alarm_state(aws, alarm) == "OK"                 # INSUFFICIENT_DATA -> OK: nothing missing is bad
    (first,) = messages(api, topic)
    assert json.loads(first["message"])["OldStateValue"] == "INSUFFICIENT_DATA"

    api.traffic(region=REGION, fields=V2.fields, lines=records(api, "eni-0f0f0f0f0f0f0f0f0", 5, action="ACCEPT",
                                                               protocol=6), vpc_id=vpc, subnet_id=subnet)
    api.evaluate()
    assert alarm_state(aws, alarm) == "OK"                 # allowed traffic: default value 0, no alarm

    # no POST evaluate: the new metric data wakes the alarm thread, which reaches ALARM on its own
    api.traffic(region=REGION, fields=V2.fields, lines=records(api, "eni-0f0f0f0f0f0f0f0f0", 4), vpc_id=vpc,
                subnet_id=subnet)
    for _ in Poll(timeout=30, interval=0.1).ticks():
        if alarm_state(aws, alarm) == "ALARM":
            break
    assert alarm_state(aws, alarm) == "ALARM"
    described = aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    assert described["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [")
    assert json.loads(described["StateReasonData"])["recentDatapoints"][-1] >= 4.0

    fired = messages(api, topic)[-1]
    assert fired["recipients"] == ["ops@example.com"]
    assert fired["subject"] == f'ALARM: "{alarm}" in US East (N. Virginia)'
    body = json.loads(fired["message"])                   # what SQS/Lambda/HTTP subscribers get
    assert (body["AlarmName"], body["OldStateValue"], body["NewStateValue"]) == (alarm, "OK", "ALARM")
    assert body["Trigger"]["MetricName"] == "Ping-Deny" and body["AWSAccountId"] == ACCOUNT
    assert fired["body"].startswith(f'You are receiving this email because your Amazon CloudWatch Alarm "{alarm}"')

    api.advance(5 * 60)                                    # five minutes without data: notBreaching -> OK
    api.evaluate()
    assert alarm_state(aws, alarm) == "OK"
    back = messages(api, topic)[-1]
    assert (json.loads(back["message"])["OldStateValue"], json.loads(back["message"])["NewStateValue"]) == \
        ("ALARM", "OK")
    assert len(messages(api, topic)) == 3                  # OK, ALARM, OK: one message per state change
    states = {a["alarm"]: a for a in api.alarms()["alarms"]}
    assert states[alarm] == {"region": REGION, "alarm": alarm, "state": "OK"}
    assert [(h["old"], h["new"]) for h in api.alarms()["history"] if h["alarm"] == alarm] == [
        ("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM"), ("ALARM", "OK")]
