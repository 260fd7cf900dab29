"""subnet: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import DriftError
from flowwatch.model import DestroyOptions
from flowwatch.steps.subnet import SubnetSeen, SubnetSpec, SubnetStep

from tests.support.steps import converge_step, parents

STEP = SubnetStep()
SPEC = SubnetSpec("10.0.0.0/26", "us-east-1a")


def test_plan_create_then_fix_public_ip():
    assert [c.action for c in STEP.plan(SPEC, None)] == ["create"]
    off = SubnetSeen("subnet-1", "10.0.0.0/26", "us-east-1a", public_ip=False)
    (change,) = STEP.plan(SPEC, off)
    assert (change.action, change.reason, change.params["subnet_id"]) == (
        "update", "public IPs on launch off -> on", "subnet-1")
    assert STEP.plan(SPEC, SubnetSeen("subnet-1", "10.0.0.0/26", "us-east-1a", True)) == []


def test_a_subnet_in_another_zone_is_drift():
    with pytest.raises(DriftError, match="us-east-1b"):
        STEP.plan(SPEC, SubnetSeen("s", "10.0.0.0/26", "us-east-1b", True))


def test_adopted_is_read_only():
    seen = SubnetSeen("s", "10.9.1.0/24", "us-east-1a", False, adopted=True)
    assert STEP.plan(SubnetSpec("10.9.1.0/24", "us-east-1a", adopted=True), seen) == []
    assert STEP.plan_destroy(seen, DestroyOptions()) == []


def test_no_vpc_yet_discovers_nothing(ctx):
    assert STEP.discover(ctx) is None


def test_apply_then_discover_agree(ctx, session):
    parents(ctx, "vpc")
    created = converge_step(STEP, ctx)
    assert STEP.discover(ctx) == created and created.public_ip
    # public IPs switched off behind flowwatch's back: one update brings them back
    session.client("ec2").modify_subnet_attribute(SubnetId=created.id, MapPublicIpOnLaunch={"Value": False})
    drifted = STEP.discover(ctx)
    assert [c.action for c in STEP.plan(STEP.desired(ctx), drifted)] == ["update"]
    assert converge_step(STEP, ctx, drifted) == created == STEP.discover(ctx)
