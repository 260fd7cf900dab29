"""delivery_role: pure plans first, then moto round trips (with and without the permissions boundary)."""

from __future__ import annotations

import json

import pytest

from flowwatch import iam_policy
from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.delivery_role import (boundary_policy_name, DeliveryRoleSeen, DeliveryRoleStep, RoleSeen,
                                           RoleSpec, delivery_policy, delivery_trust)

from tests.support.steps import converge_step, destroy_step

STEP = DeliveryRoleStep()
ARN = "arn:aws:logs:us-east-1:111:log-group:/g"
SPEC = RoleSpec("r", delivery_trust("aws", "111", "us-east-1"), delivery_policy(ARN))
BOUNDARY_POLICY_NAME = boundary_policy_name("test")
BOUNDARY = f"arn:aws:iam::111:policy/{BOUNDARY_POLICY_NAME}"


def role(**kw):
    return RoleSeen(**{"name": "r", "arn": "arn:aws:iam::111:role/r", "trust": SPEC.trust, "policy": SPEC.policy,
                       "ours": True, **kw})


def test_plan():
    assert [(c.action, c.kind) for c in STEP.plan(SPEC, None)] == [("create", "role")]
    assert STEP.plan(SPEC, DeliveryRoleSeen(role())) == []
    loose = DeliveryRoleSeen(role(trust={"Statement": []}, policy=None), boundary=BOUNDARY)
    assert [c.kind for c in STEP.plan(SPEC, loose)] == ["trust", "boundary", "policy"]


def test_the_role_is_created_with_the_boundary_when_it_exists():
    (change,) = STEP.plan(SPEC, DeliveryRoleSeen(None, boundary=BOUNDARY))
    assert change.params["boundary"] == BOUNDARY


def test_a_foreign_role_stops_up():
    with pytest.raises(OwnershipError, match="IAM role r exists and is not the stack's"):
        STEP.plan(SPEC, DeliveryRoleSeen(role(ours=False)))


def test_down_refuses_a_role_someone_attached_a_managed_policy_to():
    with pytest.raises(OwnershipError, match="arn:aws:iam::111:policy/theirs"):
        STEP.plan_destroy(DeliveryRoleSeen(role(attached=("arn:aws:iam::111:policy/theirs",))), DestroyOptions())
    assert [c.params["name"] for c in STEP.plan_destroy(DeliveryRoleSeen(role()), DestroyOptions())] == ["r"]
    assert STEP.plan_destroy(DeliveryRoleSeen(role(ours=False)), DestroyOptions()) == []


def test_apply_then_discover_agree(ctx):
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert seen.role.arn == created.role.arn == ctx.stack.role_arn and seen.role.ours
    assert STEP.plan(STEP.desired(ctx), seen) == []
    assert destroy_step(STEP, ctx, seen).role is None and STEP.discover(ctx).role is None


def test_an_existing_role_gets_the_boundary_the_administrator_created(ctx, session):
    converge_step(STEP, ctx)
    arn = session.client("iam").create_policy(PolicyName=BOUNDARY_POLICY_NAME, PolicyDocument=json.dumps(
        iam_policy.boundary_policy(account="123456789012")))["Policy"]["Arn"]
    seen = STEP.discover(ctx)
    assert [c.kind for c in STEP.plan(STEP.desired(ctx), seen)] == ["boundary"]
    assert converge_step(STEP, ctx, seen).role.boundary == arn == STEP.discover(ctx).role.boundary
