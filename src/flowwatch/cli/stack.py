"""`flowwatch up | down | status`: the stack's life cycle over ``flowwatch.engine``.

The commands own what is about the terminal: ``down``'s confirmation prompt and the status table
or JSON; the engine returns data. With ``--local``, ``status`` adds the local inbox row.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from flowwatch.cli.app import App

if TYPE_CHECKING:
    from flowwatch.engine import StepStatus
    from flowwatch.model import Change, Context, StatusDetail


@click.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; make no mutating call.")
@click.pass_obj
def up(app: App, dry_run: bool) -> None:
    """Create or converge the stack (idempotent: a second run changes nothing)."""
    from flowwatch import engine

    ctx = app.context(dry_run=dry_run)
    verb = "Planning" if dry_run else "Converging"
    ctx.out.heading(f"{verb} stack {ctx.stack.name!r} in {ctx.region}"
                    f"{' (local AWS)' if ctx.local else ''}{' - dry run, nothing will change' if dry_run else ''}")
    engine.up(ctx)


@click.command()
@click.pass_obj
def status(app: App) -> None:
    """Every resource of the stack: found / missing / drifted, delivery, alarm and subscription state."""
    from flowwatch import engine

    ctx = app.context()
    rows = engine.status(ctx)
    if ctx.local_api is not None:
        rows.append(inbox_row(ctx))
    render_status(ctx, rows, app.settings.output)


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-data", is_flag=True, help="Keep the S3 bucket (flow-log data) and the log group.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; make no mutating call.")
@click.pass_obj
def down(app: App, yes: bool, keep_data: bool, dry_run: bool) -> None:
    """Remove everything the stack owns, in reverse order (a second run is a no-op)."""
    from flowwatch import engine

    ctx = app.context(dry_run=dry_run, keep_data=keep_data, yes=yes)
    ctx.out.heading(f"Removing stack {ctx.stack.name!r} from {ctx.region}{' (dry run)' if dry_run else ''}")
    report = engine.down(ctx, confirm=lambda changes: yes or confirm_down(ctx, changes))
    if report.cancelled:
        ctx.out.info("down cancelled: nothing was removed")
    if not dry_run and not report.cancelled:
        forget_query_cache(ctx, report.changes)


def forget_query_cache(ctx: "Context", removed: Sequence["Change"]) -> None:
    """The local query engine's copies of a bucket this ``down`` deleted: nothing can refresh them now."""
    from flowwatch.query import human_bytes, local_engine

    cache = local_engine.FileCache(local_engine.cache_root())
    for change in removed:
        if change.step == "bucket" and change.action == "delete" and change.kind == "bucket":
            try:
                freed = cache.forget_bucket(str(change.params["name"]))
            except OSError as exc:   # the stack is gone all the same: say so, do not fail the run
                ctx.out.warn(f"could not remove the query cache of s3://{change.params['name']}: {exc}"
                             " (`flowwatch cache clear` removes it)")
                continue
            if freed:
                ctx.out.detail(f"removed the query cache of s3://{change.params['name']} ({human_bytes(freed)})")


def confirm_down(ctx: "Context", changes: Sequence["Change"]) -> bool:
    """List what ``down`` removes and ask; without a terminal (and without --yes) refuse: exit 2."""
    from flowwatch.errors import UsageError

    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("down: refusing to delete without confirmation; pass --yes")
    ctx.out.heading(f"flowwatch down will remove {len(changes)} resource{'' if len(changes) == 1 else 's'} of stack {ctx.stack.name!r}:")
    for change in changes:
        ctx.out.info(f"  - {change.step:<14} {change.target}")
    return click.confirm("Proceed?", default=False, err=True)


def inbox_row(ctx: "Context") -> "StepStatus":
    """On the local AWS: the notifications AWS would have e-mailed for this stack's topic."""
    from flowwatch.engine import StepStatus

    assert ctx.local_api is not None
    topic = ctx.stack.topic_arn
    messages = [m for m in ctx.local_api.inbox() if m.get("topic_arn") == topic]
    last = messages[-1] if messages else None
    return StepStatus("inbox (local)", "found" if last else "no data",
                      f"{len(messages)} notification(s)" + (f", last: {last.get('subject')}" if last else ""),
                      extra={"notifications": len(messages)})


def render_status(ctx: "Context", rows: Sequence["StepStatus"], fmt: str) -> None:
    if fmt == "json":
        ctx.out.json({"stack": ctx.stack.name, "region": ctx.region,
                      "steps": [{"step": r.step, "state": r.state, "found": r.found, "detail": r.detail, **r.extra}
                                for r in rows]})
        return
    table = [(r.step, r.state, r.found or "-", r.detail or facts_text(r.facts)) for r in rows]
    ctx.out.data(["step", "state", "found", "detail"], table, fmt,
                 title=f"flowwatch stack {ctx.stack.name} ({ctx.region})")


def facts_text(facts: "StatusDetail | None") -> str:
    """A step's typed status facts as one table cell: delivery status, alarm states, subscriptions."""
    if facts is None:
        return ""
    parts = [f"{d.destination_type} delivery {d.status}" + (f" ({d.error})" if d.error else "")
             for d in facts.deliveries]
    parts += [f"{a.name}: {a.state}" for a in facts.alarms]
    parts += [f"{s.endpoint}: {'confirmed' if s.confirmed else 'pending confirmation'}"
              for s in facts.subscriptions or ()]
    return "; ".join(parts)
