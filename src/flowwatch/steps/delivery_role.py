"""delivery_role: the IAM role VPC Flow Logs assumes to write into the stack's log group.

Named ``names.role``, found by that exact name and adopted only with the stack's tag. Trusted only by
``vpc-flow-logs.amazonaws.com`` with ``aws:SourceAccount`` and ``aws:SourceArn`` conditions; its one inline
policy allows only CreateLogStream, PutLogEvents and DescribeLogStreams on that log group, and
DescribeLogGroups (which has no resource type) on ``*``, as AWS's documented flow-logs policy (no
CreateLogGroup). When the stack's permissions boundary ``flowwatch-<stack>-flow-logs-boundary`` exists
(docs/IAM.md), the role carries it. flowwatch attaches no managed policy and puts no other inline
policy: ``down`` refuses (before removing anything) when someone attached or put one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flowwatch.errors import OwnershipError, error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tags
from flowwatch.steps.base import policy_json, same_policy, tag_map, when_visible
from flowwatch.steps.log_group import log_group_arn

ROLE_POLICY_NAME = "flowwatch-flow-log-delivery"
# A per-stack permissions boundary an administrator creates once (docs/IAM.md): when it exists, the
# delivery role is created with it, so a caller allowed to create the stack's role can never create one
# that does more than deliver flow logs into that stack's log group. flowwatch reads it, never creates,
# changes or deletes it.


def boundary_policy_name(stack: str) -> str:
    return f"flowwatch-{stack}-flow-logs-boundary"


def delivery_trust(partition: str, account: str, region: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "VpcFlowLogsDelivery", "Effect": "Allow",
        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"}}}]}


def delivery_policy(log_group_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "WriteOwnLogGroupOnly", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [f"{log_group_arn}:log-stream:*"]}, {
        "Sid": "ReadOwnLogGroup", "Effect": "Allow", "Action": ["logs:DescribeLogStreams"],
        "Resource": [log_group_arn, f"{log_group_arn}:*"]}, {
        # DescribeLogGroups has no resource type: only "*" matches it
        "Sid": "FindLogGroups", "Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": "*"}]}


@dataclass(frozen=True)
class RoleSpec:
    name: str
    trust: dict[str, Any]
    policy: dict[str, Any]
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RoleSeen:
    name: str
    arn: str
    trust: Any
    policy: Any
    ours: bool
    boundary: str | None = None      # the role's permissions boundary ARN
    attached: tuple[str, ...] = ()   # managed policies someone attached (flowwatch attaches none)
    inline: tuple[str, ...] = ()     # inline policies other than flowwatch's (someone put them)


@dataclass(frozen=True)
class DeliveryRoleSeen:
    role: RoleSeen | None = None
    boundary: str | None = None      # ARN of the account's flowwatch boundary policy, when it exists


class DeliveryRoleStep:
    name = "delivery_role"

    def desired(self, ctx: Context) -> RoleSpec:
        part, account, region = ctx.aws.partition, ctx.account, ctx.region
        name = ctx.names.of("role")
        return RoleSpec(name, delivery_trust(part, account, region),
                        delivery_policy(log_group_arn(part, region, account, ctx.log_group)),
                        f"flowwatch {ctx.stack.name}: VPC flow logs delivery to {ctx.log_group}",
                        tuple((t["Key"], t["Value"]) for t in tags(ctx.stack.name, self.name, name)))

    def discover(self, ctx: Context) -> DeliveryRoleSeen | None:
        return DeliveryRoleSeen(self._role(ctx), self._boundary(ctx))

    def _role(self, ctx: Context) -> RoleSeen | None:
        iam = ctx.aws.iam
        name = ctx.names.of("role")
        try:
            role = iam.get_role(RoleName=name)["Role"]
        except Exception as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        ours = tag_map(role.get("Tags") or iam.list_role_tags(RoleName=name)["Tags"]).get(STACK_TAG) == ctx.stack.name
        try:
            policy = iam.get_role_policy(RoleName=name, PolicyName=ROLE_POLICY_NAME)["PolicyDocument"]
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            policy = None
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        attached = tuple(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
        inline = tuple(p for p in iam.list_role_policies(RoleName=name)["PolicyNames"] if p != ROLE_POLICY_NAME)
        return RoleSeen(name, role["Arn"], role.get("AssumeRolePolicyDocument"), policy, ours, boundary, attached,
                        inline)

    @staticmethod
    def _boundary(ctx: Context) -> str | None:
        arn = f"arn:{ctx.aws.partition}:iam::{ctx.account}:policy/{boundary_policy_name(ctx.stack.name)}"
        try:
            ctx.aws.iam.get_policy(PolicyArn=arn)
        except Exception as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return arn

    def plan(self, want: RoleSpec, have: DeliveryRoleSeen | None) -> list[Change]:
        have = have or DeliveryRoleSeen()
        role = have.role
        ids = {"name": want.name, "boundary": have.boundary}
        if role is None:
            return [Change(self.name, "create", f"IAM role {want.name}", "not found", {"kind": "role", **ids},
                           spec=want)]
        if not role.ours:
            raise OwnershipError(f"delivery_role: IAM role {want.name} exists and is not the stack's",
                                 hint="set names.role to another name, or use another --stack")
        changes = []
        if not same_policy(role.trust, want.trust):
            changes.append(Change(self.name, "update", f"IAM role {want.name}", "trust policy differs",
                                  {"kind": "trust", **ids}, spec=want))
        if have.boundary and role.boundary != have.boundary:
            changes.append(Change(self.name, "update", f"IAM role {want.name}",
                                  f"permissions boundary -> {have.boundary.rsplit('/', 1)[-1]}", {"kind": "boundary", **ids},
                                  spec=want))
        if role.policy is None or not same_policy(role.policy, want.policy):
            changes.append(Change(self.name, "update", f"IAM role {want.name}", "delivery policy differs",
                                  {"kind": "policy", **ids}, spec=want))
        return changes

    def apply(self, ctx: Context, change: Change) -> DeliveryRoleSeen | None:
        iam = ctx.aws.iam
        before: DeliveryRoleSeen = change.before or DeliveryRoleSeen()
        name = change.params["name"]
        if change.action == "delete":
            # only flowwatch's own inline policy: one put since the plan makes DeleteRole fail (DeleteConflict)
            if ROLE_POLICY_NAME in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=ROLE_POLICY_NAME)
            iam.delete_role(RoleName=name)
            return replace(before, role=None)
        spec: RoleSpec = change.spec
        boundary: str | None = change.params.get("boundary")
        if change.kind == "role":
            bounded = {"PermissionsBoundary": boundary} if boundary else {}
            created = iam.create_role(
                RoleName=spec.name, AssumeRolePolicyDocument=policy_json(spec.trust), Description=spec.description,
                Tags=[{"Key": k, "Value": v} for k, v in spec.tags], **bounded)["Role"]
            when_visible(ctx.poll, lambda: iam.put_role_policy(RoleName=spec.name, PolicyName=ROLE_POLICY_NAME,
                                                               PolicyDocument=policy_json(spec.policy)),
                         "role", f"IAM role {spec.name} to be visible")
            return DeliveryRoleSeen(RoleSeen(spec.name, created["Arn"], spec.trust, spec.policy, True, boundary),
                                    boundary)
        role = before.role
        assert role is not None, "an update is planned only for an existing role"
        if change.kind == "trust":
            iam.update_assume_role_policy(RoleName=spec.name, PolicyDocument=policy_json(spec.trust))
            role = replace(role, trust=spec.trust)
        elif change.kind == "boundary":
            iam.put_role_permissions_boundary(RoleName=spec.name, PermissionsBoundary=boundary)
            role = replace(role, boundary=boundary)
        elif change.kind == "policy":
            iam.put_role_policy(RoleName=spec.name, PolicyName=ROLE_POLICY_NAME,
                                PolicyDocument=policy_json(spec.policy))
            role = replace(role, policy=spec.policy)
        else:
            raise ValueError(f"delivery_role: unknown change {change.kind!r}")
        return replace(before, role=role)

    def plan_destroy(self, have: DeliveryRoleSeen | None, options: DestroyOptions) -> list[Change]:
        role = have.role if have else None
        if role is None or not role.ours:
            return []
        if role.attached:
            # checked before down removes anything: IAM would refuse DeleteRole half-way (DeleteConflict)
            raise OwnershipError(f"delivery_role: someone attached {', '.join(role.attached)} to the stack's "
                                 f"role {role.name}; down does not detach what it did not attach",
                                 hint=f"aws iam detach-role-policy --role-name {role.name} --policy-arn ARN, "
                                      "then run down again")
        if role.inline:
            raise OwnershipError(f"delivery_role: the stack's role {role.name} has inline policies flowwatch did not "
                                 f"put ({', '.join(role.inline)}); down does not delete what it did not create",
                                 hint=f"aws iam delete-role-policy --role-name {role.name} --policy-name NAME, "
                                      "then run down again")
        return [Change(self.name, "delete", f"IAM role {role.name}", "down", {"kind": "role", "name": role.name})]

    def publish(self, stack: Stack, have: DeliveryRoleSeen | None) -> None:
        role = have.role if have else None
        stack.role_arn = role.arn if role and role.ours else PENDING

    def found(self, have: DeliveryRoleSeen | None) -> str | None:
        role = have.role if have else None
        if role is None:
            return None
        return role.name + (f" (boundary {role.boundary.rsplit('/', 1)[-1]})" if role.boundary else "")

    def status(self, have: DeliveryRoleSeen | None) -> StatusDetail:
        role = have.role if have else None
        if role is None:
            return StatusDetail()
        return StatusDetail(ids={"role": role.name, "arn": role.arn, **({"boundary": role.boundary} if role.boundary else {})})
