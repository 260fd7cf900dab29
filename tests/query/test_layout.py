"""The local engine over AWS's multi-account layout: a folder or a bucket holding 2 accounts x 2 regions is
one table whose aws_account_id, aws_region and dt come from each file's path (plain and Hive) or name;
'-' is a string in a string column and NULL in a number column, as on AWS's table; the presets added
for AWS's predefined queries against a plain-Python reference over generated records."""

from __future__ import annotations

import gzip
import ipaddress
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from flowwatch.query import local_engine as local
from flowwatch.records import FIELDS, RecordFormat
from flowwatch.s3layout import S3Layout
from flowwatch.settings import Settings

from tests.query.test_local import BUCKET, query

ACCOUNTS = ("123456789012", "210987654321")
REGIONS = ("eu-west-1", "us-east-1")
SOURCES = list(product(ACCOUNTS, REGIONS))
T = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)
V2 = RecordFormat.parse("v2")
ADDRESSES = ["10.0.0.5", "10.0.0.6", "198.51.100.7", "2001:db8::1", "2001:db8::2", "203.0.113.9"]
PORTS = [22, 23, 80, 443, 3389, 5985, 8443, 10000, 40000]


def lines_for(account: str, rng: random.Random) -> list[str]:
    """A delivery file: header, traffic of every protocol, and a NODATA row of '-'."""
    out = [V2.header()]
    start = int(T.timestamp()) - 300
    for i in range(25):
        values = {"version": 2, "account-id": account, "interface-id": f"eni-0a1b2c3d4e5f6000{i % 3}",
                  "srcaddr": rng.choice(ADDRESSES), "dstaddr": rng.choice(ADDRESSES),
                  "srcport": rng.choice(PORTS), "dstport": rng.choice(PORTS), "protocol": rng.choice((1, 6, 6, 17)),
                  "packets": rng.randrange(1, 50), "bytes": rng.randrange(40, 90000), "start": start + i,
                  "end": start + i + 60, "action": rng.choice(("ACCEPT", "REJECT")), "log-status": "OK"}
        out.append(V2.render([values[f] for f in V2.fields]))
    nodata = {"version": 2, "account-id": account, "interface-id": "eni-0a1b2c3d4e5f60000", "start": start,
              "end": start + 60, "log-status": "NODATA"}
    out.append(V2.render([nodata.get(f) for f in V2.fields]))       # every other field '-'
    return out


def records_of(lines: list[str], account: str, region: str, dt: str) -> list[dict[str, Any]]:
    """What AWS's table reads: '-' stays '-' in string columns, is NULL in number columns."""
    rows = []
    for line in lines[1:]:
        row: dict[str, Any] = {}
        for name, text in zip(V2.fields, line.split(), strict=True):
            spec = FIELDS[name]
            row[spec.column] = (int(text) if text.isdigit() else None) if spec.is_int else text
        rows.append({**row, "aws_account_id": account, "aws_region": region, "dt": dt})
    return rows


def write_sources(put: Any, *, hive: bool) -> list[dict[str, Any]]:
    rng = random.Random(11)
    records = []
    for n, (account, region) in enumerate(SOURCES):
        layout = S3Layout(BUCKET, account, region, hive=hive)
        lines = lines_for(account, rng)
        put(layout.object_key(T, "fl-0123456789abcdef0", f"{n:08x}"), gzip.compress(("\n".join(lines) + "\n").encode()))
        records += records_of(lines, account, region, layout.dt_value(T))
    return records


def write_folder(root: Path, *, hive: bool = False) -> list[dict[str, Any]]:
    def put(key: str, body: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return write_sources(put, hive=hive)


def by_source(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((r["aws_account_id"], r["aws_region"]) for r in rows)


GROUPED = ("SELECT aws_account_id, aws_region, dt, count(*) AS n FROM flow_logs GROUP BY 1, 2, 3 ORDER BY 1, 2")


@pytest.mark.parametrize("hive", [False, True], ids=["plain", "hive"])
def test_a_folder_of_two_accounts_and_two_regions_is_one_table(tmp_path, monkeypatch, hive):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    records = write_folder(tmp_path / "logs", hive=hive)
    rows, _ = query(sql=GROUPED, source=tmp_path / "logs")
    want = sorted(by_source(records).items())
    assert len(want) == 4
    assert [(r["aws_account_id"], r["aws_region"], r["n"]) for r in rows] == [(a, g, n) for (a, g), n in want]
    # dt in the configured layout's format (here the default, plain), from the files' names and folders
    assert {r["dt"] for r in rows} == {S3Layout(BUCKET, ACCOUNTS[0], REGIONS[0]).dt_value(T)}
    only, _ = query(sql="SELECT aws_account_id, aws_region, count(*) AS n FROM flow_logs "
                        f"WHERE aws_region = '{REGIONS[1]}' GROUP BY 1, 2 ORDER BY 1", source=tmp_path / "logs")
    assert [(r["aws_account_id"], r["aws_region"], r["n"]) for r in only] == [
        (a, g, n) for (a, g), n in want if g == REGIONS[1]]
    star, _ = query(sql=f"SELECT * FROM flow_logs WHERE aws_account_id = '{ACCOUNTS[1]}' LIMIT 1",
                    source=tmp_path / "logs")
    assert star[0]["aws_account_id"] == ACCOUNTS[1] == star[0]["account_id"]


def test_flat_files_take_account_and_region_from_their_aws_names(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    records = write_folder(tmp_path / "tree")
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in (tmp_path / "tree").rglob("*.log.gz"):
        path.rename(flat / path.name)
    rows, _ = query(sql=GROUPED, source=flat)
    assert Counter({(r["aws_account_id"], r["aws_region"]): r["n"] for r in rows}) == by_source(records)


def test_local_source_reads_folders_before_names():
    hive = ("x/AWSLogs/aws-account-id=111111111111/aws-service=vpcflowlogs/aws-region=ap-south-2/2026/"
            "222222222222_vpcflowlogs_us-west-2_fl-1_20260101T0000Z_ab.log.gz")
    assert local.local_source(hive) == ("111111111111", "ap-south-2")
    assert local.local_source("d/333333333333_vpcflowlogs_us-gov-west-1_fl-1_20260101T0000Z_ab.log.gz") == (
        "333333333333", "us-gov-west-1")
    assert local.local_source("d/some.log.gz") == (None, None)
    assert local.local_source("AWSLogs/123/vpcflowlogs/us-east-1/x.log.gz") == (None, None)


def test_a_bucket_of_two_accounts_and_two_regions_is_one_table(session, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "flowwatch:stack", "Value": "test"}]})
    records = write_sources(lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body), hive=False)
    config = tmp_path / "flowwatch.yaml"
    config.write_text("stack: test\n")
    settings = Settings(config_path=str(config), config_explicit=True)
    rows, _ = query(sql=GROUPED, settings=settings, session=session, engine="local")
    assert Counter({(r["aws_account_id"], r["aws_region"]): r["n"] for r in rows}) == by_source(records)
    assert len(rows) == 4
    only, _ = query(sql=f"SELECT DISTINCT aws_account_id FROM flow_logs WHERE aws_region = '{REGIONS[0]}'",
                    settings=settings, session=session, engine="local")
    assert sorted(r["aws_account_id"] for r in only) == sorted(ACCOUNTS)


def test_dash_is_a_string_in_string_columns_and_null_in_number_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    records = write_folder(tmp_path / "logs")
    rows, _ = query(sql="SELECT action, srcaddr, bytes, srcport, count(*) AS n FROM flow_logs "
                        "WHERE log_status = 'NODATA' GROUP BY 1, 2, 3, 4", source=tmp_path / "logs")
    nodata = [r for r in records if r["log_status"] == "NODATA"]
    assert rows == [{"action": "-", "srcaddr": "-", "bytes": None, "srcport": None, "n": len(nodata)}]
    dashes, _ = query(sql="SELECT count(*) AS n FROM flow_logs WHERE action = '-'", source=tmp_path / "logs")
    assert dashes == [{"n": len(nodata)}]


# ---- the presets added for AWS's predefined queries, against a reference computed here ---------------------

def _totals(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    acc: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        acc[r[key]][0] += r["bytes"]
        acc[r[key]][1] += r["packets"]
        acc[r[key]][2] += 1
    out = [{key: k, "bytes": b, "packets": p, "flows": n} for k, (b, p, n) in acc.items()]
    return sorted(out, key=lambda r: (-r["bytes"], r[key]))[:10]


def reference(preset: str, records: list[dict[str, Any]], ip: str) -> list[dict[str, Any]]:
    ok = [r for r in records if r["log_status"] == "OK"]
    if preset in ("ipv4-bytes", "ipv6-bytes"):
        version = 4 if preset == "ipv4-bytes" else 6
        kept = [r for r in ok if ipaddress.ip_address(r["srcaddr"]).version == version]
        return [{"bytes": sum(r["bytes"] for r in kept), "packets": sum(r["packets"] for r in kept),
                 "flows": len(kept)}]
    if preset == "admin-ports":
        admin = {22, 23, 2082, 2083, 2086, 2087, 3389, 5900, 5985, 5986, 8443, 10000}
        served = [{**r, "ip": r["dstaddr"] if r["dstport"] in admin else r["srcaddr"]} for r in ok
                  if r["dstport"] in admin or r["srcport"] in admin]
        return _totals(served, "ip")
    columns = ("date", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport")
    if preset == "accepted-tcp":
        kept = [r for r in ok if r["action"] == "ACCEPT" and r["protocol"] == 6]
        columns += ("start", "end", "packets", "bytes")
        order = ("start", "end", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport")
    else:   # tcp-from
        kept = [r for r in ok if r["protocol"] == 6 and r["srcaddr"] == ip]
        columns += ("action", "start", "end", "packets", "bytes")
        order = ("start", "end", "interface_id", "dstaddr", "srcport", "dstport")
    kept.sort(key=lambda r: tuple(r[c] for c in order))
    day = T.strftime("%Y-%m-%d")
    return [{c: (day if c == "date" else r[c]) for c in columns} for r in kept]


@pytest.mark.parametrize("preset", ["accepted-tcp", "admin-ports", "ipv4-bytes", "ipv6-bytes", "tcp-from"])
def test_the_new_presets_give_the_reference_answer(tmp_path, monkeypatch, preset):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    records = write_folder(tmp_path / "logs")
    ip = "10.0.0.5"
    assert {r["protocol"] for r in records if r["srcaddr"] == ip} > {6}     # tcp-from must leave some out
    rows, _ = query(preset, source=tmp_path / "logs", ip=ip if preset == "tcp-from" else None, limit=1000
                    if preset in ("accepted-tcp", "tcp-from") else None)
    want = reference(preset, records, ip)
    assert want and rows == want


@pytest.mark.parametrize("preset", ["top-talkers-packet-level", "top-instances", "top-subnets",
                                    "bytes-by-pair-packet-level"])
def test_a_preset_needing_fields_the_format_lacks_is_refused_with_exit_2(tmp_path, monkeypatch, capsys, preset):
    from tests.support.cli import run_cli

    monkeypatch.chdir(tmp_path)   # no config: the v2 format
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_folder(tmp_path / "logs")
    result = run_cli(capsys, monkeypatch, "query", preset, "--source", str(tmp_path / "logs"))
    assert result.code == 2
    assert f"preset {preset} reads" in result.err and "which the record format lacks" in result.err
