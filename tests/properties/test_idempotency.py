"""A second up, a dry run and a second down make zero mutating AWS calls; one changed setting
updates only that resource; adopting a VPC never creates or deletes anything of it."""

from __future__ import annotations

import pytest

from flowwatch import engine

from tests.support.context import fresh, make_config, make_ctx, mutating
from tests.support.inventory import empty, inventory

pytestmark = pytest.mark.slow   # whole up/down cycles on moto


def test_second_up_is_silent(ctx, calls):
    engine.up(ctx)
    assert mutating(calls), "the first up must have changed something"
    calls.clear()
    report = engine.up(fresh(ctx))
    assert report.changed == 0
    assert mutating(calls) == []


def test_dry_run_on_empty_account_makes_no_mutating_call(session, calls):
    ctx = make_ctx(session, dry_run=True)
    report = engine.up(ctx)
    assert report.changed > 0            # it planned the whole stack
    assert mutating(calls) == []
    assert empty(inventory(session)) == {}
    text = ctx.out.err.file.getvalue()
    assert "would create" in text and "Would change:" in text


def test_dry_run_down_changes_nothing(ctx, session, calls):
    engine.up(ctx)
    before = inventory(session)
    calls.clear()
    report = engine.down(fresh(ctx, dry_run=True))
    assert report.changed > 0
    assert mutating(calls) == []
    assert inventory(session) == before


def test_second_down_is_silent(ctx, calls):
    engine.up(ctx)
    engine.down(fresh(ctx))
    calls.clear()
    report = engine.down(fresh(ctx))
    assert report.changed == 0
    assert mutating(calls) == []


def test_changing_the_threshold_updates_only_the_alarm_and_its_dashboard_line(ctx, session, calls):
    engine.up(ctx)
    calls.clear()
    rule = {"name": "ping-deny", "match": {"protocol": 1, "action": "REJECT"}, "metric": "Ping-Deny",
            "threshold": 5}
    report = engine.up(make_ctx(session, make_config(alerts={"rules": [rule]})))
    # the dashboard draws the threshold as a line on the rule's widget: it follows
    assert [(c.step, c.action) for c in report.changes] == [("alarm", "update"), ("dashboard", "update")]
    assert "Threshold 1.0 -> 5.0" in report.changes[0].reason
    assert mutating(calls) == [("cloudwatch", "PutMetricAlarm"), ("cloudwatch", "PutDashboard")]
    (alarm,) = session.client("cloudwatch").describe_alarms(AlarmNamePrefix="flowwatch-test-")["MetricAlarms"]
    assert alarm["Threshold"] == 5.0


def test_changing_retention_updates_only_log_group_and_bucket_expiry(ctx, session, calls):
    engine.up(ctx)
    calls.clear()
    report = engine.up(make_ctx(session, make_config(flow_logs={"retention_days": 90})))
    assert [(c.step, c.action, c.params.get("kind")) for c in report.changes] == [
        ("log_group", "update", "retention"), ("bucket", "update", "lifecycle")]
    assert mutating(calls) == [("cloudwatch-logs", "PutRetentionPolicy"), ("s3", "PutBucketLifecycleConfiguration")]
    assert session.client("logs").describe_log_groups(
        logGroupNamePrefix="/flowwatch/test/")["logGroups"][0]["retentionInDays"] == 90


def test_removed_rule_is_deleted_and_new_rule_created(ctx, session):
    engine.up(ctx)
    rule = {"name": "ssh-reject", "match": {"dstport": 22, "action": "REJECT"}, "metric": "Ssh-Reject",
            "namespace": "Flowwatch"}
    report = engine.up(make_ctx(session, make_config(alerts={"rules": [rule]})))
    actions = sorted((c.step, c.action) for c in report.changes)
    assert actions == [("alarm", "create"), ("alarm", "delete"), ("dashboard", "update"),
                       ("metric_filter", "create"), ("metric_filter", "delete")]
    names = [a["AlarmName"] for a in session.client("cloudwatch").describe_alarms()["MetricAlarms"]]
    assert names == ["flowwatch-test-ssh-reject"]


def test_adopted_vpc_is_never_created_changed_or_deleted(session, calls):
    ec2 = session.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]

    def snapshot():
        return (ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"], ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"],
                ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"],
                ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"],
                ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]))

    before = snapshot()
    config = make_config(network={"vpc_id": vpc_id, "subnet_cidr": "10.9.1.0/24"})
    calls.clear()
    engine.up(make_ctx(session, config))
    touched = [c for c in mutating(calls) if c[1] in ("CreateVpc", "CreateSubnet", "CreateInternetGateway",
                                                      "AttachInternetGateway", "CreateRoute", "ModifySubnetAttribute",
                                                      "CreateNetworkAclEntry", "DeleteVpc")]
    assert touched == []
    fls = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
    assert len(fls) == 2  # the monitoring is added to the adopted VPC
    engine.down(make_ctx(session, config))
    after = snapshot()
    assert _strip(after) == _strip(before)
    assert ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"] == []


def _strip(snap):
    def clean(obj):
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k != "ResponseMetadata"}
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return obj
    return clean(snap)
