"""Bad input fails before any AWS call: exit 2, one error line (plus an optional hint) that names the
offending key and what is allowed, no traceback, and not a single AWS call (DESIGN.md "Bad input").

Every case goes through the real entry point (``flowwatch.cli.main``) with a config file on disk.
AWS calls are recorded (and refused) at botocore's single funnel, ``BaseClient._make_api_call``, so a
call from any client, made by any code path, would show up; a control test proves the recorder sees
the calls of a good config.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli
from tests.support.aws_faults import moto_fixes

RULE = {"name": "r", "metric": "M", "match": {"action": "REJECT"}}


def rule(**kw: Any) -> dict[str, Any]:
    return {"alerts": {"rules": [{**RULE, **kw}]}}


@dataclass(frozen=True)
class Bad:
    id: str
    config: dict[str, Any] | str | None    # a mapping (dumped as YAML, `stack: lab` added), raw YAML text, or no file
    key: str                               # the offending key, as the error line must name it
    allowed: str                           # a fragment telling what is allowed / expected
    args: tuple[str, ...] = ("up",)
    options: tuple[str, ...] = ()          # global options before the command


CASES = [
    # --- CIDRs: AWS allows /16 to /28, the subnet inside the VPC ---
    Bad("vpc-cidr-too-big", {"network": {"vpc_cidr": "10.0.0.0/8"}}, "network.vpc_cidr", "AWS allows /16 to /28"),
    Bad("vpc-cidr-too-small", {"network": {"vpc_cidr": "10.0.0.0/29", "subnet_cidr": "10.0.0.0/29"}},
        "network.vpc_cidr", "AWS allows /16 to /28"),
    Bad("vpc-cidr-not-an-address", {"network": {"vpc_cidr": "10.0.0.300/24"}}, "network.vpc_cidr",
        "is not an IPv4 CIDR block (e.g. 10.0.0.0/24)"),
    Bad("vpc-cidr-host-bits", {"network": {"vpc_cidr": "10.0.0.1/24"}}, "network.vpc_cidr",
        "did you mean 10.0.0.0/24?"),
    Bad("vpc-cidr-ipv6", {"network": {"vpc_cidr": "fd00::/56"}}, "network.vpc_cidr", "is not an IPv4 CIDR block"),
    Bad("subnet-cidr-too-small", {"network": {"subnet_cidr": "10.0.0.0/30"}}, "network.subnet_cidr",
        "AWS allows /16 to /28"),
    Bad("subnet-outside-vpc", {"network": {"subnet_cidr": "10.1.0.0/26"}}, "network.subnet_cidr",
        "is not inside vpc_cidr 10.0.0.0/24"),
    Bad("subnet-bigger-than-vpc", {"network": {"subnet_cidr": "10.0.0.0/23"}}, "network.subnet_cidr",
        "is not inside vpc_cidr 10.0.0.0/24"),
    # --- availability zone in the region ---
    Bad("az-other-region", {"network": {"availability_zone": "eu-west-1a"}}, "network.availability_zone",
        "is not in region us-east-1 (e.g. us-east-1a)"),
    Bad("az-is-a-region", {"network": {"availability_zone": "us-east-1"}}, "network.availability_zone",
        "is a region, not an availability zone; did you mean us-east-1a?"),
    Bad("az-is-another-region", {"network": {"availability_zone": "eu-west-1"}}, "network.availability_zone",
        "is a region, not an availability zone, and not this stack's region us-east-1; did you mean us-east-1a?"),
    Bad("az-vs-region-option", {"network": {"availability_zone": "us-east-1a"}}, "network.availability_zone",
        "is not in region eu-west-1 (e.g. eu-west-1a) (the region comes from --region)",
        options=("--region", "eu-west-1")),
    Bad("az-not-in-configured-region", {"region": "eu-west-1", "network": {"availability_zone": "us-east-1a"}},
        "network.availability_zone", "(e.g. eu-west-1a)"),
    # --- e-mail ---
    Bad("email-no-at", {"alerts": {"email": "not-an-email"}}, "alerts.email", "name@example.com"),
    Bad("email-no-domain", {"alerts": {"email": "ops@localhost"}}, "alerts.email", "name@example.com"),
    Bad("email-a-list", {"alerts": {"email": ["ops@example.com"]}}, "alerts.email", "expected a string"),
    # --- unknown keys, with "did you mean" ---
    Bad("unknown-top-key", {"netwrok": {"vpc_cidr": "10.0.0.0/24"}}, "netwrok", "did you mean 'network'?"),
    Bad("unknown-flow-logs-key", {"flow_logs": {"retention_day": 30}}, "flow_logs.retention_day",
        "did you mean 'retention_days'?"),
    Bad("unknown-rule-key", {"alerts": {"rules": [{**RULE, "treshold": 2}]}}, "alerts.rules[0].treshold",
        "did you mean 'threshold'?"),
    Bad("unknown-nacl-key", {"nacl": {"deny_icmp": True}}, "nacl.deny_icmp", "did you mean 'deny_icmp_egress'?"),
    Bad("unknown-key-for-a-required-one", "stak: lab\n", "stak", "unknown key (did you mean 'stack'?)"),
    Bad("unknown-nested-key", {"flow_logs": {"formt": "v2"}}, "flow_logs.formt", "did you mean 'format'?"),
    Bad("unknown-names-kind", {"names": {"vpcc": "Lab-VPC"}}, "names.vpcc", "did you mean 'vpc'?"),
    # --- wrong types ---
    Bad("cidr-an-integer", {"network": {"vpc_cidr": 10}}, "network.vpc_cidr", "expected a string, got int 10"),
    Bad("bool-a-string", {"flow_logs": {"hive_partitions": "yes"}}, "flow_logs.hive_partitions",
        "expected true or false"),
    Bad("rules-a-string", {"alerts": {"rules": "ping-deny"}}, "alerts.rules", "expected a list"),
    Bad("threshold-a-word", rule(threshold="one"), "alerts.rules[0].threshold", "expected a number"),
    Bad("network-a-string", {"network": "10.0.0.0/24"}, "network", "expected a mapping"),
    Bad("retention-a-string", {"flow_logs": {"retention_days": "30"}}, "flow_logs.retention_days",
        "expected an integer"),
    Bad("top-level-a-list", "- stack: lab\n", "flowwatch.yaml", "expected a mapping at the top level"),
    # --- the stack name becomes part of S3, IAM and Glue names ---
    Bad("stack-uppercase", {"stack": "Lab_VPC"}, "stack", "use 1-24 lowercase letters, digits and '-'"),
    Bad("stack-too-long", {"stack": "a" * 25}, "stack", "1-24 lowercase letters"),
    Bad("stack-leading-dash", {"stack": "-lab"}, "stack", "starting and ending with a letter or digit"),
    Bad("stack-an-integer", {"stack": 123}, "stack", "expected a string, got int 123"),
    Bad("stack-missing", "region: us-east-1\n", "stack", "required key is missing"),
    Bad("stack-option-bad", {}, "--stack: 'My.Stack'", "use 1-24 lowercase letters", options=("--stack", "My.Stack")),
    # --- what CloudWatch accepts ---
    Bad("threshold-negative", rule(threshold=-1), "alerts.rules[0].threshold", "must be > 0"),
    Bad("threshold-zero", rule(threshold=0), "alerts.rules[0].threshold", "must be > 0"),
    Bad("period-zero", rule(period=0), "alerts.rules[0].period", "positive multiple of 60 seconds"),
    Bad("period-negative", rule(period=-60), "alerts.rules[0].period", "positive multiple of 60 seconds"),
    Bad("period-not-a-minute", rule(period=45), "alerts.rules[0].period", "positive multiple of 60 seconds"),
    Bad("evaluation-periods-zero", rule(evaluation_periods=0), "alerts.rules[0].evaluation_periods", "must be >= 1"),
    Bad("evaluation-window-too-long", rule(period=3600, evaluation_periods=200), "alerts.rules[0].evaluation_periods",
        "CloudWatch allows at most 604800 s"),
    Bad("retention-not-in-list", {"flow_logs": {"retention_days": 2}}, "flow_logs.retention_days",
        "allowed: 1, 3, 5, 7, 14, 30"),
    Bad("retention-zero", {"flow_logs": {"retention_days": 0}}, "flow_logs.retention_days",
        "or null (never expire)"),
    Bad("aggregation-300", {"flow_logs": {"aggregation_seconds": 300}}, "flow_logs.aggregation_seconds",
        "expected 60 or 600"),
    Bad("namespace-aws-reserved", rule(namespace="AWS/EC2"), "alerts.rules[0].namespace", "not starting with ':' or 'AWS/'"),
    Bad("metric-with-space", rule(metric="Ping Deny"), "alerts.rules[0].metric", "no spaces"),
    Bad("rules-empty", {"alerts": {"rules": []}}, "alerts.rules", "at least one rule is needed"),
    Bad("rule-names-twice", {"alerts": {"rules": [RULE, RULE]}}, "alerts.rules", "rule names must be unique: r"),
    # --- record fields and filter patterns ---
    Bad("unknown-record-field", {"flow_logs": {"format": ["version", "srcaddr", "bogus-field"]}}, "flow_logs.format",
        "unknown flow-log field 'bogus-field'"),
    Bad("unknown-format-preset", {"flow_logs": {"format": "v9"}}, "flow_logs.format", "allowed: v2, v3, v4, v5"),
    Bad("match-unknown-field", rule(match={"proto": 1}), "alerts.rules[0].match", "did you mean 'protocol'?"),
    Bad("match-field-not-in-format", rule(match={"tcp-flags": 2}), "alerts.rules[0].match",
        "is not in the record format"),
    Bad("default-rule-vs-custom-format", {"flow_logs": {"format": ["version", "srcaddr", "dstaddr"]}},
        "alerts.rules[0].match", "'protocol' is not in the record format"),
    Bad("match-action-typo", rule(match={"action": "DENY"}), "alerts.rules[0].match.action", "expected ACCEPT or REJECT"),
    Bad("pattern-unclosed", rule(match=None, pattern="[version, srcaddr"), "alerts.rules[0].pattern",
        "must end with ']'"),
    Bad("pattern-missing-value", rule(match=None, pattern="[a, b = ]"), "alerts.rules[0].pattern",
        "expected a value after '='"),
    Bad("match-and-pattern", rule(pattern="REJECT"), "alerts.rules[0]", "give exactly one of match"),
    # --- other names and enums ---
    Bad("region-malformed", {"region": "us-east"}, "region", "(e.g. us-east-1)"),
    Bad("region-option-malformed", {}, "--region", "'mars' is not an AWS region (e.g. us-east-1)",
        options=("--region", "mars")),
    Bad("region-option-typo", {"region": "us-east-1"}, "--region", "'us-east-1x' is not an AWS region "
        "(did you mean 'us-east-1'?)", options=("--region", "us-east-1x")),
    Bad("traffic-type", {"flow_logs": {"traffic_type": "DENY"}}, "flow_logs.traffic_type", "'ALL', 'ACCEPT' or 'REJECT'"),
    Bad("s3-file-format", {"flow_logs": {"s3_file_format": "csv"}}, "flow_logs.s3_file_format",
        "'plain-text' or 'parquet'"),
    Bad("bucket-name", {"names": {"bucket": "Lab_Bucket"}}, "names.bucket", "not a valid S3 bucket name"),
    Bad("role-name", {"names": {"role": "lab role"}}, "names.role", "an IAM role name is 1-64"),
    Bad("topic-name", {"names": {"topic": "lab.alerts"}}, "names.topic", "an SNS topic name"),
    Bad("glue-database-name", {"names": {"database": "Lab-DB"}}, "names.database", "Glue names are lowercase"),
    Bad("dashboard-name", {"names": {"dashboard": "lab dashboard"}}, "names.dashboard",
        "a CloudWatch dashboard name is 1-255 of letters, digits, _ and -"),
    Bad("dashboard-not-a-bool", {"dashboard": "yes"}, "dashboard", "expected true or false"),
    Bad("vpc-id-malformed", {"network": {"vpc_id": "vpc-123"}}, "network.vpc_id", "8 or 17 hex digits"),
    # --- YAML syntax (with the line) and the file itself ---
    Bad("yaml-unclosed-bracket", "stack: lab\nnetwork:\n  vpc_cidr: [10.0.0.0/24\n", "line 4",
        "expected ',' or ']'"),
    Bad("yaml-tab-indent", "stack: lab\nnetwork:\n\tvpc_cidr: 10.0.0.0/24\n", "line 3", "'\\t' that cannot start"),
    Bad("yaml-bad-indent", "stack: lab\n  region: us-east-1\n", "line 2", "mapping values are not allowed here"),
    Bad("yaml-duplicate-key", "stack: lab\nalerts:\n  email: a@example.com\nalerts:\n  email: b@example.com\n",
        "line 4", "key 'alerts' is given twice"),
    Bad("config-file-missing", None, "missing.yaml", "config file not found", options=("--config", "missing.yaml")),
    Bad("default-config-file-missing", None, "flowwatch.yaml", "config file not found"),
]

# The same bad config reaches every command that talks to AWS: each validates before its first call.
COMMANDS = [("up",), ("up", "--dry-run"), ("status",), ("down", "--yes"), ("down", "--dry-run"),
            ("simulate-reject", "--mode", "inject", "--no-wait"), ("query", "rejects"), ("logs", "tail")]


@pytest.fixture
def aws_calls(monkeypatch):
    """Every AWS call any botocore client tries, refused: [(service, operation)]."""
    from botocore.client import BaseClient

    seen: list[tuple[str, str]] = []

    def refuse(self, operation_name, api_params):
        seen.append((self.meta.service_model.service_name, operation_name))
        raise AssertionError(f"AWS call {operation_name} during a bad-config run")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    return seen


def write(tmp_path: Path, case: Bad) -> None:
    if case.config is None:
        return
    if isinstance(case.config, str):
        text = case.config
    else:
        text = yaml.safe_dump({"stack": "lab", **case.config}, sort_keys=False)
    (tmp_path / "flowwatch.yaml").write_text(text, encoding="utf-8")


def check(result: Any, case: Bad, calls: list[tuple[str, str]]) -> None:
    err = result.err
    lines = [line for line in err.splitlines() if line.strip()]
    assert result.code == 2, err
    assert "Traceback" not in err + result.out
    assert result.out == ""
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("error: "), err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    assert case.key in lines[0], f"error line does not name {case.key!r}: {lines[0]}"
    assert case.allowed in err, f"error does not say what is allowed ({case.allowed!r}): {err}"
    assert calls == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_fails_before_any_aws_call(case, tmp_path, capsys, monkeypatch, aws_calls):
    write(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, *case.options, *case.args)
    check(result, case, aws_calls)


def test_corpus_is_large_and_distinct():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    configs = [repr(c.config) + repr(c.options) for c in CASES]
    assert len(set(configs)) == len(configs)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_validates_before_its_first_call(command, tmp_path, capsys, monkeypatch, aws_calls):
    case = Bad("subnet-outside-vpc", {"network": {"subnet_cidr": "10.1.0.0/26"}}, "network.subnet_cidr",
               "is not inside vpc_cidr 10.0.0.0/24", args=command)
    write(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    check(run_cli(capsys, monkeypatch, *command), case, aws_calls)


@pytest.mark.slow
def test_the_recorder_sees_the_calls_of_a_good_config(tmp_path, capsys, monkeypatch):
    """Control: the same funnel records the calls of a valid config, so `calls == []` above means something."""
    from botocore.client import BaseClient
    from moto import mock_aws

    seen: list[str] = []
    original = BaseClient._make_api_call

    def record(self, operation_name, api_params):
        seen.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    (tmp_path / "flowwatch.yaml").write_text("stack: lab\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with mock_aws(), moto_fixes():
        result = run_cli(capsys, monkeypatch, "up", "--dry-run")
    assert result.code == 0, result.err
    assert "DescribeVpcs" in seen and len(seen) > 5


@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("yaml-unclosed-bracket", "config-file-missing",
                                                                "unknown-top-key")], ids=lambda c: c.id)
def test_a_real_process_exits_2_without_traceback(case, tmp_path):
    """The installed entry point in its own process; any AWS call would go to a closed port and exit 1."""
    write(tmp_path, case)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWWATCH_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1", NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "flowwatch", *case.options, *case.args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: ") and case.key in lines[0], proc.stderr


def test_a_typo_of_a_required_key_is_one_line_naming_the_typo(tmp_path, capsys, monkeypatch, aws_calls):
    """`stak: lab` is one problem (the typo), not "stack: required key is missing" plus a hint."""
    (tmp_path / "flowwatch.yaml").write_text("stak: lab\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "up")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "error: flowwatch.yaml: stak: unknown key (did you mean 'stack'?); allowed here: stack, region, network, "
        "flow_logs, nacl, alerts, dashboard, names"]


def test_a_bad_region_from_the_environment_is_blamed_on_the_variable(tmp_path, capsys, monkeypatch, aws_calls):
    (tmp_path / "flowwatch.yaml").write_text("stack: lab\nregion: us-east-1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWWATCH_REGION", "us-east-1x")
    result = run_cli(capsys, monkeypatch, "up")
    assert result.code == 2
    assert result.err.strip() == ("error: FLOWWATCH_REGION: 'us-east-1x' is not an AWS region "
                                  "(did you mean 'us-east-1'?)")
    assert aws_calls == []


def test_more_problems_are_counted_in_words(tmp_path, capsys, monkeypatch, aws_calls):
    (tmp_path / "flowwatch.yaml").write_text("stack: lab\nregion: x\nnacl: {deny: 1}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "up")
    assert result.code == 2 and "hint: 1 more problem after this one" in result.err, result.err
