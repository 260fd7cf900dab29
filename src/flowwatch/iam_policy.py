"""The IAM permissions a user needs to run flowwatch, as data, and the policy generated from them.

``CALLS`` lists every AWS API call flowwatch makes (botocore service and operation), the commands that
make it and the resources it touches; :func:`iam_actions` turns an operation into the IAM actions it
needs (usually ``<prefix>:<Operation>``; S3 and a few others differ). ``EXTRA`` lists what no call names
but AWS checks anyway: tagging on create, passing the delivery role, flow-log delivery to S3, and what
Athena reads and writes on the caller's behalf. tests/test_iam_policy.py records every call of a full
run on moto and fails when one is missing here.

    python -m flowwatch.iam_policy [--account ID] [--region R] [--stack NAME] [--command up ...]

prints the policy (resources scoped to flowwatch's default names; see docs/IAM.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

COMMANDS = ("up", "status", "simulate-reject", "query", "logs", "pattern", "down")

# botocore service id (hyphenized, as in event names) -> IAM service prefix
PREFIX = {"ec2": "ec2", "s3": "s3", "iam": "iam", "sts": "sts", "sns": "sns", "cloudwatch": "cloudwatch",
          "cloudwatch-logs": "logs", "glue": "glue", "athena": "athena", "ssm": "ssm",
          "resource-groups-tagging-api": "tag", "sqs": "sqs"}

# Operations whose IAM action is not "<prefix>:<Operation>" (from the Service Authorization Reference).
EXCEPTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("sts", "GetCallerIdentity"): (),                      # needs no permission
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "HeadObject"): ("s3:GetObject",),
    ("s3", "ListBuckets"): ("s3:ListAllMyBuckets",),
    ("s3", "GetBucketLifecycleConfiguration"): ("s3:GetLifecycleConfiguration",),
    ("s3", "PutBucketLifecycleConfiguration"): ("s3:PutLifecycleConfiguration",),
    ("s3", "DeleteBucketLifecycle"): ("s3:PutLifecycleConfiguration",),
    ("s3", "GetPublicAccessBlock"): ("s3:GetBucketPublicAccessBlock",),
    ("s3", "PutPublicAccessBlock"): ("s3:PutBucketPublicAccessBlock",),
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),
    ("s3", "PutBucketEncryption"): ("s3:PutEncryptionConfiguration",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    # CreateBucket with Tags and ObjectOwnership (flowwatch sends both)
    ("s3", "CreateBucket"): ("s3:CreateBucket", "s3:TagResource", "s3:PutBucketOwnershipControls"),
}


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions botocore operation ``service``/``operation`` needs."""
    if (service, operation) in EXCEPTIONS:
        return EXCEPTIONS[(service, operation)]
    return (f"{PREFIX[service]}:{operation}",)


@dataclass(frozen=True)
class Scope:
    """Where actions apply: ARN templates ({partition} {region} {account} {stack} {database}) + a condition."""

    resources: tuple[str, ...]
    condition: dict[str, Any] | None = None
    why: str = ""


BOUNDARY_NAME = "flowwatch-flow-logs-boundary"     # = steps.delivery_role.BOUNDARY_POLICY_NAME (a test checks)
BOUNDARY_ARN = "arn:{partition}:iam::{account}:policy/" + BOUNDARY_NAME

SCOPES: dict[str, Scope] = {
    "any": Scope(("*",), why="reads and creates that AWS does not scope to a resource"),
    "ec2-tag-on-create": Scope(("*",), {"StringEquals": {"ec2:CreateAction": [
        "CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateSecurityGroup", "CreateFlowLogs",
        "RunInstances"]}}, "EC2 tags in the create call itself (TagSpecifications)"),
    "ec2-own": Scope(("*",), {"StringEquals": {"aws:ResourceTag/flowwatch:stack": "{stack}"}},
                     "changes to what carries the stack's tag"),
    "ec2-routing": Scope(("arn:{partition}:ec2:{region}:{account}:route-table/*",
                          "arn:{partition}:ec2:{region}:{account}:network-acl/*"),
                         why="the VPC's main route table and network ACL (made by AWS with the VPC, untagged)"),
    "log-group": Scope(("arn:{partition}:logs:{region}:{account}:log-group:/flowwatch/{stack}/*",),
                       why="the stack's log group and its streams"),
    "role": Scope(("arn:{partition}:iam::{account}:role/flowwatch-{stack}-*",), why="the flow-log delivery role"),
    "role-bounded": Scope(("arn:{partition}:iam::{account}:role/flowwatch-{stack}-*",),
                          {"StringLike": {"iam:PermissionsBoundary": BOUNDARY_ARN}},
                          "write the delivery role only with flowwatch's permissions boundary on it, so no role "
                          "this policy creates can do more than deliver flow logs"),
    "boundary-policy": Scope((BOUNDARY_ARN,), why="read whether the administrator created the boundary"),
    "pass-role": Scope(("arn:{partition}:iam::{account}:role/flowwatch-{stack}-*",),
                       {"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}},
                       "hand the delivery role to VPC Flow Logs, and to nothing else"),
    "bucket": Scope(("arn:{partition}:s3:::flowwatch-{stack}-*",), why="the stack's bucket"),
    "objects": Scope(("arn:{partition}:s3:::flowwatch-{stack}-*/*",),
                     why="flow-log objects and Athena results in the stack's bucket"),
    "topic": Scope(("arn:{partition}:sns:{region}:{account}:flowwatch-{stack}-*",), why="the alert topic"),
    "alarm": Scope(("arn:{partition}:cloudwatch:{region}:{account}:alarm:flowwatch-{stack}-*",),
                   why="the stack's alarms"),
    "glue": Scope(("arn:{partition}:glue:{region}:{account}:catalog",
                   "arn:{partition}:glue:{region}:{account}:database/{database}",
                   "arn:{partition}:glue:{region}:{account}:table/{database}/*"),
                  why="the stack's Glue database and table (and the catalog that holds them)"),
    "workgroup": Scope(("arn:{partition}:athena:{region}:{account}:workgroup/flowwatch-{stack}-*",),
                       why="the stack's Athena workgroup and its named queries"),
    "ami-parameter": Scope(("arn:{partition}:ssm:{region}::parameter/aws/service/ami-amazon-linux-latest/*",),
                           why="the public Amazon Linux AMI parameter"),
}


@dataclass(frozen=True)
class Use:
    commands: tuple[str, ...]
    scope: str


UP, STATUS, SIM, QUERY, LOGS, PATTERN, DOWN = COMMANDS
# Every "discover" read of a step that up converges runs in up, status and down, and in simulate-reject
# (which converges the nacl step, reading the steps before it). The cleanup step (the traffic instance and
# its security group) runs only in status and down; simulate-reject finds them too.
DISCOVER = (UP, STATUS, DOWN, SIM)
CLEANUP_READ = (STATUS, DOWN, SIM)

# (botocore service, operation) -> who calls it and where it acts
CALLS: dict[tuple[str, str], Use] = {
    ("sts", "GetCallerIdentity"): Use(COMMANDS, "any"),
    # --- vpc, subnet, igw, flow_logs, nacl, cleanup (EC2) ---
    ("ec2", "DescribeVpcs"): Use(DISCOVER, "any"),
    ("ec2", "DescribeSubnets"): Use(DISCOVER, "any"),
    ("ec2", "DescribeAvailabilityZones"): Use((UP,), "any"),     # up's preflight: the configured AZ exists
    ("ec2", "DescribeInternetGateways"): Use(DISCOVER, "any"),
    ("ec2", "DescribeRouteTables"): Use(DISCOVER, "any"),
    ("ec2", "DescribeNetworkAcls"): Use(DISCOVER, "any"),
    ("ec2", "DescribeFlowLogs"): Use(DISCOVER, "any"),
    ("ec2", "DescribeInstances"): Use(CLEANUP_READ, "any"),
    ("ec2", "DescribeSecurityGroups"): Use(CLEANUP_READ, "any"),
    ("ec2", "CreateVpc"): Use((UP,), "any"),
    ("ec2", "CreateSubnet"): Use((UP,), "any"),
    ("ec2", "CreateInternetGateway"): Use((UP,), "any"),
    ("ec2", "CreateFlowLogs"): Use((UP,), "any"),
    ("ec2", "CreateSecurityGroup"): Use((SIM,), "any"),
    ("ec2", "RunInstances"): Use((SIM,), "any"),
    ("ec2", "ModifySubnetAttribute"): Use((UP,), "ec2-own"),
    ("ec2", "AttachInternetGateway"): Use((UP,), "ec2-own"),
    ("ec2", "DetachInternetGateway"): Use((DOWN,), "ec2-own"),
    ("ec2", "DeleteInternetGateway"): Use((DOWN,), "ec2-own"),
    ("ec2", "DeleteSubnet"): Use((DOWN,), "ec2-own"),
    ("ec2", "DeleteVpc"): Use((DOWN,), "ec2-own"),
    ("ec2", "DeleteFlowLogs"): Use((UP, DOWN), "ec2-own"),
    ("ec2", "DeleteSecurityGroup"): Use((DOWN,), "ec2-own"),
    ("ec2", "RevokeSecurityGroupIngress"): Use((SIM,), "ec2-own"),
    ("ec2", "TerminateInstances"): Use((DOWN,), "ec2-own"),
    ("ec2", "CreateRoute"): Use((UP,), "ec2-routing"),
    ("ec2", "DeleteRoute"): Use((DOWN,), "ec2-routing"),
    ("ec2", "CreateNetworkAclEntry"): Use((UP, SIM), "ec2-routing"),
    ("ec2", "DeleteNetworkAclEntry"): Use((UP, DOWN), "ec2-routing"),
    # --- log_group, delivery_role, bucket ---
    ("cloudwatch-logs", "DescribeLogGroups"): Use(DISCOVER, "any"),
    ("cloudwatch-logs", "ListTagsForResource"): Use(DISCOVER, "log-group"),
    ("cloudwatch-logs", "CreateLogGroup"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "PutRetentionPolicy"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "DeleteRetentionPolicy"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "DeleteLogGroup"): Use((DOWN,), "log-group"),
    ("cloudwatch-logs", "CreateLogStream"): Use((SIM,), "log-group"),
    ("cloudwatch-logs", "PutLogEvents"): Use((SIM,), "log-group"),
    ("cloudwatch-logs", "FilterLogEvents"): Use((LOGS,), "log-group"),
    ("iam", "GetRole"): Use(DISCOVER, "role"),
    ("iam", "ListRoleTags"): Use(DISCOVER, "role"),
    ("iam", "GetRolePolicy"): Use(DISCOVER, "role"),
    ("iam", "ListAttachedRolePolicies"): Use(DISCOVER, "role"),
    ("iam", "ListRolePolicies"): Use((DOWN,), "role"),
    ("iam", "GetPolicy"): Use(DISCOVER, "boundary-policy"),
    ("iam", "CreateRole"): Use((UP,), "role-bounded"),
    ("iam", "PutRolePolicy"): Use((UP,), "role-bounded"),
    ("iam", "PutRolePermissionsBoundary"): Use((UP,), "role-bounded"),
    ("iam", "UpdateAssumeRolePolicy"): Use((UP,), "role"),
    ("iam", "DeleteRolePolicy"): Use((DOWN,), "role-bounded"),
    ("iam", "DeleteRole"): Use((DOWN,), "role"),
    ("s3", "HeadBucket"): Use((*DISCOVER, QUERY), "bucket"),        # query: the bucket is the stack's
    ("s3", "GetBucketTagging"): Use((*DISCOVER, QUERY), "bucket"),
    ("s3", "GetPublicAccessBlock"): Use(DISCOVER, "bucket"),
    ("s3", "GetBucketEncryption"): Use(DISCOVER, "bucket"),
    ("s3", "GetBucketPolicy"): Use(DISCOVER, "bucket"),
    ("s3", "GetBucketLifecycleConfiguration"): Use(DISCOVER, "bucket"),
    ("s3", "GetBucketOwnershipControls"): Use(DISCOVER, "bucket"),
    ("s3", "CreateBucket"): Use((UP,), "bucket"),
    ("s3", "PutBucketTagging"): Use((UP,), "bucket"),
    ("s3", "PutPublicAccessBlock"): Use((UP,), "bucket"),
    ("s3", "PutBucketEncryption"): Use((UP,), "bucket"),
    ("s3", "PutBucketPolicy"): Use((UP,), "bucket"),
    ("s3", "PutBucketLifecycleConfiguration"): Use((UP,), "bucket"),
    ("s3", "DeleteBucketLifecycle"): Use((UP,), "bucket"),
    ("s3", "PutBucketOwnershipControls"): Use((UP,), "bucket"),
    ("s3", "ListObjectVersions"): Use((DOWN,), "bucket"),
    ("s3", "ListObjectsV2"): Use((QUERY,), "bucket"),
    ("s3", "DeleteObjects"): Use((DOWN,), "objects"),
    ("s3", "GetObject"): Use((QUERY,), "objects"),
    ("s3", "HeadObject"): Use((QUERY,), "objects"),
    ("s3", "DeleteBucket"): Use((DOWN,), "bucket"),
    # --- sns ---
    ("sns", "GetTopicAttributes"): Use(DISCOVER, "topic"),
    ("sns", "ListTagsForResource"): Use(DISCOVER, "topic"),
    ("sns", "ListSubscriptionsByTopic"): Use(DISCOVER, "topic"),
    ("sns", "CreateTopic"): Use((UP,), "topic"),
    ("sns", "SetTopicAttributes"): Use((UP,), "topic"),
    ("sns", "Subscribe"): Use((UP,), "topic"),
    ("sns", "Unsubscribe"): Use((UP, DOWN), "topic"),
    ("sns", "DeleteTopic"): Use((DOWN,), "topic"),
    # --- metric filters, alarms ---
    ("cloudwatch-logs", "DescribeMetricFilters"): Use(DISCOVER, "log-group"),
    ("cloudwatch-logs", "PutMetricFilter"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "DeleteMetricFilter"): Use((UP, DOWN), "log-group"),
    ("cloudwatch-logs", "TestMetricFilter"): Use((PATTERN,), "any"),
    ("cloudwatch", "DescribeAlarms"): Use(DISCOVER, "any"),
    ("cloudwatch", "ListTagsForResource"): Use(DISCOVER, "alarm"),
    ("cloudwatch", "GetMetricStatistics"): Use((STATUS, SIM), "any"),
    ("cloudwatch", "PutMetricAlarm"): Use((UP,), "alarm"),
    ("cloudwatch", "DeleteAlarms"): Use((UP, DOWN), "alarm"),
    # --- athena ---
    ("glue", "GetDatabase"): Use(DISCOVER, "glue"),
    ("glue", "GetTable"): Use(DISCOVER, "glue"),
    ("glue", "GetTags"): Use(DISCOVER, "glue"),
    ("glue", "CreateDatabase"): Use((UP,), "glue"),
    ("glue", "CreateTable"): Use((UP,), "glue"),
    ("glue", "UpdateTable"): Use((UP,), "glue"),
    ("glue", "DeleteTable"): Use((DOWN,), "glue"),
    ("glue", "DeleteDatabase"): Use((DOWN,), "glue"),
    ("athena", "GetWorkGroup"): Use(DISCOVER, "workgroup"),
    ("athena", "ListTagsForResource"): Use(DISCOVER, "workgroup"),
    ("athena", "ListNamedQueries"): Use(DISCOVER, "workgroup"),
    ("athena", "GetNamedQuery"): Use(DISCOVER, "workgroup"),
    ("athena", "CreateWorkGroup"): Use((UP,), "workgroup"),
    ("athena", "UpdateWorkGroup"): Use((UP,), "workgroup"),
    ("athena", "CreateNamedQuery"): Use((UP,), "workgroup"),
    ("athena", "UpdateNamedQuery"): Use((UP,), "workgroup"),
    ("athena", "DeleteWorkGroup"): Use((DOWN,), "workgroup"),
    ("athena", "StartQueryExecution"): Use((QUERY,), "workgroup"),
    ("athena", "GetQueryExecution"): Use((QUERY,), "workgroup"),
    ("athena", "GetQueryResults"): Use((QUERY,), "workgroup"),
    ("athena", "StopQueryExecution"): Use((QUERY,), "workgroup"),
    # --- simulate-reject --mode instance ---
    ("ssm", "GetParameter"): Use((SIM,), "ami-parameter"),
}


@dataclass(frozen=True)
class Extra:
    """Permissions AWS checks that no call of flowwatch names directly."""

    actions: tuple[str, ...]
    commands: tuple[str, ...]
    scope: str
    why: str = field(default="", compare=False)


EXTRA = (
    Extra(("ec2:CreateTags",), (UP, SIM), "ec2-tag-on-create", "TagSpecifications in CreateVpc/... and RunInstances"),
    Extra(("logs:TagResource",), (UP,), "log-group", "CreateLogGroup with tags"),
    Extra(("iam:TagRole",), (UP,), "role", "CreateRole with Tags"),
    Extra(("iam:PassRole",), (UP,), "pass-role", "CreateFlowLogs hands the delivery role to VPC Flow Logs"),
    Extra(("logs:CreateLogDelivery", "logs:DeleteLogDelivery"), (UP, DOWN), "any",
          "flow logs to S3 are a log delivery (VPC User Guide, flow logs to Amazon S3)"),
    Extra(("sns:TagResource",), (UP,), "topic", "CreateTopic with Tags"),
    Extra(("cloudwatch:TagResource",), (UP,), "alarm", "PutMetricAlarm with Tags"),
    Extra(("glue:TagResource",), (UP,), "glue", "CreateDatabase with Tags"),
    Extra(("athena:TagResource",), (UP,), "workgroup", "CreateWorkGroup with Tags"),
    Extra(("glue:GetDatabase", "glue:GetTable", "glue:GetPartition", "glue:GetPartitions"), (QUERY,), "glue",
          "Athena reads the table definition as the caller"),
    Extra(("s3:GetBucketLocation", "s3:ListBucket"), (QUERY,), "bucket", "Athena lists the flow logs as the caller"),
    Extra(("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"), (QUERY,),
          "objects", "Athena reads the flow logs and writes the results as the caller"),
)


def permissions(commands: Iterable[str] | None = None) -> dict[str, set[str]]:
    """scope -> the IAM actions needed there, for ``commands`` (default: all)."""
    wanted = set(COMMANDS if commands is None else commands)
    unknown = wanted - set(COMMANDS)
    if unknown:
        raise ValueError(f"unknown command(s): {', '.join(sorted(unknown))}; known: {', '.join(COMMANDS)}")
    out: dict[str, set[str]] = {}
    for (service, operation), use in CALLS.items():
        if wanted & set(use.commands):
            out.setdefault(use.scope, set()).update(iam_actions(service, operation))
    for extra in EXTRA:
        if wanted & set(extra.commands):
            out.setdefault(extra.scope, set()).update(extra.actions)
    return {scope: actions for scope, actions in out.items() if actions}


def policy(*, account: str = "*", region: str = "*", partition: str = "aws", stack: str = "*",
           commands: Iterable[str] | None = None) -> dict[str, Any]:
    """The identity policy (JSON-ready) for running ``commands`` on ``stack`` with default names."""
    values = {"partition": partition, "region": region, "account": account, "stack": stack,
              "database": "flowwatch_*" if stack == "*" else f"flowwatch_{stack.replace('-', '_')}"}

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**values)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    statements = []
    for scope_name, actions in sorted(permissions(commands).items()):
        scope = SCOPES[scope_name]
        condition = fill(scope.condition) if scope.condition else None
        if condition and stack == "*":      # any flowwatch stack: the tag must exist, whatever its value
            condition = {("StringLike" if op == "StringEquals" and any("flowwatch:stack" in k for k in kv) else op): kv
                         for op, kv in condition.items()}
        statement: dict[str, Any] = {
            "Sid": "".join(part.capitalize() for part in scope_name.split("-")),
            "Effect": "Allow", "Action": sorted(actions),
            "Resource": fill(list(scope.resources)) if scope.resources != ("*",) else "*"}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def boundary_policy(*, account: str = "*", partition: str = "aws") -> dict[str, Any]:
    """The permissions boundary an administrator creates once per account as ``flowwatch-flow-logs-boundary``:
    whatever a flowwatch delivery role's own policy says, it can only deliver flow logs to flowwatch log groups."""
    groups = f"arn:{partition}:logs:*:{account}:log-group:/flowwatch/*"
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "FlowLogsDeliveryOnly", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
        "Resource": [groups, f"{groups}:*"]}]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowwatch.iam_policy",
                                     description="Print the IAM policy a user needs to run flowwatch.")
    parser.add_argument("--account", default="*", help="AWS account id (default: any)")
    parser.add_argument("--region", default="*", help="region (default: any)")
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--stack", default="*", help="one stack name (default: any flowwatch stack)")
    parser.add_argument("--command", action="append", choices=COMMANDS,
                        help="only what these commands need (repeatable; default: all)")
    parser.add_argument("--boundary", action="store_true",
                        help=f"print the permissions boundary {BOUNDARY_NAME} instead (an administrator creates it once)")
    args = parser.parse_args(argv)
    if args.boundary:
        sys.stdout.write(json.dumps(boundary_policy(account=args.account, partition=args.partition), indent=2) + "\n")
        return 0
    doc = policy(account=args.account, region=args.region, partition=args.partition, stack=args.stack,
                 commands=args.command)
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
