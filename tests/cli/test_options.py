"""The global options as the AWS CLI and Terraform users expect them: before or after any subcommand,
at any depth, each from FLOWWATCH_<NAME>; -v / -vv show the AWS calls; --version; did-you-mean;
hints that point the right way. All through the real entry point (flowwatch.cli.main)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import click
import pytest

from flowwatch.cli import cli
from flowwatch.cli import local as local_cli
from flowwatch.cli.app import App
from flowwatch.settings import Settings

from tests.support.cli import run_cli, use_session


@pytest.fixture
def probe() -> Iterator[list[App]]:
    """A hidden `_probe` command at the top and one under `local` (depth 2): they record the App they get."""
    seen: list[App] = []

    @click.command("_probe", hidden=True)
    @click.pass_obj
    def top(app: App) -> None:
        seen.append(app)

    @click.command("_probe", hidden=True)
    @click.pass_obj
    def nested(app: App) -> None:
        seen.append(app)

    cli.add_command(top)
    local_cli.local.add_command(nested)
    try:
        yield seen
    finally:
        cli.commands.pop("_probe")
        local_cli.local.commands.pop("_probe")


def settings_of(capsys, monkeypatch, seen: list[App], *args: str) -> Settings:
    result = run_cli(capsys, monkeypatch, *args, session_factory=lambda profile, region: None)
    assert result.code == 0, result.err
    return seen[-1].settings


OPTIONS = [   # (command-line words, Settings field, expected value)
    (["--config", "other.yaml"], "config_path", "other.yaml"),
    (["--stack", "s1"], "stack", "s1"),
    (["--profile", "p1"], "profile", "p1"),
    (["--region", "eu-west-1"], "region", "eu-west-1"),
    (["--endpoint-url", "http://127.0.0.1:1"], "endpoint_url", "http://127.0.0.1:1"),
    (["--local"], "local", True),
    (["--output", "json"], "output", "json"),
    (["--wide"], "wide", True),
    (["-vv"], "verbosity", 2),
    (["--debug"], "debug", True),
]


@pytest.mark.parametrize(("words", "field", "expected"), OPTIONS, ids=[o[1] for o in OPTIONS])
@pytest.mark.parametrize("where", ["before", "after", "nested-before", "nested-after"])
def test_every_global_option_goes_before_or_after_the_command_at_any_depth(capsys, monkeypatch, probe,
                                                                           words, field, expected, where):
    command = ["local", "_probe"] if where.startswith("nested") else ["_probe"]
    args = [*words, *command] if where.endswith("before") else [*command, *words]
    assert getattr(settings_of(capsys, monkeypatch, probe, *args), field) == expected


ENV = [   # (FLOWWATCH_ variable, value, Settings field, expected)
    ("FLOWWATCH_CONFIG", "env.yaml", "config_path", "env.yaml"),
    ("FLOWWATCH_STACK", "s2", "stack", "s2"),
    ("FLOWWATCH_PROFILE", "p2", "profile", "p2"),
    ("FLOWWATCH_REGION", "ap-south-1", "region", "ap-south-1"),
    ("FLOWWATCH_ENDPOINT_URL", "http://127.0.0.1:2", "endpoint_url", "http://127.0.0.1:2"),
    ("FLOWWATCH_LOCAL", "1", "local", True),
    ("FLOWWATCH_OUTPUT", "csv", "output", "csv"),
    ("FLOWWATCH_WIDE", "1", "wide", True),
    ("FLOWWATCH_VERBOSE", "2", "verbosity", 2),
    ("FLOWWATCH_DEBUG", "1", "debug", True),
]


@pytest.mark.parametrize(("var", "value", "field", "expected"), ENV, ids=[e[0] for e in ENV])
def test_every_global_option_reads_its_environment_variable(capsys, monkeypatch, probe, var, value, field,
                                                            expected):
    monkeypatch.setenv(var, value)
    for command in (["_probe"], ["local", "_probe"]):
        assert getattr(settings_of(capsys, monkeypatch, probe, *command), field) == expected


def test_the_command_line_beats_the_environment_and_after_beats_before(capsys, monkeypatch, probe):
    monkeypatch.setenv("FLOWWATCH_OUTPUT", "csv")
    monkeypatch.setenv("FLOWWATCH_VERBOSE", "2")
    settings = settings_of(capsys, monkeypatch, probe, "--output", "table", "local", "_probe", "--output", "json")
    assert settings.output == "json" and settings.verbosity == 2
    assert settings_of(capsys, monkeypatch, probe, "-v", "_probe").verbosity == 1
    assert settings_of(capsys, monkeypatch, probe, "--stack", "a", "_probe", "--stack", "b").stack == "b"
    assert settings_of(capsys, monkeypatch, probe, "_probe").config_explicit is False
    assert settings_of(capsys, monkeypatch, probe, "_probe", "--config", "x.yaml").config_explicit is True


def test_the_output_of_a_late_verbose_flag_is_the_runs_one_output(capsys, monkeypatch, probe):
    settings_of(capsys, monkeypatch, probe, "_probe", "-v")
    (app,) = probe
    assert app.out.verbosity == 1


@pytest.mark.parametrize("args", [
    ["--local", "--endpoint-url", "http://127.0.0.1:1", "status"],
    ["--local", "status", "--endpoint-url", "http://127.0.0.1:1"],
    ["query", "rejects", "--local", "--endpoint-url", "http://127.0.0.1:1"],
])
def test_local_and_endpoint_url_exclude_each_other_wherever_given(capsys, monkeypatch, args):
    result = run_cli(capsys, monkeypatch, *args)
    assert result.code == 2
    assert "--local and --endpoint-url exclude each other" in result.err


@pytest.fixture
def on_moto(session, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    use_session(monkeypatch, session)
    return session


@pytest.mark.parametrize("args", [
    ["--output", "json", "status", "--stack", "t"],
    ["status", "--output", "json", "--stack", "t"],
    ["--stack", "t", "status", "--output", "json"],
])
def test_status_takes_the_options_on_either_side(capsys, monkeypatch, on_moto, args):
    result = run_cli(capsys, monkeypatch, *args)
    assert result.code == 1, result.err            # nothing is up: missing resources are exit 1
    doc = json.loads(result.out)
    assert {s["step"]: s["state"] for s in doc["steps"]}["vpc"] == "missing"


@pytest.mark.parametrize("args", [["--stack", "other", "up", "--dry-run"], ["up", "--dry-run", "--stack", "other"]])
def test_up_dry_run_takes_the_options_on_either_side(capsys, monkeypatch, on_moto, args):
    result = run_cli(capsys, monkeypatch, *args)
    assert result.code == 0, result.err
    assert "Planning stack 'other'" in result.err


def test_query_output_is_the_global_option_on_either_side(capsys, monkeypatch, tmp_path):
    from tests.query.test_local import write_tree

    root = tmp_path / "logs"
    write_tree(root)
    after = run_cli(capsys, monkeypatch, "query", "rejects", "--source", str(root), "--output", "json")
    before = run_cli(capsys, monkeypatch, "--output", "json", "query", "rejects", "--source", str(root))
    assert after.code == before.code == 0, after.err + before.err
    assert json.loads(after.out) == json.loads(before.out) and json.loads(after.out)
    listed = run_cli(capsys, monkeypatch, "query", "list", "--output", "csv")
    assert listed.out.splitlines()[0] == "preset,description,parameters,default_limit"
    help_text = run_cli(capsys, monkeypatch, "query", "rejects", "--help").out
    assert help_text.count("--output") == 1 and "--local" in help_text and "--wide" in help_text


CALL = re.compile(r"^aws (\w+) (\w+) \d+ ms( request-id \S+)?$")


def test_verbose_shows_each_aws_call_and_very_verbose_its_request_id(capsys, monkeypatch, on_moto):
    quiet = run_cli(capsys, monkeypatch, "status", "--stack", "t")
    assert quiet.code == 1 and not [line for line in quiet.err.splitlines() if CALL.match(line)]   # 1: missing

    one = run_cli(capsys, monkeypatch, "status", "--stack", "t", "-v")
    lines = [line for line in one.err.splitlines() if CALL.match(line)]
    assert "aws ec2 DescribeVpcs" in "\n".join(lines)
    assert lines and all("request-id" not in line for line in lines)

    two = run_cli(capsys, monkeypatch, "-vv", "status", "--stack", "t")
    lines = [line for line in two.err.splitlines() if CALL.match(line)]
    assert lines and all(re.search(r" request-id [\w-]+$", line) for line in lines)
    assert any(line.startswith("aws ec2 DescribeVpcs ") for line in lines)


def test_aws_calls_report_their_error_code(session):
    from flowwatch.aws import Aws

    seen: list[tuple[str, str, str | None]] = []
    aws = Aws(session, on_call=lambda service, operation, ms, rid, error: seen.append((service, operation, error)))
    with pytest.raises(Exception):
        aws.logs.describe_log_streams(logGroupName="/nope")
    assert seen == [("logs", "DescribeLogStreams", "ResourceNotFoundException")]


@pytest.fixture
def crashing() -> Iterator[None]:
    @click.command("_crash", hidden=True)
    def crash() -> None:
        raise RuntimeError("boom")

    cli.add_command(crash)
    try:
        yield
    finally:
        cli.commands.pop("_crash")


def test_flowwatch_debug_shows_the_traceback_exactly_as_debug_does(capsys, monkeypatch, crashing):
    plain = run_cli(capsys, monkeypatch, "_crash")
    assert plain.code == 1 and "RuntimeError: boom" in plain.err and "Traceback" not in plain.err
    assert "--debug" in plain.err
    flag = run_cli(capsys, monkeypatch, "_crash", "--debug")
    monkeypatch.setenv("FLOWWATCH_DEBUG", "1")
    env = run_cli(capsys, monkeypatch, "_crash")
    assert flag.code == env.code == 1
    assert "Traceback" in flag.err and "RuntimeError: boom" in flag.err
    assert env.err == flag.err


def test_flowwatch_debug_also_before_the_options_are_read(monkeypatch):
    from flowwatch.cli.options import debug_requested

    assert not debug_requested(["flowwatch", "up"])
    assert debug_requested(["flowwatch", "up", "--debug"])
    monkeypatch.setenv("FLOWWATCH_DEBUG", "true")
    assert debug_requested(["flowwatch", "up"])


def test_version_names_flowwatch_and_the_libraries_in_use(capsys, monkeypatch):
    from importlib.metadata import version

    result = run_cli(capsys, monkeypatch, "--version")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"flowwatch {version('flowwatch')}"
    for package in ("boto3", "botocore", "moto", "duckdb"):
        assert f"  {package:<9} {version(package)}" in lines


def test_version_does_not_import_boto3():
    import subprocess
    import sys

    code = ("import sys\nfrom flowwatch.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY=' + ','.join(m for m in ('boto3', 'botocore', 'moto', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_an_unknown_preset_suggests_the_nearest(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "query", "reject")
    assert result.code == 2
    assert "No such command 'reject'; did you mean rejects?" in result.err
    top = run_cli(capsys, monkeypatch, "stauts")
    assert top.code == 2 and "did you mean status?" in top.err
    nothing = run_cli(capsys, monkeypatch, "query", "zzzz")
    assert nothing.code == 2 and "did you mean" not in nothing.err


def test_shell_completion_offers_the_presets(capsys, monkeypatch):
    monkeypatch.setenv("_FLOWWATCH_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "flowwatch --local query re")
    monkeypatch.setenv("COMP_CWORD", "3")
    result = run_cli(capsys, monkeypatch)
    assert result.code == 0
    assert result.out.splitlines() == ["plain,rejects", "plain,rejected-tcp"]


def test_local_start_help_shows_the_effective_default_port(capsys, monkeypatch):
    assert "default 4599" in run_cli(capsys, monkeypatch, "local", "start", "--help").out
    monkeypatch.setenv("FLOWWATCH_LOCAL_PORT", "4711")
    text = " ".join(run_cli(capsys, monkeypatch, "local", "start", "--help").out.split())
    assert "default 4711" in text and "default 4599" not in text


@pytest.fixture
def server_on_4599(monkeypatch, tmp_path):
    from flowwatch.local import process

    info = process.ServerInfo(pid=4242, port=4599, started=0.0, state_dir=tmp_path)
    monkeypatch.setattr(process, "running", lambda directory=None: info)
    monkeypatch.setattr(process, "start", lambda *a, **k: pytest.fail("must not start a second server"))
    return info


def test_local_start_on_another_port_than_the_running_one_is_exit_1(capsys, monkeypatch, server_on_4599):
    result = run_cli(capsys, monkeypatch, "local", "start", "--port", "4600")
    assert result.code == 1
    assert "already running on port 4599 (pid 4242), not on 4600" in result.err
    assert "flowwatch local stop" in result.err
    for same in (["local", "start"], ["local", "start", "--port", "4599"]):
        again = run_cli(capsys, monkeypatch, *same)
        assert again.code == 0 and "already running on http://127.0.0.1:4599" in again.err


@pytest.mark.parametrize("args", [["--local", "local", "status"], ["local", "status", "--local"]])
def test_local_status_never_suggests_local_to_who_gave_it(capsys, monkeypatch, args):
    result = run_cli(capsys, monkeypatch, *args)
    assert result.code == 1 and "not running" in result.err
    assert "--local" not in result.err
    plain = run_cli(capsys, monkeypatch, "local", "status")
    assert plain.code == 1 and "--local" in plain.err


def test_a_command_with_its_own_flag_keeps_it():
    from flowwatch.cli.options import with_global_options

    @click.command()
    @click.option("--output", type=click.Choice(["x", "y"]))
    def own(output: str | None) -> None:
        pass

    with_global_options(own)
    flags = [flag for param in own.params for flag in getattr(param, "opts", ())]
    assert flags.count("--output") == 1 and "--local" in flags and "-v" in flags
