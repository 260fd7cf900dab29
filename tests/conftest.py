"""Shared fixtures: fake credentials, moto in-process, a recorder of every AWS call, a Context."""

from __future__ import annotations

import os

import pytest

from tests.support.context import make_ctx


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never reach AWS: fake credentials, a fixed region, no profile or endpoint from the developer's shell."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "FLOWWATCH_")):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto loads thousands of default AMIs into every new EC2 backend (seconds per test); flowwatch reads
    # its AMI from the SSM parameter, which moto answers without them
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(state / "cache"))


@pytest.fixture
def session():
    """A plain boto3 session on moto (its own clients, as a CLI run has); botocore's service models are
    read from disk once per process (tests/support/aws_faults.new_session), not once per client."""
    from moto import mock_aws

    from tests.support.aws_faults import moto_fixes, new_session

    with mock_aws(), moto_fixes():
        yield new_session(emulate=False)


@pytest.fixture
def pooled_session(monkeypatch):
    """moto with clients shared between tests (tests/aws_faults.PooledSession): much faster for suites
    that run up/down many times; EC2's default AMIs are not loaded."""
    from moto import mock_aws

    from tests.support.aws_faults import PooledSession, moto_fixes

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws(), moto_fixes():
        pooled = PooledSession()
        yield pooled
        pooled.close()


@pytest.fixture
def calls(session) -> list[tuple[str, str]]:
    """Every AWS operation made through `session`, as (service, operation)."""
    seen: list[tuple[str, str]] = []
    session.events.register(
        "before-call.*.*", lambda event_name, model, **_: seen.append((event_name.split(".")[1], model.name)))
    return seen


@pytest.fixture
def ctx(session, calls):
    return make_ctx(session)

