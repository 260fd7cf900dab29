"""Benchmark: Contributor Insights rules over VPC flow-log (version 2) events, all rules at once.

Times, on the same generated events (``random.Random(seed)``: ~75% TCP, ~20% UDP, ~5% ICMP,
~10% REJECT, a few ``-`` byte counts), median of ``--repeat`` runs:

  (a) split only: ``message.split()`` for every event (the floor);
  (b) each rule alone through an Evaluator;
  (c) every rule at once through one Evaluator (each event split once);

and prints events/second. The rules are the built-in detections' shapes: top rejected sources
(Count by srcaddr, action In REJECT), SSH/RDP probes (Count by srcaddr, dstport In 22/3389,
action REJECT), bytes by pair (AWS's example, Sum of bytes by srcaddr+dstaddr), rejected TCP by
interface and source (AWS's example).

    PYTHONPATH=src python benchmarks/bench_contributors.py [--events N] [--repeat R] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from flowwatch.local.contributors import Evaluator, parse_rule

SCHEMA = {"Name": "CloudWatchLogRule", "Version": 1}
GROUP = "/flowwatch/bench/flows"
FIELDS = {"3": "interface-id", "4": "srcaddr", "5": "dstaddr", "7": "dstport", "8": "protocol", "10": "bytes",
          "13": "action"}


def rule(keys, filters=(), value=None):
    contribution = {"Keys": list(keys), "Filters": list(filters)}
    if value:
        contribution["ValueOf"] = value
    return {"Schema": SCHEMA, "LogGroupNames": [GROUP], "LogFormat": "CLF", "Fields": FIELDS,
            "Contribution": contribution, "AggregateOn": "Sum" if value else "Count"}


RULES = {
    "top-rejected-sources": rule(["srcaddr"], [{"Match": "action", "In": ["REJECT"]}]),
    "ssh-rdp-probe": rule(["srcaddr"], [{"Match": "dstport", "In": ["22", "3389"]},
                                        {"Match": "action", "In": ["REJECT"]}]),
    "bytes-by-pair": rule(["srcaddr", "dstaddr"], value="bytes"),
    "rejected-tcp": rule(["interface-id", "srcaddr"], [{"Match": "protocol", "EqualTo": 6},
                                                       {"Match": "action", "In": ["REJECT"]}]),
}


def generate(n: int, seed: int) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    t0 = 1_700_000_000_000
    out = []
    for i in range(n):
        proto = rng.choices((6, 17, 1), (75, 20, 5))[0]
        action = "REJECT" if rng.random() < 0.1 else "ACCEPT"
        src = f"10.0.{rng.randrange(4)}.{rng.randrange(1, 255)}" if rng.random() < 0.5 else \
            f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        dst = f"10.0.0.{rng.randrange(1, 64)}"
        dport = rng.choice((22, 80, 443, 3389, 53, rng.randrange(1024, 65535)))
        size = "-" if rng.random() < 0.02 else str(rng.randrange(40, 90000))
        out.append((t0 + i * 3, f"2 123456789012 eni-{rng.randrange(16):04x} {src} {dst} {rng.randrange(1024, 65535)} "
                                f"{dport} {proto} {rng.randrange(1, 50)} {size} 1700000000 1700000060 {action} OK"))
    return out


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    events = generate(args.events, args.seed)
    parsed = {name: parse_rule(body) for name, body in RULES.items()}
    n = len(events)

    def split_only() -> None:
        for _, message in events:
            message.split()

    floor = timed(split_only, args.repeat)
    print(f"{n:,} events, median of {args.repeat}")
    print(f"  split only                      {n / floor:>12,.0f} events/s")
    for name, r in parsed.items():
        seconds = timed(lambda: Evaluator({name: r}).feed(GROUP, events), args.repeat)
        print(f"  {name:<30}  {n / seconds:>12,.0f} events/s")
    last: list[Evaluator] = []

    def all_rules() -> None:
        ev = Evaluator(parsed)
        ev.feed(GROUP, events)
        last[:] = [ev]

    seconds = timed(all_rules, args.repeat)
    print(f"  all {len(parsed)} rules at once            {n / seconds:>12,.0f} events/s "
          f"({seconds / floor:.1f}x the split)")
    buckets = sum(len(s.buckets) for s in last[0].series.values())
    print(f"  one-minute buckets kept: {buckets:,}")


if __name__ == "__main__":
    main()
