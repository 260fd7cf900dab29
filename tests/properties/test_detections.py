"""The four built-in detections through the whole cycle on moto: up creates each resource with what AWS needs
(read back through boto3), a second up makes no mutating call, down leaves nothing (inventory)."""

from __future__ import annotations

import json

import pytest

from flowwatch import engine
from flowwatch.records import FIELDS, RecordFormat

from tests.support.context import fresh, make_config, make_ctx, mutating
from tests.support.inventory import empty, inventory

pytestmark = pytest.mark.slow   # whole up/down cycles on moto

ALL4 = ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]
CUSTOM = ["version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
          "packets", "bytes", "start", "end", "action", "log-status", "vpc-id", "pkt-srcaddr", "tcp-flags"]


@pytest.mark.parametrize("fmt", ["v2", "v5", CUSTOM[::-1][:3] + CUSTOM[:-3]], ids=["v2", "v5", "custom"])
def test_up_creates_what_each_detection_needs(session, calls, fmt):
    config = make_config(flow_logs={"format": fmt}, alerts={"detections": ALL4})
    ctx = make_ctx(session, config)
    engine.up(ctx)
    record = RecordFormat.parse(fmt)
    position = {FIELDS[name].column: str(i + 1) for i, name in enumerate(record.fields)}
    cw, logs = session.client("cloudwatch"), session.client("logs")

    filters = {f["filterName"]: f for f in logs.describe_metric_filters(logGroupName=ctx.log_group)["metricFilters"]}
    assert sorted(filters) == ["flowwatch-test-egress-spike", "flowwatch-test-ping-deny", "flowwatch-test-rejected-spike"]
    egress = filters["flowwatch-test-egress-spike"]
    (t,) = egress["metricTransformations"]
    assert (t["metricNamespace"], t["metricName"], t["metricValue"], float(t["defaultValue"])) == (
        "flowwatch/test", "Egress-Spike", "$bytes", 0.0)
    terms = egress["filterPattern"].strip("[]").split(", ")
    assert terms[record.index("srcaddr")] == "srcaddr=10.0.0.*"
    assert terms[record.index("dstaddr")] == "dstaddr!=10.0.0.*" and terms[record.index("bytes")] == "bytes"
    spike = filters["flowwatch-test-rejected-spike"]
    assert spike["filterPattern"].strip("[]").split(", ")[record.index("action")] == "action=REJECT"
    assert spike["metricTransformations"][0]["metricValue"] == "1"

    detectors = cw.describe_anomaly_detectors(Namespace="flowwatch/test")["AnomalyDetectors"]
    assert sorted((d["SingleMetricAnomalyDetector"]["MetricName"], d["SingleMetricAnomalyDetector"]["Stat"],
                   d["SingleMetricAnomalyDetector"]["Dimensions"]) for d in detectors) == [
        ("Egress-Spike", "Sum", []), ("Rejected-Spike", "Sum", [])]

    rules = {r["Name"]: json.loads(r["Definition"]) for r in cw.describe_insight_rules()["InsightRules"]}
    assert sorted(rules) == ["flowwatch-test-ssh-rdp-probe", "flowwatch-test-top-rejected-sources"]
    top = rules["flowwatch-test-top-rejected-sources"]
    assert top["LogFormat"] == "CLF" and top["LogGroupNames"] == [ctx.log_group]
    assert top["Fields"] == {position["srcaddr"]: "srcaddr", position["action"]: "action"}
    assert top["Contribution"]["Keys"] == ["srcaddr"] and top["AggregateOn"] == "Count"
    probe = rules["flowwatch-test-ssh-rdp-probe"]
    assert probe["Fields"] == {position[c]: c for c in ("srcaddr", "dstaddr", "dstport")}

    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix="flowwatch-test-")["MetricAlarms"]}
    assert len(alarms) == 5
    band = alarms["flowwatch-test-rejected-spike"]
    assert band["ThresholdMetricId"] == "ad1"
    assert band["ComparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    assert {m["Id"]: m.get("Expression") for m in band["Metrics"]} == {"m1": None,
                                                                     "ad1": "ANOMALY_DETECTION_BAND(m1, 2)"}
    assert band["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "Rejected-Spike"
    top_alarm = alarms["flowwatch-test-top-rejected-sources"]
    assert [m["Expression"] for m in top_alarm["Metrics"]] == [
        "INSIGHT_RULE_METRIC('flowwatch-test-top-rejected-sources', 'MaxContributorValue')"]
    assert (top_alarm["Threshold"], top_alarm["ComparisonOperator"]) == (25.0, "GreaterThanOrEqualToThreshold")
    assert alarms["flowwatch-test-ping-deny"]["MetricName"] == "Ping-Deny"

    calls.clear()
    assert engine.up(fresh(ctx)).changed == 0
    assert mutating(calls) == []
    calls.clear()
    engine.down(fresh(ctx))
    assert empty(inventory(session)) == {}
    ops = [op for _, op in mutating(calls)]      # down: alarms before the detectors and rules they read
    assert ops.index("DeleteAlarms") < ops.index("DeleteInsightRules") < ops.index("DeleteMetricFilter")
    assert ops.index("DeleteAlarms") < ops.index("DeleteAnomalyDetector")


def test_dry_run_shows_every_detection_and_changes_nothing(session, calls):
    ctx = make_ctx(session, make_config(alerts={"detections": ALL4}), dry_run=True)
    engine.up(ctx)
    assert mutating(calls) == []
    text = ctx.out.err.file.getvalue()
    for name in ALL4:
        assert f"alarm flowwatch-test-{name}" in text
    for name in ("rejected-spike", "egress-spike"):
        assert f"metric filter flowwatch-test-{name}" in text
    assert "anomaly detector flowwatch/test/Rejected-Spike" in text and "anomaly detector flowwatch/test/Egress-Spike" in text
    assert "insight rule flowwatch-test-top-rejected-sources" in text and "insight rule flowwatch-test-ssh-rdp-probe" in text


def test_turning_detections_off_removes_their_resources(session, calls):
    engine.up(make_ctx(session, make_config(alerts={"detections": ALL4})))
    calls.clear()
    report = engine.up(make_ctx(session, make_config()))
    assert sorted((c.step, c.action) for c in report.changes) == sorted(
        [("metric_filter", "delete")] * 2 + [("anomaly_detector", "delete")] * 2 + [("insight_rule", "delete")] * 2
        + [("alarm", "delete")] * 4 + [("dashboard", "update")])     # the dashboard drops their charts
    inv = inventory(session)
    assert inv["insight_rules"] == [] and inv["anomaly_detectors"] == [] and inv["alarms"] == ["flowwatch-test-ping-deny"]
    cw = session.client("cloudwatch")
    body = cw.get_dashboard(DashboardName=inv["dashboards"][0])["DashboardBody"]
    assert "ping-deny" in body.lower() or "Ping-Deny" in body
    assert not any(name in body for name in ALL4), "the dashboard still shows a detection turned off"
