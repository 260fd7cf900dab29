"""anomaly_detector: pure plans first, then moto round trips (moto has no anomaly detectors:
tests/support/aws_faults.AnomalyDetectors answers them from what flowwatch sent)."""

from __future__ import annotations

import pytest

from flowwatch.model import DestroyOptions
from flowwatch.steps.anomaly_detector import AnomalyDetectorStep, DetectorKey, DetectorSeen, DetectorsSpec

from tests.support.context import make_config, make_ctx, mutating
from tests.support.steps import converge_step, destroy_step

STEP = AnomalyDetectorStep()
OWN = "flowwatch/test"
SPIKE = DetectorKey(OWN, "Rejected-Spike")
DETECTIONS = {"detections": ["rejected-spike", "egress-spike"]}


def test_plan():
    want = DetectorsSpec({SPIKE: "rejected-spike"}, OWN)
    assert [(c.action, c.params["key"]) for c in STEP.plan(want, None)] == [("create", SPIKE)]
    assert STEP.plan(want, {SPIKE: DetectorSeen(SPIKE, 0, "TRAINED")}) == []
    (update,) = STEP.plan(want, {SPIKE: DetectorSeen(SPIKE, 2, "TRAINED")})
    assert update.action == "update" and "2 excluded" in update.reason
    old = DetectorKey(OWN, "Old-Rule")
    assert [(c.action, c.params["key"]) for c in STEP.plan(want, {SPIKE: DetectorSeen(SPIKE), old: DetectorSeen(old)})] \
        == [("delete", old)]


def test_plan_destroy_and_publish():
    other = DetectorKey("Custom", "M")
    have = {SPIKE: DetectorSeen(SPIKE), other: DetectorSeen(other)}
    assert [c.params["key"] for c in STEP.plan_destroy(have, DestroyOptions())] == [other, SPIKE]
    assert STEP.plan_destroy(None, DestroyOptions()) == []


def test_desired_only_anomaly_rules():
    from flowwatch.model import Stack
    from flowwatch.naming import Names

    config = make_config(alerts={"detections": ["rejected-spike", "top-rejected-sources", "egress-spike"]})

    class Ctx:                        # desired reads config and stack name only
        pass

    ctx = Ctx()
    ctx.config, ctx.stack, ctx.names = config, Stack("test"), Names.from_config(config)
    want = STEP.desired(ctx)          # type: ignore[arg-type]
    assert want.own_namespace == OWN
    assert want.wanted == {SPIKE: "rejected-spike", DetectorKey(OWN, "Egress-Spike"): "egress-spike"}


def test_create_what_was_sent(session, calls):
    ctx = make_ctx(session, make_config(alerts=DETECTIONS))
    created = converge_step(STEP, ctx)
    assert set(created) == {SPIKE, DetectorKey(OWN, "Egress-Spike")}
    sent = [c for c in mutating(calls)]
    assert sent == [("cloudwatch", "PutAnomalyDetector")] * 2
    detectors = session.client("cloudwatch").describe_anomaly_detectors(Namespace=OWN)["AnomalyDetectors"]
    assert sorted((d["SingleMetricAnomalyDetector"]["MetricName"], d["SingleMetricAnomalyDetector"]["Stat"],
                   d["SingleMetricAnomalyDetector"]["Dimensions"]) for d in detectors) == [
        ("Egress-Spike", "Sum", []), ("Rejected-Spike", "Sum", [])]
    assert STEP.discover(ctx) == STEP.discover(make_ctx(session, ctx.config))
    assert STEP.plan(STEP.desired(ctx), STEP.discover(ctx)) == []


def test_ours_and_not_ours(session):
    """A detector in the stack's namespace that no rule uses is removed; one in another namespace is never
    touched, unless a rule names its metric."""
    cw = session.client("cloudwatch")
    cw.put_anomaly_detector(SingleMetricAnomalyDetector={"Namespace": OWN, "MetricName": "Gone", "Stat": "Sum"})
    cw.put_anomaly_detector(SingleMetricAnomalyDetector={"Namespace": "Other", "MetricName": "M", "Stat": "Sum"})
    rule = {"name": "custom", "kind": "anomaly", "match": {"action": "REJECT"}, "namespace": "Custom-NS",
            "metric": "Custom-M"}
    ctx = make_ctx(session, make_config(alerts={"rules": [rule]}))
    have = STEP.discover(ctx)
    assert set(have) == {DetectorKey(OWN, "Gone")}
    plan = STEP.plan(STEP.desired(ctx), have)
    assert sorted((c.action, str(c.params["key"])) for c in plan) == [
        ("create", "Custom-NS/Custom-M (Sum)"), ("delete", "flowwatch/test/Gone (Sum)")]
    have = converge_step(STEP, ctx, have)
    assert set(have) == {DetectorKey("Custom-NS", "Custom-M")}
    left = {(d["Namespace"], d["MetricName"]) for d in cw.describe_anomaly_detectors()["AnomalyDetectors"]}
    assert left == {("Other", "M"), ("Custom-NS", "Custom-M")}
    assert destroy_step(STEP, ctx, STEP.discover(ctx)) == {}
    assert {(d["Namespace"], d["MetricName"]) for d in cw.describe_anomaly_detectors()["AnomalyDetectors"]} == {
        ("Other", "M")}


def test_deleting_a_detector_already_gone_is_done(session):
    ctx = make_ctx(session, make_config(alerts=DETECTIONS))
    have = converge_step(STEP, ctx)
    session.client("cloudwatch").delete_anomaly_detector(SingleMetricAnomalyDetector=SPIKE.single_metric())
    assert destroy_step(STEP, ctx, have) == {}


def test_the_emulation_refuses_what_aws_refuses(session):
    from botocore.exceptions import ClientError

    cw = session.client("cloudwatch")
    with pytest.raises(ClientError) as err:
        cw.delete_anomaly_detector(SingleMetricAnomalyDetector=SPIKE.single_metric())
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        cw.put_anomaly_detector(SingleMetricAnomalyDetector={"Namespace": OWN, "MetricName": "M", "Stat": "Most"})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
