"""The IAM policy in flowwatch.iam_policy (and docs/IAM.md) covers every AWS call flowwatch makes.

One scenario drives every command through the real CLI on moto, including the paths that repair drift
and apply config changes, and records each (service, operation) with the command that made it. The test
fails when a call appears that the table does not list for that command, and when the table lists a call
that no command made any more (except the few moto cannot drive, each with its reason).
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from flowwatch import iam_policy

from tests.support.aws_faults import PooledSession, RespondOnce, moto_fixes
from tests.support.cli import run_cli, use_session

pytestmark = pytest.mark.slow   # records every call of a full run

TEST = "(the test itself)"
ACCOUNT = "123456789012"
REGION = "us-east-1"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "IAM.md"

# Calls the table lists that this scenario cannot make on moto, and why.
NOT_DRIVEN = {
    ("athena", "StopQueryExecution"): "only when a query times out or is interrupted; moto's succeed at once",
    ("cloudwatch-logs", "StopQuery"): "only when a Logs Insights query times out or is interrupted; moto's complete "
                                      "at once",
    ("iam", "ListRoleTags"): "only when GetRole returns no Tags (moto always returns them)",
    ("athena", "UpdateWorkGroup"): "moto implements neither UpdateWorkGroup nor a way to drift a workgroup",
    ("athena", "UpdateNamedQuery"): "moto implements neither UpdateNamedQuery nor DeleteNamedQuery",
    ("cloudwatch", "TagResource"): "only when a dashboard's tags drift (tests/steps/test_dashboard.py drives it): "
                                   "PutDashboard tags it at creation",
}

# Calls listed ahead of the code that makes them.
LISTED_AHEAD: dict[tuple[str, str], str] = {}

CONFIG_A = """\
stack: test
alerts:
  email: a@example.com
  detections: [rejected-spike, top-rejected-sources, ssh-rdp-probe, egress-spike]
"""
CONFIG_B = """\
stack: test
flow_logs:
  hive_partitions: true
  retention_days: null
nacl:
  deny_icmp_egress: false
alerts:
  email: b@example.com
  rules:
    - name: ssh-rejects
      match: {dstport: 22, action: REJECT}
      metric: Ssh-Rejects
      threshold: 5
"""


def _flow_log_object(s3) -> None:
    """What the flow-log service would have delivered to the bucket (moto delivers nothing)."""
    from flowwatch.s3layout import S3Layout

    now = datetime.now(timezone.utc)
    layout = S3Layout(bucket=f"flowwatch-test-{ACCOUNT}-{REGION}", account=ACCOUNT, region=REGION, hive=True)
    key = layout.object_key(now, "fl-0123456789abcdef0", "abcd1234")
    start = int(now.timestamp()) - 120
    lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
             "action log-status",
             f"2 {ACCOUNT} eni-0123456789abcdef0 10.0.0.10 8.8.8.8 0 0 1 4 336 {start} {start + 60} REJECT OK"]
    s3.put_object(Bucket=f"flowwatch-test-{ACCOUNT}-{REGION}", Key=key,
                  Body=gzip.compress(("\n".join(lines) + "\n").encode()))


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    """{(service, operation): {commands}} from a full life cycle through the CLI, on moto."""
    import os
    import sys
    from unittest import mock

    from moto import mock_aws

    calls: dict[tuple[str, str], set[str]] = {}
    owners: dict[str, set[str | None]] = {}        # S3 operation -> the ExpectedBucketOwner headers flowwatch sent
    label = [TEST]

    def record_owner(event_name: str, params: dict, **_) -> None:
        if label[0] != TEST:
            owners.setdefault(event_name.split(".")[2], set()).add(
                params.get("headers", {}).get("x-amz-expected-bucket-owner"))
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
    workdir = tmp_path_factory.mktemp("iam")
    with mock.patch.dict(os.environ, env), mock_aws(), moto_fixes(), pytest.MonkeyPatch.context() as mp:
        session = PooledSession()
        session.events.register("before-call.*.*", lambda event_name, **_: calls.setdefault(
            tuple(event_name.split(".")[1:3]), set()).add(label[0]))
        session.events.register("before-call.s3.*", record_owner)
        use_session(mp, session)
        mp.chdir(workdir)
        mp.setattr(sys, "stdout", sys.stdout)      # _Capture swaps them; restored on leaving
        mp.setattr(sys, "stderr", sys.stderr)
        capsys = _Capture()

        def cli(command: str, *args: str, stdin: str | None = None) -> None:
            label[0] = command
            result = run_cli(capsys, mp, *args, stdin=stdin)
            label[0] = TEST                                   # the test's own set-up calls, not flowwatch's
            assert result.code in (0, 1) and "Traceback" not in result.err, f"{args}: {result.err}"
            assert result.code == 0 or args[0] == "pattern", f"{args}: {result.err}"

        ec2, s3, sns, iam, athena = (session.client(n) for n in ("ec2", "s3", "sns", "iam", "athena"))
        (workdir / "flowwatch.yaml").write_text(CONFIG_A)
        cli("up", "up")
        cli("up", "up")
        cli("status", "status")
        # drift that up repairs in place
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:flowwatch-test-alerts"
        sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(
            {"Version": "2012-10-17", "Statement": []}))
        iam.update_assume_role_policy(RoleName="flowwatch-test-flow-logs-role", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}))
        s3.delete_bucket_ownership_controls(Bucket=f"flowwatch-test-{ACCOUNT}-{REGION}")
        # an administrator creates flowwatch's permissions boundary: up puts it on the existing role
        iam.create_policy(PolicyName=iam_policy.boundary_name("test"), PolicyDocument=json.dumps(
            iam_policy.boundary_policy(account=ACCOUNT, region=REGION, stack="test")))
        cli("up", "up")
        # a changed config: S3 layout, retention, e-mail, rules, NACL rule off
        (workdir / "flowwatch.yaml").write_text(CONFIG_B)
        cli("up", "up")
        cli("simulate-reject", "simulate-reject", "--mode", "inject", "--no-wait")
        cli("simulate-reject", "simulate-reject", "--mode", "instance", "--no-wait")
        # someone opened the traffic group and the instance is gone: the next run closes it again
        (group,) = ec2.describe_security_groups(Filters=[{"Name": "tag:flowwatch:step",
                                                          "Values": ["security_group"]}])["SecurityGroups"]
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        instances = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
            {"Name": "tag:flowwatch:step", "Values": ["instance"]}])["Reservations"] for i in r["Instances"]]
        ec2.terminate_instances(InstanceIds=instances)
        cli("simulate-reject", "simulate-reject", "--mode", "instance", "--no-wait")
        _flow_log_object(s3)
        cli("query", "query", "rejects", "--engine", "local", "--since", "2h")
        cli("query", "query", "rejects", "--engine", "athena", "--since", "2h")
        cli("logs", "logs", "tail", "--since", "1h", "--limit", "3")
        cli("logs", "logs", "insights", "rejected-sources", "--since", "1h")
        RespondOnce("cloudwatch-logs", "TestMetricFilter", status=200, body='{"matches": []}').install(session)
        cli("pattern", "pattern", "test", "--remote", "REJECT", "-", stdin="2 x REJECT OK\n")
        cli("down", "down", "--yes")
        session.close()
    flowwatch = {call: commands - {TEST} for call, commands in calls.items()}
    return {call: commands for call, commands in flowwatch.items() if commands}, owners


@pytest.fixture(scope="module")
def recorded(recorded_run):
    return recorded_run[0]


class _Capture:
    """capsys stand-in for a module-scoped run: run_cli only needs readouterr()."""

    def __init__(self) -> None:
        import io
        import sys

        self.sys = sys
        self.io = io

    def readouterr(self):
        from types import SimpleNamespace

        out, err = getattr(self, "_out", None), getattr(self, "_err", None)
        result = SimpleNamespace(out=out.getvalue() if out else "", err=err.getvalue() if err else "")
        self._out, self._err = self.io.StringIO(), self.io.StringIO()
        self.sys.stdout, self.sys.stderr = self._out, self._err
        return result


def test_every_recorded_call_is_in_the_table_for_the_command_that_made_it(recorded):
    missing = sorted(f"{s}.{op}" for s, op in recorded if (s, op) not in iam_policy.CALLS)
    assert missing == [], f"AWS calls flowwatch makes that flowwatch.iam_policy does not list: {missing}"
    wrong = sorted(f"{s}.{op} by {sorted(cmds - iam_policy.commands_of((s, op)))}"
                   for (s, op), cmds in recorded.items() if cmds - iam_policy.commands_of((s, op)))
    assert wrong == [], f"calls made by commands the table does not name: {wrong}"


def test_the_policy_of_each_command_allows_its_calls(recorded):
    for command in iam_policy.COMMANDS:
        allowed = {a for st in iam_policy.policy(commands=[command])["Statement"] for a in st["Action"]}
        needed = {a for (s, op), cmds in recorded.items() if command in cmds for a in iam_policy.iam_actions(s, op)}
        assert needed <= allowed, f"{command}: {sorted(needed - allowed)}"


def test_the_table_lists_nothing_flowwatch_no_longer_calls(recorded):
    stale = sorted(f"{s}.{op}" for s, op in iam_policy.CALLS
                   if (s, op) not in recorded and (s, op) not in NOT_DRIVEN and (s, op) not in LISTED_AHEAD)
    assert stale == [], f"listed in flowwatch.iam_policy but never called: {stale}"
    assert set(NOT_DRIVEN) <= set(iam_policy.CALLS) and set(LISTED_AHEAD) <= set(iam_policy.CALLS)
    print(f"{len(recorded)} distinct AWS operations recorded, {len(iam_policy.CALLS)} in the table")


def test_operation_names_map_to_iam_actions():
    assert iam_policy.iam_actions("s3", "ListObjectVersions") == ("s3:ListBucketVersions",)
    assert iam_policy.iam_actions("s3", "HeadBucket") == ("s3:ListBucket",)
    assert iam_policy.iam_actions("s3", "GetBucketLifecycleConfiguration") == ("s3:GetLifecycleConfiguration",)
    assert iam_policy.iam_actions("s3", "PutPublicAccessBlock") == ("s3:PutBucketPublicAccessBlock",)
    assert iam_policy.iam_actions("sts", "GetCallerIdentity") == ()
    assert iam_policy.iam_actions("cloudwatch-logs", "PutMetricFilter") == ("logs:PutMetricFilter",)
    for (service, operation) in iam_policy.CALLS:
        for use in iam_policy.uses((service, operation)):
            assert service in iam_policy.PREFIX and set(use.scopes) <= set(iam_policy.SCOPES)
            assert set(use.commands) <= set(iam_policy.COMMANDS)
        for action in iam_policy.iam_actions(service, operation):
            assert re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z0-9]+", action), action


def test_the_policy_scopes_fit_the_stacks_default_names():
    from tests.support.iam_eval import allows

    doc = iam_policy.policy(account=ACCOUNT, region=REGION, stack="test")
    bucket = f"arn:aws:s3:::flowwatch-test-{ACCOUNT}-{REGION}"
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/flowwatch/test/flow-logs"
    s3 = {"s3:ResourceAccount": ACCOUNT}
    for action, arn, context in [
            ("logs:PutRetentionPolicy", group, {}), ("logs:PutLogEvents", f"{group}:log-stream:eni-1-all", {}),
            ("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/flowwatch-test-flow-logs-role", {}),
            ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/flowwatch-test-flow-logs-role",
             {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}),
            ("s3:PutBucketPolicy", bucket, s3), ("s3:GetObject", f"{bucket}/AWSLogs/{ACCOUNT}/x.log.gz", s3),
            ("sns:Subscribe", f"arn:aws:sns:{REGION}:{ACCOUNT}:flowwatch-test-alerts", {}),
            ("cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:flowwatch-test-ping-deny", {}),
            ("glue:CreateTable", f"arn:aws:glue:{REGION}:{ACCOUNT}:table/flowwatch_test/flow_logs", {}),
            ("glue:CreateDatabase", f"arn:aws:glue:{REGION}:{ACCOUNT}:database/flowwatch_test", {}),
            ("athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/flowwatch-test-athena", {})]:
        assert allows(doc, action, arn, context), (action, arn)
    other = f"arn:aws:iam::{ACCOUNT}:role/flowwatch-prod-flow-logs-role"        # another stack's role: not ours
    assert not allows(doc, "iam:GetRole", other)
    own = next(st for st in doc["Statement"] if st["Sid"] == "Ec2Own")
    assert own["Condition"] == {"StringEquals": {"aws:ResourceTag/flowwatch:stack": "test"}}
    assert next(st for st in doc["Statement"] if st["Sid"] == "PassRole")["Condition"] == {
        "StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}}


def test_no_statement_allows_everything_or_iam_beyond_the_delivery_role():
    for doc in (iam_policy.policy(), iam_policy.policy(account=ACCOUNT, region=REGION, stack="test")):
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow"
            assert not any(a == "*" or a.endswith(":*") for a in st["Action"]), st
            if st["Action"] == ["iam:ListRoleTags"]:      # the inventory reads flow-log roles' tags: read only
                assert all(r.endswith(":role/*") for r in st["Resource"]) and "Condition" not in st, st
                continue
            writes = [a for a in st["Action"] if a.startswith("iam:") and a not in ("iam:ListRoles",)]
            if writes:
                assert st["Resource"] != "*", st
                roles = all(":role/flowwatch-" in r for r in st["Resource"])
                boundary = st["Action"] == ["iam:GetPolicy"] and all(
                    r.endswith("-flow-logs-boundary") for r in st["Resource"])   # read-only: does the boundary exist
                assert roles or boundary, st


def test_one_document_per_part_fits_the_managed_policy_limit():
    """An IAM managed policy holds at most 6,144 characters (whitespace not counted): ``--part`` splits."""
    for kwargs in ({}, dict(account=ACCOUNT, region=REGION, stack="test")):
        whole = iam_policy.policy(**kwargs)
        parts = [iam_policy.policy(part=n, **kwargs) for n in range(1, iam_policy.PARTS + 1)]
        assert all(len(json.dumps(p, separators=(",", ":"))) <= 6144 for p in parts)
        assert sorted(st["Sid"] for p in parts for st in p["Statement"]) == sorted(st["Sid"] for st in whole["Statement"])


def test_every_s3_call_of_the_cycle_names_the_owner_except_create_bucket(recorded_run):
    _, owners = recorded_run
    assert owners.pop("CreateBucket") == {None}
    assert len(owners) > 10
    assert {op: sent for op, sent in owners.items() if sent != {ACCOUNT}} == {}


def test_the_generator_prints_the_policy(capsys):
    assert iam_policy.main(["--account", ACCOUNT, "--stack", "test", "--command", "status"]) == 0
    printed = json.loads(capsys.readouterr().out)
    actions = {a for st in printed["Statement"] for a in st["Action"]}
    assert "ec2:DescribeVpcs" in actions and not any(a.startswith(("ec2:Create", "ec2:Delete")) for a in actions)


def test_docs_show_the_generated_policy():
    assert DOCS.read_text(encoding="utf-8") == iam_policy.markdown(), (
        "docs/IAM.md is out of date: regenerate it with `python -m flowwatch.iam_policy --markdown > docs/IAM.md`")
    block = re.search(r"```json\n(.*?)\n```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block and json.loads(block.group(1)) == iam_policy.policy(**iam_policy.EXAMPLE)
