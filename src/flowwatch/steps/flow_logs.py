"""flow_logs: the VPC's two flow logs, sharing one record format, tagged ``flowwatch:step=flow_logs``.

- one to the log group (step ``log_group``) with the delivery role (step ``delivery_role``);
- one to the bucket (step ``bucket``), no role, with the Parquet / Hive / per-hour options.

Found by the VPC's id and the stack's tags, one per destination type (more is an error). Flow logs can't be
modified: a changed setting replaces them. moto drops DestinationOptions, so flowwatch keeps its own copy in
the tag ``flowwatch.s3layout.S3_OPTIONS_TAG`` (read back when describe does not return them). Creating the
flow log with a role made a moment ago retries IAM's propagation error, and only that one. Each CreateFlowLogs
carries a ClientToken of the run, the destination and the attempt (``Context.client_token``): botocore's retries of
one attempt resend it, so a lost answer never makes a second flow log; the IAM retry is a new attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flowwatch.aws import wait_until
from flowwatch.errors import AwsError, FlowwatchError, error_code
from flowwatch.model import PENDING, Change, Context, Delivery, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.naming import tag_filters, tags
from flowwatch.s3layout import S3_OPTIONS_TAG, parse_s3_options_tag, s3_options_tag
from flowwatch.steps.base import one, ready, tag_map

CWL = "cloud-watch-logs"
S3 = "s3"


@dataclass(frozen=True)
class FlowLogsSpec:
    log_group: str
    bucket: str
    log_format: str
    traffic_type: str
    aggregation: int
    s3_options: dict[str, Any]
    s3_destination: str = ""
    vpc_id: str | Pending | None = None
    role_arn: str | Pending | None = None
    stack: str = ""
    names: dict[str, str] = field(default_factory=dict)      # destination type -> Name tag


@dataclass(frozen=True)
class FlowLogSeen:
    id: str
    dest_type: str
    destination: str | None
    log_format: str
    traffic_type: str
    aggregation: int
    s3_options: dict[str, Any]
    role_arn: str | None
    status: str | None
    error: str | None


@dataclass(frozen=True)
class FlowLogsSeen:
    cwl: FlowLogSeen | None = None
    s3: FlowLogSeen | None = None

    def of(self, dest: str) -> FlowLogSeen | None:
        return self.cwl if dest == CWL else self.s3


class FlowLogsStep:
    name = "flow_logs"

    def desired(self, ctx: Context) -> FlowLogsSpec:
        cfg = ctx.config.flow_logs
        layout = ctx.s3_layout()
        return FlowLogsSpec(
            log_group=ctx.log_group, bucket=ctx.bucket, log_format=ctx.config.record_format.log_format(),
            traffic_type=cfg.traffic_type, aggregation=cfg.aggregation_seconds,
            s3_options=dict(layout.destination_options()), s3_destination=layout.log_destination(ctx.aws.partition),
            vpc_id=ctx.stack.vpc_id, role_arn=ctx.stack.role_arn, stack=ctx.stack.name,
            names={CWL: ctx.names.of("flow_log_cwl"), S3: ctx.names.of("flow_log_s3")})

    # ----- discover (reads only) -----
    def discover(self, ctx: Context) -> FlowLogsSeen | None:
        vpc_id = ready(ctx.stack.vpc_id)
        if vpc_id is None:
            return None
        logs = ctx.aws.ec2.describe_flow_logs(Filters=[
            {"Name": "resource-id", "Values": [vpc_id]}, *tag_filters(ctx.stack.name, self.name)[:1]])
        found: dict[str, list[dict[str, Any]]] = {CWL: [], S3: []}
        for fl in logs["FlowLogs"]:
            found.setdefault(fl.get("LogDestinationType", CWL), []).append(fl)
        cwl = one(self.name, found[CWL], "FlowLogId")
        s3 = one(self.name, found[S3], "FlowLogId")
        if cwl is None and s3 is None:
            return None
        return FlowLogsSeen(cwl=_flow_log(cwl) if cwl else None, s3=_flow_log(s3) if s3 else None)

    # ----- plan (pure) -----
    def plan(self, want: FlowLogsSpec, have: FlowLogsSeen | None) -> list[Change]:
        have = have or FlowLogsSeen()
        changes = []
        for dest in (CWL, S3):
            seen = have.of(dest)
            label = f"flow log -> {'log group' if dest == CWL else 'S3'}"
            if seen is None:
                changes.append(Change(self.name, "create", label, "not found", {"kind": "flow_log", "dest": dest},
                                      spec=want))
                continue
            diff = _diff(want, seen)
            if diff:
                changes.append(Change(self.name, "update", f"{label} {seen.id}", f"{diff} (replace)",
                                      {"kind": "flow_log", "dest": dest, "replace": seen.id}, spec=want))
        return changes

    # ----- apply (the only mutations) -----
    def apply(self, ctx: Context, change: Change) -> FlowLogsSeen | None:
        ec2 = ctx.aws.ec2
        before: FlowLogsSeen = change.before or FlowLogsSeen()
        if change.action == "delete":
            try:
                ec2.delete_flow_logs(FlowLogIds=[change.params["id"]])
            except Exception as exc:
                if error_code(exc) != "InvalidFlowLogId.NotFound":
                    raise
            after = replace(before, **{k: None for k in ("cwl", "s3")
                                       if (fl := getattr(before, k)) is not None and fl.id == change.params["id"]})
            return after if after.cwl or after.s3 else None
        spec: FlowLogsSpec = change.spec
        dest: str = change.params["dest"]
        vpc_id = ready(spec.vpc_id)
        if vpc_id is None:
            raise FlowwatchError("flow_logs: the stack's VPC does not exist yet; run up again")
        if change.params.get("replace"):
            ec2.delete_flow_logs(FlowLogIds=[change.params["replace"]])
        flow_tags = tags(spec.stack, self.name, spec.names[dest])
        args: dict[str, Any] = dict(ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=spec.traffic_type,
                                    LogFormat=spec.log_format, MaxAggregationInterval=spec.aggregation)
        role_arn: str | None = None
        if dest == S3:
            flow_tags.append({"Key": S3_OPTIONS_TAG, "Value": s3_options_tag(spec.s3_options)})
            args.update(LogDestinationType=S3, LogDestination=spec.s3_destination, DestinationOptions=spec.s3_options)
        else:
            role_arn = ready(spec.role_arn)
            if role_arn is None:
                raise FlowwatchError("flow_logs: the delivery role does not exist yet; run up again")
            args.update(LogDestinationType=CWL, LogGroupName=spec.log_group, DeliverLogsPermissionArn=role_arn)
        args["TagSpecifications"] = [{"ResourceType": "vpc-flow-log", "Tags": flow_tags}]

        attempts = [0]       # a new ClientToken for each attempt after a definitive answer (the IAM retry)

        def create() -> str | None:
            attempts[0] += 1
            resp = ec2.create_flow_logs(**args, ClientToken=ctx.client_token("CreateFlowLogs", dest, attempts[0]))
            if resp.get("FlowLogIds"):
                return str(resp["FlowLogIds"][0])
            err = (resp.get("Unsuccessful") or [{}])[0].get("Error", {})
            message = err.get("Message", "no flow log id returned")
            if "role" in message.lower() and "assume" in message.lower():
                return None  # IAM propagation: the new role is not assumable yet
            raise AwsError(f"flow_logs: CreateFlowLogs failed: {err.get('Code', '?')}: {message}")

        poll = ctx.poll
        flow_log_id = wait_until(create, timeout=poll.timeout or 60.0, interval=3, sleep=poll.sleep, clock=poll.clock,
                                 what="the new IAM role to be assumable")
        seen = FlowLogSeen(flow_log_id, dest, spec.bucket if dest == S3 else spec.log_group, spec.log_format,
                           spec.traffic_type, spec.aggregation, spec.s3_options if dest == S3 else {}, role_arn,
                           None, None)
        return replace(before, **{"cwl" if dest == CWL else "s3": seen})

    def plan_destroy(self, have: FlowLogsSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None:
            return []
        return [Change(self.name, "delete", f"flow log {fl.id} -> {fl.dest_type}", "down",
                       {"kind": "flow_log", "id": fl.id}) for fl in (have.cwl, have.s3) if fl]

    def publish(self, stack: Stack, have: FlowLogsSeen | None) -> None:
        stack.flow_log_ids = {fl.dest_type: fl.id for fl in (have.cwl, have.s3) if fl} if have else PENDING

    def found(self, have: FlowLogsSeen | None) -> str | None:
        if have is None:
            return None
        return ", ".join(f"{fl.id} ({fl.dest_type})" for fl in (have.cwl, have.s3) if fl) or None

    def status(self, have: FlowLogsSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        flow_logs = [fl for fl in (have.cwl, have.s3) if fl]
        return StatusDetail(deliveries=tuple(Delivery(fl.id, fl.dest_type, fl.status, fl.error) for fl in flow_logs),
                            ids={fl.dest_type: fl.id for fl in flow_logs})


def _flow_log(fl: dict[str, Any]) -> FlowLogSeen:
    opts = fl.get("DestinationOptions") or parse_s3_options_tag(tag_map(fl.get("Tags")).get(S3_OPTIONS_TAG))
    if fl.get("LogDestinationType") != S3:
        opts = {}
    return FlowLogSeen(
        id=fl["FlowLogId"], dest_type=fl.get("LogDestinationType", CWL),
        destination=fl.get("LogGroupName") or fl.get("LogDestination"), log_format=fl.get("LogFormat", ""),
        traffic_type=fl.get("TrafficType", ""), aggregation=int(fl.get("MaxAggregationInterval", 600)),
        s3_options={k: opts.get(k) for k in ("FileFormat", "HiveCompatiblePartitions", "PerHourPartition")}
        if opts else {}, role_arn=fl.get("DeliverLogsPermissionArn"),
        status=fl.get("DeliverLogsStatus"), error=fl.get("DeliverLogsErrorMessage"))


def _diff(want: FlowLogsSpec, seen: FlowLogSeen) -> str | None:
    """Why an existing flow log must be replaced (None: it matches)."""
    if seen.log_format != want.log_format:
        return "record format differs"
    if seen.traffic_type != want.traffic_type:
        return f"traffic {seen.traffic_type} -> {want.traffic_type}"
    if seen.aggregation != want.aggregation:
        return f"aggregation {seen.aggregation} -> {want.aggregation} s"
    if seen.dest_type == S3:
        if seen.s3_options and seen.s3_options != want.s3_options:
            return "S3 options differ"
        if seen.destination and not seen.destination.rstrip("/").endswith(f":::{want.bucket}"):
            return "bucket differs"
    elif seen.destination != want.log_group:
        return "log group differs"
    return None
