"""Benchmark: FilterLogEvents of a real local server over N log events, next to the offline path.

Puts N VPC flow-log (v2) lines (~10% rejected ICMP, the lab's pattern's matches) into one log
stream of a fresh local server (``python -m flowwatch.local.server``, 127.0.0.1, free port) with
PutLogEvents, then times, over ``--repeat`` runs (median):

  (a) FilterLogEvents with the lab pattern, every page (limit 10,000) through boto3: events
      searched per second (N / time), and the matches returned;
  (b) the same work offline, as ``flowwatch pattern test`` does it: flowwatch.patterns over the
      same lines in-process (compile once, ``matches`` each line).

    PYTHONPATH=src python benchmarks/bench_filter_log_events.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from flowwatch.patterns import compile_pattern
from flowwatch.records import RecordFormat

V2 = RecordFormat.parse("v2")
LAB_PATTERN = V2.filter_pattern({"protocol": 1, "action": "REJECT"})
BATCH = 8000   # PutLogEvents: at most 10,000 events and 1 MiB a call


def lines(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        reject_icmp = rng.random() < 0.10
        protocol = 1 if reject_icmp else rng.choice((6, 6, 6, 17, 1))
        action = "REJECT" if reject_icmp or rng.random() < 0.03 else "ACCEPT"
        if protocol == 1 and action == "ACCEPT" and not reject_icmp:
            protocol = 6
        ports = "0 0" if protocol == 1 else f"{rng.randrange(1024, 65535)} {rng.choice((22, 80, 443))}"
        out.append(f"2 123456789012 eni-0a1b2c3d 10.0.0.{rng.randrange(1, 255)} 8.8.{rng.randrange(256)}.8 {ports} "
                   f"{protocol} {rng.randrange(1, 50)} {rng.randrange(60, 9000)} 1700000000 1700000060 {action} OK")
    return out


def start(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen([sys.executable, "-m", "flowwatch.local.server", "--port", "0", "--state-dir",
                             str(directory), "--tick", "3600", "--log-file", str(directory / "server.log")],
                            stdin=subprocess.DEVNULL, env=env)
    state = directory / "server.json"
    for _ in range(600):
        if state.exists():
            return proc, json.loads(state.read_text())["url"]
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the local server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = lines(args.events)

    pattern = compile_pattern(LAB_PATTERN)
    offline = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        matched = sum(1 for line in data if pattern.matches(line))
        offline.append(time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(Path(tmp))
        try:
            logs = boto3.client("logs", region_name="us-east-1", endpoint_url=url,
                                aws_access_key_id="bench", aws_secret_access_key="bench")
            logs.create_log_group(logGroupName="/bench")
            logs.create_log_stream(logGroupName="/bench", logStreamName="eni-0a1b2c3d-all")
            t = time.perf_counter()
            base = int(time.time() * 1000) - 2 * len(data)   # recent: older events are rejected
            for i in range(0, len(data), BATCH):
                logs.put_log_events(logGroupName="/bench", logStreamName="eni-0a1b2c3d-all", logEvents=[
                    {"timestamp": base + i + j, "message": m} for j, m in enumerate(data[i:i + BATCH])])
            put = time.perf_counter() - t
            served = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                found = sum(len(page["events"]) for page in logs.get_paginator("filter_log_events").paginate(
                    logGroupName="/bench", filterPattern=LAB_PATTERN))
                served.append(time.perf_counter() - t)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    assert found == matched, (found, matched)
    n = args.events
    print(f"{n:,} events, {matched:,} matching the lab pattern; "
          f"put in {put:.1f} s ({n / put:,.0f} events/s)")
    print(f"  (a) FilterLogEvents, local server: median {statistics.median(served):.2f} s = "
          f"{n / statistics.median(served):,.0f} events searched/s  (runs: {', '.join(f'{s:.2f}' for s in served)})")
    print(f"  (b) offline, flowwatch.patterns:   median {statistics.median(offline):.2f} s = "
          f"{n / statistics.median(offline):,.0f} lines/s  (runs: {', '.join(f'{s:.2f}' for s in offline)})")


if __name__ == "__main__":
    main()
