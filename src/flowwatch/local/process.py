"""The embedded local AWS as a background process: start / stop / running, the state dir, pids.

The server (``flowwatch.local.server``: moto's server + flowwatch's data plane, see
``flowwatch.local.dataplane``) runs detached on 127.0.0.1, default port 4599
(``FLOWWATCH_LOCAL_PORT`` or ``local start --port N``; 0 picks a free one). Its state lives as
long as the process. Files, in the state dir ``$XDG_STATE_HOME/flowwatch/``
(default ``~/.local/state/flowwatch/``):

* ``server.json``: pid, port, url, start time, written by the server once it listens;
* ``server.log``: the server's output, rotated by size (``server.log.1`` ... ``.3`` the older);
* ``start.lock``: taken while starting, so that two ``--local`` commands start one server.

``stop`` removes these (and only these) once the server is gone: its state is forgotten.

"Running" means: the pid is alive AND ``GET /_flowwatch/health`` on its port answers with that
pid. ``stop`` sends SIGTERM, waits for the process to exit (SIGKILL after a grace period), and
only signals a pid that is our server (by the health route or its command line).

Nothing here prints: the CLI (``flowwatch.cli.local``) does. Imports neither moto nor boto3.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from flowwatch.local.client import LocalApi, LocalError
from flowwatch.polling import Poll
from flowwatch.private import open_private, private_dir

HOST = "127.0.0.1"
DEFAULT_PORT = 4599
STATE_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "start.lock"
LOG_BACKUPS = 3   # flowwatch.local.server.LOG_BACKUPS (not imported: that module imports moto)
# Every file flowwatch writes in the state dir (the server writes server.json through server.tmp):
# what `stop` removes, and nothing else.
STATE_FILES = (STATE_FILE, Path(STATE_FILE).with_suffix(".tmp").name, LOG_FILE,
               *(f"{LOG_FILE}.{n}" for n in range(1, LOG_BACKUPS + 1)), LOCK_FILE)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_children: dict[int, subprocess.Popen[bytes]] = {}   # servers this process started (reaped on stop)


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    port: int
    started: float
    state_dir: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "flowwatch"


def default_port() -> int:
    """FLOWWATCH_LOCAL_PORT (0: any free port), else DEFAULT_PORT; UsageError (exit 2) if it is not a port."""
    value = os.environ.get("FLOWWATCH_LOCAL_PORT")
    if value is None or not value.strip():
        return DEFAULT_PORT
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or int(text) > 65535:
        from flowwatch.errors import UsageError, shown

        raise UsageError(f"FLOWWATCH_LOCAL_PORT: {shown(value)} is not a port; allowed: 1-65535, or 0 for any "
                         "free port")
    return int(text)


def read_info(directory: Path | None = None) -> ServerInfo | None:
    directory = directory or state_dir()
    try:
        data = json.loads((directory / STATE_FILE).read_text())
        return ServerInfo(int(data["pid"]), int(data["port"]), float(data.get("started", 0)), directory)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(directory: Path | None = None) -> ServerInfo | None:
    """The server of this state dir if its pid is alive and its health route answers with that pid."""
    info = read_info(directory)
    if info is None or not pid_alive(info.pid):
        return None
    health = LocalApi(info.url).health()
    return info if health and health.get("pid") == info.pid else None


def start(port: int | None = None, directory: Path | None = None, *, tick: float | None = None,
          timeout: float = START_TIMEOUT, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> tuple[ServerInfo, bool]:
    """Start the server in the background (if not already running); returns (info, started_now)."""
    port = default_port() if port is None else port        # bad FLOWWATCH_LOCAL_PORT: exit 2, nothing made
    directory = private_dir(directory or state_dir())
    with _start_lock(directory):
        info = running(directory)
        if info is not None:
            return info, False
        if port and _port_busy(port):
            raise LocalError(f"cannot start the local AWS: {HOST}:{port} is already in use by another program",
                             hint="pick another port: flowwatch local start --port N (0 = any free port)")
        with contextlib.suppress(FileNotFoundError):
            (directory / STATE_FILE).unlink()
        cmd = [sys.executable, "-m", "flowwatch.local.server", "--port", str(port), "--state-dir", str(directory),
               "--log-file", str(directory / LOG_FILE)]
        if tick is not None:
            cmd += ["--tick", str(tick)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}   # never hand it real credentials
        with open_private(directory / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        _children[proc.pid] = proc
        for _ in Poll(timeout, interval=0.1, sleep=sleep, clock=clock).ticks():
            if proc.poll() is not None:
                _children.pop(proc.pid, None)
                raise LocalError(f"the local AWS exited at start (code {proc.returncode}): {_log_tail(directory)}",
                                 hint=f"full log: {directory / LOG_FILE}")
            info = read_info(directory)
            if info is not None and info.pid == proc.pid and LocalApi(info.url).health():
                return info, True
        _terminate(proc.pid)
        raise LocalError(f"the local AWS did not answer within {timeout:.0f} s", hint=f"see {directory / LOG_FILE}")


def ensure_running(directory: Path | None = None) -> tuple[ServerInfo, bool]:
    """``--local``: the running server of the state dir, started first if needed; (info, started_now).

    ``started_now`` is True only for the call that started it: ``start`` looks again under the start
    lock, so of two concurrent ``--local`` commands the one that waited reuses the other's server
    (and must not say "local AWS started")."""
    info = running(directory)
    if info is not None:
        return info, False
    return start(None, directory)


def stop(directory: Path | None = None, timeout: float = STOP_TIMEOUT, *, keep_log: bool = False) -> ServerInfo | None:
    """Stop the server of this state dir and wait until its process is gone; None if none was running.

    Then the state is forgotten: the files of STATE_FILES are removed (also when nothing was running:
    stale ones), the server log too unless ``keep_log`` (a failed demo names it); anything else in the
    state dir stays, and so does the dir (a start may be making it). Runs under the start lock, so a
    server another command is starting right now is stopped, not orphaned.
    """
    directory = directory or state_dir()
    if not directory.is_dir():
        return None
    stopped = None
    with _start_lock(directory):
        info = read_info(directory)
        if info is not None and pid_alive(info.pid) and _is_our_server(info):
            _terminate(info.pid, timeout)
            stopped = info
        for name in STATE_FILES:   # start.lock last: unlinked while held (see _start_lock)
            if keep_log and name.startswith(LOG_FILE):
                continue
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
    return stopped


def pid_alive(pid: int) -> bool:
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _is_our_server(info: ServerInfo) -> bool:
    health = LocalApi(info.url).health()
    if health and health.get("pid") == info.pid:
        return True
    try:   # not answering (hung or starting): trust its command line, never a reused pid
        with open(f"/proc/{info.pid}/cmdline", "rb") as fh:
            return b"flowwatch.local.server" in fh.read()
    except OSError:
        return False


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)
    proc = _children.pop(pid, None)
    if proc is not None:
        proc.wait()


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


@contextlib.contextmanager
def _start_lock(directory: Path) -> Iterator[None]:
    import fcntl

    path = directory / LOCK_FILE
    while True:
        with open_private(path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                # `stop` unlinks the lock file while holding it: a lock taken on that old file
                # excludes no one (a newcomer locks a new file), so take it again on the current one.
                if os.fstat(fh.fileno()).st_ino != os.stat(path).st_ino:
                    continue
            except FileNotFoundError:
                continue
            try:
                yield
                return
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _log_tail(directory: Path, lines: int = 3) -> str:
    try:
        text = (directory / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"
