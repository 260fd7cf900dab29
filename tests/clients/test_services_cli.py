"""CloudWatch, Athena and EC2 as the AWS CLI sees the local AWS: DescribeAlarmHistory, ListMetrics,
named queries and work groups, DescribeFlowLogs' DestinationOptions."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.local.test_dataplane import LocalApi

pytestmark = pytest.mark.slow


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- CloudWatch ------------------------------------------------------------------------------

def test_list_metrics_lists_each_metric_once(aws_cli):
    namespace = unique("Flowwatch/Test")
    for value in ("1", "2", "3"):
        aws_cli("cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-name", "Ping-Deny",
                "--value", value)
    aws_cli("cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-name", "Ping-Deny",
            "--value", "1", "--dimensions", "Eni=eni-1")
    got = aws_cli("cloudwatch", "list-metrics", "--namespace", namespace)
    assert sorted((m["MetricName"], json.dumps(m.get("Dimensions") or [])) for m in got["Metrics"]) == [
        ("Ping-Deny", "[]"), ("Ping-Deny", json.dumps([{"Name": "Eni", "Value": "eni-1"}]))]
    one = aws_cli("cloudwatch", "list-metrics", "--namespace", namespace, "--dimensions", "Name=Eni,Value=eni-1")
    assert len(one["Metrics"]) == 1


def test_alarm_history_of_user_and_evaluator_changes(aws_cli, server):
    name, topic = unique("alarm"), aws_cli("sns", "create-topic", "--name", unique("alerts"))["TopicArn"]
    namespace = unique("Flowwatch/Test")
    aws_cli("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", namespace,
            "--metric-name", "Ping-Deny", "--statistic", "Sum", "--period", "60", "--evaluation-periods", "1",
            "--threshold", "1", "--comparison-operator", "GreaterThanOrEqualToThreshold",
            "--alarm-actions", topic, "--treat-missing-data", "notBreaching")
    LocalApi(server.url).evaluate()   # the evaluator: INSUFFICIENT_DATA -> OK (missing data not breaching)
    aws_cli("cloudwatch", "set-alarm-state", "--alarm-name", name, "--state-value", "ALARM",
            "--state-reason", "testing purposes")
    LocalApi(server.url).evaluate()   # runs the actions of the user's change
    items = aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name)["AlarmHistoryItems"]
    assert [(i["HistoryItemType"], i["HistorySummary"]) for i in items] == [
        ("Action", f"Successfully executed action {topic}"),
        ("StateUpdate", "Alarm updated from OK to ALARM"),
        ("StateUpdate", "Alarm updated from INSUFFICIENT_DATA to OK"),
        ("ConfigurationUpdate", f'Alarm "{name}" created')]
    assert {i["AlarmName"] for i in items} == {name} and {i["AlarmType"] for i in items} == {"MetricAlarm"}
    user = json.loads(items[1]["HistoryData"])
    assert user["version"] == "1.0"
    assert user["newState"] == {"stateValue": "ALARM", "stateReason": "testing purposes"}
    assert user["oldState"]["stateValue"] == "OK" and user["oldState"]["stateReasonData"]["version"] == "1.0"
    evaluated = json.loads(items[2]["HistoryData"])
    assert evaluated["oldState"] == {"stateValue": "INSUFFICIENT_DATA",
                                     "stateReason": "Unchecked: Initial alarm creation"}
    assert evaluated["newState"]["stateReasonData"]["statistic"] == "Sum"
    action = json.loads(items[0]["HistoryData"])
    assert action["actionState"] == "Succeeded" and action["notificationResource"] == topic

    states = aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name, "--history-item-type",
                     "StateUpdate", "--scan-by", "TimestampAscending")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in states] == ["Alarm updated from INSUFFICIENT_DATA to OK",
                                                     "Alarm updated from OK to ALARM"]
    paged = aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name, "--page-size", "1")
    assert [i["HistorySummary"] for i in paged["AlarmHistoryItems"]] == [i["HistorySummary"] for i in items]
    first = aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name, "--max-items", "1")
    assert len(first["AlarmHistoryItems"]) == 1 and first["NextToken"]
    created = int(items[-1]["Timestamp"])   # botocore sends whole seconds
    window = ["--alarm-name", name, "--start-date", str(created), "--end-date", str(created + 3600)]
    assert len(aws_cli("cloudwatch", "describe-alarm-history", *window)["AlarmHistoryItems"]) == 4
    assert aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name,
                   "--end-date", str(created - 60))["AlarmHistoryItems"] == []
    assert aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name, "--alarm-types",
                   "CompositeAlarm")["AlarmHistoryItems"] == []

    aws_cli("cloudwatch", "delete-alarms", "--alarm-names", name)
    newest = aws_cli("cloudwatch", "describe-alarm-history", "--alarm-name", name,
                     "--history-item-type", "ConfigurationUpdate")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in newest] == [f'Alarm "{name}" deleted', f'Alarm "{name}" created']


# ---- Athena ----------------------------------------------------------------------------------

def named_query(aws_cli, workgroup: str, name: str = "rejects") -> str:
    return aws_cli("athena", "create-named-query", "--name", name, "--database", "flowwatch",
                   "--query-string", "SELECT 1", "--work-group", workgroup)["NamedQueryId"]


def test_batch_get_named_query(aws_cli):
    workgroup = unique("wg")
    aws_cli("athena", "create-work-group", "--name", workgroup)
    first, second = named_query(aws_cli, workgroup, "a"), named_query(aws_cli, workgroup, "b")
    got = aws_cli("athena", "batch-get-named-query", "--named-query-ids", first, "no-such-id", second)
    assert [(q["NamedQueryId"], q["Name"], q["WorkGroup"]) for q in got["NamedQueries"]] == [
        (first, "a", workgroup), (second, "b", workgroup)]
    assert [u["NamedQueryId"] for u in got["UnprocessedNamedQueryIds"]] == ["no-such-id"]
    assert "InvalidRequestException" in aws_cli.fails("athena", "get-named-query", "--named-query-id", "no-such-id")


def test_delete_work_group_with_named_queries(aws_cli):
    workgroup = unique("wg")
    aws_cli("athena", "create-work-group", "--name", workgroup)
    query = named_query(aws_cli, workgroup)
    err = aws_cli.fails("athena", "delete-work-group", "--work-group", workgroup)
    assert "(InvalidRequestException)" in err
    assert aws_cli("athena", "list-named-queries", "--work-group", workgroup)["NamedQueryIds"] == [query]
    aws_cli("athena", "delete-work-group", "--work-group", workgroup, "--recursive-delete-option")
    aws_cli("athena", "create-work-group", "--name", workgroup)   # a new work group of that name adopts nothing
    assert aws_cli("athena", "list-named-queries", "--work-group", workgroup)["NamedQueryIds"] == []
    assert "InvalidRequestException" in aws_cli.fails("athena", "get-named-query", "--named-query-id", query)
    got = aws_cli("athena", "batch-get-named-query", "--named-query-ids", query)
    assert got["NamedQueries"] == [] and [u["NamedQueryId"] for u in got["UnprocessedNamedQueryIds"]] == [query]
    aws_cli("athena", "delete-work-group", "--work-group", workgroup)   # empty now: no option needed


def test_delete_named_query(aws_cli):
    workgroup = unique("wg")
    aws_cli("athena", "create-work-group", "--name", workgroup)
    kept, gone = named_query(aws_cli, workgroup, "kept"), named_query(aws_cli, workgroup, "gone")
    aws_cli("athena", "delete-named-query", "--named-query-id", gone)
    assert aws_cli("athena", "list-named-queries", "--work-group", workgroup)["NamedQueryIds"] == [kept]
    assert "InvalidRequestException" in aws_cli.fails("athena", "delete-named-query", "--named-query-id", gone)


# ---- EC2 -------------------------------------------------------------------------------------

def test_describe_flow_logs_has_destination_options(aws_cli):
    vpc = aws_cli("ec2", "create-vpc", "--cidr-block", "10.9.0.0/24")["Vpc"]["VpcId"]
    created = {}
    for traffic, extra in (("ALL", ["--destination-options",
                                    "FileFormat=parquet,HiveCompatiblePartitions=true,PerHourPartition=true"]),
                           ("REJECT", [])):
        bucket = unique("flowwatch-fl")
        aws_cli("s3api", "create-bucket", "--bucket", bucket)
        created[traffic] = aws_cli("ec2", "create-flow-logs", "--resource-type", "VPC", "--resource-ids", vpc,
                                   "--traffic-type", traffic, "--log-destination-type", "s3",
                                   "--log-destination", f"arn:aws:s3:::{bucket}",
                                   *extra)["FlowLogIds"][0]   # a bucket each: moto refuses a second flow log
    got = aws_cli("ec2", "describe-flow-logs", "--flow-log-ids", *created.values())["FlowLogs"]
    options = {fl["FlowLogId"]: fl.get("DestinationOptions") for fl in got}
    assert options == {
        created["ALL"]: {"FileFormat": "parquet", "HiveCompatiblePartitions": True, "PerHourPartition": True},
        created["REJECT"]: {"FileFormat": "plain-text", "HiveCompatiblePartitions": False, "PerHourPartition": False}}
