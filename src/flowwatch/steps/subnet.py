"""subnet: one public subnet (default 10.0.0.0/26) in the configured AZ, public IPs on launch.

Found by its flowwatch tags. In an adopted VPC it is read-only: the subnet with ``subnet_cidr``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowwatch.errors import DriftError
from flowwatch.model import PENDING, Change, Context, Stack
from flowwatch.naming import tag_filters, tag_spec
from flowwatch.steps.base import one, pending, when_visible


@dataclass(frozen=True)
class SubnetSpec:
    cidr: str
    zone: str
    adopted: bool = False


@dataclass(frozen=True)
class SubnetSeen:
    id: str
    cidr: str
    zone: str
    public_ip: bool
    adopted: bool = False


class SubnetStep:
    name = "subnet"

    def desired(self, ctx: Context) -> SubnetSpec:
        return SubnetSpec(ctx.config.network.subnet_cidr, ctx.config.availability_zone, ctx.config.adopted)

    def discover(self, ctx: Context) -> SubnetSeen | None:
        if pending(ctx.stack.vpc_id):
            return None
        vpc_filter = [{"Name": "vpc-id", "Values": [ctx.stack.vpc_id]}]
        if ctx.config.adopted:
            found = ctx.aws.ec2.describe_subnets(
                Filters=vpc_filter + [{"Name": "cidr-block", "Values": [ctx.config.network.subnet_cidr]}])["Subnets"]
            subnet = one(self.name, found, "SubnetId")
            return self._seen(subnet, adopted=True) if subnet else None
        found = ctx.aws.ec2.describe_subnets(Filters=vpc_filter + tag_filters(ctx.stack.name, self.name))["Subnets"]
        subnet = one(self.name, found, "SubnetId")
        return self._seen(subnet) if subnet else None

    @staticmethod
    def _seen(subnet: dict, adopted: bool = False) -> SubnetSeen:
        return SubnetSeen(subnet["SubnetId"], subnet["CidrBlock"], subnet["AvailabilityZone"],
                          bool(subnet.get("MapPublicIpOnLaunch")), adopted)

    def plan(self, want: SubnetSpec, have: SubnetSeen | None) -> list[Change]:
        if want.adopted:
            return []
        if have is None:
            return [Change(self.name, "create", f"subnet {want.cidr} in {want.zone}", reason="not found")]
        if (have.cidr, have.zone) != (want.cidr, want.zone):
            raise DriftError(f"subnet: {have.id} is {have.cidr} in {have.zone}, the config wants {want.cidr} in "
                             f"{want.zone}", hint="a subnet can't move; run `flowwatch down` first")
        if not have.public_ip:
            return [Change(self.name, "update", f"subnet {have.id}", reason="public IPs on launch off -> on",
                           params={"subnet_id": have.id})]
        return []

    def apply(self, ctx: Context, change: Change, have: SubnetSeen | None) -> SubnetSeen | None:
        ec2 = ctx.aws.ec2
        if change.action == "delete":
            ec2.delete_subnet(SubnetId=change.params["subnet_id"])
            return None
        if change.action == "create":
            name = ctx.names.of("subnet")
            subnet = when_visible(ctx, lambda: ec2.create_subnet(
                VpcId=ctx.stack.vpc_id, CidrBlock=ctx.config.network.subnet_cidr,
                AvailabilityZone=ctx.config.availability_zone,
                TagSpecifications=tag_spec("subnet", ctx.stack.name, self.name, name)), "vpc",
                f"vpc {ctx.stack.vpc_id} to be visible")["Subnet"]
            subnet_id = subnet["SubnetId"]
        else:
            subnet_id = change.params["subnet_id"]
        when_visible(ctx, lambda: ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True}),
                     "subnet", f"subnet {subnet_id} to be visible")
        return SubnetSeen(subnet_id, ctx.config.network.subnet_cidr, ctx.config.availability_zone, True)

    def plan_destroy(self, have: SubnetSeen | None, ctx: Context) -> list[Change]:
        if have is None or have.adopted:
            return []
        return [Change(self.name, "delete", f"subnet {have.id}", reason="down", params={"subnet_id": have.id})]

    def publish(self, stack: Stack, have: SubnetSeen | None) -> None:
        stack.subnet_id = have.id if have else PENDING

    def found(self, have: SubnetSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.id} ({have.cidr} in {have.zone}{', adopted, read-only' if have.adopted else ''})"
