"""bucket: the S3 bucket the second flow log delivers to (and Athena writes its results to).

Named ``names.bucket`` (default ``flowwatch-<stack>-<account>-<region>``: bucket names are global), found by
HeadBucket with ``ExpectedBucketOwner`` (a bucket of that name in another account is an error, never
adopted) and adopted only with the stack's tag. CreateBucket carries the tags itself, so an interrupted
run never leaves an untagged bucket of ours. Hardened as: object ownership BucketOwnerEnforced (ACLs off),
public access blocked, SSE-S3 default encryption, a TLS-only policy with AWS's log-delivery statements
scoped to where the flow logs write (SourceAccount/SourceArn conditions), lifecycle expiry =
``retention_days``. ``down`` empties it (every version) and deletes it; ``--keep-data`` keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flowwatch.errors import AwsError, OwnershipError, error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tags
from flowwatch.steps.base import policy_json, same_policy, tag_map, when_visible

LIFECYCLE_RULE_ID = "flowwatch-expire-flow-logs"
PUBLIC_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True}
OWNER_ENFORCED = "BucketOwnerEnforced"
ENCRYPTED = ("AES256", "aws:kms", "aws:kms:dsse")


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


@dataclass(frozen=True)
class BucketSpec:
    name: str
    policy: dict[str, Any]
    lifecycle_days: int | None
    region: str = "us-east-1"
    tags: tuple[tuple[str, str], ...] = ()

    def tag_set(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.tags]


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


class BucketStep:
    name = "bucket"

    def desired(self, ctx: Context) -> BucketSpec:
        name, part = ctx.bucket, ctx.aws.partition
        layout = ctx.s3_layout()
        return BucketSpec(name, bucket_policy(part, name, ctx.account, ctx.region, layout.delivery_resource_arn(part)),
                          ctx.config.flow_logs.retention_days, ctx.region,
                          tuple((t["Key"], t["Value"]) for t in tags(ctx.stack.name, self.name, name)))

    # ----- discover (reads only) -----
    def discover(self, ctx: Context) -> BucketSeen | None:
        s3 = ctx.aws.s3
        name = ctx.bucket
        ours = owned(s3, name, ctx.account, ctx.stack.name)
        if ours is None:
            return None
        if not ours:
            return BucketSeen(name, ours=False)  # never read further, never changed
        return BucketSeen(name, True, True,
                          _read(s3.get_public_access_block, name, "PublicAccessBlockConfiguration",
                                "NoSuchPublicAccessBlockConfiguration"),
                          _encryption(s3, name), _read(s3.get_bucket_policy, name, "Policy", "NoSuchBucketPolicy"),
                          _lifecycle(s3, name), _ownership(s3, name))

    # ----- plan (pure) -----
    def plan(self, want: BucketSpec, have: BucketSeen | None) -> list[Change]:
        ids = {"name": want.name}
        if have is None:
            return [Change(self.name, "create", f"S3 bucket {want.name}", "not found", {"kind": "bucket", **ids},
                           spec=want)]
        if not have.ours:
            # flowwatch creates its bucket with its tags in CreateBucket itself, so even an interrupted run
            # leaves it tagged: an untagged bucket of this name is someone else's, even an empty one.
            raise OwnershipError(f"bucket: bucket {want.name} exists and is not tagged as the stack's",
                                 hint="set names.bucket to a bucket name of your own, or another --stack")
        changes = []
        for kind, ok, what in (
            ("ownership", have.ownership == OWNER_ENFORCED, f"object ownership -> {OWNER_ENFORCED}"),
            ("public_block", have.public_block == PUBLIC_BLOCK, "public access block -> all on"),
            ("encryption", have.encryption in ENCRYPTED, "default encryption -> SSE-S3"),
            ("policy", have.policy is not None and same_policy(have.policy, want.policy),
             "policy -> TLS-only + log delivery"),
            ("lifecycle", have.lifecycle_days == want.lifecycle_days,
             f"expiry {have.lifecycle_days or 'none'} -> {want.lifecycle_days or 'none'} days"),
        ):
            if not ok:
                changes.append(Change(self.name, "update", f"S3 bucket {want.name}", what, {"kind": kind, **ids},
                                      spec=want))
        return changes

    # ----- apply (the only mutations) -----
    def apply(self, ctx: Context, change: Change) -> BucketSeen | None:
        s3 = ctx.aws.s3
        name = change.params["name"]
        if change.action == "delete":
            empty_bucket(s3, name)
            s3.delete_bucket(Bucket=name)
            return None
        spec: BucketSpec = change.spec
        if change.kind == "bucket":
            conf: dict[str, Any] = {"Tags": spec.tag_set()}
            if spec.region != "us-east-1":
                conf["LocationConstraint"] = spec.region
            s3.create_bucket(Bucket=name, CreateBucketConfiguration=conf, ObjectOwnership=OWNER_ENFORCED)
            # CreateBucket's own Tags are applied atomically on AWS; this also covers endpoints that drop them.
            when_visible(ctx.poll, lambda: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": spec.tag_set()}),
                         "bucket", f"bucket {name} to be visible")
            _put_public_block(s3, name)
            _put_encryption(s3, name)
            _put_policy(s3, name, spec)
            _put_lifecycle(s3, name, spec, had_rule=False)
            return BucketSeen(name, True, True, PUBLIC_BLOCK, "AES256", spec.policy, spec.lifecycle_days,
                              OWNER_ENFORCED)
        before: BucketSeen = change.before or BucketSeen(name, True)
        if change.kind == "ownership":
            s3.put_bucket_ownership_controls(Bucket=name,
                                             OwnershipControls={"Rules": [{"ObjectOwnership": OWNER_ENFORCED}]})
            return replace(before, ownership=OWNER_ENFORCED)
        if change.kind == "public_block":
            _put_public_block(s3, name)
            return replace(before, public_block=PUBLIC_BLOCK)
        if change.kind == "encryption":
            _put_encryption(s3, name)
            return replace(before, encryption="AES256")
        if change.kind == "policy":
            _put_policy(s3, name, spec)
            return replace(before, policy=spec.policy)
        if change.kind == "lifecycle":
            _put_lifecycle(s3, name, spec, had_rule=before.lifecycle_days is not None)
            return replace(before, lifecycle_days=spec.lifecycle_days)
        raise ValueError(f"bucket: unknown change {change.kind!r}")

    def plan_destroy(self, have: BucketSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or not have.ours or options.keep_data:
            return []
        return [Change(self.name, "delete", f"S3 bucket {have.name} (emptied, all versions)", "down",
                       {"kind": "bucket", "name": have.name})]

    def publish(self, stack: Stack, have: BucketSeen | None) -> None:
        stack.bucket = have.name if have and have.ours else PENDING

    def found(self, have: BucketSeen | None) -> str | None:
        return have.name if have else None

    def status(self, have: BucketSeen | None) -> StatusDetail:
        return StatusDetail(ids={"bucket": have.name} if have else {})


# ---------- the calls, one per setting ----------
def owned(s3: Any, name: str, account: str, stack: str) -> bool | None:
    """Whether bucket ``name`` is the stack's: None when there is none, False when it is the account's
    but without the stack's tag; OwnershipError when it is another account's (ExpectedBucketOwner)."""
    try:
        s3.head_bucket(Bucket=name, ExpectedBucketOwner=account)
    except Exception as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        if code in ("403", "AccessDenied"):
            raise OwnershipError(f"bucket: bucket {name} exists in another account, or you lack "
                                 f"s3:ListBucket on it",
                                 hint="bucket names are global: set names.bucket to a name of your own; "
                                      "docs/IAM.md lists the permissions flowwatch needs")
        raise
    try:
        bucket_tags = tag_map(s3.get_bucket_tagging(Bucket=name, ExpectedBucketOwner=account)["TagSet"])
    except Exception as exc:
        if error_code(exc) != "NoSuchTagSet":
            raise
        bucket_tags = {}
    return bucket_tags.get(STACK_TAG) == stack


def _put_public_block(s3: Any, name: str) -> None:
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=PUBLIC_BLOCK)


def _put_encryption(s3: Any, name: str) -> None:
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})


def _put_policy(s3: Any, name: str, spec: BucketSpec) -> None:
    s3.put_bucket_policy(Bucket=name, Policy=policy_json(spec.policy))


def _put_lifecycle(s3: Any, name: str, spec: BucketSpec, *, had_rule: bool) -> None:
    if spec.lifecycle_days:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
            "ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
            "Expiration": {"Days": spec.lifecycle_days},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    elif had_rule:
        s3.delete_bucket_lifecycle(Bucket=name)


# ---------- reads ----------
def _read(call: Any, bucket: str, key: str, missing_code: str) -> Any:
    try:
        return call(Bucket=bucket)[key]
    except Exception as exc:
        if error_code(exc) == missing_code:
            return None
        raise


def _encryption(s3: Any, bucket: str) -> str | None:
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except Exception as exc:
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return None
        raise
    return rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] if rules else None


def _lifecycle(s3: Any, bucket: str) -> int | None:
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except Exception as exc:
        if error_code(exc) == "NoSuchLifecycleConfiguration":
            return None
        raise
    rule = next((r for r in rules if r.get("ID") == LIFECYCLE_RULE_ID and r.get("Status") == "Enabled"), None)
    return rule["Expiration"].get("Days") if rule and "Expiration" in rule else None


def _ownership(s3: Any, bucket: str) -> str | None:
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    except Exception as exc:
        if error_code(exc) == "OwnershipControlsNotFoundError":
            return None
        raise
    return rules[0]["ObjectOwnership"] if rules else None


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
                raise AwsError(f"bucket: DeleteObjects failed on {err.get('Key')}: {err.get('Code')}: "
                               f"{err.get('Message')}")
            removed += len(batch[i:i + 1000])
    return removed
