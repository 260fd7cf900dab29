"""log_group: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.log_group import LogGroupSeen, LogGroupSpec, LogGroupStep

from tests.support.steps import converge_step, destroy_step

STEP = LogGroupStep()
SPEC = LogGroupSpec("/g", "arn:aws:logs:us-east-1:111:log-group:/g", 30)


def test_plan():
    assert [(c.action, c.kind) for c in STEP.plan(SPEC, None)] == [("create", "log_group")]
    assert STEP.plan(SPEC, LogGroupSeen("/g", SPEC.arn, 30, True)) == []
    (change,) = STEP.plan(SPEC, LogGroupSeen("/g", SPEC.arn, 7, True))
    assert (change.action, change.kind, change.reason) == ("update", "retention", "retention 7 -> 30")
    (change,) = STEP.plan(LogGroupSpec("/g", SPEC.arn, None), LogGroupSeen("/g", SPEC.arn, 7, True))
    assert change.reason == "retention 7 -> never"


def test_a_foreign_log_group_stops_up():
    with pytest.raises(OwnershipError, match="log group /g exists and is not the stack's"):
        STEP.plan(SPEC, LogGroupSeen("/g", SPEC.arn, 30, ours=False))


def test_plan_destroy_keeps_data_and_foreign_groups():
    ours = LogGroupSeen("/g", SPEC.arn, 30, True)
    assert [c.params["name"] for c in STEP.plan_destroy(ours, DestroyOptions())] == ["/g"]
    assert STEP.plan_destroy(ours, DestroyOptions(keep_data=True)) == []
    assert STEP.plan_destroy(LogGroupSeen("/g", SPEC.arn, 30, False), DestroyOptions()) == []


def test_apply_then_discover_agree(ctx, session):
    created = converge_step(STEP, ctx)
    assert STEP.discover(ctx) == created == LogGroupSeen("/flowwatch/test/flow-logs", created.arn, 30, True)
    assert ctx.stack.log_group_arn == created.arn
    tags = session.client("logs").list_tags_for_resource(resourceArn=created.arn)["tags"]
    assert tags["flowwatch:stack"] == "test" and tags["flowwatch:step"] == "log_group"
    assert destroy_step(STEP, ctx, created) is None and STEP.discover(ctx) is None
