"""traffic: the instance and security group that ``simulate-reject --mode instance`` launches.

``up`` never creates them (simulate-reject does; it is not idempotent); this step exists so that
``status`` shows them and ``down`` removes them: instances tagged ``flowwatch:step=instance`` are
terminated (and waited for), then the security group tagged ``flowwatch:step=security_group``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowwatch.model import Change, Context, Stack
from flowwatch.naming import tag_filters
from flowwatch.steps.base import pending

LIVE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


@dataclass(frozen=True)
class TrafficSeen:
    instances: tuple[str, ...]
    security_groups: tuple[str, ...]
    private_ips: tuple[str, ...] = ()


def find_instances(ctx: Context, states: list[str] = LIVE_STATES) -> list[dict]:
    reservations = ctx.aws.ec2.describe_instances(Filters=[
        *tag_filters(ctx.stack.name, "instance"), {"Name": "instance-state-name", "Values": states}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def find_security_groups(ctx: Context) -> list[dict]:
    return ctx.aws.ec2.describe_security_groups(Filters=[
        *tag_filters(ctx.stack.name, "security_group"),
        {"Name": "vpc-id", "Values": [ctx.stack.vpc_id]}])["SecurityGroups"]


class TrafficStep:
    name = "traffic"

    def desired(self, ctx: Context) -> None:
        return None

    def discover(self, ctx: Context) -> TrafficSeen | None:
        if pending(ctx.stack.vpc_id):
            return None
        instances = find_instances(ctx)
        groups = find_security_groups(ctx)
        if not instances and not groups:
            return None
        return TrafficSeen(tuple(i["InstanceId"] for i in instances), tuple(g["GroupId"] for g in groups),
                           tuple(i.get("PrivateIpAddress", "") for i in instances))

    def plan(self, want: None, have: TrafficSeen | None) -> list[Change]:
        return []

    def apply(self, ctx: Context, change: Change, have: TrafficSeen | None) -> TrafficSeen | None:
        ec2 = ctx.aws.ec2
        if change.params["kind"] == "instances":
            ids = list(change.params["ids"])
            ec2.terminate_instances(InstanceIds=ids)
            ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 5, "MaxAttempts": 60})
            return TrafficSeen((), have.security_groups if have else ())
        for group_id in change.params["ids"]:
            ec2.delete_security_group(GroupId=group_id)
        return None

    def plan_destroy(self, have: TrafficSeen | None, ctx: Context) -> list[Change]:
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

    def publish(self, stack: Stack, have: TrafficSeen | None) -> None:
        pass

    def found(self, have: TrafficSeen | None) -> str | None:
        if have is None:
            return "no traffic instance (simulate-reject --mode instance launches one)"
        return f"instances {', '.join(have.instances) or '-'}, security groups {', '.join(have.security_groups) or '-'}"
