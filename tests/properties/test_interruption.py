"""Interruption: `up` and `down` stopped at EVERY mutating call they make, then run again.

The points are not written down by hand: a clean `up` and `down` are recorded once per test module (a
module fixture, at test time: nothing runs at collection), and each of their mutating calls becomes a
case, each in a fresh moto account, so a new call in a step is covered the day it appears. One test per
command and way of stopping runs all of its cases and reports every failing one by point. Three ways to
stop at call N:

- ``fail``: AWS answers call N with a non-retryable error (AccessDenied-like): `up` raises AwsError (exit 1);
- ``interrupt-before``: the process is interrupted (KeyboardInterrupt) as call N is about to be sent;
- ``interrupt-after``: the process is interrupted right after AWS performed call N, before flowwatch saw
  the answer (the hardest case: the change happened, nothing in flowwatch knows it).

Then: nothing is left untagged; a fresh `up` completes the stack, which equals the clean one property for
property (tests/stack_state.py); and `down` leaves NOTHING in the account, tagged or not. For `down`
interrupted the same way, a second `down` leaves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import pytest

from flowwatch import engine
from flowwatch.errors import AwsError

from tests.support.aws_faults import FailAt, InterruptAt, PooledSession, is_mutating, moto_fixes
from tests.support.context import make_config, make_ctx
from tests.support.stack_state import describe_stack, leftovers, untagged

pytestmark = pytest.mark.slow

MODES = ("fail", "interrupt-before", "interrupt-after")
PARTS = 3   # each command's points are split in PARTS tests per mode (point i goes to part i % PARTS), to spread them over workers
FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}


def config():
    # An e-mail subscription too, so that Subscribe/Unsubscribe are among the points; the built-in detections,
    # so that their anomaly detectors, Contributor Insights rules and metric-math alarms are too.
    return make_config(alerts={"email": "ops@example.com", "detections": [
        "rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]})


def recorder(session) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    session.events.register("before-call.*.*", lambda event_name, **_: seen.append(
        tuple(event_name.split(".")[1:3])))
    return seen


@dataclass(frozen=True)
class CleanRun:
    up_calls: tuple[tuple[str, str], ...]      # the mutating calls of a clean `up`, in order
    down_calls: tuple[tuple[str, str], ...]    # ... and of the `down` after it
    stack: dict                                # the stack the clean `up` made (tests/support/stack_state.py)


@pytest.fixture(scope="module")
def clean() -> CleanRun:
    """A clean `up` then `down` in a fresh account: their mutating calls, and the stack `up` made."""
    from moto import mock_aws

    with mock.patch.dict(os.environ, FAKE_ENV), mock_aws(), moto_fixes():
        session = PooledSession()
        calls = recorder(session)
        engine.up(make_ctx(session, config()))
        up_calls = [c for c in calls if is_mutating(c[1])]
        stack = describe_stack(session)
        calls.clear()
        engine.down(make_ctx(session, config()))
        down_calls = [c for c in calls if is_mutating(c[1])]
        assert leftovers(session) == {}
        session.close()
    return CleanRun(tuple(up_calls), tuple(down_calls), stack)


def every_point(calls: tuple[tuple[str, str], ...], mode: str, part: int,
                case: Callable[[object, int, tuple[str, str]], None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``case(session, index, call)`` for every mutating call of this part, each in a fresh moto
    account; fail once at the end, listing every point that failed (one broken step hides no other)."""
    from moto import mock_aws

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    failed: list[str] = []
    mine = [(index, call) for index, call in enumerate(calls) if index % PARTS == part]
    for index, call in mine:
        with mock_aws(), moto_fixes():
            session = PooledSession()
            try:
                case(session, index, call)
            except (Exception, pytest.fail.Exception) as exc:
                failed.append(f"{index:02d}-{call[0]}.{call[1]}-{mode}: {type(exc).__name__}: {str(exc)[:300]}")
            finally:
                session.close()
    assert failed == [], f"{len(failed)} of {len(mine)} points failed:\n" + "\n".join(failed)


@pytest.fixture
def session(pooled_session):
    return pooled_session


def stop_at(session, mode: str, index: int):
    if mode == "fail":
        return FailAt(index).install(session)
    return InterruptAt(index, mode.removeprefix("interrupt-")).install(session)


def run_stopped(command, session, mode: str, index: int, expected: tuple[str, str]) -> None:
    """Run `command` until it is stopped at mutating call `index`, which must be `expected`."""
    stopper = stop_at(session, mode, index)
    if mode == "fail":
        with pytest.raises(AwsError) as exc:
            command(make_ctx(session, config()))
        assert exc.value.exit_code == 1
        assert f"{expected[1]} failed:" in exc.value.message
    else:
        with pytest.raises(KeyboardInterrupt):
            command(make_ctx(session, config()))
    assert stopper.hit == expected, f"stopped at {stopper.hit}, expected {expected}"
    stopper.index = -1


def test_the_points_cover_every_mutating_call(clean):
    up_calls, down_calls = clean.up_calls, clean.down_calls
    ops = {op for _, op in up_calls}
    assert {"CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateRoute", "CreateLogGroup", "CreateRole",
            "CreateBucket", "CreateFlowLogs", "CreateNetworkAclEntry", "CreateTopic", "Subscribe", "PutMetricFilter",
            "PutMetricAlarm", "CreateDatabase", "CreateTable", "CreateWorkGroup", "CreateNamedQuery"} <= ops
    assert {"DeleteVpc", "DeleteFlowLogs", "DeleteRole", "DeleteBucket", "DeleteWorkGroup", "DeleteAlarms",
            "Unsubscribe", "DeleteNetworkAclEntry"} <= {op for _, op in down_calls}
    print(f"interruption points: up {len(up_calls)} x {len(MODES)} modes, down {len(down_calls)} x {len(MODES)} modes")


def test_create_bucket_carries_the_stack_tags(session):
    """Why an interrupted `up` can't leave an untagged bucket on AWS: the tags travel in CreateBucket itself
    (tests/aws_faults.emulate_create_bucket_tags applies them as AWS does; moto alone would drop them)."""
    sent: list[dict] = []
    session.events.register("before-parameter-build.s3.CreateBucket", lambda params, **_: sent.append(params))
    engine.up(make_ctx(session, config()))
    (params,) = sent
    tags = {t["Key"]: t["Value"] for t in params["CreateBucketConfiguration"]["Tags"]}
    assert tags["flowwatch:stack"] == "test"


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("mode", MODES)
def test_up_stopped_at_every_mutating_call_then_resumed(mode, part, clean, monkeypatch):
    def case(session, index, call):
        run_stopped(engine.up, session, mode, index, call)
        assert untagged(session) == []                     # whatever exists already carries the stack tag

        report = engine.up(make_ctx(session, config()))    # a new process: nothing remembered but AWS
        assert report.errors == 0
        assert describe_stack(session) == clean.stack      # the same stack as a clean up, property for property

        engine.down(make_ctx(session, config()))
        assert leftovers(session) == {}

    every_point(clean.up_calls, mode, part, case, monkeypatch)


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("mode", MODES)
def test_down_stopped_at_every_mutating_call_then_run_again(mode, part, clean, monkeypatch):
    def case(session, index, call):
        engine.up(make_ctx(session, config()))
        run_stopped(engine.down, session, mode, index, call)
        assert untagged(session) == []                     # what is left is still findable by its tag

        engine.down(make_ctx(session, config()))
        assert leftovers(session) == {}
        assert engine.down(make_ctx(session, config())).changed == 0

    every_point(clean.down_calls, mode, part, case, monkeypatch)


def test_an_interrupted_cli_run_exits_130_and_the_next_one_completes(clean, session, tmp_path, capsys, monkeypatch):
    from tests.support.cli import run_cli, use_session

    up_calls = clean.up_calls
    (tmp_path / "flowwatch.yaml").write_text("stack: test\nalerts:\n  email: ops@example.com\n  detections: "
                                             "[rejected-spike, top-rejected-sources, ssh-rdp-probe, egress-spike]\n")
    monkeypatch.chdir(tmp_path)
    use_session(monkeypatch, session)
    # the CLI's first mutating call is the stack lock's PutParameter, then the engine's calls
    stopper = InterruptAt(1 + [op for _, op in up_calls].index("CreateBucket"), "after").install(session)
    result = run_cli(capsys, monkeypatch, "up")
    assert (result.code, result.err.strip().splitlines()[-1]) == (130, "interrupted")
    assert "Traceback" not in result.err and stopper.hit == ("s3", "CreateBucket")
    assert untagged(session) == []
    with pytest.raises(session.client("ssm").exceptions.ParameterNotFound):   # the lock was released
        session.client("ssm").get_parameter(Name="/flowwatch/test/lock")
    assert run_cli(capsys, monkeypatch, "up", "--lock-timeout", "0s").code == 0
    assert describe_stack(session) == clean.stack
    assert run_cli(capsys, monkeypatch, "down", "--yes").code == 0
    assert leftovers(session) == {}
