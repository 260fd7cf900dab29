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


def one_error_line(result: Any, *fragments: str) -> str:
    """The run failed as bad input must: exit 2, nothing on stdout, one ``error:`` line (+ an optional hint)
    holding every fragment; returns the error line."""
    err = result.err
    lines = [line for line in err.splitlines() if line.strip()]
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


ALIAS_BOMB = "".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
    *(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")),
    "stack: *i\n",
])


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
    """~750 bytes that expand to 9^9 values: refused while composing, in a process limited to 1 GiB."""
    assert len(ALIAS_BOMB) < 800
    (tmp_path / "flowwatch.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    proc = run_process(["up", "--dry-run"], tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: flowwatch.yaml: line "), proc.stderr[-2000:]
    assert "more than 10000 YAML values (aliases counted expanded)" in lines[0]
    assert "lol" not in proc.stderr
