"""Benchmark: a Logs Insights stats query over 1M flow-log events, next to the same work by flowwatch.patterns.

The work: the REJECTed records, counted and their bytes summed per destination port.

  (a) insights, evaluator alone: ``filter action = "REJECT" | stats count(*) as n, sum(bytes) as b by srcAddr``
      compiled once by flowwatch.insights.language and run over the events in memory (flowwatch.insights.Source);
      and the same stats without the filter (every record evaluated: the evaluator's per-record cost);
  (b) insights, end to end: the same query through StartQuery + GetQueryResults (boto3) on a local server
      (``python -m flowwatch.local.server``) that received the events through PutLogEvents (``--server``);
  (c) patterns, `flowwatch pattern test`'s path: the space-delimited pattern of ``action = REJECT`` in the v2
      format (``pattern.extract(line)``, as `pattern test` does), the extracted fields then counted and summed;
  (d) patterns, ``pattern.matches(line)`` only (no fields extracted, no counting): the floor of (c);
  (e) DuckDB, the design not taken: the same query as SQL over a table already holding the 1M messages
      (``string_split``), and what putting them into DuckDB costs from Python without pandas or Arrow.

Every variant must give the same per-source counts and sums (checked). Figures: records per second,
median over ``--runs`` runs; the events are generated deterministically (benchmarks/bench_patterns.py).

    PYTHONPATH=src python benchmarks/bench_insights.py [--events 1000000] [--runs 3] [--server] [--duckdb]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_patterns import generate_lines  # noqa: E402

QUERY = 'filter action = "REJECT" | stats count(*) as n, sum(bytes) as b by dstPort'
#: The same stats over every record (no filter to skip most of them by a substring test): the per-record cost.
EVERY = "stats count(*) as n, sum(bytes) as b by dstPort"
T0 = 1_700_000_000_000
Totals = dict[str, tuple[int, int]]


def timed(fn: Callable[[], Totals], runs: int) -> tuple[float, Totals]:
    seconds, result = [], {}
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def insights_rows(rows: list[list[tuple[str, str]]] | list[list[dict[str, str]]]) -> Totals:
    out: Totals = {}
    for row in rows:
        cells = dict((c["field"], c["value"]) if isinstance(c, dict) else c for c in row)
        out[cells["dstPort"]] = (int(cells["n"]), int(cells.get("b", 0)))     # "-" of NODATA: no sum
    return out


def evaluator(lines: list[str], text: str = QUERY) -> Callable[[], Totals]:
    from flowwatch.insights.language import Source, compile_query

    events = [Source(T0 + i, T0 + i, "eni-all", "123456789010:/bench", m, "") for i, m in enumerate(lines)]
    query = compile_query(text)
    return lambda: insights_rows(query.run(events, newest_first=False).rows)


def patterns_extract(lines: list[str]) -> Callable[[], Totals]:
    from flowwatch.patterns import compile_pattern
    from flowwatch.records import RecordFormat

    pattern = compile_pattern(RecordFormat.parse("v2").filter_pattern({"action": "REJECT"}))

    def run() -> Totals:
        counts: dict[str, list[int]] = {}
        for line in lines:
            fields = pattern.extract(line)
            if fields is not None:
                entry = counts.setdefault(fields["dstport"], [0, 0])
                entry[0] += 1
                entry[1] += int(fields["bytes"])
        return {k: (v[0], v[1]) for k, v in counts.items()}
    return run


def patterns_matches(lines: list[str]) -> Callable[[], Totals]:
    from flowwatch.patterns import compile_pattern
    from flowwatch.records import RecordFormat

    matches = compile_pattern(RecordFormat.parse("v2").filter_pattern({"action": "REJECT"})).matches

    def run() -> Totals:
        sum(1 for line in lines if matches(line))
        return {}
    return run


def duckdb_variant(lines: list[str], runs: int) -> tuple[float, float, Totals]:
    """(seconds to put the messages into DuckDB, seconds of the query on the table, result)."""
    import duckdb

    con = duckdb.connect(":memory:")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages.txt"
        started = time.perf_counter()
        path.write_text("\n".join(lines) + "\n")
        con.execute("CREATE TABLE events AS SELECT column0 AS message FROM read_csv(?, header = false, "
                    "delim = '\\x01', quote = '', escape = '', columns = {'column0': 'VARCHAR'})", [str(path)])
        load = time.perf_counter() - started
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    sql = ("SELECT parts[7] AS src, count(*) AS n, sum(TRY_CAST(parts[10] AS BIGINT)) AS b FROM "
           "(SELECT string_split(message, ' ') AS parts FROM events) "
           "WHERE len(parts) = 14 AND parts[1] = '2' AND parts[13] = 'REJECT' GROUP BY 1")

    def run() -> Totals:
        return {src: (int(n), int(b)) for src, n, b in con.execute(sql).fetchall()}
    seconds, result = timed(run, runs)
    return load, seconds, result


def end_to_end(lines: list[str], runs: int) -> tuple[float, float, Totals]:
    """(seconds to PutLogEvents every line, median seconds of StartQuery + GetQueryResults, result)."""
    import boto3

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.local.test_dataplane import start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            logs = boto3.client("logs", region_name="us-east-1", endpoint_url=server.url,
                                aws_access_key_id="bench", aws_secret_access_key="bench")
            logs.create_log_group(logGroupName="/bench")
            logs.create_log_stream(logGroupName="/bench", logStreamName="eni-all")
            now = int(time.time() * 1000) - len(lines)
            started = time.perf_counter()
            batch: list[dict[str, Any]] = []
            size = 0
            for i, line in enumerate(lines):       # PutLogEvents: at most 10,000 events and 1 MiB a batch
                if len(batch) == 10_000 or size + len(line) + 26 > 1_000_000:
                    logs.put_log_events(logGroupName="/bench", logStreamName="eni-all", logEvents=batch)
                    batch, size = [], 0
                batch.append({"timestamp": now + i, "message": line})
                size += len(line) + 26
            if batch:
                logs.put_log_events(logGroupName="/bench", logStreamName="eni-all", logEvents=batch)
            put = time.perf_counter() - started

            def run() -> Totals:
                query_id = logs.start_query(logGroupName="/bench", startTime=now // 1000 - 1,
                                            endTime=int(time.time()) + 1, queryString=QUERY)["queryId"]
                answer = logs.get_query_results(queryId=query_id)
                assert answer["status"] == "Complete", answer["status"]
                return insights_rows(answer["results"])
            seconds, result = timed(run, runs)
        finally:
            stop_server(server)
    return put, seconds, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--server", action="store_true", help="also end to end on a local server (slow to load)")
    parser.add_argument("--duckdb", action="store_true", help="also the DuckDB design, for comparison")
    args = parser.parse_args(argv)
    lines = generate_lines(args.events)
    n = len(lines)

    def rate(seconds: float) -> str:
        return f"{n / seconds:>12,.0f} records/s  ({seconds:.3f} s)"

    print(f"{n:,} version-2 events, {sum(map(len, lines)) / 1e6:.1f} MB; query: {QUERY}; median of {args.runs} runs")
    seconds, expected = timed(evaluator(lines), args.runs)
    print(f"(a) insights evaluator alone      {rate(seconds)}  {len(expected):,} ports")
    seconds, _ = timed(evaluator(lines, EVERY), args.runs)
    print(f"    the same, no filter: {EVERY!r} {rate(seconds)}")
    seconds, extracted = timed(patterns_extract(lines), args.runs)
    print(f"(c) patterns extract + count      {rate(seconds)}")
    assert extracted == expected, "flowwatch.patterns and the Insights evaluator disagree"
    seconds, _ = timed(patterns_matches(lines), args.runs)
    print(f"(d) patterns matches only         {rate(seconds)}")
    if args.duckdb:
        load, seconds, by_sql = duckdb_variant(lines, args.runs)
        assert by_sql == expected, "DuckDB and the Insights evaluator disagree"
        print(f"(e) DuckDB query on a table       {rate(seconds)}")
        print(f"    DuckDB: loading the messages  {rate(load)}  (once per query, unless kept in step with puts)")
    if args.server:
        put, seconds, over_api = end_to_end(lines, args.runs)
        assert over_api == expected, "the local server's answer differs from the evaluator's"
        print(f"(b) insights end to end (API)     {rate(seconds)}")
        print(f"    PutLogEvents of every event   {rate(put)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
