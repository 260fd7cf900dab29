"""up / down / status: discover -> plan -> show -> apply, step by step (DESIGN.md "The stack").

``up`` runs the steps in order, applying only the difference; ``--dry-run`` stops before ``apply``.
``down`` discovers everything first (so each step knows its parents), then runs ``plan_destroy``
backwards. Nothing here prints directly: ``ctx.out`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flowwatch.errors import FlowwatchError, UsageError, aws_errors
from flowwatch.model import Change, Context
from flowwatch.settings import Settings


@dataclass
class Report:
    changed: int = 0
    unchanged: int = 0
    errors: int = 0
    changes: list[Change] = field(default_factory=list)

    def add(self, changes: Sequence[Change]) -> None:
        if changes:
            self.changed += len(changes)
            self.changes.extend(changes)
        else:
            self.unchanged += 1


def _steps(only: Sequence[str] | None = None) -> list[Any]:
    from flowwatch.steps import STEPS

    return [s for s in STEPS if only is None or s.name in only]


def discover_all(ctx: Context, steps: Sequence[Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for step in steps:
        with aws_errors(step.name):
            have = step.discover(ctx)
        step.publish(ctx.stack, have)
        seen[step.name] = have
    return seen


def preflight(ctx: Context) -> dict[str, Any]:
    """Plan every step against what exists, changing nothing, before ``up`` makes its first change.

    A resource with the stack's name that is not the stack's (OwnershipError), several tagged copies
    (AmbiguousStateError) or drift that can't be fixed in place (DriftError) then stop ``up`` with
    nothing created, instead of half-way through. Steps see their parents as PENDING, as in a dry run.

    Returns what was discovered for the steps up to the first one that has changes: until ``up``
    applies something, that is still what exists, so ``up`` reuses it instead of reading it twice.
    """
    from dataclasses import replace

    from flowwatch.model import Stack

    probe = replace(ctx, stack=Stack(ctx.stack.name, account=ctx.stack.account))
    still_valid: dict[str, Any] = {}
    changed = False
    for step in _steps():
        with aws_errors(step.name):
            have = step.discover(probe)
            changes = step.plan(step.desired(probe), have)
        if not changed:
            still_valid[step.name] = have
        changed = changed or bool(changes)
        step.publish(probe.stack, have)
    ctx.stack.account = probe.stack.account
    return still_valid


def up(ctx: Context, only: Sequence[str] | None = None) -> Report:
    """Converge the stack. With ``only``, earlier steps are still discovered (read) for their outputs."""
    report = Report()
    steps = _steps()
    known = preflight(ctx) if only is None and not ctx.dry_run else {}
    last = max(i for i, s in enumerate(steps) if only is None or s.name in only)
    for step in steps[:last + 1]:
        with aws_errors(step.name):
            # what preflight read is still true until the first change is applied
            have = known[step.name] if step.name in known and report.changed == 0 else step.discover(ctx)
            if only is not None and step.name not in only:
                step.publish(ctx.stack, have)
                continue
            changes = step.plan(step.desired(ctx), have)
        if not changes:
            ctx.out.step(step.name, [], step.found(have))
        elif ctx.dry_run:
            ctx.out.step(step.name, changes, None, dry_run=True)
        else:
            have = apply_changes(ctx, step, changes, have, report)
        if not changes:
            report.unchanged += 1
        elif ctx.dry_run:
            report.add(changes)
        step.publish(ctx.stack, have)
    ctx.out.summary(report.changed, report.unchanged, report.errors, dry_run=ctx.dry_run)
    return report


def apply_changes(ctx: Context, step: Any, changes: Sequence[Change], have: Any, report: Report) -> Any:
    """Apply one step's changes in order, each shown as it lands; the first failure is shown and raised."""
    for change in changes:
        try:
            with aws_errors(step.name), ctx.out.working(f"{step.name}: {change.action} {change.target}"):
                have = step.apply(ctx, change, have)
        except FlowwatchError as exc:
            report.errors += 1
            ctx.out.step(step.name, [], None, failed=exc.message)
            ctx.out.summary(report.changed, report.unchanged, report.errors)
            raise
        ctx.out.step(step.name, [change], None)
        report.changed += 1
        report.changes.append(change)
    return have


def plan_down(ctx: Context) -> tuple[list[Any], dict[str, Any], list[Change]]:
    steps = _steps()
    seen = discover_all(ctx, steps)
    planned: list[Change] = []
    for step in reversed(steps):
        planned += step.plan_destroy(seen[step.name], ctx)
    return steps, seen, planned


def down(ctx: Context, confirm: Any = None) -> Report:
    """Remove everything the stack owns, backwards. ``confirm(changes) -> bool`` may stop it first."""
    report = Report()
    steps, seen, planned = plan_down(ctx)
    if not planned:
        ctx.out.info(f"Nothing to remove: no resource of stack {ctx.stack.name!r} found in {ctx.region}.")
        ctx.out.summary(0, len(steps), dry_run=ctx.dry_run)
        return report
    if ctx.dry_run:
        for step in reversed(steps):
            ctx.out.step(step.name, [c for c in planned if c.step == step.name], None, dry_run=True)
        report.add(planned)
        ctx.out.summary(report.changed, 0, dry_run=True)
        return report
    if confirm is not None and not confirm(planned):
        raise FlowwatchError("down: cancelled, nothing was removed")
    for step in reversed(steps):
        changes = step.plan_destroy(seen[step.name], ctx)
        have = seen[step.name]
        if not changes:
            report.unchanged += 1
            continue
        seen[step.name] = apply_changes(ctx, step, changes, have, report)
    ctx.out.summary(report.changed, report.unchanged, report.errors)
    return report


@dataclass(frozen=True)
class StepStatus:
    step: str
    state: str            # found | missing | drifted | partial | not managed
    found: str | None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def status(ctx: Context) -> list[StepStatus]:
    rows: list[StepStatus] = []
    for step in _steps():
        with aws_errors(step.name):
            have = step.discover(ctx)
            try:
                changes = step.plan(step.desired(ctx), have)
                problem = None
            except FlowwatchError as exc:      # drift or ownership: report, don't stop
                changes, problem = [], exc.message
        step.publish(ctx.stack, have)
        extra = step.status(ctx, have) if hasattr(step, "status") else {}
        if problem:
            state, detail = "drifted", problem
        elif not changes:
            state, detail = ("found" if have is not None else "not managed"), None
        elif all(c.action == "create" for c in changes) and (have is None or not step.found(have)):
            state, detail = "missing", "; ".join(f"{c.target}" for c in changes)
        else:
            state, detail = "drifted", "; ".join(f"{c.action} {c.target}: {c.reason}" for c in changes)
        rows.append(StepStatus(step.name, state, step.found(have), detail, extra))
    rows.extend(_alert_metrics(ctx))
    return rows


def _alert_metrics(ctx: Context) -> list[StepStatus]:
    """The last datapoints of each alert metric (Sum per period over the last hour)."""
    from datetime import datetime, timedelta, timezone

    rows = []
    end = datetime.now(timezone.utc)
    for rule in ctx.config.alerts.rules:
        with aws_errors("metric"):
            points = ctx.aws.cloudwatch.get_metric_statistics(
                Namespace=rule.namespace, MetricName=rule.metric, StartTime=end - timedelta(hours=1), EndTime=end,
                Period=rule.period, Statistics=["Sum"]).get("Datapoints", [])
        points.sort(key=lambda p: p["Timestamp"])
        last = [{"time": p["Timestamp"].isoformat(), "sum": p["Sum"]} for p in points[-5:]]
        text = ", ".join(f"{p['Timestamp']:%H:%M} {p['Sum']:g}" for p in points[-5:]) or "no datapoints in the last hour"
        rows.append(StepStatus(f"metric {rule.metric}", "found" if points else "no data", text,
                               extra={"datapoints": last}))
    return rows
