"""Each step's planning, pure: no AWS, no moto. (desired state, what was found) -> changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from flowwatch.errors import DriftError, OwnershipError
from flowwatch.steps.alarm import AlarmSeen, AlarmStep, alarm_props
from flowwatch.steps.athena import AthenaSeen, AthenaSpec, AthenaStep
from flowwatch.steps.flow_logs import (PUBLIC_BLOCK, BucketSeen, FlowLogSeen, FlowLogsSeen, FlowLogsSpec,
                                       FlowLogsStep, LogGroupSeen, RoleSeen, bucket_policy, delivery_policy,
                                       delivery_trust)
from flowwatch.steps.igw import IgwSeen, IgwStep
from flowwatch.steps.metric_filter import FilterSeen, FilterSpec, MetricFilterStep
from flowwatch.steps.nacl import NaclSeen, NaclSpec, NaclStep
from flowwatch.steps.sns import SnsSeen, SnsSpec, SnsStep, Subscription
from flowwatch.steps.subnet import SubnetSeen, SubnetSpec, SubnetStep
from flowwatch.steps.vpc import VpcSeen, VpcSpec, VpcStep

from tests.support.context import make_config


def actions(changes):
    return [(c.action, c.params.get("kind")) if c.params.get("kind") else c.action for c in changes]


# ---- vpc ----
@pytest.mark.parametrize(("have", "expected"), [(None, ["create"]), (VpcSeen("vpc-1", "10.0.0.0/24"), [])])
def test_vpc_plan(have, expected):
    assert actions(VpcStep().plan(VpcSpec("10.0.0.0/24"), have)) == expected


def test_vpc_cidr_drift_is_an_error_not_a_replacement():
    with pytest.raises(DriftError, match="10.1.0.0/24"):
        VpcStep().plan(VpcSpec("10.0.0.0/24"), VpcSeen("vpc-1", "10.1.0.0/24"))


def test_adopted_vpc_plans_nothing_and_is_never_destroyed():
    seen = VpcSeen("vpc-1", "172.16.0.0/16", adopted=True)
    assert VpcStep().plan(VpcSpec("10.0.0.0/24", adopt_id="vpc-1"), seen) == []
    assert VpcStep().plan_destroy(seen, None) == []


# ---- subnet ----
def test_subnet_plan_create_then_fix_public_ip():
    spec = SubnetSpec("10.0.0.0/26", "us-east-1a")
    assert actions(SubnetStep().plan(spec, None)) == ["create"]
    off = SubnetSeen("subnet-1", "10.0.0.0/26", "us-east-1a", public_ip=False)
    (change,) = SubnetStep().plan(spec, off)
    assert (change.action, change.reason) == ("update", "public IPs on launch off -> on")
    assert SubnetStep().plan(spec, SubnetSeen("subnet-1", "10.0.0.0/26", "us-east-1a", True)) == []


def test_subnet_in_another_zone_is_drift():
    with pytest.raises(DriftError, match="us-east-1b"):
        SubnetStep().plan(SubnetSpec("10.0.0.0/26", "us-east-1a"), SubnetSeen("s", "10.0.0.0/26", "us-east-1b", True))


# ---- igw ----
def test_igw_plan():
    assert actions(IgwStep().plan(True, None)) == ["create", ("create", "route")]
    detached = IgwSeen("igw-1", None, "rtb-1", None)
    assert actions(IgwStep().plan(True, detached)) == [("update", "attach"), ("create", "route")]
    assert IgwStep().plan(True, IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-1")) == []


def test_igw_foreign_default_route_is_never_replaced():
    with pytest.raises(OwnershipError, match="igw-other"):
        IgwStep().plan(True, IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-other"))


def test_igw_destroy_order_route_detach_delete():
    steps = IgwStep().plan_destroy(IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-1"), SimpleNamespace(stack=SimpleNamespace(vpc_id="vpc-1")))
    assert [c.params["kind"] for c in steps] == ["route", "detach", "igw"]


# ---- nacl ----
OUR_RULE = {"RuleNumber": 90, "Protocol": "1", "RuleAction": "deny", "Egress": True, "CidrBlock": "0.0.0.0/0"}


def test_nacl_plan():
    assert actions(NaclStep().plan(NaclSpec(True), NaclSeen("acl-1", None))) == ["create"]
    assert NaclStep().plan(NaclSpec(True), NaclSeen("acl-1", OUR_RULE)) == []
    assert actions(NaclStep().plan(NaclSpec(False), NaclSeen("acl-1", OUR_RULE))) == ["delete"]
    assert NaclStep().plan(NaclSpec(False, adopted=True), NaclSeen("acl-1", OUR_RULE)) == []


def test_nacl_foreign_rule_90_stops():
    allow = {**OUR_RULE, "RuleAction": "allow"}
    with pytest.raises(OwnershipError, match="rule 90"):
        NaclStep().plan(NaclSpec(True), NaclSeen("acl-1", allow))


# ---- flow logs ----
def spec(**kw) -> FlowLogsSpec:
    arn = "arn:aws:logs:us-east-1:111:log-group:/g"
    base = dict(log_group="/g", log_group_arn=arn, retention=30, role_name="r",
                trust=delivery_trust("aws", "111", "us-east-1"), role_policy=delivery_policy(arn), bucket="b",
                bucket_policy=bucket_policy("aws", "b", "111", "us-east-1"), lifecycle_days=30,
                log_format="${version}", traffic_type="ALL", aggregation=60,
                s3_options={"FileFormat": "plain-text", "HiveCompatiblePartitions": False, "PerHourPartition": False})
    base.update(kw)
    return FlowLogsSpec(**base)


def converged(want: FlowLogsSpec) -> FlowLogsSeen:
    fl = dict(log_format=want.log_format, traffic_type=want.traffic_type, aggregation=want.aggregation,
              role_arn=None, status="ACTIVE", error=None)
    return FlowLogsSeen(
        log_group=LogGroupSeen(want.log_group, want.log_group_arn, want.retention, True),
        role=RoleSeen("r", "arn:aws:iam::111:role/r", want.trust, want.role_policy, True),
        bucket=BucketSeen("b", True, True, PUBLIC_BLOCK, "AES256", want.bucket_policy, want.lifecycle_days,
                          "BucketOwnerEnforced"),
        cwl=FlowLogSeen("fl-1", "cloud-watch-logs", "/g", s3_options={}, **fl),
        s3=FlowLogSeen("fl-2", "s3", "arn:aws:s3:::b", s3_options=want.s3_options, **fl))


def test_flow_logs_plan_from_nothing_creates_everything():
    kinds = [c.params["kind"] for c in FlowLogsStep().plan(spec(), None)]
    assert kinds == ["log_group", "role", "bucket", "flow_log", "flow_log"]


def test_flow_logs_converged_plans_nothing():
    assert FlowLogsStep().plan(spec(), converged(spec())) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"retention": 90, "lifecycle_days": 90}, ["retention", "bucket_lifecycle"]),
    ({"traffic_type": "REJECT"}, ["flow_log", "flow_log"]),
    ({"log_format": "${version} ${srcaddr}"}, ["flow_log", "flow_log"]),
    ({"s3_options": {"FileFormat": "parquet", "HiveCompatiblePartitions": False, "PerHourPartition": False}},
     ["flow_log"]),
])
def test_flow_logs_plan_updates_only_what_differs(change, expected):
    have = converged(spec())
    changes = FlowLogsStep().plan(spec(**change), have)
    assert [c.params["kind"] for c in changes] == expected
    assert all(c.action == "update" for c in changes)
    assert all(c.params.get("replace") for c in changes if c.params["kind"] == "flow_log")


def test_flow_logs_bucket_hardening_is_restored():
    have = converged(spec())
    loose = FlowLogsSeen(have.log_group, have.role, BucketSeen("b", True, True, None, None, None, 30, None),
                         have.cwl, have.s3)
    kinds = [c.params["kind"] for c in FlowLogsStep().plan(spec(), loose)]
    assert kinds == ["bucket_ownership", "bucket_public_block", "bucket_encryption", "bucket_policy"]


@pytest.mark.parametrize("part", ["log_group", "role"])
def test_flow_logs_foreign_names_stop_up(part):
    have = converged(spec())
    foreign = {"log_group": LogGroupSeen("/g", "arn", 30, ours=False),
               "role": RoleSeen("r", "arn", {}, None, ours=False)}[part]
    with pytest.raises(OwnershipError, match="not the stack's"):
        FlowLogsStep().plan(spec(), FlowLogsSeen(**{**have.__dict__, part: foreign}))


@pytest.mark.parametrize("empty", [False, True])
def test_an_untagged_bucket_with_our_name_stops_up_even_when_empty(empty):
    # CreateBucket carries the stack's tags, so an interrupted up never leaves an untagged bucket of ours.
    have = converged(spec())
    with pytest.raises(OwnershipError, match="not tagged as the stack's"):
        FlowLogsStep().plan(spec(), FlowLogsSeen(**{**have.__dict__, "bucket": BucketSeen("b", False, empty)}))


# ---- sns ----
def test_sns_plan():
    want = SnsSpec("t", "arn:aws:sns:us-east-1:111:t", {"Statement": []}, "a@example.com")
    assert actions(SnsStep().plan(want, None)) == [("create", "topic"), ("create", "subscribe")]
    have = SnsSeen(want.arn, want.policy, True, (Subscription("arn:sub:1", "email", "old@example.com"),))
    assert actions(SnsStep().plan(want, have)) == [("create", "subscribe"), ("delete", "unsubscribe")]
    have = SnsSeen(want.arn, want.policy, True, (Subscription("PendingConfirmation", "email", "a@example.com"),))
    assert SnsStep().plan(want, have) == []


def test_sns_foreign_topic_stops_up():
    want = SnsSpec("t", "arn", {}, None)
    with pytest.raises(OwnershipError):
        SnsStep().plan(want, SnsSeen("arn", {}, ours=False))


# ---- metric filter / alarm ----
def test_metric_filter_plan():
    want = {"f": FilterSpec("f", "[a, b=1]", "M", "N")}
    assert actions(MetricFilterStep().plan(want, None)) == ["create"]
    same = {"f": FilterSeen("f", "[a, b=1]", want["f"].transformation())}
    assert MetricFilterStep().plan(want, same) == []
    changed = {"f": FilterSeen("f", "[a, b=2]", want["f"].transformation()),
               "old": FilterSeen("old", "x", {})}
    assert actions(MetricFilterStep().plan(want, changed)) == ["update", "delete"]


def test_alarm_plan():
    rule = make_config().alerts.rules[0]
    props = alarm_props(rule, "arn:topic")
    want = {"a": props}
    assert actions(AlarmStep().plan(want, None)) == ["create"]
    assert AlarmStep().plan(want, {"a": AlarmSeen("a", props, "OK", True)}) == []
    (change,) = AlarmStep().plan(want, {"a": AlarmSeen("a", {**props, "Threshold": 5.0}, "OK", True)})
    assert change.reason == "Threshold 5.0 -> 1.0"
    with pytest.raises(OwnershipError):
        AlarmStep().plan(want, {"a": AlarmSeen("a", props, "OK", False)})
    assert AlarmStep().plan({}, {"x": AlarmSeen("x", props, "OK", False)}) == []   # not ours: never deleted


def test_alarm_is_the_labs():
    props = alarm_props(make_config().alerts.rules[0], "arn:topic")
    assert {k: props[k] for k in ("Statistic", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                                  "ComparisonOperator", "TreatMissingData")} == {
        "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching"}
    assert props["AlarmActions"] == props["OKActions"] == ["arn:topic"]


# ---- athena ----
def test_athena_plan():
    table = {"Name": "t", "Parameters": {"p": "1"}, "PartitionKeys": [{"Name": "dt"}],
             "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "int"}], "Location": "s3://b/",
                                   "SerdeInfo": {"SerializationLibrary": "S"}}}
    config = {"ResultConfiguration": {"OutputLocation": "s3://b/r/",
                                      "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
              "EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
              "BytesScannedCutoffPerQuery": 10 * 1024 ** 3}
    want = AthenaSpec("db", "t", table, "wg", config, {"q": ("d", "SELECT 1")})
    assert [c.params["kind"] for c in AthenaStep().plan(want, None)] == ["database", "table", "workgroup", "query"]
    have = AthenaSeen("db", True, table, "wg", True, config, {"q": ("id", "d", "SELECT 1")})
    assert AthenaStep().plan(want, have) == []
    moved = {**table, "StorageDescriptor": {**table["StorageDescriptor"], "Location": "s3://c/"}}
    (change,) = AthenaStep().plan(want, AthenaSeen("db", True, moved, "wg", True, config, have.queries))
    assert (change.action, change.params["kind"]) == ("update", "table")


def test_igw_attached_to_a_foreign_vpc_is_never_detached_from_it():
    from types import SimpleNamespace

    ctx = SimpleNamespace(stack=SimpleNamespace(vpc_id="vpc-ours"))
    with pytest.raises(OwnershipError, match="vpc-other"):
        IgwStep().plan_destroy(IgwSeen("igw-1", "vpc-other", "rtb-1", None), ctx)
    kinds = [c.params["kind"] for c in IgwStep().plan_destroy(IgwSeen("igw-1", "vpc-ours", "rtb-1", "igw-1"), ctx)]
    assert kinds == ["route", "detach", "igw"]


@pytest.mark.parametrize("drift", [
    {"BytesScannedCutoffPerQuery": None}, {"PublishCloudWatchMetricsEnabled": False},
    {"EnforceWorkGroupConfiguration": False}, {"ResultConfiguration": {"OutputLocation": "s3://b/r/"}}])
def test_athena_workgroup_drift_in_any_enforced_setting_is_repaired(drift):
    config = {"ResultConfiguration": {"OutputLocation": "s3://b/r/",
                                      "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
              "EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
              "BytesScannedCutoffPerQuery": 10 * 1024 ** 3}
    want = AthenaSpec("db", "t", {}, "wg", config, {})
    have = AthenaSeen("db", True, None, "wg", True, {**config, **drift}, {})
    changes = [c for c in AthenaStep().plan(want, have) if c.params["kind"] == "workgroup"]
    assert [(c.action, c.reason) for c in changes] == [("update", "settings differ")]
