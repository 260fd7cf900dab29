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
    assert [c.action for c in STEP.plan(NaclSpec(False), NaclSeen("acl-1", OUR_RULE, owned=True))] == ["delete"]
    assert STEP.plan(NaclSpec(False, adopted=True), NaclSeen("acl-1", OUR_RULE, owned=True)) == []


def test_a_foreign_rule_90_stops_up():
    with pytest.raises(OwnershipError, match="rule 90"):
        STEP.plan(NaclSpec(True), NaclSeen("acl-1", {**OUR_RULE, "RuleAction": "allow"}))


def test_plan_destroy():
    owned = NaclSeen("acl-1", OUR_RULE, owned=True)
    assert [c.params["acl_id"] for c in STEP.plan_destroy(owned, DestroyOptions())] == ["acl-1"]
    assert STEP.plan_destroy(NaclSeen("acl-1", OUR_RULE, managed=False, owned=True), DestroyOptions()) == []   # adopted
    assert STEP.plan_destroy(NaclSeen("acl-1", OUR_RULE), DestroyOptions()) == []     # no ownership tag: not ours
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


# ---------- ownership of rule 90: a tag on the ACL says flowwatch created it ----------
def _adopted_ctx(session, **nacl):
    """A VPC and subnet someone else made, adopted with ``deny_icmp_egress: true``."""
    from tests.support.context import make_config, make_ctx

    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/24")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/26", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
        "NetworkAcls"][0]["NetworkAclId"]
    config = make_config(network={"vpc_id": vpc, "vpc_cidr": "10.9.0.0/24", "subnet_cidr": "10.9.0.0/26"},
                         nacl={"deny_icmp_egress": True, **nacl})
    ctx = make_ctx(session, config)
    ctx.stack.subnet_id = subnet
    return ctx, ec2, acl


def _rule_90(ec2, acl):
    entries = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"]
    return [e for e in entries if e["RuleNumber"] == 90 and e["Egress"]]


def _acl_tags(ec2, acl):
    return {t["Key"]: t["Value"] for t in ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0].get("Tags", [])}


def test_an_identical_rule_someone_else_made_is_left_alone_by_up_and_survives_down(session, calls):
    ctx, ec2, acl = _adopted_ctx(session)
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="1", RuleAction="deny", Egress=True,
                                 CidrBlock="0.0.0.0/0", IcmpTypeCode={"Type": -1, "Code": -1})
    seen = STEP.discover(ctx)
    assert STEP.plan(STEP.desired(ctx), seen) == []                      # up: no change ...
    assert "left alone (not flowwatch's)" in STEP.found(seen)            # ... and says whose it is
    assert STEP.status(seen).kept == (f"rule 90 on {acl} left alone (not flowwatch's)",)
    calls.clear()
    assert STEP.plan_destroy(seen, DestroyOptions()) == []               # down: nothing to remove
    assert destroy_step(STEP, ctx, seen) == seen
    assert [c for c in calls if c[1] in ("DeleteNetworkAclEntry", "DeleteTags", "CreateTags")] == []
    assert len(_rule_90(ec2, acl)) == 1


def test_the_rule_flowwatch_created_is_tagged_and_removed_by_down_with_its_tag(session, calls):
    ctx, ec2, acl = _adopted_ctx(session)
    created = converge_step(STEP, ctx)
    assert created.owned and _acl_tags(ec2, acl) == {"flowwatch:test:nacl-rule": "90"}
    seen = STEP.discover(ctx)
    assert seen.owned and not seen.foreign and STEP.status(seen).kept == ()
    (change,) = STEP.plan_destroy(seen, DestroyOptions())
    calls.clear()
    STEP.apply(ctx, change.after(seen))
    assert ("ec2", "DeleteNetworkAclEntry") in calls and ("ec2", "DeleteTags") in calls
    assert _rule_90(ec2, acl) == [] and _acl_tags(ec2, acl) == {}


def test_another_stacks_tag_does_not_make_the_rule_ours(session):
    ctx, ec2, acl = _adopted_ctx(session)
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="1", RuleAction="deny", Egress=True,
                                 CidrBlock="0.0.0.0/0", IcmpTypeCode={"Type": -1, "Code": -1})
    ec2.create_tags(Resources=[acl], Tags=[{"Key": "flowwatch:other:nacl-rule", "Value": "90"}])
    seen = STEP.discover(ctx)
    assert seen.foreign and STEP.plan_destroy(seen, DestroyOptions()) == []


def test_a_tag_left_without_its_rule_is_removed_alone(session, calls):
    ctx, ec2, acl = _adopted_ctx(session)
    ec2.create_tags(Resources=[acl], Tags=[{"Key": "flowwatch:test:nacl-rule", "Value": "90"}])
    seen = STEP.discover(ctx)
    (change,) = STEP.plan_destroy(seen, DestroyOptions())
    calls.clear()
    STEP.apply(ctx, change.after(seen))
    assert ("ec2", "DeleteNetworkAclEntry") not in calls and _acl_tags(ec2, acl) == {}


def test_turning_the_rule_off_deletes_only_a_tagged_rule():
    spec = NaclSpec(False)
    assert STEP.plan(spec, NaclSeen("acl-1", OUR_RULE, owned=False)) == []
    assert [c.action for c in STEP.plan(spec, NaclSeen("acl-1", OUR_RULE, owned=True, stack="test"))] == ["delete"]
