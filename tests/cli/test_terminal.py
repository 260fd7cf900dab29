"""flowwatch in a real terminal: an 80-column tmux window runs `--local up`, `simulate-reject`, `status`
and `query rejects`, and what the screen shows is checked as a user reads it: no line wider than the
window, and no ID or address cut across two lines.

Everything runs in the test's tmp dir (HOME, XDG_STATE_HOME, XDG_CACHE_HOME, a private tmux socket, no
tmux config), the local AWS on a free port (FLOWWATCH_LOCAL_PORT=0), so a developer's server, tmux or
cache is never touched; the server is stopped at the end whatever happened. The screens are written to
``<tmp>/screens.txt`` (the path is printed: `pytest -s` shows it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,   # a tmux server, the local AWS, a whole stack
              pytest.mark.skipif(shutil.which("tmux") is None,
                                 reason="tmux is not installed (apt-get install tmux): no terminal to test in")]

WIDTH = 80
HEIGHT = 50
COMMAND_TIMEOUT = 600          # a guard against a hung command, not a speed goal
# What a user copies from the screen: AWS resource IDs (8 or 17 hex digits) and the subnet's addresses
AWS_ID = re.compile(r"\b(vpc|subnet|igw|acl|rtb|sg|eni|fl|i)-([0-9a-f]*)")
ADDRESS = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])")
# What fails on today's code, per check and command (the branches making output fit the terminal
# flip these; strict=False, so an early fix only shows as XPASS):
# - up, simulate-reject: progress lines longer than 80 columns, which the terminal wraps mid-word;
# - status, query rejects: the tables fit 80 columns by folding cells, which cuts IDs and addresses
#   (vpc-.../subnet-... in `found`, eni-... and 10.0.0.10 in the rejects rows).
FAILS_TODAY: dict[tuple[str, str], str] = {}   # (check, command) -> why it fails; none today


@dataclass
class Screen:
    command: str
    code: int
    lines: list[str]


class Terminal:
    """One tmux server on a private socket; each command runs in its own WIDTH x HEIGHT window."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.socket = work / "tmux.sock"
        self.count = 0

    def tmux(self, *args: str, timeout: float = 30) -> str:
        return subprocess.run(["tmux", "-S", str(self.socket), "-f", os.devnull, *args], env=self.env,
                              cwd=self.work, capture_output=True, text=True, check=True, timeout=timeout).stdout

    def run(self, *flowwatch_args: str) -> Screen:
        """``flowwatch ARGS`` in a fresh window; waits for it to exit; the whole screen (with scrollback)."""
        self.count += 1
        name, channel, rc = f"w{self.count}", f"done{self.count}", self.work / f"rc{self.count}"
        line = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "flowwatch", *flowwatch_args])
        tmux = f"tmux -S {shlex.quote(str(self.socket))}"
        # the window stays open (its screen intact) until it has been captured: then `release` closes it
        script = f"{line}; echo $? > {shlex.quote(str(rc))}; {tmux} wait-for -S {channel}; {tmux} wait-for {channel}r"
        if self.count == 1:   # the session's first window only keeps it (and the tmux server) alive
            self.tmux("new-session", "-d", "-s", "fw", "-n", "idle", "-x", str(WIDTH), "-y", str(HEIGHT), "cat")
            self.tmux("set-option", "-g", "history-limit", "5000")
        self.tmux("new-window", "-d", "-t", "fw", "-n", name, "sh", "-c", script)
        assert self.tmux("display-message", "-p", "-t", f"fw:{name}", "#{window_width}").strip() == str(WIDTH)
        self.tmux("wait-for", channel, timeout=COMMAND_TIMEOUT)
        # -J: a line the terminal wrapped comes back as the one line the program wrote (so its real width);
        # a line the program broke itself (a table cell folded by rich) stays two lines
        text = self.tmux("capture-pane", "-p", "-J", "-t", f"fw:{name}", "-S", "-", "-E", "-")
        self.tmux("wait-for", "-S", f"{channel}r")
        lines = [line.rstrip() for line in text.split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return Screen(" ".join(flowwatch_args), int(rc.read_text().strip() or 1), lines)

    def close(self) -> None:
        if self.socket.exists():
            subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], env=self.env, capture_output=True,
                           timeout=30)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """One terminal story (up, simulate-reject, status, query rejects), then `local stop`, always."""
    work = tmp_path_factory.mktemp("terminal")
    (work / "flowwatch.yaml").write_text("stack: term\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "FLOWWATCH_", "TMUX")) and k not in ("COLUMNS", "LINES")}
    env.update(HOME=str(work / "home"), XDG_STATE_HOME=str(work / "state"), XDG_CACHE_HOME=str(work / "cache"),
               FLOWWATCH_LOCAL_PORT="0", TERM="xterm-256color", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if env.get("PYTHONPATH"):   # the commands run in `work`: a relative entry (PYTHONPATH=src) must still hold
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    (work / "home").mkdir()
    term = Terminal(work, env)
    screens: dict[str, Screen] = {}
    report = work / "screens.txt"
    try:
        for args in (("--local", "up"), ("--local", "simulate-reject"), ("--local", "status"),
                     ("--local", "query", "rejects", "--limit", "10")):
            screen = term.run(*args)
            screens[" ".join(a for a in args[1:] if a not in ("--limit", "10"))] = screen
        json_of = {name: _json(work, env, *args) for name, args in
                   (("status", ("--local", "--output", "json", "status")),
                    ("query rejects", ("--local", "query", "rejects", "--limit", "10", "--output", "json")))}
        screens["local stop"] = term.run("--local", "local", "stop")
        yield {"screens": screens, "json": json_of, "work": work, "env": env}
    finally:
        report.write_text("".join(f"$ flowwatch {s.command}    (exit {s.code})\n" + "\n".join(s.lines) + "\n\n"
                                  for s in screens.values()))
        print(f"\nterminal screens ({WIDTH} columns): {report}")
        subprocess.run([sys.executable, "-m", "flowwatch", "local", "stop"], env=env, cwd=work,
                       capture_output=True, timeout=120)
        term.close()


def _json(work: Path, env: dict[str, str], *args: str) -> object:
    done = subprocess.run([sys.executable, "-m", "flowwatch", *args], env=env, cwd=work, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _whole(token: str, lines: list[str]) -> bool:
    pattern = re.compile(rf"(?<![\w.-]){re.escape(token)}(?![\w.])")
    return any(pattern.search(line) for line in lines)


def _params(check: str) -> list[object]:
    return [pytest.param(c, id=c.replace(" ", "-"),
                         marks=[pytest.mark.xfail(strict=False, reason=FAILS_TODAY[check, c])]
                         if (check, c) in FAILS_TODAY else [])
            for c in COMMANDS]


COMMANDS = ["up", "simulate-reject", "status", "query rejects"]


def test_the_story_runs(session):
    screens = session["screens"]
    assert {name: s.code for name, s in screens.items()} == {name: 0 for name in screens}, \
        "\n\n".join("\n".join(s.lines) for s in screens.values())


@pytest.mark.parametrize("command", _params("width"))
def test_no_line_is_wider_than_the_terminal(session, command):
    screen = session["screens"][command]
    wide = [f"{len(line)}: {line}" for line in screen.lines if len(line) > WIDTH]
    assert not wide, f"`flowwatch {command}` has lines over {WIDTH} columns:\n" + "\n".join(wide)


@pytest.mark.parametrize("command", _params("cut"))
def test_no_id_or_address_is_cut(session, command):
    """Every AWS ID on the screen has all its digits; every address in the data is on one line."""
    screen = session["screens"][command]
    cut = [line for line in screen.lines for m in AWS_ID.finditer(line) if len(m.group(2)) not in (8, 17)]
    assert not cut, f"`flowwatch {command}` cuts an ID:\n" + "\n".join(cut)
    data = session["json"].get(command)
    if data is not None:
        tokens = {t for s in _strings(data) for t in (*AWS_ID_FULL.findall(s), *ADDRESS.findall(s))}
        assert tokens, f"no ID or address in `{command} --output json`"
        # a column may be left out at 80 columns (the table says which), but what is shown is whole
        shown = sorted(t for t in tokens if _whole(t, screen.lines))
        cut_off = sorted(t for t in tokens if t not in shown and _cut(t, screen.lines))
        assert shown, f"`flowwatch {command}` shows none of {sorted(tokens)}\n" + "\n".join(screen.lines)
        assert not cut_off, f"`flowwatch {command}` cuts these: {cut_off}\n" + "\n".join(screen.lines)


def _cut(token: str, lines: list[str]) -> bool:
    """Some line holds the start of ``token`` (at least half of it) that then stops, as a folded cell does."""
    for line in lines:
        for k in range(max(4, len(token) // 2), len(token)):
            at = line.find(token[:k])
            while at >= 0:
                rest = line[at + k:at + k + 1]
                if not (rest.isalnum() or rest in "-."):
                    return True
                at = line.find(token[:k], at + 1)
    return False


AWS_ID_FULL = re.compile(r"\b(?:vpc|subnet|igw|acl|rtb|eni|fl)-(?:[0-9a-f]{17}|[0-9a-f]{8})\b")


def test_local_stop_stopped_the_server(session):
    from flowwatch.local import process

    screen = session["screens"]["local stop"]
    assert screen.code == 0 and any("stopped" in line for line in screen.lines), "\n".join(screen.lines)
    state = Path(session["env"]["XDG_STATE_HOME"]) / "flowwatch"
    assert process.running(state) is None
    assert not any(state.glob("server.*")) and not (state / "start.lock").exists()
