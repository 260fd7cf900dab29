"""The local AWS's S3 flow-log delivery as clients see it: object keys dated by the records' end
time, bodies that flowlogs-reader's S3FlowLogsReader (plain text and Parquet, with and without Hive
partitions) reads back as exactly the records injected, and `flowwatch --local query --from/--to`
finding traffic injected for two days ago.

On real local servers: this module's own (tests.local.test_dataplane's ``server`` fixture) and,
for the CLI, one started as `flowwatch local start` does.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from flowlogs_reader import FlowRecord, S3FlowLogsReader

from flowwatch.local import process
from flowwatch.local.client import LocalApi
from tests.local.test_dataplane import (ACCOUNT, REGION, V2, api, aws, flow_log, name, network,  # noqa: F401
                                        server, server_now)
from tests.support.cli import run_cli

pytestmark = pytest.mark.slow   # real local servers

ENI = "eni-0123456789abcdef0"
DAY = 86400


def _day_start(epoch: int) -> int:
    return epoch - epoch % DAY


def _traffic(now: int) -> dict[str, list[str]]:
    """Records ending yesterday 23:59:00, today 00:11:00 and 00:21:00 (two windows), keyed by their
    file's YYYYMMDDTHHmmZ."""
    today = _day_start(now)
    out: dict[str, list[str]] = {}
    for i, end in enumerate((today - 60, today + 660, today + 1260)):
        stamp = datetime.fromtimestamp(end - end % 300, tz=timezone.utc).strftime("%Y%m%dT%H%MZ")
        out[stamp] = V2.synth(account=ACCOUNT, eni=ENI, srcaddr=f"10.0.0.{10 + i}", dstaddr="8.8.8.8",
                              protocol=6, srcport=40000 + i, dstport=443, action="ACCEPT", start=end - 60,
                              end=end, count=2 + i)
    return out


def _keys(s3, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize(("file_format", "hive"), [("plain-text", False), ("parquet", False),
                                                   ("plain-text", True), ("parquet", True)])
def test_flowlogs_reader_reads_back_exactly_the_injected_records(aws, api, network, file_format, hive):
    vpc, subnet = network
    ec2, s3 = aws("ec2"), aws("s3")
    bucket = f"fw-{name()}"
    s3.create_bucket(Bucket=bucket)
    flow_log_id = flow_log(ec2, vpc, TrafficType="ALL", LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}",
                           DestinationOptions={"FileFormat": file_format, "HiveCompatiblePartitions": hive})
    traffic = _traffic(server_now(api))
    lines = [line for recs in traffic.values() for line in recs]
    assert api.traffic(region=REGION, fields=V2.fields, lines=lines, vpc_id=vpc, subnet_id=subnet)["records"] == 9

    ext = ".log.parquet" if file_format == "parquet" else ".log.gz"
    keys = _keys(s3, bucket)
    folders = []
    for key, stamp in zip(keys, sorted(traffic)):                  # one object per window, in its day's folder
        y, m, d = stamp[:4], stamp[4:6], stamp[6:8]
        folder = (f"AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/aws-region={REGION}/"
                  f"year={y}/month={m}/day={d}/" if hive else f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{y}/{m}/{d}/")
        assert key.startswith(f"{folder}{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log_id}_{stamp}_") and key.endswith(ext)
        folders.append(folder)
    assert len(keys) == 3 and folders[0] != folders[1] == folders[2]   # yesterday's folder, then today's

    today = datetime.fromtimestamp(_day_start(server_now(api)), tz=timezone.utc).replace(tzinfo=None)
    reader = S3FlowLogsReader(bucket, start_time=today - timedelta(days=1), end_time=today + timedelta(days=1),
                              boto_client=s3)
    if hive:
        # flowlogs-reader 5.0.1 finds keys only under AWSLogs/<account>/vpcflowlogs/ (its
        # _get_region_prefixes), never under the Hive folders; its file reader still reads the files
        assert list(reader) == []
        got = [FlowRecord(row) for key in keys for row in reader._read_file(key)]
    else:
        got = list(reader)
        assert reader.skipped_records == 0
    expected = [FlowRecord.from_cwl_event({"message": line}) for stamp in sorted(traffic) for line in traffic[stamp]]
    assert got == expected


def test_a_query_window_finds_traffic_injected_for_two_days_ago(tmp_path_factory, tmp_path, capsys, monkeypatch):
    """`flowwatch --local query rejects --from/--to` over REJECTs that ended two days ago (plain text,
    then Parquet with Hive and per-hour partitions), and nothing in a window of the day after."""
    directory = tmp_path_factory.mktemp("local-query")
    info, _ = process.start(0, directory / "flowwatch")
    try:
        monkeypatch.setenv("XDG_STATE_HOME", str(directory))        # where `--local` finds the server
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=info.url, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        for stack, options in (("q-text", ""), ("q-parquet", "  s3_file_format: parquet\n  hive_partitions: true\n"
                                                              "  per_hour_partitions: true\n")):
            (tmp_path / "flowwatch.yaml").write_text(f"stack: {stack}\nflow_logs:\n  format: v2\n{options}")
            up = run_cli(capsys, monkeypatch, "--local", "up")
            assert up.code == 0, up.err
            vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": [stack]}])["Vpcs"][0]["VpcId"]
            now = int(datetime.now(timezone.utc).timestamp())
            start = _day_start(now) - 2 * DAY + 23 * 3600 + 58 * 60        # 23:58 two days ago, ends after midnight
            lines = V2.synth(account=ACCOUNT, eni=ENI, srcaddr="10.0.0.10", dstaddr="8.8.8.8", protocol=1,
                             action="REJECT", start=start, end=start + 180, count=3)
            result = LocalApi(info.url).traffic(
                region=REGION, fields=V2.fields, lines=lines, eni=ENI, vpc_id=vpc)
            assert {d["destination_type"] for d in result["deliveries"]} == {"s3", "cloud-watch-logs"}

            def query(lo: int, hi: int):
                iso = lambda t: datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
                res = run_cli(capsys, monkeypatch, "--local", "query", "rejects", "--engine", "local", "--from",
                              iso(lo), "--to", iso(hi), "--output", "json")
                assert res.code == 0, res.err
                return json.loads(res.out)

            rows = query(start - 60, start + 60)            # the records' start is in the window
            assert [(r["srcaddr"], r["start"], r["end"]) for r in rows] == [("10.0.0.10", start, start + 180)] * 3
            assert query(start + 2 * 3600, start + 3 * 3600) == []
    finally:
        process.stop(directory / "flowwatch")
