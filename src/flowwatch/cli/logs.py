"""`flowwatch logs tail`: the stack's flow-log records in CloudWatch Logs (``flowwatch.actions.logs``); `flowwatch logs
insights`: a Logs Insights preset or query over them (``flowwatch.insights.runner``)."""

from __future__ import annotations

import click

from flowwatch.cli.app import App


@click.group()
def logs() -> None:
    """Read the stack's flow-log records in CloudWatch Logs."""


@logs.command("tail")
@click.option("--since", default="10m", show_default=True, help="How far back: 30s, 10m, 2h, 1d.")
@click.option("--follow", "-f", is_flag=True, help="Keep reading new records.")
@click.option("--rejects", is_flag=True, help="Only REJECTed records.")
@click.option("--pattern", "pattern_text", help="A CloudWatch Logs filter pattern.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after N records.")
@click.pass_obj
def logs_tail(app: App, since: str, follow: bool, rejects: bool, pattern_text: str | None,
              limit: int | None) -> None:
    """Print flow-log records, parsed and coloured (REJECT stands out); --output json: one JSON object
    per record, --output csv: the record's fields."""
    from flowwatch.actions import logs as logs_action
    from flowwatch.timewindow import parse_duration

    if rejects and pattern_text:
        raise click.UsageError("--rejects and --pattern exclude each other")
    window = parse_duration(since, option="--since")            # bad input: exit 2, before any AWS call
    config = app.config()
    pattern_text, pattern = logs_action.pattern_for(config.record_format, rejects=rejects, pattern_text=pattern_text)
    logs_action.tail(app.context(config=config), since=since, window=window, follow=follow,
                     pattern_text=pattern_text, pattern=pattern, limit=limit, output=app.settings.output)


@logs.command("insights")
@click.argument("what", metavar='PRESET|"QUERY"|list|-')
@click.option("--since", metavar="DURATION", help="Only the last 90m, 1h, 2d, 1w ... (default: 1h).")
@click.option("--from", "from_", metavar="TIME", help="Window start, ISO-8601 (UTC unless an offset is given).")
@click.option("--to", metavar="TIME", help="Window end, ISO-8601 (default: now).")
@click.option("--limit", type=click.IntRange(1, 10_000), help="At most N rows (Logs Insights returns at most 10,000).")
@click.option("--log-group", metavar="NAME", help="Another log group than the stack's flow-log group.")
@click.option("--show-query", is_flag=True, help="Print the query and run nothing.")
@click.pass_obj
def logs_insights(app: App, what: str, since: str | None, from_: str | None, to: str | None, limit: int | None,
                  log_group: str | None, show_query: bool) -> None:
    """Run a CloudWatch Logs Insights preset or your own query over the flow-log group.

    PRESET: one of `flowwatch logs insights list` (rejected-sources, top-talkers, rejected-ports,
    by-interface, ...), written for the configured record format. QUERY: Logs Insights syntax in quotes,
    e.g. 'filter action = "REJECT" | stats count(*) by srcAddr', or - to read it from stdin.
    On AWS it costs what Logs Insights charges per GB scanned; with --local the local AWS runs it.
    """
    import sys

    from flowwatch.insights import runner

    if what == "list":
        from flowwatch.insights.presets import PRESETS

        rows = [(p.name, p.description, " ".join(p.needs), p.limit) for p in PRESETS]
        app.out.data(["preset", "description", "fields", "default_limit"], rows, app.settings.output)
        return
    if what == "-":
        what = sys.stdin.read(runner.MAX_QUERY_LENGTH + 1)
    request = runner.InsightsRequest(what=what, since=since, from_=from_, to=to, limit=limit, log_group=log_group)
    config = app.config()
    prepared = runner.prepare(request, config.record_format, local=app.settings.local)   # exit 2: no AWS call yet
    if show_query:
        app.out.text(prepared.query)
        return
    ctx = app.context(config=config)
    runner.show(ctx, runner.run(ctx, prepared, request), app.settings.output)
