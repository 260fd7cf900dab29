"""nacl: pure plans first, then a moto round trip."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.nacl import NaclSeen, NaclSpec, NaclStep

from tests.support.steps import converge_step, destroy_step, parents

STEP = NaclStep()
OUR_RULE = {"RuleNumber": 90, "Protocol": "1", "RuleAction": "deny", "Egress": True, "CidrBlock": "0.0.0.0/0"}


def test_plan():
    assert [c.action for c in STEP.plan(NaclSpec(True), NaclSeen("acl-1", None))] == ["create"]
    assert [c.action for c in STEP.plan(NaclSpec(True), None)] == ["create"]
    assert STEP.plan(NaclSpec(True), NaclSeen("acl-1", OUR_RULE)) == []
    assert [c.action for c in STEP.plan(NaclSpec(False), NaclSeen("acl-1", OUR_RULE))] == ["delete"]
    assert STEP.plan(NaclSpec(False, adopted=True), NaclSeen("acl-1", OUR_RULE)) == []


def test_a_foreign_rule_90_stops_up():
    with pytest.raises(OwnershipError, match="rule 90"):
        STEP.plan(NaclSpec(True), NaclSeen("acl-1", {**OUR_RULE, "RuleAction": "allow"}))


def test_plan_destroy():
    assert [c.params["acl_id"] for c in STEP.plan_destroy(NaclSeen("acl-1", OUR_RULE), DestroyOptions())] == ["acl-1"]
    assert STEP.plan_destroy(NaclSeen("acl-1", OUR_RULE, managed=False), DestroyOptions()) == []   # adopted VPC
    assert STEP.plan_destroy(NaclSeen("acl-1", None), DestroyOptions()) == []


def test_apply_then_discover_agree(ctx):
    parents(ctx, "vpc", "subnet")
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert seen.acl_id == created.acl_id and STEP.plan(STEP.desired(ctx), seen) == []
    assert destroy_step(STEP, ctx, seen).rule is None and STEP.discover(ctx).rule is None


def test_a_change_planned_before_the_subnet_existed_finds_its_acl(ctx):
    parents(ctx, "vpc")
    (change,) = STEP.plan(STEP.desired(ctx), None)          # dry-run view: no subnet, no ACL yet
    parents(ctx, "subnet")
    from dataclasses import replace

    created = STEP.apply(ctx, replace(change, spec=STEP.desired(ctx)))
    assert created.acl_id.startswith("acl-") and STEP.discover(ctx) .rule is not None
