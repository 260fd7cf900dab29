"""Least privilege, checked on what `up` (and `simulate-reject --mode instance`) actually left in the account:
the policies as stored, read back and parsed, every statement's principal, action, resource and condition.

moto stores policies without evaluating them, so these tests read what flowwatch wrote; they cannot show
that AWS would deny something, only that flowwatch never asked for more than it needs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowwatch import engine

from tests.support.aws_faults import PooledSession, moto_fixes
from tests.support.context import make_config, make_ctx

pytestmark = pytest.mark.slow   # whole up/down cycles on moto

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = "flowwatch-test-flow-logs-role"
LOG_GROUP = "/flowwatch/test/flow-logs"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}"
BUCKET = f"flowwatch-test-{ACCOUNT}-{REGION}"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:flowwatch-test-alerts"


@pytest.fixture(scope="module")
def stack():
    """One `up` (and one traffic instance) for the whole module: every test only reads."""
    import os
    from unittest import mock

    from moto import mock_aws

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    with mock.patch.dict(os.environ, env), mock_aws(), moto_fixes():
        session = PooledSession()
        ctx = make_ctx(session, make_config(alerts={"email": "ops@example.com"}))
        engine.up(ctx)
        from flowwatch.actions.simulate import simulate

        simulate(make_ctx(session, ctx.config), mode="instance", wait=False)
        yield session
        session.close()


def doc(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        from urllib.parse import unquote

        value = json.loads(value if value.lstrip().startswith("{") else unquote(value))
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(policy["Statement"])


# ---------- the flow-log delivery role ----------
def test_delivery_role_trusts_only_vpc_flow_logs_of_this_account(stack):
    role = stack.client("iam").get_role(RoleName=ROLE)["Role"]
    (st,) = statements(doc(role["AssumeRolePolicyDocument"]))
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert as_list(st["Action"]) == ["sts:AssumeRole"]
    assert st["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/*"},
    }


def test_delivery_role_may_only_write_to_its_own_log_group(stack):
    iam = stack.client("iam")
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []   # no managed policy
    names = iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    assert len(names) == 1
    policy = doc(iam.get_role_policy(RoleName=ROLE, PolicyName=names[0])["PolicyDocument"])
    allowed = {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"}
    for st in statements(policy):
        assert st["Effect"] == "Allow"
        actions = set(as_list(st["Action"]))
        assert actions <= allowed, actions - allowed
        assert "logs:CreateLogGroup" not in actions and not any("*" in a for a in actions)
        assert "NotAction" not in st and "NotResource" not in st
        resources = as_list(st["Resource"])
        if resources == ["*"]:          # only what has no resource type (AWS's documented flow-logs policy)
            assert actions == {"logs:DescribeLogGroups"}, actions
            continue
        assert set(resources) <= {LOG_GROUP_ARN, f"{LOG_GROUP_ARN}:*", f"{LOG_GROUP_ARN}:log-stream:*"}, resources


def test_the_flow_logs_use_the_role_only_for_cloudwatch_logs(stack):
    flow_logs = stack.client("ec2").describe_flow_logs(
        Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]}])["FlowLogs"]
    by_type = {f["LogDestinationType"]: f for f in flow_logs}
    assert by_type["cloud-watch-logs"]["DeliverLogsPermissionArn"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    assert by_type["cloud-watch-logs"]["LogGroupName"] == LOG_GROUP
    assert not by_type["s3"].get("DeliverLogsPermissionArn")      # S3 delivery uses the bucket policy, no role


# ---------- the bucket ----------
def test_bucket_blocks_public_access_and_encrypts_by_default(stack):
    s3 = stack.client("s3")
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules and rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]            # ACLs off


def test_bucket_denies_every_request_without_tls(stack):
    policy = doc(stack.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])
    denies = [st for st in statements(policy) if st["Effect"] == "Deny"]
    assert any(st["Principal"] in ("*", {"AWS": "*"}) and set(as_list(st["Action"])) == {"s3:*"}
               and set(as_list(st["Resource"])) == {BUCKET_ARN, f"{BUCKET_ARN}/*"}
               and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for st in denies), denies


def test_bucket_lets_only_log_delivery_of_this_account_write_under_awslogs(stack):
    policy = doc(stack.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])
    allows = [st for st in statements(policy) if st["Effect"] == "Allow"]
    assert allows
    for st in allows:
        assert st["Principal"] == {"Service": "delivery.logs.amazonaws.com"}, st      # nobody else, never "*"
        assert "NotPrincipal" not in st and "NotAction" not in st and "NotResource" not in st
        assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
        assert st["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:*"
        actions = set(as_list(st["Action"]))
        assert actions <= {"s3:PutObject", "s3:GetBucketAcl"}, actions
        if "s3:PutObject" in actions:
            assert as_list(st["Resource"]) == [f"{BUCKET_ARN}/AWSLogs/{ACCOUNT}/*"]
            assert st["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"
        else:
            assert as_list(st["Resource"]) == [BUCKET_ARN]
    assert {a for st in allows for a in as_list(st["Action"])} == {"s3:PutObject", "s3:GetBucketAcl"}


# ---------- the topic ----------
def test_only_cloudwatch_of_this_account_may_publish_to_the_topic(stack):
    attrs = stack.client("sns").get_topic_attributes(TopicArn=TOPIC_ARN)["Attributes"]
    policy = doc(attrs["Policy"])
    publishers = [st for st in statements(policy) if st["Effect"] == "Allow"
                  and any(a in ("sns:Publish", "sns:*", "*") for a in as_list(st["Action"]))]
    (st,) = publishers
    assert st["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert as_list(st["Action"]) == ["sns:Publish"] and as_list(st["Resource"]) == [TOPIC_ARN]
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                               "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"}}
    for other in statements(policy):
        if other["Effect"] == "Allow":
            assert other["Principal"] not in ("*", {"AWS": "*"}), other
            principals = as_list(other["Principal"].get("AWS", [])) + as_list(other["Principal"].get("Service", []))
            assert set(principals) <= {f"arn:aws:iam::{ACCOUNT}:root", "cloudwatch.amazonaws.com"}, other
            assert as_list(other["Resource"]) == [TOPIC_ARN]
    alarm = stack.client("cloudwatch").describe_alarms(AlarmNames=["flowwatch-test-ping-deny"])["MetricAlarms"][0]
    assert alarm["AlarmActions"] == [TOPIC_ARN] == alarm["OKActions"]


# ---------- the traffic instance (simulate-reject --mode instance) ----------
def _traffic(stack):
    ec2 = stack.client("ec2")
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]},
                                                   {"Name": "tag:flowwatch:step", "Values": ["instance"]}])
    (instance,) = [i for r in reservations["Reservations"] for i in r["Instances"]]
    return ec2, instance


def test_traffic_instance_requires_imdsv2_and_has_no_key_or_role(stack):
    _, instance = _traffic(stack)
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"].get("HttpPutResponseHopLimit", 1) == 1
    assert "KeyName" not in instance
    assert "IamInstanceProfile" not in instance


def test_traffic_instance_has_no_inbound_rule(stack):
    ec2, instance = _traffic(stack)
    group_ids = [g["GroupId"] for g in instance["SecurityGroups"]]
    assert group_ids
    for group in ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]:
        assert group["GroupName"] != "default"
        assert group["IpPermissions"] == [], group["IpPermissions"]
        tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
        assert tags.get("flowwatch:stack") == "test"
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": group_ids}])
    assert [r for r in rules["SecurityGroupRules"] if not r["IsEgress"]] == []


# ---------- and what holds the data ----------
def test_athena_results_are_encrypted_and_the_setting_is_enforced(stack):
    wg = stack.client("athena").get_work_group(WorkGroup="flowwatch-test-athena")["WorkGroup"]["Configuration"]
    assert wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] in ("SSE_S3", "SSE_KMS")
    assert wg["ResultConfiguration"]["OutputLocation"] == f"s3://{BUCKET}/athena-results/"
    assert wg["EnforceWorkGroupConfiguration"] is True

