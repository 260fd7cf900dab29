"""vpc: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import DriftError
from flowwatch.model import DestroyOptions
from flowwatch.steps.vpc import VpcSeen, VpcSpec, VpcStep

from tests.support.steps import converge_step, destroy_step

STEP = VpcStep()


@pytest.mark.parametrize(("have", "expected"), [(None, ["create"]), (VpcSeen("vpc-1", "10.0.0.0/24"), [])])
def test_plan(have, expected):
    assert [c.action for c in STEP.plan(VpcSpec("10.0.0.0/24"), have)] == expected


def test_the_create_carries_its_spec():
    want = VpcSpec("10.0.0.0/24", stack="s", name="flowwatch-s-vpc")
    (change,) = STEP.plan(want, None)
    assert change.spec == want and change.target == "vpc 10.0.0.0/24"


def test_cidr_drift_is_an_error_not_a_replacement():
    with pytest.raises(DriftError, match="10.1.0.0/24"):
        STEP.plan(VpcSpec("10.0.0.0/24"), VpcSeen("vpc-1", "10.1.0.0/24"))


def test_adopted_vpc_plans_nothing_and_is_never_destroyed():
    seen = VpcSeen("vpc-1", "172.16.0.0/16", adopted=True)
    assert STEP.plan(VpcSpec("10.0.0.0/24", adopt_id="vpc-1"), seen) == []
    assert STEP.plan_destroy(seen, DestroyOptions()) == []


def test_plan_destroy():
    (change,) = STEP.plan_destroy(VpcSeen("vpc-1", "10.0.0.0/24"), DestroyOptions())
    assert (change.action, change.params["vpc_id"]) == ("delete", "vpc-1")
    assert STEP.plan_destroy(None, DestroyOptions()) == []


def test_apply_then_discover_agree(ctx):
    created = converge_step(STEP, ctx)
    assert created is not None and created.id.startswith("vpc-")
    assert STEP.discover(ctx) == created
    assert ctx.stack.vpc_id == created.id
    assert destroy_step(STEP, ctx, created) is None
    assert STEP.discover(ctx) is None
