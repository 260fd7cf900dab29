"""Benchmark: a gzip bomb sent to the local AWS server, old vs new source tree.

For each source tree (PYTHONPATH=OLD_SRC, then NEW_SRC) a fresh server is started
(``python -m flowwatch.local.server --port 0``), one logs:PutLogEvents request is sent whose body is
``--mib`` MiB of zeros gzipped (concatenated 16 MiB members: about 1 KB per MiB), and the server's
peak RSS growth (``VmHWM`` minus ``VmRSS`` before, /proc/<pid>/status), the HTTP status and the
wall time of the answer are reported; median over ``--repeat`` servers.

    python benchmarks/bench_server.py /tmp/base/src src [--mib 512] [--repeat 3] [--timeout 120]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIGNED = ("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, "
          "SignedHeaders=host, Signature=0")


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _one(src: str, bomb: bytes, timeout: float) -> tuple[str, float, float]:
    """(status, peak RSS growth MiB, seconds) of one bomb on a fresh server of ``src``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = src
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([sys.executable, "-m", "flowwatch.local.server", "--port", "0", "--state-dir", tmp,
                                 "--tick", "3600"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            state = Path(tmp) / "server.json"
            deadline = time.monotonic() + 60
            while not state.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server of {src} did not start")
                time.sleep(0.05)
            port = json.loads(state.read_text())["port"]
            before = _kib(proc.pid, "VmRSS")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            started = time.perf_counter()
            try:
                conn.request("POST", "/", body=bomb, headers={
                    "Content-Encoding": "gzip", "X-Amz-Target": "Logs_20140328.PutLogEvents",
                    "Content-Type": "application/x-amz-json-1.1", "Authorization": SIGNED})
                status = str(conn.getresponse().status)
            except (TimeoutError, OSError) as exc:
                status = f"no answer ({type(exc).__name__})"
            elapsed = time.perf_counter() - started
            grown = (_kib(proc.pid, "VmHWM") - before) / 1024
            conn.close()
            return status, grown, elapsed
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old_src")
    parser.add_argument("new_src")
    parser.add_argument("--mib", type=int, default=512, help="decompressed size of the bomb (multiple of 16)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for an answer")
    args = parser.parse_args(argv)
    member = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)
    bomb = member * max(1, args.mib // 16)
    print(f"gzip bomb: {len(bomb) / 1024:.0f} KiB sent, {len(bomb) // len(member) * 16} MiB decompressed; "
          f"{args.repeat} fresh servers per tree, medians")
    print(f"{'tree':<6} {'status':<10} {'peak RSS growth MiB':>20} {'answer s':>9}")
    for label, src in (("old", args.old_src), ("new", args.new_src)):
        runs = [_one(src, bomb, args.timeout) for _ in range(args.repeat)]
        statuses = sorted({r[0] for r in runs})
        print(f"{label:<6} {','.join(statuses):<10} {statistics.median(r[1] for r in runs):>20.0f} "
              f"{statistics.median(r[2] for r in runs):>9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
