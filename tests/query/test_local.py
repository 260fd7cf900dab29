"""The local engine (DuckDB) over flow-log files the tests write: expected rows come from that data."""

from __future__ import annotations

import gzip
import io
import json
import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowwatch.console import Output
from flowwatch.cli.app import App
from flowwatch.cli.query import run_query
from flowwatch.query import QueryRequest
from flowwatch.query import local_engine as local
from flowwatch.errors import UsageError
from flowwatch.query.presets import PRESETS, columns_read
from flowwatch.records import FIELDS, RecordFormat
from flowwatch.s3layout import S3Layout
from flowwatch.settings import Settings

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = f"flowwatch-test-{ACCOUNT}-{REGION}"
V2 = RecordFormat.parse("v2")
LAYOUT = S3Layout(BUCKET, ACCOUNT, REGION)
DAY1 = datetime(2026, 3, 9, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
FILE_TIMES = (DAY1 + timedelta(hours=5), DAY1 + timedelta(hours=17), DAY2 + timedelta(hours=5))
SOURCES = [f"198.51.100.{i}" for i in range(1, 15)] + ["10.0.0.5", "10.0.0.6"]
MALFORMED_PER_FILE = 1                    # the cut line; a bad number is only NULL


# ---- test data: written here, expectations computed from it -------------------------------------------

def file_lines(t: datetime, rng: random.Random, fmt: RecordFormat = V2) -> list[str]:
    """A delivery file as AWS writes it: header, traffic, NODATA/SKIPDATA rows, a cut line, a bad number."""
    first = int(t.timestamp()) - 600
    lines = [fmt.header()]
    for i in range(30):
        src = SOURCES[rng.randrange(len(SOURCES))]
        dst = "10.0.0.5" if not src.startswith("10.") else f"203.0.113.{rng.randrange(1, 9)}"
        lines += fmt.synth(account=ACCOUNT, eni=f"eni-0a1b2c3d4e5f6000{i % 3}", srcaddr=src, dstaddr=dst,
                           protocol=(6, 17, 1)[i % 3], action="REJECT" if i % 4 == 0 else "ACCEPT",
                           start=first + 17 * i, count=1 + i % 2, rng=rng)
        if i == 10:
            lines.append(_no_traffic(fmt, first + 17 * i, "NODATA"))
            lines.append("2 123456789012 eni-broken this line is cut")                  # too few fields
        if i == 20:
            lines.append(_no_traffic(fmt, first + 17 * i, "SKIPDATA"))
            odd = lines[-2].split()
            odd[fmt.index("bytes")] = "many"                                  # not a number: NULL, as in Athena
            lines.append(" ".join(odd))
    return lines


def _no_traffic(fmt: RecordFormat, start: int, status: str) -> str:
    known = {"version": fmt.version, "account-id": ACCOUNT, "interface-id": "eni-0a1b2c3d4e5f60000",
             "start": start, "end": start + 60, "log-status": status}
    return fmt.render([known.get(name) for name in fmt.fields])


def parse_lines(lines: list[str], fmt: RecordFormat = V2) -> list[dict[str, Any]]:
    """What Athena sees: header and cut lines left out, '-' (or a non-number) in a number field as None."""
    records = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == len(fmt.fields):
            records.append({FIELDS[f].column: _value(f, p) for f, p in zip(fmt.fields, parts)})
    return records


def _value(field: str, text: str) -> Any:
    if not FIELDS[field].is_int:
        return text                       # '-' stays '-' in a string column, as on AWS's table
    return int(text) if text.lstrip("-").isdigit() else None


def write_tree(root: Path, *, flat: bool = False, times: tuple[datetime, ...] = FILE_TIMES,
               seed: int = 7, fmt: RecordFormat = V2) -> list[dict[str, Any]]:
    """gzip files in the AWSLogs/... layout (or flat): the records they hold, each with its file's time."""
    rng = random.Random(seed)
    records = []
    for n, t in enumerate(times):
        lines = file_lines(t, rng, fmt)
        key = LAYOUT.object_key(t, "fl-0123456789abcdef0", f"{n:08x}")
        path = root / (key.rsplit("/", 1)[-1] if flat else key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        records += [dict(r, _file_time=t) for r in parse_lines(lines, fmt)]
    return records


def traffic(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["log_status"] == "OK"]


def day(start: int) -> str:
    return datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d")


def expected_rejects(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"date": day(r["start"]), "interface_id": r["interface_id"], "srcaddr": r["srcaddr"],
             "dstaddr": r["dstaddr"], "start": r["start"], "end": r["end"], "action": r["action"],
             "protocol": r["protocol"]} for r in traffic(records) if r["action"] == "REJECT"]
    return sorted(rows, key=lambda r: (r["start"], r["end"], r["interface_id"], r["srcaddr"], r["dstaddr"]))


def expected_top_talkers(records: list[dict[str, Any]], limit: int = 10) -> list[dict[str, Any]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in traffic(records):
        totals[r["srcaddr"]][0] += r["bytes"] or 0                    # SUM skips NULLs
        totals[r["srcaddr"]][1] += r["packets"] or 0
        totals[r["srcaddr"]][2] += 1
    rows = [{"srcaddr": s, "bytes": b, "packets": p, "flows": n} for s, (b, p, n) in totals.items()]
    return sorted(rows, key=lambda r: (-r["bytes"], r["srcaddr"]))[:limit]


# ---- running ---------------------------------------------------------------------------------------------

def query(preset: str | None = None, *, settings: Settings | None = None, session: Any = None,
          **request: Any) -> tuple[Any, str]:
    """Run one query; (parsed JSON or the text for other outputs, stderr)."""
    err, out = io.StringIO(), io.StringIO()
    request.setdefault("output", "json")
    app = App(settings or Settings(), session_factory=None if session is None else lambda profile, region: session,
              output=Output(stderr=err, stdout=out, color=False))
    run_query(app, QueryRequest(preset=preset, **request))
    text = out.getvalue()
    return (json.loads(text) if request["output"] == "json" else text), err.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path / "logs"
    return root, write_tree(root)


def test_rejects_returns_exactly_the_rejected_records_by_start_time(tree):
    root, records = tree
    rows, err = query("rejects", source=root)
    assert rows == expected_rejects(records)
    assert rows and all(r["action"] == "REJECT" for r in rows)
    assert f"skipped {MALFORMED_PER_FILE * len(FILE_TIMES)} malformed lines" in err


def test_top_talkers(tree):
    root, records = tree
    rows, _ = query("top-talkers", source=root)
    assert rows == expected_top_talkers(records)
    assert len({r["srcaddr"] for r in traffic(records)}) > 10       # the default LIMIT 10 matters
    assert query("top-talkers", source=root, limit=3)[0] == expected_top_talkers(records, 3)


def test_a_time_window_reads_only_its_partitions_and_its_records(tree):
    root, records = tree
    # a broken file in the day-2 partition: reading it would warn
    stray = LAYOUT.object_key(DAY2 + timedelta(hours=9), "fl-0123456789abcdef0", "ffff0000")
    (root / stray).write_bytes(b"not gzip at all")
    start, end = FILE_TIMES[0] - timedelta(minutes=5), DAY1 + timedelta(hours=12)
    rows, err = query("rejects", source=root, from_=start.isoformat(), to=end.isoformat())
    inside = [r for r in records if start.timestamp() <= r["start"] < end.timestamp()]
    assert rows == expected_rejects(inside)
    assert 0 < len(rows) < len(expected_rejects([r for r in records if r["_file_time"] == FILE_TIMES[0]]))
    assert "cannot read" not in err
    everything, err = query("rejects", source=root)
    assert "cannot read" in err and everything == expected_rejects(records)


def test_nodata_and_broken_lines_are_kept_out_and_counted(tree):
    root, records = tree
    rows, err = query(sql="SELECT log_status, count(*) AS n FROM flow_logs GROUP BY log_status ORDER BY 1",
                      source=root)
    counts = defaultdict(int)
    for r in records:
        counts[r["log_status"]] += 1
    assert rows == [{"log_status": s, "n": n} for s, n in sorted(counts.items())]
    assert {"NODATA", "SKIPDATA"} <= set(counts)
    nodata, _ = query(sql="SELECT srcaddr, bytes, action FROM flow_logs WHERE log_status = 'NODATA' LIMIT 1",
                      source=root)
    # as on AWS's table: '-' stays '-' in a string column, NULL in a number column
    assert nodata == [{"srcaddr": "-", "bytes": None, "action": "-"}]


def test_partition_column_comes_from_the_key_path(tree):
    root, _ = tree
    rows, _ = query(sql="SELECT DISTINCT dt FROM flow_logs ORDER BY dt", source=root)
    assert [r["dt"] for r in rows] == ["2026/03/09", "2026/03/10"]


def test_a_flat_folder_gives_the_same_answers(tmp_path):
    records = write_tree(tmp_path / "flat", flat=True)
    assert query("rejects", source=tmp_path / "flat")[0] == expected_rejects(records)
    rows, _ = query(sql="SELECT DISTINCT dt FROM flow_logs ORDER BY dt", source=tmp_path / "flat")
    assert [r["dt"] for r in rows] == ["2026/03/09", "2026/03/10"]


def test_every_preset_runs_transpiled_on_duckdb(tree):
    root, records = tree
    for preset in PRESETS:
        ip = "10.0.0.5" if preset.params else None
        if columns_read(preset) - set(V2.columns):     # v3+ fields: refused on a v2 table, before any engine
            with pytest.raises(UsageError, match=f"preset {preset.name} reads .* which the record format lacks"):
                query(preset.name, source=root, ip=ip)
            continue
        block = (("vpc_cidr", "10.0.0.0/24"),) if preset.name == "egress-by-destination" else ()
        rows, _ = query(preset.name, source=root, ip=ip, params=block)
        assert isinstance(rows, list), preset.name
    ssh, _ = query("ssh-rdp", source=root)
    assert len(ssh) == sum(1 for r in traffic(records) if r["protocol"] == 6 and r["dstport"] in (22, 3389))
    to, _ = query("traffic-to", source=root, ip="10.0.0.5")
    assert len(to) == sum(1 for r in traffic(records) if r["dstaddr"] == "10.0.0.5")


def test_csv_output_has_a_header_and_empty_cells_for_null(tree):
    root, records = tree
    text, _ = query("top-talkers", source=root, output="csv", limit=2)
    lines = text.splitlines()
    assert lines[0] == "srcaddr,bytes,packets,flows"
    top = expected_top_talkers(records, 2)
    assert lines[1:] == [f"{r['srcaddr']},{r['bytes']},{r['packets']},{r['flows']}" for r in top]
    nulls, _ = query(sql="SELECT srcaddr, log_status FROM flow_logs WHERE log_status = 'NODATA' LIMIT 1",
                     source=root, output="csv")
    assert nulls.splitlines() == ["srcaddr,log_status", "-,NODATA"]      # '-' is a string, as on Athena
    nulls, _ = query(sql="SELECT bytes, log_status FROM flow_logs WHERE log_status = 'NODATA' LIMIT 1",
                     source=root, output="csv")
    assert nulls.splitlines() == ["bytes,log_status", ",NODATA"]         # and NULL in a number column


def test_parquet_files_are_read_with_the_glue_columns(tmp_path, tree):
    root, records = tree
    import duckdb

    pq_root = tmp_path / "pq"
    con = duckdb.connect()
    columns = ", ".join(f'"{c}" {"BIGINT" if FIELDS[f].is_int else "VARCHAR"}' for f, c in zip(V2.fields, V2.columns))
    for t in (FILE_TIMES[0], FILE_TIMES[2]):
        name = LAYOUT.object_key(t, "fl-0123456789abcdef0", "00aa").replace(".log.gz", ".log.parquet")
        path = pq_root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"CREATE OR REPLACE TABLE t ({columns})")
        mine = [r for r in records if r["_file_time"] == t]
        con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(V2.columns))})",
                        [[r[c] for c in V2.columns] for r in mine])
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    subset = [r for r in records if r["_file_time"] in (FILE_TIMES[0], FILE_TIMES[2])]
    rows, err = query("top-talkers", source=pq_root)
    assert rows == expected_top_talkers(subset)
    assert "malformed" not in err


def test_files_with_another_format_are_read_by_their_header(tmp_path):
    v3 = RecordFormat.parse("v3")
    records = write_tree(tmp_path / "v3", fmt=v3, times=FILE_TIMES[:1])
    expected = [{"n": len(traffic(records)), "flags": len({r["tcp_flags"] for r in traffic(records)})}]
    for cached in (False, True, True):
        rows, _ = query(sql="SELECT count(*) AS n, count(DISTINCT tcp_flags) AS flags FROM flow_logs "
                            "WHERE log_status = 'OK'", source=tmp_path / "v3", parquet_cache=cached)
        assert rows == expected
        assert query("rejects", source=tmp_path / "v3", parquet_cache=cached)[0] == expected_rejects(records)


def test_parquet_cache_is_made_once_and_refreshed_when_the_file_changes(tree):
    root, records = tree
    first, _ = query("rejects", source=root, parquet_cache=True)
    cached = sorted((local.cache_root() / "parquet").glob("*.parquet"))
    assert first == expected_rejects(records) and len(cached) == len(FILE_TIMES)
    stamps = [p.stat().st_mtime_ns for p in cached]
    second, err = query("rejects", source=root, parquet_cache=True)
    assert second == first
    assert [p.stat().st_mtime_ns for p in cached] == stamps                      # read, not rewritten
    assert f"skipped {MALFORMED_PER_FILE * len(FILE_TIMES)} malformed lines" in err  # remembered
    changed = write_tree(root, times=FILE_TIMES[:1], seed=99)                    # same file, new content
    kept = [r for r in records if r["_file_time"] != FILE_TIMES[0]]
    third, _ = query("rejects", source=root, parquet_cache=True)
    assert third == expected_rejects(kept + changed)


def test_no_files_is_an_empty_result_with_a_warning(tmp_path):
    (tmp_path / "empty").mkdir()
    rows, err = query("rejects", source=tmp_path / "empty")
    assert rows == [] and "no flow-log files" in err


# ---- the local engine on AWS: S3 objects downloaded once into the cache -------------------------------------

@pytest.fixture
def stack_bucket(session, tmp_path):
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)   # as `up` makes it: with the stack's tag (query reads only such a bucket)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "flowwatch:stack", "Value": "test"}]})
    rng = random.Random(3)
    records = []
    for n, t in enumerate(FILE_TIMES):
        lines = file_lines(t, rng)
        s3.put_object(Bucket=BUCKET, Key=LAYOUT.object_key(t, "fl-0123456789abcdef0", f"{n:08d}"),
                      Body=gzip.compress(("\n".join(lines) + "\n").encode()))
        records += [dict(r, _file_time=t) for r in parse_lines(lines)]
    config = tmp_path / "flowwatch.yaml"
    config.write_text("stack: test\n")
    return Settings(config_path=str(config), config_explicit=True), records


def test_s3_objects_are_downloaded_once_and_again_when_their_etag_changes(session, calls, stack_bucket):
    settings, records = stack_bucket
    rows, _ = query("top-talkers", settings=settings, session=session, engine="local")
    assert rows == expected_top_talkers(records)
    assert sum(op == "GetObject" for _, op in calls) == len(FILE_TIMES)
    calls.clear()
    assert query("top-talkers", settings=settings, session=session, engine="local")[0] == rows
    assert [op for _, op in calls if op == "GetObject"] == []
    s3 = session.client("s3")
    rng = random.Random(5)
    lines = file_lines(FILE_TIMES[1], rng)
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.object_key(FILE_TIMES[1], "fl-0123456789abcdef0", "00000001"),
                  Body=gzip.compress(("\n".join(lines) + "\n").encode()))
    calls.clear()
    updated = [r for r in records if r["_file_time"] != FILE_TIMES[1]] + \
              [dict(r, _file_time=FILE_TIMES[1]) for r in parse_lines(lines)]
    assert query("top-talkers", settings=settings, session=session, engine="local")[0] == \
        expected_top_talkers(updated)
    assert sum(op == "GetObject" for _, op in calls) == 1


def test_s3_listing_is_limited_to_the_partitions_of_the_window(session, calls, stack_bucket):
    settings, records = stack_bucket
    start, end = DAY2, DAY2 + timedelta(hours=6)
    rows, _ = query("rejects", settings=settings, session=session, engine="local",
                    from_=start.isoformat(), to=end.isoformat())
    assert rows == expected_rejects([r for r in records if start.timestamp() <= r["start"] < end.timestamp()])
    assert sum(op == "GetObject" for _, op in calls) == 1                       # only day 2's file


def test_a_command_holding_a_context_runs_the_local_engine(session, stack_bucket):
    from flowwatch.query import run_in
    from tests.support.context import make_ctx

    _, records = stack_bucket
    ctx = make_ctx(session)
    run_in(ctx, QueryRequest(preset="rejects", engine="local", output="json"))
    assert json.loads(ctx.out._stdout.getvalue()) == expected_rejects(records)


@pytest.mark.parametrize("parquet_cache", [False, True])
def test_a_value_that_is_not_a_number_reads_as_null_whatever_the_query_reads(tree, parquet_cache):
    root, records = tree
    rows, _ = query(sql="SELECT count(*) AS n, count(bytes) AS with_bytes FROM flow_logs WHERE log_status = 'OK'",
                    source=root, parquet_cache=parquet_cache)
    assert rows == [{"n": len(traffic(records)), "with_bytes": len(traffic(records)) - len(FILE_TIMES)}]


def test_the_partition_column_is_there_whenever_a_query_reads_it(tree):
    root, _ = tree
    star, _ = query(sql="SELECT * FROM flow_logs WHERE log_status = 'OK' LIMIT 1", source=root)
    assert list(star[0]) == [*V2.columns, "aws_account_id", "aws_region", "dt"]
    assert [local.reads_partition(q) for q in (
        "SELECT count(*) FROM t", "SELECT * FROM t", "SELECT t.* FROM t", "SELECT a FROM t WHERE dt > '2026'",
        "SELECT a FROM (SELECT * FROM t) AS x", "SELECT a FROM t WHERE aws_region = 'x'",
        "SELECT aws_account_id FROM t")] == [False, True, True, True, True, True, True]
