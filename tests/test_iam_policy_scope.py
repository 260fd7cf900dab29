"""The generated caller policy, statement by statement: no escalation path, nothing of a look-alike stack,
every grant of a resource type its action has (AWS's Service Authorization Reference, tests/support/sar.py).

Requests are evaluated with tests/support/iam_eval.py, an IAM-like matcher, against what AWS would put in the
request context (condition keys), chosen as favourably as possible for the request that must be refused.
"""

from __future__ import annotations

import json

import pytest

from flowwatch import iam_policy

from tests.support import sar
from tests.support.iam_eval import allows

ACCOUNT = "123456789012"
REGION = "us-east-1"
LAB = dict(account=ACCOUNT, region=REGION, stack="lab")
ROLE_WRITES = ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary",
               "iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:UpdateRole")
VARIANTS = {"lab": LAB, "lab-any-account": dict(stack="lab"), "any-stack": {},
            "adopted": dict(LAB, vpc="vpc-0123456789abcdef0")}
CALLER = {"aws:PrincipalAccount": ACCOUNT}


def _arns(stack: str, account: str = ACCOUNT, region: str = REGION) -> dict[str, str]:
    """Every resource flowwatch makes for ``stack`` with default names (alarm: the default rule's)."""
    db = f"flowwatch_{stack.replace('-', '_')}"
    group = f"arn:aws:logs:{region}:{account}:log-group:/flowwatch/{stack}/flow-logs"
    bucket = f"flowwatch-{stack}-{account}-{region}"
    return {
        "role": f"arn:aws:iam::{account}:role/flowwatch-{stack}-flow-logs-role",
        "boundary": f"arn:aws:iam::{account}:policy/flowwatch-{stack}-flow-logs-boundary",
        "bucket": f"arn:aws:s3:::{bucket}", "object": f"arn:aws:s3:::{bucket}/AWSLogs/{account}/x.log.gz",
        "topic": f"arn:aws:sns:{region}:{account}:flowwatch-{stack}-alerts",
        "alarm": f"arn:aws:cloudwatch:{region}:{account}:alarm:flowwatch-{stack}-ping-deny",
        "workgroup": f"arn:aws:athena:{region}:{account}:workgroup/flowwatch-{stack}-athena",
        "log-group": group, "log-group:*": f"{group}:*", "log-stream": f"{group}:log-stream:eni-1-all",
        "database": f"arn:aws:glue:{region}:{account}:database/{db}",
        "table": f"arn:aws:glue:{region}:{account}:table/{db}/flow_logs",
        "lock": f"arn:aws:ssm:{region}:{account}:parameter/flowwatch/{stack}/lock",
    }


def _context_for(stack: str) -> dict[str, object]:
    """A request that claims everything of ``stack``: its tags, its boundary, this account's bucket."""
    return {**CALLER, "aws:ResourceTag/flowwatch:stack": stack, "aws:RequestTag/flowwatch:stack": stack,
            "aws:TagKeys": ["flowwatch:stack", "flowwatch:step", "Name"],
            "iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/flowwatch-{stack}-flow-logs-boundary",
            "iam:PassedToService": "vpc-flow-logs.amazonaws.com", "s3:ResourceAccount": ACCOUNT}


def _actions(doc):
    return sorted({a for st in doc["Statement"] for a in st["Action"]})


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_action_is_scoped_to_a_resource_type_it_has_and_every_condition_key_applies(variant):
    doc = iam_policy.policy(**VARIANTS[variant])
    assert sar.check(doc) == []


def test_the_boundary_and_the_delivery_role_policy_fit_the_reference_too():
    from flowwatch.steps.delivery_role import delivery_policy

    assert sar.check(iam_policy.boundary_policy(account=ACCOUNT, region=REGION, stack="lab")) == []
    role_policy = delivery_policy(_arns("lab")["log-group"])
    for st in role_policy["Statement"]:
        st.setdefault("Sid", "Delivery")
    assert sar.check(role_policy) == []
    assert {"Sid": "FindLogGroups", "Effect": "Allow", "Action": ["logs:DescribeLogGroups"],
            "Resource": "*"} in role_policy["Statement"]


def test_actions_without_a_resource_type_are_granted_on_star():
    extract = sar.load()
    for variant in VARIANTS.values():
        for st in iam_policy.policy(**variant)["Statement"]:
            for action in st["Action"]:
                if not extract["actions"][action]["resource_types"]:
                    assert st["Resource"] == "*", (action, st["Sid"])
    star = {a for st in iam_policy.policy(**LAB)["Statement"] if st["Resource"] == "*" for a in st["Action"]}
    assert {"sns:Unsubscribe", "logs:DescribeLogGroups", "tag:GetResources", "iam:ListRoles"} <= star


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_role_write_without_the_stacks_boundary_condition(variant):
    doc = iam_policy.policy(**VARIANTS[variant])
    stack = VARIANTS[variant].get("stack", "*")
    account = VARIANTS[variant].get("account", "${aws:PrincipalAccount}")
    for st in doc["Statement"]:
        if set(st["Action"]) & set(ROLE_WRITES):
            op = "StringEquals" if stack != "*" else "StringLike"
            assert st["Condition"] == {op: {"iam:PermissionsBoundary": f"arn:aws:iam::{account}:policy/"
                                                                       f"{iam_policy.boundary_name(stack)}"}}, st
    role = _arns("lab")["role"]
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    for action in ROLE_WRITES[:-1]:
        assert not allows(doc, action, role, CALLER), f"{action} on an unbounded role"
        assert not allows(doc, action, admin, _context_for("lab")), f"{action} on an administrator's role"
        if stack != "*":
            assert not allows(doc, action, role, {**CALLER, "iam:PermissionsBoundary":
                                                  f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess"}), action
            assert allows(doc, action, role, _context_for("lab")), f"{action}: flowwatch needs it"


def test_tag_role_only_with_the_stacks_tag_on_the_stacks_role():
    doc = iam_policy.policy(**LAB)
    role = _arns("lab")["role"]
    ok = _context_for("lab")
    assert allows(doc, "iam:TagRole", role, ok)
    assert not allows(doc, "iam:TagRole", role, {**ok, "aws:RequestTag/flowwatch:stack": "lab-prod"})
    assert not allows(doc, "iam:TagRole", role, {**ok, "aws:TagKeys": ["flowwatch:stack", "Owner"]})
    assert not allows(doc, "iam:TagRole", role, CALLER)                              # no stack tag in the request
    assert not allows(doc, "iam:TagRole", f"arn:aws:iam::{ACCOUNT}:role/Admin", ok)  # a foreign role stamped


# The only grant that reaches another stack's resources: reading a role's tags (no secret, no change), which
# the inventory needs to find the stack's delivery role under a name the config no longer uses.
READS_ACROSS_STACKS = {"iam:ListRoleTags"}


@pytest.mark.parametrize("variant", ["lab", "lab-any-account", "adopted"])
def test_stack_lab_grants_nothing_on_stack_lab_prods_resources(variant):
    doc = iam_policy.policy(**VARIANTS[variant])
    extract = sar.load()
    theirs = _arns("lab-prod")
    context = _context_for("lab-prod")
    checked = 0
    for st in doc["Statement"]:
        for action in st["Action"]:
            for kind, arn in theirs.items():
                if not sar.resource_types_of(arn, action, extract):
                    continue            # AWS never asks this action about that kind of resource
                if st["Resource"] == "*" and not st.get("Condition"):
                    # reads on '*' (Describe*, List*): they name no resource, change nothing
                    assert action.split(":")[1].startswith(("Describe", "List", "Get")), (action, st["Sid"])
                    continue
                if action in READS_ACROSS_STACKS:
                    continue
                checked += 1
                assert not iam_eval_statement(st, action, arn, context), (st["Sid"], action, kind, arn)
    assert checked > 50
    # and the policy does cover the stack's own resources
    ours, ctx = _arns("lab"), _context_for("lab")
    for kind, action in [("role", "iam:GetRole"), ("bucket", "s3:PutBucketPolicy"), ("object", "s3:GetObject"),
                         ("topic", "sns:DeleteTopic"), ("alarm", "cloudwatch:PutMetricAlarm"),
                         ("workgroup", "athena:DeleteWorkGroup"), ("log-group", "logs:DeleteLogGroup"),
                         ("log-stream", "logs:PutLogEvents"), ("database", "glue:DeleteDatabase"),
                         ("table", "glue:GetTable"), ("lock", "ssm:PutParameter")]:
        assert allows(doc, action, ours[kind], ctx), (kind, action)


def iam_eval_statement(st, action, arn, context):
    from tests.support.iam_eval import statement_allows

    return statement_allows(st, action, arn, context)


def test_names_come_from_the_config(tmp_path):
    config = tmp_path / "flowwatch.yaml"
    config.write_text("stack: lab\nregion: eu-west-1\nnames:\n  role: Lab-Flow-Logs-Role\n"
                      "alerts:\n  rules:\n    - name: ssh\n      match: {dstport: 22, action: REJECT}\n")
    from flowwatch.config import load_config

    doc = iam_policy.policy(account=ACCOUNT, config=load_config(config))
    assert allows(doc, "iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/Lab-Flow-Logs-Role")
    assert not allows(doc, "iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/flowwatch-lab-flow-logs-role")
    alarm = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:flowwatch-lab-ssh"
    assert allows(doc, "cloudwatch:DeleteAlarms", alarm)
    assert not allows(doc, "cloudwatch:DeleteAlarms", alarm.replace("-ssh", "-ping-deny"))


def test_the_generator_reads_a_config_and_refuses_a_bad_one(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("stack: lab\nregion: eu-west-1\n")
    assert iam_policy.main(["--config", str(good), "--account", ACCOUNT]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert allows(doc, "sns:DeleteTopic", f"arn:aws:sns:eu-west-1:{ACCOUNT}:flowwatch-lab-alerts")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack: [not, a, name]\n")
    assert iam_policy.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stack" in err
    assert iam_policy.main(["--boundary"]) == 2                  # one boundary per stack: which one?


def test_ec2_creates_only_for_the_stack():
    doc = iam_policy.policy(**LAB)
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    ours, theirs = _context_for("lab"), _context_for("prod")
    vpc = f"{ec2}:vpc/vpc-0prod"
    # a flow log on a VPC that is not the stack's (a production VPC): refused
    assert not allows(doc, "ec2:CreateFlowLogs", vpc, theirs)
    assert not allows(doc, "ec2:CreateFlowLogs", vpc, CALLER)
    assert allows(doc, "ec2:CreateFlowLogs", vpc, ours)
    assert allows(doc, "ec2:CreateFlowLogs", f"{ec2}:vpc-flow-log/*", ours)
    assert not allows(doc, "ec2:CreateFlowLogs", f"{ec2}:vpc-flow-log/*", theirs)
    for action in ("ec2:CreateSubnet", "ec2:CreateSecurityGroup"):
        assert not allows(doc, action, vpc, theirs) and allows(doc, action, vpc, ours), action
    instance = f"{ec2}:instance/*"
    launch = {**ours, "ec2:InstanceType": "t3.micro", "ec2:MetadataHttpTokens": "required"}
    assert allows(doc, "ec2:RunInstances", instance, launch)
    assert not allows(doc, "ec2:RunInstances", instance, {**launch, "ec2:InstanceType": "p5.48xlarge"})
    assert not allows(doc, "ec2:RunInstances", instance, {**launch, "ec2:MetadataHttpTokens": "optional"})
    assert not allows(doc, "ec2:RunInstances", f"{ec2}:subnet/subnet-1", theirs)
    assert allows(doc, "ec2:RunInstances", f"{ec2}:subnet/subnet-1", ours)
    assert not allows(doc, "ec2:DeleteVpc", vpc, theirs) and allows(doc, "ec2:DeleteVpc", vpc, ours)


def test_route_and_nacl_writes_only_in_the_adopted_vpc():
    doc = iam_policy.policy(**VARIANTS["adopted"])
    ec2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
    own = {"ec2:Vpc": f"{ec2}:vpc/vpc-0123456789abcdef0"}
    other = {"ec2:Vpc": f"{ec2}:vpc/vpc-0prod"}
    for action, arn in [("ec2:CreateRoute", f"{ec2}:route-table/rtb-1"),
                        ("ec2:CreateNetworkAclEntry", f"{ec2}:network-acl/acl-1"),
                        ("ec2:DeleteNetworkAclEntry", f"{ec2}:network-acl/acl-1")]:
        assert allows(doc, action, arn, own) and not allows(doc, action, arn, other), action
    # the VPC itself: that one, untagged
    assert allows(doc, "ec2:CreateFlowLogs", f"{ec2}:vpc/vpc-0123456789abcdef0", CALLER)
    assert not allows(doc, "ec2:CreateFlowLogs", f"{ec2}:vpc/vpc-0prod", CALLER)


def test_s3_grants_are_pinned_to_the_account():
    for variant in VARIANTS.values():
        doc = iam_policy.policy(**variant)
        for st in doc["Statement"]:
            if any(a.startswith("s3:") for a in st["Action"]):
                assert st["Condition"]["StringEquals"]["s3:ResourceAccount"] == variant.get(
                    "account", "${aws:PrincipalAccount}"), st
    doc = iam_policy.policy(stack="lab")
    bucket = "arn:aws:s3:::flowwatch-lab-123456789012-us-east-1"
    assert allows(doc, "s3:PutBucketPolicy", bucket, {**CALLER, "s3:ResourceAccount": ACCOUNT})
    assert not allows(doc, "s3:PutBucketPolicy", bucket, {**CALLER, "s3:ResourceAccount": "999999999999"})
    # the caller's account is part of the name: another account's name is not ours
    assert not allows(doc, "s3:PutBucketPolicy", "arn:aws:s3:::flowwatch-lab-999999999999-us-east-1",
                      {**CALLER, "s3:ResourceAccount": ACCOUNT})


def test_the_boundary_allows_delivery_only_into_the_stacks_log_group_in_its_region():
    doc = iam_policy.boundary_policy(account=ACCOUNT, region=REGION, stack="lab")
    assert allows(doc, "logs:PutLogEvents", _arns("lab")["log-stream"])
    assert not allows(doc, "logs:PutLogEvents", _arns("lab-prod")["log-stream"])
    assert not allows(doc, "logs:PutLogEvents", _arns("lab", region="eu-west-1")["log-stream"])
    assert not allows(doc, "logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/flowwatch/x:log-stream:s")
    assert allows(doc, "logs:DescribeLogGroups", "*")


def test_the_delivery_role_is_trusted_only_by_flow_logs_of_this_account():
    from flowwatch.steps.delivery_role import delivery_trust

    (statement,) = delivery_trust("aws", ACCOUNT, REGION)["Statement"]
    assert statement["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_the_policy_constants_match_the_product():
    from flowwatch.actions.simulate import INSTANCE_TYPE
    from flowwatch.naming import tags
    from flowwatch.steps.delivery_role import boundary_policy_name

    assert iam_policy.INSTANCE_TYPE == INSTANCE_TYPE
    assert iam_policy.TAG_KEYS == [t["Key"] for t in tags("s", "step", "n")]
    assert iam_policy.boundary_name("lab") == boundary_policy_name("lab")


def test_an_empty_part_prints_no_document(capsys):
    assert iam_policy.main(["--stack", "lab", "--command", "logs", "--part", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "part 1 holds nothing" in captured.err
    assert iam_policy.main(["--stack", "lab", "--command", "logs", "--part", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["Statement"]
