"""igw: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.igw import IgwSeen, IgwSpec, IgwStep

from tests.support.steps import converge_step, destroy_step, parents

STEP = IgwStep()
SPEC = IgwSpec(True, "vpc-1")
NO = DestroyOptions()


def kinds(changes):
    return [(c.action, c.kind) for c in changes]


def test_plan():
    assert kinds(STEP.plan(SPEC, None)) == [("create", "igw"), ("create", "route")]
    detached = IgwSeen("igw-1", None, "rtb-1", None, vpc_id="vpc-1")
    assert kinds(STEP.plan(SPEC, detached)) == [("update", "attach"), ("create", "route")]
    assert STEP.plan(SPEC, IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-1", vpc_id="vpc-1")) == []
    assert STEP.plan(IgwSpec(False), None) == []               # adopted VPC: read-only


def test_a_foreign_default_route_is_never_replaced():
    with pytest.raises(OwnershipError, match="igw-other"):
        STEP.plan(SPEC, IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-other", vpc_id="vpc-1"))
    with pytest.raises(OwnershipError, match="not the stack's"):
        STEP.plan(SPEC, IgwSeen(None, None, "rtb-1", "igw-other", vpc_id="vpc-1"))


def test_destroy_order_route_detach_delete():
    changes = STEP.plan_destroy(IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-1", vpc_id="vpc-1"), NO)
    assert [c.kind for c in changes] == ["route", "detach", "igw"]


def test_a_gateway_attached_to_a_foreign_vpc_is_never_detached_from_it():
    with pytest.raises(OwnershipError, match="vpc-other"):
        STEP.plan_destroy(IgwSeen("igw-1", "vpc-other", "rtb-1", None, vpc_id="vpc-ours"), NO)


def test_apply_then_discover_agree(ctx):
    parents(ctx, "vpc")
    created = converge_step(STEP, ctx)            # the route change gets the new gateway from the change before
    assert created.id and created.route_target == created.id and created.attached_to == ctx.stack.vpc_id
    assert STEP.discover(ctx) == created
    assert destroy_step(STEP, ctx, created) is None
    assert STEP.discover(ctx).id is None
