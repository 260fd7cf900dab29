"""bucket: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.bucket import PUBLIC_BLOCK, BucketSeen, BucketSpec, BucketStep, bucket_policy

from tests.support.steps import converge_step, destroy_step

STEP = BucketStep()
SPEC = BucketSpec("b", bucket_policy("aws", "b", "111", "us-east-1"), 30)
CONVERGED = BucketSeen("b", True, True, PUBLIC_BLOCK, "AES256", SPEC.policy, 30, "BucketOwnerEnforced")


def test_plan():
    assert [(c.action, c.kind) for c in STEP.plan(SPEC, None)] == [("create", "bucket")]
    assert STEP.plan(SPEC, CONVERGED) == []


def test_hardening_is_restored_one_setting_at_a_time():
    loose = BucketSeen("b", True, True, None, None, None, 30, None)
    assert [c.kind for c in STEP.plan(SPEC, loose)] == ["ownership", "public_block", "encryption", "policy"]


def test_a_changed_retention_updates_the_expiry():
    (change,) = STEP.plan(BucketSpec("b", SPEC.policy, 90), CONVERGED)
    assert (change.kind, change.reason) == ("lifecycle", "expiry 30 -> 90 days")


@pytest.mark.parametrize("empty", [False, True])
def test_an_untagged_bucket_with_our_name_stops_up_even_when_empty(empty):
    # CreateBucket carries the stack's tags, so an interrupted up never leaves an untagged bucket of ours.
    with pytest.raises(OwnershipError, match="not tagged as the stack's"):
        STEP.plan(SPEC, BucketSeen("b", False, empty))


def test_plan_destroy_keeps_data_and_foreign_buckets():
    assert [c.params["name"] for c in STEP.plan_destroy(CONVERGED, DestroyOptions())] == ["b"]
    assert STEP.plan_destroy(CONVERGED, DestroyOptions(keep_data=True)) == []
    assert STEP.plan_destroy(BucketSeen("b", False), DestroyOptions()) == []


def test_apply_then_discover_agree(ctx, session, calls):
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert (seen.name, seen.ours, seen.public_block, seen.encryption, seen.lifecycle_days, seen.ownership) == (
        created.name, True, PUBLIC_BLOCK, "AES256", 30, "BucketOwnerEnforced")
    assert STEP.plan(STEP.desired(ctx), seen) == []                    # what apply did is what discover sees
    assert ("s3", "HeadBucket") in calls
    assert destroy_step(STEP, ctx, seen) is None and STEP.discover(ctx) is None


def test_head_bucket_names_the_expected_owner(ctx, session):
    sent = []
    session.events.register("before-parameter-build.s3.HeadBucket", lambda params, **_: sent.append(params))
    STEP.discover(ctx)
    assert sent and sent[0]["ExpectedBucketOwner"] == "123456789012"
