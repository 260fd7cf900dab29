"""The background local AWS: start / status / stop, 127.0.0.1 only, and no stray process left behind.

Every server here is started on a free port in a per-test state dir and stopped by the test.
"""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import pytest

from flowwatch import local
from flowwatch.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_on(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local_addr, state = row.split()[1], row.split()[3]
            addr, hexport = local_addr.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


@pytest.fixture
def state(tmp_path):
    directory = tmp_path / "state"
    yield directory
    local.stop(directory)   # whatever the test did, nothing stays running


def test_start_status_stop(state):
    info, started = local.start(0, state)
    try:
        assert started and info.port > 0 and info.url == f"http://127.0.0.1:{info.port}"
        assert local.running(state) == info
        health = local.LocalApi(info.url).health()
        assert health["pid"] == info.pid and health["service"] == "flowwatch-local"
        assert json.loads((state / "server.json").read_text())["pid"] == info.pid
        assert _listening_on(info.port) == {"0100007F"}          # 127.0.0.1, never 0.0.0.0
        again, started_again = local.start(0, state)
        assert (again, started_again) == (info, False)           # one server per state dir
    finally:
        stopped = local.stop(state)
    assert stopped == info
    assert not local.pid_alive(info.pid) and not os.path.exists(f"/proc/{info.pid}")   # exited and reaped
    assert local.running(state) is None and not (state / "server.json").exists()
    with socket.socket() as s:                                    # the port is free again
        s.bind(("127.0.0.1", info.port))
    assert local.stop(state) is None                              # a second stop is a no-op


def test_port_in_use_is_a_clear_error(state):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(local.LocalError, match=f"127.0.0.1:{port} is already in use"):
            local.start(port, state)
    assert local.read_info(state) is None


def test_stale_state_is_ignored_and_never_signalled(state):
    state.mkdir(parents=True)
    # a pid that exists but is not our server (this test process): never signalled
    (state / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": _free_port(), "started": 0}))
    assert local.running(state) is None
    assert local.stop(state) is None and not (state / "server.json").exists()
    info, started = local.start(0, state)
    assert started and local.running(state) == info
    local.stop(state)
    assert not local.pid_alive(info.pid)


def test_commands_and_ensure_running(state, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(state.parent))
    monkeypatch.setenv("FLOWWATCH_LOCAL_PORT", str(_free_port()))
    default_dir = local.state_dir()
    settings = Settings(output="json")
    assert local.status_command(settings) == 1
    assert "not running" in capsys.readouterr().err

    from flowwatch.console import Output

    out = Output(stderr=io.StringIO(), stdout=io.StringIO(), color=False)
    try:
        url = local.ensure_running(out)
        assert url == f"http://127.0.0.1:{os.environ['FLOWWATCH_LOCAL_PORT']}"
        assert local.ensure_running(out) == url                   # reused, not restarted
        assert local.status_command(settings) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["url"] == url and status["pid"] == local.running(default_dir).pid
        local.inbox_command(settings)
        assert json.loads(capsys.readouterr().out) == []
        pid = local.running(default_dir).pid
    finally:
        local.stop_command(settings)
    assert "stopped" in capsys.readouterr().err
    assert not local.pid_alive(pid)
    local.stop_command(settings)
    assert "not running" in capsys.readouterr().err
