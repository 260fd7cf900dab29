"""vpc: the stack's VPC (default 10.0.0.0/24), found again by its flowwatch tags.

Or, with ``network.vpc_id``, an existing VPC adopted read-only: never created, changed or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowwatch.errors import DriftError, FlowwatchError
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import tag_filters, tag_spec
from flowwatch.steps.base import missing, one


@dataclass(frozen=True)
class VpcSpec:
    cidr: str
    adopt_id: str | None = None
    stack: str = ""
    name: str = ""


@dataclass(frozen=True)
class VpcSeen:
    id: str
    cidr: str
    adopted: bool = False


class VpcStep:
    name = "vpc"

    def desired(self, ctx: Context) -> VpcSpec:
        return VpcSpec(cidr=ctx.config.network.vpc_cidr, adopt_id=ctx.config.network.vpc_id, stack=ctx.stack.name,
                       name=ctx.names.of("vpc"))

    def discover(self, ctx: Context) -> VpcSeen | None:
        vpc_id = ctx.config.network.vpc_id
        if vpc_id:
            try:
                vpcs = ctx.aws.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
            except Exception as exc:
                if missing(exc, "InvalidVpcID.NotFound"):
                    raise FlowwatchError(f"vpc: network.vpc_id {vpc_id} does not exist in {ctx.region}",
                                         hint="check the id and the region") from None
                raise
            return VpcSeen(vpcs[0]["VpcId"], vpcs[0]["CidrBlock"], adopted=True)
        vpcs = ctx.aws.ec2.describe_vpcs(Filters=tag_filters(ctx.stack.name, self.name))["Vpcs"]
        if len(vpcs) > 1:       # copies: the primary is the one with the stack's gateway attached, else lowest id
            gateways = ctx.aws.ec2.describe_internet_gateways(Filters=tag_filters(ctx.stack.name, "igw"))
            attached = {a["VpcId"] for g in gateways["InternetGateways"] for a in g.get("Attachments", ())}
            vpcs = [v for v in vpcs if v["VpcId"] in attached] or vpcs
        vpc = one(self.name, vpcs, "VpcId")
        return VpcSeen(vpc["VpcId"], vpc["CidrBlock"]) if vpc else None

    def plan(self, want: VpcSpec, have: VpcSeen | None) -> list[Change]:
        if want.adopt_id:
            return []
        if have is None:
            return [Change(self.name, "create", f"vpc {want.cidr}", reason="not found", spec=want)]
        if have.cidr != want.cidr:
            raise DriftError(f"vpc: {have.id} has {have.cidr}, the config wants {want.cidr}",
                             hint="a VPC's CIDR can't change in place; run `flowwatch down` first")
        return []

    def apply(self, ctx: Context, change: Change) -> VpcSeen | None:
        ec2 = ctx.aws.ec2
        if change.action == "delete":
            ec2.delete_vpc(VpcId=change.params["vpc_id"])
            return None
        spec: VpcSpec = change.spec
        vpc = ec2.create_vpc(CidrBlock=spec.cidr,
                             TagSpecifications=tag_spec("vpc", spec.stack, self.name, spec.name))["Vpc"]
        # vpc_exists retries InvalidVpcID.NotFound (a new id not visible yet); vpc_available waits for the state.
        for waiter in ("vpc_exists", "vpc_available"):
            ec2.get_waiter(waiter).wait(VpcIds=[vpc["VpcId"]], WaiterConfig={"Delay": 2, "MaxAttempts": 30})
        return VpcSeen(vpc["VpcId"], vpc["CidrBlock"])

    def plan_destroy(self, have: VpcSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or have.adopted:
            return []
        return [Change(self.name, "delete", f"vpc {have.id}", reason="down", params={"vpc_id": have.id})]

    def publish(self, stack: Stack, have: VpcSeen | None) -> None:
        stack.vpc_id = have.id if have else PENDING
        stack.vpc_cidr = have.cidr if have else PENDING

    def found(self, have: VpcSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.id} ({have.cidr}{', adopted, read-only' if have.adopted else ''})"

    def status(self, have: VpcSeen | None) -> StatusDetail:
        return StatusDetail(ids={"vpc": have.id} if have else {})
