"""The command line as a user meets it: help without boto3, exit codes, stderr/stdout split, env vars."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.support.cli import run_cli
from tests.support.inventory import empty, inventory
from tests.support.aws_faults import moto_fixes


def test_help_does_not_import_boto3():
    code = textwrap.dedent("""
        import sys
        from flowwatch.cli import cli
        try:
            cli.main(["--help"], standalone_mode=False, prog_name="flowwatch")
        except SystemExit:
            pass
        heavy = sorted(m for m in ("boto3", "botocore", "rich", "moto", "duckdb", "pydantic", "yaml") if m in sys.modules)
        print("HEAVY=" + ",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage: flowwatch" in out
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_every_command_has_help(capsys, monkeypatch):
    for command in (["up"], ["status"], ["down"], ["simulate-reject"], ["query"], ["logs", "tail"],
                    ["pattern", "test"], ["local", "start"], ["demo"]):
        result = run_cli(capsys, monkeypatch, *command, "--help")
        assert result.code == 0, command
        assert "Usage:" in result.out


@pytest.fixture
def moto_env(monkeypatch):
    from moto import mock_aws

    with mock_aws(), moto_fixes():
        yield


@pytest.mark.slow
def test_up_dry_run_prints_the_plan_and_changes_nothing(tmp_path, capsys, monkeypatch, moto_env):
    import boto3

    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "up", "--dry-run")
    assert result.code == 0, result.err
    assert "would create" in result.err and "vpc 10.0.0.0/24" in result.err
    assert result.out == ""                      # progress goes to stderr only
    assert empty(inventory(boto3.Session(region_name="us-east-1"))) == {}


@pytest.mark.slow
def test_up_status_down_through_the_cli(tmp_path, capsys, monkeypatch, moto_env):
    import boto3

    config = tmp_path / "custom.yaml"
    config.write_text("stack: test\nalerts:\n  email: ops@example.com\n")
    monkeypatch.setenv("FLOWWATCH_CONFIG", str(config))
    assert run_cli(capsys, monkeypatch, "up").code == 0
    second = run_cli(capsys, monkeypatch, "up")
    assert second.code == 0 and "Changed: 0" in second.err
    status = run_cli(capsys, monkeypatch, "--output", "json", "status")
    assert status.code == 0
    doc = json.loads(status.out)
    states = {s["step"]: s["state"] for s in doc["steps"]}
    assert states["vpc"] == states["alarm"] == states["athena"] == "found"
    refused = run_cli(capsys, monkeypatch, "down", stdin="")
    assert refused.code == 2 and "--yes" in refused.err
    assert run_cli(capsys, monkeypatch, "down", "--yes").code == 0
    assert empty(inventory(boto3.Session(region_name="us-east-1"))) == {}
    again = run_cli(capsys, monkeypatch, "down", "--yes")
    assert again.code == 0 and "Nothing to remove" in again.err


@pytest.mark.slow
def test_up_and_status_give_the_dashboard_address(tmp_path, capsys, monkeypatch, moto_env):
    (tmp_path / "flowwatch.yaml").write_text("stack: test\nregion: eu-west-1\nnetwork:\n  availability_zone: eu-west-1a\n")
    monkeypatch.chdir(tmp_path)
    name = "flowwatch-test-eu-west-1"
    url = f"https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/{name}"
    up = run_cli(capsys, monkeypatch, "up")
    assert up.code == 0, up.err
    assert up.err.splitlines()[-1] == f"Dashboard: {url}"           # after the summary
    again = run_cli(capsys, monkeypatch, "--output", "json", "up")
    assert json.loads(again.out)["dashboard"] == {"name": name, "url": url, "command": None}
    status = run_cli(capsys, monkeypatch, "status")
    assert status.code == 0, status.err
    assert f"Dashboard: {url}" in status.err and name in status.out
    doc = json.loads(run_cli(capsys, monkeypatch, "--output", "json", "status").out)
    assert doc["dashboard"] == {"name": name, "url": url, "command": None}
    row = next(s for s in doc["steps"] if s["step"] == "dashboard")
    assert row["state"] == "found" and row["ids"] == {"dashboard": name, "url": url}
    off = tmp_path / "off.yaml"
    off.write_text("stack: test\nregion: eu-west-1\nnetwork:\n  availability_zone: eu-west-1a\ndashboard: false\n")
    removed = run_cli(capsys, monkeypatch, "--config", str(off), "--output", "json", "up")
    assert json.loads(removed.out)["dashboard"] is None and "Dashboard:" not in removed.err


@pytest.mark.slow
def test_stack_option_works_without_a_config_file(tmp_path, capsys, monkeypatch, moto_env):
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "--stack", "other", "up", "--dry-run")
    assert result.code == 0, result.err
    assert "Planning stack 'other'" in result.err


def test_missing_config_file_is_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "up")
    assert result.code == 2
    assert result.err.splitlines()[0] == "error: flowwatch.yaml: config file not found"
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_foreign_collision_is_exit_1(tmp_path, capsys, monkeypatch, moto_env):
    import boto3

    boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName="/flowwatch/test/flow-logs")
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, monkeypatch, "up")
    assert result.code == 1
    assert "log group /flowwatch/test/flow-logs exists and is not the stack's" in result.err


def test_python_dash_m_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "flowwatch", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "flowwatch" in out.stdout


def test_main_makes_its_aws_calls_on_the_injected_session(tmp_path, capsys, monkeypatch, session, calls):
    """main(session_factory=...) is the injection point: every AWS call of the command goes through the
    session it returns, asked for with the --profile and the config's region; the default is not used."""
    from flowwatch import aws
    from flowwatch.cli import main

    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    asked = []

    def factory(profile, region):
        asked.append((profile, region))
        return session

    def refuse(*_, **__):
        raise AssertionError("the default session factory was used")

    monkeypatch.setattr(aws, "default_session", refuse)
    with pytest.raises(SystemExit) as exc:
        main(["--profile", "ops", "up", "--dry-run"], session_factory=factory)
    assert exc.value.code == 0, capsys.readouterr().err
    assert asked == [("ops", "us-east-1")]
    assert ("ec2", "DescribeVpcs") in calls and ("cloudwatch-logs", "DescribeLogGroups") in calls
    assert "would create" in capsys.readouterr().err


def test_the_app_is_in_clicks_context_and_commands_share_its_output(capsys, monkeypatch):
    """The group builds one App (settings + Output + session factory) into click's context."""
    import click

    from flowwatch.cli import cli
    from flowwatch.cli.app import App

    seen = []

    @cli.command("_probe", hidden=True)
    @click.pass_obj
    def probe(app):
        seen.append(app)
        assert app.out is app.out                       # one Output per run

    try:
        result = run_cli(capsys, monkeypatch, "--stack", "x", "--output", "json", "-vv", "_probe",
                         session_factory=lambda profile, region: None)
    finally:
        cli.commands.pop("_probe")
    assert result.code == 0
    (app,) = seen
    assert isinstance(app, App) and app.settings.stack == "x" and app.settings.output == "json"
    assert app.settings.verbosity == 2 and app.out.verbosity == 2 and app.session_factory is not None
