"""nacl: outbound rule 90 on the subnet's network ACL denying all ICMP to 0.0.0.0/0, as in the lab.

The rule is found by number, direction and content on the ACL associated with the stack's subnet.
Off by default in an adopted VPC (``nacl.deny_icmp_egress: true`` turns it on there). A different
rule already at number 90 is never replaced: it is not the stack's.

NACL entries cannot be tagged, so content alone cannot prove who made one: ``up`` records the rule it
creates as a tag on the ACL itself (``flowwatch:<stack>:nacl-rule`` = ``90``, put before the entry). Only a
rule that tag vouches for is deleted (by ``down``, or when the config turns it off), and the tag with it;
an identical rule without the tag is someone else's: ``up``, ``status`` and ``down`` leave it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flowwatch.errors import FlowwatchError, OwnershipError
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.steps.base import ready, tag_map

RULE_NUMBER = 90
ICMP = "1"
ANYWHERE = "0.0.0.0/0"
ENTRY = {"Protocol": ICMP, "RuleAction": "deny", "Egress": True, "CidrBlock": ANYWHERE,
         "IcmpTypeCode": {"Type": -1, "Code": -1}}


LEFT_ALONE = "left alone (not flowwatch's)"


def ownership_tag(stack: str) -> str:
    """The tag key on the ACL that says this stack created its rule ``RULE_NUMBER``."""
    return f"flowwatch:{stack}:nacl-rule"


@dataclass(frozen=True)
class NaclSeen:
    acl_id: str
    rule: dict[str, Any] | None    # the egress entry at RULE_NUMBER, as described
    managed: bool = True           # False: an adopted VPC's ACL that the config does not ask us to manage
    owned: bool = False            # the ACL's ownership tag says this stack created rule RULE_NUMBER
    stack: str = ""                # whose ownership tag ``owned`` was read from

    @property
    def foreign(self) -> bool:
        """An identical rule the stack did not create: never changed nor deleted."""
        return is_our_rule(self.rule) and not self.owned


def is_our_rule(entry: dict[str, Any] | None) -> bool:
    return bool(entry) and entry is not None and entry.get("Protocol") in (ICMP, "icmp") \
        and entry.get("RuleAction") == "deny" and entry.get("CidrBlock") == ANYWHERE and entry.get("Egress") is True


@dataclass(frozen=True)
class NaclSpec:
    deny_icmp_egress: bool
    adopted: bool = False
    subnet_id: str | Pending | None = None


def find_acl(ec2: Any, subnet_id: str, stack: str = "") -> NaclSeen | None:
    """The network ACL associated with ``subnet_id``, its egress rule 90 if any, and whether ``stack``'s
    ownership tag on the ACL vouches for that rule."""
    acls = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
    if not acls:
        return None
    acl = acls[0]
    rule = next((e for e in acl.get("Entries", ()) if e["RuleNumber"] == RULE_NUMBER and e["Egress"]), None)
    owned = bool(stack) and tag_map(acl.get("Tags")).get(ownership_tag(stack)) == str(RULE_NUMBER)
    return NaclSeen(acl["NetworkAclId"], rule, owned=owned, stack=stack)


class NaclStep:
    name = "nacl"

    def desired(self, ctx: Context) -> NaclSpec:
        return NaclSpec(ctx.config.deny_icmp_egress, ctx.config.adopted, ctx.stack.subnet_id)

    def discover(self, ctx: Context) -> NaclSeen | None:
        subnet_id = ready(ctx.stack.subnet_id)
        if subnet_id is None:
            return None
        seen = find_acl(ctx.aws.ec2, subnet_id, ctx.stack.name)
        if seen is None:
            return None
        # an adopted VPC's rule 90 is only ours when we were asked to manage it
        managed = not (ctx.config.adopted and not ctx.config.deny_icmp_egress)
        return replace(seen, managed=managed)

    def plan(self, want: NaclSpec, have: NaclSeen | None) -> list[Change]:
        if not want.deny_icmp_egress:
            if have is not None and not want.adopted and have.owned and is_our_rule(have.rule):
                return [Change(self.name, "delete", f"rule {RULE_NUMBER} on {have.acl_id}",
                               "nacl.deny_icmp_egress is false", {"acl_id": have.acl_id, "stack": have.stack},
                               spec=want)]
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
        return []       # ours (tagged), or an identical rule someone else made: left alone either way

    def apply(self, ctx: Context, change: Change) -> NaclSeen | None:
        ec2 = ctx.aws.ec2
        stack = str(change.params.get("stack") or ctx.stack.name)
        if change.action == "delete":
            owned_acl = str(change.params["acl_id"])
            if change.params.get("rule", True):
                ec2.delete_network_acl_entry(NetworkAclId=owned_acl, RuleNumber=RULE_NUMBER, Egress=True)
            ec2.delete_tags(Resources=[owned_acl], Tags=[{"Key": ownership_tag(stack)}])
            return NaclSeen(owned_acl, None, owned=False, stack=stack)
        acl_id: str | None = change.params.get("acl_id")
        if acl_id is None:
            # planned before the subnet existed: its ACL (AWS associates the default one) is read now
            spec: NaclSpec = change.spec
            subnet_id = ready(spec.subnet_id)
            seen = find_acl(ec2, subnet_id) if subnet_id else None
            if seen is None:
                raise FlowwatchError("nacl: the subnet has no network ACL association yet; run up again")
            acl_id = seen.acl_id
        # the claim first: a failure after it leaves a tag without a rule (the next up creates the rule under
        # it), never a rule of ours that nothing vouches for
        tag = [{"Key": ownership_tag(stack), "Value": str(RULE_NUMBER)}]
        ec2.create_tags(Resources=[acl_id], Tags=tag)
        try:
            ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=RULE_NUMBER, **ENTRY)
        except Exception:
            ec2.delete_tags(Resources=[acl_id], Tags=[{"Key": tag[0]["Key"]}])   # someone else's rule won the slot
            raise
        return NaclSeen(acl_id, {"RuleNumber": RULE_NUMBER, **ENTRY}, owned=True, stack=stack)

    def plan_destroy(self, have: NaclSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or not have.managed or not have.owned:
            return []       # no tag of ours on the ACL: whatever rule 90 is there, the stack did not create it
        params = {"acl_id": have.acl_id, "stack": have.stack}
        if not is_our_rule(have.rule):       # the rule is gone (or replaced by someone): only our tag is left
            return [Change(self.name, "delete", f"ownership tag of rule {RULE_NUMBER} on {have.acl_id}", "down",
                           {**params, "rule": False})]
        return [Change(self.name, "delete", f"rule {RULE_NUMBER} on {have.acl_id}", "down", params)]

    def publish(self, stack: Stack, have: NaclSeen | None) -> None:
        stack.nacl_id = have.acl_id if have else PENDING

    def found(self, have: NaclSeen | None) -> str | None:
        if have is None:
            return None
        if not have.rule:
            return f"{have.acl_id}, no rule {RULE_NUMBER}"
        return f"{have.acl_id} rule {RULE_NUMBER} deny ICMP egress" + (f", {LEFT_ALONE}" if have.foreign else "")

    def status(self, have: NaclSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        kept = (f"rule {RULE_NUMBER} on {have.acl_id} {LEFT_ALONE}",) if have.foreign else ()
        return StatusDetail(ids={"nacl": have.acl_id}, kept=kept)
