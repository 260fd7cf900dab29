"""flow_logs: the log group, the IAM delivery role, the S3 bucket, and the VPC's two flow logs.

Owns, and finds again by exact name (+ our stack tag) or by tags:
- log group ``names.log_group`` with retention and tags;
- IAM role ``names.role`` trusted only by ``vpc-flow-logs.amazonaws.com`` with ``aws:SourceAccount`` and
  ``aws:SourceArn`` conditions, allowed only CreateLogStream, PutLogEvents, DescribeLogGroups and
  DescribeLogStreams on that log group (no CreateLogGroup, no ``*`` resource);
- S3 bucket (default name has account and region): public access blocked, bucket-owner-enforced, SSE-S3
  default encryption, TLS-only, the log-delivery policy scoped to ``AWSLogs/<account>/`` with
  SourceAccount/SourceArn conditions, lifecycle expiry = ``retention_days``;
- two flow logs on the VPC sharing one record format: one to the log group (with the role), one to the
  bucket (no role; Parquet / Hive / per-hour options). Flow logs can't be modified: a changed setting
  replaces them. moto drops DestinationOptions, so flowwatch keeps its own copy in the tag
  ``flowwatch:s3-options`` (read back when describe does not return them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flowwatch.aws import wait_until
from flowwatch.errors import error_code
from flowwatch.errors import AwsError, OwnershipError
from flowwatch.model import PENDING, Change, Context, Stack
from flowwatch.naming import STACK_TAG, tag_dict, tag_filters, tags
from flowwatch.s3layout import S3_OPTIONS_TAG, parse_s3_options_tag, s3_options_tag
from flowwatch.steps.base import one, pending, policy_json, same_policy, tag_map, when_visible

ROLE_POLICY_NAME = "flowwatch-flow-log-delivery"
# An account-wide permissions boundary an administrator creates once (docs/IAM.md): when it exists, the
# delivery role is created with it, so a caller allowed to create flowwatch roles can never create one
# that does more than deliver flow logs. flowwatch reads it, never creates, changes or deletes it.
BOUNDARY_POLICY_NAME = "flowwatch-flow-logs-boundary"
LIFECYCLE_RULE_ID = "flowwatch-expire-flow-logs"
PUBLIC_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True}


# ---------- desired state ----------
@dataclass(frozen=True)
class FlowLogsSpec:
    log_group: str
    log_group_arn: str
    retention: int | None
    role_name: str
    trust: dict[str, Any]
    role_policy: dict[str, Any]
    bucket: str
    bucket_policy: dict[str, Any]
    lifecycle_days: int | None
    log_format: str
    traffic_type: str
    aggregation: int
    s3_options: dict[str, Any]
    s3_destination: str = ""
    tags: dict[str, str] = field(default_factory=dict)


def delivery_trust(partition: str, account: str, region: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "VpcFlowLogsDelivery", "Effect": "Allow",
        "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account},
                      "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"}}}]}


def delivery_policy(log_group_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "WriteOwnLogGroupOnly", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                   "logs:DescribeLogStreams"],
        "Resource": [log_group_arn, f"{log_group_arn}:*"]}]}


def bucket_policy(partition: str, bucket: str, account: str, region: str,
                  delivery_arn: str | None = None) -> dict[str, Any]:
    """AWS's documented flow-log delivery policy, scoped to where the flow logs write (``AWSLogs/<account>/``,
    or ``AWSLogs/aws-account-id=<account>/`` with Hive-compatible partitions), plus a TLS-only deny."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    delivery_arn = delivery_arn or f"{bucket_arn}/AWSLogs/{account}/*"
    source = {"StringEquals": {"aws:SourceAccount": account},
              "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{region}:{account}:*"}}
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "AWSLogDeliveryWrite", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": delivery_arn,
         "Condition": {"StringEquals": {**source["StringEquals"], "s3:x-amz-acl": "bucket-owner-full-control"},
                       "ArnLike": source["ArnLike"]}},
        {"Sid": "AWSLogDeliveryAclCheck", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": bucket_arn, "Condition": source},
    ]}


# ---------- what is there ----------
@dataclass(frozen=True)
class LogGroupSeen:
    name: str
    arn: str
    retention: int | None
    ours: bool


@dataclass(frozen=True)
class RoleSeen:
    name: str
    arn: str
    trust: Any
    policy: Any
    ours: bool
    boundary: str | None = None      # the role's permissions boundary ARN
    attached: tuple[str, ...] = ()   # managed policies someone attached (flowwatch attaches none)


@dataclass(frozen=True)
class BucketSeen:
    name: str
    ours: bool
    empty: bool = True
    public_block: dict[str, Any] | None = None
    encryption: str | None = None
    policy: Any = None
    lifecycle_days: int | None = None
    ownership: str | None = None


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
    log_group: LogGroupSeen | None = None
    role: RoleSeen | None = None
    bucket: BucketSeen | None = None
    cwl: FlowLogSeen | None = None
    s3: FlowLogSeen | None = None
    boundary: str | None = None      # ARN of the account's flowwatch boundary policy, when it exists


class FlowLogsStep:
    name = "flow_logs"

    # ----- desired -----
    def desired(self, ctx: Context) -> FlowLogsSpec:
        cfg = ctx.config.flow_logs
        account, region, part = ctx.account, ctx.region, ctx.aws.partition
        log_group = ctx.log_group
        lg_arn = f"arn:{part}:logs:{region}:{account}:log-group:{log_group}"
        bucket = ctx.bucket
        layout = ctx.s3_layout()
        return FlowLogsSpec(
            log_group=log_group, log_group_arn=lg_arn, retention=cfg.retention_days,
            role_name=ctx.names.of("role"), trust=delivery_trust(part, account, region),
            role_policy=delivery_policy(lg_arn), bucket=bucket,
            bucket_policy=bucket_policy(part, bucket, account, region, layout.delivery_resource_arn(part)),
            lifecycle_days=cfg.retention_days, log_format=ctx.config.record_format.log_format(),
            traffic_type=cfg.traffic_type, aggregation=cfg.aggregation_seconds,
            s3_options=dict(layout.destination_options()), s3_destination=layout.log_destination(part),
            tags=tag_dict(ctx.stack.name, self.name, log_group))

    # ----- discover (reads only) -----
    def discover(self, ctx: Context) -> FlowLogsSeen:
        seen = FlowLogsSeen(log_group=self._log_group(ctx), role=self._role(ctx), bucket=self._bucket(ctx),
                            boundary=self._boundary(ctx))
        if pending(ctx.stack.vpc_id):
            return seen
        logs = ctx.aws.ec2.describe_flow_logs(Filters=[
            {"Name": "resource-id", "Values": [ctx.stack.vpc_id]}, *tag_filters(ctx.stack.name, self.name)[:1]])
        found: dict[str, list[dict[str, Any]]] = {"cloud-watch-logs": [], "s3": []}
        for fl in logs["FlowLogs"]:
            found.setdefault(fl.get("LogDestinationType", "cloud-watch-logs"), []).append(fl)
        cwl = one(self.name, found["cloud-watch-logs"], "FlowLogId")
        s3 = one(self.name, found["s3"], "FlowLogId")
        return replace(seen, cwl=self._flow_log(cwl) if cwl else None, s3=self._flow_log(s3) if s3 else None)

    @staticmethod
    def _flow_log(fl: dict[str, Any]) -> FlowLogSeen:
        opts = fl.get("DestinationOptions") or parse_s3_options_tag(tag_map(fl.get("Tags")).get(S3_OPTIONS_TAG))
        if fl.get("LogDestinationType") != "s3":
            opts = {}
        return FlowLogSeen(
            id=fl["FlowLogId"], dest_type=fl.get("LogDestinationType", "cloud-watch-logs"),
            destination=fl.get("LogGroupName") or fl.get("LogDestination"), log_format=fl.get("LogFormat", ""),
            traffic_type=fl.get("TrafficType", ""), aggregation=int(fl.get("MaxAggregationInterval", 600)),
            s3_options={k: opts.get(k) for k in ("FileFormat", "HiveCompatiblePartitions", "PerHourPartition")}
            if opts else {}, role_arn=fl.get("DeliverLogsPermissionArn"),
            status=fl.get("DeliverLogsStatus"), error=fl.get("DeliverLogsErrorMessage"))

    def _log_group(self, ctx: Context) -> LogGroupSeen | None:
        name = ctx.log_group
        groups = ctx.aws.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next((g for g in groups if g["logGroupName"] == name), None)
        if group is None:
            return None
        arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
        group_tags = ctx.aws.logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
        return LogGroupSeen(name, arn, group.get("retentionInDays"), group_tags.get(STACK_TAG) == ctx.stack.name)

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
        return RoleSeen(name, role["Arn"], role.get("AssumeRolePolicyDocument"), policy, ours, boundary, attached)

    @staticmethod
    def _boundary(ctx: Context) -> str | None:
        arn = f"arn:{ctx.aws.partition}:iam::{ctx.account}:policy/{BOUNDARY_POLICY_NAME}"
        try:
            ctx.aws.iam.get_policy(PolicyArn=arn)
        except Exception as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        return arn

    def _bucket(self, ctx: Context) -> BucketSeen | None:
        s3 = ctx.aws.s3
        name = ctx.bucket
        try:
            s3.head_bucket(Bucket=name, ExpectedBucketOwner=ctx.account)
        except Exception as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return None
            if code in ("403", "AccessDenied"):
                raise OwnershipError(f"flow_logs: bucket {name} exists in another account, or you lack "
                                     f"s3:ListBucket on it",
                                     hint="bucket names are global: set names.bucket to a name of your own; "
                                          "docs/IAM.md lists the permissions flowwatch needs")
            raise
        try:
            bucket_tags = tag_map(s3.get_bucket_tagging(Bucket=name)["TagSet"])
        except Exception as exc:
            if error_code(exc) != "NoSuchTagSet":
                raise
            bucket_tags = {}
        if bucket_tags.get(STACK_TAG) != ctx.stack.name:
            return BucketSeen(name, ours=False)  # never read further, never changed
        return BucketSeen(name, True, True, self._read(s3.get_public_access_block, name,
                                                       "PublicAccessBlockConfiguration", "NoSuchPublicAccessBlockConfiguration"),
                          self._encryption(s3, name), self._read(s3.get_bucket_policy, name, "Policy", "NoSuchBucketPolicy"),
                          self._lifecycle(s3, name), self._ownership(s3, name))

    @staticmethod
    def _read(call: Any, bucket: str, key: str, missing_code: str) -> Any:
        try:
            return call(Bucket=bucket)[key]
        except Exception as exc:
            if error_code(exc) == missing_code:
                return None
            raise

    @staticmethod
    def _encryption(s3: Any, bucket: str) -> str | None:
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except Exception as exc:
            if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
                return None
            raise
        return rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else None

    @staticmethod
    def _lifecycle(s3: Any, bucket: str) -> int | None:
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except Exception as exc:
            if error_code(exc) == "NoSuchLifecycleConfiguration":
                return None
            raise
        rule = next((r for r in rules if r.get("ID") == LIFECYCLE_RULE_ID and r.get("Status") == "Enabled"), None)
        return rule["Expiration"].get("Days") if rule and "Expiration" in rule else None

    @staticmethod
    def _ownership(s3: Any, bucket: str) -> str | None:
        try:
            rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        except Exception as exc:
            if error_code(exc) == "OwnershipControlsNotFoundError":
                return None
            raise
        return rules[0]["ObjectOwnership"] if rules else None

    # ----- plan (pure) -----
    def plan(self, want: FlowLogsSpec, have: FlowLogsSeen | None) -> list[Change]:
        have = have or FlowLogsSeen()
        changes: list[Change] = []
        c = changes.append
        # log group
        lg = have.log_group
        if lg is None:
            c(Change(self.name, "create", f"log group {want.log_group} (retention {want.retention or 'never'})",
                     "not found", {"kind": "log_group"}))
        elif not lg.ours:
            raise OwnershipError(f"flow_logs: log group {want.log_group} exists and is not the stack's",
                                 hint="set names.log_group to another name, or use another --stack")
        elif lg.retention != want.retention:
            c(Change(self.name, "update", f"log group {want.log_group}",
                     f"retention {lg.retention or 'never'} -> {want.retention or 'never'}", {"kind": "retention"}))
        # role
        role = have.role
        if role is None:
            c(Change(self.name, "create", f"IAM role {want.role_name}", "not found", {"kind": "role"}))
        elif not role.ours:
            raise OwnershipError(f"flow_logs: IAM role {want.role_name} exists and is not the stack's",
                                 hint="set names.role to another name, or use another --stack")
        else:
            if not same_policy(role.trust, want.trust):
                c(Change(self.name, "update", f"IAM role {want.role_name}", "trust policy differs", {"kind": "trust"}))
            if have.boundary and role.boundary != have.boundary:
                c(Change(self.name, "update", f"IAM role {want.role_name}",
                         f"permissions boundary -> {BOUNDARY_POLICY_NAME}", {"kind": "role_boundary"}))
            if role.policy is None or not same_policy(role.policy, want.role_policy):
                c(Change(self.name, "update", f"IAM role {want.role_name}", "delivery policy differs",
                         {"kind": "role_policy"}))
        # bucket
        b = have.bucket
        if b is None:
            c(Change(self.name, "create", f"S3 bucket {want.bucket}", "not found", {"kind": "bucket"}))
        elif not b.ours:
            # flowwatch creates its bucket with its tags in CreateBucket itself, so even an interrupted run
            # leaves it tagged: an untagged bucket of this name is someone else's, even an empty one.
            raise OwnershipError(f"flow_logs: bucket {want.bucket} exists and is not tagged as the stack's",
                                 hint="set names.bucket to a bucket name of your own, or another --stack")
        else:
            for kind, ok, what in (
                ("bucket_ownership", b.ownership == "BucketOwnerEnforced", "object ownership -> BucketOwnerEnforced"),
                ("bucket_public_block", b.public_block == PUBLIC_BLOCK, "public access block -> all on"),
                ("bucket_encryption", b.encryption in ("AES256", "aws:kms", "aws:kms:dsse"), "default encryption -> SSE-S3"),
                ("bucket_policy", b.policy is not None and same_policy(b.policy, want.bucket_policy),
                 "policy -> TLS-only + log delivery"),
                ("bucket_lifecycle", b.lifecycle_days == want.lifecycle_days,
                 f"expiry {b.lifecycle_days or 'none'} -> {want.lifecycle_days or 'none'} days"),
            ):
                if not ok:
                    c(Change(self.name, "update", f"S3 bucket {want.bucket}", what, {"kind": kind}))
        # flow logs (immutable: replace when a setting differs)
        for dest in ("cloud-watch-logs", "s3"):
            seen = have.cwl if dest == "cloud-watch-logs" else have.s3
            label = f"flow log -> {'log group' if dest == 'cloud-watch-logs' else 'S3'}"
            if seen is None:
                c(Change(self.name, "create", label, "not found", {"kind": "flow_log", "dest": dest}))
                continue
            diff = self._flow_log_diff(want, seen)
            if diff:
                c(Change(self.name, "update", f"{label} {seen.id}", f"{diff} (replace)",
                         {"kind": "flow_log", "dest": dest, "replace": seen.id}))
        return changes

    @staticmethod
    def _flow_log_diff(want: FlowLogsSpec, seen: FlowLogSeen) -> str | None:
        if seen.log_format != want.log_format:
            return "record format differs"
        if seen.traffic_type != want.traffic_type:
            return f"traffic {seen.traffic_type} -> {want.traffic_type}"
        if seen.aggregation != want.aggregation:
            return f"aggregation {seen.aggregation} -> {want.aggregation} s"
        if seen.dest_type == "s3":
            if seen.s3_options and seen.s3_options != want.s3_options:
                return "S3 options differ"
            if seen.destination and not seen.destination.rstrip("/").endswith(f":::{want.bucket}"):
                return "bucket differs"
        elif seen.destination != want.log_group:
            return "log group differs"
        return None

    # ----- apply (the only mutations) -----
    def apply(self, ctx: Context, change: Change, have: FlowLogsSeen | None) -> FlowLogsSeen:
        have = have or FlowLogsSeen()
        want = self.desired(ctx)
        kind = change.params["kind"]
        if change.action == "delete":
            return self._delete(ctx, change, have)
        handler = getattr(self, f"_apply_{kind}")
        return handler(ctx, want, change, have)

    def _apply_log_group(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        logs = ctx.aws.logs
        logs.create_log_group(logGroupName=want.log_group, tags=want.tags)
        if want.retention:
            when_visible(ctx, lambda: logs.put_retention_policy(logGroupName=want.log_group,
                                                                retentionInDays=want.retention),
                         "log_group", f"log group {want.log_group} to be visible")
        return replace(have, log_group=LogGroupSeen(want.log_group, want.log_group_arn, want.retention, True))

    def _apply_retention(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        if want.retention:
            ctx.aws.logs.put_retention_policy(logGroupName=want.log_group, retentionInDays=want.retention)
        else:
            ctx.aws.logs.delete_retention_policy(logGroupName=want.log_group)
        return replace(have, log_group=replace(have.log_group, retention=want.retention))

    def _apply_role(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        iam = ctx.aws.iam
        bounded = {"PermissionsBoundary": have.boundary} if have.boundary else {}
        role = iam.create_role(
            RoleName=want.role_name, AssumeRolePolicyDocument=policy_json(want.trust),
            Description=f"flowwatch {ctx.stack.name}: VPC flow logs delivery to {want.log_group}",
            Tags=tags(ctx.stack.name, self.name, want.role_name), **bounded)["Role"]
        when_visible(ctx, lambda: iam.put_role_policy(RoleName=want.role_name, PolicyName=ROLE_POLICY_NAME,
                                                      PolicyDocument=policy_json(want.role_policy)),
                     "role", f"IAM role {want.role_name} to be visible")
        return replace(have, role=RoleSeen(want.role_name, role["Arn"], want.trust, want.role_policy, True,
                                           have.boundary))

    def _apply_role_boundary(self, ctx: Context, want: FlowLogsSpec, change: Change,
                             have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.iam.put_role_permissions_boundary(RoleName=want.role_name, PermissionsBoundary=have.boundary)
        return replace(have, role=replace(have.role, boundary=have.boundary))

    def _apply_trust(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.iam.update_assume_role_policy(RoleName=want.role_name, PolicyDocument=policy_json(want.trust))
        return replace(have, role=replace(have.role, trust=want.trust))

    def _apply_role_policy(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.iam.put_role_policy(RoleName=want.role_name, PolicyName=ROLE_POLICY_NAME,
                                    PolicyDocument=policy_json(want.role_policy))
        return replace(have, role=replace(have.role, policy=want.role_policy))

    def _apply_bucket(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        s3 = ctx.aws.s3
        bucket_tags = tags(ctx.stack.name, self.name, want.bucket)
        conf: dict[str, Any] = {"Tags": bucket_tags}
        if ctx.region != "us-east-1":
            conf["LocationConstraint"] = ctx.region
        s3.create_bucket(Bucket=want.bucket, CreateBucketConfiguration=conf, ObjectOwnership="BucketOwnerEnforced")
        new = replace(have, bucket=BucketSeen(want.bucket, ours=False))
        seen = when_visible(ctx, lambda: self._apply_bucket_tags(ctx, want, change, new), "bucket",
                            f"bucket {want.bucket} to be visible").bucket
        for kind in ("bucket_public_block", "bucket_encryption", "bucket_policy", "bucket_lifecycle"):
            seen = getattr(self, f"_apply_{kind}")(ctx, want, change, replace(have, bucket=seen)).bucket
        return replace(have, bucket=replace(seen, ownership="BucketOwnerEnforced"))

    def _apply_bucket_tags(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        # CreateBucket's own Tags are applied atomically on AWS; this also covers endpoints that drop them.
        ctx.aws.s3.put_bucket_tagging(Bucket=want.bucket,
                                      Tagging={"TagSet": tags(ctx.stack.name, self.name, want.bucket)})
        return replace(have, bucket=replace(have.bucket, ours=True))

    def _apply_bucket_ownership(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.s3.put_bucket_ownership_controls(
            Bucket=want.bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        return replace(have, bucket=replace(have.bucket, ownership="BucketOwnerEnforced"))

    def _apply_bucket_public_block(self, ctx: Context, want: FlowLogsSpec, change: Change,
                                   have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.s3.put_public_access_block(Bucket=want.bucket, PublicAccessBlockConfiguration=PUBLIC_BLOCK)
        return replace(have, bucket=replace(have.bucket, public_block=PUBLIC_BLOCK))

    def _apply_bucket_encryption(self, ctx: Context, want: FlowLogsSpec, change: Change,
                                 have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.s3.put_bucket_encryption(Bucket=want.bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
        return replace(have, bucket=replace(have.bucket, encryption="AES256"))

    def _apply_bucket_policy(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        ctx.aws.s3.put_bucket_policy(Bucket=want.bucket, Policy=policy_json(want.bucket_policy))
        return replace(have, bucket=replace(have.bucket, policy=want.bucket_policy))

    def _apply_bucket_lifecycle(self, ctx: Context, want: FlowLogsSpec, change: Change,
                                have: FlowLogsSeen) -> FlowLogsSeen:
        s3 = ctx.aws.s3
        if want.lifecycle_days:
            s3.put_bucket_lifecycle_configuration(Bucket=want.bucket, LifecycleConfiguration={"Rules": [{
                "ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
                "Expiration": {"Days": want.lifecycle_days},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
        elif have.bucket and have.bucket.lifecycle_days is not None:
            s3.delete_bucket_lifecycle(Bucket=want.bucket)
        return replace(have, bucket=replace(have.bucket, lifecycle_days=want.lifecycle_days))

    def _apply_flow_log(self, ctx: Context, want: FlowLogsSpec, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        ec2 = ctx.aws.ec2
        dest = change.params["dest"]
        if change.params.get("replace"):
            ec2.delete_flow_logs(FlowLogIds=[change.params["replace"]])
        kind = "flow_log_cwl" if dest == "cloud-watch-logs" else "flow_log_s3"
        name = ctx.names.of(kind)
        flow_tags = tags(ctx.stack.name, self.name, name)
        args: dict[str, Any] = dict(ResourceIds=[ctx.stack.vpc_id], ResourceType="VPC",
                                    TrafficType=want.traffic_type, LogFormat=want.log_format,
                                    MaxAggregationInterval=want.aggregation)
        if dest == "s3":
            flow_tags.append({"Key": S3_OPTIONS_TAG, "Value": s3_options_tag(want.s3_options)})
            args.update(LogDestinationType="s3", LogDestination=want.s3_destination,
                        DestinationOptions=want.s3_options)
        else:
            role_arn = have.role.arn if have.role else None
            args.update(LogDestinationType="cloud-watch-logs", LogGroupName=want.log_group,
                        DeliverLogsPermissionArn=role_arn)
        args["TagSpecifications"] = [{"ResourceType": "vpc-flow-log", "Tags": flow_tags}]

        def create() -> str | None:
            resp = ec2.create_flow_logs(**args)
            if resp.get("FlowLogIds"):
                return resp["FlowLogIds"][0]
            err = (resp.get("Unsuccessful") or [{}])[0].get("Error", {})
            message = err.get("Message", "no flow log id returned")
            if "role" in message.lower() and "assume" in message.lower():
                return None  # IAM propagation: the new role is not assumable yet
            raise AwsError(f"flow_logs: CreateFlowLogs failed: {err.get('Code', '?')}: {message}")

        flow_log_id = wait_until(create, timeout=ctx.extras.get("iam_timeout", 60), interval=3,
                                 sleep=ctx.extras.get("sleep") or _sleep, what="the new IAM role to be assumable")
        seen = FlowLogSeen(flow_log_id, dest, want.bucket if dest == "s3" else want.log_group, want.log_format,
                           want.traffic_type, want.aggregation, want.s3_options if dest == "s3" else {},
                           None if dest == "s3" else args.get("DeliverLogsPermissionArn"), None, None)
        return replace(have, **{"cwl" if dest == "cloud-watch-logs" else "s3": seen})

    # ----- destroy -----
    def plan_destroy(self, have: FlowLogsSeen | None, ctx: Context) -> list[Change]:
        if have is None:
            return []
        changes = []
        for fl in (have.cwl, have.s3):
            if fl:
                changes.append(Change(self.name, "delete", f"flow log {fl.id} -> {fl.dest_type}", "down",
                                      {"kind": "flow_log", "id": fl.id}))
        if have.log_group and have.log_group.ours and not ctx.keep_data:
            changes.append(Change(self.name, "delete", f"log group {have.log_group.name}", "down",
                                  {"kind": "log_group", "name": have.log_group.name}))
        if have.role and have.role.ours:
            if have.role.attached:
                # checked before down removes anything: IAM would refuse DeleteRole half-way (DeleteConflict)
                raise OwnershipError(f"flow_logs: someone attached {', '.join(have.role.attached)} to the stack's "
                                     f"role {have.role.name}; down does not detach what it did not attach",
                                     hint=f"aws iam detach-role-policy --role-name {have.role.name} --policy-arn ARN, "
                                          "then run down again")
            changes.append(Change(self.name, "delete", f"IAM role {have.role.name}", "down",
                                  {"kind": "role", "name": have.role.name}))
        if have.bucket and have.bucket.ours and not ctx.keep_data:
            changes.append(Change(self.name, "delete", f"S3 bucket {have.bucket.name} (emptied, all versions)",
                                  "down", {"kind": "bucket", "name": have.bucket.name}))
        return changes

    def _delete(self, ctx: Context, change: Change, have: FlowLogsSeen) -> FlowLogsSeen:
        kind = change.params["kind"]
        if kind == "flow_log":
            try:
                ctx.aws.ec2.delete_flow_logs(FlowLogIds=[change.params["id"]])
            except Exception as exc:
                if error_code(exc) != "InvalidFlowLogId.NotFound":
                    raise
            return replace(have, **{k: None for k in ("cwl", "s3")
                                    if getattr(have, k) and getattr(have, k).id == change.params["id"]})
        if kind == "log_group":
            try:
                ctx.aws.logs.delete_log_group(logGroupName=change.params["name"])
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
            return replace(have, log_group=None)
        if kind == "role":
            iam = ctx.aws.iam
            for policy in iam.list_role_policies(RoleName=change.params["name"])["PolicyNames"]:
                iam.delete_role_policy(RoleName=change.params["name"], PolicyName=policy)
            iam.delete_role(RoleName=change.params["name"])
            return replace(have, role=None)
        empty_bucket(ctx.aws.s3, change.params["name"])
        ctx.aws.s3.delete_bucket(Bucket=change.params["name"])
        return replace(have, bucket=None)

    def publish(self, stack: Stack, have: FlowLogsSeen | None) -> None:
        have = have or FlowLogsSeen()
        # Only the stack's own: later steps (metric filters on the log group...) never act on a foreign one.
        stack.log_group_arn = have.log_group.arn if have.log_group and have.log_group.ours else PENDING
        stack.role_arn = have.role.arn if have.role and have.role.ours else PENDING
        stack.bucket = have.bucket.name if have.bucket and have.bucket.ours else PENDING
        stack.flow_log_ids = {fl.dest_type: fl.id for fl in (have.cwl, have.s3) if fl}

    def found(self, have: FlowLogsSeen | None) -> str | None:
        if have is None:
            return None
        parts = []
        if have.log_group:
            parts.append(f"log group {have.log_group.name}")
        if have.bucket:
            parts.append(f"bucket {have.bucket.name}")
        parts += [f"{fl.id} ({fl.dest_type})" for fl in (have.cwl, have.s3) if fl]
        return ", ".join(parts) or None

    def status(self, ctx: Context, have: FlowLogsSeen | None) -> dict[str, Any]:
        have = have or FlowLogsSeen()
        return {fl.dest_type: {"id": fl.id, "DeliverLogsStatus": fl.status, "error": fl.error}
                for fl in (have.cwl, have.s3) if fl}


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker (batches of 1000). Returns how many were removed."""
    removed = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(batch), 1000):
            resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch[i:i + 1000], "Quiet": True})
            if resp.get("Errors"):
                err = resp["Errors"][0]
                raise AwsError(f"flow_logs: DeleteObjects failed on {err.get('Key')}: {err.get('Code')}: "
                               f"{err.get('Message')}")
            removed += len(batch[i:i + 1000])
    return removed


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)

