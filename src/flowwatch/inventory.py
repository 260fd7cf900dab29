"""Everything tagged for the stack, and what of it the config does not account for ("extras").

The steps find the stack's resources by the config's names and the step tags; this module finds the rest:
the Resource Groups Tagging API (GetResources filtered by ``flowwatch:stack=<stack>`` and the resource types
flowwatch creates, Contributor Insights rules included: ``...:insight-rule/<name>``), plus what that API does
not cover (anomaly detectors cannot be tagged: their step finds them by metric): IAM roles (ListRoles, then ListRoleTags on the roles
VPC Flow Logs may assume) and metric filters (DescribeMetricFilters on the log groups found). Whatever the
steps did not discover is an extra:

- ``duplicate of <id>``: a second tagged copy of a resource with a generated id (two VPCs after two ``up`` at
  once); the primary is the one the steps picked (the VPC with the stack's gateway attached, else the lowest id);
- ``orphaned (not in the config)``: tagged for the stack under a name the config no longer uses.

Each extra is re-read through its step's own ``discover`` (name-keyed resources: ownership tag checked again)
and removed by its step's own ``plan_destroy``/``apply``, so ``down`` and ``up --prune`` remove them in the
steps' order with the steps' checks and refusals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from flowwatch.errors import OwnershipError, error_code
from flowwatch.model import Change, Context, DestroyOptions, Stack
from flowwatch.naming import STACK_TAG, Names

ORPHANED = "orphaned (not in the config)"

#: the Tagging API's resource types of everything flowwatch tags (IAM roles are not covered by it)
RESOURCE_TYPES = ("ec2:vpc", "ec2:subnet", "ec2:internet-gateway", "ec2:vpc-flow-log", "ec2:instance",
                  "ec2:security-group", "logs:log-group", "s3", "sns", "cloudwatch:alarm", "cloudwatch:dashboard",
                  "cloudwatch:insight-rule",
                  "glue:database",
                  "athena:workgroup",
                  "ec2:flow-logs")      # moto's ARN of a flow log (AWS: vpc-flow-log/fl-...)
FLOW_LOGS_PRINCIPAL = "vpc-flow-logs.amazonaws.com"

# EC2 resource type (from the ARN) -> (step that removes it, label)
EC2_KINDS = {"vpc": ("vpc", "vpc"), "subnet": ("subnet", "subnet"), "internet-gateway": ("igw", "internet gateway"),
             "vpc-flow-log": ("flow_logs", "flow log"), "flow-logs": ("flow_logs", "flow log"), "instance": ("cleanup", "instance"),
             "security-group": ("cleanup", "security group")}


@dataclass(frozen=True)
class Extra:
    """One resource tagged for the stack that the config does not account for, and how to remove it."""

    step: str                       # the step whose code removes it
    kind: str                       # "vpc", "log group", "IAM role"...
    id: str                         # id, name or ARN as the user would look it up
    state: str                      # ORPHANED, or "duplicate of <id>"
    changes: tuple[Change, ...] = ()
    refused: str | None = None      # why its step will not remove it (foreign content inside...)

    def as_dict(self) -> dict[str, str]:
        return {"step": self.step, "kind": self.kind, "id": self.id, "state": self.state,
                **({"refused": self.refused} if self.refused else {})}


def tagged(ctx: Context) -> list[str]:
    """The ARNs the Tagging API lists for the stack's tag (every page), of the types flowwatch creates.

    Filtered here rather than with ResourceTypeFilters: one call either way, and the local AWS (moto) does not
    match every type filter (``logs:log-group``)."""
    arns: list[str] = []
    pages = ctx.aws.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
        TagFilters=[{"Key": STACK_TAG, "Values": [ctx.stack.name]}])
    for page in pages:
        arns += [r["ResourceARN"] for r in page.get("ResourceTagMappingList", ()) if _type_of(r["ResourceARN"])
                 in RESOURCE_TYPES]
    return arns


def _type_of(arn: str) -> str:
    """The Tagging API's resource type of ``arn``: "ec2:vpc", "logs:log-group", "s3"..."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return ""
    service, resource = parts[2], parts[5]
    if service in ("s3", "sns"):
        return service
    return f"{service}:{resource.replace('/', ':').split(':', 1)[0]}"


def tagged_roles(ctx: Context) -> list[str]:
    """Names of the IAM roles tagged for the stack (only roles VPC Flow Logs can assume are read for tags)."""
    from flowwatch.steps.base import tag_map

    iam = ctx.aws.iam
    names = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if FLOW_LOGS_PRINCIPAL not in str(role.get("AssumeRolePolicyDocument", "")):
                continue
            if tag_map(iam.list_role_tags(RoleName=role["RoleName"])["Tags"]).get(STACK_TAG) == ctx.stack.name:
                names.append(role["RoleName"])
    return names


def known_ids(seen: Mapping[str, Any]) -> set[str]:
    """Every id, name and ARN the steps discovered (their status ``ids``)."""
    from flowwatch.steps import ALL_STEPS

    steps = {s.name: s for s in ALL_STEPS}
    return {str(v) for name, have in seen.items() if name in steps
            for v in steps[name].status(have).ids.values() if v}


def _with_name(ctx: Context, kind: str, name: str) -> Context:
    """``ctx`` as if the config named ``kind`` ``name``: a step's own discover then re-reads that resource."""
    overrides = {**dict(ctx.names.overrides), kind: name}
    return replace(ctx, names=Names(ctx.stack.name, tuple(sorted(overrides.items()))),
                   stack=Stack(ctx.stack.name, account=ctx.stack.account))


def find(ctx: Context, seen: Mapping[str, Any], options: DestroyOptions | None = None, *,
         strict: bool = True) -> list[Extra]:
    """The stack's extras, given what the steps discovered (``seen``: step name -> discover's result), each with
    the changes that remove it, in the order ``down`` runs the steps. A step's refusal to remove one (foreign
    content inside it...) raises when ``strict`` (``down``, ``up --prune``); otherwise the extra is listed with
    the refusal in ``refused`` and no changes (``status``, ``up``)."""
    from flowwatch.steps import ALL_STEPS, ATHENA, CLEANUP, DELIVERY_ROLE, IGW, LOG_GROUP, METRIC_FILTER, SNS
    from flowwatch.steps import BUCKET, ALARM, DASHBOARD, INSIGHT_RULE
    from flowwatch.steps.alarm import AlarmSeen
    from flowwatch.steps.insight_rule import InsightSeen
    from flowwatch.steps.cleanup import CleanupSeen
    from flowwatch.steps.igw import IgwSeen, main_route
    from flowwatch.steps.metric_filter import FilterSeen

    options = options or ctx.destroy_options
    refusals: list[str] = []

    def destroy(step: Any, have: Any) -> tuple[Change, ...]:
        try:
            return tuple(step.plan_destroy(have, options))
        except OwnershipError as exc:
            if strict:
                raise
            refusals.append(exc.message)
            return ()

    def extra(step: str, kind: str, rid: str, state: str, changes: Any) -> Extra:
        refused = refusals.pop() if refusals else None
        return Extra(step, kind, rid, state, tuple(changes), refused)

    # up never looks for what simulate-reject launched (the cleanup step): there, instances and security
    # groups are left to down, which discovers them
    skipped = () if "cleanup" in seen else ("instance", "security-group")
    known = known_ids(seen)
    arns = tagged(ctx)
    ec2_ids: dict[str, list[str]] = {}
    named: list[tuple[str, str]] = []         # (kind, name)
    for arn in arns:
        service, resource = arn.split(":")[2], arn.split(":", 5)[5]
        if service == "ec2":
            rtype, _, rid = resource.partition("/")
            ec2_ids.setdefault(rtype, []).append(rid)
        elif service == "logs":
            named.append(("log_group", resource.removeprefix("log-group:").removesuffix(":*")))
        elif service == "s3":
            named.append(("bucket", resource))
        elif service == "sns":
            named.append(("topic", resource))
        elif service == "cloudwatch" and resource.startswith("dashboard/"):
            named.append(("dashboard", resource.removeprefix("dashboard/")))
        elif service == "cloudwatch" and resource.startswith("insight-rule/"):
            named.append(("insight_rule", resource.removeprefix("insight-rule/")))
        elif service == "cloudwatch":
            named.append(("alarm", resource.removeprefix("alarm:")))
        elif service == "glue":
            named.append(("database", resource.removeprefix("database/")))
        elif service == "athena":
            named.append(("workgroup", resource.removeprefix("workgroup/")))
    named += [("role", name) for name in tagged_roles(ctx)]

    extras: list[Extra] = []
    ec2 = ctx.aws.ec2
    candidates = sorted(i for ids in ec2_ids.values() for i in ids if i not in known)
    if candidates:       # the Tagging API lags behind EC2: re-read that each candidate still carries the tag
        still = {t["ResourceId"] for t in ec2.describe_tags(Filters=[
            {"Name": "resource-id", "Values": candidates}, {"Name": "key", "Values": [STACK_TAG]},
            {"Name": "value", "Values": [ctx.stack.name]}])["Tags"]}
        ec2_ids = {rtype: [i for i in ids if i in known or i in still] for rtype, ids in ec2_ids.items()}
    for rtype, ids in ec2_ids.items():
        if rtype not in EC2_KINDS or rtype in skipped:
            continue
        step, label = EC2_KINDS[rtype]
        primary = sorted(i for i in ids if i in known)
        for rid in sorted(i for i in ids if i not in known):
            state = f"duplicate of {primary[0]}" if primary else ORPHANED
            changes: Sequence[Change]
            if rtype == "vpc":
                changes = [Change("vpc", "delete", f"vpc {rid}", state, {"vpc_id": rid})]
            elif rtype == "subnet":
                changes = [Change("subnet", "delete", f"subnet {rid}", state, {"subnet_id": rid})]
            elif rtype in ("vpc-flow-log", "flow-logs"):
                changes = [Change("flow_logs", "delete", f"flow log {rid}", state, {"kind": "flow_log", "id": rid})]
            elif rtype == "internet-gateway":
                gws = ec2.describe_internet_gateways(InternetGatewayIds=[rid])["InternetGateways"]
                attached = next((a["VpcId"] for g in gws for a in g.get("Attachments", ())), None)
                table, target = main_route(ec2, attached) if attached else (None, None)
                # attached to a VPC that is not the stack's: the igw step's own refusal applies
                vpc_id = attached if attached in ec2_ids.get("vpc", []) else None
                changes = destroy(IGW, IgwSeen(rid, attached, table, target, vpc_id=vpc_id))
            elif rtype == "instance":
                live = ec2.describe_instances(InstanceIds=[rid])["Reservations"]
                if not [i for r in live for i in r["Instances"] if i["State"]["Name"] != "terminated"]:
                    continue
                changes = destroy(CLEANUP, CleanupSeen((rid,), ()))
            else:
                changes = destroy(CLEANUP, CleanupSeen((), (rid,)))
            extras.append(extra(step, label, rid, state, tuple(replace(c, reason=state) for c in changes)))

    log_groups: list[str] = []
    for kind, name in named:
        if name in known or any(name == k.rsplit(":", 1)[-1] for k in known if k.startswith("arn:")):
            continue
        if kind == "alarm":
            extras.append(extra("alarm", "alarm", name, ORPHANED, destroy(ALARM, {name: AlarmSeen(name, {}, "", True)})))
            continue
        if kind == "insight_rule":       # tagged for the stack (the Tagging API said so): ours
            extras.append(extra("insight_rule", "Contributor Insights rule", name, ORPHANED,
                                destroy(INSIGHT_RULE, {name: InsightSeen(name, {}, "", True)})))
            continue
        other = _with_name(ctx, kind, name)
        if kind == "dashboard":
            board = DASHBOARD.discover(other)        # global: the Tagging API may list it from another region
            if board is None or not board.ours:
                continue
            extras.append(extra("dashboard", "dashboard", name, ORPHANED, tuple(destroy(DASHBOARD, board))))
        elif kind == "log_group":
            found = LOG_GROUP.discover(other)
            if found is None or not found.ours:
                continue
            log_groups.append(name)
            extras.append(extra("log_group", "log group", name, ORPHANED,
                                tuple(destroy(LOG_GROUP, found))))
        elif kind == "bucket":
            bucket = BUCKET.discover(other)
            extras.append(extra("bucket", "S3 bucket", name, ORPHANED, tuple(destroy(BUCKET, bucket))))
        elif kind == "topic":
            topic = SNS.discover(other)
            extras.append(extra("sns", "SNS topic", name, ORPHANED, tuple(destroy(SNS, topic))))
        elif kind == "role":
            role = DELIVERY_ROLE.discover(other)
            extras.append(extra("delivery_role", "IAM role", name, ORPHANED,
                                tuple(destroy(DELIVERY_ROLE, role))))
        elif kind in ("database", "workgroup"):
            # the orphan was made under an older config: its table may carry the default name
            table = ctx.names.of("table")
            if kind == "database":
                try:
                    tables = ctx.aws.glue.get_tables(DatabaseName=name, MaxResults=2).get("TableList", [])
                except Exception as exc:
                    if error_code(exc) != "EntityNotFoundException":
                        raise
                    continue        # deleted: the Tagging API still lists a resource for a while after
                if len(tables) == 1 and tables[0]["Name"] == Names(ctx.stack.name).of("table"):
                    table = tables[0]["Name"]
            athena = ATHENA.discover(_with_name(_with_name(other, "table", table),
                                                "workgroup" if kind == "database" else "database", "\x00"))
            wanted = ("table", "database") if kind == "database" else ("workgroup",)
            label = "Glue database" if kind == "database" else "Athena workgroup"
            extras.append(extra("athena", label, name, ORPHANED,
                                [c for c in destroy(ATHENA, athena) if c.kind in wanted]))

    for group in log_groups:             # metric filters on an orphaned log group: removed before it
        filters = {}
        for page in ctx.aws.logs.get_paginator("describe_metric_filters").paginate(logGroupName=group):
            for f in page["metricFilters"]:
                filters[f["filterName"]] = FilterSeen(f["filterName"], f.get("filterPattern", ""), {}, group)
        for name, fseen in sorted(filters.items()):
            extras.append(extra("metric_filter", "metric filter", f"{group}:{name}", ORPHANED,
                                tuple(destroy(METRIC_FILTER, {name: fseen}))))

    order = [s.name for s in reversed(ALL_STEPS)]
    return sorted((e for e in extras if e.changes or e.refused), key=lambda e: (order.index(e.step), e.id))
