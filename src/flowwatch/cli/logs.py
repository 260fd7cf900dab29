"""`flowwatch logs tail`: the stack's flow-log records in CloudWatch Logs (``flowwatch.actions.logs``)."""

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
