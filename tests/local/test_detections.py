"""The four built-in detections on the local AWS, end to end: ``flowwatch --local up`` with
``alerts.detections: [rejected-spike, top-rejected-sources, ssh-rdp-probe, egress-spike]`` against a
real server of this module's own (started on 127.0.0.1, stopped at the end), then traffic handed to the
local flow-log service (LocalApi.traffic, as ``simulate`` injects it) and read back through boto3:
GetInsightRuleReport, GetMetricData, DescribeAlarms, DescribeAnomalyDetectors, the inbox.

Every expected number is computed here from the records the test sends (collections.Counter), never
copied from an answer of the server. Each test has a stack of its own, so the tests hold in any order
and on any worker.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest

from flowwatch.local import process
from flowwatch.local.client import LocalApi

from tests.support.cli import run_cli

pytestmark = pytest.mark.slow   # a real local server, whole up/down cycles

REGION = "us-east-1"
ACCOUNT = "123456789012"
ALL4 = "[rejected-spike, top-rejected-sources, ssh-rdp-probe, egress-spike]"
V2 = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
      "bytes", "start", "end", "action", "log-status")
PERIOD = 300
OUTSIDE = "198.51.100."            # TEST-NET-2: addresses outside the VPC


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("local-detections")
    info, _ = process.start(0, directory / "flowwatch")
    try:
        yield directory
    finally:
        process.stop(directory / "flowwatch")
    assert not process.pid_alive(info.pid)


def _boto(url: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


class Stack:
    """One stack of the detections, up on the module's server."""

    def __init__(self, server: Any, tmp_path: Any, capsys: Any, monkeypatch: Any, name: str) -> None:
        monkeypatch.setenv("XDG_STATE_HOME", str(server))          # where `--local` finds the running server
        (tmp_path / "flowwatch.yaml").write_text(f"stack: {name}\nalerts:\n  email: ops@example.com\n"
                                                 f"  detections: {ALL4}\n")
        monkeypatch.chdir(tmp_path)
        self.name, self.capsys, self.monkeypatch = name, capsys, monkeypatch
        self.url = process.running(server / "flowwatch").url
        self.api = LocalApi(self.url)
        self.cw, self.ec2 = _boto(self.url, "cloudwatch"), _boto(self.url, "ec2")
        self.first = self.cli("up")
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": [name]}])["Vpcs"][0]
        subnet = self.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"][0]
        self.vpc_id, self.subnet_id = vpc["VpcId"], subnet["SubnetId"]
        self.inside = [str(a) for a in list(ipaddress.IPv4Network(vpc["CidrBlock"]).hosts())[10:20]]
        self.eni = "eni-0" + (name.encode().hex() * 4)[:16]

    def cli(self, *args: str) -> dict[str, Any]:
        done = run_cli(self.capsys, self.monkeypatch, "--local", "--output", "json", *args)
        assert done.code == 0, done.err
        return json.loads(done.out)

    def send(self, records: list[tuple[str, str, int, int, int, str, int]]) -> None:
        """(srcaddr, dstaddr, dstport, protocol, bytes, action, time) records, through the flow-log service."""
        lines = [" ".join(map(str, (2, ACCOUNT, self.eni, src, dst, 40000 + i % 1000, port, proto, 1, size, t, t + 30,
                                    action, "OK")))
                 for i, (src, dst, port, proto, size, action, t) in enumerate(records)]
        done = self.api.traffic(region=REGION, fields=V2, lines=lines, eni=self.eni, vpc_id=self.vpc_id,
                                subnet_id=self.subnet_id)
        assert done["deliveries"] and all(not d.get("error") for d in done["deliveries"]), done

    def now(self) -> float:
        health = self.api.health()
        assert health is not None
        return float(health["now"])

    def alarms(self) -> dict[str, dict[str, Any]]:
        found = self.cw.describe_alarms(AlarmNamePrefix=f"flowwatch-{self.name}-")["MetricAlarms"]
        return {a["AlarmName"].removeprefix(f"flowwatch-{self.name}-"): a for a in found}

    def states(self) -> dict[str, str]:
        self.api.evaluate()
        return {name: a["StateValue"] for name, a in self.alarms().items()}

    def notifications(self, alarm: str) -> list[dict[str, Any]]:
        out = []
        for m in self.api.inbox():
            body = m.get("message") or m.get("body") or ""
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("AlarmName") == f"flowwatch-{self.name}-{alarm}":
                out.append(doc)
        return out


def test_up_creates_each_detection_then_a_second_up_changes_nothing_and_down_leaves_nothing(
        server, tmp_path, capsys, monkeypatch):
    stack = Stack(server, tmp_path, capsys, monkeypatch, "det-cycle")
    made = {(c["step"], c["action"]) for c in stack.first["changes"]}
    assert {("anomaly_detector", "create"), ("insight_rule", "create"), ("alarm", "create")} <= made
    cw = stack.cw

    detectors = cw.describe_anomaly_detectors(Namespace="flowwatch/det-cycle")["AnomalyDetectors"]
    assert sorted((d["SingleMetricAnomalyDetector"]["MetricName"], d["SingleMetricAnomalyDetector"]["Stat"],
                   d["StateValue"]) for d in detectors) == [
        ("Egress-Spike", "Sum", "PENDING_TRAINING"), ("Rejected-Spike", "Sum", "PENDING_TRAINING")]

    rules = {r["Name"]: r for r in cw.describe_insight_rules()["InsightRules"] if "det-cycle" in r["Name"]}
    assert sorted(rules) == ["flowwatch-det-cycle-ssh-rdp-probe", "flowwatch-det-cycle-top-rejected-sources"]
    assert {r["State"] for r in rules.values()} == {"ENABLED"}
    top = json.loads(rules["flowwatch-det-cycle-top-rejected-sources"]["Definition"])
    assert top["LogFormat"] == "CLF" and top["Contribution"]["Keys"] == ["srcaddr"]
    assert top["Fields"] == {str(V2.index("srcaddr") + 1): "srcaddr", str(V2.index("action") + 1): "action"}

    alarms = stack.alarms()
    assert sorted(alarms) == ["egress-spike", "ping-deny", "rejected-spike", "ssh-rdp-probe", "top-rejected-sources"]
    spike = alarms["rejected-spike"]
    assert spike["ThresholdMetricId"] == "ad1"
    assert spike["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    assert {m["Id"]: m.get("Expression") for m in spike["Metrics"]}["ad1"] == "ANOMALY_DETECTION_BAND(m1, 2)"
    (expression,) = alarms["top-rejected-sources"]["Metrics"]
    assert expression["Expression"] == ("INSIGHT_RULE_METRIC('flowwatch-det-cycle-top-rejected-sources', "
                                        "'MaxContributorValue')")
    assert alarms["top-rejected-sources"]["Threshold"] == 25.0

    updated = {n: a["AlarmConfigurationUpdatedTimestamp"] for n, a in alarms.items()}
    again = stack.cli("up")
    assert again["counts"]["changes"] == 0, again["changes"]
    assert {n: a["AlarmConfigurationUpdatedTimestamp"] for n, a in stack.alarms().items()} == updated

    down = stack.cli("down", "--yes")
    assert {("anomaly_detector", "delete"), ("insight_rule", "delete")} <= {
        (c["step"], c["action"]) for c in down["changes"]}
    assert cw.describe_anomaly_detectors(Namespace="flowwatch/det-cycle")["AnomalyDetectors"] == []
    assert [r for r in cw.describe_insight_rules()["InsightRules"] if "det-cycle" in r["Name"]] == []
    assert stack.alarms() == {}


def test_top_rejected_sources_reports_the_injected_top_source_and_alarms_only_at_its_threshold(
        server, tmp_path, capsys, monkeypatch):
    stack = Stack(server, tmp_path, capsys, monkeypatch, "det-top")
    now = stack.now()
    t = int(now) - 2
    target = stack.inside[0]
    scanner = OUTSIDE + "7"
    # below the threshold (25): the scanner 24 times, four others a few times each, some accepted traffic
    records = [(scanner, target, 8080 + i, 6, 60, "REJECT", t) for i in range(24)]
    records += [(f"{OUTSIDE}{20 + k}", target, 443, 6, 60, "REJECT", t) for k in range(4) for _ in range(k + 2)]
    records += [(f"{OUTSIDE}{30 + k}", target, 443, 6, 900, "ACCEPT", t) for k in range(5)]
    stack.send(records)
    states = stack.states()
    assert states["top-rejected-sources"] == "OK", states

    records2 = [(scanner, target, 9000, 6, 60, "REJECT", t)]     # the 25th: the threshold is reached
    stack.send(records2)
    states = stack.states()
    assert states["top-rejected-sources"] == "ALARM"
    assert {n: s for n, s in states.items() if n != "top-rejected-sources" and s == "ALARM"} == {}

    expected = Counter(src for src, _, _, _, _, action, _ in records + records2 if action == "REJECT")
    report = stack.cw.get_insight_rule_report(
        RuleName="flowwatch-det-top-top-rejected-sources", StartTime=datetime.fromtimestamp(t - 3600, timezone.utc),
        EndTime=datetime.fromtimestamp(t + PERIOD, timezone.utc), Period=PERIOD,
        Metrics=["UniqueContributors", "MaxContributorValue", "SampleCount"])
    got = [(c["Keys"], c["ApproximateAggregateValue"]) for c in report["Contributors"]]
    assert got[0] == ([scanner], float(expected[scanner]))
    assert sorted(got, key=lambda kv: (-kv[1], kv[0])) == sorted(
        (([k], float(v)) for k, v in expected.items()), key=lambda kv: (-kv[1], kv[0]))
    assert report["AggregateValue"] == float(sum(expected.values()))
    assert report["ApproximateUniqueCount"] == len(expected)
    (point,) = report["MetricDatapoints"]
    assert (point["UniqueContributors"], point["MaxContributorValue"], point["SampleCount"]) == (
        float(len(expected)), float(expected[scanner]), float(sum(expected.values())))

    alarm = stack.alarms()["top-rejected-sources"]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [25.0")
    assert "statistic" not in json.loads(alarm["StateReasonData"])
    (message,) = [m for m in stack.notifications("top-rejected-sources") if m["NewStateValue"] == "ALARM"]
    trigger = message["Trigger"]
    assert trigger["Threshold"] == 25.0 and "ThresholdMetricId" not in trigger
    assert [m["Expression"] for m in trigger["Metrics"]] == [
        "INSIGHT_RULE_METRIC('flowwatch-det-top-top-rejected-sources', 'MaxContributorValue')"]

    data = stack.cw.get_metric_data(
        MetricDataQueries=[{"Id": "top", "Expression": alarm["Metrics"][0]["Expression"], "Period": PERIOD}],
        StartTime=datetime.fromtimestamp(t - 3600, timezone.utc), EndTime=datetime.fromtimestamp(t + PERIOD, timezone.utc))
    (series,) = data["MetricDataResults"]
    assert series["Values"] == [float(expected[scanner])]

    # a disabled rule gets no data: more rejects from the scanner do not reach its report
    stack.cw.disable_insight_rules(RuleNames=["flowwatch-det-top-top-rejected-sources"])
    stack.send([(scanner, target, 9001, 6, 60, "REJECT", t)] * 3)
    again = stack.cw.get_insight_rule_report(
        RuleName="flowwatch-det-top-top-rejected-sources", StartTime=datetime.fromtimestamp(t - 3600, timezone.utc),
        EndTime=datetime.fromtimestamp(t + PERIOD, timezone.utc), Period=PERIOD)
    assert again["Contributors"][0]["ApproximateAggregateValue"] == float(expected[scanner])
    stack.cli("down", "--yes")


def test_a_reject_spike_after_a_baseline_puts_only_the_anomaly_alarm_in_alarm(server, tmp_path, capsys, monkeypatch):
    stack = Stack(server, tmp_path, capsys, monkeypatch, "det-spike")
    now = stack.now()
    current = int(now) // PERIOD * PERIOD
    target, host = stack.inside[0], stack.inside[1]
    baseline: dict[int, int] = {}
    records = []
    for k in range(14, 0, -1):                        # 14 periods of baseline before the current one
        start = current - k * PERIOD + 30
        rejects = 3 + k % 3
        baseline[start // PERIOD * PERIOD] = rejects
        records += [(f"{OUTSIDE}{40 + i}", target, 443, 6, 60, "REJECT", start) for i in range(rejects)]
        records += [(host, OUTSIDE + "99", 443, 6, 1000 + 10 * (k % 3), "ACCEPT", start)]   # steady egress
    stack.send(records)
    states = stack.states()
    assert states["rejected-spike"] == "OK" and states["egress-spike"] == "OK", states
    detectors = stack.cw.describe_anomaly_detectors(Namespace="flowwatch/det-spike")["AnomalyDetectors"]
    assert {d["MetricName"]: d["StateValue"] for d in detectors} == {"Rejected-Spike": "TRAINED",
                                                                     "Egress-Spike": "TRAINED"}

    stack.api.advance(PERIOD)                          # five minutes later: the spike
    later = stack.now()
    spike_at = int(later) // PERIOD * PERIOD + min(30, int(later) % PERIOD)
    spike = [(f"{OUTSIDE}{100 + i // 2}", target, 443, 6, 60, "REJECT", spike_at) for i in range(40)]
    spike += [(host, OUTSIDE + "99", 443, 6, 1010, "ACCEPT", spike_at)]
    stack.send(spike)
    states = stack.states()
    assert states == {"rejected-spike": "ALARM", "egress-spike": "OK", "top-rejected-sources": "OK",
                      "ssh-rdp-probe": "OK", "ping-deny": "OK"}

    alarm = stack.alarms()["rejected-spike"]
    assert alarm["StateReason"].startswith("Thresholds Crossed: 1 out of the last 1 datapoints [40.0")
    reason = json.loads(alarm["StateReasonData"])
    assert reason["recentDatapoints"] == [40.0] and reason["recentUpperThresholds"][0] < 40.0
    assert reason["recentLowerThresholds"][0] <= min(baseline.values())
    (message,) = [m for m in stack.notifications("rejected-spike") if m["NewStateValue"] == "ALARM"]
    trigger = message["Trigger"]
    assert trigger["ThresholdMetricId"] == "ad1"
    assert trigger["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    assert {m["Id"]: m.get("Expression") for m in trigger["Metrics"]}["ad1"] == "ANOMALY_DETECTION_BAND(m1, 2)"
    (m1,) = [m for m in trigger["Metrics"] if m["Id"] == "m1"]
    assert m1["MetricStat"]["Metric"] == {"Dimensions": [], "MetricName": "Rejected-Spike",
                                          "Namespace": "flowwatch/det-spike"}
    assert not stack.notifications("egress-spike") or all(
        m["NewStateValue"] != "ALARM" for m in stack.notifications("egress-spike"))

    # the band through GetMetricData: the baseline's median is inside it, the spike above it
    data = stack.cw.get_metric_data(
        MetricDataQueries=alarm["Metrics"], ScanBy="TimestampAscending",
        StartTime=datetime.fromtimestamp(current - 2 * PERIOD, timezone.utc),
        EndTime=datetime.fromtimestamp(spike_at + PERIOD, timezone.utc))
    by_label = {r["Label"]: r for r in data["MetricDataResults"]}
    upper, lower = by_label["Rejected-Spike (expected) Upper"], by_label["Rejected-Spike (expected) Lower"]
    metric = next(r for r in data["MetricDataResults"] if r["Id"] == "m1")
    assert metric["Values"][-1] == 40.0
    at = upper["Timestamps"].index(metric["Timestamps"][-1])          # the spike's period has a band
    assert lower["Timestamps"][at] == upper["Timestamps"][at]
    median = sorted(baseline.values())[len(baseline) // 2]
    assert lower["Values"][at] <= median <= upper["Values"][at] < 40.0
    stack.cli("down", "--yes")
