"""Latency from injection to ALARM of each `flowwatch simulate` scenario on the local AWS (wall seconds,
median of N runs), all four detections on. Each run gets a fresh stack on one local server (a stack per run, so
an alarm already in ALARM never hides a state change).

    PYTHONPATH=src python benchmarks/bench_scenarios.py [--runs 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    from flowwatch import engine
    from flowwatch.actions import scenarios
    from flowwatch.config import parse_config
    from flowwatch.console import Output
    from flowwatch.context import build_context
    from flowwatch.local import process
    from flowwatch.local.client import LocalApi
    from flowwatch.settings import Settings

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-scenarios-"))
    info, _ = process.start(0, directory)
    results: dict[str, list[float]] = {}
    try:
        for scenario in ("port-scan", "ssh-probe", "reject-spike", "egress-spike"):
            for run in range(args.runs):
                stack = f"b{scenario[:6].strip('-')}{run}"
                config = parse_config({"stack": stack, "alerts": {"detections": list(scenarios.DETECTION.values())}})
                out = Output(stderr=io.StringIO(), stdout=io.StringIO(), color=False)
                ctx = build_context(Settings(stack=stack, local=True), config=config, out=out, endpoint_url=info.url,
                                    local_api=LocalApi(info.url))
                engine.up(ctx)
                began = time.monotonic()
                code = scenarios.run(ctx, scenario, timeout=120)
                elapsed = time.monotonic() - began
                if code != 0:
                    print(f"{scenario}: run {run} did not reach ALARM in 120 s")
                    continue
                results.setdefault(scenario, []).append(elapsed)
                engine.down(ctx)
    finally:
        process.stop(directory)
    print(f"{'scenario':<14} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}   (injection, baseline included, to ALARM)")
    for scenario, times in results.items():
        print(f"{scenario:<14} {len(times):>4} {statistics.median(times):>9.2f} {min(times):>7.2f} {max(times):>7.2f}")


if __name__ == "__main__":
    main()
