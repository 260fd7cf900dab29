"""The background local AWS (flowwatch.local.process): start / running / stop, 127.0.0.1 only, no stray
process left behind; the client of its own routes (flowwatch.local.client); and the `local` commands.

Every server here is started on a free port in a per-test state dir and stopped by the test.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from flowwatch.polling import Poll

from flowwatch.local import process as local
from flowwatch.local.client import LocalApi, LocalError

from tests.support.cli import run_cli

pytestmark = pytest.mark.slow   # starts and stops server processes


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
        health = LocalApi(info.url).health()
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
    with socket.socket() as s:                                    # the port is free again (for a server:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # closed connections may linger in TIME_WAIT)
        s.bind(("127.0.0.1", info.port))
    assert local.stop(state) is None                              # a second stop is a no-op


def test_port_in_use_is_a_clear_error(state):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LocalError, match=f"127.0.0.1:{port} is already in use"):
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


def test_start_waits_on_the_poll_and_gives_up_at_the_timeout(state):
    """The wait for the server is a Poll on the injected clock: a server that never answers in time is
    stopped and reported, after exactly ``timeout`` seconds of that clock."""
    now = [0.0]
    pauses = []

    def sleep(seconds):
        pauses.append(seconds)
        now[0] += seconds

    with pytest.raises(LocalError, match="did not answer within 1 s"):
        local.start(0, state, timeout=1.0, sleep=sleep, clock=lambda: now[0])
    assert now[0] == pytest.approx(1.0) and pauses and max(pauses) <= 0.1 + 1e-9
    assert local.running(state) is None
    assert _servers_of(state) == []


def _servers_of(directory: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if b"flowwatch.local.server" in cmdline and str(directory).encode() in cmdline and stat[0] != "Z":
            found.append(int(proc.name))
    return found


def test_ensure_running_starts_once_and_reuses(state):
    info, started = local.ensure_running(state)
    try:
        assert started and local.running(state) == info
        assert local.ensure_running(state) == (info, False)          # reused, not restarted
    finally:
        local.stop(state)


def test_the_client_reads_the_routes_and_explains_an_unreachable_server(state):
    info, _ = local.start(0, state)
    try:
        api = LocalApi(info.url + "/")
        assert api.url == info.url                                   # one trailing slash is fine
        assert api.inbox() == [] and api.alarms()["alarms"] == []
        offset = api.advance(60)
        assert offset >= 60 and api.evaluate() == []
        with pytest.raises(LocalError, match="HTTP 4"):
            api._call("GET", "no-such-route")
    finally:
        local.stop(state)
    assert LocalApi(info.url).health() is None                       # nothing answers any more
    with pytest.raises(LocalError, match="is not reachable") as exc:
        LocalApi(info.url, timeout=2).inbox()
    assert "flowwatch local start" in exc.value.hint


def test_commands_and_ensure_running(state, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(state.parent))
    monkeypatch.setenv("FLOWWATCH_LOCAL_PORT", str(_free_port()))
    default_dir = local.state_dir()
    status = run_cli(capsys, monkeypatch, "--output", "json", "local", "status")
    assert status.code == 1 and "not running" in status.err
    inbox = run_cli(capsys, monkeypatch, "local", "inbox")
    assert inbox.code == 1 and "not running" in inbox.err

    try:
        info, started = local.ensure_running()
        url = info.url
        assert started and url == f"http://127.0.0.1:{os.environ['FLOWWATCH_LOCAL_PORT']}"
        assert local.ensure_running() == (info, False)                # reused, not restarted
        again = run_cli(capsys, monkeypatch, "local", "start")
        assert again.code == 0 and f"already running on {url}" in again.err
        status = run_cli(capsys, monkeypatch, "--output", "json", "local", "status")
        assert status.code == 0
        doc = json.loads(status.out)
        assert doc["url"] == url and doc["pid"] == local.running(default_dir).pid
        inbox = run_cli(capsys, monkeypatch, "--output", "json", "local", "inbox")
        assert json.loads(inbox.out) == []
        pid = local.running(default_dir).pid
    finally:
        stopped = run_cli(capsys, monkeypatch, "local", "stop")
    assert "stopped" in stopped.err
    assert not local.pid_alive(pid)
    assert "not running" in run_cli(capsys, monkeypatch, "local", "stop").err


def test_local_start_command_prints_where(state, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(state.parent))
    try:
        started = run_cli(capsys, monkeypatch, "local", "start", "--port", "0")
        assert started.code == 0, started.err
        info = local.running(local.state_dir())
        assert f"local AWS running on {info.url} (pid {info.pid})" in started.err
    finally:
        run_cli(capsys, monkeypatch, "local", "stop")


def test_of_two_concurrent_ensure_running_only_one_says_it_started(state, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("FLOWWATCH_LOCAL_PORT", str(_free_port()))
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: local.ensure_running(state), range(2)))
    try:
        assert sorted(started for _, started in results) == [False, True]
        assert results[0][0] == results[1][0] and len(_servers_of(state)) == 1
    finally:
        local.stop(state)


def test_stop_forgets_the_state_and_only_flowwatch_files(state):
    """`local stop` removes what flowwatch wrote in the state dir (state, log, lock), never anything else."""
    info, _ = local.start(0, state)
    (state / "notes.txt").write_text("mine")                         # not flowwatch's: stays
    (state / "sub").mkdir()
    assert {"server.json", "server.log", "start.lock"} <= {p.name for p in state.iterdir()}
    assert local.stop(state) == info
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt", "sub"]
    assert not local.pid_alive(info.pid)


def test_stop_with_nothing_running_still_removes_stale_files(state):
    state.mkdir(parents=True)
    for name in local.STATE_FILES:
        (state / name).write_text("stale")
    (state / "server.json").write_text(json.dumps({"pid": os.getpid(), "port": _free_port(), "started": 0}))
    (state / "keep.json").write_text("{}")
    assert local.stop(state) is None                                 # this test's pid: never signalled
    assert [p.name for p in state.iterdir()] == ["keep.json"]
    assert local.stop(tmp_dir := state / "never-made") is None and not tmp_dir.exists()   # nothing created


def test_a_start_waiting_on_a_lock_stop_removed_locks_the_new_file(state):
    """`stop` unlinks start.lock while holding it. A start already waiting on that file must not take it
    as the lock once it is free (a newcomer locks the new file): it takes the lock again on the new file."""
    import fcntl
    import threading

    state.mkdir(parents=True)
    lock = state / local.LOCK_FILE
    order: list[str] = []
    entered = threading.Event()

    def waiter() -> None:
        with local._start_lock(state):
            order.append("waiter in")
            entered.set()

    with open(lock, "a") as old:                                     # "stop" holds the lock...
        fcntl.flock(old, fcntl.LOCK_EX)
        thread = threading.Thread(target=waiter)
        thread.start()
        for _ in Poll(timeout=10, interval=0.001).ticks():           # ...the waiter has opened the file
            if len([fd for fd in Path("/proc/self/fd").iterdir() if _points_to(fd, lock)]) >= 2:
                break
        lock.unlink()                                                # stop removes it, then
        with open(lock, "a") as new:                                 # a newcomer takes the new file
            fcntl.flock(new, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(old, fcntl.LOCK_UN)                          # stop is done
            entered.wait(0.5)                                        # (no wait at all with the fix)
            order.append("newcomer out")
            fcntl.flock(new, fcntl.LOCK_UN)
    thread.join()
    assert order == ["newcomer out", "waiter in"]


def _points_to(fd: Path, target: Path) -> bool:
    try:
        return os.readlink(fd).removesuffix(" (deleted)") == str(target)
    except OSError:
        return False
