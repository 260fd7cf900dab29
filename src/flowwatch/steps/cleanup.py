"""cleanup: what ``simulate-reject --mode instance`` launched: the traffic instance and its security group.

``up`` never creates them and never looks for them (simulate-reject launches them; it is not idempotent):
only ``down`` (which removes them before the NACL rule, subnet and VPC) and ``status`` run this step.
Instances tagged ``flowwatch:step=instance`` are terminated (and waited for), then the security group
tagged ``flowwatch:step=security_group`` in the stack's VPC is deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from flowwatch.model import Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import tag_filters
from flowwatch.steps.base import ready

LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")
INSTANCE_STEP = "instance"            # the step tag simulate-reject puts on what it launches
SECURITY_GROUP_STEP = "security_group"


@dataclass(frozen=True)
class CleanupSeen:
    instances: tuple[str, ...]
    security_groups: tuple[str, ...]
    private_ips: tuple[str, ...] = ()


def find_instances(ec2: Any, stack: str, states: Sequence[str] = LIVE_STATES) -> list[dict[str, Any]]:
    """The stack's traffic instances in ``states``."""
    reservations = ec2.describe_instances(Filters=[
        *tag_filters(stack, INSTANCE_STEP), {"Name": "instance-state-name", "Values": list(states)}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def find_security_groups(ec2: Any, stack: str, vpc_id: str) -> list[dict[str, Any]]:
    """The stack's traffic security groups in ``vpc_id``."""
    groups: list[dict[str, Any]] = ec2.describe_security_groups(Filters=[
        *tag_filters(stack, SECURITY_GROUP_STEP), {"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    return groups


class CleanupStep:
    name = "cleanup"

    def desired(self, ctx: Context) -> None:
        return None

    def discover(self, ctx: Context) -> CleanupSeen | None:
        vpc_id = ready(ctx.stack.vpc_id)
        if vpc_id is None:
            return None
        instances = find_instances(ctx.aws.ec2, ctx.stack.name)
        groups = find_security_groups(ctx.aws.ec2, ctx.stack.name, vpc_id)
        if not instances and not groups:
            return None
        return CleanupSeen(tuple(i["InstanceId"] for i in instances), tuple(g["GroupId"] for g in groups),
                           tuple(i.get("PrivateIpAddress", "") for i in instances))

    def plan(self, want: None, have: CleanupSeen | None) -> list[Change]:
        return []      # nothing to converge: simulate-reject launches, down removes

    def apply(self, ctx: Context, change: Change) -> CleanupSeen | None:
        ec2 = ctx.aws.ec2
        ids = list(change.params["ids"])
        before: CleanupSeen | None = change.before
        if change.kind == "instances":
            ec2.terminate_instances(InstanceIds=ids)
            ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 5, "MaxAttempts": 60})
            return replace(before, instances=(), private_ips=()) if before and before.security_groups else None
        if change.kind == "security_groups":
            for group_id in ids:
                ec2.delete_security_group(GroupId=group_id)
            return None
        raise ValueError(f"cleanup: unknown change {change.kind!r}")

    def plan_destroy(self, have: CleanupSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None:
            return []
        changes = []
        if have.instances:
            changes.append(Change(self.name, "delete", f"instance {', '.join(have.instances)}", "down",
                                  {"kind": "instances", "ids": have.instances}))
        if have.security_groups:
            changes.append(Change(self.name, "delete", f"security group {', '.join(have.security_groups)}", "down",
                                  {"kind": "security_groups", "ids": have.security_groups}))
        return changes

    def publish(self, stack: Stack, have: CleanupSeen | None) -> None:
        pass          # no output: nothing reads it

    def found(self, have: CleanupSeen | None) -> str | None:
        if have is None:
            return "no traffic instance (simulate-reject --mode instance launches one)"
        return f"instances {', '.join(have.instances) or '-'}, security groups {', '.join(have.security_groups) or '-'}"

    def status(self, have: CleanupSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        return StatusDetail(ids={**{f"instance:{i}": i for i in have.instances},
                                 **{f"security_group:{g}": g for g in have.security_groups}})
