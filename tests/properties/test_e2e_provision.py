"""up on an empty account creates exactly the stack, status reports it, down leaves nothing.

Properties are asserted through boto3 (what AWS would show), not through flowwatch's own code.
"""

from __future__ import annotations

import pytest

import json

from flowwatch import engine

from tests.support.context import fresh, make_config, make_ctx
from tests.support.inventory import empty, inventory

pytestmark = pytest.mark.slow   # whole up/down cycles on moto

ACCOUNT = "123456789012"


def test_up_creates_the_lab_stack(ctx, session):
    before = empty(inventory(session))
    report = engine.up(ctx)
    assert before == {}
    assert report.errors == 0 and report.changed > 0
    ec2 = session.client("ec2")
    tag = [{"Name": "tag:flowwatch:stack", "Values": ["test"]}]

    (vpc,) = ec2.describe_vpcs(Filters=tag)["Vpcs"]
    assert vpc["CidrBlock"] == "10.0.0.0/24"
    tags = {t["Key"]: t["Value"] for t in vpc["Tags"]}
    assert tags == {"flowwatch:stack": "test", "flowwatch:step": "vpc", "Name": "flowwatch-test-vpc"}

    (subnet,) = ec2.describe_subnets(Filters=tag)["Subnets"]
    assert (subnet["VpcId"], subnet["CidrBlock"], subnet["AvailabilityZone"]) == (vpc["VpcId"], "10.0.0.0/26",
                                                                                  "us-east-1a")
    assert subnet["MapPublicIpOnLaunch"] is True

    (igw,) = ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]
    assert igw["Attachments"][0]["VpcId"] == vpc["VpcId"]
    (main,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]},
                                                 {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw["InternetGatewayId"]}.items() <= next(
        r for r in main["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0").items()

    flow_logs = ec2.describe_flow_logs(Filters=tag)["FlowLogs"]
    by_type = {f["LogDestinationType"]: f for f in flow_logs}
    assert sorted(by_type) == ["cloud-watch-logs", "s3"]
    v2 = ("${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} "
          "${packets} ${bytes} ${start} ${end} ${action} ${log-status}")
    for fl in flow_logs:
        assert (fl["ResourceId"], fl["TrafficType"], fl["MaxAggregationInterval"], fl["LogFormat"]) == (
            vpc["VpcId"], "ALL", 60, v2)
    cwl = by_type["cloud-watch-logs"]
    assert cwl["LogGroupName"] == "/flowwatch/test/flow-logs"
    assert cwl["DeliverLogsPermissionArn"] == f"arn:aws:iam::{ACCOUNT}:role/flowwatch-test-flow-logs-role"
    assert by_type["s3"]["LogDestination"] == f"arn:aws:s3:::flowwatch-test-{ACCOUNT}-us-east-1"
    assert not by_type["s3"].get("DeliverLogsPermissionArn")

    logs = session.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix="/flowwatch/test/")["logGroups"]
    assert group["retentionInDays"] == 30
    (mf,) = logs.describe_metric_filters(logGroupName="/flowwatch/test/flow-logs")["metricFilters"]
    assert mf["filterPattern"] == ("[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, "
                                   "protocol=1, packets, bytes, start, end, action=REJECT, log_status]")
    (t,) = mf["metricTransformations"]
    assert (t["metricName"], t["metricNamespace"], t["metricValue"], float(t["defaultValue"])) == (
        "Ping-Deny", "flowwatch/test", "1", 0.0)   # the default rule: the stack's namespace

    cw = session.client("cloudwatch")
    (alarm,) = cw.describe_alarms(AlarmNamePrefix="flowwatch-test-")["MetricAlarms"]
    topic_arn = f"arn:aws:sns:us-east-1:{ACCOUNT}:flowwatch-test-alerts"
    assert {k: alarm[k] for k in ("MetricName", "Namespace", "Statistic", "Period", "EvaluationPeriods",
                                  "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions",
                                  "OKActions")} == {
        "MetricName": "Ping-Deny", "Namespace": "flowwatch/test", "Statistic": "Sum", "Period": 60,
        "EvaluationPeriods": 1, "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching", "AlarmActions": [topic_arn], "OKActions": [topic_arn]}

    (acl,) = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id",
                                                 "Values": [subnet["SubnetId"]]}])["NetworkAcls"]
    (rule,) = [e for e in acl["Entries"] if e["RuleNumber"] == 90]
    assert (rule["Egress"], rule["Protocol"], rule["RuleAction"], rule["CidrBlock"]) == (True, "1", "deny", "0.0.0.0/0")

    glue = session.client("glue")
    table = glue.get_table(DatabaseName="flowwatch_test", Name="flow_logs")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]][:3] == ["version", "account_id", "interface_id"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["aws_account_id", "aws_region", "dt"]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["StorageDescriptor"]["Location"] == f"s3://flowwatch-test-{ACCOUNT}-us-east-1/AWSLogs/"
    assert table["Parameters"]["storage.location.template"] == (
        f"s3://flowwatch-test-{ACCOUNT}-us-east-1/AWSLogs/${{aws_account_id}}/vpcflowlogs/${{aws_region}}/${{dt}}")
    wg = session.client("athena").get_work_group(WorkGroup="flowwatch-test-athena")["WorkGroup"]
    assert wg["Configuration"]["ResultConfiguration"]["OutputLocation"] == (
        f"s3://flowwatch-test-{ACCOUNT}-us-east-1/athena-results/")
    assert wg["Configuration"]["EnforceWorkGroupConfiguration"] is True
    named = session.client("athena").list_named_queries(WorkGroup="flowwatch-test-athena")["NamedQueryIds"]
    assert len(named) >= 8  # one per query preset

    cw = session.client("cloudwatch")
    board = cw.get_dashboard(DashboardName="flowwatch-test-us-east-1")
    body = json.loads(board["DashboardBody"])
    assert [w["type"] for w in body["widgets"]] == ["text", "log", "log", "log", "alarm", "metric"]
    assert vpc["VpcId"] in body["widgets"][0]["properties"]["markdown"]
    assert body["widgets"][4]["properties"]["alarms"] == [alarm["AlarmArn"]]
    assert {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=board["DashboardArn"])["Tags"]} == {
        "flowwatch:stack": "test", "flowwatch:step": "dashboard", "Name": "flowwatch-test-us-east-1"}

    inv = empty(inventory(session))
    assert set(inv) == {"vpcs", "subnets", "igws", "flow_logs", "log_groups", "roles", "buckets", "topics",
                        "alarms", "databases", "workgroups", "dashboards", "nacl_rule_90", "tagged"}


def test_status_reports_every_resource(ctx, session):
    engine.up(ctx)
    rows = {r.step: r for r in engine.status(fresh(ctx))}
    for step in ("vpc", "subnet", "igw", "log_group", "delivery_role", "bucket", "flow_logs", "nacl", "sns",
                 "metric_filter", "alarm", "dashboard", "athena"):
        assert rows[step].state == "found", (step, rows[step])
    assert rows["flow_logs"].extra["cloud-watch-logs"]["DeliverLogsStatus"] == "SUCCESS"
    assert set(rows["alarm"].extra) == {"flowwatch-test-ping-deny"}


def test_status_on_empty_account_says_missing(ctx):
    rows = {r.step: r for r in engine.status(ctx)}
    assert rows["vpc"].state == "missing"
    assert rows["alarm"].state == "missing"


def test_status_reports_drift(ctx, session):
    engine.up(ctx)
    session.client("logs").put_retention_policy(logGroupName="/flowwatch/test/flow-logs", retentionInDays=7)
    rows = {r.step: r for r in engine.status(fresh(ctx))}
    assert rows["log_group"].state == "drifted"
    assert "retention 7 -> 30" in rows["log_group"].detail


def test_down_leaves_nothing(ctx, session):
    before = inventory(session)
    engine.up(ctx)
    report = engine.down(fresh(ctx))
    assert report.errors == 0
    assert empty(inventory(session)) == empty(before) == {}


def test_down_keep_data_keeps_bucket_and_log_group(ctx, session):
    engine.up(ctx)
    engine.down(fresh(ctx, keep_data=True))
    left = empty(inventory(session))
    assert left.keys() == {"log_groups", "buckets", "tagged"}
    assert all(":s3:::" in arn or ":logs:" in arn for arn in left["tagged"])


def test_custom_format_flows_into_every_consumer(session, calls):
    fields = ["version", "interface-id", "srcaddr", "dstaddr", "protocol", "action", "region", "end", "log-status"]
    ctx = make_ctx(session, make_config(flow_logs={"format": fields}))
    engine.up(ctx)
    (fl, _) = session.client("ec2").describe_flow_logs()["FlowLogs"]
    assert fl["LogFormat"] == " ".join(f"${{{f}}}" for f in fields)
    (mf,) = session.client("logs").describe_metric_filters(logGroupName="/flowwatch/test/flow-logs")["metricFilters"]
    assert mf["filterPattern"] == ("[version, interface_id, srcaddr, dstaddr, protocol=1, action=REJECT, region, "
                                   "end, log_status]")
    table = session.client("glue").get_table(DatabaseName="flowwatch_test", Name="flow_logs")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [f.replace("-", "_") for f in fields]
    # never clashes with the `region` field
    assert [k["Name"] for k in table["PartitionKeys"]] == ["aws_account_id", "aws_region", "dt"]


def test_s3_options_are_sent_and_kept(session, calls):
    ctx = make_ctx(session, make_config(flow_logs={"s3_file_format": "parquet", "hive_partitions": True,
                                                   "per_hour_partitions": True}))
    sent = []
    session.events.register("provide-client-params.ec2.CreateFlowLogs", lambda params, **_: sent.append(params))
    engine.up(ctx)
    (s3_call,) = [p for p in sent if p["LogDestinationType"] == "s3"]
    assert s3_call["DestinationOptions"] == {"FileFormat": "parquet", "HiveCompatiblePartitions": True,
                                             "PerHourPartition": True}
    # moto drops DestinationOptions; flowwatch's own copy (a tag) makes the second run silent.
    calls.clear()
    assert engine.up(fresh(ctx)).changed == 0
    table = session.client("glue").get_table(DatabaseName="flowwatch_test", Name="flow_logs")["Table"]
    assert "Parquet" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    # with Hive-compatible partitions AWS writes under AWSLogs/aws-account-id=<account>/: the policy lets it
    policy = json.loads(session.client("s3").get_bucket_policy(Bucket=f"flowwatch-test-{ACCOUNT}-us-east-1")["Policy"])
    (write,) = [st for st in policy["Statement"] if st.get("Sid") == "AWSLogDeliveryWrite"]
    assert write["Resource"] == f"arn:aws:s3:::flowwatch-test-{ACCOUNT}-us-east-1/AWSLogs/aws-account-id={ACCOUNT}/*"
    assert table["StorageDescriptor"]["Location"] == f"s3://flowwatch-test-{ACCOUNT}-us-east-1/AWSLogs/"
    assert "/aws-account-id=${aws_account_id}/aws-service=vpcflowlogs/aws-region=${aws_region}/${dt}" in \
        table["Parameters"]["storage.location.template"]


def test_email_subscription_is_made_and_reported(session):
    ctx = make_ctx(session, make_config(alerts={"email": "ops@example.com"}))
    engine.up(ctx)
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:flowwatch-test-alerts"
    subs = session.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "ops@example.com")]
    rows = {r.step: r for r in engine.status(fresh(ctx))}
    assert rows["sns"].extra["subscriptions"][0]["endpoint"] == "ops@example.com"
    policy = json.loads(session.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    publishers = [s for s in policy["Statement"] if s["Effect"] == "Allow" and "sns:Publish" in s["Action"]]
    assert [p["Principal"] for p in publishers] == [{"Service": "cloudwatch.amazonaws.com"}]
