"""sns: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.sns import PENDING_ARN, SnsSeen, SnsSpec, SnsStep, Subscription

from tests.support.context import make_config, make_ctx
from tests.support.steps import converge_step, destroy_step

STEP = SnsStep()


def kinds(changes):
    return [(c.action, c.kind) for c in changes]


def test_plan():
    want = SnsSpec("t", "arn:aws:sns:us-east-1:111:t", {"Statement": []}, "a@example.com")
    assert kinds(STEP.plan(want, None)) == [("create", "topic"), ("create", "subscribe")]
    have = SnsSeen(want.arn, want.policy, True, (Subscription("arn:sub:1", "email", "old@example.com"),))
    assert kinds(STEP.plan(want, have)) == [("create", "subscribe"), ("delete", "unsubscribe")]
    have = SnsSeen(want.arn, want.policy, True, (Subscription(PENDING_ARN, "email", "a@example.com"),))
    assert STEP.plan(want, have) == []
    assert kinds(STEP.plan(want, SnsSeen(want.arn, {"Statement": [1]}, True, have.subscriptions))) == [
        ("update", "policy")]


def test_a_foreign_topic_stops_up():
    with pytest.raises(OwnershipError):
        STEP.plan(SnsSpec("t", "arn", {}, None), SnsSeen("arn", {}, ours=False))


def test_plan_destroy_leaves_pending_subscriptions_to_the_topic():
    have = SnsSeen("arn:t", {}, True, (Subscription("arn:sub:1", "email", "a@x"), Subscription(PENDING_ARN, "email", "b@x")))
    assert kinds(STEP.plan_destroy(have, DestroyOptions())) == [("delete", "unsubscribe"), ("delete", "topic")]
    assert STEP.plan_destroy(SnsSeen("arn:t", {}, False), DestroyOptions()) == []


def test_status_is_data():
    have = SnsSeen("arn:t", {}, True, (Subscription(PENDING_ARN, "email", "b@x"),), pending_count=1)
    detail = STEP.status(have)
    assert [(s.endpoint, s.confirmed) for s in detail.subscriptions] == [("b@x", False)]
    assert detail.pending_subscriptions == 1 and detail.notes == ()


def test_apply_then_discover_agree(session):
    ctx = make_ctx(session, make_config(alerts={"email": "ops@example.com"}))
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert (seen.arn, seen.ours) == (created.arn, True) == (ctx.stack.topic_arn, True)
    assert [(s.protocol, s.endpoint) for s in seen.subscriptions] == [("email", "ops@example.com")]
    assert STEP.plan(STEP.desired(ctx), seen) == []
    if created.subscriptions[0].pending:                  # the note the engine shows; the step never prints
        assert "must confirm" in STEP.status(created).notes[0]
    assert ctx.out.err.file.getvalue() == ""
    assert destroy_step(STEP, ctx, seen) is None and STEP.discover(ctx) is None
