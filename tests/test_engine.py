"""The engine's Plan: what a dry run shows is what `up` executes; after a step changed, only the steps after
it are planned again; the summary counts steps (with their changes), never mixed units; down plans once."""

from __future__ import annotations

import pytest

import io

from flowwatch import engine
from flowwatch.console import Output
from flowwatch.steps import STEP_NAMES

from tests.support.context import fresh, make_config, make_ctx

pytestmark = pytest.mark.slow   # whole up/down cycles on moto


def detecting():
    """A config in which every step has something to make on an empty account (the detections' steps too)."""
    return make_config(alerts={"detections": ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe",
                                              "egress-spike"]})


def signature(changes):
    return [(c.step, c.action, c.kind, c.reason) for c in changes]


def test_the_dry_run_plan_is_what_up_executes(session):
    planned = engine.up(make_ctx(session, dry_run=True)).plan
    assert [s.step for s in planned.steps] == list(STEP_NAMES) and planned.dry_run
    report = engine.up(make_ctx(session))
    assert signature(report.changes) == signature(planned.changes)
    assert signature(report.plan.changes) == signature(planned.changes)


def test_plan_up_is_read_only_and_keeps_what_it_read(session, calls):
    from tests.support.context import mutating

    ctx = make_ctx(session, detecting())
    plan = engine.plan_up(ctx)
    assert mutating(calls) == [] and plan.steps_changed == len(STEP_NAMES)
    assert plan.of("vpc").seen is None and [c.action for c in plan.of("vpc").changes] == ["create"]


def count_discovers(monkeypatch):
    from flowwatch import steps

    counts: dict[str, int] = {}
    for step in steps.ALL_STEPS:
        def spy(ctx, _step=step, _discover=type(step).discover):
            counts[_step.name] = counts.get(_step.name, 0) + 1
            return _discover(_step, ctx)
        monkeypatch.setattr(step, "discover", spy)
    return counts


def test_up_replans_only_the_steps_after_one_that_changed(ctx, session, monkeypatch):
    engine.up(ctx)
    counts = count_discovers(monkeypatch)
    rule = {"name": "ping-deny", "match": {"protocol": 1, "action": "REJECT"}, "metric": "Ping-Deny", "threshold": 5}
    report = engine.up(make_ctx(session, make_config(alerts={"rules": [rule]})))
    changes = signature(report.changes)
    assert changes[0] == ("alarm", "update", "", "Threshold 1.0 -> 5.0")
    assert [c[:3] for c in changes[1:]] == [("dashboard", "update", "dashboard")]    # its threshold line
    after = STEP_NAMES[STEP_NAMES.index("alarm") + 1:]
    assert counts == {name: 2 if name in after else 1 for name in STEP_NAMES}    # preflight, + after the change
    assert "cleanup" not in counts                                                # up never looks for it


def test_the_summary_counts_steps_and_their_changes(session):
    ctx = make_ctx(session, detecting())
    first = engine.up(ctx)
    text = ctx.out.err.file.getvalue().splitlines()[-1]
    assert text == f"Changed: {len(STEP_NAMES)} steps ({first.changed} changes)  No change: 0 steps  Errors: 0"
    assert first.steps_changed == len(STEP_NAMES) and first.unchanged == 0
    again = fresh(ctx)
    assert engine.up(again).changed == 0
    assert again.out.err.file.getvalue().splitlines()[-1] == (
        f"Changed: 0 steps (0 changes)  No change: {len(STEP_NAMES)} steps  Errors: 0")


def test_the_dry_run_summary_says_would(session):
    ctx = make_ctx(session, detecting(), dry_run=True)
    report = engine.up(ctx)
    assert ctx.out.err.file.getvalue().splitlines()[-1] == (
        f"Would change: {len(STEP_NAMES)} steps ({report.changed} changes)  No change: 0 steps  Errors: 0")


def test_singular_units():
    err = io.StringIO()
    Output(stderr=err, stdout=io.StringIO(), color=False).summary(1, 1, 1)
    assert err.getvalue().strip() == "Changed: 1 step (1 change)  No change: 1 step  Errors: 0"


def test_down_plans_once_and_executes_that_plan(ctx, monkeypatch):
    from flowwatch import steps

    engine.up(ctx)
    destroys: list[str] = []
    for step in steps.ALL_STEPS:
        def spy(have, options, _step=step, _plan=type(step).plan_destroy):
            destroys.append(_step.name)
            return _plan(_step, have, options)
        monkeypatch.setattr(step, "plan_destroy", spy)
    down_ctx = fresh(ctx)
    report = engine.down(down_ctx)
    assert sorted(destroys) == sorted(s.name for s in steps.ALL_STEPS)       # each step planned exactly once
    assert [s.step for s in report.plan.steps] == [s.name for s in reversed(steps.ALL_STEPS)]
    assert signature(report.changes) == signature(report.plan.changes)


def test_converge_one_step_reads_its_parents_only(ctx, calls):
    from tests.support.context import mutating

    engine.converge(ctx, "vpc", "subnet")
    calls.clear()
    report = engine.converge(ctx, "nacl")
    assert [(c.step, c.action) for c in report.changes] == [("nacl", "create")]
    assert mutating(calls) == [("ec2", "CreateTags"), ("ec2", "CreateNetworkAclEntry")]   # ownership tag first
    assert ctx.stack.subnet_id and ctx.stack.vpc_id


def test_a_pending_subscription_is_shown_as_a_warning_by_the_engine(session):
    ctx = make_ctx(session, make_config(alerts={"email": "ops@example.com"}))
    engine.up(ctx)
    sns = engine.status(fresh(ctx))
    (row,) = [r for r in sns if r.step == "sns"]
    assert row.facts is not None and row.facts.subscriptions
    text = ctx.out.err.file.getvalue()
    if not row.facts.subscriptions[0].confirmed:
        assert "warning: sns: ops@example.com must confirm the subscription" in text


def test_status_reports_typed_facts_and_plain_extra(ctx):
    engine.up(ctx)
    rows = {r.step: r for r in engine.status(fresh(ctx))}
    assert [d.destination_type for d in rows["flow_logs"].facts.deliveries] == ["cloud-watch-logs", "s3"]
    assert rows["flow_logs"].extra["s3"]["DeliverLogsStatus"] == rows["flow_logs"].facts.deliveries[1].status
    assert rows["cleanup"].state == "not managed"
