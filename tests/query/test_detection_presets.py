"""The presets of the detections (port-scan, ssh-rdp-brute-force, egress-by-destination) on the local engine
(DuckDB, the Athena SQL transpiled) over generated delivery files, against a plain-Python reference over the
same records; their parameters (defaults, bounds, the VPC block from the stack) and their named queries."""

from __future__ import annotations

import gzip
import ipaddress
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flowwatch.errors import UsageError
from flowwatch.query import presets
from flowwatch.records import FIELDS, RecordFormat
from flowwatch.s3layout import S3Layout

from tests.query.test_local import BUCKET, query

V2 = RecordFormat.parse("v2")
T = datetime(2026, 3, 9, 5, 0, tzinfo=UTC)
VPC = "10.0.0.0/24"
INSIDE = ["10.0.0.5", "10.0.0.6", "10.0.0.200"]
OUTSIDE = ["198.51.100.7", "203.0.113.9", "10.0.1.4", "2001:db8::1", "8.8.8.8"]


def generated_lines(rng: random.Random) -> list[str]:
    """Background traffic, two scanners (30 and 12 distinct ports), an SSH/RDP brute force, egress."""
    start = int(T.timestamp()) - 300
    rows: list[dict[str, Any]] = []

    def add(src: str, dst: str, dport: int, action: str, nbytes: int, protocol: int = 6) -> None:
        rows.append({"version": 2, "account-id": "123456789012", "interface-id": "eni-0a1b2c3d4e5f60001",
                     "srcaddr": src, "dstaddr": dst, "srcport": rng.randrange(32768, 61000), "dstport": dport,
                     "protocol": protocol, "packets": max(1, nbytes // 1000), "bytes": nbytes,
                     "start": start + len(rows) % 200, "end": start + 60 + len(rows) % 200, "action": action,
                     "log-status": "OK"})

    for _ in range(200):
        add(rng.choice(INSIDE + OUTSIDE), rng.choice(INSIDE + OUTSIDE), rng.choice((22, 80, 443, 3389, 8080)),
            rng.choice(("ACCEPT", "REJECT")), rng.randrange(40, 90000), rng.choice((1, 6, 6, 17)))
    for port in range(1000, 1030):
        add("198.51.100.66", "10.0.0.5", port, "REJECT", 60)
    for port in range(2000, 2012):
        add("203.0.113.77", "10.0.0.6", port, "REJECT", 60, protocol=17)
    for i in range(15):
        add("203.0.113.88", INSIDE[i % 3], (22, 3389)[i % 2], ("ACCEPT", "REJECT")[i % 3 == 0], 120)
    for i in range(10):
        add("10.0.0.5", OUTSIDE[i % 2], 443, "ACCEPT", 1_000_000 + i)
    lines = [V2.header()] + [V2.render([r.get(f) for f in V2.fields]) for r in rows]
    nodata = {"version": 2, "account-id": "123456789012", "interface-id": "eni-0a1b2c3d4e5f60001", "start": start,
              "end": start + 60, "log-status": "NODATA"}
    return lines + [V2.render([nodata.get(f) for f in V2.fields])]


def write(root: Path) -> list[dict[str, Any]]:
    lines = generated_lines(random.Random(5))
    key = S3Layout(BUCKET, "123456789012", "us-east-1").object_key(T, "fl-0123456789abcdef0", "00000001")
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    records = []
    for line in lines[1:]:
        row: dict[str, Any] = {}
        for name, text in zip(V2.fields, line.split(), strict=True):
            row[FIELDS[name].column] = (int(text) if text.isdigit() else None) if FIELDS[name].is_int else text
        records.append(row)
    return records


# ---- the reference, in plain Python --------------------------------------------------------------

def inside(address: str, block: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(block)
    except (ValueError, TypeError):
        return False


def reference(preset: str, records: list[dict[str, Any]], *, n: int = 10, block: str = VPC) -> list[dict[str, Any]]:
    ok = [r for r in records if r["log_status"] == "OK"]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if preset == "port-scan":
        for r in ok:
            if r["action"] == "REJECT" and r["protocol"] in (6, 17):
                groups[r["srcaddr"]].append(r)
        out = [{"srcaddr": s, "ports": len({r["dstport"] for r in rs}), "flows": len(rs),
                "targets": len({r["dstaddr"] for r in rs}), "first_start": min(r["start"] for r in rs),
                "last_end": max(r["end"] for r in rs)} for s, rs in groups.items()]
        out = [o for o in out if o["ports"] >= n]
        return sorted(out, key=lambda o: (-o["ports"], -o["flows"], o["srcaddr"]))
    if preset == "ssh-rdp-brute-force":
        for r in ok:
            if r["protocol"] == 6 and r["dstport"] in (22, 3389):
                groups[r["srcaddr"]].append(r)
        out = [{"srcaddr": s, "flows": len(rs), "targets": len({r["dstaddr"] for r in rs}),
                "accepted": sum(r["action"] == "ACCEPT" for r in rs), "rejected": sum(r["action"] == "REJECT" for r in rs),
                "first_start": min(r["start"] for r in rs), "last_end": max(r["end"] for r in rs)}
               for s, rs in groups.items()]
        out = [o for o in out if o["flows"] >= n]
        return sorted(out, key=lambda o: (-o["flows"], o["srcaddr"]))
    assert preset == "egress-by-destination"
    for r in ok:
        if inside(r["srcaddr"], block) and not inside(r["dstaddr"], block):
            groups[r["dstaddr"]].append(r)
    out = [{"dstaddr": d, "bytes": sum(r["bytes"] for r in rs), "packets": sum(r["packets"] for r in rs),
            "flows": len(rs), "sources": len({r["srcaddr"] for r in rs})} for d, rs in groups.items()]
    return sorted(out, key=lambda o: (-o["bytes"], o["dstaddr"]))[:10]


@pytest.fixture
def logs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "logs", write(tmp_path / "logs")


@pytest.mark.parametrize(("preset", "params", "n"), [
    ("port-scan", (), 10), ("port-scan", (("min_ports", "20"),), 20), ("port-scan", (("min_ports", "1"),), 1),
    ("ssh-rdp-brute-force", (), 10), ("ssh-rdp-brute-force", (("min_flows", "3"),), 3),
])
def test_detection_presets_give_the_reference_answer(logs, preset, params, n):
    root, records = logs
    rows, _ = query(preset, source=root, params=params)
    assert rows == reference(preset, records, n=n)
    assert rows


def test_the_scanners_are_found_and_the_threshold_matters(logs):
    root, _ = logs
    rows, _ = query("port-scan", source=root)
    assert [r["srcaddr"] for r in rows][:2] == ["198.51.100.66", "203.0.113.77"]
    assert rows[0]["ports"] == 30
    rows, _ = query("port-scan", source=root, params=(("min_ports", "20"),))
    assert "203.0.113.77" not in [r["srcaddr"] for r in rows]
    rows, _ = query("ssh-rdp-brute-force", source=root)
    assert rows[0]["srcaddr"] == "203.0.113.88" and rows[0]["flows"] >= 15


@pytest.mark.parametrize("block", [VPC, "10.0.0.0/16", "10.0.0.0/28"])
def test_egress_by_destination_against_the_reference(logs, block):
    root, records = logs
    rows, _ = query("egress-by-destination", source=root, params=(("vpc_cidr", block),))
    want = reference("egress-by-destination", records, block=block)
    assert rows == want and rows
    if block == VPC:
        assert {"198.51.100.7", "203.0.113.9"} <= {r["dstaddr"] for r in rows}
        assert "10.0.0.6" not in {r["dstaddr"] for r in rows}        # inside the VPC: not egress


def test_egress_by_destination_needs_a_vpc_block_without_a_stack(logs):
    root, _ = logs
    with pytest.raises(UsageError, match="needs the VPC's CIDR block"):
        query("egress-by-destination", source=root)


def test_parameters_are_validated():
    table = "flow_logs"
    with pytest.raises(UsageError, match="--min-ports must be a whole number >= 1"):
        presets.build(presets.BY_NAME["port-scan"], table=table, params={"min_ports": "0"})
    with pytest.raises(UsageError, match="not an IPv4 CIDR block"):
        presets.build(presets.BY_NAME["egress-by-destination"], table=table, params={"vpc_cidr": "10.0.0.0/99"})
    sql = presets.build(presets.BY_NAME["egress-by-destination"], table=table, params={"vpc_cidr": "10.0.0.0/24"})
    assert "BETWEEN 167772160 AND 167772415" in sql


def test_named_queries_of_the_detections():
    queries = presets.named_queries(V2, "db", "flows", "10.0.0.0/24")
    for name in ("port-scan", "ssh-rdp-brute-force", "egress-by-destination"):
        description, sql = queries[f"flowwatch-{name}"]
        assert "db.flows" in sql.replace('"', "") and description
    assert ">= 10" in queries["flowwatch-port-scan"][1]
    assert "flowwatch-egress-by-destination" not in presets.named_queries(V2, "db", "flows")
