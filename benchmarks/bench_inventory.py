"""`status` and `down` of a converged stack: AWS calls and median wall time, for two source trees in one run.

Usage: python benchmarks/bench_inventory.py [--old SRC] [--new SRC] [--runs N] [--json]

Each tree runs in its own process (PYTHONPATH=<SRC>) on moto in-process: N cycles of `up`, a warm-up `status`
and a timed one ("warm"), then a fresh-context `status` (timed, calls counted), then `down` (timed, calls
counted). moto's GetResources walks every service backend it has, so the cold figures overstate its cost. The calls are listed per (service, operation) where
the two trees differ, so the cost of discovering everything tagged for the stack is visible.
Default: --old is a checkout of the tree before the inventory (e.g. `git worktree add /tmp/base 7a09859`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import io, json, os, sys, time
from collections import Counter
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                  MOTO_EC2_LOAD_DEFAULT_AMIS="false")
import boto3
from moto import mock_aws
from flowwatch import engine
from flowwatch.aws import Aws
from flowwatch.config import parse_config
from flowwatch.console import Output
from flowwatch.model import Context, Stack, default_poll
from flowwatch.naming import Names

runs = int(sys.argv[1])
out = {"status": [], "warm_status": [], "down": [], "status_calls": Counter(), "down_calls": Counter()}
config = parse_config({"stack": "bench"})
for i in range(runs):
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        seen = []
        session.events.register("before-call.*.*",
                                lambda event_name, model, **_: seen.append(event_name.split(".")[1] + ":" + model.name))
        def context():
            return Context(config=config, aws=Aws(session), out=Output(stderr=io.StringIO(), stdout=io.StringIO()),
                           names=Names.from_config(config), stack=Stack(config.stack),
                           poll=default_poll().with_(sleep=lambda _: None))
        engine.up(context())
        engine.status(context())                 # warm: moto's backends and botocore's models loaded once
        started = time.perf_counter()
        engine.status(context())
        out["warm_status"].append((time.perf_counter() - started) * 1000)
        for label, run in (("status", lambda: engine.status(context())), ("down", lambda: engine.down(context()))):
            seen.clear()
            started = time.perf_counter()
            run()
            out[label].append((time.perf_counter() - started) * 1000)
            if i == 0:
                out[label + "_calls"] = Counter(seen)
print(json.dumps(out))
'''


def measure(src: str, runs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", CHILD, str(runs)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="/tmp/base-inventory/src")
    parser.add_argument("--new", default=str(ROOT / "src"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {}
    for label, src in (("old", args.old), ("new", args.new)):
        m = measure(src, args.runs)
        result[label] = {"_warm": m["warm_status"]}
        result[label] |= {cmd: {"calls": sum(m[cmd + "_calls"].values()), "median_ms": round(statistics.median(m[cmd]), 1),
                               "by_operation": m[cmd + "_calls"]} for cmd in ("status", "down")}
    for label in ("old", "new"):
        result[label]["warm_status_median_ms"] = round(statistics.median(result[label].pop("_warm")), 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'':8}{'old calls':>10}{'new calls':>10}{'old ms':>10}{'new ms':>10}   (median of {args.runs} runs)")
    for cmd in ("status", "down"):
        old, new = result["old"][cmd], result["new"][cmd]
        print(f"{cmd:8}{old['calls']:>10}{new['calls']:>10}{old['median_ms']:>10}{new['median_ms']:>10}")
        diff = Counter(new["by_operation"]) - Counter(old["by_operation"])
        fewer = Counter(old["by_operation"]) - Counter(new["by_operation"])
        if diff or fewer:
            print("        added:   " + ", ".join(f"{k} x{v}" for k, v in sorted(diff.items())))
            if fewer:
                print("        removed: " + ", ".join(f"{k} x{v}" for k, v in sorted(fewer.items())))
    print(f"{'status, warm':14}{'':16}{result['old']['warm_status_median_ms']:>10}"
          f"{result['new']['warm_status_median_ms']:>10}   (backends and clients already loaded)")


if __name__ == "__main__":
    main()
