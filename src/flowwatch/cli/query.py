"""`flowwatch query`: the click group, one subcommand per preset plus `list` and `sql`.

Only click is imported here; the preset commands are built on demand from
``flowwatch.query.presets`` (a lazy group), and the engines (boto3, DuckDB, sqlglot) load inside
the commands. :func:`run_query` validates the whole request (no AWS) before it builds a Context;
``--source`` needs none.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from flowwatch.cli.app import App
from flowwatch.cli.options import FlowwatchGroup, with_global_options

_FIXED = ("list", "sql")


class _QueryGroup(FlowwatchGroup):
    """`list` and `sql` are ordinary commands; the presets are made from their definitions when asked for
    (so they complete in the shell and an unknown name gets a "did you mean")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from flowwatch.query.presets import PRESETS

        return ["list", *(p.name for p in PRESETS), "sql"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _FIXED:
            return super().get_command(ctx, cmd_name)
        from flowwatch.query.presets import BY_NAME

        preset = BY_NAME.get(cmd_name)
        return with_global_options(_preset_command(preset)) if preset else None


@click.group(cls=_QueryGroup)
def query() -> None:
    """Run a preset or your own Athena SQL over the stack's flow logs in S3.

    On AWS the query runs on Athena (cost: $5 per TB scanned); with --local, --engine local or
    --source it runs on DuckDB over the flow-log files themselves.
    """


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every query command takes."""
    decorators = [
        click.option("--since", metavar="DURATION", help="Only the last 90m, 1h, 2d, 1w ..."),
        click.option("--from", "from_", metavar="TIME", help="Window start, ISO-8601 (UTC unless an offset is given)."),
        click.option("--to", metavar="TIME", help="Window end, ISO-8601 (default: now)."),
        click.option("--limit", type=click.IntRange(min=1), help="At most N rows."),
        click.option("--engine", type=click.Choice(["athena", "local"]), default=None,
                     help="athena (default on AWS) or local: DuckDB over the S3 objects, cached "
                          "(default with --local or --source)."),
        click.option("--source", type=click.Path(exists=True, path_type=Path), default=None,
                     help="Flow-log files already on disk (an AWSLogs/... tree or a folder of .log.gz/.parquet): "
                          "local engine, no AWS call."),
        click.option("--parquet-cache", is_flag=True,
                     help="Local engine: keep a Parquet copy of each text file in the cache and read that "
                          "(first run slower, later runs much faster)."),
        click.option("--show-sql", is_flag=True, help="Print the SQL for the engine and run nothing."),
        click.option("--times", type=click.Choice(["iso", "epoch"]), default=None,
                     help="Record times (start, end, min(start) ...): iso (2026-12-01T10:00:00Z, UTC) or epoch "
                          "(seconds, as stored). Default: iso in tables, epoch in JSON and CSV."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _run(app: App, *, preset: str | None = None, sql: str | None = None, ip: str | None = None,
         **options: Any) -> None:
    """Run the query; bad input (window, address, size, a statement that is no query) is a click usage error:
    exit 2. A SQL error (it does not parse, or the engine fails it) is an engine error: exit 1."""
    from flowwatch.errors import UsageError
    from flowwatch.query import QueryRequest

    try:   # --output is a global option: before or after the command, or FLOWWATCH_OUTPUT
        run_query(app, QueryRequest(preset=preset, sql=sql, ip=ip, output=app.settings.output, **options))
    except UsageError as exc:
        raise click.UsageError(exc.message + (f" (hint: {exc.hint})" if exc.hint else "")) from None


def run_query(app: App, request: Any) -> None:
    """Validate everything, then (and only then) talk to AWS: run the query and print the rows."""
    from flowwatch.query import Target, choose_engine, execute, offline_target, prepare

    settings = app.settings
    engine = choose_engine(request, local=settings.local)
    if request.source is not None:
        target, config = offline_target(settings), None
    else:
        config = app.config()
        target = Target.of(config)
    prepared = prepare(target, request, engine)
    # only now an AWS session (and with --local, the local server)
    ctx = None if config is None else app.context(config=config)
    execute(ctx, target, request, prepared, app.out)


@query.command("list")
@click.pass_obj
def list_presets(app: App) -> None:
    """List the presets: what each shows, the parameters it takes."""
    from flowwatch.query.presets import PRESETS

    rows = [(p.name, p.description, " ".join(_usage(param) for param in p.params), p.limit) for p in PRESETS]
    app.out.data(["preset", "description", "parameters", "default_limit"], rows, app.settings.output)


def _usage(param: Any) -> str:
    if param.kind == "number":
        return f"{param.option} N (default {param.default})"
    if param.kind == "cidr":
        return f"{param.option} CIDR (default: the stack's VPC)"
    return "IP (argument or --ip)" if param.required else "--ip IP (optional)"


@query.command("sql")
@click.argument("statement", metavar="SQL")
@_options
@click.pass_obj
def sql_command(app: App, statement: str, **options: Any) -> None:
    """Run your own read-only Athena SQL query (SQL, or - to read it from stdin).

    Use the Glue columns (srcaddr, dstaddr, start, "end", action, log_status, ..., dt) and the
    table flow_logs: the stack's table as in the presets, whatever its Glue name (names.table,
    which works too). The time window restricts every reference to the table. The local engine runs the same text,
    transpiled to DuckDB, and names the columns as Athena does (count(*) is _col0). Only queries
    (SELECT, WITH) run, on either engine.
    """
    if statement == "-":
        from flowwatch.query.presets import MAX_SQL_BYTES

        statement = sys.stdin.read(MAX_SQL_BYTES + 1)  # more is refused anyway: never read it all
        if len(statement) > MAX_SQL_BYTES:
            raise click.UsageError(f"the SQL statement on stdin is larger than {MAX_SQL_BYTES:,} bytes; "
                                   f"at most {MAX_SQL_BYTES:,} (Athena's limit)")
    if not statement.strip():
        raise click.UsageError("the SQL statement is empty")
    _run(app, sql=statement, **options)


def _preset_command(preset: Any) -> click.Command:
    """`flowwatch query <preset>`: the common options, plus the address for presets that take one."""
    ip_param = next((p for p in preset.params if p.name == "ip"), None)

    others = [p for p in preset.params if p.name != "ip"]

    @click.pass_obj
    def command(app: App, ip: str | None = None, ip_arg: str | None = None, **options: Any) -> None:
        address = _address(preset.name, ip, ip_arg, required=bool(ip_param and ip_param.required))
        values = {p.name: options.pop(p.name, None) for p in others}
        given = tuple((name, str(v)) for name, v in values.items() if v is not None)
        _run(app, preset=preset.name, ip=address, params=given, **options)

    command = _options(command)
    for other in others:
        command = click.option(other.option, other.name, metavar="CIDR" if other.kind == "cidr" else "N",
                               type=click.IntRange(min=1) if other.kind == "number" else str,
                               help=other.help)(command)
    if ip_param is not None:
        command = click.option("--ip", metavar="IP", help=ip_param.help)(command)
        if ip_param.required:
            command = click.argument("ip_arg", metavar="[IP]", required=False)(command)
    return click.command(preset.name, help=preset.description, short_help=preset.summary)(command)


def _address(preset: str, option: str | None, argument: str | None, *, required: bool) -> str | None:
    """The IP of --ip or the IP argument (validated), one of them at most."""
    from flowwatch.errors import UsageError
    from flowwatch.query.presets import validate_ip

    if option is not None and argument is not None and option != argument:
        raise click.UsageError(f"give the address once: IP argument {argument} or --ip {option}")
    text = option or argument
    if text is None:
        if required:
            raise click.UsageError(f"{preset} needs an address: flowwatch query {preset} 10.0.0.5 (or --ip)")
        return None
    try:
        return validate_ip(text)
    except UsageError as exc:
        raise click.BadParameter(exc.message, param_hint="IP") from None
