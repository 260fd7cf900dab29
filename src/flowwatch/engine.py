"""up / down / status: discover -> Plan -> show -> execute, step by step (DESIGN.md "The stack").

``up`` first plans every step read-only (preflight: an ownership, ambiguity or drift error stops it before
anything is created), then executes that Plan: what preflight read is reused until the first step that
changes something; every step after it is discovered and planned again, since it reads outputs of earlier
ones (vpc id, log group arn...). ``up --dry-run`` shows the Plan and stops. With ``ctx.lock`` set, ``up`` and
``down`` hold the stack's lock (``flowwatch.lock``) while they change something, and plan again once they
hold it (a plan with nothing to do takes no lock). ``down`` discovers every step
(so each knows its parents), plans the removal once, backwards, and executes it. ``converge`` runs one named
step (its parents only discovered), for simulate-reject. Nothing here prints directly: ``ctx.out`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from flowwatch.errors import FlowwatchError, aws_errors
from flowwatch.model import Change, Context, Plan, Stack, StatusDetail, StepPlan

if TYPE_CHECKING:
    from flowwatch.records import RecordFormat
    from flowwatch.steps.base import Step


@dataclass
class Report:
    """What a run did (or, in a dry run, would do): per step, and the changes themselves."""

    plan: Plan = field(default_factory=lambda: Plan(()))    # the executed plan (re-planned steps included)
    changes: list[Change] = field(default_factory=list)     # applied (dry run: planned)
    steps_changed: int = 0
    unchanged: int = 0                                      # steps with nothing to do
    errors: int = 0
    cancelled: bool = False                                 # ``down``: the user said no; nothing was done
    extras: list[dict[str, str]] = field(default_factory=list)   # tagged for the stack, not in the config

    @property
    def changed(self) -> int:
        """How many changes were applied (dry run: planned). 0: nothing to do."""
        return len(self.changes)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (``up``/``down`` ``--output json``; README.md "JSON output")."""
        def change(c: Change) -> dict[str, str]:
            return {"step": c.step, "action": c.action, "target": c.target, "reason": c.reason}

        return {"dry_run": self.plan.dry_run,
                "steps": [{"step": sp.step, "found": sp.found, "changes": [change(c) for c in sp.changes]}
                          for sp in self.plan.steps],
                "changes": [change(c) for c in self.changes],
                "counts": {"steps_changed": self.steps_changed, "steps_unchanged": self.unchanged,
                           "changes": self.changed, "errors": self.errors},
                "extras": list(self.extras)}


def _steps(only: Sequence[str] | None = None) -> list[Step[Any, Any]]:
    from flowwatch.steps import STEPS

    return [s for s in STEPS if only is None or s.name in only]


def _all_steps() -> list[Step[Any, Any]]:
    from flowwatch.steps import ALL_STEPS

    return list(ALL_STEPS)


@functools.lru_cache(maxsize=16)
def _preset_queries(fmt: "RecordFormat", database: str, table: str,
                    vpc_cidr: str | None = None) -> Mapping[str, tuple[str, str]]:
    """The presets' SQL is built with sqlglot (~50 ms): once per (format, database, table, VPC block)."""
    from flowwatch.query.presets import named_queries

    return named_queries(fmt, database, table, vpc_cidr)


def _supply(ctx: Context) -> Context:
    """What steps get from the engine rather than import: the query presets (query/ is above steps/), with the
    stack VPC's block as the vpc step found it (egress-by-destination), read when the athena step asks."""
    if ctx.named_queries is None:
        from flowwatch.steps.base import vpc_cidr

        ctx.named_queries = lambda fmt, database, table: _preset_queries(fmt, database, table, vpc_cidr(ctx))
    return ctx


def _show(ctx: Context, plan: Plan) -> None:
    for sp in plan.steps:
        ctx.out.step(sp.step, list(sp.changes), sp.found, dry_run=plan.dry_run)


def _summary(ctx: Context, report: Report, *, dry_run: bool = False) -> None:
    ctx.out.summary(report.steps_changed, report.changed, report.unchanged, report.errors, dry_run=dry_run)


def _planned(step: Step[Any, Any], ctx: Context) -> tuple[Any, list[Change]]:
    with aws_errors(step.name):
        have = step.discover(ctx)
        return have, step.plan(step.desired(ctx), have)


# ---------- up ----------
def plan_up(ctx: Context) -> Plan:
    """Plan every step against what exists, changing nothing (the preflight of ``up``, and ``up --dry-run``).

    A resource with the stack's name that is not the stack's (OwnershipError), several tagged copies
    (AmbiguousStateError) or drift that can't be fixed in place (DriftError) raise here, before ``up``
    makes its first change. Steps whose parents don't exist yet see them as PENDING. Each StepPlan keeps
    what was discovered (``seen``): until ``up`` applies something, that is still what exists.
    """
    _supply(ctx)
    probe = replace(ctx, stack=Stack(ctx.stack.name, account=ctx.stack.account))
    steps: list[StepPlan] = []
    for step in _steps():
        have, changes = _planned(step, probe)
        steps.append(StepPlan(step.name, tuple(changes), None if changes else step.found(have), have))
        step.publish(probe.stack, have)
        if step.name == "subnet" and any(c.action == "create" for c in changes):
            from flowwatch.steps.subnet import check_zone

            with aws_errors(step.name):
                check_zone(probe)        # a zone the region lacks: exit 2 here, not at CreateSubnet
    ctx.stack.account = probe.stack.account
    return Plan(tuple(steps), dry_run=ctx.dry_run)


def up(ctx: Context, only: Sequence[str] | None = None, *, prune: bool = False) -> Report:
    """Converge the stack: ``plan_up``, then (unless a dry run) ``execute`` that plan.

    Resources tagged for the stack that the config does not account for (duplicates, orphans under old names)
    are reported; ``prune`` removes them afterwards (a dry run shows their removal).
    ``only``: converge just those steps (see ``converge``)."""
    if only is not None:
        return converge(ctx, *only)
    plan = plan_up(ctx)
    extras = _find_extras(ctx, plan, prune=prune)
    if ctx.dry_run:
        _show(ctx, plan)
        report = Report(plan, plan.changes, plan.steps_changed, plan.steps_unchanged)
        _extras(ctx, extras, report, prune=prune)
        _summary(ctx, report, dry_run=True)
        return report
    if ctx.lock is None or not (plan or (prune and extras)):
        return _execute_up(ctx, plan, extras, prune=prune)
    from flowwatch.lock import held

    with held(ctx, ctx.lock):     # planned again under the lock: what a writer before us made counts
        plan = plan_up(ctx)
        return _execute_up(ctx, plan, _find_extras(ctx, plan, prune=prune) if prune else extras, prune=prune)


def _find_extras(ctx: Context, plan: Plan, *, prune: bool) -> list[Any]:
    """What is tagged for the stack but not accounted for by ``plan`` (see flowwatch.inventory)."""
    from flowwatch import inventory

    probe = replace(ctx, stack=Stack(ctx.stack.name, account=ctx.stack.account))
    for sp in plan.steps:           # what the plan saw, so the inventory knows the parents (vpc id...)
        _step(sp.step).publish(probe.stack, sp.seen)
    with aws_errors("inventory"):
        return list(inventory.find(probe, {sp.step: sp.seen for sp in plan.steps}, strict=prune))


def _execute_up(ctx: Context, plan: Plan, extras: Sequence[Any], *, prune: bool) -> Report:
    report = execute(ctx, plan)
    _extras(ctx, extras, report, prune=prune)
    if prune and extras:
        _summary(ctx, report)
    return report


def _step(name: str) -> Step[Any, Any]:
    return next(s for s in _all_steps() if s.name == name)


def _extras(ctx: Context, extras: Sequence[Any], report: Report, *, prune: bool) -> None:
    """Report the extras (``up``); with ``prune``, remove them in the steps' order (dry run: show it)."""
    report.extras = [e.as_dict() for e in extras]
    for extra in extras:
        if not prune:
            ctx.out.warn(f"{extra.step}: {extra.kind} {extra.id} is tagged for stack {ctx.stack.name!r}, "
                         f"{extra.state}; `flowwatch up --prune` removes it")
        elif ctx.dry_run:
            ctx.out.step(extra.step, list(extra.changes), None, dry_run=True)
            report.changes.extend(extra.changes)
        else:
            apply_changes(ctx, _step(extra.step), extra.changes, None, report)
        if prune:
            report.steps_changed += 1


def execute(ctx: Context, plan: Plan) -> Report:
    """Apply ``plan`` (from ``plan_up``) step by step. Its reads are reused until the first step that changes
    something; each step after that is discovered and planned again, on the outputs just published."""
    _supply(ctx)
    report = Report()
    executed: list[StepPlan] = []
    stale = False                               # a change was applied: later plans may be out of date
    for step, planned in zip(_steps(), plan.steps):
        if stale:
            have, changes = _planned(step, ctx)
        else:
            have, changes = planned.seen, list(planned.changes)
        if changes:
            have = apply_changes(ctx, step, changes, have, report)
            report.steps_changed += 1
            stale = True
        else:
            ctx.out.step(step.name, [], step.found(have))
            report.unchanged += 1
        executed.append(StepPlan(step.name, tuple(changes), None if changes else step.found(have), have))
        step.publish(ctx.stack, have)
    report.plan = Plan(tuple(executed))
    _summary(ctx, report)
    return report


def converge(ctx: Context, *names: str) -> Report:
    """Converge only the named steps (``converge(ctx, "nacl")``): every step before the last of them is
    discovered, read only, for the outputs it publishes (vpc id, subnet id...); the named ones are planned
    and applied (shown only, in a dry run)."""
    from flowwatch.steps import STEP_NAMES

    unknown = [n for n in names if n not in STEP_NAMES]
    if unknown or not names:
        raise ValueError(f"converge: unknown step(s) {unknown or names}; steps: {', '.join(STEP_NAMES)}")
    _supply(ctx)
    steps = _steps()
    last = max(i for i, s in enumerate(steps) if s.name in names)
    report = Report()
    executed: list[StepPlan] = []
    for step in steps[:last + 1]:
        if step.name not in names:
            with aws_errors(step.name):
                step.publish(ctx.stack, step.discover(ctx))
            continue
        have, changes = _planned(step, ctx)
        if not changes:
            ctx.out.step(step.name, [], step.found(have))
            report.unchanged += 1
        elif ctx.dry_run:
            ctx.out.step(step.name, changes, None, dry_run=True)
            report.changes.extend(changes)
            report.steps_changed += 1
        else:
            have = apply_changes(ctx, step, changes, have, report)
            report.steps_changed += 1
        executed.append(StepPlan(step.name, tuple(changes), None, have))
        step.publish(ctx.stack, have)
    report.plan = Plan(tuple(executed), dry_run=ctx.dry_run)
    _summary(ctx, report, dry_run=ctx.dry_run)
    return report


def apply_changes(ctx: Context, step: Step[Any, Any], changes: Sequence[Change], have: Any, report: Report) -> Any:
    """Apply one step's changes in order, each on the result of the one before, each shown as it lands; the
    first failure is shown and raised. Then the step's notes (facts the user must act on) are shown."""
    for change in changes:
        try:
            with aws_errors(step.name), ctx.out.working(f"{step.name}: {change.action} {change.target}"):
                have = step.apply(ctx, change.after(have))
        except FlowwatchError as exc:
            report.errors += 1
            ctx.out.step(step.name, [], None, failed=exc.message)
            _summary(ctx, report)
            raise
        ctx.out.step(step.name, [change], None)
        report.changes.append(change)
    for note in step.status(have).notes:
        ctx.out.warn(f"{step.name}: {note}")
    return have


# ---------- down ----------
def plan_down(ctx: Context) -> Plan:
    """Discover every step in order (each publishes what later ones read), then plan the removal backwards.
    Read only; a refusal (a managed policy someone attached to the role...) raises here, before any change."""
    _supply(ctx)                 # the presets: a named query in the workgroup that is none of them is refused
    steps = _all_steps()
    seen: dict[str, Any] = {}
    for step in steps:
        with aws_errors(step.name):
            have = step.discover(ctx)
        step.publish(ctx.stack, have)
        seen[step.name] = have
    options = ctx.destroy_options
    from flowwatch import inventory

    with aws_errors("inventory"):
        extras = inventory.find(ctx, seen, options)      # duplicates and orphans: removed too, in step order
    planned = []
    for step in reversed(steps):
        for extra in extras:
            if extra.step == step.name:
                planned.append(StepPlan(step.name, extra.changes, None, None))
        with aws_errors(step.name):
            changes = step.plan_destroy(seen[step.name], options)
        planned.append(StepPlan(step.name, tuple(changes), None, seen[step.name]))
    return Plan(tuple(planned), dry_run=ctx.dry_run)


def down(ctx: Context, confirm: Callable[[Sequence[Change]], bool] | None = None) -> Report:
    """Remove everything the stack owns, backwards. ``confirm(changes) -> bool`` may stop it first: then nothing
    is removed and the Report says ``cancelled``."""
    plan = plan_down(ctx)
    _show_kept(ctx, plan)
    if not plan:
        return _nothing_to_remove(ctx, plan, "found")
    if ctx.dry_run:
        changed = Plan(tuple(sp for sp in plan.steps if sp.changes), dry_run=True)
        _show(ctx, changed)
        report = Report(plan, plan.changes, plan.steps_changed, plan.steps_unchanged)
        _summary(ctx, report, dry_run=True)
        return report
    if confirm is not None and not confirm(plan.changes):
        return Report(plan, unchanged=len(plan.steps), cancelled=True)     # a choice, not an error: the cli says it
    if ctx.lock is None:
        return execute_down(ctx, plan)
    from flowwatch.lock import held

    with held(ctx, ctx.lock):
        confirmed = {_key(c) for c in plan.changes}
        ctx.stack = Stack(ctx.stack.name, account=ctx.stack.account)
        plan = plan_down(ctx)                 # planned again under the lock: a writer before us may have changed it
        if not plan:
            return _nothing_to_remove(ctx, plan, "is left")
        if confirm is not None and not {_key(c) for c in plan.changes} <= confirmed and not confirm(plan.changes):
            return Report(plan, unchanged=len(plan.steps), cancelled=True)
        return execute_down(ctx, plan)


def _nothing_to_remove(ctx: Context, plan: Plan, verb: str) -> Report:
    ctx.out.info(f"Nothing to remove: no resource of stack {ctx.stack.name!r} {verb} in {ctx.region}.")
    report = Report(plan, unchanged=len(plan.steps))
    _summary(ctx, report, dry_run=ctx.dry_run)
    return report


def _key(change: Change) -> tuple[str, str, str]:
    return change.step, change.action, change.target


def _show_kept(ctx: Context, plan: Plan) -> None:
    """What ``down`` leaves in place because it is not the stack's (an identical NACL rule someone else made)."""
    steps = {s.name: s for s in _all_steps()}
    for sp in plan.steps:
        for kept in steps[sp.step].status(sp.seen).kept if sp.step in steps else ():
            ctx.out.info(f"{sp.step}: {kept}")


def execute_down(ctx: Context, plan: Plan) -> Report:
    """Apply a plan from ``plan_down`` as it was made: nothing is planned again."""
    steps = {s.name: s for s in _all_steps()}
    report = Report(plan)
    for sp in plan.steps:
        if not sp.changes:
            report.unchanged += 1
            continue
        apply_changes(ctx, steps[sp.step], sp.changes, sp.seen, report)
        report.steps_changed += 1
    _summary(ctx, report)
    return report


# ---------- status ----------
@dataclass(frozen=True)
class StepStatus:
    step: str
    state: str            # found | missing | drifted | partial | not managed
    found: str | None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)     # ``facts`` as plain data (JSON output)
    facts: StatusDetail | None = None                       # what the step reports beyond its state, typed


def extra_of(facts: StatusDetail) -> dict[str, Any]:
    """A step's StatusDetail as the plain data of ``status --output json``."""
    extra: dict[str, Any] = {d.destination_type: {"id": d.flow_log_id, "DeliverLogsStatus": d.status,
                                                  "error": d.error} for d in facts.deliveries}
    extra.update({a.name: {"state": a.state} for a in facts.alarms})
    if facts.subscriptions is not None:
        extra["subscriptions"] = [{"protocol": s.protocol, "endpoint": s.endpoint,
                                   "state": "confirmed" if s.confirmed else "pending confirmation"}
                                  for s in facts.subscriptions]
        extra["pending"] = facts.pending_subscriptions
    return extra


def status(ctx: Context) -> list[StepStatus]:
    _supply(ctx)
    rows: list[StepStatus] = []
    seen: dict[str, Any] = {}
    for step in _all_steps():
        with aws_errors(step.name):
            have = step.discover(ctx)
            try:
                changes = step.plan(step.desired(ctx), have)
                problem = None
            except FlowwatchError as exc:      # drift or ownership: report, don't stop
                changes, problem = [], exc.message
        step.publish(ctx.stack, have)
        facts = step.status(have)
        if problem:
            state, detail = "drifted", problem
        elif not changes:
            state, detail = ("found" if have is not None else "not managed"), None
        elif all(c.action == "create" for c in changes) and (have is None or not step.found(have)):
            state, detail = "missing", "; ".join(f"{c.target}" for c in changes)
        else:
            state, detail = "drifted", "; ".join(f"{c.action} {c.target}: {c.reason}" for c in changes)
        rows.append(StepStatus(step.name, state, step.found(have), detail, extra_of(facts), facts))
        seen[step.name] = have
    from flowwatch import inventory

    with aws_errors("inventory"):
        for extra in inventory.find(ctx, seen, strict=False):
            rows.append(StepStatus(extra.step, extra.state, f"{extra.kind} {extra.id}", extra.refused,
                                   {"extra": extra.as_dict()}, StatusDetail(ids={extra.kind: extra.id})))
    rows.extend(_alert_metrics(ctx))
    return rows


def _alert_metrics(ctx: Context) -> list[StepStatus]:
    """The last datapoints of each alert metric (Sum per period over the last hour): threshold and anomaly
    rules (an anomaly rule's band is its alarm's to judge: the row names its width, the datapoints are the
    metric's own, as GetMetricStatistics gives them). A contributors rule has no metric of its own (its alarm
    reads INSIGHT_RULE_METRIC of its Contributor Insights rule), so no row."""
    from datetime import datetime, timedelta, timezone

    rows = []
    end = datetime.now(timezone.utc)
    for rule in ctx.config.alerts.rules:
        if rule.kind == "contributors":
            continue
        with aws_errors("metric"):
            points = ctx.aws.cloudwatch.get_metric_statistics(
                Namespace=rule.namespace, MetricName=rule.metric, StartTime=end - timedelta(hours=1), EndTime=end,
                Period=rule.period, Statistics=["Sum"]).get("Datapoints", [])
        points.sort(key=lambda p: p["Timestamp"])
        last = [{"time": p["Timestamp"].isoformat(), "sum": p["Sum"]} for p in points[-5:]]
        text = ", ".join(f"{p['Timestamp']:%H:%M} {p['Sum']:g}" for p in points[-5:]) or "no datapoints in the last hour"
        if rule.kind == "anomaly":
            text += f" (alarm outside the anomaly band of width {rule.band:g})"
        rows.append(StepStatus(f"metric {rule.metric}", "found" if points else "no data", text,
                               extra={"datapoints": last}))
    return rows
