"""flowwatch demo, end to end: its own local AWS on a free port, up, simulate-reject, ALARM, the e-mail,
query rejects, down; nothing left running afterwards."""

from __future__ import annotations

import pytest

import re
import tempfile
from pathlib import Path

from tests.support.cli import run_cli

pytestmark = pytest.mark.slow   # the whole demo


def _servers_under(path: Path) -> list[int]:
    """pids of local-AWS server processes whose state dir is under ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if b"flowwatch.local.server" in cmdline and str(path).encode() in b" ".join(cmdline) and stat[0] != "Z":
            found.append(int(proc.name))
    return found


def test_demo_runs_the_whole_story(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_cli(capsys, monkeypatch, "demo")            # how long it takes is benchmarks/' business
    assert result.code == 0, result.err
    err, out = result.err, result.out
    for stage in ("1. Start an embedded local AWS", "2. flowwatch up", "3. flowwatch simulate-reject",
                  "4. The notification", "5. flowwatch simulate port-scan", "6. flowwatch query rejects",
                  "7. flowwatch down"):
        assert stage in err
    assert "ALARM after" in err and "demo finished in" in err
    assert re.search(r"local AWS on http://127\.0\.0\.1:\d+ \(pid \d+\)\n", err)   # its own, fresh server
    assert 'Subject: ALARM: "flowwatch-demo-ping-deny" in US East (N. Virginia)' in out
    assert "To:      you@example.com" in out
    assert "REJECT" in out and "8.8.8.8" in out
    assert "Errors: 0" in err
    assert _servers_under(tmp_path) == []                  # the demo's server is gone
    assert list(tmp_path.iterdir()) == []                  # and so are its temporary files
