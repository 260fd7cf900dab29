"""Benchmark: `flowwatch query ... --source DIR` (DuckDB local engine) against the decompression floor.

Generates 2M and 10M version-2 records (``--records``) as gzip files of ~250k records each, in
AWS's key layout (``AWSLogs/<acct>/vpcflowlogs/<region>/YYYY/MM/DD/<acct>_vpcflowlogs_..._<time>Z_<hash>.log.gz``),
spread over two days. The mix is deterministic (DuckDB's ``hash`` of the record number, so the
files are the same on every run with the same DuckDB) and realistic: egress to a few popular
services and a long tail of addresses, inbound service traffic, internal traffic, scanners
rejected on 22/23/445/1433/3389/..., pings rejected by the lab's NACL rule, NODATA/SKIPDATA
rows; about 200k distinct external addresses. Files are cached in ``--dir`` between runs (a
manifest records how they were made).

Then, in the same run and interleaved round by round (``--runs``, medians reported):

* floor: decompress every file with Python's zlib in 2 processes (the floor on a 2-core machine);
* ISA-L floor: the same with ISA-L's inflate (the ``isal`` package, which flowwatch's file check
  uses) in 2 threads, output discarded;
* duckdb read_csv: a bare DuckDB count over the same .gz files (reference);
* startup: the whole command over an empty folder (interpreter + imports);
* the whole commands ``query top-talkers --source DIR`` and
  ``query rejects --source DIR --output json > /dev/null``;
* top-talkers again right after a first query (the columnar cache, on by default, filled by the first
  query; each file's check and the SQL's analysis remembered: no sqlglot import);
* the same two with ``--parquet-cache`` (after one run that fills the cache, timed apart).

Commands run from ``--dir`` (no flowwatch.yaml there: the defaults, format v2) with bytecode
caching on (``PYTHONPYCACHEPREFIX`` under ``--dir``), as an installed CLI runs.
Wall time is for the whole process, start-up included; peak RSS comes from ``wait4``; "query s"
is DuckDB's part (the time ``-v`` reports for running the statement and writing its output);
"cpu s" is user + system time (all threads; for the floor, both worker processes) and "x cpu"
its ratio to the floor's, steadier than wall time when others load the machine.

The last table puts side by side, per record count: the two floors and top-talkers as a first
query (text files never checked: the check of each file + DuckDB's read), as a repeat query (the
same files again: their checks remembered) and as a repeat with ``--parquet-cache`` (copies made),
each with its ratio to both floors and its peak RSS.

    /work/venv/bin/python benchmarks/bench_query.py [--records 2000000,10000000] [--dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

GENERATOR = 4                     # bump when the generated data changes
PER_FILE = 250_000                # records per file, as AWS delivers them
ACCOUNT = "123456789012"
REGION = "us-east-1"
FLOW_LOG = "fl-0bench0000000000"
T0 = datetime(2026, 11, 20, 0, 5, tzinfo=timezone.utc)
SPAN = timedelta(days=2)

# One file's records, from the record numbers lo .. lo+n and the file's (delivery) time t.
_RECORDS_SQL = """
WITH r AS (
    SELECT i, hash(i, 11) AS h1, hash(i, 23) AS h2, hash(i, 37) AS h3 FROM range({lo}, {hi}) t(i)
), k AS (
    SELECT *, h1 % 10000 AS roll,
           '10.0.0.' || (4 + h2 % 59) AS inside,
           CASE WHEN h3 % 100 < 60 THEN '52.216.' || ((h3 >> 8) % 50) || '.' || (10 + (h3 >> 8) % 50)
                ELSE (20 + (h3 >> 16) % 200000 // 1000) || '.' || ((h3 >> 16) % 200000 // 4 % 250) || '.'
                     || ((h3 >> 16) % 250) || '.' || (1 + (h3 >> 16) % 200000 * 7 % 254) END AS outside,
           (h2 >> 20) % 100 AS p
    FROM r
), c AS (
    SELECT *,
        CASE WHEN roll < 50 THEN 'NODATA' WHEN roll < 60 THEN 'SKIPDATA' WHEN roll < 760 THEN 'scan'
             WHEN roll < 5000 THEN 'egress' WHEN roll < 9500 THEN 'ingress' ELSE 'internal' END AS kind
    FROM k
), d AS (
    SELECT *,
        CASE kind WHEN 'scan' THEN (CASE WHEN p < 90 THEN 6 ELSE 1 END)
                  WHEN 'egress' THEN (CASE WHEN p < 85 THEN 6 WHEN p < 97 THEN 17 ELSE 1 END)
                  WHEN 'ingress' THEN (CASE WHEN p < 95 THEN 6 ELSE 17 END)
                  WHEN 'internal' THEN 6 END AS proto
    FROM c
)
SELECT 2 AS "version", '{account}' AS "account-id",
    'eni-0f1e2d3c4b5a6' || (1000 + (h2 >> 30) % 10) AS "interface-id",
    CASE WHEN kind IN ('NODATA', 'SKIPDATA') THEN NULL WHEN kind IN ('scan', 'ingress') THEN outside
         ELSE inside END AS srcaddr,
    CASE WHEN kind IN ('NODATA', 'SKIPDATA') THEN NULL WHEN kind = 'egress' THEN outside
         WHEN kind = 'internal' THEN '10.0.0.' || (4 + h3 % 59) ELSE inside END AS dstaddr,
    CASE WHEN proto IS NULL THEN NULL WHEN proto = 1 THEN 0 WHEN kind = 'scan' THEN 1024 + (h1 >> 20) % 64000
         ELSE 32768 + (h1 >> 20) % 28232 END AS srcport,
    CASE WHEN proto IS NULL THEN NULL WHEN proto = 1 THEN 0
         WHEN kind = 'scan' THEN [22, 23, 3389, 445, 1433, 5900, 8080, 3306][1 + ((h1 >> 40) % 8)::BIGINT]
         WHEN proto = 17 THEN (CASE WHEN p % 2 = 0 THEN 53 ELSE 123 END)
         WHEN kind = 'internal' THEN [5432, 6379, 443, 8080][1 + ((h1 >> 40) % 4)::BIGINT]
         ELSE [443, 443, 443, 443, 443, 443, 80, 80, 22, 5432][1 + ((h1 >> 40) % 10)::BIGINT] END AS dstport,
    proto AS protocol,
    CASE WHEN proto IS NULL THEN NULL
         WHEN kind = 'scan' AND proto = 6 THEN 1 + (h3 >> 50) % 3
         WHEN proto = 1 THEN 1 + (h3 >> 50) % 10
         WHEN proto = 17 THEN 1 + (h3 >> 50) % 20
         ELSE 1 + ((h3 >> 44) % 1000) * ((h3 >> 54) % 1000) // 500 END AS packets,
    CASE WHEN proto IS NULL THEN NULL
         WHEN kind = 'scan' AND proto = 6 THEN (1 + (h3 >> 50) % 3) * 60
         WHEN proto = 1 THEN (1 + (h3 >> 50) % 10) * 84
         WHEN proto = 17 THEN (1 + (h3 >> 50) % 20) * (60 + (h2 >> 40) % 450)
         ELSE (1 + ((h3 >> 44) % 1000) * ((h3 >> 54) % 1000) // 500) * (52 + (h2 >> 40) % 1400) END AS bytes,
    {t} - 600 + (h1 >> 8) % 540 AS start,
    {t} - 600 + (h1 >> 8) % 540 + 1 + (h1 >> 30) % 59 AS "end",
    CASE WHEN kind IN ('NODATA', 'SKIPDATA') THEN NULL WHEN kind = 'scan' OR proto = 1 THEN 'REJECT'
         ELSE 'ACCEPT' END AS action,
    CASE WHEN kind IN ('NODATA', 'SKIPDATA') THEN kind ELSE 'OK' END AS "log-status"
FROM d
"""


# ---- data ---------------------------------------------------------------------------------------

def _file_plan(records: int, root: Path) -> list[tuple[int, int, int, str]]:
    """(lo, hi, unix time, path) of each file: ~PER_FILE records, times spread over SPAN."""
    from flowwatch.s3layout import S3Layout

    layout = S3Layout("bench", ACCOUNT, REGION)
    count = max(1, round(records / PER_FILE))
    step = timedelta(minutes=(SPAN // timedelta(minutes=5) // count) * 5 or 5)
    plan = []
    for n in range(count):
        lo, hi = n * records // count, (n + 1) * records // count
        t = T0 + n * step
        key = layout.object_key(t, FLOW_LOG, f"{zlib.crc32(f'{records}-{n}'.encode()):08x}")
        plan.append((lo, hi, int(layout.window_start(t).timestamp()), str(root / key)))
    return plan


def _write_file(spec: tuple[int, int, int, str]) -> str:
    import duckdb

    lo, hi, t, path = spec
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 1})
    sql = _RECORDS_SQL.format(lo=lo, hi=hi, t=t, account=ACCOUNT)
    partial = path + ".part"
    con.execute(f"COPY ({sql}) TO '{partial}' (FORMAT csv, DELIMITER ' ', HEADER true, NULLSTR '-', "
                "QUOTE '', ESCAPE '', COMPRESSION gzip)")
    os.replace(partial, path)
    return path


def ensure_data(records: int, base: Path) -> tuple[Path, list[str]]:
    """The folder of ``records`` generated records, made once and reused while the manifest matches."""
    import duckdb

    root = base / f"records-{records}"
    manifest = root / "manifest.json"
    want = {"records": records, "per_file": PER_FILE, "generator": GENERATOR, "duckdb": duckdb.__version__}
    plan = _file_plan(records, root)
    if manifest.is_file() and json.loads(manifest.read_text()) == want and all(Path(p).is_file() for *_, p in plan):
        return root, [p for *_, p in plan]
    print(f"generating {records:,} records in {len(plan)} files under {root} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        paths = list(pool.map(_write_file, plan))
    manifest.write_text(json.dumps(want))
    print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return root, paths


# ---- measuring ----------------------------------------------------------------------------------

def _inflate(path: str) -> int:
    d = zlib.decompressobj(wbits=31)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            size += len(d.decompress(chunk))
    return size


def _inflate_isal(path: str) -> int:
    from isal import isal_zlib

    size = 0
    with open(path, "rb") as handle:
        data = handle.read()
    while data:  # every gzip member
        d = isal_zlib.decompressobj(wbits=31)
        size += len(d.decompress(data))
        data = d.unused_data
    return size


def isal_floor(paths: list[str]) -> tuple[float, int, None, float]:
    """Seconds (wall, then CPU) to decompress every file with ISA-L in 2 threads (it releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(2) as pool:
        sum(pool.map(_inflate_isal, paths))
    return time.perf_counter() - started, 0, None, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def floor(paths: list[str]) -> tuple[float, int, None, float]:
    """Seconds (wall, then CPU) to decompress every file with zlib in 2 processes."""
    started, cpu = time.perf_counter(), _children_cpu()
    with ProcessPoolExecutor(2) as pool:   # workers are reaped on exit: their CPU time is counted
        sum(pool.map(_inflate, paths))
    return time.perf_counter() - started, 0, None, _children_cpu() - cpu


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, float | None, float]:
    """(wall seconds, peak RSS bytes, the engine's own query seconds if it said, CPU seconds) of one process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        err.seek(0)
        text = err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{text}")
    match = re.search(r"local engine \(DuckDB\): .*query (\d+\.\d+) s", text)
    return (elapsed, usage.ru_maxrss * 1024, float(match.group(1)) if match else None,
            usage.ru_utime + usage.ru_stime)


_DUCKDB_PLAIN = """
import glob, sys, duckdb
files = sorted(glob.glob(sys.argv[1] + "/**/*.log.gz", recursive=True))
con = duckdb.connect(config={"threads": 2})
con.sql(f"SELECT count(*) FROM read_csv({files!r}, delim=' ', header=true, nullstr='-')").fetchall()
"""


ISAL_FLOOR = "ISA-L floor (2 threads)"


@dataclass
class Series:
    name: str
    seconds: list[float] = field(default_factory=list)
    peak: int = 0
    query: list[float] = field(default_factory=list)   # DuckDB's part, as `-v` reports it
    cpu: list[float] = field(default_factory=list)     # user + system, all threads and processes

    def add(self, seconds: float, peak: int = 0, query: float | None = None, cpu: float | None = None) -> None:
        self.seconds.append(seconds)
        if cpu is not None:
            self.cpu.append(cpu)
        self.peak = max(self.peak, peak)
        if query is not None:
            self.query.append(query)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def bench(records: int, base: Path, runs: int) -> list[Series]:
    root, paths = ensure_data(records, base)
    cache = base / "cache"
    empty = base / "empty"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLOWWATCH_", "AWS_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(cache)
    env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")   # bytecode cached, as for an installed CLI
    cmd = [sys.executable, "-m", "flowwatch", "-v", "query"]
    commands = {
        "duckdb read_csv (reference)": [sys.executable, "-c", _DUCKDB_PLAIN, str(root)],
        "startup (empty folder)": cmd + ["top-talkers", "--source", str(empty)],
        "query top-talkers": cmd + ["top-talkers", "--source", str(root)],
        "query rejects --output json": cmd + ["rejects", "--source", str(root), "--output", "json"],
    }
    remembered = {"top-talkers, checks remembered": commands["query top-talkers"]}
    cached = {
        "top-talkers --parquet-cache": cmd + ["top-talkers", "--source", str(root), "--parquet-cache"],
        "rejects json --parquet-cache": cmd + ["rejects", "--source", str(root), "--output", "json",
                                               "--parquet-cache"],
    }
    series = {name: Series(name) for name in ["zlib floor (2 processes)", ISAL_FLOOR, *commands, *remembered, *cached]}
    checked = cache / "flowwatch" / "checked"
    subprocess.run(["rm", "-rf", str(cache / "flowwatch" / "parquet")], check=True)
    for _ in range(runs):
        series["zlib floor (2 processes)"].add(*floor(paths))
        series[ISAL_FLOOR].add(*isal_floor(paths))
        for name, argv in commands.items():
            # a first query: no file checked, no columnar copy, no SQL analysis remembered yet
            subprocess.run(["rm", "-rf", str(checked), str(cache / "flowwatch" / "parquet"),
                            str(cache / "flowwatch" / "analysis")], check=True)
            series[name].add(*timed(argv, env, base))
        for name, argv in remembered.items():                           # right after one: checks remembered
            series[name].add(*timed(argv, env, base))
    fill = Series("parquet cache fill (first run, once)")
    fill.add(*timed(cached["top-talkers --parquet-cache"], env, base))
    for _ in range(runs):
        for name, argv in cached.items():
            series[name].add(*timed(argv, env, base))
    return [*series.values(), fill]


def report(records: int, results: list[Series]) -> None:
    base = results[0].median
    base_cpu = statistics.median(results[0].cpu)
    print(f"\n{records:,} records (median of {len(results[0].seconds)} runs; whole process, start-up included)")
    print(f"  {'':38} {'median s':>9} {'min s':>7} {'max s':>7} {'x floor':>8} {'peak RSS':>10} {'query s':>8} {'cpu s':>6} {'x cpu':>6}")
    for s in results:
        rss = f"{s.peak / 2 ** 20:.0f} MiB" if s.peak else "-"
        inner = f"{statistics.median(s.query):.2f}" if s.query else "-"
        cpu = f"{statistics.median(s.cpu):.2f}" if s.cpu else "-"
        x_cpu = f"{statistics.median(s.cpu) / base_cpu:.2f}" if s.cpu else "-"
        print(f"  {s.name:38} {s.median:9.2f} {min(s.seconds):7.2f} {max(s.seconds):7.2f} "
              f"{s.median / base:8.2f} {rss:>10} {inner:>8} {cpu:>6} {x_cpu:>6}")


def summary(figures: dict[int, list[Series]]) -> None:
    """First and repeat query beside the two floors, per record count."""
    print("\ntop-talkers: first = over text files never checked; repeat = the same again (checks remembered);"
          " repeat, Parquet = with --parquet-cache, copies made")
    print(f"  {'records':>11} {'zlib s':>7} {'ISA-L s':>8} {'query':>16} {'s':>7} {'x zlib':>7} {'x ISA-L':>8} "
          f"{'peak RSS':>9}")
    for records, results in figures.items():
        by = {s.name: s for s in results}
        zlib_s, isal_s = by["zlib floor (2 processes)"].median, by[ISAL_FLOOR].median
        for label, name in (("first", "query top-talkers"), ("repeat", "top-talkers, checks remembered"),
                            ("repeat, Parquet", "top-talkers --parquet-cache")):
            run = by[name]
            print(f"  {records:>11,} {zlib_s:7.2f} {isal_s:8.2f} {label:>16} {run.median:7.2f} "
                  f"{run.median / zlib_s:7.2f} {run.median / isal_s:8.2f} {run.peak / 2 ** 20:5.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="2000000,10000000", help="comma-separated record counts")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "flowwatch-bench-query",
                        help="where generated files (kept between runs) and the cache go")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    figures = {}
    measured: dict[int, list[Series]] = {}
    for records in (int(r) for r in args.records.split(",")):
        results = bench(records, args.dir, args.runs)
        report(records, results)
        measured[records] = results
        figures[records] = {s.name: {"median": s.median, "runs": s.seconds, "peak_rss": s.peak, "query": s.query,
                                     "cpu": s.cpu}
                            for s in results}
    summary(measured)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
