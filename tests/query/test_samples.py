"""Every preset over tests/data/flowlogs/ (real sample files, see SOURCES.md) against an answer
computed here in plain Python from the files' lines, not with flowwatch's parser.

The folder holds, besides good files of several formats (v2, v3 custom order, v5, ECS v7, v8,
transit gateway, a NAT gateway custom format), a truncated gzip, a file whose last line ends in
CRLF after LF lines (both skipped, each named in one warning), two objects concatenated (a
repeated header line) and a record with a double space (both read).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from flowwatch.query.presets import BY_NAME, PRESETS, columns_read
from flowwatch.records import RecordFormat

from tests.support.cli import run_cli

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "flowlogs"
TRUNCATED = "_20141214T0415Z_4e5f6071.log.gz"
MIXED_ENDINGS = "_20161031T1140Z_3d4e5f60.log.gz"
# Numeric columns of the Glue table (AWS's "Available fields" tables: INT_32 / INT_64); all others text.
NUMBERS = {"version", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp-flags",
           "traffic-path", "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
           "packets-lost-ttl-expired"}
COLUMNS = ("interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start",
           "end", "action", "log_status")
FROM_IP, TO_IP = "78.24.182.42", "2001:db8:1234:a102:3304:8879:34cf:4071"
TCP_IP = FROM_IP          # tcp-from: the samples hold TCP records from it (and others)


# ---- the reference: plain Python over the lines ------------------------------------------------------

def sample_files() -> list[Path]:
    return sorted(SAMPLES.rglob("*.log.gz"))


def readable(path: Path) -> str | None:
    """The file's text, or None when a reader has to skip it (cut short, or mixed line endings)."""
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except EOFError:
        return None
    if "\r\n" in text and text.count("\r\n") != text.count("\n"):
        return None
    return text


def reference_records() -> list[dict[str, Any]]:
    """Every record of the readable files, as the table's columns (absent ones None)."""
    records = []
    for path in sample_files():
        text = readable(path)
        if text is None:
            continue
        lines = text.splitlines()
        header = lines[0].split()
        for line in lines[1:]:
            values = line.split()
            if not values or values == header:
                continue
            assert len(values) == len(header), f"{path.name}: {line!r}"
            row = dict.fromkeys(COLUMNS)
            for name, value in zip(header, values, strict=True):
                row[name.replace("-", "_")] = _value(name, value)
            records.append(row)
    return records


def _value(name: str, text: str) -> Any:
    """As AWS's table reads a field: a number column's '-' (or any non-number) is NULL, a string column keeps '-'."""
    if name in NUMBERS:
        return int(text) if text.isdigit() else None
    return text


def _date(start: int | None) -> str | None:
    return None if start is None else datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d")


def _pick(record: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    row = {"date": _date(record["start"])} if columns[0] == "date" else {}
    row.update({c: record[c] for c in columns if c != "date"})
    return row


def _nulls_last(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in values)


def _listing(records: list[dict[str, Any]], keep: Any, columns: tuple[str, ...], order: tuple[str, ...]
             ) -> list[dict[str, Any]]:
    kept = [r for r in records if r["log_status"] == "OK" and keep(r)]
    kept.sort(key=lambda r: _nulls_last(tuple(r[c] for c in order)))
    return [_pick(r, columns) for r in kept]


def _totals(records: list[dict[str, Any]], by: tuple[str, ...]) -> list[dict[str, Any]]:
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [None, None, 0])
    for r in records:
        if r["log_status"] != "OK":
            continue
        acc = sums[tuple(r.get(c) for c in by)]
        for i, column in enumerate(("bytes", "packets")):
            if r[column] is not None:
                acc[i] = (acc[i] or 0) + r[column]
        acc[2] += 1
    rows = [{**dict(zip(by, key, strict=True)), "bytes": b, "packets": p, "flows": n}
            for key, (b, p, n) in sums.items()]
    rows.sort(key=lambda r: ((r["bytes"] is None, -(r["bytes"] or 0)), *_nulls_last(tuple(r[c] for c in by))))
    return rows[:10]


def _sum(values: list[int | None]) -> int | None:
    """SQL's sum: NULLs skipped, NULL when there is nothing else."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _version(address: Any) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


LISTED = ("date", "interface_id", "srcaddr", "dstaddr")
MIN_PORTS, MIN_FLOWS = 1, 2    # the samples are small: lower the presets' thresholds (default 10)
VPC_BLOCK = "172.31.0.0/16"     # the block of the samples' own addresses (AWS's examples and Elastic's)


def expected(preset: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = ("start", "end", "interface_id", "srcaddr", "dstaddr")
    if preset == "rejects":
        return _listing(records, lambda r: r["action"] == "REJECT",
                        (*LISTED, "start", "end", "action", "protocol"), order)
    if preset == "icmp":
        return _listing(records, lambda r: r["protocol"] == 1,
                        (*LISTED, "start", "end", "action", "packets", "bytes"), order)
    if preset == "rejected-tcp":
        return _listing(records, lambda r: r["action"] == "REJECT" and r["protocol"] == 6,
                        (*LISTED, "srcport", "dstport", "start", "end", "packets"), (*order, "srcport", "dstport"))
    if preset == "ssh-rdp":
        return _listing(records, lambda r: r["protocol"] == 6 and r["dstport"] in (22, 3389),
                        (*LISTED, "dstport", "action", "start", "end", "packets", "bytes"), (*order, "dstport"))
    wide = (*LISTED, "srcport", "dstport", "protocol", "action", "start", "end", "packets", "bytes")
    if preset == "traffic-from":
        return _listing(records, lambda r: r["srcaddr"] == FROM_IP, wide,
                        ("start", "end", "interface_id", "dstaddr", "srcport", "dstport"))
    if preset == "traffic-to":
        return _listing(records, lambda r: r["dstaddr"] == TO_IP, wide,
                        ("start", "end", "interface_id", "srcaddr", "srcport", "dstport"))
    if preset == "top-talkers":
        return _totals(records, ("srcaddr",))
    if preset == "bytes-by-pair":
        return _totals(records, ("srcaddr", "dstaddr"))
    if preset == "accepted-tcp":
        return _listing(records, lambda r: r["action"] == "ACCEPT" and r["protocol"] == 6,
                        (*LISTED, "srcport", "dstport", "start", "end", "packets", "bytes"),
                        (*order, "srcport", "dstport"))
    if preset == "tcp-from":
        return _listing(records, lambda r: r["srcaddr"] == TCP_IP and r["protocol"] == 6,
                        (*LISTED, "srcport", "dstport", "action", "start", "end", "packets", "bytes"),
                        ("start", "end", "interface_id", "dstaddr", "srcport", "dstport"))
    if preset in ("ipv4-bytes", "ipv6-bytes"):
        version = 4 if preset == "ipv4-bytes" else 6
        kept = [r for r in records if r["log_status"] == "OK" and _version(r["srcaddr"]) == version]
        return [{"bytes": _sum([r["bytes"] for r in kept]), "packets": _sum([r["packets"] for r in kept]),
                 "flows": len(kept)}]
    if preset == "admin-ports":
        admin = {22, 23, 2082, 2083, 2086, 2087, 3389, 5900, 5985, 5986, 8443, 10000}
        served = [{**r, "ip": r["dstaddr"] if r["dstport"] in admin else r["srcaddr"]} for r in records
                  if r["dstport"] in admin or r["srcport"] in admin]
        return [{"ip": row["ip"], "bytes": row["bytes"], "packets": row["packets"], "flows": row["flows"]}
                for row in _totals(served, ("ip",))]
    if preset == "top-talkers-packet-level":
        return _totals([r for r in records if r.get("pkt_srcaddr") not in (None, "-")], ("pkt_srcaddr",))
    if preset == "bytes-by-pair-packet-level":
        return _totals([r for r in records if r.get("pkt_srcaddr") not in (None, "-")
                        and r.get("pkt_dstaddr") not in (None, "-")], ("pkt_srcaddr", "pkt_dstaddr"))
    if preset in ("top-instances", "top-subnets"):
        column = "instance_id" if preset == "top-instances" else "subnet_id"
        return _totals([r for r in records if r.get(column) not in (None, "-")], (column,))
    if preset == "port-scan":
        return _per_source([r for r in records if r["action"] == "REJECT" and r["protocol"] in (6, 17)],
                           lambda rows: len({r["dstport"] for r in rows if r["dstport"] is not None}) >= MIN_PORTS,
                           lambda g: (-g["ports"], -g["flows"], g["srcaddr"]),
                           ("srcaddr", "ports", "flows", "targets", "first_start", "last_end"))
    if preset == "ssh-rdp-brute-force":
        return _per_source([r for r in records if r["protocol"] == 6 and r["dstport"] in (22, 3389)],
                           lambda rows: len(rows) >= MIN_FLOWS, lambda g: (-g["flows"], g["srcaddr"]),
                           ("srcaddr", "flows", "targets", "accepted", "rejected", "first_start", "last_end"))
    if preset == "egress-by-destination":
        block = ipaddress.ip_network(VPC_BLOCK)
        out = [r for r in records if _inside(r["srcaddr"], block) is True and _inside(r["dstaddr"], block) is not True]
        rows = _totals(out, ("dstaddr",))
        for row in rows:
            row["sources"] = len({r["srcaddr"] for r in out if r["dstaddr"] == row["dstaddr"]
                                  and r["log_status"] == "OK"})
        return rows
    raise AssertionError(f"no reference for preset {preset}")


def _inside(address: Any, block: Any) -> bool | None:
    """SQL's answer: NULL (None) for what is no IPv4 address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    return parsed in block if parsed.version == 4 else None


def _per_source(records: list[dict[str, Any]], having: Any, order: Any,
                columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """port-scan / ssh-rdp-brute-force: per source, the counts the presets give, sources kept by ``having``."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["log_status"] == "OK":
            groups[r["srcaddr"]].append(r)
    rows = []
    for source, rows_of in groups.items():
        if not having(rows_of):
            continue
        row = {"srcaddr": source, "ports": len({r["dstport"] for r in rows_of if r["dstport"] is not None}),
               "flows": len(rows_of), "targets": len({r["dstaddr"] for r in rows_of if r["dstaddr"] is not None}),
               "accepted": sum(r["action"] == "ACCEPT" for r in rows_of),
               "rejected": sum(r["action"] == "REJECT" for r in rows_of),
               "first_start": min((r["start"] for r in rows_of if r["start"] is not None), default=None),
               "last_end": max((r["end"] for r in rows_of if r["end"] is not None), default=None)}
        rows.append(row)
    return [{c: row[c] for c in columns} for row in sorted(rows, key=order)]


# ---- the tests ------------------------------------------------------------------------------------------

def test_the_samples_are_what_the_tests_say(tmp_path):
    names = [p.name for p in sample_files()]
    assert sum(n.endswith(TRUNCATED) for n in names) == 1 and sum(n.endswith(MIXED_ENDINGS) for n in names) == 1
    unreadable = [p for p in sample_files() if readable(p) is None]
    assert [p.name for p in unreadable] == [n for n in names if n.endswith((TRUNCATED, MIXED_ENDINGS))]
    texts = [readable(p) or "" for p in sample_files()]
    assert any(t.count("version account-id") == 2 for t in texts)           # concatenated objects
    assert any("  " in t for t in texts)                                   # a double space
    assert any(t.startswith("version resource-type account-id tgw-id") for t in texts)
    assert sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file()) < 300_000


@pytest.mark.parametrize("preset", [p.name for p in PRESETS])
def test_every_preset_over_the_samples_gives_the_reference_answer(preset, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no flowwatch.yaml: the defaults (v2) ...
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if columns_read(BY_NAME[preset]) - set(RecordFormat.parse("v2").columns):   # ... unless it needs v3+ fields
        (tmp_path / "flowwatch.yaml").write_text("stack: samples\nflow_logs:\n  format: v5\n")
    args = {"traffic-from": [FROM_IP], "traffic-to": [TO_IP], "tcp-from": [TCP_IP],
            "egress-by-destination": ["--vpc-cidr", VPC_BLOCK], "port-scan": ["--min-ports", str(MIN_PORTS)],
            "ssh-rdp-brute-force": ["--min-flows", str(MIN_FLOWS)]}.get(preset, [])
    result = run_cli(capsys, monkeypatch, "query", preset, *args, "--source", str(SAMPLES), "--output", "json")
    assert result.code == 0, result.err
    want = expected(preset, reference_records())
    assert want and all(row.get("flows", 1) for row in want), f"the samples give {preset} nothing to show"
    assert json.loads(result.out) == want
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, result.err
    assert TRUNCATED in warnings[0] and "truncated gzip" in warnings[0]
    assert MIXED_ENDINGS in warnings[1] and "mixed line endings" in warnings[1]
    assert warnings[2] == "warning: skipped 2 of 11 flow-log files: the answer is from the other 9"
    assert "malformed" not in result.err


def test_the_transit_gateway_records_keep_their_own_columns(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sql = ("SELECT tgw_attachment_id, sum(packets_lost_blackhole) AS lost, count(*) AS n, max(resource_type) AS kind "
           "FROM flow_logs WHERE tgw_id IS NOT NULL GROUP BY 1 ORDER BY 1")
    result = run_cli(capsys, monkeypatch, "query", "sql", sql, "--source", str(SAMPLES), "--output", "json")
    assert result.code == 0, result.err
    counts: dict[str, int] = defaultdict(int)
    kinds: dict[str, set[str]] = defaultdict(set)
    lost: dict[str, int | None] = {}
    for r in reference_records():
        if r.get("tgw_id") is not None and r["tgw_id"] != "-":
            counts[r["tgw_attachment_id"]] += 1
            kinds[r["tgw_attachment_id"]].add(r["resource_type"])
            value = r["packets_lost_blackhole"]
            lost[r["tgw_attachment_id"]] = (None if value is None and lost.get(r["tgw_attachment_id"]) is None
                                            else (lost.get(r["tgw_attachment_id"]) or 0) + (value or 0))
    assert counts
    assert json.loads(result.out) == [{"tgw_attachment_id": a, "lost": lost[a], "n": n, "kind": max(kinds[a])}
                                      for a, n in sorted(counts.items())]
