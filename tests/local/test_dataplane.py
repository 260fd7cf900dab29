"""The local AWS's data plane, end to end on a real server process (127.0.0.1, free port, stopped at
the end): flow-log delivery to CloudWatch Logs and S3 (key layout, gzip header, Parquet/Hive/per-hour),
metric filters -> metrics, alarm evaluation -> SetAlarmState + SNS notification -> inbox.

Assertions are on what AWS would show (objects, streams, metric statistics, alarm state, the
published message), never on moto's silence. The fast clock (POST /_flowwatch/clock) stands in
for "five minutes later".
"""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid

import boto3
import pytest

from flowwatch import local
from flowwatch.records import RecordFormat

ACCOUNT = "123456789012"
REGION = "us-east-1"
V2 = RecordFormat.parse("v2")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("local-aws")
    info, _ = local.start(0, directory, tick=3600)   # evaluations only when data arrives or on demand
    try:
        yield info
    finally:
        local.stop(directory)
    assert not local.pid_alive(info.pid)


@pytest.fixture
def aws(server):
    kw = {"region_name": REGION, "endpoint_url": server.url, "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    return lambda service: boto3.client(service, **kw)


@pytest.fixture
def api(server):
    return local.LocalApi(server.url)


@pytest.fixture
def network(aws):
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/24")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/26")["Subnet"]["SubnetId"]
    return vpc, subnet


def _name() -> str:
    return uuid.uuid4().hex[:10]


def _now(api) -> int:
    """The server's clock (wall clock + fast-forward offset)."""
    return int(api.health()["now"])


def _records(api, eni: str, n: int, action: str = "REJECT", protocol: int = 1, start: int | None = None) -> list[str]:
    start = start if start is not None else _now(api) - 60
    return V2.synth(account=ACCOUNT, eni=eni, srcaddr="10.0.0.10", dstaddr="8.8.8.8", protocol=protocol,
                    action=action, start=start, count=n)


def _flow_log(ec2, vpc: str, **kw) -> str:
    resp = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", **kw)
    assert not resp.get("Unsuccessful"), resp
    return resp["FlowLogIds"][0]


def _objects(s3, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


# ---- delivery ------------------------------------------------------------------------------

def test_s3_plain_text_key_layout_and_gzip_header(aws, api, network):
    vpc, subnet = network
    ec2, s3 = aws("ec2"), aws("s3")
    bucket = f"fw-{_name()}"
    s3.create_bucket(Bucket=bucket)
    fmt = RecordFormat.parse("v5")
    start = _now(api) - 60
    flow_log = _flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}",
                         LogFormat=fmt.log_format())
    lines = fmt.synth(account=ACCOUNT, eni="eni-0123456789abcdef0", srcaddr="10.0.0.10", dstaddr="8.8.8.8",
                      protocol=1, action="REJECT", start=start, count=3, vpc_id=vpc, subnet_id=subnet)
    result = api.traffic(region=REGION, fields=fmt.fields, lines=lines + ["garbage"], vpc_id=vpc, subnet_id=subnet)
    assert result["malformed"] == 1 and result["records"] == 3

    (key, body), = _objects(s3, bucket).items()
    day = time.strftime("%Y/%m/%d", time.gmtime(_now(api)))
    assert re.fullmatch(rf"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{day}/"
                        rf"{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log}_\d{{8}}T\d{{2}}[0-5][05]Z_[0-9a-f]{{8}}\.log\.gz", key)
    assert body[:2] == b"\x1f\x8b"                                     # a gzip file
    text = gzip.decompress(body).decode().splitlines()
    assert text[0] == fmt.header() == " ".join(fmt.fields)               # the header line
    assert text[1:] == lines


def test_s3_parquet_hive_per_hour(aws, api, network):
    import duckdb

    vpc, _ = network
    ec2, s3 = aws("ec2"), aws("s3")
    bucket = f"fw-{_name()}"
    s3.create_bucket(Bucket=bucket)
    flow_log = _flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}",
                         DestinationOptions={"FileFormat": "parquet", "HiveCompatiblePartitions": True,
                                             "PerHourPartition": True})
    api.traffic(region=REGION, fields=V2.fields, lines=_records(api, "eni-0123456789abcdef0", 2), vpc_id=vpc)

    (key, body), = _objects(s3, bucket).items()
    assert re.fullmatch(rf"AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/aws-region={REGION}/"
                        rf"year=\d{{4}}/month=\d\d/day=\d\d/hour=\d\d/{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log}_"
                        rf"\d{{8}}T\d{{4}}Z_[0-9a-f]{{8}}\.log\.parquet", key)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?)", [_tmp_file(body)])
    columns = {name: typ for name, typ, *_ in con.execute("DESCRIBE t").fetchall()}
    assert columns["account_id"] == "VARCHAR" and columns["srcport"] == "INTEGER" and columns["bytes"] == "BIGINT"
    assert con.execute("SELECT count(*), min(action), min(protocol) FROM t").fetchone() == (2, "REJECT", 1)


def _tmp_file(data: bytes) -> str:
    import tempfile

    fh = tempfile.NamedTemporaryFile(suffix=".parquet", delete=False)
    fh.write(data)
    fh.close()
    return fh.name


def test_cloudwatch_logs_streams_per_eni_and_traffic_type(aws, api, network):
    vpc, subnet = network
    ec2, logs = aws("ec2"), aws("logs")
    group = f"/fw/{_name()}"
    logs.create_log_group(logGroupName=group)
    _flow_log(ec2, vpc, TrafficType="REJECT", LogDestinationType="cloud-watch-logs",
              LogGroupName=group, DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/delivery")
    eni_a, eni_b = "eni-0aaaaaaaaaaaaaaaa", "eni-0bbbbbbbbbbbbbbbb"
    lines = _records(api, eni_a, 2) + _records(api, eni_b, 1) + _records(api, eni_a, 4, action="ACCEPT", protocol=6)
    result = api.traffic(region=REGION, fields=V2.fields, lines=lines, vpc_id=vpc, subnet_id=subnet)
    (delivery,) = result["deliveries"]
    assert delivery["records"] == 3                                   # ACCEPT records are not a REJECT flow log's
    streams = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]}
    assert streams == {f"{eni_a}-reject", f"{eni_b}-reject"}
    events = logs.get_log_events(logGroupName=group, logStreamName=f"{eni_a}-reject")["events"]
    assert [e["message"] for e in events] == lines[:2]
    assert events[0]["timestamp"] == int(lines[0].split()[10]) * 1000     # the record's start


def test_traffic_outside_any_flow_log_is_not_delivered(api, aws):
    vpc = aws("ec2").create_vpc(CidrBlock="10.9.0.0/24")["Vpc"]["VpcId"]
    result = api.traffic(region=REGION, fields=V2.fields, lines=_records(api, "eni-0ccccccccccccccc0", 2), vpc_id=vpc)
    assert result["deliveries"] == [] and result["uncovered"] == 2


def test_missing_destinations_are_reported_not_raised(aws, api, network):
    vpc, _ = network
    ec2 = aws("ec2")
    group = f"/fw/{_name()}"
    aws("logs").create_log_group(logGroupName=group)
    _flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="cloud-watch-logs", LogGroupName=group,
              DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/delivery")
    aws("logs").delete_log_group(logGroupName=group)
    result = api.traffic(region=REGION, fields=V2.fields, lines=_records(api, "eni-0dddddddddddddddd", 1), vpc_id=vpc)
    assert "does not exist" in result["deliveries"][0]["error"]


# ---- metric filters ------------------------------------------------------------------------

def test_metric_filter_values_default_and_dimensions(aws, api):
    logs, cw = aws("logs"), aws("cloudwatch")
    group, ns = f"/fw/{_name()}", f"NS{_name()}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    rejects = V2.filter_pattern({"action": "REJECT"})
    logs.put_metric_filter(logGroupName=group, filterName="count", filterPattern=V2.filter_pattern(
        {"protocol": 1, "action": "REJECT"}), metricTransformations=[
        {"metricName": "Pings", "metricNamespace": ns, "metricValue": "1", "defaultValue": 0}])
    logs.put_metric_filter(logGroupName=group, filterName="bytes", filterPattern=rejects, metricTransformations=[
        {"metricName": "Bytes", "metricNamespace": ns, "metricValue": "$bytes", "unit": "Bytes",
         "dimensions": {"Protocol": "$protocol"}}])
    minute = _now(api) // 60 * 60 - 120
    lines = (_records(api, "eni-0eeeeeeeeeeeeeeee", 3, start=minute)
             + _records(api, "eni-0eeeeeeeeeeeeeeee", 2, action="ACCEPT", protocol=6, start=minute + 60))
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": int(line.split()[10]) * 1000, "message": line} for line in lines])

    def stats(metric: str, dims=(), stat="Sum"):
        points = cw.get_metric_statistics(Namespace=ns, MetricName=metric, Dimensions=list(dims),
                                          StartTime=minute - 60, EndTime=minute + 180, Period=60,
                                          Statistics=[stat])["Datapoints"]
        return sorted((int(p["Timestamp"].timestamp()), p[stat]) for p in points)

    # minute 1: three matching pings -> 3; minute 2: events but no match -> defaultValue 0 once
    assert stats("Pings") == [(minute, 3.0), (minute + 60, 0.0)]
    assert stats("Pings", stat="SampleCount") == [(minute, 3.0), (minute + 60, 1.0)]
    expected_bytes = sum(int(line.split()[9]) for line in lines[:3])
    assert stats("Bytes", [{"Name": "Protocol", "Value": "1"}]) == [(minute, float(expected_bytes))]


# ---- alarms -> notifications ---------------------------------------------------------------

def _alarm_stack(aws, *, treat="notBreaching", n=1, m=1, email="ops@example.com"):
    logs, cw, sns = aws("logs"), aws("cloudwatch"), aws("sns")
    name = _name()
    group, ns = f"/fw/{name}", f"NS{name}"
    logs.create_log_group(logGroupName=group)
    logs.put_metric_filter(logGroupName=group, filterName="pings", filterPattern=V2.filter_pattern(
        {"protocol": 1, "action": "REJECT"}), metricTransformations=[
        {"metricName": "Ping-Deny", "metricNamespace": ns, "metricValue": "1", "defaultValue": 0}])
    topic = sns.create_topic(Name=f"t{name}")["TopicArn"]
    if email:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
    alarm = f"a{name}"
    cw.put_metric_alarm(AlarmName=alarm, Namespace=ns, MetricName="Ping-Deny", Statistic="Sum", Period=60,
                        EvaluationPeriods=n, DatapointsToAlarm=m, Threshold=1,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData=treat,
                        AlarmActions=[topic], OKActions=[topic])
    return group, alarm, topic


def _state(aws, alarm: str) -> str:
    return aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"]


def _messages(api, topic: str) -> list[dict]:
    return [m for m in api.inbox() if m["topic_arn"] == topic]


def test_pattern_metric_alarm_notification_and_back_to_ok(aws, api, network):
    vpc, subnet = network
    group, alarm, topic = _alarm_stack(aws)
    _flow_log(aws("ec2"), vpc, TrafficType="ALL", LogDestinationType="cloud-watch-logs", LogGroupName=group,
              DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/delivery")
    api.evaluate()
    assert _state(aws, alarm) == "OK"                      # INSUFFICIENT_DATA -> OK: nothing missing is bad
    (first,) = _messages(api, topic)
    assert json.loads(first["message"])["OldStateValue"] == "INSUFFICIENT_DATA"

    api.traffic(region=REGION, fields=V2.fields, lines=_records(api, "eni-0f0f0f0f0f0f0f0f0", 5, action="ACCEPT",
                                                                    protocol=6), vpc_id=vpc, subnet_id=subnet)
    api.evaluate()
    assert _state(aws, alarm) == "OK"                      # allowed traffic: default value 0, no alarm

    injected = time.monotonic()
    api.traffic(region=REGION, fields=V2.fields, lines=_records(api, "eni-0f0f0f0f0f0f0f0f0", 4), vpc_id=vpc,
                subnet_id=subnet)
    api.evaluate()
    assert _state(aws, alarm) == "ALARM"
    assert time.monotonic() - injected < 5
    described = aws("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    assert described["StateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [")
    assert json.loads(described["StateReasonData"])["recentDatapoints"][-1] >= 4.0

    fired = _messages(api, topic)[-1]
    assert fired["recipients"] == ["ops@example.com"]
    assert fired["subject"] == f'ALARM: "{alarm}" in US East (N. Virginia)'
    body = json.loads(fired["message"])                   # what SQS/Lambda/HTTP subscribers get
    assert (body["AlarmName"], body["OldStateValue"], body["NewStateValue"]) == (alarm, "OK", "ALARM")
    assert body["Trigger"]["MetricName"] == "Ping-Deny" and body["AWSAccountId"] == ACCOUNT
    assert fired["body"].startswith(f'You are receiving this email because your Amazon CloudWatch Alarm "{alarm}"')

    api.advance(5 * 60)                                    # five minutes without data: notBreaching -> OK
    api.evaluate()
    assert _state(aws, alarm) == "OK"
    back = _messages(api, topic)[-1]
    assert (json.loads(back["message"])["OldStateValue"], json.loads(back["message"])["NewStateValue"]) == \
        ("ALARM", "OK")
    assert len(_messages(api, topic)) == 3                 # OK, ALARM, OK: one message per state change


@pytest.mark.parametrize(("treat", "expected"), [("missing", "INSUFFICIENT_DATA"), ("breaching", "ALARM"),
                                                 ("notBreaching", "OK"), ("ignore", "INSUFFICIENT_DATA")])
def test_new_alarm_without_data_by_treat_missing_data(aws, api, treat, expected):
    _, alarm, topic = _alarm_stack(aws, treat=treat, email=None)
    api.evaluate()
    assert _state(aws, alarm) == expected                  # starts INSUFFICIENT_DATA, not moto's "OK"
    sent = _messages(api, topic)
    assert len(sent) == (0 if expected == "INSUFFICIENT_DATA" else 1)
    assert all(m["recipients"] == [] for m in sent)        # nobody subscribed: nobody would get the e-mail


def test_m_of_n_needs_m_breaching_periods(aws, api, network):
    vpc, _ = network
    group, alarm, topic = _alarm_stack(aws, treat="missing", n=3, m=2)
    logs = aws("logs")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = _now(api) // 60 * 60

    def put(start):
        lines = _records(api, "eni-0abababababababab", 1, start=start)
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": start * 1000, "message": lines[0]}])

    put(now - 120)          # "- - X - -": one breaching period, two periods old, then missing
    api.evaluate()
    assert _state(aws, alarm) == "ALARM"                   # premature-alarm rule (M = 2 <= age)
    api.advance(10 * 60)    # the range empties: missing -> INSUFFICIENT_DATA
    api.evaluate()
    assert _state(aws, alarm) == "INSUFFICIENT_DATA"
    assert [json.loads(m["message"])["NewStateValue"] for m in _messages(api, topic)] == ["ALARM"]


def test_set_alarm_state_from_outside_fires_the_actions(aws, api):
    _, alarm, topic = _alarm_stack(aws)
    api.evaluate()
    aws("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="testing the pager")
    api.evaluate()
    last = _messages(api, topic)[-1]
    assert json.loads(last["message"])["NewStateValue"] == "ALARM"
    assert json.loads(last["message"])["NewStateReason"] == "testing the pager"


def test_bucket_policy_is_kept_and_does_not_lock_the_bucket(aws, api, network):
    """moto turns conditional statements into denials; the local AWS stores the policy as given."""
    vpc, _ = network
    s3 = aws("s3")
    bucket = f"fw-{_name()}"
    s3.create_bucket(Bucket=bucket)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "Delivery", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*",
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    _flow_log(aws("ec2"), vpc, TrafficType="ALL", LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}")
    result = api.traffic(region=REGION, fields=V2.fields, lines=_records(api, "eni-0123123123123123a", 1), vpc_id=vpc)
    assert result["deliveries"][0]["error"] is None
    assert len(_objects(s3, bucket)) == 1                  # delivered, and readable
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=bucket)


def test_create_bucket_tags_are_applied_as_aws_does(aws):
    """AWS tags a bucket atomically from CreateBucketConfiguration.Tags (moto drops them): the local AWS
    applies them, so an interrupted `up` never leaves an untagged bucket of the stack's."""
    s3 = aws("s3")
    name = f"fw-{_name()}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"Tags": [{"Key": "flowwatch:stack", "Value": "t"}]})
    assert s3.get_bucket_tagging(Bucket=name)["TagSet"] == [{"Key": "flowwatch:stack", "Value": "t"}]
    plain = f"fw-{_name()}"
    s3.create_bucket(Bucket=plain)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchTagSet"):
        s3.get_bucket_tagging(Bucket=plain)
