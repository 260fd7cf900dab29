"""Hostile input to the config file, the command line and the environment is refused in bounded time and
memory: exit 2, ONE error line naming the bad thing and what is allowed (its values cut short), before any
AWS call. Terminal output never carries markup or control characters from AWS or from the user; files
flowwatch creates are private to the user.

AWS calls are recorded (and refused) at botocore's funnel, ``BaseClient._make_api_call``, as in
test_bad_config.py. Hangs are guarded by an alarm (in-process) or a subprocess timeout, never timed.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli

HANG_GUARD = 20          # seconds: far above what any case takes; a hang fails instead of blocking the suite
MAX_SHOWN = 80           # a value in an error line is cut to this many characters (flowwatch.errors.shown)


@pytest.fixture
def aws_calls(monkeypatch):
    """Every AWS call any botocore client tries, refused: [(service, operation)]."""
    from botocore.client import BaseClient

    seen: list[tuple[str, str]] = []

    def refuse(self, operation_name, api_params):
        seen.append((self.meta.service_model.service_name, operation_name))
        raise AssertionError(f"AWS call {operation_name} with hostile input")

    monkeypatch.setattr(BaseClient, "_make_api_call", refuse)
    return seen


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_GUARD) -> Iterator[None]:
    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_error_line(result: Any, *fragments: str, heading: bool = False) -> str:
    """The run failed as bad input must: exit 2, nothing on stdout, one ``error:`` line (+ an optional hint)
    holding every fragment; returns the error line. ``heading``: after up's first line ("Planning stack ...")."""
    err = result.err
    lines = [line for line in err.splitlines() if line.strip()]
    if heading:
        assert lines and lines[0].startswith(("Planning stack", "Converging stack")), err
        lines = lines[1:]
    assert result.code == 2, err
    assert "Traceback" not in err + result.out
    assert result.out == ""
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    assert len(lines[0]) < 500, f"error line of {len(lines[0])} characters"
    return lines[0]


# ---------------------------------------------------------------------------------------------------------
# The config file
# ---------------------------------------------------------------------------------------------------------

def _nested(depth: int) -> bytes:
    return b"stack: lab\nnames: " + b"[" * depth + b"]" * depth + b"\n"


@dataclass(frozen=True)
class BadFile:
    id: str
    content: bytes
    fragments: tuple[str, ...]          # each in the error line: the bad thing, and what is allowed


CONFIG_FILES = [
    BadFile("random-bytes", b"stack: lab\n" + bytes(range(128, 256)) * 8, ("line 2", "is not UTF-8",
                                                                            "a YAML text file in UTF-8")),
    BadFile("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), ("is not UTF-8", "in UTF-8")),
    BadFile("utf-16", "stack: lab\n".encode("utf-16"), ("UTF-16", "YAML in UTF-8")),
    BadFile("nul-bytes", b"stack: lab\x00\x00\n", ("line 1", "NUL", "in UTF-8")),
    BadFile("control-character", b"stack: lab\nregion: us-east-1\x1b[31m\n", ("line 2", "#x001b", "not allowed")),
    BadFile("larger-than-1-mib", b"stack: lab\n" + b"# padding\n" * 120_000, ("larger than 1024 KiB",
                                                                             "at most 1 MiB")),
    BadFile("too-many-values", b"stack: lab\nnames: [" + b",".join([b"1"] * 60_000) + b"]\n",
            ("line 2", "more than 10000 YAML values", "at most 10000")),
    BadFile("nested-too-deep", _nested(5000), ("line 2", "nested more than 32 levels", "at most 32 levels")),
    BadFile("long-value", b"stack: " + b"A" * 200_000 + b"\n", ("stack:", "(200000 characters)",
                                                                "use 1-24 lowercase letters")),
    BadFile("long-key", b"stack: lab\n" + b"k" * 1000 + b": 1\n", ("unknown key", "allowed here: stack")),
]


@pytest.mark.parametrize("case", CONFIG_FILES, ids=[c.id for c in CONFIG_FILES])
def test_a_hostile_config_file_is_one_line_exit_2_before_any_aws_call(case, tmp_path, capsys, monkeypatch,
                                                                       aws_calls):
    (tmp_path / "flowwatch.yaml").write_bytes(case.content)
    monkeypatch.chdir(tmp_path)
    with hang_guard():
        result = run_cli(capsys, monkeypatch, "up", "--dry-run")
    line = one_error_line(result, "flowwatch.yaml", *case.fragments)
    assert aws_calls == []
    # no value is shown in full: at most MAX_SHOWN characters of it (and its length)
    assert "A" * (MAX_SHOWN + 1) not in line and "k" * (MAX_SHOWN + 1) not in line


ALIAS_BOMB = (  # 9 levels of 9 aliases under a real key: 9^9 strings once expanded, ~540 bytes on disk
    "stack: lab\nalerts:\n  rules:\n    - name: r\n      match: {action: REJECT}\n      metric: ["
    + ",\n        ".join(['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
                          *(f"&{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi"))])
    + "]\n")


def _limited(max_bytes: int) -> Any:
    def limit() -> None:       # in the child: a regression fails with MemoryError instead of eating the host
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    return limit


def run_process(args: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None,
                memory: int = 1 << 30) -> subprocess.CompletedProcess[str]:
    """``python -m flowwatch ARGS`` offline: fake credentials, every AWS endpoint a closed port on 127.0.0.1
    (an AWS call would fail with exit 1), at most ``memory`` bytes of address space, HANG_GUARD seconds."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWWATCH_"))}
    base.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1", NO_COLOR="1", COLUMNS="200",
                PYTHONPATH=os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2] / "src"),
                                                       base.get("PYTHONPATH")) if p))
    base.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "flowwatch", *args], cwd=cwd, env=base, input=stdin,
                          capture_output=True, timeout=HANG_GUARD, preexec_fn=_limited(memory))
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
                                       proc.stderr.decode(errors="replace"))


def test_an_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    """~540 bytes that expand to 9^9 values: refused while composing, in a process limited to 1 GiB (it used
    to build them all: past 1.2 GB, and a hang while the error line printed their repr)."""
    assert len(ALIAS_BOMB) < 800 and "alerts" in ALIAS_BOMB
    (tmp_path / "flowwatch.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    proc = run_process(["up", "--dry-run"], tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: flowwatch.yaml: line "), proc.stderr[-2000:]
    assert "more than 10000 YAML values (aliases counted expanded)" in lines[0]
    assert "lol" not in proc.stderr


# ---------------------------------------------------------------------------------------------------------
# The command line and the environment
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BadArgs:
    id: str
    args: tuple[str, ...]
    fragments: tuple[str, ...]                    # each in the error line
    env: dict[str, str] = field(default_factory=dict)
    click_usage: bool = False                     # query's options: click's usage block, its last line the error


CLI_CASES = [
    # durations and windows: at most 10 years, times within the calendar
    BadArgs("since-huge", ("logs", "tail", "--since", "99999999999d"),
            ("--since", "'99999999999d'", "longer than 10 years", "allowed: 1s up to 3653d")),
    BadArgs("since-just-over", ("logs", "tail", "--since", "3654d"), ("--since", "allowed: 1s up to 3653d")),
    BadArgs("since-4300-digits", ("logs", "tail", "--since", "9" * 5000 + "s"),
            ("--since", "is not a duration", "(5001 characters)")),
    BadArgs("query-since-huge", ("query", "rejects", "--since", "99999999999w"),
            ("--since", "longer than 10 years", "3653d"), click_usage=True),
    BadArgs("query-from-year-1", ("query", "rejects", "--from", "0001-01-01"),
            ("--from", "out of range", "from 1970-01-01 to before 9000-01-01"), click_usage=True),
    BadArgs("query-to-year-9999", ("query", "rejects", "--from", "2026-01-01", "--to", "9999-12-31T23:59:59"),
            ("--to", "out of range", "9000-01-01"), click_usage=True),
    BadArgs("query-window-too-long", ("query", "rejects", "--from", "2000-01-01", "--to", "2026-01-01"),
            ("longer than 10 years", "at most 3653 days"), click_usage=True),
    # the endpoint: http(s), a host, an optional port; no credentials, spaces or control characters
    BadArgs("endpoint-env-not-a-url", ("status",), ("FLOWWATCH_ENDPOINT_URL", "'notaurl'", "http:// or https://"),
            env={"FLOWWATCH_ENDPOINT_URL": "notaurl"}),
    BadArgs("endpoint-option-not-a-url", ("--endpoint-url", "notaurl", "status"),
            ("--endpoint-url", "'notaurl'", "http:// or https://")),
    BadArgs("endpoint-scheme", ("--endpoint-url", "file:///etc/passwd", "status"),
            ("--endpoint-url", "not an http or https URL", "a host and an optional port")),
    BadArgs("endpoint-no-host", ("--endpoint-url", "http://:4599", "up", "--dry-run"),
            ("--endpoint-url", "names no host", "a host")),
    BadArgs("endpoint-credentials", ("--endpoint-url", "http://admin:s3cret@127.0.0.1:4599", "status"),
            ("--endpoint-url", "carries credentials", "a host and an optional port")),
    BadArgs("endpoint-bad-port", ("--endpoint-url", "http://127.0.0.1:99999", "status"),
            ("--endpoint-url", "Port out of range", "an optional port")),
    BadArgs("endpoint-port-word", ("--endpoint-url", "http://127.0.0.1:http", "status"),
            ("--endpoint-url", "is not a URL", "an optional port")),
    BadArgs("endpoint-space", ("status",), ("FLOWWATCH_ENDPOINT_URL", "contains a space", "http://"),
            env={"FLOWWATCH_ENDPOINT_URL": "http://127.0.0.1 :4599"}),
    BadArgs("endpoint-escape", ("--endpoint-url", "http://127.0.0.1\x1b]8;;http://evil\x07", "status"),
            ("--endpoint-url", "character 0x1b", "http://")),
    # the local AWS's port
    BadArgs("local-port-word", ("--local", "status"), ("FLOWWATCH_LOCAL_PORT", "'abc'", "allowed: 1-65535"),
            env={"FLOWWATCH_LOCAL_PORT": "abc"}),
    BadArgs("local-port-too-big", ("local", "start"), ("FLOWWATCH_LOCAL_PORT", "'65536'", "allowed: 1-65535"),
            env={"FLOWWATCH_LOCAL_PORT": "65536"}),
    BadArgs("local-port-negative", ("local", "start"), ("FLOWWATCH_LOCAL_PORT", "'-1'", "or 0 for any free port"),
            env={"FLOWWATCH_LOCAL_PORT": "-1"}),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_a_hostile_option_or_variable_is_exit_2_before_any_aws_call(case, tmp_path, capsys, monkeypatch,
                                                                     aws_calls):
    (tmp_path / "flowwatch.yaml").write_text("stack: lab\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    state = Path(os.environ["XDG_STATE_HOME"]) / "flowwatch"
    try:
        with hang_guard():
            result = run_cli(capsys, monkeypatch, *case.args)
    finally:
        if (state / "server.json").exists():     # a local AWS started despite the bad port: stop it
            from flowwatch.local import process

            process.stop(state)
            pytest.fail("a local AWS was started")
    if case.click_usage:
        assert result.code == 2 and "Traceback" not in result.err, result.err
        line = result.err.strip().splitlines()[-1]
        assert line.startswith("Error: "), result.err
        for fragment in case.fragments:
            assert fragment in line, f"{fragment!r} not in: {line}"
    else:
        line = one_error_line(result, *case.fragments)
    assert aws_calls == []
    assert len(line) < 500 and "\x1b" not in line


@pytest.mark.parametrize("url", ["http://127.0.0.1:4599", "https://logs.us-east-1.amazonaws.com",
                                 "http://[::1]:4566/", "http://localhost"])
def test_a_good_endpoint_is_accepted(url):
    from flowwatch.settings import check_endpoint_url

    assert check_endpoint_url(url) == url


@pytest.mark.parametrize("text", ["1s", "10m", "87672h", "3653d", "521w"])
def test_durations_up_to_ten_years_are_accepted(text):
    from flowwatch.timewindow import parse_duration

    assert 0 < parse_duration(text).total_seconds() <= 3653 * 86400


# ---------------------------------------------------------------------------------------------------------
# Regions and availability zones
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("region", "fragments"), [
    ("us-east-9", ("'us-east-9' is not an AWS region", "allowed: the", "regions of botocore's partition data",
                   "aws-us-gov")),
    ("eu-mars-1", ("'eu-mars-1' is not an AWS region", "e.g. us-east-1")),
])
def test_a_made_up_region_is_refused(region, fragments, tmp_path, capsys, monkeypatch, aws_calls):
    (tmp_path / "flowwatch.yaml").write_text(f"stack: lab\nregion: {region}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    one_error_line(run_cli(capsys, monkeypatch, "up", "--dry-run"), "flowwatch.yaml: region:", *fragments)
    assert aws_calls == []


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "cn-north-1", "us-gov-west-1", "us-iso-east-1"])
def test_every_partition_s_regions_are_accepted(region):
    from flowwatch.config import parse_config

    assert parse_config({"stack": "lab", "region": region}).region == region


MUTATING = ("Create", "Put", "Modify", "Run", "Attach", "Associate", "Delete", "Tag", "Authorize", "Replace",
            "Subscribe", "Start", "Set", "Update")


def test_an_unknown_zone_stops_up_before_any_change_on_moto(tmp_path, capsys, monkeypatch):
    """`us-east-1z` has the region's shape: only EC2 knows it does not exist. up's preflight asks, and fails
    before the first mutating call (the VPC would otherwise be created and CreateSubnet fail half-way)."""
    import boto3
    from botocore.client import BaseClient
    from moto import mock_aws

    from tests.support.aws_faults import moto_fixes

    sent: list[str] = []
    original = BaseClient._make_api_call

    def record(self, operation_name, api_params):
        sent.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    (tmp_path / "flowwatch.yaml").write_text("stack: lab\nnetwork:\n  availability_zone: us-east-1z\n")
    monkeypatch.chdir(tmp_path)
    with mock_aws(), moto_fixes(), hang_guard():
        for args in (("up", "--dry-run"), ("up",)):
            sent.clear()
            result = run_cli(capsys, monkeypatch, *args)
            one_error_line(result, "network.availability_zone: 'us-east-1z' is not an availability zone of "
                                   "us-east-1", "the region's zones: us-east-1a, us-east-1b", heading=True)
            assert "DescribeAvailabilityZones" in sent
            assert [op for op in sent if op.startswith(MUTATING)] == []
        ec2 = boto3.client("ec2", region_name="us-east-1")
        assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")] == []
        # a zone the region has: the same check passes and up goes on
        (tmp_path / "flowwatch.yaml").write_text("stack: lab\nnetwork:\n  availability_zone: us-east-1b\n")
        sent.clear()
        ok = run_cli(capsys, monkeypatch, "up", "--dry-run")
        assert ok.code == 0, ok.err
        assert "DescribeAvailabilityZones" in sent


@pytest.mark.slow
def test_an_unknown_zone_stops_up_before_any_change_on_the_local_aws(tmp_path, capsys, monkeypatch):
    import boto3

    from flowwatch.local import process

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    info, _ = process.start(0, tmp_path / "state" / "flowwatch")
    try:
        (tmp_path / "flowwatch.yaml").write_text("stack: lab\nnetwork:\n  availability_zone: us-east-1z\n")
        monkeypatch.chdir(tmp_path)
        with hang_guard(60):
            result = run_cli(capsys, monkeypatch, "--local", "up")
        one_error_line(result, "'us-east-1z' is not an availability zone of us-east-1", "us-east-1a",
                       heading=True)
        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=info.url, aws_access_key_id="x",
                           aws_secret_access_key="x")
        assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")] == []
    finally:
        process.stop(tmp_path / "state" / "flowwatch")
    assert not process.pid_alive(info.pid)


# ---------------------------------------------------------------------------------------------------------
# What reaches the terminal
# ---------------------------------------------------------------------------------------------------------

#: planted in text flowwatch reads back: a clickable link (rich markup and OSC 8), hidden text (SGR 8), a
#: screen clear (CSI 2J), a title change ended by BEL, a one-byte C1 CSI and a bidi override
HOSTILE = ("[link=https://evil.example]click me[/link] [bold red]fake ALARM[/bold red] "
           "\x1b]8;;https://evil.example\x07here\x1b]8;;\x07 \x1b[8mhidden\x1b[0m \x1b[2J \x1b]0;owned\x07 "
           "\x9b31m \u202egnp.exe")


def terminal_effects(text: str) -> list[str]:
    """Escape sequences other than the SGR colours rich itself writes (``ESC [ ... m`` but not ``8m``
    concealment), and other control characters: what a terminal would act on."""
    import re

    sgr = re.compile(r"\x1b\[[0-9;]*m")
    found = [m for m in sgr.findall(text) if re.search(r"(?:^|\[|;)8(?:;|m)", m)]
    rest = sgr.sub("", text)
    found += [repr(c) for c in rest if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0
              or c == "\u202e"]
    return found


def test_logs_tail_shows_planted_markup_and_escapes_literally(tmp_path, capsys, monkeypatch):
    """On a terminal (FORCE_COLOR: rich writes colours), an event that is not a record and a record with
    escapes in a field are shown as text: the link is not a link, nothing is hidden, no sequence reaches
    the terminal but rich's own colours."""
    import time

    import boto3
    from moto import mock_aws

    from tests.support.aws_faults import moto_fixes

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "400")
    (tmp_path / "flowwatch.yaml").write_text("stack: lab\n")
    monkeypatch.chdir(tmp_path)
    now = int(time.time())
    record = (f"2 123456789012 eni-0abc\x1b[8m\x1b]8;;https://evil.example\x07 10.0.0.5 8.8.8.8 0 0 1 1 84 "
              f"{now - 30} {now - 20} REJECT OK")
    with mock_aws(), moto_fixes(), hang_guard():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName="/flowwatch/lab/flow-logs")
        logs.create_log_stream(logGroupName="/flowwatch/lab/flow-logs", logStreamName="eni-0abc-all")
        logs.put_log_events(logGroupName="/flowwatch/lab/flow-logs", logStreamName="eni-0abc-all",
                            logEvents=[{"timestamp": now * 1000 - 2000, "message": HOSTILE},
                                       {"timestamp": now * 1000 - 1000, "message": record}])
        result = run_cli(capsys, monkeypatch, "logs", "tail")
    assert result.code == 0, result.err
    assert "\x1b[" in result.out, "not rendered as for a terminal"          # rich's colours: a real terminal run
    assert terminal_effects(result.out) == [], result.out
    assert "\x1b]8" not in result.out and "\x07" not in result.out           # no OSC 8 link, no BEL
    plain = __import__("re").sub(r"\x1b\[[0-9;]*m", "", result.out)
    # the planted text is there, literally
    assert "[link=https://evil.example]click me[/link]" in plain
    assert "[bold red]fake ALARM[/bold red]" in plain
    assert "\\x1b]8;;https://evil.example\\x07here" in plain and "\\x1b[8mhidden" in plain
    assert "\\x9b31m" in plain and "\\u202egnp.exe" in plain
    assert "eni-0abc\\x1b[8m" in plain and "REJECT" in plain


def test_an_aws_error_message_is_shown_not_obeyed(capsys):
    """AWS's error text (here planted in a ClientError) in the error line: markup and escapes literal, its
    newline shown as an escape."""
    import io

    from botocore.exceptions import ClientError

    from flowwatch.console import Output
    from flowwatch.errors import AwsError

    err = io.StringIO()
    out = Output(stderr=err, stdout=io.StringIO(), color=True)
    exc = ClientError({"Error": {"Code": "InvalidParameterValue", "Message": HOSTILE + "\nsecond line"}},
                      "CreateSubnet")
    failure = AwsError.from_client_error(exc, step="subnet")
    out.error(failure.message, failure.hint)
    out.step("subnet", [], None, failed=failure.message)
    text = err.getvalue()
    assert terminal_effects(text) == [], text
    assert "[link=https://evil.example]" in text and "\\x1b[2J" in text and "\\x0asecond line" in text
    assert "\nsecond line" not in text                 # AWS's newline does not start a line of its own


def test_names_read_back_and_query_cells_are_shown_not_obeyed():
    """A resource name or tag read back (in a plan line, in status's table) and a query result cell."""
    import io

    from flowwatch.console import Output
    from flowwatch.model import Change

    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(stderr=stderr, stdout=stdout, color=True)
    out.step("vpc", [], f"vpc-0abc ({HOSTILE})")
    out.step("nacl", [Change("nacl", "update", f"network ACL {HOSTILE}", reason=HOSTILE)], None)
    out.data(["name", "value"], [["tag", HOSTILE]])
    out.data(["name", "value"], [["tag", HOSTILE]], fmt="csv")
    out.text(HOSTILE)
    for text in (stdout.getvalue(), stderr.getvalue()):
        assert terminal_effects(text) == [], text
        assert "[link=https://evil.example]" in text and "\\x1b]0;owned\\x07" in text


# ---------------------------------------------------------------------------------------------------------
# Files flowwatch creates are private (copies of flow logs, the local AWS's log and pid)
# ---------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (and root itself) -> its permission bits, octal."""
    found = {".": oct(root.stat().st_mode & 0o777)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(path.stat().st_mode & 0o777)
    return found


def not_private(root: Path) -> dict[str, str]:
    return {name: mode for name, mode in modes(root).items()
            if mode != ("0o700" if (root / name).is_dir() else "0o600")}


def test_the_query_cache_is_private_whatever_the_umask(session, tmp_path):
    """S3 objects downloaded by the local engine, their stamps and Parquet copies, DuckDB's spill dir: 0600
    files in 0700 dirs with umask 000; a cache dir left 0755 by an earlier run is tightened."""
    import gzip

    from flowwatch.query import local_engine
    from flowwatch.settings import Settings

    from tests.query.test_local import BUCKET, FILE_TIMES, LAYOUT, file_lines, query, write_tree

    import random

    root = local_engine.cache_root()
    root.mkdir(parents=True)
    os.chmod(root, 0o755)                                     # as an earlier version left it
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)   # as `up` makes it: tagged (query reads only the stack's bucket)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "flowwatch:stack", "Value": "test"}]})
    rng = random.Random(3)
    for n, t in enumerate(FILE_TIMES):
        s3.put_object(Bucket=BUCKET, Key=LAYOUT.object_key(t, "fl-0123456789abcdef0", f"{n:08d}"),
                      Body=gzip.compress(("\n".join(file_lines(t, rng)) + "\n").encode()))
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    settings = Settings(config_path=str(tmp_path / "flowwatch.yaml"), config_explicit=True)
    with umask(0), hang_guard(60):
        rows, _ = query("rejects", settings=settings, session=session, engine="local")
        write_tree(tmp_path / "logs")
        query("rejects", source=tmp_path / "logs", parquet_cache=True)
    assert rows
    found = modes(root)
    assert any(name.endswith(".gz") for name in found) and any(name.endswith(".parquet") for name in found)
    assert any(name.endswith(".stamp") for name in found) and "duckdb-tmp" in found
    assert not_private(root) == {}


@pytest.mark.slow
def test_the_local_aws_state_is_private_whatever_the_umask(tmp_path):
    from flowwatch.local import process

    state = tmp_path / "state" / "flowwatch"
    with umask(0):
        info, _ = process.start(0, state)
    try:
        found = modes(state)
        assert {"server.json", "server.log", "start.lock"} <= set(found), found
        assert not_private(state) == {}
        assert oct((tmp_path / "state").stat().st_mode & 0o777) == "0o700"    # the level it made, too
    finally:
        process.stop(state)
    assert not process.pid_alive(info.pid)
