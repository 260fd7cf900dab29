"""`flowwatch up | down | status`: the stack's life cycle over ``flowwatch.engine``.

The commands own what is about the terminal: ``down``'s confirmation prompt and the status table
or JSON; the engine returns data. With ``--local``, ``status`` adds the local inbox row.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from flowwatch.cli.app import App
from flowwatch.cli.unlock import lock_request, lock_timeout_option

if TYPE_CHECKING:
    from flowwatch.engine import StepStatus
    from flowwatch.model import Change, Context, StatusDetail


@click.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; make no mutating call.")
@click.option("--prune", is_flag=True,
              help="Also remove what is tagged for the stack but not in the config (duplicates, old names).")
@lock_timeout_option
@click.pass_obj
def up(app: App, dry_run: bool, prune: bool, lock_timeout: float | None) -> None:
    """Create or converge the stack (idempotent: a second run changes nothing)."""
    from flowwatch import engine

    ctx = app.context(dry_run=dry_run, lock=lock_request(app, lock_timeout))
    verb = "Planning" if dry_run else "Converging"
    ctx.out.heading(f"{verb} stack {ctx.stack.name!r} in {ctx.region}"
                    f"{' (local AWS)' if ctx.local else ''}{' - dry run, nothing will change' if dry_run else ''}")
    report = engine.up(ctx, prune=prune)
    link = dashboard_link(ctx)
    if link is not None:
        show_dashboard(ctx, link)
    if app.settings.output == "json":
        ctx.out.json({"command": "up", "stack": ctx.stack.name, "region": ctx.region, **report.as_dict(),
                      "dashboard": link})


@click.command()
@click.pass_obj
def status(app: App) -> None:
    """Every resource of the stack: found / missing / drifted, delivery, alarm and subscription state.

    Exit 0 when every resource is found and in its desired state, 1 on drift or a missing resource."""
    from flowwatch import engine

    ctx = app.context()
    rows = engine.status(ctx)
    if ctx.local_api is not None:
        rows.append(inbox_row(ctx))
    render_status(ctx, rows, app.settings.output)
    sys.exit(status_code(rows))


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-data", is_flag=True, help="Keep the S3 bucket (flow-log data) and the log group.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; make no mutating call.")
@lock_timeout_option
@click.pass_obj
def down(app: App, yes: bool, keep_data: bool, dry_run: bool, lock_timeout: float | None) -> None:
    """Remove everything the stack owns, in reverse order (a second run is a no-op)."""
    from flowwatch import engine

    ctx = app.context(dry_run=dry_run, keep_data=keep_data, yes=yes, lock=lock_request(app, lock_timeout))
    ctx.out.heading(f"Removing stack {ctx.stack.name!r} from {ctx.region}{' (dry run)' if dry_run else ''}")
    report = engine.down(ctx, confirm=lambda changes: yes or confirm_down(ctx, changes))
    if report.cancelled:
        ctx.out.info("down cancelled: nothing was removed")
    if not dry_run and not report.cancelled:
        forget_query_cache(ctx, report.changes)
    if app.settings.output == "json":
        ctx.out.json({"command": "down", "stack": ctx.stack.name, "region": ctx.region, **report.as_dict(),
                     "cancelled": report.cancelled})


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
    from flowwatch.console import safe
    from flowwatch.errors import UsageError

    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("down: refusing to delete without confirmation; pass --yes")
    ctx.out.heading(f"flowwatch down will remove {len(changes)} resource{'' if len(changes) == 1 else 's'} of stack {ctx.stack.name!r}:")
    for change in changes:
        ctx.out.info(f"  - {change.step:<14} {safe(change.target)}")
    return click.confirm("Proceed?", default=False, err=True)


def dashboard_link(ctx: "Context") -> dict[str, str | None] | None:
    """The stack's dashboard, once it exists: ``{name, url, command}``. On AWS ``url`` is its console address;
    the local AWS has no console, so ``command`` is the AWS CLI call that reads it there instead."""
    name, url = ctx.stack.dashboard, ctx.stack.dashboard_url
    if not isinstance(name, str):
        return None
    if ctx.local:
        return {"name": name, "url": None,
                "command": f"aws --endpoint-url {ctx.aws.endpoint_url} --region {ctx.region} cloudwatch "
                           f"get-dashboard --dashboard-name {name}"}
    return {"name": name, "url": url if isinstance(url, str) else None, "command": None}


def show_dashboard(ctx: "Context", link: dict[str, str | None]) -> None:
    from flowwatch.console import safe

    if link["url"]:
        ctx.out.info(f"Dashboard: {safe(link['url'])}")
    else:
        ctx.out.info(f"Dashboard: {safe(link['name'])} (the local AWS has no console; read it with "
                     f"`{safe(link['command'])}`)")


def inbox_row(ctx: "Context") -> "StepStatus":
    """On the local AWS: the notifications AWS would have e-mailed for this stack's topic."""
    from flowwatch.console import plural
    from flowwatch.engine import StepStatus

    assert ctx.local_api is not None
    topic = ctx.stack.topic_arn
    messages = [m for m in ctx.local_api.inbox() if m.get("topic_arn") == topic]
    last = messages[-1] if messages else None
    return StepStatus("inbox (local)", "found" if last else "no data",
                      plural(len(messages), "notification") + (f", last: {last.get('subject')}" if last else ""),
                      extra={"notifications": len(messages)})


#: the states of a managed resource that make ``status`` exit 1 (drift or missing)
NOT_CONVERGED = ("missing", "drifted", "partial")
#: the states of a resource tagged for the stack that the config does not account for (also exit 1)
EXTRA_STATES = ("orphaned", "duplicate of ")


def status_code(rows: Sequence["StepStatus"]) -> int:
    """``status``'s exit code: 0 when every resource is found and in its desired state, 1 on drift or a missing
    one. ``not managed`` rows (an adopted VPC's parts) and informational rows (metrics, inbox) don't count."""
    return 1 if any(_not_converged(r) for r in rows) else 0


def _not_converged(row: "StepStatus") -> bool:
    """Drift, a missing resource, or an extra (orphan, duplicate) of a row that counts."""
    return _counts(row) and (row.state in NOT_CONVERGED or row.state.startswith(EXTRA_STATES))


def _counts(row: "StepStatus") -> bool:
    return row.facts is not None          # a step's row; the metric and inbox rows carry no facts


def status_json(ctx: "Context", rows: Sequence["StepStatus"]) -> dict[str, Any]:
    """``status --output json``: the same keys on every row (README.md, "status --output json")."""
    def row(r: "StepStatus") -> dict[str, Any]:
        facts = r.facts
        return {
            "step": r.step, "kind": "resource" if _counts(r) else "info", "state": r.state, "found": r.found,
            "ids": dict(facts.ids) if facts else {}, "detail": r.detail,
            "deliveries": [{"flow_log_id": d.flow_log_id, "destination_type": d.destination_type,
                            "status": d.status, "error": d.error} for d in (facts.deliveries if facts else ())],
            "alarms": [{"name": a.name, "state": a.state} for a in (facts.alarms if facts else ())],
            "subscriptions": None if facts is None or facts.subscriptions is None else [
                {"protocol": s.protocol, "endpoint": s.endpoint, "confirmed": s.confirmed}
                for s in facts.subscriptions],
            "pending_subscriptions": facts.pending_subscriptions if facts else 0,
            "datapoints": r.extra.get("datapoints"), "notifications": r.extra.get("notifications"),
        }

    drift = [r.step for r in rows if _not_converged(r)]
    return {"stack": ctx.stack.name, "region": ctx.region, "ok": not drift, "not_converged": drift,
            "steps": [row(r) for r in rows], "dashboard": dashboard_link(ctx)}


def render_status(ctx: "Context", rows: Sequence["StepStatus"], fmt: str) -> None:
    if fmt == "json":
        ctx.out.json(status_json(ctx, rows))
        return
    if fmt == "csv":
        rows_csv: list[tuple[Any, ...]] = [(r.step, r.state, r.found, " ".join(f"{k}={v}" for k, v in (r.facts.ids if r.facts else {}).items()),
                  r.detail or facts_text(r.facts) or None) for r in rows]
        ctx.out.data(["step", "state", "found", "ids", "detail"], rows_csv, fmt)
        return
    table = [(r.step, r.state, r.found or "-", r.detail or facts_text(r.facts)) for r in rows]
    ctx.out.data(["step", "state", "found", "detail"], table, fmt,
                 title=f"flowwatch stack {ctx.stack.name} ({ctx.region})")
    link = dashboard_link(ctx)
    if link is not None:
        show_dashboard(ctx, link)


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
