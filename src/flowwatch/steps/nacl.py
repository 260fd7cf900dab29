"""nacl: outbound rule 90 on the subnet's network ACL denying all ICMP to 0.0.0.0/0, as in the lab.

The rule is found by number, direction and content on the ACL associated with the stack's subnet.
Off by default in an adopted VPC (``nacl.deny_icmp_egress: true`` turns it on there). A different
rule already at number 90 is never replaced: it is not the stack's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowwatch.errors import FlowwatchError, OwnershipError
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.steps.base import ready

RULE_NUMBER = 90
ICMP = "1"
ANYWHERE = "0.0.0.0/0"
ENTRY = {"Protocol": ICMP, "RuleAction": "deny", "Egress": True, "CidrBlock": ANYWHERE,
         "IcmpTypeCode": {"Type": -1, "Code": -1}}


@dataclass(frozen=True)
class NaclSeen:
    acl_id: str
    rule: dict[str, Any] | None    # the egress entry at RULE_NUMBER, as described
    managed: bool = True           # False: an adopted VPC's ACL that the config does not ask us to manage


def is_our_rule(entry: dict[str, Any] | None) -> bool:
    return bool(entry) and entry is not None and entry.get("Protocol") in (ICMP, "icmp") \
        and entry.get("RuleAction") == "deny" and entry.get("CidrBlock") == ANYWHERE and entry.get("Egress") is True


@dataclass(frozen=True)
class NaclSpec:
    deny_icmp_egress: bool
    adopted: bool = False
    subnet_id: str | Pending | None = None


def find_acl(ec2: Any, subnet_id: str) -> NaclSeen | None:
    """The network ACL associated with ``subnet_id`` and its egress rule 90, if any."""
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
    if not acls:
        return None
    acl = acls[0]
    rule = next((e for e in acl.get("Entries", ()) if e["RuleNumber"] == RULE_NUMBER and e["Egress"]), None)
    return NaclSeen(acl["NetworkAclId"], rule)


class NaclStep:
    name = "nacl"

    def desired(self, ctx: Context) -> NaclSpec:
        return NaclSpec(ctx.config.deny_icmp_egress, ctx.config.adopted, ctx.stack.subnet_id)

    def discover(self, ctx: Context) -> NaclSeen | None:
        subnet_id = ready(ctx.stack.subnet_id)
        if subnet_id is None:
            return None
        seen = find_acl(ctx.aws.ec2, subnet_id)
        if seen is None:
            return None
        # an adopted VPC's rule 90 is only ours when we were asked to manage it
        managed = not (ctx.config.adopted and not ctx.config.deny_icmp_egress)
        return NaclSeen(seen.acl_id, seen.rule, managed)

    def plan(self, want: NaclSpec, have: NaclSeen | None) -> list[Change]:
        if not want.deny_icmp_egress:
            if have is not None and not want.adopted and is_our_rule(have.rule):
                return [Change(self.name, "delete", f"rule {RULE_NUMBER} on {have.acl_id}",
                               "nacl.deny_icmp_egress is false", {"acl_id": have.acl_id}, spec=want)]
            return []
        if have is None:
            return [Change(self.name, "create", f"rule {RULE_NUMBER}: deny ICMP egress to {ANYWHERE}", "not found",
                           spec=want)]
        if have.rule is None:
            return [Change(self.name, "create", f"rule {RULE_NUMBER} on {have.acl_id}: deny ICMP egress to {ANYWHERE}",
                           "not found", {"acl_id": have.acl_id}, spec=want)]
        if not is_our_rule(have.rule):
            raise OwnershipError(f"nacl: {have.acl_id} already has a different outbound rule {RULE_NUMBER}",
                                 hint="remove it, or set nacl.deny_icmp_egress: false")
        return []

    def apply(self, ctx: Context, change: Change) -> NaclSeen | None:
        ec2 = ctx.aws.ec2
        if change.action == "delete":
            ec2.delete_network_acl_entry(NetworkAclId=change.params["acl_id"], RuleNumber=RULE_NUMBER, Egress=True)
            return NaclSeen(change.params["acl_id"], None)
        acl_id: str | None = change.params.get("acl_id")
        if acl_id is None:
            # planned before the subnet existed: its ACL (AWS associates the default one) is read now
            spec: NaclSpec = change.spec
            subnet_id = ready(spec.subnet_id)
            seen = find_acl(ec2, subnet_id) if subnet_id else None
            if seen is None:
                raise FlowwatchError("nacl: the subnet has no network ACL association yet; run up again")
            acl_id = seen.acl_id
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=RULE_NUMBER, **ENTRY)
        return NaclSeen(acl_id, {"RuleNumber": RULE_NUMBER, **ENTRY})

    def plan_destroy(self, have: NaclSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or not have.managed or not is_our_rule(have.rule):
            return []
        return [Change(self.name, "delete", f"rule {RULE_NUMBER} on {have.acl_id}", "down", {"acl_id": have.acl_id})]

    def publish(self, stack: Stack, have: NaclSeen | None) -> None:
        stack.nacl_id = have.acl_id if have else PENDING

    def found(self, have: NaclSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.acl_id} rule {RULE_NUMBER} deny ICMP egress" if have.rule else f"{have.acl_id}, no rule {RULE_NUMBER}"

    def status(self, have: NaclSeen | None) -> StatusDetail:
        return StatusDetail(ids={"nacl": have.acl_id} if have else {})
