"""Benchmark: hostile input to `flowwatch query`, each as a real CLI process, old vs new in one run.

Each case runs ``python -m flowwatch query ...`` over a small folder of flow-log files (``--source``,
no AWS), once per round with the old tree's ``src`` first on ``PYTHONPATH`` and once with the new
one's (``--old``, ``--new``), interleaved for ``--runs`` rounds. Reported per case and tree: the exit
code(s), the median wall time and the largest peak RSS (``wait4``). A run past ``--timeout`` is
killed and shown as such. Cases:

* passwd: ``query sql "SELECT * FROM read_csv('/etc/passwd')"`` (and whether any of it was printed);
* braces-json: ``SELECT '{{x}}' AS a`` with ``--output json`` (and whether ``{{x}}`` came back unchanged);
* nest-5000: a SELECT of one value in 5,000 parentheses;
* size-300k: a 300 KiB statement on stdin;
* tokens: 20,000 ``1 = 1`` conditions (under the size limit) on stdin;
* line-2gib: a 2 MB ``.log.gz`` holding one 2 GiB line (``query top-talkers``).

    python benchmarks/bench_query_hostile.py --old /tmp/base/src --new src [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_inputs(folder: Path) -> dict[str, tuple[list[str], str | None, Path]]:
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ok = logs / "ok.log.gz"
    if not ok.exists():
        ok.write_bytes(gzip.compress(
            b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
            b"action log-status\n2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1700000000 1700000060 ACCEPT OK\n"))
    bomb = folder / "bomb"
    bomb.mkdir(exist_ok=True)
    if not (bomb / "one.log.gz").exists():
        member = gzip.compress(b"a" * (16 << 20), compresslevel=9)
        with (bomb / "one.log.gz").open("wb") as handle:
            for _ in range(128):                         # 128 x 16 MiB = 2 GiB, no newline
                handle.write(member)
            handle.write(gzip.compress(b"\n"))
    src = ["--source", str(logs)]
    tokens = "SELECT 1 AS a WHERE " + " AND ".join(["1 = 1"] * 20000)
    return {
        "passwd": (["query", "sql", "SELECT * FROM read_csv('/etc/passwd')", *src], None, logs),
        "braces-json": (["--output", "json", "query", "sql", "SELECT '{{x}}' AS a", *src], None, logs),
        "nest-5000": (["query", "sql", "SELECT " + "(" * 5000 + "1" + ")" * 5000, *src], None, logs),
        "size-300k": (["query", "sql", "-", *src], "SELECT 1 AS a -- " + "x" * (300 << 10), logs),
        "tokens": (["query", "sql", "-", *src], tokens, logs),
        "line-2gib": (["query", "top-talkers", "--source", str(bomb)], None, bomb),
    }


def run(src: str, args: list[str], stdin: str | None, timeout: float, cwd: Path) -> tuple[str, float, int, str]:
    env = dict(os.environ, PYTHONPATH=src, XDG_CACHE_HOME=str(cwd.parent / "cache"))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "flowwatch", *args], cwd=cwd, env=env, stdout=out,
                                stderr=err, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                start_new_session=True)
        if stdin is not None:
            try:
                proc.stdin.write(stdin.encode())             # type: ignore[union-attr]
                proc.stdin.close()                           # type: ignore[union-attr]
            except BrokenPipeError:
                pass
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                return "timeout", time.perf_counter() - started, usage.ru_maxrss // 1024, ""
            time.sleep(0.02)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace") + err.read().decode(errors="replace")
        return str(os.waitstatus_to_exitcode(status)), wall, usage.ru_maxrss // 1024, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="src folder of the old tree")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parent.parent / "src"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "flowwatch-bench-hostile"))
    opts = parser.parse_args()
    folder = Path(opts.dir)
    cases = make_inputs(folder)
    results: dict[tuple[str, str], list[tuple[str, float, int, str]]] = {}
    for _ in range(opts.runs):
        for name, (args, stdin, cwd) in cases.items():
            for tree, src in (("old", opts.old), ("new", opts.new)):
                results.setdefault((name, tree), []).append(run(os.path.abspath(src), args, stdin, opts.timeout,
                                                                folder))
    print(f"{'case':<12} {'tree':<4} {'exit':<10} {'median s':>9} {'peak MiB':>9}  note")
    for name in cases:
        for tree in ("old", "new"):
            runs = results[(name, tree)]
            codes = ",".join(sorted({r[0] for r in runs}))
            wall = statistics.median(r[1] for r in runs)
            peak = max(r[2] for r in runs)
            text = runs[-1][3]
            note = ""
            if name == "passwd":
                note = "passwd printed" if "/bin/" in text or "nologin" in text else "nothing of it printed"
            elif name == "braces-json":
                note = "{{x}} unchanged" if '"{{x}}"' in text else "changed or failed"
            elif text:
                note = [line for line in text.splitlines() if line.strip()][-1][:70]
            print(f"{name:<12} {tree:<4} {codes:<10} {wall:>9.2f} {peak:>9}  {note}")


if __name__ == "__main__":
    main()
