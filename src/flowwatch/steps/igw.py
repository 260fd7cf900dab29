"""igw: an internet gateway attached to the VPC, and the route 0.0.0.0/0 to it in the main route table.

The gateway is found by its flowwatch tags; the route by destination in the VPC's main route table
(a route to another gateway there is not ours and is never replaced). Read-only in an adopted VPC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flowwatch.errors import FlowwatchError, OwnershipError
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.naming import tag_filters, tag_spec
from flowwatch.steps.base import missing, one, ready, when_visible

DEFAULT_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class IgwSpec:
    managed: bool                  # False in an adopted VPC: read-only
    vpc_id: str | Pending | None = None
    stack: str = ""
    name: str = ""


@dataclass(frozen=True)
class IgwSeen:
    id: str | None                 # None: no gateway of ours (adopted VPC may have its own)
    attached_to: str | None
    route_table_id: str | None
    route_target: str | None       # GatewayId of the 0.0.0.0/0 route in the main table, if any
    adopted: bool = False
    vpc_id: str | None = None      # the stack's VPC, where it was looked for


def main_route(ec2: Any, vpc_id: str) -> tuple[str | None, str | None]:
    """(main route table id, GatewayId of its 0.0.0.0/0 route) of ``vpc_id``."""
    tables = ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    if not tables:
        return None, None
    table = tables[0]
    target = next((r.get("GatewayId") for r in table.get("Routes", ())
                   if r.get("DestinationCidrBlock") == DEFAULT_ROUTE), None)
    return table["RouteTableId"], target


class IgwStep:
    name = "igw"

    def desired(self, ctx: Context) -> IgwSpec:
        return IgwSpec(not ctx.config.adopted, ctx.stack.vpc_id, ctx.stack.name, ctx.names.of("igw"))

    def discover(self, ctx: Context) -> IgwSeen | None:
        vpc_id = ready(ctx.stack.vpc_id)
        if vpc_id is None:
            return None
        ec2 = ctx.aws.ec2
        if ctx.config.adopted:
            igws = ec2.describe_internet_gateways(
                Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
            igw_id = igws[0]["InternetGatewayId"] if igws else None
            table_id, target = main_route(ec2, vpc_id)
            return IgwSeen(igw_id, vpc_id if igw_id else None, table_id, target, adopted=True, vpc_id=vpc_id)
        igws = ec2.describe_internet_gateways(Filters=tag_filters(ctx.stack.name, self.name))["InternetGateways"]
        # of several copies, the one attached to the stack's VPC is the primary
        igw = one(self.name, [g for g in igws if any(a.get("VpcId") == vpc_id for a in g.get("Attachments", ()))]
                  or igws, "InternetGatewayId")
        table_id, target = main_route(ec2, vpc_id)
        if igw is None:
            return IgwSeen(None, None, table_id, target, vpc_id=vpc_id)
        attached = next((a["VpcId"] for a in igw.get("Attachments", ())
                         if a.get("State") in ("attached", "available", "attaching")), None)
        return IgwSeen(igw["InternetGatewayId"], attached, table_id, target, vpc_id=vpc_id)

    def plan(self, want: IgwSpec, have: IgwSeen | None) -> list[Change]:
        if not want.managed:
            return []
        if have is None or have.id is None:
            if have is not None and have.route_target:
                raise OwnershipError(f"igw: the main route table {have.route_table_id} already routes "
                                     f"{DEFAULT_ROUTE} to {have.route_target}, which is not the stack's",
                                     hint="remove that route, or adopt the VPC with network.vpc_id")
            # the route's gateway is the one the first change creates (the engine hands it on as ``before``)
            return [Change(self.name, "create", "internet gateway, attached to the VPC", reason="not found",
                           params={"kind": "igw"}, spec=want),
                    Change(self.name, "create", f"route {DEFAULT_ROUTE} -> internet gateway", reason="not found",
                           params={"kind": "route"}, spec=want)]
        changes = []
        if have.attached_to is None:
            changes.append(Change(self.name, "update", f"attachment of {have.id} to {have.vpc_id}", reason="detached",
                                  params={"kind": "attach", "igw_id": have.id}, spec=want))
        if have.route_target is None:
            changes.append(Change(self.name, "create", f"route {DEFAULT_ROUTE} -> {have.id}", reason="not found",
                                  params={"kind": "route", "igw_id": have.id, "table": have.route_table_id},
                                  spec=want))
        elif have.route_target != have.id:
            raise OwnershipError(f"igw: the main route table {have.route_table_id} routes {DEFAULT_ROUTE} to "
                                 f"{have.route_target}, not to the stack's {have.id}",
                                 hint="remove that route and run up again")
        return changes

    def apply(self, ctx: Context, change: Change) -> IgwSeen | None:
        ec2 = ctx.aws.ec2
        before: IgwSeen | None = change.before
        if change.action == "delete":
            if change.kind == "route":
                ec2.delete_route(RouteTableId=change.params["table"], DestinationCidrBlock=DEFAULT_ROUTE)
                return before and replace(before, route_target=None)
            if change.kind == "detach":
                ec2.detach_internet_gateway(InternetGatewayId=change.params["igw_id"], VpcId=change.params["vpc_id"])
                return before and replace(before, attached_to=None)
            ec2.delete_internet_gateway(InternetGatewayId=change.params["igw_id"])
            return None
        spec: IgwSpec = change.spec
        vpc_id = ready(spec.vpc_id)
        if vpc_id is None:
            raise FlowwatchError("igw: the stack's VPC does not exist yet; run up again")
        if change.kind == "igw":
            igw_id = ec2.create_internet_gateway(TagSpecifications=tag_spec(
                "internet-gateway", spec.stack, self.name, spec.name))["InternetGateway"]["InternetGatewayId"]
            when_visible(ctx.poll, lambda: ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id),
                         "igw", f"internet gateway {igw_id} to be visible")
            table_id, target = main_route(ec2, vpc_id)
            return IgwSeen(igw_id, vpc_id, table_id, target, vpc_id=vpc_id)
        if change.kind == "attach":
            ec2.attach_internet_gateway(InternetGatewayId=change.params["igw_id"], VpcId=vpc_id)
            assert before is not None
            return replace(before, attached_to=vpc_id)
        # route: to the gateway of the change just before this one when it was created by it
        igw_id = change.params.get("igw_id") or (before.id if before else None)
        table_id = change.params.get("table") or (before.route_table_id if before else None)
        if igw_id is None or table_id is None:
            raise FlowwatchError(f"igw: no gateway or main route table in {vpc_id} yet; run up again")
        try:
            when_visible(ctx.poll, lambda: ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=DEFAULT_ROUTE,
                                                            GatewayId=igw_id), "route", f"gateway {igw_id} to be visible")
        except Exception as exc:
            if not missing(exc, "RouteAlreadyExists"):
                raise
        return IgwSeen(igw_id, vpc_id, table_id, igw_id, vpc_id=vpc_id)

    def plan_destroy(self, have: IgwSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or have.adopted or have.id is None:
            return []
        if have.attached_to and have.attached_to != have.vpc_id:
            raise OwnershipError(f"igw: the stack's gateway {have.id} is attached to {have.attached_to}, which is not "
                                 f"the stack's VPC; down will not detach it from there",
                                 hint="detach it yourself (aws ec2 detach-internet-gateway), then run down again")
        changes = []
        if have.route_target == have.id:
            changes.append(Change(self.name, "delete", f"route {DEFAULT_ROUTE} -> {have.id}", reason="down",
                                  params={"kind": "route", "table": have.route_table_id}))
        if have.attached_to:
            changes.append(Change(self.name, "delete", f"attachment of {have.id} to {have.attached_to}", reason="down",
                                  params={"kind": "detach", "igw_id": have.id, "vpc_id": have.attached_to}))
        changes.append(Change(self.name, "delete", f"internet gateway {have.id}", reason="down",
                              params={"kind": "igw", "igw_id": have.id}))
        return changes

    def publish(self, stack: Stack, have: IgwSeen | None) -> None:
        stack.igw_id = have.id if have and have.id else PENDING
        stack.route_table_id = (have.route_table_id or PENDING) if have else PENDING

    def found(self, have: IgwSeen | None) -> str | None:
        if have is None:
            return None
        if have.adopted:
            return f"{have.id or 'no gateway'} (adopted VPC, read-only)"
        return f"{have.id} attached to {have.attached_to}, route {DEFAULT_ROUTE} in {have.route_table_id}"

    def status(self, have: IgwSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        ids = {"igw": have.id, "route_table": have.route_table_id}
        return StatusDetail(ids={k: v for k, v in ids.items() if v})
