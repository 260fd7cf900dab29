"""The embedded local AWS, seen from the CLI: start / stop / status of the background server, and a
small client of its own routes (traffic, inbox, alarms, clock).

The server (``flowwatch.local.server``: moto's server + flowwatch's data plane, see
``flowwatch.local.dataplane``) runs detached on 127.0.0.1, default port 4599
(``FLOWWATCH_LOCAL_PORT`` or ``local start --port N``; 0 picks a free one). Its state lives as
long as the process. Files, in the state dir ``$XDG_STATE_HOME/flowwatch/``
(default ``~/.local/state/flowwatch/``):

* ``server.json``: pid, port, url, start time, written by the server once it listens;
* ``server.log``: the server's output;
* ``start.lock``: taken while starting, so that two ``--local`` commands start one server.

"Running" means: the pid is alive AND ``GET /_flowwatch/health`` on its port answers with that
pid. ``stop`` sends SIGTERM, waits for the process to exit (SIGKILL after a grace period), and
only signals a pid that is our server (by the health route or its command line).

This module imports neither moto nor boto3.
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
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowwatch.errors import FlowwatchError

HOST = "127.0.0.1"
DEFAULT_PORT = 4599
STATE_FILE = "server.json"
LOG_FILE = "server.log"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_children: dict[int, subprocess.Popen[bytes]] = {}   # servers this process started (reaped on stop)


class LocalError(FlowwatchError):
    """The local AWS could not be started, reached or stopped (exit 1)."""


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
    value = os.environ.get("FLOWWATCH_LOCAL_PORT")
    return int(value) if value and value.isdigit() else DEFAULT_PORT


# ---- process management -----------------------------------------------------------------

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
          timeout: float = START_TIMEOUT) -> tuple[ServerInfo, bool]:
    """Start the server in the background (if not already running); returns (info, started_now)."""
    directory = directory or state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    port = default_port() if port is None else port
    with _start_lock(directory):
        info = running(directory)
        if info is not None:
            return info, False
        if port and _port_busy(port):
            raise LocalError(f"cannot start the local AWS: {HOST}:{port} is already in use by another program",
                             hint="pick another port: flowwatch local start --port N (0 = any free port)")
        with contextlib.suppress(FileNotFoundError):
            (directory / STATE_FILE).unlink()
        cmd = [sys.executable, "-m", "flowwatch.local.server", "--port", str(port), "--state-dir", str(directory)]
        if tick is not None:
            cmd += ["--tick", str(tick)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}   # never hand it real credentials
        with open(directory / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, close_fds=True)
        _children[proc.pid] = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                _children.pop(proc.pid, None)
                raise LocalError(f"the local AWS exited at start (code {proc.returncode}): {_log_tail(directory)}",
                                 hint=f"full log: {directory / LOG_FILE}")
            info = read_info(directory)
            if info is not None and info.pid == proc.pid and LocalApi(info.url).health():
                return info, True
            time.sleep(0.1)
        _terminate(proc.pid)
        raise LocalError(f"the local AWS did not answer within {timeout:.0f} s", hint=f"see {directory / LOG_FILE}")


def stop(directory: Path | None = None, timeout: float = STOP_TIMEOUT) -> ServerInfo | None:
    """Stop the server of this state dir and wait until its process is gone; None if none was running."""
    directory = directory or state_dir()
    info = read_info(directory)
    if info is None:
        return None
    stopped = None
    if pid_alive(info.pid) and _is_our_server(info):
        _terminate(info.pid, timeout)
        stopped = info
    with contextlib.suppress(FileNotFoundError):
        (directory / STATE_FILE).unlink()
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

    with open(directory / "start.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log_tail(directory: Path, lines: int = 3) -> str:
    try:
        text = (directory / LOG_FILE).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"


# ---- the server's own routes --------------------------------------------------------------

class LocalApi:
    """Client of the ``/_flowwatch/`` routes of a local server."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, route: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        req = urllib.request.Request(f"{self.url}/_flowwatch/{route}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise LocalError(f"local AWS: {method} /_flowwatch/{route} failed: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LocalError(f"local AWS at {self.url} is not reachable: {getattr(exc, 'reason', exc)}",
                             hint="start it with `flowwatch local start`, or use --local") from None

    def health(self) -> dict[str, Any] | None:
        try:
            req = urllib.request.Request(f"{self.url}/_flowwatch/health")
            with urllib.request.urlopen(req, timeout=2) as resp:
                data = json.loads(resp.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("service") == "flowwatch-local" else None

    def traffic(self, *, region: str, fields: list[str] | tuple[str, ...], lines: list[str], eni: str | None = None,
                vpc_id: str | None = None, subnet_id: str | None = None) -> dict[str, Any]:
        """Hand flow-log records to the local flow-log service, which delivers them now."""
        return self._call("POST", "traffic", {"region": region, "fields": list(fields), "lines": lines, "eni": eni,
                                              "vpc_id": vpc_id, "subnet_id": subnet_id})

    def inbox(self) -> list[dict[str, Any]]:
        return self._call("GET", "inbox")["messages"]

    def alarms(self) -> dict[str, Any]:
        return self._call("GET", "alarms")

    def evaluate(self) -> list[dict[str, Any]]:
        return self._call("POST", "evaluate", {})["changes"]

    def advance(self, seconds: float) -> float:
        return self._call("POST", "clock", {"advance": seconds})["offset"]


def api_for(endpoint_url: str | None) -> LocalApi:
    if not endpoint_url:
        raise LocalError("not pointed at the local AWS", hint="use --local")
    return LocalApi(endpoint_url)


# ---- the CLI's entry points ---------------------------------------------------------------

def ensure_running(out: Any) -> str:
    """``--local``: the running server's URL, starting one first if needed."""
    info = running()
    if info is None:
        with out.working("starting the local AWS (moto + flowwatch data plane)..."):
            info, _ = start()
        out.info(f"[dim]local AWS started on {info.url} (pid {info.pid}); "
                 "`flowwatch local stop` stops it and forgets its state[/dim]")
    return info.url


def start_command(settings: Any, port: int | None) -> None:
    out = _out(settings)
    info = running()
    if info is not None:
        note = f" (not on port {port}: stop it first)" if port not in (None, 0, info.port) else ""
        out.info(f"local AWS already running on {info.url} (pid {info.pid}){note}")
        return
    with out.working("starting the local AWS..."):
        info, _ = start(port)
    out.info(f"[green]✓[/green] local AWS running on {info.url} (pid {info.pid})")
    out.info("[dim]use it with --local (or FLOWWATCH_LOCAL=1); state lasts until `flowwatch local stop`[/dim]")


def stop_command(settings: Any) -> None:
    out = _out(settings)
    info = stop()
    if info is None:
        out.info("local AWS is not running")
    else:
        out.info(f"[green]✓[/green] local AWS stopped (pid {info.pid}, port {info.port} free)")


def status_command(settings: Any) -> int:
    out = _out(settings)
    info = running()
    if info is None:
        stale = read_info()
        out.info("local AWS is not running" + (f" (stale state for pid {stale.pid} ignored)" if stale else ""))
        out.info("[dim]start it with `flowwatch local start`, or use --local[/dim]")
        return 1
    api = LocalApi(info.url)
    health = api.health() or {}
    alarms = api.alarms()
    row = {"url": info.url, "pid": info.pid, "uptime_s": round(time.time() - info.started),
           "regions": ", ".join(health.get("regions") or ()) or "-", "messages": health.get("inbox", 0),
           "alarms": ", ".join(f"{a['alarm']}={a['state']}" for a in alarms["alarms"]) or "-"}
    if settings.output == "json":
        out.json(row)
    else:
        out.data(list(row), [list(row.values())], settings.output, title="flowwatch local AWS")
    return 0


def inbox_command(settings: Any) -> None:
    out = _out(settings)
    info = running()
    if info is None:
        raise LocalError("the local AWS is not running, so its inbox is empty", hint="flowwatch local start")
    messages = LocalApi(info.url).inbox()
    if settings.output == "json":
        out.json(messages)
        return
    if not messages:
        out.info("no notification yet (alarm state changes published to SNS topics show up here)")
        return
    for message in messages:
        out.notification(message)


def _out(settings: Any) -> Any:
    from flowwatch.console import Output

    return Output(getattr(settings, "verbosity", 0), getattr(settings, "debug", False))
