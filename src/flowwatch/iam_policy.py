"""The IAM permissions a user needs to run flowwatch, as data, and the policy generated from them.

``CALLS`` lists every AWS API call flowwatch makes (botocore service and operation), the commands that
make it and the resources it touches; :func:`iam_actions` turns an operation into the IAM actions it
needs (usually ``<prefix>:<Operation>``; S3 and a few others differ). ``EXTRA`` lists what no call names
but AWS checks anyway: tagging on create, passing the delivery role, flow-log delivery to S3, and what
Athena reads and writes on the caller's behalf. tests/test_iam_policy.py records every call of a full
run on moto and fails when one is missing here.

    python -m flowwatch.iam_policy [--config F | --stack NAME] [--account ID] [--region R] [--vpc-id ID]
                                   [--command up ...] [--part N] [--boundary] [--markdown]

prints the policy on the stack's exact names (the config's, or the defaults of --stack; with neither, a
wildcard form for any stack); see docs/IAM.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

COMMANDS = ("up", "status", "simulate-reject", "query", "logs", "pattern", "down", "unlock")

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
    """Where actions apply: ARN templates + a condition. Templates name the stack's resolved resources:
    {partition} {region} {account} {stack} {role} {bucket} {topic} {workgroup} {log_group} {database}
    {boundary} {vpc} {dashboard}; a template with {alarm} stands for one ARN per alarm of the config."""

    resources: tuple[str, ...]
    condition: dict[str, Any] | None = None
    why: str = ""


STACK_TAG = "flowwatch:stack"
TAG_KEYS = ["flowwatch:stack", "flowwatch:step", "Name"]     # = naming.tags (a test checks)
INSTANCE_TYPE = "t3.micro"                                    # = actions.simulate.INSTANCE_TYPE (a test checks)
EC2 = "arn:{partition}:ec2:{region}:{account}"
OWN_TAG = {"StringEquals": {"aws:ResourceTag/flowwatch:stack": "{stack}"}}
NEW_TAGS = {"StringEquals": {"aws:RequestTag/flowwatch:stack": "{stack}"},
            "ForAllValues:StringEquals": {"aws:TagKeys": TAG_KEYS}}
ROLE = "arn:{partition}:iam::{account}:role/{role}"
BOUNDED = {"StringEquals": {"iam:PermissionsBoundary": "{boundary}"}}
NACL_TAG = "flowwatch:{stack}:nacl-rule"                    # = steps.nacl's ownership tag (a test checks)
IN_ACCOUNT = {"StringEquals": {"s3:ResourceAccount": "{account_or_caller}"}}

SCOPES: dict[str, Scope] = {
    "any": Scope(("*",), why="reads and calls that have no resource type (only '*' matches them)"),
    "ec2-tag-on-create": Scope(("*",), {"StringEquals": {"ec2:CreateAction": [
        "CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateSecurityGroup", "CreateFlowLogs",
        "RunInstances"], "aws:RequestTag/flowwatch:stack": "{stack}"},
        "ForAllValues:StringEquals": {"aws:TagKeys": TAG_KEYS}},
        "EC2 tags in the create call itself (TagSpecifications), only with the stack's tags"),
    "ec2-new-vpc": Scope((EC2 + ":vpc/*",), NEW_TAGS, "a new VPC, only tagged for the stack"),
    "ec2-new-subnet": Scope((EC2 + ":subnet/*",), NEW_TAGS, "a new subnet, only tagged for the stack"),
    "ec2-new-igw": Scope((EC2 + ":internet-gateway/*",), NEW_TAGS, "a new gateway, only tagged for the stack"),
    "ec2-new-sg": Scope((EC2 + ":security-group/*",), NEW_TAGS, "a new security group, only tagged for the stack"),
    "ec2-new-flow-log": Scope((EC2 + ":vpc-flow-log/*",), NEW_TAGS, "a new flow log, only tagged for the stack"),
    "ec2-stack-vpc": Scope((EC2 + ":vpc/*",), OWN_TAG,
                           "subnets, security groups and flow logs only in (on) the VPC tagged for the stack; "
                           "with --vpc-id, that VPC only"),
    "ec2-instance": Scope((EC2 + ":instance/*",), {"StringEquals": {
        "ec2:InstanceType": INSTANCE_TYPE, "ec2:MetadataHttpTokens": "required",
        "aws:RequestTag/flowwatch:stack": "{stack}"}, "ForAllValues:StringEquals": {"aws:TagKeys": TAG_KEYS}},
        f"the traffic instance: {INSTANCE_TYPE}, IMDSv2 only, tagged for the stack"),
    "ec2-instance-network": Scope((EC2 + ":subnet/*", EC2 + ":security-group/*"), OWN_TAG,
                                  "the instance only in the stack's subnet with the stack's security group"),
    "ec2-instance-parts": Scope((EC2 + ":network-interface/*", EC2 + ":volume/*"),
                                why="the instance's own network interface and root volume, made with it"),
    "ec2-image": Scope(("arn:{partition}:ec2:{region}::image/*",), {"StringEquals": {"ec2:Owner": "amazon"}},
                       "Amazon Linux images, owned by Amazon"),
    "ec2-own": Scope(("*",), OWN_TAG, "changes to what carries the stack's tag"),
    "ec2-route-table": Scope((EC2 + ":route-table/*",), {"ArnEquals": {"ec2:Vpc": EC2 + ":vpc/{vpc}"}},
                             "the main route table of the stack's VPC (made by AWS with the VPC, untagged); "
                             "pinned to the VPC with --vpc-id"),
    "ec2-network-acl": Scope((EC2 + ":network-acl/*",), {"ArnEquals": {"ec2:Vpc": EC2 + ":vpc/{vpc}"}},
                             "the network ACL of the stack's VPC (made by AWS with the VPC, untagged); "
                             "pinned to the VPC with --vpc-id"),
    "ec2-nacl-tag": Scope((EC2 + ":network-acl/*",), {"ArnEquals": {"ec2:Vpc": EC2 + ":vpc/{vpc}"},
                                                      "ForAllValues:StringEquals": {"aws:TagKeys": [NACL_TAG]}},
                          "the tag on the VPC's network ACL that records the rule flowwatch made (entries "
                          "cannot be tagged); that one key only"),
    "log-group": Scope(("arn:{partition}:logs:{region}:{account}:log-group:{log_group}",
                        "arn:{partition}:logs:{region}:{account}:log-group:{log_group}:*"),
                       why="the stack's log group and its metric filters"),
    "log-stream": Scope(("arn:{partition}:logs:{region}:{account}:log-group:{log_group}:log-stream:*",),
                        why="the streams of the stack's log group"),
    "role": Scope((ROLE,), why="read the flow-log delivery role"),
    "any-role-tags": Scope(("arn:{partition}:iam::{account}:role/*",),
                           why="read the tags of flow-log roles, to find the stack's under a name the config "
                               "no longer uses (read only)"),
    "role-bounded": Scope((ROLE,), BOUNDED,
                          "write the delivery role only while it carries the stack's permissions boundary, so no "
                          "role this policy writes can do more than deliver flow logs into the stack's log group"),
    "role-tag": Scope((ROLE,), {"StringEquals": {"aws:RequestTag/flowwatch:stack": "{stack}"},
                                "ForAllValues:StringEquals": {"aws:TagKeys": TAG_KEYS}},
                      "tag the delivery role (TagRole has no iam:PermissionsBoundary key): only the stack's tags"),
    "boundary-policy": Scope(("arn:{partition}:iam::{account}:policy/{boundary_name}",),
                             why="read whether the administrator created the stack's boundary"),
    "pass-role": Scope((ROLE,), {"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}},
                       "hand the delivery role to VPC Flow Logs, and to nothing else"),
    "bucket": Scope(("arn:{partition}:s3:::{bucket}",), IN_ACCOUNT,
                    "the stack's bucket, only in this account"),
    "objects": Scope(("arn:{partition}:s3:::{bucket}/*",), IN_ACCOUNT,
                     "flow-log objects and Athena results in the stack's bucket, only in this account"),
    "topic": Scope(("arn:{partition}:sns:{region}:{account}:{topic}",), why="the alert topic"),
    "alarm": Scope(("arn:{partition}:cloudwatch:{region}:{account}:alarm:{alarm}",),
                   why="the alarms of the config's rules"),
    "dashboard": Scope(("arn:{partition}:cloudwatch::{account}:dashboard/{dashboard}",),
                       why="the stack's dashboard (dashboards are global: their ARN has no region)"),
    "insight-rule": Scope(("arn:{partition}:cloudwatch:{region}:{account}:insight-rule/flowwatch-{stack}-*",),
                          why="the stack's Contributor Insights rules (contributors rules), by their name prefix: "
                              "also the rules of rules the config no longer has, which up deletes"),
    "insight-rule-new": Scope(("arn:{partition}:cloudwatch:{region}:{account}:insight-rule/flowwatch-{stack}-*",),
                              NEW_TAGS, "create or update the stack's Contributor Insights rules, only with the "
                                        "stack's tags (PutInsightRule sends them every time)"),
    "glue": Scope(("arn:{partition}:glue:{region}:{account}:catalog",
                   "arn:{partition}:glue:{region}:{account}:database/{database}",
                   "arn:{partition}:glue:{region}:{account}:table/{database}/*"),
                  why="the stack's Glue table (and the database and catalog that hold it)"),
    "glue-database": Scope(("arn:{partition}:glue:{region}:{account}:catalog",
                            "arn:{partition}:glue:{region}:{account}:database/{database}"),
                           why="the stack's Glue database (and the catalog that holds it)"),
    "glue-tags": Scope(("arn:{partition}:glue:{region}:{account}:database/{database}",),
                       why="the tags of the stack's Glue database"),
    "workgroup": Scope(("arn:{partition}:athena:{region}:{account}:workgroup/{workgroup}",),
                       why="the stack's Athena workgroup and its named queries"),
    "ami-parameter": Scope(("arn:{partition}:ssm:{region}::parameter/aws/service/ami-amazon-linux-latest/*",),
                           why="the public Amazon Linux AMI parameter"),
    "lock": Scope(("arn:{partition}:ssm:{region}:{account}:parameter/flowwatch/{stack}/lock",),
                  why="the stack lock (one writer per stack)"),
}


@dataclass(frozen=True)
class Use:
    commands: tuple[str, ...]
    scope: str | tuple[str, ...]

    @property
    def scopes(self) -> tuple[str, ...]:
        return (self.scope,) if isinstance(self.scope, str) else self.scope


def uses(call: tuple[str, str]) -> tuple[Use, ...]:
    """The uses of one (service, operation): a call may act on several resources for several commands."""
    use = CALLS[call]
    return (use,) if isinstance(use, Use) else use


def commands_of(call: tuple[str, str]) -> set[str]:
    return {c for use in uses(call) for c in use.commands}


UP, STATUS, SIM, QUERY, LOGS, PATTERN, DOWN, UNLOCK = COMMANDS
# Every "discover" read of a step that up converges runs in up, status and down, and in simulate-reject
# (which converges the nacl step, reading the steps before it). The cleanup step (the traffic instance and
# its security group) runs only in status and down; simulate-reject finds them too.
DISCOVER = (UP, STATUS, DOWN, SIM)
CLEANUP_READ = (STATUS, DOWN, SIM)
LOCKED = (UP, DOWN, SIM, UNLOCK)          # the commands that take (or break) the stack lock

# (botocore service, operation) -> who calls it and where it acts (one Use, or several)
CALLS: dict[tuple[str, str], Use | tuple[Use, ...]] = {
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
    ("ec2", "CreateVpc"): Use((UP,), "ec2-new-vpc"),
    ("ec2", "CreateSubnet"): Use((UP,), ("ec2-new-subnet", "ec2-stack-vpc")),
    ("ec2", "CreateInternetGateway"): Use((UP,), "ec2-new-igw"),
    ("ec2", "CreateFlowLogs"): Use((UP,), ("ec2-new-flow-log", "ec2-stack-vpc")),
    ("ec2", "CreateSecurityGroup"): Use((SIM,), ("ec2-new-sg", "ec2-stack-vpc")),
    ("ec2", "RunInstances"): Use((SIM,), ("ec2-instance", "ec2-instance-network", "ec2-instance-parts",
                                           "ec2-image")),
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
    ("ec2", "CreateRoute"): Use((UP,), "ec2-route-table"),
    ("ec2", "DeleteRoute"): Use((DOWN,), "ec2-route-table"),
    ("ec2", "CreateNetworkAclEntry"): Use((UP, SIM), "ec2-network-acl"),
    ("ec2", "DeleteNetworkAclEntry"): Use((UP, DOWN), "ec2-network-acl"),
    ("ec2", "CreateTags"): Use((UP, SIM), "ec2-nacl-tag"),          # the NACL rule's ownership tag
    ("ec2", "DeleteTags"): Use((UP, DOWN), "ec2-nacl-tag"),
    ("ec2", "DescribeTags"): Use((UP, STATUS, DOWN), "any"),        # the inventory re-reads EC2 candidates' tags
    # --- log_group, delivery_role, bucket ---
    ("cloudwatch-logs", "DescribeLogGroups"): Use(DISCOVER, "any"),
    ("cloudwatch-logs", "ListTagsForResource"): Use(DISCOVER, "log-group"),
    ("cloudwatch-logs", "CreateLogGroup"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "PutRetentionPolicy"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "DeleteRetentionPolicy"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "DeleteLogGroup"): Use((DOWN,), "log-group"),
    ("cloudwatch-logs", "CreateLogStream"): Use((SIM,), "log-stream"),
    ("cloudwatch-logs", "PutLogEvents"): Use((SIM,), "log-stream"),
    ("cloudwatch-logs", "FilterLogEvents"): Use((LOGS,), "log-group"),
    ("cloudwatch-logs", "StartQuery"): Use((LOGS,), "log-group"),          # logs insights
    ("cloudwatch-logs", "GetQueryResults"): Use((LOGS,), "log-group"),    # the SAR scopes it to log groups
    ("cloudwatch-logs", "StopQuery"): Use((LOGS,), "any"),                # no resource type (SAR)
    ("iam", "GetRole"): Use(DISCOVER, "role"),
    ("iam", "ListRoleTags"): (Use(DISCOVER, "role"), Use((UP, STATUS, DOWN), "any-role-tags")),
    ("iam", "GetRolePolicy"): Use(DISCOVER, "role"),
    ("iam", "ListAttachedRolePolicies"): Use(DISCOVER, "role"),
    ("iam", "ListRolePolicies"): Use(DISCOVER, "role"),
    ("iam", "GetPolicy"): Use(DISCOVER, "boundary-policy"),
    ("iam", "CreateRole"): Use((UP,), "role-bounded"),
    ("iam", "PutRolePolicy"): Use((UP,), "role-bounded"),
    ("iam", "PutRolePermissionsBoundary"): Use((UP,), "role-bounded"),
    ("iam", "UpdateAssumeRolePolicy"): Use((UP,), "role-bounded"),
    ("iam", "DeleteRolePolicy"): Use((DOWN,), "role-bounded"),
    ("iam", "DeleteRole"): Use((DOWN,), "role-bounded"),
    ("iam", "ListRoles"): Use((STATUS, DOWN, UP), "any"),              # the inventory
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
    ("s3", "ListObjectsV2"): Use((*DISCOVER, QUERY), "bucket"),    # athena: the account/region folders
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
    ("sns", "Unsubscribe"): Use((UP, DOWN), "any"),                   # no resource type
    ("sns", "DeleteTopic"): Use((DOWN,), "topic"),
    # --- metric filters, alarms ---
    ("cloudwatch-logs", "DescribeMetricFilters"): Use(DISCOVER, "log-group"),
    ("cloudwatch-logs", "PutMetricFilter"): Use((UP,), "log-group"),
    ("cloudwatch-logs", "DeleteMetricFilter"): Use((UP, DOWN), "log-group"),
    ("cloudwatch-logs", "TestMetricFilter"): Use((PATTERN,), "any"),
    ("cloudwatch", "DescribeAlarms"): Use(DISCOVER, "any"),
    ("cloudwatch", "ListTagsForResource"): Use(DISCOVER, ("alarm", "dashboard", "insight-rule")),
    ("cloudwatch", "GetMetricStatistics"): Use((STATUS, SIM), "any"),
    ("cloudwatch", "PutMetricAlarm"): Use((UP,), "alarm"),
    ("cloudwatch", "DeleteAlarms"): Use((UP, DOWN), "alarm"),
    # --- dashboard ---
    ("cloudwatch", "GetDashboard"): Use(DISCOVER, "dashboard"),
    ("cloudwatch", "PutDashboard"): Use((UP,), "dashboard"),
    ("cloudwatch", "TagResource"): Use((UP,), "dashboard"),          # tags that drifted (PutDashboard tags a new one)
    ("cloudwatch", "DeleteDashboards"): Use((UP, DOWN), "dashboard"),  # up: `dashboard: false`
    # --- anomaly_detector: detectors have no resource type (SAR): "*" only ---
    ("cloudwatch", "DescribeAnomalyDetectors"): Use(DISCOVER, "any"),
    ("cloudwatch", "PutAnomalyDetector"): Use((UP,), "any"),
    ("cloudwatch", "DeleteAnomalyDetector"): Use((UP, DOWN), "any"),
    # --- insight_rule ---
    ("cloudwatch", "DescribeInsightRules"): Use(DISCOVER, "any"),           # no resource type (SAR)
    ("cloudwatch", "PutInsightRule"): Use((UP,), "insight-rule-new"),
    ("cloudwatch", "DeleteInsightRules"): Use((UP, DOWN), "insight-rule"),
    # --- athena ---
    ("glue", "GetDatabase"): Use(DISCOVER, "glue-database"),
    ("glue", "GetTable"): Use(DISCOVER, "glue"),
    ("glue", "GetTables"): Use((UP, STATUS, DOWN), "glue"),       # down refuses tables that are not flowwatch's
    ("glue", "GetTags"): Use(DISCOVER, "glue-tags"),
    ("glue", "CreateDatabase"): Use((UP,), "glue-database"),
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
    ("ssm", "GetParameter"): (Use((SIM,), "ami-parameter"), Use(LOCKED, "lock")),
    # --- the stack lock and the inventory of what is tagged for the stack ---
    ("ssm", "PutParameter"): Use(LOCKED, "lock"),
    ("ssm", "DeleteParameter"): Use(LOCKED, "lock"),
    ("resource-groups-tagging-api", "GetResources"): Use((STATUS, DOWN, UP), "any"),   # no resource type
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
    Extra(("iam:TagRole",), (UP,), "role-tag", "CreateRole with Tags"),
    Extra(("iam:PassRole",), (UP,), "pass-role", "CreateFlowLogs hands the delivery role to VPC Flow Logs"),
    Extra(("logs:CreateLogDelivery", "logs:DeleteLogDelivery"), (UP, DOWN), "any",
          "flow logs to S3 are a log delivery (VPC User Guide, flow logs to Amazon S3)"),
    Extra(("sns:TagResource",), (UP,), "topic", "CreateTopic with Tags"),
    Extra(("cloudwatch:TagResource",), (UP,), "alarm", "PutMetricAlarm with Tags"),
    Extra(("cloudwatch:TagResource",), (UP,), "dashboard", "PutDashboard with Tags"),
    Extra(("cloudwatch:TagResource",), (UP,), "insight-rule-new", "PutInsightRule with Tags"),
    Extra(("glue:TagResource",), (UP,), "glue-tags", "CreateDatabase with Tags"),
    Extra(("athena:TagResource",), (UP,), "workgroup", "CreateWorkGroup with Tags"),
    Extra(("glue:GetDatabase",), (QUERY,), "glue-database", "Athena reads the database as the caller"),
    Extra(("glue:GetTable", "glue:GetPartition", "glue:GetPartitions"), (QUERY,), "glue",
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
    for call in CALLS:
        for use in uses(call):
            if wanted & set(use.commands):
                for scope in use.scopes:
                    out.setdefault(scope, set()).update(iam_actions(*call))
    for extra in EXTRA:
        if wanted & set(extra.commands):
            out.setdefault(extra.scope, set()).update(extra.actions)
    return {scope: actions for scope, actions in out.items() if actions}


@dataclass(frozen=True)
class Names:
    """The resolved names the policy grants on: the config's (``names:`` overrides and alert rules), or the
    defaults of ``stack``; ``stack="*"`` is the wildcard form for any stack."""

    stack: str
    role: str
    bucket: str
    topic: str
    workgroup: str
    log_group: str
    database: str
    alarms: tuple[str, ...]
    dashboard: str = "*"

    @classmethod
    def resolve(cls, stack: str = "*", config: Any = None, *, account: str = "*", region: str = "*") -> "Names":
        from flowwatch.naming import Names as Naming

        if config is None and stack != "*":
            from flowwatch.config import parse_config

            config = parse_config({"stack": stack})
        if config is None:
            naming = Naming("*")
            return cls("*", naming.of("role"), naming.bucket(account, region), naming.of("topic"),
                       naming.of("workgroup"), naming.of("log_group"), "flowwatch_*", (naming.alarm("*"),),
                       naming.dashboard(region))
        naming = Naming.from_config(config)
        # an unknown account: the caller's own (an IAM policy variable), never "*", so that stack lab's
        # bucket pattern cannot reach into stack lab-prod's
        owner = account if account != "*" else "${aws:PrincipalAccount}"
        return cls(config.stack, naming.of("role"), naming.bucket(owner, region), naming.of("topic"),
                   naming.of("workgroup"), naming.of("log_group"), naming.of("database"),
                   tuple(naming.alarm(rule.name) for rule in config.alerts.rules), naming.dashboard(region))


def boundary_name(stack: str) -> str:
    """= steps.delivery_role.boundary_policy_name (a test checks)."""
    return f"flowwatch-{stack}-flow-logs-boundary"


# An IAM managed policy holds at most 6,144 characters (whitespace not counted); the whole policy is larger, so
# ``--part N`` prints one of two documents to attach together: the network and the role, and the rest.
PARTS = 2
MANAGED_POLICY_LIMIT = 6144


def part_of(scope: str) -> int:
    return 1 if scope.startswith(("ec2-", "role", "pass-role", "boundary-policy")) else 2


def policy(*, account: str = "*", region: str = "*", partition: str = "aws", stack: str = "*",
           commands: Iterable[str] | None = None, config: Any = None, vpc: str | None = None,
           part: int | None = None) -> dict[str, Any]:
    """The identity policy (JSON-ready) for running ``commands`` on one stack: ``config``'s resolved names, or
    the default names of ``stack`` (``"*"``: any stack, the wildcard form). ``vpc``: the adopted VPC's id;
    ``part``: only that part (1 or 2) of the policy."""
    names = Names.resolve(stack, config, account=account, region=region)
    stack = names.stack
    vpc = vpc or (config.network.vpc_id if config is not None else None)
    bname = boundary_name(stack)
    caller = account if account != "*" else "${aws:PrincipalAccount}"   # "*" in a StringEquals is literal
    values = {"partition": partition, "region": region, "account": account, "stack": stack,
              "role": names.role, "bucket": names.bucket, "topic": names.topic, "workgroup": names.workgroup,
              "log_group": names.log_group, "database": names.database, "dashboard": names.dashboard,
              "boundary_name": bname,
              "boundary": f"arn:{partition}:iam::{caller}:policy/{bname}", "vpc": vpc or "*",
              "account_or_caller": caller}

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
        if part is not None and part_of(scope_name) != part:
            continue
        scope = SCOPES[scope_name]
        condition = fill(scope.condition) if scope.condition else None
        resources = [r.replace("{alarm}", alarm) for r in scope.resources for alarm in names.alarms] \
            if any("{alarm}" in r for r in scope.resources) else list(scope.resources)
        if scope_name == "ec2-stack-vpc" and vpc:          # an adopted VPC: that one, untagged
            resources, condition = [SCOPES["ec2-stack-vpc"].resources[0].replace("vpc/*", "vpc/{vpc}")], None
        if scope_name in ("ec2-route-table", "ec2-network-acl") and not vpc:        # the VPC flowwatch creates: its id is not known yet
            condition = None
        if condition and stack == "*":      # any flowwatch stack: the tag must exist, whatever its value
            condition = _any_stack(condition)
        statement: dict[str, Any] = {
            "Sid": "".join(part.capitalize() for part in scope_name.split("-")),
            "Effect": "Allow", "Action": sorted(actions),
            "Resource": fill(resources) if resources != ["*"] else "*"}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def _any_stack(condition: dict[str, Any]) -> dict[str, Any]:
    """StringEquals on the stack tag -> StringLike ``*`` (the wildcard form): other keys stay as they are."""
    out: dict[str, Any] = {}
    for op, block in condition.items():
        for key, value in block.items():
            if op == "StringEquals" and STACK_TAG in key:
                out.setdefault("StringLike", {})[key] = "*"
            elif op == "StringEquals" and key == "iam:PermissionsBoundary":
                out.setdefault("StringLike", {})[key] = value
            else:
                out.setdefault(op, {})[key] = value
    return out


def boundary_policy(*, account: str = "*", region: str = "*", partition: str = "aws", stack: str = "*",
                    config: Any = None) -> dict[str, Any]:
    """The permissions boundary an administrator creates once per stack as ``flowwatch-<stack>-flow-logs-boundary``:
    whatever the stack's delivery role's own policy says, it can only deliver flow logs into that stack's log
    group in that region."""
    names = Names.resolve(stack, config, account=account, region=region)
    group = f"arn:{partition}:logs:{region}:{account}:log-group:{names.log_group}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "FlowLogsDeliveryOnly", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [f"{group}:log-stream:*"]},
        {"Sid": "ReadOwnLogGroup", "Effect": "Allow", "Action": ["logs:DescribeLogStreams"],
         "Resource": [group, f"{group}:*"]},
        {"Sid": "FindLogGroups", "Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": "*"}]}


EXAMPLE: dict[str, Any] = {"account": "123456789012", "region": "us-east-1", "stack": "lab"}

DOC_HEAD = """\
# The IAM permissions flowwatch needs

<!-- generated by `python -m flowwatch.iam_policy --markdown > docs/IAM.md`; tests/test_iam_policy.py checks it -->

flowwatch runs with the caller's own credentials (profile, SSO, environment). This page gives the
minimal identity policy for them. It is **generated** from a table in the code,
[`src/flowwatch/iam_policy.py`](../src/flowwatch/iam_policy.py), and that table is **checked by the
tests**: `tests/test_iam_policy.py` runs every command through the real CLI on moto and fails when a call
appears that the table does not list for the command that made it, or the table lists a call no command
makes any more; `tests/test_iam_policy_scope.py` checks each statement against AWS's Service
Authorization Reference (resource types and condition keys of every action) and evaluates requests on
another stack's resources.

## Generate it (one stack, exact names: the form for production)

```
python -m flowwatch.iam_policy --config flowwatch.yaml --account 123456789012          # the config's names
python -m flowwatch.iam_policy --stack lab --account 123456789012 --region us-east-1   # default names
python -m flowwatch.iam_policy --config flowwatch.yaml --account 123456789012 --part 1 # 1 of 2 documents
python -m flowwatch.iam_policy --stack lab --command status --command query            # only what these need
```

Every resource is the stack's **exact** name (the config's `names:` overrides and alert rules, or the
defaults): the policy of stack `lab` grants nothing on stack `lab-prod`. `--account` omitted: the
caller's own account (`${aws:PrincipalAccount}`). In an adopted VPC (`network.vpc_id`, or `--vpc-id`)
the VPC, route and network-ACL grants name that VPC. The whole policy is larger than one managed policy
(6,144 characters): `--part 1` and `--part 2` print two documents to attach together.

**Changing the config.** A new alert rule's alarm, or a new name, is a new resource: regenerate the
policy before `up`. `up` deletes the alarm of a removed rule: run it with the policy of the old and the
new config attached (or remove the alarm by hand).

**Any stack** (`--stack` and `--config` omitted) prints a wildcard form (`flowwatch-*-...`, stack tag
of any value): it lets its holder act on every flowwatch stack of the account. Use it for a sandbox
account, not for production.

## The policy of stack `lab` (every command, account 123456789012, us-east-1)

```json
"""

DOC_BOUNDARY = """\
```

## The permissions boundary (once per stack)

A caller who may create and write IAM roles could otherwise create a role that trusts anyone and
carries any policy. The policy above therefore lets a caller create, write or delete the delivery role
**only while it carries the stack's permissions boundary `flowwatch-<stack>-flow-logs-boundary`**
(`iam:PermissionsBoundary` on CreateRole, PutRolePolicy, DeleteRolePolicy, PutRolePermissionsBoundary,
UpdateAssumeRolePolicy and DeleteRole; `iam:TagRole` has no such key, so it is limited to the stack's
tag keys and value). Whatever the role's own policy and trust say, the boundary caps it at delivering
flow logs into that stack's log group in that region. An administrator creates it once per stack
(flowwatch reads it, never creates, changes or deletes it):

```
python -m flowwatch.iam_policy --boundary --config flowwatch.yaml --account 123456789012 > boundary.json
aws iam create-policy --policy-name flowwatch-lab-flow-logs-boundary --policy-document file://boundary.json
```

When the boundary exists, `flowwatch up` creates the delivery role with it, and puts it on a role made
before it existed. Without it (an administrator running flowwatch), the role is created unbounded; with
the policy above and no boundary, `up` is refused by IAM (AccessDenied on CreateRole). The boundary of
stack `lab`:

~~~
"""

DOC_NOTES = """
Notes:

- **EC2 creates** name the new resource's type and carry the stack's tags (`aws:RequestTag`,
  `aws:TagKeys`); a subnet, security group or flow log only in (on) a VPC tagged for the stack (or the
  adopted VPC); `RunInstances` only a `t3.micro` with IMDSv2 required (`ec2:MetadataHttpTokens`), an
  Amazon-owned image, in the stack's subnet with the stack's security group. Tagging is allowed only as
  part of those creates (`ec2:CreateAction`).
- **EC2 changes and deletes** apply only to resources that carry the stack's tag (`aws:ResourceTag`).
  The route and the network ACL entries live in the VPC's main route table and network ACL (made by AWS
  with the VPC, untagged): with `--vpc-id` (or `network.vpc_id`) they are limited to that VPC
  (`ec2:Vpc`). **Known gap:** for a VPC flowwatch creates, its id is not known before the first `up`;
  regenerate the policy with `--vpc-id` from `flowwatch status` after it.
- **S3** grants carry `s3:ResourceAccount`: a bucket of the stack's name in another account is never
  the stack's. flowwatch also sends `ExpectedBucketOwner` on every S3 call that takes it, and the
  workgroup's results carry it.
- **Actions without a resource type** (`sns:Unsubscribe`, `logs:DescribeLogGroups`,
  `logs:CreateLogDelivery`, `tag:GetResources`, `iam:ListRoles`, the `Describe*` calls, ...) are on `*`:
  a specific ARN would never match them.
- **The delivery role** trusts only `vpc-flow-logs.amazonaws.com` with `aws:SourceAccount` and
  `aws:SourceArn`, and may only write into the stack's log group (and `logs:DescribeLogGroups` on `*`).
- **The stack lock** (`ssm:PutParameter`, `GetParameter`, `DeleteParameter`) is granted on exactly
  `parameter/flowwatch/<stack>/lock`; `flowwatch unlock` needs the same.
- **Resources under old names.** The policy names the config's resources exactly, so removing what an
  older config made (`up --prune`, or `down` of an orphan) needs the policy of that config too
  (`--config old.yaml`); reading their tags to find them (`tag:GetResources`, `iam:ListRoleTags` on
  roles) is all this policy grants beyond the stack's names. The NACL rule's ownership tag
  (`flowwatch:<stack>:nacl-rule`) is the only tag written outside a create, on the network ACL only.
- `sts:GetCallerIdentity` needs no permission.
"""


def markdown() -> str:
    """docs/IAM.md: the example policy, the boundary, and the why of every statement."""
    doc = policy(**EXAMPLE)
    rows = ["| Sid | part | what |", "|---|---|---|"]
    for name, scope in sorted(SCOPES.items()):
        if name in permissions():
            rows.append(f"| `{''.join(p.capitalize() for p in name.split('-'))}` | {part_of(name)} | {scope.why} |")
    extras = ["| actions | commands | why |", "|---|---|---|"]
    for extra in EXTRA:
        extras.append(f"| {', '.join(f'`{a}`' for a in extra.actions)} | {', '.join(extra.commands)} | {extra.why} |")
    return (DOC_HEAD + json.dumps(doc, indent=2) + "\n" + DOC_BOUNDARY
            + json.dumps(boundary_policy(**EXAMPLE), indent=2) + "\n~~~\n\n## Why each statement\n\n"
            + "\n".join(rows) + "\n\nBesides the actions of the calls themselves, AWS checks these "
            "(no call of flowwatch names them):\n\n" + "\n".join(extras) + "\n" + DOC_NOTES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowwatch.iam_policy",
                                     description="Print the IAM policy a user needs to run flowwatch.")
    parser.add_argument("--account", default="*", help="AWS account id (default: the caller's)")
    parser.add_argument("--region", default=None, help="region (default: the config's, else any)")
    parser.add_argument("--partition", default="aws")
    parser.add_argument("--config", default=None, help="a flowwatch config: its stack, region and exact names")
    parser.add_argument("--stack", default=None,
                        help="one stack, with default names (default: the config's; without both, any stack)")
    parser.add_argument("--vpc-id", default=None, help="the adopted VPC (default: the config's network.vpc_id)")
    parser.add_argument("--command", action="append", choices=COMMANDS,
                        help="only what these commands need (repeatable; default: all)")
    parser.add_argument("--part", type=int, choices=range(1, PARTS + 1), default=None,
                        help=f"only part N of {PARTS} (each fits an IAM managed policy; attach all parts)")
    parser.add_argument("--boundary", action="store_true",
                        help="print the stack's permissions boundary flowwatch-<stack>-flow-logs-boundary instead "
                             "(an administrator creates it once per stack)")
    parser.add_argument("--markdown", action="store_true", help="print docs/IAM.md")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    config = None
    if args.config:
        from flowwatch.config import load_config
        from flowwatch.errors import FlowwatchError

        try:
            config = load_config(args.config, stack=args.stack, region=args.region)
        except FlowwatchError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 2
    region = args.region or (config.region if config is not None else "*")
    stack = config.stack if config is not None else (args.stack or "*")
    if args.boundary:
        if stack == "*":
            sys.stderr.write("error: --boundary needs --stack NAME or --config FILE (one boundary per stack)\n")
            return 2
        doc = boundary_policy(account=args.account, region=region, partition=args.partition, stack=stack,
                              config=config)
    else:
        doc = policy(account=args.account, region=region, partition=args.partition, stack=stack,
                     commands=args.command, config=config, vpc=args.vpc_id, part=args.part)
        if not doc["Statement"]:            # IAM refuses a policy without statements: there is nothing to attach
            sys.stderr.write(f"part {args.part} holds nothing for these commands: attach only the other part\n")
            return 0
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
