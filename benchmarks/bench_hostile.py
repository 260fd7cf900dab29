"""Benchmark: hostile input, each case a real CLI process (``python -m flowwatch ...``), offline.

For every case: the exit code, the wall time (median of ``--runs``) and the peak RSS of the flowwatch
process (``os.wait4``'s rusage of the child, KiB on Linux), and the first line of stderr. A case is data
(the list CASES): its arguments, the files it needs (built by a named generator), stdin, environment and
what a fixed flowwatch answers. Offline: fake credentials and every AWS endpoint a closed port on
127.0.0.1 (an AWS call fails at once), or, for a case marked ``moto``, AWS mocked in the child process
(``moto.mock_aws`` around ``flowwatch.cli.main``). Each run gets its own state and cache dirs; a local
AWS a run leaves behind is stopped. Every child is limited to ``--memory`` bytes of address space and
``--timeout`` seconds (then reported as ``limit``/``timeout``).

    PYTHONPATH=src python benchmarks/bench_hostile.py [--runs 3] [--only ID ...] [--timeout 30]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# ---- inputs, built by name (a case names them; big ones are made once and kept in the work dir) ---------

ALIAS_BOMB = (  # 9 levels of 9 aliases under a real key: 9^9 strings once expanded, ~540 bytes on disk
    "stack: lab\nalerts:\n  rules:\n    - name: r\n      match: {action: REJECT}\n      metric: ["
    + ",\n        ".join(['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
                          *(f"&{n} [{', '.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi"))])
    + "]\n").encode()

HOSTILE_EVENT = ("[link=https://evil.example]click me[/link] \x1b]8;;https://evil.example\x07here\x1b]8;;\x07 "
                 "\x1b[8mhidden\x1b[0m \x1b[2J \x9b31m")
FLOW_LINE = "2 123456789012 eni-0123456789abcdef0 10.0.0.5 10.0.0.6 443 49152 6 10 840 1764000000 1764000060 ACCEPT OK"


def _gz_one_long_line(path: Path, size: int = 2 << 30) -> None:
    """A .log.gz of about 2 MB holding one line of ``size`` bytes (no newline until the end)."""
    chunk = b"9" * (8 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        for _ in range(size // len(chunk)):
            fh.write(comp.compress(chunk))
        fh.write(comp.compress(b"\n") + comp.flush())


def _nested_sql(depth: int = 5000) -> str:
    return "SELECT " + "(" * depth + "1" + ")" * depth


def _nested_json_pattern(depth: int = 480) -> str:
    return "{ " + "(" * depth + "$.a = 1" + ")" * depth + " }"


INPUTS: dict[str, Callable[[Path], bytes | None]] = {
    "stack-only": lambda _: b"stack: lab\n",
    "alias-bomb": lambda _: ALIAS_BOMB,
    "config-2.5mb": lambda _: b"stack: lab\nnames: [" + b",".join([b"1"] * 1_250_000) + b"]\n",
    "config-100k-keys": lambda _: (b"stack: lab\nnames:\n"
                                   + b"".join(b"  k%d: v\n" % i for i in range(100_000)))[:1 << 20],
    "config-nested": lambda _: b"stack: lab\nnames: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "config-random": lambda _: b"stack: lab\n" + random.Random(7).randbytes(4096),
    "config-png": lambda _: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(8).randbytes(2048),
    "config-utf16": lambda _: "stack: lab\nregion: us-east-1\n".encode("utf-16"),
    "config-nul": lambda _: b"stack: lab\x00\nregion: us-east-1\n",
    "config-long-value": lambda _: b"stack: " + b"A" * 500_000 + b"\n",
    "config-region-9": lambda _: b"stack: lab\nregion: us-east-9\n",
    "config-az-z": lambda _: b"stack: lab\nnetwork:\n  availability_zone: us-east-1z\n",
    "flow-line": lambda _: (FLOW_LINE[:96].ljust(96) + "\n").encode(),
    "json-line": lambda _: b'{"a": 1}\n',
    "empty-dir": lambda work: (work / "empty").mkdir(exist_ok=True) or None,
    "gz-2gib-line": lambda work: None,       # made once by prepare() (slow): see _gz_one_long_line
}

# logs tail on moto: one event that is not a record, planted with markup and escapes
SEED_HOSTILE_EVENT = f"""
import boto3, time
logs = boto3.client("logs", region_name="us-east-1")
logs.create_log_group(logGroupName="/flowwatch/lab/flow-logs")
logs.create_log_stream(logGroupName="/flowwatch/lab/flow-logs", logStreamName="eni-0abc-all")
logs.put_log_events(logGroupName="/flowwatch/lab/flow-logs", logStreamName="eni-0abc-all",
                    logEvents=[{{"timestamp": int(time.time() * 1000) - 1000, "message": {HOSTILE_EVENT!r}}}])
"""


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    config: str | None = "stack-only"            # INPUTS name written as ./flowwatch.yaml
    stdin: str | None = None                      # INPUTS name fed on stdin
    env: dict[str, str] = field(default_factory=dict)
    expect: str = "exit 2"                        # what a fixed flowwatch answers (reported, not enforced)
    moto: str | None = None                       # python run inside mock_aws before main() (None: closed port)
    needs: tuple[str, ...] = ()                   # INPUTS made in the work dir first


CASES = [
    # --- config files ---
    Case("yaml-alias-bomb", ("up", "--dry-run"), config="alias-bomb"),
    Case("config-2.5-mb", ("up", "--dry-run"), config="config-2.5mb"),
    Case("config-1-mib-of-keys", ("up", "--dry-run"), config="config-100k-keys"),
    Case("config-nested-100k", ("up", "--dry-run"), config="config-nested"),
    Case("config-random-bytes", ("up", "--dry-run"), config="config-random"),
    Case("config-png", ("up", "--dry-run"), config="config-png"),
    Case("config-utf-16", ("up", "--dry-run"), config="config-utf16"),
    Case("config-nul-bytes", ("up", "--dry-run"), config="config-nul"),
    Case("config-500k-value", ("up", "--dry-run"), config="config-long-value"),
    Case("region-us-east-9", ("up", "--dry-run"), config="config-region-9"),
    Case("az-us-east-1z (moto)", ("up",), config="config-az-z", moto="pass"),
    # --- command line and environment ---
    Case("since-99999999999d", ("logs", "tail", "--since", "99999999999d")),
    Case("query-from-year-1", ("query", "rejects", "--source", "empty", "--from", "0001-01-01"),
         needs=("empty-dir",)),
    Case("endpoint-env-notaurl", ("status",), env={"FLOWWATCH_ENDPOINT_URL": "notaurl"}),
    Case("endpoint-option-notaurl", ("--endpoint-url", "notaurl", "status")),
    Case("endpoint-credentials", ("--endpoint-url", "http://admin:secret@127.0.0.1:4599", "status")),
    Case("local-port-abc", ("--local", "status"), env={"FLOWWATCH_LOCAL_PORT": "abc"}),
    # --- terminal: an event planted with markup and escapes (exit 0; stdout checked for OSC 8/ESC) ---
    Case("logs-tail-hostile-event (moto)", ("logs", "tail"), env={"FORCE_COLOR": "1"}, expect="exit 0, literal",
         moto=SEED_HOSTILE_EVENT),
    # --- cases of the pattern engine and the local query engine (other parts of the product) ---
    Case("pattern-regex-backtracking", ("pattern", "test", "%.*.*.*.*.*.*.*.*REJECTX%"), stdin="flow-line",
         expect="exit 1 (no match) or 2"),
    Case("pattern-json-480-parens", ("pattern", "test", _nested_json_pattern()), stdin="json-line",
         expect="exit 0/1 or 2"),
    Case("query-sql-nested-5000", ("query", "sql", _nested_sql(), "--engine", "local", "--source", "empty"),
         needs=("empty-dir",)),
    Case("query-sql-read-csv-passwd", ("query", "sql", "SELECT * FROM read_csv('/etc/passwd')", "--engine",
                                       "local", "--source", "empty"), needs=("empty-dir",)),
    Case("query-sql-braces-json", ("query", "sql", "SELECT '{}' AS a", "--engine", "local", "--source", "empty",
                                   "--output", "json"), expect="exit 0, [{\"a\": \"{}\"}]", needs=("empty-dir",)),
    Case("query-gz-one-2-gib-line", ("query", "rejects", "--source", "gz"), expect="exit 0 (line counted) or 2",
         needs=("gz-2gib-line",)),
]

MOTO_MAIN = """import sys
from moto import mock_aws
with mock_aws():
    exec(sys.argv.pop(1))
    from flowwatch.cli import main
    main(sys.argv[1:])
"""


@dataclass
class Run:
    code: str
    wall: float
    rss_kib: int
    err: str
    out: str


def prepare(work: Path, case: Case) -> None:
    for name in case.needs:
        if name == "gz-2gib-line":
            target = work / "gz" / "one-line.log.gz"
            if not target.exists():
                target.parent.mkdir(exist_ok=True)
                print(f"making {target} (2 GiB of one line, gzip) once...", file=sys.stderr)
                _gz_one_long_line(target)
        else:
            INPUTS[name](work)


def run_once(case: Case, work: Path, root: Path, *, timeout: float, memory: int) -> Run:
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    for entry in ("empty", "gz"):
        if (work / entry).exists():
            (run_dir / entry).symlink_to(work / entry)
    if case.config:
        (run_dir / "flowwatch.yaml").write_bytes(INPUTS[case.config](work) or b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWWATCH_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_MAX_ATTEMPTS="1", AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, NO_COLOR="1", COLUMNS="200",
               MOTO_EC2_LOAD_DEFAULT_AMIS="false", XDG_STATE_HOME=str(run_dir / "state"),
               XDG_CACHE_HOME=str(run_dir / "cache"),
               PYTHONPATH=os.pathsep.join(p for p in (str(root / "src"), os.environ.get("PYTHONPATH")) if p))
    if case.moto is None:
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"     # closed: an AWS call fails at once (exit 1)
        cmd = [sys.executable, "-m", "flowwatch", *case.args]
    else:
        cmd = [sys.executable, "-c", MOTO_MAIN, case.moto, *case.args]
    env.update(case.env)
    if "FORCE_COLOR" in case.env:
        env.pop("NO_COLOR", None)
    stdin_path = run_dir / "stdin"
    stdin_path.write_bytes(INPUTS[case.stdin](work) or b"" if case.stdin else b"")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    with open(stdin_path, "rb") as stdin, open(run_dir / "out", "wb") as out, open(run_dir / "err", "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdin=stdin, stdout=out, stderr=err, preexec_fn=limit)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        timed_out = not timer.is_alive()
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = (run_dir / "err").read_text(errors="replace")
    stdout = (run_dir / "out").read_text(errors="replace")
    code = "timeout" if timed_out else ("limit" if "MemoryError" in stderr else str(proc.returncode))
    if (run_dir / "state" / "flowwatch" / "server.json").exists():      # a local AWS it started: stop it
        subprocess.run([sys.executable, "-m", "flowwatch", "local", "stop"], env=env, cwd=run_dir,
                       capture_output=True, timeout=60)
    shutil.rmtree(run_dir, ignore_errors=True)
    return Run(code, wall, usage.ru_maxrss, stderr, stdout)


def first_line(text: str, width: int = 90) -> str:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line)
    return line if len(line) <= width else line[:width - 1] + "…"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per run before it is killed")
    parser.add_argument("--memory", type=int, default=2 << 30, help="address-space limit per run (bytes)")
    parser.add_argument("--only", nargs="*", help="case ids (prefixes) to run")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "flowwatch-bench-hostile"))
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cases = [c for c in CASES if not args.only or any(c.id.startswith(o) for o in args.only)]
    print(f"{'case':<34} {'exit':>7} {'wall s':>7} {'peak RSS MiB':>12}  {'expected':<22} first line of stderr")
    for case in cases:
        prepare(work, case)
        runs = [run_once(case, work, root, timeout=args.timeout, memory=args.memory) for _ in range(args.runs)]
        codes = sorted({r.code for r in runs})
        wall = statistics.median(r.wall for r in runs)
        rss = statistics.median(r.rss_kib for r in runs) / 1024
        note = first_line(runs[-1].err)
        if case.id.startswith("logs-tail"):
            planted = "\x1b]8" in runs[-1].out or "\x1b[2J" in runs[-1].out
            note = ("ESC/OSC 8 REACHED stdout" if planted else "stdout: planted text shown literally") + \
                f" | {first_line(runs[-1].out, 50)}"
        print(f"{case.id:<34} {'/'.join(codes):>7} {wall:>7.2f} {rss:>12.0f}  {case.expect:<22} {note}", flush=True)


if __name__ == "__main__":
    main()
