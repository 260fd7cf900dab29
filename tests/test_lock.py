"""The stack lock (flowwatch.lock) on moto's SSM in-process, `flowwatch unlock`, --lock-timeout, and the
ClientTokens of EC2 creates. Waiting never sleeps: a fake clock advances by what would have been slept."""

from __future__ import annotations

import json
import os
import signal

import pytest

from flowwatch.errors import UsageError
from flowwatch.lock import Holder, LockHeldError, LockRequest, StackLock, Terminated, held, parameter_name, parse_timeout
from tests.support.cli import run_cli, use_session
from tests.support.context import make_ctx


class FakeTime:
    """A clock that only moves when something sleeps; ``on_sleep(n)`` runs at the n-th sleep."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.slept))


def request(fake: FakeTime, timeout: float = 60.0, command: str = "flowwatch up") -> LockRequest:
    return LockRequest(command, timeout, sleep=fake.sleep, clock=fake.clock)


def stored(session, stack="test"):
    try:
        return json.loads(session.client("ssm").get_parameter(Name=parameter_name(stack))["Parameter"]["Value"])
    except session.client("ssm").exceptions.ParameterNotFound:
        return None


def other_holder(session, stack="test", command="flowwatch down --yes") -> Holder:
    """Another run's lock on the stack, taken through the same code."""
    holder = Holder.me(command)
    holder = Holder(**{**holder.as_dict(), "user": "alice", "host": "build-7", "pid": 4242})
    assert StackLock(session.client("ssm"), stack).try_acquire(holder) is None
    return holder


@pytest.mark.parametrize(("text", "seconds"), [("0s", 0.0), ("60s", 60.0), ("5m", 300.0), ("2h", 7200.0),
                                               (" 30s ", 30.0)])
def test_timeouts(text, seconds):
    assert parse_timeout(text) == seconds


@pytest.mark.parametrize("text", ["", "60", "-5s", "1.5m", "5 minutes", "25h", "1d", "s"])
def test_bad_timeouts_name_the_allowed_forms(text):
    with pytest.raises(UsageError) as exc:
        parse_timeout(text)
    assert exc.value.exit_code == 2
    assert exc.value.message.startswith("--lock-timeout: ") and "allowed: a number and a unit s, m or h" in exc.value.message


def test_acquire_names_the_holder_and_release_removes_it(session, calls):
    lock = StackLock(session.client("ssm"), "test")
    me = lock.acquire(request(FakeTime()))
    value = stored(session)
    assert value == me.as_dict()
    assert set(value) == {"id", "user", "host", "pid", "command", "since", "version"}
    assert value["pid"] == os.getpid() and value["command"] == "flowwatch up" and value["since"].endswith("Z")
    put = [c for c in calls if c == ("ssm", "PutParameter")]
    assert len(put) == 1
    assert lock.release(me) is None
    assert stored(session) is None


def test_put_is_never_an_overwrite(session):
    sent = []
    ssm = session.client("ssm")
    ssm.meta.events.register("provide-client-params.ssm.PutParameter", lambda params, **_: sent.append(dict(params)))
    StackLock(ssm, "test").acquire(request(FakeTime()))
    assert sent and all(p["Overwrite"] is False for p in sent)


def test_a_held_lock_is_waited_for_with_backoff_then_exit_1_naming_holder_and_unlock(session):
    theirs = other_holder(session)
    ctx = make_ctx(session)
    fake = FakeTime()
    with pytest.raises(LockHeldError) as exc:
        with held(ctx, LockRequest("flowwatch up", 20.0, unlock="flowwatch --stack test unlock {id}",
                                   sleep=fake.sleep, clock=fake.clock)):
            pytest.fail("the block must not run without the lock")
    assert exc.value.exit_code == 1
    message = exc.value.message
    assert "alice@build-7 (pid 4242, `flowwatch down --yes`" in message and theirs.since in message
    assert f"`flowwatch --stack test unlock {theirs.id}`" in message
    assert sum(fake.slept) == pytest.approx(20.0)            # waited the whole timeout, not more
    assert fake.slept[0] == 0.5 and fake.slept[1] == 0.75    # polling with backoff
    assert max(fake.slept) <= 5.0
    err = ctx.out.err.file.getvalue()
    assert "waiting for the lock of stack 'test': held by alice@build-7" in err
    assert "waited 0 s of 20 s" in err and "waited 10 s of 20 s" in err and "waited 15 s of 20 s" in err   # the live line counts up
    assert stored(session)["id"] == theirs.id                # never broken


def test_zero_timeout_fails_at_once(session, calls):
    other_holder(session)
    fake = FakeTime()
    with pytest.raises(LockHeldError):
        StackLock(session.client("ssm"), "test").acquire(request(fake, timeout=0.0))
    assert fake.slept == []
    assert [c for c in calls if c[1] == "PutParameter"] == [("ssm", "PutParameter")] * 2   # theirs, then ours once


def test_the_lock_is_taken_once_the_holder_releases_it(session):
    theirs = other_holder(session)
    lock = StackLock(session.client("ssm"), "test")
    fake = FakeTime(on_sleep=lambda n: n == 3 and lock.release(theirs))
    me = lock.acquire(request(fake))
    assert len(fake.slept) == 3 and stored(session)["id"] == me.id != theirs.id


@pytest.mark.parametrize("raised", [RuntimeError("boom"), KeyboardInterrupt()])
def test_released_when_the_block_fails_or_is_interrupted(session, raised):
    ctx = make_ctx(session)
    with pytest.raises(type(raised)):
        with held(ctx, request(FakeTime())) as me:
            assert stored(session)["id"] == me.id
            raise raised
    assert stored(session) is None


def test_sigterm_while_held_raises_so_the_lock_is_released(session):
    ctx = make_ctx(session)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with held(ctx, request(FakeTime())):
            os.kill(os.getpid(), signal.SIGTERM)
    assert stored(session) is None
    assert signal.getsignal(signal.SIGTERM) is before       # the handler is only there while held


def test_release_leaves_a_lock_that_is_not_ours(session):
    ssm = session.client("ssm")
    lock = StackLock(ssm, "test")
    mine = lock.acquire(request(FakeTime()))
    lock.delete(mine.id)                                       # broken by `unlock` meanwhile...
    theirs = other_holder(session)                             # ...and taken by another run
    assert "now held by alice@build-7" in lock.release(mine)
    assert stored(session)["id"] == theirs.id


def test_no_request_takes_no_lock(session, calls):
    with held(make_ctx(session), None) as me:
        assert me is None
    assert not [c for c in calls if c[0] == "ssm"]


# ---------- flowwatch unlock ----------
@pytest.fixture
def cli_env(session, monkeypatch, tmp_path):
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    use_session(monkeypatch, session)
    return session


def test_unlock_when_not_locked_exits_0(cli_env, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "unlock", "0123", "--yes")
    assert result.code == 0 and "stack 'test' is not locked" in result.err


def test_unlock_with_another_id_exits_2_showing_the_real_holder(cli_env, capsys, monkeypatch):
    theirs = other_holder(cli_env)
    result = run_cli(capsys, monkeypatch, "unlock", "not-the-id", "--yes")
    assert result.code == 2
    assert "'not-the-id' is not the id of the lock of stack 'test'" in result.err
    assert "alice@build-7 (pid 4242" in result.err and theirs.id in result.err
    assert stored(cli_env)["id"] == theirs.id


def test_unlock_asks_and_refuses_without_a_terminal(cli_env, capsys, monkeypatch):
    theirs = other_holder(cli_env)
    result = run_cli(capsys, monkeypatch, "unlock", theirs.id, stdin="y\n")
    assert result.code == 2 and "pass --yes" in result.err
    assert "locked by alice@build-7" in result.err              # the holder is shown first
    assert stored(cli_env)["id"] == theirs.id


def test_unlock_confirmed_on_a_terminal(cli_env, capsys, monkeypatch):
    theirs = other_holder(cli_env)
    import io
    import sys

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    result = run_cli(capsys, monkeypatch, "unlock", theirs.id)
    assert result.code == 0 and "unlock cancelled" in result.err and stored(cli_env)["id"] == theirs.id
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    result = run_cli(capsys, monkeypatch, "unlock", theirs.id)
    assert result.code == 0 and "broken" in result.err and stored(cli_env) is None


def test_unlock_yes_json(cli_env, capsys, monkeypatch):
    theirs = other_holder(cli_env)
    result = run_cli(capsys, monkeypatch, "--output", "json", "unlock", theirs.id, "--yes")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["unlocked"] is True and data["locked"] is True and data["holder"]["id"] == theirs.id
    assert data["parameter"] == "/flowwatch/test/lock"
    assert stored(cli_env) is None
    again = json.loads(run_cli(capsys, monkeypatch, "--output", "json", "unlock", theirs.id, "--yes").out)
    assert again["locked"] is False and again["unlocked"] is False


@pytest.mark.parametrize("command", [["up"], ["down", "--yes"], ["simulate-reject"], ["demo"]])
def test_bad_lock_timeout_exits_2_before_any_aws_call(cli_env, calls, capsys, monkeypatch, command):
    result = run_cli(capsys, monkeypatch, *command, "--lock-timeout", "soon")
    assert result.code == 2
    assert "--lock-timeout: 'soon' is not a duration; allowed: a number and a unit s, m or h" in result.err
    assert calls == []


def test_bad_lock_timeout_from_the_environment_names_the_variable(cli_env, calls, capsys, monkeypatch):
    monkeypatch.setenv("FLOWWATCH_LOCK_TIMEOUT", "forever")
    result = run_cli(capsys, monkeypatch, "up")
    assert result.code == 2 and "FLOWWATCH_LOCK_TIMEOUT: 'forever' is not a duration" in result.err
    assert calls == []


# ---------- ClientToken ----------
def test_create_flow_logs_carries_a_client_token_new_per_attempt_and_per_run(session):
    from botocore.stub import ANY, Stubber

    from flowwatch.model import Change, Stack
    from flowwatch.steps.flow_logs import CWL, FlowLogsStep
    from tests.support.context import make_ctx

    def create_twice(ctx):
        """One CreateFlowLogs that IAM's propagation answers 'cannot assume', then the attempt that works."""
        ec2 = ctx.aws.ec2
        sent = []
        ec2.meta.events.register("provide-client-params.ec2.CreateFlowLogs", lambda params, **_: sent.append(dict(params)))
        stub = Stubber(ec2)
        expected = {"ResourceIds": ANY, "ResourceType": "VPC", "TrafficType": ANY, "LogFormat": ANY,
                    "MaxAggregationInterval": ANY, "LogDestinationType": CWL, "LogGroupName": ANY,
                    "DeliverLogsPermissionArn": ANY, "TagSpecifications": ANY, "ClientToken": ANY}
        stub.add_response("create_flow_logs", {"FlowLogIds": [], "Unsuccessful": [{"Error": {
            "Code": "400", "Message": "Unable to assume given IAM role"}}]}, expected)
        stub.add_response("create_flow_logs", {"FlowLogIds": ["fl-1"]}, expected)
        ctx.stack = Stack("test", vpc_id="vpc-1", role_arn="arn:aws:iam::123456789012:role/r")
        step = FlowLogsStep()
        with stub:
            spec = step.desired(ctx)
            (create,) = [c for c in step.plan(spec, None) if c.params["dest"] == CWL]
            step.apply(ctx, create)
        return [p["ClientToken"] for p in sent]

    ctx = make_ctx(session)
    ctx.stack.account = "123456789012"
    first, second = create_twice(ctx)
    assert first != second and all(0 < len(t) <= 64 and t.isascii() for t in (first, second))
    other = make_ctx(session)
    other.stack.account = "123456789012"
    assert not {first, second} & set(create_twice(other))     # a new run: new tokens
    assert ctx.client_token("CreateFlowLogs", CWL, 1) == first  # a retried call of this run and attempt: the same


def test_run_instances_carries_the_run_s_client_token(session):
    from botocore.stub import ANY, Stubber

    from flowwatch.actions import simulate

    ctx = make_ctx(session)
    sent = []
    ec2 = ctx.aws.ec2
    ec2.meta.events.register("provide-client-params.ec2.RunInstances", lambda params, **_: sent.append(dict(params)))
    target = simulate.Target("vpc-1", "subnet-1", "10.0.0.0/26", None)
    stub = Stubber(ec2)
    import flowwatch.engine as engine

    monkey = pytest.MonkeyPatch()
    monkey.setattr(engine, "converge", lambda ctx, *names: None)
    monkey.setattr("flowwatch.steps.cleanup.find_instances", lambda *a, **k: [])
    monkey.setattr(simulate, "ensure_security_group", lambda ctx, vpc_id: "sg-1")
    try:
        stub.add_response("run_instances", {"Instances": [{"InstanceId": "i-1"}]},
                          {"ImageId": ANY, "InstanceType": ANY, "MinCount": 1, "MaxCount": 1, "SubnetId": "subnet-1",
                           "SecurityGroupIds": ["sg-1"], "UserData": ANY, "InstanceInitiatedShutdownBehavior": ANY,
                           "MetadataOptions": ANY, "TagSpecifications": ANY, "ClientToken": ANY})
        with stub:
            assert simulate.launch_instance(ctx, target) == "i-1"
    finally:
        monkey.undo()
    (params,) = sent
    assert params["ClientToken"] == ctx.client_token("RunInstances", "subnet-1")
    assert params["ClientToken"] != make_ctx(session).client_token("RunInstances", "subnet-1")
