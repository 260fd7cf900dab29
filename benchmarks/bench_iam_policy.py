"""Benchmark: the size of the generated caller policy, per command set, against the IAM managed-policy limit.

IAM counts a managed policy's characters without whitespace (limit 6,144). For each command set (every
command, then each command alone) and each form (stack ``lab`` with account and region; any stack), prints
the compact JSON size of the whole policy and of each ``--part``, and the median time to generate it over
``--runs`` runs. With ``--base SRC`` (another tree's ``src``, e.g. ``git worktree add /tmp/base 7a09859``),
the same figures of that tree are printed next to them (its policy has no parts).

    PYTHONPATH=src python benchmarks/bench_iam_policy.py [--runs 20] [--base /tmp/base/src]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

PROBE = r"""
import inspect, json, statistics, sys, time
from flowwatch import iam_policy as m
runs = int(sys.argv[1])
forms = {"lab": dict(account="123456789012", region="us-east-1", stack="lab"), "any stack": {}}
sets = [None] + [[c] for c in m.COMMANDS]
parts = getattr(m, "PARTS", 0)
out = []
for form, kw in forms.items():
    for commands in sets:
        times = []
        for _ in range(runs):
            t = time.perf_counter(); doc = m.policy(commands=commands, **kw); times.append(time.perf_counter() - t)
        size = lambda d: len(json.dumps(d, separators=(",", ":")))
        out.append({"form": form, "commands": "all" if commands is None else commands[0], "size": size(doc),
                    "parts": [size(m.policy(commands=commands, part=n, **kw)) for n in range(1, parts + 1)],
                    "ms": statistics.median(times) * 1000})
print(json.dumps(out))
"""


def measure(src: str, runs: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", PROBE, str(runs)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "src"))
    parser.add_argument("--base", default=None, help="another tree's src to compare with")
    args = parser.parse_args()
    new = measure(os.path.abspath(args.src), args.runs)
    old = {(r["form"], r["commands"]): r for r in measure(args.base, args.runs)} if args.base else {}
    print(f"{'form':10} {'commands':16} {'chars':>6} {'parts':>13} {'ms':>6} {'fits':>5}"
          + ("   base: chars    ms  fits" if old else ""))
    for r in new:
        fits = "yes" if (max(r["parts"]) if r["parts"] else r["size"]) <= 6144 else "NO"
        line = (f"{r['form']:10} {r['commands']:16} {r['size']:6d} {'+'.join(map(str, r['parts'])):>13} "
                f"{r['ms']:6.2f} {fits:>5}")
        base = old.get((r["form"], r["commands"]))
        if base:
            line += f"   {base['size']:11d} {base['ms']:5.2f} {'yes' if base['size'] <= 6144 else 'NO':>5}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
