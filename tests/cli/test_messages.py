"""Messages a user reads: defaults that need no explanation, plan lines, `down` cancelled, simulate and demo
hints. Each goes through the real entry point (``flowwatch.cli.main``) or the unit that builds the message."""

from __future__ import annotations

import pytest

from tests.support.aws_faults import moto_fixes
from tests.support.cli import run_cli


@pytest.fixture
def moto_env():
    from moto import mock_aws

    with mock_aws(), moto_fixes():
        yield


# ---- config: a rule needs only name and match; the namespace is the stack's -----------------------------

def test_a_rule_with_only_name_and_match_gets_its_own_metric_and_the_stacks_namespace():
    from flowwatch.config import parse_config

    rules = parse_config({"stack": "blue", "alerts": {"rules": [
        {"name": "rejected-ssh", "match": {"dstport": 22, "action": "REJECT"}},
        {"name": "any-reject", "pattern": "REJECT"}]}}).alerts.rules
    assert [(r.metric, r.namespace) for r in rules] == [("Rejected-Ssh", "flowwatch/blue"),
                                                        ("Any-Reject", "flowwatch/blue")]


def test_the_default_rule_of_two_stacks_feeds_two_namespaces():
    from flowwatch.config import parse_config

    blue, green = (parse_config({"stack": s}).alerts.rules[0] for s in ("blue", "green"))
    assert (blue.name, blue.metric, blue.namespace) == ("ping-deny", "Ping-Deny", "flowwatch/blue")
    assert green.namespace == "flowwatch/green"


def test_explicit_names_are_kept_as_in_config_example(tmp_path):
    from pathlib import Path

    from flowwatch.config import load_config

    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    (rule,) = load_config(example).alerts.rules
    assert (rule.metric, rule.namespace) == ("Ping-Deny", "Lab-VPC-Flow-Log-Ping")


def test_up_dry_run_shows_the_stacks_namespace(tmp_path, capsys, monkeypatch, moto_env):
    (tmp_path / "flowwatch.yaml").write_text(
        "stack: blue\nalerts:\n  rules:\n    - name: rejected-ssh\n      match: {dstport: 22, action: REJECT}\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "up", "--dry-run")
    assert result.code == 0, result.err
    assert "-> flowwatch/blue/Rejected-Ssh" in result.err


# ---- down: answering "n" is a choice, not an error -------------------------------------------------------

class _Terminal:
    """stdin as a terminal that answers ``answer``."""

    def __init__(self, answer: str) -> None:
        import io

        self._in = io.StringIO(answer)

    def isatty(self) -> bool:
        return True

    def readline(self, *args: object) -> str:
        return self._in.readline(*args)   # type: ignore[arg-type]

    def read(self, *args: object) -> str:
        return self._in.read(*args)   # type: ignore[arg-type]


def test_answering_no_to_down_is_a_neutral_line_and_exit_0(tmp_path, capsys, monkeypatch, moto_env):
    import sys

    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/24", TagSpecifications=[{"ResourceType": "vpc", "Tags": [
        {"Key": "flowwatch:stack", "Value": "test"}, {"Key": "flowwatch:step", "Value": "vpc"}]}])["Vpc"]["VpcId"]
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    result = run_cli(capsys, monkeypatch, "down")
    assert result.code == 0, result.err
    assert "Proceed?" in result.err and f"vpc {vpc}" in result.err
    assert result.err.strip().endswith("down cancelled: nothing was removed")   # (a terminal echoes the "n")
    assert "error" not in result.err
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]] == [vpc]


def test_down_cancelled_in_the_engine_is_a_report_not_an_error(ctx):
    from flowwatch import engine

    ctx.aws.ec2.create_vpc(CidrBlock="10.0.0.0/24", TagSpecifications=[{"ResourceType": "vpc", "Tags": [
        {"Key": "flowwatch:stack", "Value": ctx.stack.name}, {"Key": "flowwatch:step", "Value": "vpc"}]}])
    report = engine.down(ctx, confirm=lambda changes: False)
    assert report.cancelled and report.changed == 0


# ---- plan lines: the verb is the action, the target a noun ---------------------------------------------

def _plan_lines(changes, *, dry_run):
    import io

    from flowwatch.console import Output

    buf = io.StringIO()
    Output(stderr=buf, color=False).step("igw", changes, None, dry_run=dry_run)
    return [" ".join(line.split()) for line in buf.getvalue().splitlines()]


def test_igw_targets_are_nouns_after_the_verb():
    from flowwatch.model import DestroyOptions
    from flowwatch.steps.igw import IgwSeen, IgwSpec, IgwStep

    step = IgwStep()
    down = step.plan_destroy(IgwSeen("igw-1", "vpc-1", "rtb-1", "igw-1", vpc_id="vpc-1"), DestroyOptions())
    assert _plan_lines(down, dry_run=True) == [
        "- igw would delete route 0.0.0.0/0 -> igw-1 (down)",
        "- igw would delete attachment of igw-1 to vpc-1 (down)",
        "- igw would delete internet gateway igw-1 (down)"]
    detached = step.plan(IgwSpec(True, "vpc-1"), IgwSeen("igw-1", None, "rtb-1", None, vpc_id="vpc-1"))
    assert _plan_lines(detached[:1], dry_run=False) == ["~ igw update attachment of igw-1 to vpc-1 (detached)"]
    created = step.plan(IgwSpec(True, "vpc-1"), None)
    assert _plan_lines(created[:1], dry_run=True) == [
        "+ igw would create internet gateway, attached to the VPC (not found)"]


def test_the_down_prompt_counts_in_words(monkeypatch, capsys):
    import sys

    from flowwatch.cli.stack import confirm_down
    from flowwatch.console import Output
    from flowwatch.model import Change

    class Ctx:
        out = Output(color=False)
        stack = type("S", (), {"name": "test"})()

    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    assert confirm_down(Ctx(), [Change("vpc", "delete", "vpc vpc-1", "down")]) is False   # type: ignore[arg-type]
    assert "will remove 1 resource of stack 'test':" in capsys.readouterr().err


# ---- simulate-reject -----------------------------------------------------------------------------------

def test_simulate_before_up_with_local_names_the_exact_command(session):
    from flowwatch.actions import simulate
    from flowwatch.errors import FlowwatchError
    from tests.support.context import make_ctx

    ctx = make_ctx(session)
    ctx.local = True
    with pytest.raises(FlowwatchError, match="has no subnet") as err:
        simulate.simulate(ctx, mode="inject", wait=False)
    assert err.value.hint == "run `flowwatch --local up` first"


@pytest.mark.parametrize(("total", "peak", "local", "said", "hint"), [
    (0.0, 0.0, False, "reached 0 in one 60 s period (sum 0 over 0 datapoints), below the threshold 1",
     "no matching record has reached the metric filter yet"),
    (0.0, 0.0, True, "below the threshold 1, so the alarm had nothing to fire on",
     "no record matched the metric filter"),
    (4.0, 2.0, True, "reached 2 in one 60 s period (sum 4 over 2 datapoints), below the threshold 5",
     "the rule needs 5 matching records in one period"),
])
def test_a_timeout_below_the_threshold_says_the_sum_and_the_threshold(session, total, peak, local, said, hint):
    from flowwatch.actions import simulate
    from tests.support.context import make_ctx

    ctx = make_ctx(session)
    ctx.local = local
    threshold = 1.0 if peak == 0 else 5.0
    result = simulate.WaitResult("OK", "a", 60.0, 0 if total == 0 else 2, total, peak, threshold, "ns/M", 60)
    line, why = simulate.timed_out(ctx, result)
    assert line.startswith("timed out after 60 s: alarm a is OK, not ALARM; its metric ns/M ")
    assert said in line and why.startswith(hint)
    assert "evaluates alarms" not in why            # the evaluator is not blamed for data that never came


# ---- the demo: only commands that work afterwards; a failure names the server log ----------------------

class _LocalApi:
    def inbox(self):
        return []


@pytest.fixture
def demo_ctx(session, monkeypatch):
    """The demo's story on moto, its stages that need a real local AWS replaced (they have tests of their own)."""
    from flowwatch import engine
    from flowwatch.actions import demo
    from tests.support.context import make_ctx

    ctx = make_ctx(session, demo.config())
    ctx.local, ctx.local_api = True, _LocalApi()   # type: ignore[assignment]
    monkeypatch.setattr(engine, "up", lambda ctx: None)
    monkeypatch.setattr(engine, "down", lambda ctx: None)
    monkeypatch.setattr(demo, "query_rejects", lambda ctx, fmt: None)
    return ctx


def test_the_demo_without_keep_suggests_no_command_of_its_removed_server(demo_ctx, monkeypatch):
    from flowwatch.actions import demo, simulate

    asked: list[bool] = []
    monkeypatch.setattr(simulate, "simulate", lambda ctx, **kw: asked.append(kw["suggest"]) or 0)
    monkeypatch.setattr(demo, "detection", lambda ctx, **kw: None)   # stage 5: its own tests
    assert demo.story(demo_ctx, keep=False, began=0.0) == 0
    err = " ".join(demo_ctx.out.err.file.getvalue().split())
    assert asked == [False]                                      # simulate names no `local inbox` afterwards
    assert "--local" not in err.split("demo finished")[-1]
    assert "stack and its temporary local AWS are removed" in err and "`flowwatch demo --keep`" in err


def test_the_demo_with_keep_suggests_commands_on_the_server_it_left(demo_ctx, monkeypatch):
    from flowwatch.actions import demo, simulate

    asked: list[bool] = []
    monkeypatch.setattr(simulate, "simulate", lambda ctx, **kw: asked.append(kw["suggest"]) or 0)
    monkeypatch.setattr(demo, "detection", lambda ctx, **kw: None)   # stage 5: its own tests
    assert demo.story(demo_ctx, keep=True, began=0.0) == 0
    err = " ".join(demo_ctx.out.err.file.getvalue().split())
    assert asked == [True]
    assert "`flowwatch --local local inbox`" in err and "are removed" not in err


def test_a_failed_demo_names_the_server_log(demo_ctx, monkeypatch, tmp_path):
    from flowwatch.actions import demo, simulate
    from flowwatch.errors import FlowwatchError

    monkeypatch.setattr(simulate, "simulate", lambda ctx, **kw: 1)

    monkeypatch.setattr(demo, "detection", lambda ctx, **kw: None)   # stage 5: its own tests
    with pytest.raises(FlowwatchError, match="the alarm did not fire") as err:
        demo.story(demo_ctx, keep=False, began=0.0, server_log=tmp_path / "server.log")
    assert err.value.hint is not None and str(tmp_path / "server.log") in err.value.hint
    assert "-vv" not in err.value.hint


@pytest.mark.slow
def test_a_failed_demo_keeps_the_log_it_names_and_stops_its_server(tmp_path, capsys, monkeypatch):
    """Through the entry point, with a real server: the alarm "does not fire"; the hint's log file exists."""
    import tempfile
    from pathlib import Path

    from flowwatch.actions import demo, simulate

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(simulate, "simulate", lambda ctx, **kw: 1)
    monkeypatch.setattr(demo, "detection", lambda ctx, **kw: None)   # stage 5: its own tests
    result = run_cli(capsys, monkeypatch, "demo")
    assert result.code == 1, result.err
    (hint,) = [line for line in result.err.splitlines() if line.startswith("hint: ")]
    log = Path(hint.rsplit(": ", 1)[-1])
    assert log.name == "server.log" and log.is_file() and tmp_path in log.parents
