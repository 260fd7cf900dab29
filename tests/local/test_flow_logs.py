"""The local flow-log service (flowwatch.local.flow_logs): delivery to CloudWatch Logs streams and S3
objects (key layout, gzip header, Parquet/Hive/per-hour), DestinationOptions kept from CreateFlowLogs.

End to end on a server of this module's own; unit tests on moto in-process with a fixed clock.
"""

from __future__ import annotations

import gzip
import re
import time
from datetime import datetime, timezone

import pytest

from flowwatch.local.flow_logs import (DEFAULT_FIELDS, FlowLogService, log_format_fields, render, start_ms,
                                       stream_name, traffic_matches)
from flowwatch.records import RecordFormat
from tests.local.test_dataplane import (ACCOUNT, REGION, V2, SessionClients, api, aws,  # noqa: F401 (fixtures)
                                        flow_log, name, network, objects, records, server, server_now)

FIXED = datetime(2026, 11, 27, 12, 7, 30, tzinfo=timezone.utc).timestamp()   # in the 12:05 delivery window


# ---- end to end on the server --------------------------------------------------------------

@pytest.mark.slow
def test_s3_plain_text_key_layout_and_gzip_header(aws, api, network):
    vpc, subnet = network
    ec2, s3 = aws("ec2"), aws("s3")
    bucket = f"fw-{name()}"
    s3.create_bucket(Bucket=bucket)
    fmt = RecordFormat.parse("v5")
    start = server_now(api) - 60
    flow_log_id = flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="s3",
                           LogDestination=f"arn:aws:s3:::{bucket}", LogFormat=fmt.log_format())
    lines = fmt.synth(account=ACCOUNT, eni="eni-0123456789abcdef0", srcaddr="10.0.0.10", dstaddr="8.8.8.8",
                      protocol=1, action="REJECT", start=start, count=3, vpc_id=vpc, subnet_id=subnet)
    result = api.traffic(region=REGION, fields=fmt.fields, lines=lines + ["garbage"], vpc_id=vpc, subnet_id=subnet)
    assert result["malformed"] == 1 and result["records"] == 3

    (key, body), = objects(s3, bucket).items()
    day = time.strftime("%Y/%m/%d", time.gmtime(server_now(api)))
    assert re.fullmatch(rf"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{day}/"
                        rf"{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log_id}_"
                        rf"\d{{8}}T\d{{2}}[0-5][05]Z_[0-9a-f]{{8}}\.log\.gz", key)
    assert body[:2] == b"\x1f\x8b"                                     # a gzip file
    text = gzip.decompress(body).decode().splitlines()
    assert text[0] == fmt.header() == " ".join(fmt.fields)               # the header line
    assert text[1:] == lines
    assert result["deliveries"] == [{"flow_log_id": flow_log_id, "destination_type": "s3",
                                     "destination": f"arn:aws:s3:::{bucket}", "records": 3, "target": [key],
                                     "error": None}]


@pytest.mark.slow
def test_s3_parquet_hive_per_hour(aws, api, network, tmp_path):
    import duckdb

    vpc, _ = network
    ec2, s3 = aws("ec2"), aws("s3")
    bucket = f"fw-{name()}"
    s3.create_bucket(Bucket=bucket)
    flow_log_id = flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="s3",
                           LogDestination=f"arn:aws:s3:::{bucket}",
                           DestinationOptions={"FileFormat": "parquet", "HiveCompatiblePartitions": True,
                                               "PerHourPartition": True})
    api.traffic(region=REGION, fields=V2.fields, lines=records(api, "eni-0123456789abcdef0", 2), vpc_id=vpc)

    (key, body), = objects(s3, bucket).items()
    assert re.fullmatch(rf"AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/aws-region={REGION}/"
                        rf"year=\d{{4}}/month=\d\d/day=\d\d/hour=\d\d/{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log_id}_"
                        rf"\d{{8}}T\d{{4}}Z_[0-9a-f]{{8}}\.log\.parquet", key)
    con = duckdb.connect()
    (tmp_path / "object.parquet").write_bytes(body)
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?)", [str(tmp_path / "object.parquet")])
    columns = {col: typ for col, typ, *_ in con.execute("DESCRIBE t").fetchall()}
    assert columns["account_id"] == "VARCHAR" and columns["srcport"] == "INTEGER" and columns["bytes"] == "BIGINT"
    assert con.execute("SELECT count(*), min(action), min(protocol) FROM t").fetchone() == (2, "REJECT", 1)


@pytest.mark.slow
def test_cloudwatch_logs_streams_per_eni_and_traffic_type(aws, api, network):
    vpc, subnet = network
    ec2, logs = aws("ec2"), aws("logs")
    group = f"/fw/{name()}"
    logs.create_log_group(logGroupName=group)
    flow_log(ec2, vpc, TrafficType="REJECT", LogDestinationType="cloud-watch-logs",
             LogGroupName=group, DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/delivery")
    eni_a, eni_b = "eni-0aaaaaaaaaaaaaaaa", "eni-0bbbbbbbbbbbbbbbb"
    lines = records(api, eni_a, 2) + records(api, eni_b, 1) + records(api, eni_a, 4, action="ACCEPT", protocol=6)
    result = api.traffic(region=REGION, fields=V2.fields, lines=lines, vpc_id=vpc, subnet_id=subnet)
    (delivery,) = result["deliveries"]
    assert delivery["records"] == 3                                   # ACCEPT records are not a REJECT flow log's
    assert delivery["target"] == [f"{eni_a}-reject", f"{eni_b}-reject"]
    streams = {s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]}
    assert streams == {f"{eni_a}-reject", f"{eni_b}-reject"}
    events = logs.get_log_events(logGroupName=group, logStreamName=f"{eni_a}-reject")["events"]
    assert [e["message"] for e in events] == lines[:2]
    assert events[0]["timestamp"] == int(lines[0].split()[10]) * 1000     # the record's start


@pytest.mark.slow
def test_traffic_outside_any_flow_log_is_not_delivered(api, aws):
    vpc = aws("ec2").create_vpc(CidrBlock="10.9.0.0/24")["Vpc"]["VpcId"]
    result = api.traffic(region=REGION, fields=V2.fields, lines=records(api, "eni-0ccccccccccccccc0", 2), vpc_id=vpc)
    assert result["deliveries"] == [] and result["uncovered"] == 2


@pytest.mark.slow
def test_missing_destinations_are_reported_not_raised(aws, api, network):
    vpc, _ = network
    ec2 = aws("ec2")
    group = f"/fw/{name()}"
    aws("logs").create_log_group(logGroupName=group)
    flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="cloud-watch-logs", LogGroupName=group,
             DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/delivery")
    aws("logs").delete_log_group(logGroupName=group)
    result = api.traffic(region=REGION, fields=V2.fields, lines=records(api, "eni-0dddddddddddddddd", 1), vpc_id=vpc)
    assert "does not exist" in result["deliveries"][0]["error"]


# ---- unit: moto in-process, a fixed clock --------------------------------------------------

@pytest.fixture
def service(session):
    return FlowLogService(SessionClients(session), now=lambda: FIXED)


def _vpc(session) -> str:
    return session.client("ec2").create_vpc(CidrBlock="10.0.0.0/24")["Vpc"]["VpcId"]


def test_s3_object_is_named_by_the_clock_and_holds_the_header_and_records(session, service):
    vpc = _vpc(session)
    s3 = session.client("s3")
    s3.create_bucket(Bucket="fw-unit")
    (fl_id,) = session.client("ec2").create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="REJECT",
                                                      LogDestinationType="s3",
                                                      LogDestination="arn:aws:s3:::fw-unit")["FlowLogIds"]
    lines = V2.synth(account=ACCOUNT, eni="eni-0123456789abcdef0", srcaddr="10.0.0.10", dstaddr="8.8.8.8",
                     protocol=1, action="REJECT", start=int(FIXED) - 60, count=2)
    accepted = V2.synth(account=ACCOUNT, eni="eni-0123456789abcdef0", srcaddr="10.0.0.10", dstaddr="8.8.8.8",
                        protocol=6, action="ACCEPT", start=int(FIXED) - 60, count=1)
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": lines + accepted, "vpc_id": vpc})
    (key,) = result["deliveries"][0]["target"]
    assert re.fullmatch(rf"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/27/"
                        rf"{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261127T1205Z_[0-9a-f]{{8}}\.log\.gz", key)
    body = s3.get_object(Bucket="fw-unit", Key=key)["Body"].read()
    assert body == gzip.compress(("\n".join([" ".join(V2.fields), *lines]) + "\n").encode(), mtime=0)
    assert (result["records"], result["malformed"], result["uncovered"]) == (3, 0, 0)


def test_a_record_without_start_gets_the_clocks_time_in_cloudwatch_logs(session, service):
    vpc = _vpc(session)
    logs = session.client("logs")
    logs.create_log_group(logGroupName="/fw/unit")
    session.client("ec2").create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                           LogDestinationType="cloud-watch-logs", LogGroupName="/fw/unit",
                                           DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/d")
    fields = ["interface-id", "action", "start"]
    result = service.deliver({"region": REGION, "fields": fields, "lines": ["eni-0aaaaaaaaaaaaaaaa REJECT -"],
                              "vpc_id": vpc})
    assert result["deliveries"][0]["target"] == ["eni-0aaaaaaaaaaaaaaaa-all"]
    (event,) = logs.get_log_events(logGroupName="/fw/unit", logStreamName="eni-0aaaaaaaaaaaaaaaa-all")["events"]
    assert event["timestamp"] == int(FIXED * 1000)
    assert event["message"] == render(DEFAULT_FIELDS, {"interface-id": "eni-0aaaaaaaaaaaaaaaa", "action": "REJECT"})


CREATE_RESPONSE = (b'<CreateFlowLogsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                   b'<requestId>r</requestId><flowLogIdSet><item>fl-0123456789abcdef0</item></flowLogIdSet>'
                   b'<unsuccessful/></CreateFlowLogsResponse>')


def test_destination_options_from_the_create_request_then_from_the_tag(session):
    service = FlowLogService(SessionClients(session), now=lambda: FIXED)
    service.tap_create_flow_logs({"Action": "CreateFlowLogs", "DestinationOptions.FileFormat": "parquet",
                                  "DestinationOptions.HiveCompatiblePartitions": "true",
                                  "DestinationOptions.PerHourPartition": "false"}, CREATE_RESPONSE)
    opts = {"FileFormat": "parquet", "HiveCompatiblePartitions": True, "PerHourPartition": False}
    assert service.destination_options({"FlowLogId": "fl-0123456789abcdef0"}) == opts
    tagged = {"FlowLogId": "fl-other", "Tags": [{"Key": "flowwatch:s3-options",
                                                 "Value": "FileFormat=parquet PerHourPartition=true"}]}
    assert service.destination_options(tagged) == {"FileFormat": "parquet", "PerHourPartition": True}
    described = {**tagged, "DestinationOptions": {"FileFormat": "plain-text"}}   # if moto ever returns them
    assert service.destination_options(described) == {"FileFormat": "plain-text"}
    assert service.destination_options({"FlowLogId": "fl-none"}) == {}


def test_a_create_request_without_destination_options_keeps_nothing(session):
    service = FlowLogService(SessionClients(session), now=lambda: FIXED)
    service.tap_create_flow_logs({"Action": "CreateFlowLogs", "LogDestinationType": "s3"}, CREATE_RESPONSE)
    assert service.s3_options == {}


@pytest.mark.parametrize(("traffic_type", "action", "taken"), [
    ("ALL", "ACCEPT", True), ("ALL", "REJECT", True), ("REJECT", "REJECT", True), ("REJECT", "ACCEPT", False),
    ("ACCEPT", "REJECT", False), ("ACCEPT", "-", True), ("REJECT", None, True)])
def test_traffic_type_takes_the_records_of_its_action(traffic_type, action, taken):
    assert traffic_matches(traffic_type, action) is taken


def test_formats_streams_and_start_times():
    assert log_format_fields("${version} ${srcaddr} ${tcp-flags}") == ("version", "srcaddr", "tcp-flags")
    assert log_format_fields(None) == log_format_fields("") == DEFAULT_FIELDS
    assert stream_name("eni-1", "ALL") == "eni-1-all" and stream_name("eni-1", "REJECT") == "eni-1-reject"
    assert render(("a", "b", "c"), {"a": "1", "c": ""}) == "1 - -"
    assert start_ms({"start": "1700000000"}, 7) == 1_700_000_000_000 and start_ms({"start": "-"}, 7) == 7
