"""nacl: outbound rule 90 on the subnet's network ACL denying all ICMP to 0.0.0.0/0, as in the lab.

The rule is found by number, direction and content on the ACL associated with the stack's subnet.
Off by default in an adopted VPC (``nacl.deny_icmp_egress: true`` turns it on there). A different
rule already at number 90 is never replaced: it is not the stack's.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowwatch.errors import FlowwatchError, OwnershipError
from flowwatch.model import PENDING, Change, Context, Stack
from flowwatch.steps.base import pending

RULE_NUMBER = 90
ICMP = "1"
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class NaclSeen:
    acl_id: str
    rule: dict | None          # the egress entry at RULE_NUMBER, as described


def is_our_rule(entry: dict | None) -> bool:
    return bool(entry) and entry.get("Protocol") in (ICMP, "icmp") and entry.get("RuleAction") == "deny" \
        and entry.get("CidrBlock") == ANYWHERE and entry.get("Egress") is True


@dataclass(frozen=True)
class NaclSpec:
    deny_icmp_egress: bool
    adopted: bool = False


class NaclStep:
    name = "nacl"

    def desired(self, ctx: Context) -> NaclSpec:
        return NaclSpec(ctx.config.deny_icmp_egress, ctx.config.adopted)

    def discover(self, ctx: Context) -> NaclSeen | None:
        if pending(ctx.stack.subnet_id):
            return None
        acls = ctx.aws.ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [ctx.stack.subnet_id]}])["NetworkAcls"]
        if not acls:
            return None
        acl = acls[0]
        rule = next((e for e in acl.get("Entries", ()) if e["RuleNumber"] == RULE_NUMBER and e["Egress"]), None)
        return NaclSeen(acl["NetworkAclId"], rule)

    def plan(self, want: NaclSpec, have: NaclSeen | None) -> list[Change]:
        if not want.deny_icmp_egress:
            if have is not None and not want.adopted and is_our_rule(have.rule):
                return [Change(self.name, "delete", f"rule {RULE_NUMBER} on {have.acl_id}",
                               "nacl.deny_icmp_egress is false", {"acl_id": have.acl_id})]
            return []
        if have is None:
            return [Change(self.name, "create", f"rule {RULE_NUMBER}: deny ICMP egress to {ANYWHERE}", "not found")]
        if have.rule is None:
            return [Change(self.name, "create", f"rule {RULE_NUMBER} on {have.acl_id}: deny ICMP egress to {ANYWHERE}",
                           "not found", {"acl_id": have.acl_id})]
        if not is_our_rule(have.rule):
            raise OwnershipError(f"nacl: {have.acl_id} already has a different outbound rule {RULE_NUMBER}",
                                 hint="remove it, or set nacl.deny_icmp_egress: false")
        return []

    def apply(self, ctx: Context, change: Change, have: NaclSeen | None) -> NaclSeen | None:
        ec2 = ctx.aws.ec2
        if change.action == "delete":
            ec2.delete_network_acl_entry(NetworkAclId=change.params["acl_id"], RuleNumber=RULE_NUMBER, Egress=True)
            return NaclSeen(change.params["acl_id"], None)
        acl_id = change.params.get("acl_id") or (have.acl_id if have else None)
        if acl_id is None:
            have = self.discover(ctx)
            if have is None:
                raise FlowwatchError("nacl: the subnet has no network ACL association yet; run up again")
            acl_id = have.acl_id
        entry = {"Protocol": ICMP, "RuleAction": "deny", "Egress": True, "CidrBlock": ANYWHERE,
                 "IcmpTypeCode": {"Type": -1, "Code": -1}}
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=RULE_NUMBER, **entry)
        return NaclSeen(acl_id, {"RuleNumber": RULE_NUMBER, **entry})

    def plan_destroy(self, have: NaclSeen | None, ctx: Context) -> list[Change]:
        if have is None or not is_our_rule(have.rule):
            return []
        if ctx.config.adopted and not ctx.config.deny_icmp_egress:
            return []  # an adopted VPC's rule 90 is only ours when we were asked to manage it
        return [Change(self.name, "delete", f"rule {RULE_NUMBER} on {have.acl_id}", "down",
                       {"acl_id": have.acl_id})]

    def publish(self, stack: Stack, have: NaclSeen | None) -> None:
        stack.nacl_id = have.acl_id if have else PENDING

    def found(self, have: NaclSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.acl_id} rule {RULE_NUMBER} deny ICMP egress" if have.rule else f"{have.acl_id}, no rule {RULE_NUMBER}"
