"""The embedded local AWS: injection -> ALARM latency, and `flowwatch demo` wall time.

Usage: python benchmarks/bench_local.py [--runs N] [--demo]

Latency: for each run, a fresh local server (free port on 127.0.0.1) and a fresh stack (full `up`);
once the new alarm has settled in OK, `simulate-reject`'s inject (POST of 10 synthetic REJECT
records to the local flow-log service) starts the clock, and DescribeAlarms is polled every 20 ms
until the state is ALARM. With --demo, `flowwatch demo` also runs N times as a subprocess and its
wall time is reported. Nothing is left running.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def latency_once() -> float:
    from flowwatch import engine
    from flowwatch.actions import simulate
    from flowwatch.config import parse_config
    from flowwatch.console import Output
    from flowwatch.context import build_context
    from flowwatch.local import process
    from flowwatch.local.client import LocalApi
    from flowwatch.settings import Settings

    directory = Path(tempfile.mkdtemp(prefix="bench-local-")) / "state"
    info, _ = process.start(0, directory)
    try:
        config = parse_config({"stack": "bench", "alerts": {"email": "you@example.com"}})
        out = Output(stderr=io.StringIO(), stdout=io.StringIO(), color=False)
        ctx = build_context(Settings(stack="bench", local=True), config=config, out=out, endpoint_url=info.url,
                            local_api=LocalApi(info.url))
        engine.up(ctx)
        cw, name = ctx.aws.cloudwatch, ctx.names.alarm("ping-deny")

        def state() -> str:
            return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]

        while state() != "OK":
            time.sleep(0.05)
        target = simulate.find_target(ctx)
        started = time.monotonic()
        simulate.inject(ctx, target, 10)
        while state() != "ALARM":
            time.sleep(0.02)
        return time.monotonic() - started
    finally:
        process.stop(directory)


def demo_once() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "flowwatch", "demo"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--demo", action="store_true", help="also time `flowwatch demo`")
    args = parser.parse_args()
    lat = [latency_once() for _ in range(args.runs)]
    print(f"injection -> ALARM: median {statistics.median(lat):.3f} s, max {max(lat):.3f} s "
          f"({', '.join(f'{x:.3f}' for x in lat)})")
    if args.demo:
        walls = [demo_once() for _ in range(args.runs)]
        print(f"flowwatch demo wall time: median {statistics.median(walls):.1f} s, max {max(walls):.1f} s "
              f"({', '.join(f'{x:.1f}' for x in walls)})")


if __name__ == "__main__":
    main()
