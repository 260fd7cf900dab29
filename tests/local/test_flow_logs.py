"""The local flow-log service (flowwatch.local.flow_logs): delivery to CloudWatch Logs streams and S3
objects (key layout, gzip header, Parquet/Hive/per-hour), DestinationOptions kept from CreateFlowLogs.

End to end on a server of this module's own; unit tests on moto in-process with a fixed clock.
"""

from __future__ import annotations

import gzip
import random
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


def _s3_flow_log(session, vpc: str, bucket: str, **kw) -> str:
    session.client("s3").create_bucket(Bucket=bucket)
    (fl_id,) = session.client("ec2").create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", LogDestinationType="s3",
                                                      LogDestination=f"arn:aws:s3:::{bucket}",
                                                      **{"TrafficType": "ALL", **kw})["FlowLogIds"]
    return fl_id


def _text(s3, bucket: str, key: str) -> list[str]:
    return gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode().splitlines()


def _synth(start: int, count: int = 1, **kw) -> list[str]:
    return V2.synth(account=ACCOUNT, **{"eni": "eni-0123456789abcdef0", "srcaddr": "10.0.0.10", "dstaddr": "8.8.8.8",
                                        "protocol": 1, "action": "REJECT", "start": start, "count": count, **kw})


def test_s3_object_holds_the_header_and_the_records_of_the_flow_logs_traffic_type(session, service):
    vpc = _vpc(session)
    s3 = session.client("s3")
    fl_id = _s3_flow_log(session, vpc, "fw-unit", TrafficType="REJECT")
    lines = _synth(int(FIXED) - 60, 2)                      # end = start + 60 s: in the 12:05 window
    accepted = _synth(int(FIXED) - 60, 1, protocol=6, action="ACCEPT")
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": lines + accepted, "vpc_id": vpc})
    (key,) = result["deliveries"][0]["target"]
    assert re.fullmatch(rf"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/27/"
                        rf"{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261127T1205Z_[0-9a-f]{{8}}\.log\.gz", key)
    assert _text(s3, "fw-unit", key) == [" ".join(V2.fields), *lines]
    assert (result["records"], result["malformed"], result["uncovered"]) == (3, 0, 0)


def test_one_delivery_becomes_one_object_per_window_of_the_records_end_time(session, service):
    """Records that ended yesterday and in two windows of today (all delivered now, at 12:07:30)."""
    vpc = _vpc(session)
    s3 = session.client("s3")
    fl_id = _s3_flow_log(session, vpc, "fw-windows")
    yesterday = int(datetime(2026, 11, 26, 23, 58, 0, tzinfo=timezone.utc).timestamp())  # ends 23:59:00
    early = int(datetime(2026, 11, 27, 11, 40, 10, tzinfo=timezone.utc).timestamp())     # ends 11:41:10
    late = int(FIXED) - 200                                                              # ends 12:05:50
    by_end = {"2026/11/26/" + f"{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261126T2355Z": _synth(yesterday, 2),
              "2026/11/27/" + f"{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261127T1140Z": _synth(early, 3),
              "2026/11/27/" + f"{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261127T1205Z": _synth(late, 1)}
    lines = [by_end[k][i] for i in range(3) for k in by_end if i < len(by_end[k])]   # interleaved
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": lines, "vpc_id": vpc})

    (delivery,) = result["deliveries"]
    assert delivery["records"] == 6 and len(delivery["target"]) == 3
    base = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/"
    for key, expected in zip(delivery["target"], by_end.items()):   # oldest window first
        stem, records_of_window = expected
        assert re.fullmatch(rf"{re.escape(base + stem)}_[0-9a-f]{{8}}\.log\.gz", key)
        assert _text(s3, "fw-windows", key) == [" ".join(V2.fields), *records_of_window]


def test_the_per_hour_and_hive_folders_are_the_windows_too(session, service):
    vpc = _vpc(session)
    fl_id = _s3_flow_log(session, vpc, "fw-hive", DestinationOptions={"HiveCompatiblePartitions": True,
                                                                      "PerHourPartition": True})
    service.s3_options[fl_id] = {"HiveCompatiblePartitions": True, "PerHourPartition": True}   # moto drops them
    before_midnight = int(datetime(2026, 11, 26, 23, 59, 0, tzinfo=timezone.utc).timestamp())
    lines = _synth(before_midnight - 60) + _synth(before_midnight + 30)   # end 23:59:00 and 00:00:30
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": lines, "vpc_id": vpc})
    hive = f"AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/aws-region={REGION}/"
    assert [k.rsplit("_", 1)[0] for k in result["deliveries"][0]["target"]] == [
        f"{hive}year=2026/month=11/day=26/hour=23/{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261126T2355Z",
        f"{hive}year=2026/month=11/day=27/hour=00/{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20261127T0000Z"]


# AWS's own records, "Flow log record examples"
# (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html): NODATA and
# SKIPDATA records carry a start and an end, like traffic.
AWS_EXAMPLES = [
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK",
    "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
    "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA",
]


def test_the_aws_example_records_are_filed_by_their_end_time(session, service):
    vpc = _vpc(session)
    s3 = session.client("s3")
    fl_id = _s3_flow_log(session, vpc, "fw-examples")
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": AWS_EXAMPLES, "vpc_id": vpc})
    keys = [d["target"] for d in result["deliveries"]]
    stems = [[k.rsplit("_", 1)[0] for k in target] for target in keys]
    prefix = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/"
    assert stems == [[f"{prefix}2014/12/14/{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20141214T0405Z",    # 04:07:50
                      f"{prefix}2015/05/10/{ACCOUNT}_vpcflowlogs_{REGION}_{fl_id}_20150510T1800Z"]]   # 18:02:14
    assert _text(s3, "fw-examples", keys[0][0])[1:] == AWS_EXAMPLES[:2]
    assert _text(s3, "fw-examples", keys[0][1])[1:] == AWS_EXAMPLES[2:]


def test_a_record_without_an_end_is_filed_by_its_start_and_without_either_by_the_clock(session, service):
    vpc = _vpc(session)
    s3 = session.client("s3")
    _s3_flow_log(session, vpc, "fw-no-end")
    fields = ["interface-id", "action", "start", "end"]
    lines = ["eni-0aaaaaaaaaaaaaaaa REJECT 1418530010 -", "eni-0aaaaaaaaaaaaaaaa REJECT - -"]
    result = service.deliver({"region": REGION, "fields": fields, "lines": lines, "vpc_id": vpc})
    target = result["deliveries"][0]["target"]
    assert [re.search(r"_(\d{8}T\d{4}Z)_", k).group(1) for k in target] == ["20141214T0405Z", "20261127T1205Z"]
    as_v2 = [render(DEFAULT_FIELDS, dict(zip(fields, line.split()))) for line in lines]   # the flow log's format
    assert [_text(s3, "fw-no-end", k)[1:] for k in target] == [[as_v2[0]], [as_v2[1]]]


def test_a_window_over_the_file_size_limit_becomes_several_files(session):
    service = FlowLogService(SessionClients(session), now=lambda: FIXED, max_file_bytes=1500)
    vpc = _vpc(session)
    s3 = session.client("s3")
    _s3_flow_log(session, vpc, "fw-split")
    lines = [line for i in range(400)                       # 5 KB of gzip, all ending in the 12:05 window
             for line in _synth(int(FIXED) - 120 + i % 50, srcaddr=f"10.0.{i % 250}.{i % 7}", protocol=6,
                                srcport=1024 + i * 131, dstport=443, rng=random.Random(i))]
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": lines, "vpc_id": vpc})
    (delivery,) = result["deliveries"]
    bodies = [s3.get_object(Bucket="fw-split", Key=k)["Body"].read() for k in delivery["target"]]
    assert len(bodies) > 1 and all(len(b) <= 1500 for b in bodies)
    assert len({k.rsplit("_", 1)[0] for k in delivery["target"]}) == 1            # one window, several hashes
    texts = [gzip.decompress(b).decode().splitlines() for b in bodies]
    assert all(t[0] == " ".join(V2.fields) for t in texts)                       # each file has the header
    assert [line for t in texts for line in t[1:]] == lines and delivery["records"] == 400


def test_parquet_files_are_gzip_compressed_with_aws_columns_and_types(session, service, tmp_path):
    import duckdb

    vpc = _vpc(session)
    s3 = session.client("s3")
    fl_id = _s3_flow_log(session, vpc, "fw-parquet", DestinationOptions={"FileFormat": "parquet"})
    service.s3_options[fl_id] = {"FileFormat": "parquet"}
    result = service.deliver({"region": REGION, "fields": list(V2.fields), "lines": AWS_EXAMPLES, "vpc_id": vpc})
    paths = []
    for i, key in enumerate(result["deliveries"][0]["target"]):
        assert key.endswith(".log.parquet")
        paths.append(tmp_path / f"{i}.parquet")
        paths[-1].write_bytes(s3.get_object(Bucket="fw-parquet", Key=key)["Body"].read())
    con = duckdb.connect()
    codecs = {c for (c,) in con.execute("SELECT DISTINCT compression FROM parquet_metadata(?)",
                                        [[str(p) for p in paths]]).fetchall()}
    assert codecs == {"GZIP"}
    schema = con.execute("SELECT name, type, converted_type FROM parquet_schema(?) WHERE type IS NOT NULL",
                         [str(paths[0])]).fetchall()
    assert schema == [(s.column, {"INT_32": "INT32", "INT_64": "INT64"}.get(s.parquet_type, "BYTE_ARRAY"),
                       {"STRING": "UTF8"}.get(s.parquet_type, s.parquet_type)) for s in V2.specs]
    rows = con.execute("SELECT * FROM read_parquet(?) ORDER BY \"end\", action NULLS LAST, log_status",
                       [[str(p) for p in paths]]).fetchall()
    assert rows == [(2, "123456789010", "eni-1235b8ca123456789", "172.31.16.139", "172.31.16.21", 20641, 22, 6, 20,
                     4249, 1418530010, 1418530070, "ACCEPT", "OK"),
                    (2, "123456789010", "eni-1235b8ca123456789", "172.31.9.69", "172.31.9.12", 49761, 3389, 6, 20,
                     4249, 1418530010, 1418530070, "REJECT", "OK"),
                    (2, "123456789010", "eni-1235b8ca123456789", None, None, None, None, None, None, None,
                     1431280876, 1431280934, None, "NODATA"),
                    (2, "123456789010", "eni-11111111aaaaaaaaa", None, None, None, None, None, None, None,
                     1431280876, 1431280934, None, "SKIPDATA")]


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
