"""The delivery role's permissions boundary: what keeps the IAM policy of docs/IAM.md from being a way to
create an over-privileged role."""

from __future__ import annotations

import pytest

import json

from flowwatch import engine, iam_policy
from flowwatch.steps.delivery_role import boundary_policy_name

BOUNDARY_POLICY_NAME = boundary_policy_name("test")

from tests.support.context import fresh, make_ctx, mutating

pytestmark = pytest.mark.slow   # whole up/down cycles on moto


def test_delivery_role_gets_the_permissions_boundary_when_the_administrator_made_it(session):
    """With flowwatch-flow-logs-boundary in the account, the role is created bounded (so the IAM policy in
    docs/IAM.md, which only lets a caller write roles that carry it, cannot be used to escalate)."""
    assert BOUNDARY_POLICY_NAME == iam_policy.boundary_name("test")
    iam = session.client("iam")
    arn = iam.create_policy(PolicyName=BOUNDARY_POLICY_NAME, PolicyDocument=json.dumps(
        iam_policy.boundary_policy(account="123456789012", region="us-east-1", stack="test")))["Policy"]["Arn"]
    engine.up(make_ctx(session))
    role = iam.get_role(RoleName="flowwatch-test-flow-logs-role")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    statement = iam_policy.boundary_policy(account="123456789012", region="us-east-1", stack="test")["Statement"][0]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/flowwatch/test/flow-logs:log-stream:*"]
    creates = [s for s in iam_policy.policy(stack="test")["Statement"] if "iam:CreateRole" in s["Action"]]
    assert creates and all(s["Condition"]["StringEquals"]["iam:PermissionsBoundary"].endswith(
        ":policy/flowwatch-test-flow-logs-boundary") for s in creates)


def test_an_existing_role_is_bounded_by_the_next_up(session, calls):
    ctx = make_ctx(session)
    engine.up(ctx)
    iam = session.client("iam")
    assert "PermissionsBoundary" not in iam.get_role(RoleName="flowwatch-test-flow-logs-role")["Role"]
    arn = iam.create_policy(PolicyName=BOUNDARY_POLICY_NAME, PolicyDocument=json.dumps(
        iam_policy.boundary_policy(account="123456789012", region="us-east-1", stack="test")))["Policy"]["Arn"]
    calls.clear()
    report = engine.up(fresh(ctx))
    assert [c.reason for c in report.changes] == [f"permissions boundary -> {BOUNDARY_POLICY_NAME}"]
    assert mutating(calls) == [("iam", "PutRolePermissionsBoundary")]
    role = iam.get_role(RoleName="flowwatch-test-flow-logs-role")["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    calls.clear()
    assert engine.up(fresh(ctx)).changed == 0 and mutating(calls) == []
