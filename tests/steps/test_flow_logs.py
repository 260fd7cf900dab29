"""flow_logs: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.model import DestroyOptions
from flowwatch.s3layout import S3_OPTIONS_TAG
from flowwatch.steps.flow_logs import FlowLogSeen, FlowLogsSeen, FlowLogsSpec, FlowLogsStep

from tests.support.steps import converge_step, destroy_step, parents

STEP = FlowLogsStep()
OPTIONS = {"FileFormat": "plain-text", "HiveCompatiblePartitions": False, "PerHourPartition": False}


def spec(**kw) -> FlowLogsSpec:
    base = dict(log_group="/g", bucket="b", log_format="${version}", traffic_type="ALL", aggregation=60,
                s3_options=OPTIONS, vpc_id="vpc-1", role_arn="arn:aws:iam::111:role/r")
    base.update(kw)
    return FlowLogsSpec(**base)


def converged(want: FlowLogsSpec) -> FlowLogsSeen:
    fl = dict(log_format=want.log_format, traffic_type=want.traffic_type, aggregation=want.aggregation,
              status="ACTIVE", error=None)
    return FlowLogsSeen(cwl=FlowLogSeen("fl-1", "cloud-watch-logs", "/g", s3_options={}, role_arn=want.role_arn, **fl),
                        s3=FlowLogSeen("fl-2", "s3", "arn:aws:s3:::b", s3_options=want.s3_options, role_arn=None, **fl))


def test_plan_from_nothing_creates_both():
    assert [c.params["dest"] for c in STEP.plan(spec(), None)] == ["cloud-watch-logs", "s3"]


def test_converged_plans_nothing():
    assert STEP.plan(spec(), converged(spec())) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"traffic_type": "REJECT"}, ["cloud-watch-logs", "s3"]),
    ({"log_format": "${version} ${srcaddr}"}, ["cloud-watch-logs", "s3"]),
    ({"aggregation": 600}, ["cloud-watch-logs", "s3"]),
    ({"s3_options": {**OPTIONS, "FileFormat": "parquet"}}, ["s3"]),
    ({"bucket": "c"}, ["s3"]),
    ({"log_group": "/h"}, ["cloud-watch-logs"]),
])
def test_a_changed_setting_replaces_only_the_flow_logs_it_concerns(change, expected):
    have = converged(spec())
    changes = STEP.plan(spec(**change), have)
    assert [c.params["dest"] for c in changes] == expected
    assert all(c.action == "update" and c.params["replace"] for c in changes)


def test_plan_destroy():
    assert [c.params["id"] for c in STEP.plan_destroy(converged(spec()), DestroyOptions())] == ["fl-1", "fl-2"]
    assert STEP.plan_destroy(None, DestroyOptions()) == []


def test_status_reports_delivery():
    (cwl, s3) = STEP.status(converged(spec())).deliveries
    assert (cwl.flow_log_id, cwl.destination_type, cwl.status) == ("fl-1", "cloud-watch-logs", "ACTIVE")


def test_apply_then_discover_agree(session):
    from tests.support.context import make_config, make_ctx

    ctx = make_ctx(session, make_config(flow_logs={"s3_file_format": "parquet", "hive_partitions": True}))
    parents(ctx, "vpc", "log_group", "delivery_role", "bucket")
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert {fl.id for fl in (seen.cwl, seen.s3)} == {fl.id for fl in (created.cwl, created.s3)}
    assert seen.s3.s3_options == {"FileFormat": "parquet", "HiveCompatiblePartitions": True, "PerHourPartition": False}
    assert seen.cwl.role_arn == ctx.stack.role_arn
    assert STEP.plan(STEP.desired(ctx), seen) == []
    fls = session.client("ec2").describe_flow_logs()["FlowLogs"]
    for fl in fls:                                       # the flow logs keep their step tag
        tags = {t["Key"]: t["Value"] for t in fl["Tags"]}
        assert tags["flowwatch:step"] == "flow_logs" and tags["flowwatch:stack"] == "test"
    (s3,) = [fl for fl in fls if fl["LogDestinationType"] == "s3"]
    assert S3_OPTIONS_TAG in {t["Key"] for t in s3["Tags"]}
    assert destroy_step(STEP, ctx, seen) is None and STEP.discover(ctx) is None
