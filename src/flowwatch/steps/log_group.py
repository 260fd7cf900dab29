"""log_group: the CloudWatch Logs group the flow logs deliver to, with its retention and tags.

Named ``names.log_group`` (default ``/flowwatch/<stack>/flow-logs``); found by that exact name and
adopted only when it carries the stack's tag. Retention ``null`` = never expire. ``down --keep-data``
keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from flowwatch.errors import OwnershipError, error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tag_dict
from flowwatch.steps.base import when_visible


@dataclass(frozen=True)
class LogGroupSpec:
    name: str
    arn: str
    retention: int | None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogGroupSeen:
    name: str
    arn: str
    retention: int | None
    ours: bool


def log_group_arn(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:logs:{region}:{account}:log-group:{name}"


class LogGroupStep:
    name = "log_group"

    def desired(self, ctx: Context) -> LogGroupSpec:
        name = ctx.log_group
        return LogGroupSpec(name, log_group_arn(ctx.aws.partition, ctx.region, ctx.account, name),
                            ctx.config.flow_logs.retention_days, tag_dict(ctx.stack.name, self.name, name))

    def discover(self, ctx: Context) -> LogGroupSeen | None:
        name = ctx.log_group
        groups = ctx.aws.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            return None
        arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
        group_tags = ctx.aws.logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        return LogGroupSeen(name, arn, group.get("retentionInDays"), group_tags.get(STACK_TAG) == ctx.stack.name)

    def plan(self, want: LogGroupSpec, have: LogGroupSeen | None) -> list[Change]:
        if have is None:
            return [Change(self.name, "create", f"log group {want.name} (retention {want.retention or 'never'})",
                           "not found", {"kind": "log_group"}, spec=want)]
        if not have.ours:
            raise OwnershipError(f"log_group: log group {want.name} exists and is not the stack's",
                                 hint="set names.log_group to another name, or use another --stack")
        if have.retention != want.retention:
            return [Change(self.name, "update", f"log group {want.name}",
                           f"retention {have.retention or 'never'} -> {want.retention or 'never'}",
                           {"kind": "retention"}, spec=want)]
        return []

    def apply(self, ctx: Context, change: Change) -> LogGroupSeen | None:
        logs = ctx.aws.logs
        if change.action == "delete":
            try:
                logs.delete_log_group(logGroupName=change.params["name"])
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
            return None
        spec: LogGroupSpec = change.spec
        if change.kind == "log_group":
            logs.create_log_group(logGroupName=spec.name, tags=spec.tags)
            if spec.retention:
                retention = spec.retention
                when_visible(ctx.poll, lambda: logs.put_retention_policy(logGroupName=spec.name,
                                                                         retentionInDays=retention),
                             "log_group", f"log group {spec.name} to be visible")
            return LogGroupSeen(spec.name, spec.arn, spec.retention, True)
        # retention
        if spec.retention:
            logs.put_retention_policy(logGroupName=spec.name, retentionInDays=spec.retention)
        else:
            logs.delete_retention_policy(logGroupName=spec.name)
        before: LogGroupSeen | None = change.before
        return replace(before, retention=spec.retention) if before else LogGroupSeen(spec.name, spec.arn,
                                                                                     spec.retention, True)

    def plan_destroy(self, have: LogGroupSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or not have.ours or options.keep_data:
            return []
        return [Change(self.name, "delete", f"log group {have.name}", "down", {"kind": "log_group", "name": have.name})]

    def publish(self, stack: Stack, have: LogGroupSeen | None) -> None:
        # Only the stack's own: later steps (metric filters on the log group...) never act on a foreign one.
        stack.log_group_arn = have.arn if have and have.ours else PENDING

    def found(self, have: LogGroupSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.name} (retention {have.retention or 'never'})"

    def status(self, have: LogGroupSeen | None) -> StatusDetail:
        return StatusDetail(ids={"log_group": have.name, "arn": have.arn} if have else {})
