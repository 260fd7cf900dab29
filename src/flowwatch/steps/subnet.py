"""subnet: one public subnet (default 10.0.0.0/26) in the configured AZ, public IPs on launch.

Found by its flowwatch tags. In an adopted VPC it is read-only: the subnet with ``subnet_cidr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowwatch.errors import ConfigError, DriftError, FlowwatchError, shown
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.naming import tag_filters, tag_spec
from flowwatch.steps.base import one, ready, when_visible


@dataclass(frozen=True)
class SubnetSpec:
    cidr: str
    zone: str
    adopted: bool = False
    vpc_id: str | Pending | None = None
    stack: str = ""
    name: str = ""


@dataclass(frozen=True)
class SubnetSeen:
    id: str
    cidr: str
    zone: str
    public_ip: bool
    adopted: bool = False


def check_zone(ctx: Context) -> None:
    """The configured AZ is one of the region's (DescribeAvailabilityZones, read-only), else ConfigError (exit 2)
    naming it and the region's zones: called by ``up``'s preflight before a subnet is created, so a typo'd
    zone stops ``up`` before its first change instead of at CreateSubnet, half-way through."""
    zone, region = ctx.config.availability_zone, ctx.config.region
    zones = sorted(z["ZoneName"] for z in ctx.aws.ec2.describe_availability_zones()["AvailabilityZones"]
                   if z.get("State", "available") == "available")
    if zone not in zones:
        raise ConfigError(f"network.availability_zone: {shown(zone)} is not an availability zone of {region}; "
                          f"the region's zones: {', '.join(zones) or 'none available'}")


class SubnetStep:
    name = "subnet"

    def desired(self, ctx: Context) -> SubnetSpec:
        return SubnetSpec(ctx.config.network.subnet_cidr, ctx.config.availability_zone, ctx.config.adopted,
                          vpc_id=ctx.stack.vpc_id, stack=ctx.stack.name, name=ctx.names.of("subnet"))

    def discover(self, ctx: Context) -> SubnetSeen | None:
        vpc_id = ready(ctx.stack.vpc_id)
        if vpc_id is None:
            return None
        vpc_filter = [{"Name": "vpc-id", "Values": [vpc_id]}]
        if ctx.config.adopted:
            found = ctx.aws.ec2.describe_subnets(
                Filters=vpc_filter + [{"Name": "cidr-block", "Values": [ctx.config.network.subnet_cidr]}])["Subnets"]
            subnet = one(self.name, found, "SubnetId")
            return self._seen(subnet, adopted=True) if subnet else None
        found = ctx.aws.ec2.describe_subnets(Filters=vpc_filter + tag_filters(ctx.stack.name, self.name))["Subnets"]
        subnet = one(self.name, found, "SubnetId")
        return self._seen(subnet) if subnet else None

    @staticmethod
    def _seen(subnet: dict[str, Any], adopted: bool = False) -> SubnetSeen:
        return SubnetSeen(subnet["SubnetId"], subnet["CidrBlock"], subnet["AvailabilityZone"],
                          bool(subnet.get("MapPublicIpOnLaunch")), adopted)

    def plan(self, want: SubnetSpec, have: SubnetSeen | None) -> list[Change]:
        if want.adopted:
            return []
        if have is None:
            return [Change(self.name, "create", f"subnet {want.cidr} in {want.zone}", reason="not found", spec=want)]
        if (have.cidr, have.zone) != (want.cidr, want.zone):
            raise DriftError(f"subnet: {have.id} is {have.cidr} in {have.zone}, the config wants {want.cidr} in "
                             f"{want.zone}", hint="a subnet can't move; run `flowwatch down` first")
        if not have.public_ip:
            return [Change(self.name, "update", f"subnet {have.id}", reason="public IPs on launch off -> on",
                           params={"subnet_id": have.id}, spec=want)]
        return []

    def apply(self, ctx: Context, change: Change) -> SubnetSeen | None:
        ec2 = ctx.aws.ec2
        if change.action == "delete":
            ec2.delete_subnet(SubnetId=change.params["subnet_id"])
            return None
        spec: SubnetSpec = change.spec
        if change.action == "create":
            vpc_id = ready(spec.vpc_id)
            if vpc_id is None:
                raise FlowwatchError("subnet: the stack's VPC does not exist yet; run up again")
            subnet = when_visible(ctx.poll, lambda: ec2.create_subnet(
                VpcId=vpc_id, CidrBlock=spec.cidr, AvailabilityZone=spec.zone,
                TagSpecifications=tag_spec("subnet", spec.stack, self.name, spec.name)), "vpc",
                f"vpc {vpc_id} to be visible")["Subnet"]
            subnet_id = subnet["SubnetId"]
        else:
            subnet_id = change.params["subnet_id"]
        when_visible(ctx.poll, lambda: ec2.modify_subnet_attribute(SubnetId=subnet_id,
                                                                   MapPublicIpOnLaunch={"Value": True}),
                     "subnet", f"subnet {subnet_id} to be visible")
        return SubnetSeen(subnet_id, spec.cidr, spec.zone, True)

    def plan_destroy(self, have: SubnetSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or have.adopted:
            return []
        return [Change(self.name, "delete", f"subnet {have.id}", reason="down", params={"subnet_id": have.id})]

    def publish(self, stack: Stack, have: SubnetSeen | None) -> None:
        stack.subnet_id = have.id if have else PENDING

    def found(self, have: SubnetSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.id} ({have.cidr} in {have.zone}{', adopted, read-only' if have.adopted else ''})"

    def status(self, have: SubnetSeen | None) -> StatusDetail:
        return StatusDetail(ids={"subnet": have.id} if have else {})
