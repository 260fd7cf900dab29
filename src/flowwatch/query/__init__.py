"""`flowwatch query`: presets and your own SQL over the stack's flow logs, on Athena or DuckDB.

* ``presets.py``: the presets, written once in Athena (Trino) SQL, composed with sqlglot;
* ``flowwatch.timewindow``: ``--since``/``--from``/``--to`` -> partition (``dt``) and record-time predicates;
* ``athena_engine.py``: StartQueryExecution in the stack's workgroup, poll, paginate, cost;
* ``local_engine.py``: the same SQL transpiled by sqlglot to DuckDB, over the S3 objects of the
  window (downloaded once into a cache) or over files on disk (``--source``).

Everything is validated (window, address, SQL) before the first AWS call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flowwatch.console import plural
from flowwatch.errors import AwsError, UsageError

if TYPE_CHECKING:
    from flowwatch.config import Config
    from flowwatch.console import Output
    from flowwatch.model import Context
    from flowwatch.timewindow import TimeWindow
    from flowwatch.records import RecordFormat
    from flowwatch.s3layout import S3Layout
    from flowwatch.settings import Settings
    from flowwatch.query.analysis_cache import Analysis

ENGINES = ("athena", "local")
MAX_TABLE_ROWS = 1000  # a terminal table beyond this is unreadable: use --limit or --output json|csv
_TRAFFIC_STATES = ["pending", "running", "stopped"]


@dataclass(frozen=True)
class QueryRequest:
    """What one `flowwatch query ...` command asks for (already type-checked by click)."""

    preset: str | None = None          # None: `query sql`
    sql: str | None = None
    ip: str | None = None
    since: str | None = None
    from_: str | None = None
    to: str | None = None
    limit: int | None = None
    output: str = "table"
    engine: str | None = None          # None: local with --local or --source, else athena
    source: Path | None = None
    parquet_cache: bool = True         # accepted (--parquet-cache); the local engine's columnar cache is always on
    show_sql: bool = False
    times: str | None = None           # "iso" | "epoch"; None: iso in tables, epoch in JSON/CSV
    params: tuple[tuple[str, str], ...] = ()   # the preset's other parameters: (("min_ports", "20"),)


@dataclass(frozen=True)
class Target:
    """What a query needs from the stack's config: the record format, the Glue names, the ``dt`` format."""

    record_format: "RecordFormat"
    database: str
    table: str
    dt_layout: "S3Layout"              # only its dt format is used (bucket and account are placeholders)
    vpc_cidr: str | None = None        # the stack VPC's block (egress-by-destination's default)

    @classmethod
    def of(cls, config: "Config") -> "Target":
        from flowwatch.naming import Names

        names = Names.from_config(config)
        fl = config.flow_logs
        return cls(config.record_format, names.of("database"), names.of("table"),
                   _dt_layout(config.region, hive=fl.hive_partitions, per_hour=fl.per_hour_partitions),
                   None if config.adopted else config.network.vpc_cidr)

    @classmethod
    def defaults(cls, stack: str, region: str) -> "Target":
        """No config file (``--source``): the version-2 format, the default names and layout."""
        from flowwatch.naming import Names
        from flowwatch.records import RecordFormat

        names = Names(stack)
        return cls(RecordFormat.parse("v2"), names.of("database"), names.of("table"), _dt_layout(region))


@dataclass(frozen=True)
class Prepared:
    """A validated request: the engine, the window and the Athena SQL to run."""

    engine: str
    window: "TimeWindow | None"
    partitions: tuple[str, str] | None
    sql: str
    #: the local engine's sqlglot results (flowwatch.query.analysis_cache), when remembered from an earlier run
    analysis: "Analysis | None" = None
    analysis_key: str | None = None


def run_in(ctx: "Context", request: QueryRequest) -> None:
    """Prepare and execute ``request`` with a Context already built (the CLI, `flowwatch demo`).

    The CLI validates first (``choose_engine``, ``prepare``: no AWS) and builds the Context only
    then; ``--source`` runs ``execute`` with no Context at all."""
    target = Target.of(ctx.config)
    engine = choose_engine(request, local=ctx.local)
    execute(ctx, target, request, prepare(target, request, engine), ctx.out)


def choose_engine(request: QueryRequest, *, local: bool) -> str:
    """--engine, else local with --local or --source, else athena."""
    if request.source is not None and request.engine == "athena":
        raise UsageError("--source reads files on disk with the local engine; it cannot run on Athena",
                         hint="drop --engine athena (or --source)")
    if request.engine is not None:
        return request.engine
    return "local" if local or request.source is not None else "athena"


def offline_target(settings: "Settings") -> Target:
    """With ``--source`` no AWS is involved: the config file if there is one, else the defaults (v2)."""
    path = settings.config_path
    if settings.config_explicit or (path and Path(path).is_file()):
        from flowwatch.config import load_config

        return Target.of(load_config(path, stack=settings.stack, region=settings.region))
    return Target.defaults(settings.stack or "flowwatch", settings.region or "us-east-1")


def prepare(target: Target, request: QueryRequest, engine: str) -> Prepared:
    """Window, partitions and SQL, validated (UsageError) without any AWS call."""
    from flowwatch import timewindow

    _quiet_sqlglot()
    window = timewindow.resolve(since=request.since, from_=request.from_, to=request.to)
    partitions = window.partition_range(target.dt_layout) if window else None
    name = _analysis_key(target, request, window, partitions) if engine == "local" else None
    if name is not None:   # the same request ran before: its checked, composed SQL and the rest, without sqlglot
        from flowwatch.query import analysis_cache
        from flowwatch.query.local_engine import cache_root

        known = analysis_cache.load(cache_root(), name)
        if known is not None:
            return Prepared(engine, window, partitions, known.athena_sql, analysis=known, analysis_key=name)
    if request.preset is None:
        from flowwatch.query import statement

        statement.check(request.sql or "")   # a syntax error (exit 1) or no query (exit 2), on either engine
    sql = compose(target, request, window, partitions, ip=request.ip)
    return Prepared(engine, window, partitions, sql, analysis_key=name)


def _analysis_key(target: Target, request: QueryRequest, window: "TimeWindow | None",
                  partitions: tuple[str, str] | None) -> str | None:
    """The analysis cache's name for this request; None when the SQL depends on more than the request
    (icmp without an address on a stack: the traffic instance's address is looked up)."""
    from flowwatch.query import analysis_cache

    if request.preset == "icmp" and request.ip is None and request.source is None:
        return None
    layout = target.dt_layout
    return analysis_cache.key({
        "preset": request.preset, "sql": request.sql, "ip": request.ip, "params": list(request.params),
        "vpc_cidr": target.vpc_cidr, "limit": request.limit,
        "window": [window.start.isoformat(), window.end.isoformat()] if window is not None else None,
        "partitions": list(partitions) if partitions else None,
        "table": target.table, "database": target.database, "fields": list(target.record_format.fields),
        "layout": [layout.hive, layout.per_hour, layout.region],
    })


def compose(target: Target, request: QueryRequest, window: "TimeWindow | None",
            partitions: tuple[str, str] | None, *, ip: str | None) -> str:
    """The Athena SQL to run: a preset with its parameters, or the user's statement, in the window."""
    from flowwatch.query import presets

    if request.preset is None:
        from flowwatch.query.statement import with_table_alias

        sql = with_table_alias(request.sql or "", table=target.table, database=target.database)
        return presets.scope_user_sql(sql, table=target.table, database=target.database,
                                      window=window, partitions=partitions, limit=request.limit)
    return presets.build(presets.BY_NAME[request.preset], table=target.table, window=window, partitions=partitions,
                         params={"vpc_cidr": target.vpc_cidr, **dict(request.params), "ip": ip}, limit=request.limit,
                         columns=target.record_format.columns)


def execute(ctx: "Context | None", target: Target, request: QueryRequest, prepared: Prepared,
            out: "Output") -> None:
    sql, window, partitions = prepared.sql, prepared.window, prepared.partitions
    if request.preset == "icmp" and request.ip is None and ctx is not None:
        default_ip = traffic_instance_ip(ctx)
        if default_ip is not None:
            sql = compose(target, request, window, partitions, ip=default_ip)
    if window is not None and partitions is not None:
        out.detail(f"time window: {window.describe()} (partitions {partitions[0]} .. {partitions[1]})")
    out.debug_line(f"{prepared.engine} engine, Athena SQL:\n{sql}")
    if prepared.engine == "athena":
        if request.show_sql:
            out.text(sql)
        else:
            assert ctx is not None
            run_athena(ctx, sql, request.output, out, request=request)
        return
    analysis = prepared.analysis
    if analysis is None or analysis.athena_sql != sql:
        from flowwatch.query import analysis_cache

        # DuckDB's header as Athena's (count(*) is _col0, not count_star()), the transpilation, what it reads
        analysis = analysis_cache.analyse(sql)
        if prepared.analysis_key is not None and sql == prepared.sql:
            from flowwatch.query.local_engine import cache_root

            analysis_cache.store(cache_root(), prepared.analysis_key, analysis)
    if request.show_sql:
        out.text(analysis.duckdb_sql)
    else:
        run_local(ctx, target, request, analysis, window, partitions, out)


def traffic_instance_ip(ctx: "Context") -> str | None:
    """Private IP of the stack's traffic instance (the lab's ping source), if exactly one exists."""
    from botocore.exceptions import ClientError

    from flowwatch.naming import tag_filters

    filters = tag_filters(ctx.stack.name, "instance") + [{"Name": "instance-state-name", "Values": _TRAFFIC_STATES}]
    try:
        reservations = ctx.aws.ec2.describe_instances(Filters=filters)["Reservations"]
    except ClientError as exc:
        raise AwsError.from_client_error(exc, step="query", operation="DescribeInstances") from None
    found = [(i["InstanceId"], i["PrivateIpAddress"]) for r in reservations for i in r["Instances"]
             if i.get("PrivateIpAddress")]
    if len(found) > 1:
        ctx.out.warn(f"icmp: {len(found)} traffic instances ({', '.join(i for i, _ in found)}); "
                     "showing every source (give --ip to pick one)")
        return None
    if found:
        ctx.out.detail(f"icmp: records from {found[0][1]} (traffic instance {found[0][0]})")
        return found[0][1]
    return None


def run_athena(ctx: "Context", sql: str, fmt: str, out: "Output", *, request: QueryRequest | None = None) -> None:
    from flowwatch.query import athena_engine

    request = request or QueryRequest(output=fmt)
    if ctx.local:
        out.warn("the local AWS's Athena (moto) runs no SQL: it answers every query with no rows; "
                 "use --engine local to run the query over the flow-log files")
    result = athena_engine.run(ctx.aws.athena, sql, workgroup=ctx.names.of("workgroup"),
                               database=ctx.names.of("database"), out=out,
                               sleep=ctx.poll.sleep)
    render(out, result.columns, result.rows, fmt, times=_times(request, fmt), time_columns=_time_columns(sql))
    count = _row_count(len(result.rows), request)
    if ctx.local:
        out.info(f"Athena (local AWS): {count}; query {result.query_id}")
        return
    billed = athena_engine.billed_bytes(result.scanned_bytes)
    out.info(f"Athena: {count}; data scanned {human_bytes(result.scanned_bytes)} "
             f"(billed {human_bytes(billed)}, about ${result.cost_usd:.6f} at $5/TB); query {result.query_id}")


def run_local(ctx: "Context | None", target: Target, request: QueryRequest, analysis: "Analysis",
              window: "TimeWindow | None", partitions: tuple[str, str] | None, out: "Output") -> None:
    """The query on DuckDB over the window's files, read through the columnar cache (always on:
    ``--parquet-cache`` is accepted and is the default)."""
    import time

    from flowwatch.query import local_engine as local

    cache = local.FileCache(local.cache_root())
    files = local.in_partitions(_local_files(ctx, target, request, window, cache, out), partitions)
    undated = sum(f.dt is None for f in files)
    if window is not None and undated:
        out.warn(f"{plural(undated, 'file')} with no date in their name or path: their records have no dt "
                 "and fall outside the time window")
    if not files:
        out.warn("no flow-log files in the time window" if window else "no flow-log files found")
    engine = local.LocalEngine(target.record_format, table=target.table, database=target.database,
                               out=out, cache=cache, readable=[request.source] if request.source else [])
    times = _times(request, request.output)
    try:
        engine.load(files, parquet_cache=True, partition=analysis.reads_partition, path=analysis.reads_path)
        sql = analysis.local_sql
        started = time.perf_counter()
        count = None
        if request.output in ("json", "csv") and times == "epoch":
            chunks = engine.export(sql, request.output, duckdb_sql=analysis.duckdb_sql)
            out.raw(_empty_json_as_brackets(chunks) if request.output == "json" else chunks)  # streamed: any size
        else:
            cap = MAX_TABLE_ROWS if request.output == "table" else None
            columns, rows, more = engine.fetch(sql, cap, duckdb_sql=analysis.duckdb_sql)
            render(out, columns, rows, request.output, more=more, times=times,
                   time_columns=frozenset(analysis.time_columns))
            count = None if more else len(rows)
        out.detail(f"local engine (DuckDB): {plural(len(files), 'file')}, query {time.perf_counter() - started:.2f} s")
        malformed = engine.take_malformed_lines() + engine.cached_malformed
    finally:
        engine.close()
    if malformed:
        out.warn(f"skipped {plural(malformed, 'malformed line')} in the flow-log files")
    if count is not None and request.output == "table":
        out.info(_row_count(count, request))


def render(out: "Output", columns: list[str], rows: list[Any], fmt: str, *, more: bool = False,
           times: str = "epoch", time_columns: "frozenset[str] | None" = None) -> None:
    """Rows to stdout; a terminal table stops at MAX_TABLE_ROWS. ``times="iso"``: the ``time_columns``
    (default: ``start``, ``end``) as ISO-8601 UTC timestamps, else the epoch seconds as they are."""
    if fmt == "table" and len(rows) > MAX_TABLE_ROWS:
        rows, more = rows[:MAX_TABLE_ROWS], True
    if times == "iso":
        from flowwatch.query.statement import TIME_FIELDS

        wanted = time_columns if time_columns is not None else frozenset(TIME_FIELDS)
        shown = [i for i, name in enumerate(columns) if name in wanted]
        if shown:
            rows = [tuple(iso_time(v) if i in shown else v for i, v in enumerate(row)) for row in rows]
    out.data(columns, rows, fmt, time_columns=())
    if more:
        out.warn(f"showing the first {MAX_TABLE_ROWS} rows; use --limit, or --output json|csv for all of them")


def iso_time(value: Any) -> Any:
    """Epoch seconds as ``2026-12-01T10:00:00Z``; anything else (NULL, text, a number that is no record
    time) as it is."""
    from datetime import datetime, timezone

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 10**8 <= value < 10**11:
        return value
    return datetime.fromtimestamp(int(value), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _empty_json_as_brackets(chunks: "Iterator[bytes]") -> "Iterator[bytes]":
    """DuckDB writes an empty JSON array over three lines: ``[]`` instead, as --output json prints elsewhere."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(b"".join(head.split())) > 2:
            yield head
            yield from chunks
            return
    yield b"[]\n" if b"".join(head.split()) in (b"", b"[]") else head


def _times(request: QueryRequest, fmt: str) -> str:
    """--times, else ISO timestamps in tables and the raw epoch seconds in JSON/CSV."""
    return request.times or ("iso" if fmt == "table" else "epoch")


def _time_columns(sql: str) -> "frozenset[str]":
    from flowwatch.query.statement import time_columns

    return time_columns(sql)


def _row_count(count: int, request: QueryRequest) -> str:
    """"12 rows", and when the LIMIT (--limit, or the preset's own) was reached, how to see more."""
    from flowwatch.query import presets

    limit = request.limit or (presets.BY_NAME[request.preset].limit if request.preset else None)
    if limit is not None and count >= limit:
        return f"{plural(count, 'row')} (the limit: there may be more; raise --limit)"
    return plural(count, "row")


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _local_files(ctx: "Context | None", target: Target, request: QueryRequest, window: "TimeWindow | None",
                 cache: Any, out: "Output") -> list[Any]:
    from flowwatch.query import local_engine as local

    if request.source is not None:
        return local.discover(request.source, target.dt_layout)
    assert ctx is not None
    from flowwatch.steps.athena import source_folders

    layout = ctx.s3_layout()
    local.check_stack_bucket(ctx.aws.s3, ctx.bucket, ctx.account, ctx.stack.name)
    # every account and region of the bucket, as the Glue table's enums: one table, as on Athena
    sources = sorted({(layout.account, layout.region), *source_folders(ctx.aws.s3, layout, owner=ctx.account)})
    prefixes: list[str] = []
    for account, region in sources:
        of = layout.of_source(account, region)
        prefixes += window.partition_prefixes(of) if window else [of.base_prefix()]
    return local.fetch_s3(ctx.aws.s3, ctx.bucket, layout, prefixes, cache, out, owner=ctx.account)


def _dt_layout(region: str, *, hive: bool = False, per_hour: bool = False) -> "S3Layout":
    from flowwatch.s3layout import S3Layout

    return S3Layout(bucket="flowwatch", account="000000000000", region=region, hive=hive, per_hour=per_hour)


def _quiet_sqlglot() -> None:
    """sqlglot logs a warning when it falls back to a generic command (SHOW ...): not for users' eyes."""
    import logging

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
