"""Benchmark: the lab's metric-filter pattern over VPC flow-log (version 2) lines.

Times, in one run and on the same lines:
  (a) ``for line in lines: line.split()``          the floor: just splitting each line;
  (b) ``for line in lines: pattern.matches(line)`` the lab pattern (rejected ICMP).

The target is (b) at no less than 1/3 the speed of (a). Lines are generated deterministically
(``random.Random(seed)``): ~75% TCP, ~20% UDP, ~5% ICMP, a few % REJECT, some NODATA/SKIPDATA.

    /work/venv/bin/python benchmarks/bench_patterns.py [--lines N] [--repeat R] [--seed S]

``--hostile OLD_SRC NEW_SRC``: instead, the catastrophic regexes (and two ordinary ones), each in a
fresh process per source tree (PYTHONPATH=OLD_SRC, then NEW_SRC), on 96-character flow-log lines:
median ms per line over ``--repeat`` runs; a run longer than ``--timeout`` seconds is stopped and
reported as "> T s".

    PYTHONPATH=src python benchmarks/bench_patterns.py --hostile /tmp/base/src src --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable

from flowwatch.patterns import compile_pattern

LAB_PATTERN = (
    "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol=1, "
    "packets, bytes, start, end, action=REJECT, log_status]"
)


def _ip(rng: random.Random, private: bool) -> str:
    if private:
        return f"10.0.{rng.randrange(0, 4)}.{rng.randrange(1, 255)}"
    return f"{rng.randrange(1, 224)}.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def generate_lines(count: int, seed: int = 20240501) -> list[str]:
    """``count`` version-2 flow-log records (14 space-separated fields)."""
    rng = random.Random(seed)
    account = "123456789010"
    enis = [f"eni-{rng.getrandbits(68):017x}" for _ in range(8)]
    start = 1_700_000_000
    lines: list[str] = []
    append = lines.append
    for i in range(count):
        eni = enis[i % len(enis)]
        window_start = start + (i // 2000) * 60
        window_end = window_start + rng.randrange(30, 61)
        roll = rng.random()
        if roll < 0.010:  # no traffic in the window
            append(f"2 {account} {eni} - - - - - - - {window_start} {window_end} - NODATA")
            continue
        if roll < 0.015:  # records skipped during the window
            append(f"2 {account} {eni} - - - - - - - {window_start} {window_end} - SKIPDATA")
            continue
        protocol_roll = rng.random()
        outbound = rng.random() < 0.5
        src, dst = _ip(rng, outbound), _ip(rng, not outbound)
        if protocol_roll < 0.05:  # ICMP: type/code, not ports
            protocol, src_port, dst_port = 1, 0, 0
            reject = rng.random() < 0.40  # the lab's NACL denies ICMP egress
        elif protocol_roll < 0.25:
            protocol, src_port, dst_port = 17, rng.randrange(1024, 65536), rng.choice((53, 123, 443, 514))
            reject = rng.random() < 0.01
        else:
            protocol, src_port = 6, rng.randrange(1024, 65536)
            dst_port = rng.choice((22, 80, 443, 443, 443, 3306, 3389, 5432, 8080))
            reject = rng.random() < 0.02
        packets = rng.randrange(1, 200)
        size = packets * rng.randrange(40, 1500)
        action = "REJECT" if reject else "ACCEPT"
        append(
            f"2 {account} {eni} {src} {dst} {src_port} {dst_port} {protocol} {packets} {size} "
            f"{window_start} {window_end} {action} OK"
        )
    return lines


def _time_split(lines: list[str]) -> float:
    started = time.perf_counter()
    for line in lines:
        line.split()
    return time.perf_counter() - started


def _time_matches(lines: list[str], matches: Callable[[str], bool]) -> float:
    started = time.perf_counter()
    for line in lines:
        matches(line)
    return time.perf_counter() - started


# (label, pattern, line): the line does not match, so a backtracking engine tries every split.
FLOW_LINE = "2 123456789012 eni-0a1b2c3d4e5f60718 10.0.1.5 203.0.11.9 49152 443 6 10 840 1790000000 ACCEPT OK"
AB_EVENT = "".join(random.Random(1).choices("ab", k=1 << 20))    # random a/b, the largest event PutLogEvents takes
HOSTILE = [
    ("catastrophic .* x8", "%.*.*.*.*.*.*.*.*REJECTX%", FLOW_LINE),
    ("catastrophic .* x6", "%.*.*.*.*.*.*REJECTX%", FLOW_LINE),
    ("catastrophic \\S* x8 field", "[..., action=%\\S*\\S*\\S*\\S*\\S*\\S*\\S*\\S*X%, status]",
     FLOW_LINE.replace("ACCEPT", "A" * 6)),
    ("catastrophic .* x8 in JSON", "{ $.m = %.*.*.*.*.*.*.*.*REJECTX% }", '{"m": "%s"}' % FLOW_LINE[:88]),
    # RE2's DFA gives up on this one (2^190 states): the search costs the program's size per character
    ("largest accepted, 1 MiB a/b", "%a[ab]{190}c%", AB_EVENT),
    ("1000 instructions, 1 MiB a/b", "%a[ab]{990}c%", AB_EVENT),
    ("ordinary IP regex", "%10\\.0\\.1\\.[0-9]+%", FLOW_LINE),
    ("ordinary alternation", "%REJECT|DROP%", FLOW_LINE),
]

_ONE = """
import json, statistics, sys, time
from flowwatch.patterns import compile_pattern
text, line, repeat = json.loads(sys.stdin.read())
started = time.perf_counter()
matches = compile_pattern(text).matches
result = matches(line)      # the first search builds RE2's DFA states: a new event's worst case
first = time.perf_counter() - started
runs = []
for _ in range(repeat):
    count, started = 0, time.perf_counter()
    while True:   # at least 20 ms per run, so that fast cases are not timer noise
        matches(line)
        count += 1
        if time.perf_counter() - started > 0.02:
            break
    runs.append((time.perf_counter() - started) / count)
print(json.dumps({"ms": statistics.median(runs) * 1000, "first": first * 1000, "match": result}))
"""


def _hostile_case(src: str, text: str, line: str, repeat: int, timeout: float) -> str:
    import json
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": src}
    try:
        done = subprocess.run([sys.executable, "-c", _ONE], input=json.dumps([text, line, repeat]), env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if done.returncode != 0:
        return "error: " + (done.stderr.strip().splitlines() or ["?"])[-1][:40]
    answer = json.loads(done.stdout)
    return (f"{answer['first']:.1f} / {answer['ms']:.4f} ms "
            f"({'match' if answer['match'] else 'no match'})")


def hostile(old: str, new: str, repeat: int, timeout: float) -> int:
    print(f"ms per line: compile + first search / median of the next ({repeat} runs); a 96-character flow-log "
          f"line unless named; stopped after {timeout:.0f} s")
    print(f"old: {old}\nnew: {new}\n")
    print(f"{'case':<30} {'old':>34} {'new':>34}")
    for label, text, line in HOSTILE:
        print(f"{label:<30} {_hostile_case(old, text, line, repeat, timeout):>34} "
              f"{_hostile_case(new, text, line, repeat, timeout):>34}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hostile", nargs=2, metavar=("OLD_SRC", "NEW_SRC"),
                        help="time the catastrophic regexes with two source trees instead")
    parser.add_argument("--timeout", type=float, default=30.0, help="--hostile: stop a case after this many s")
    parser.add_argument("--lines", type=int, default=1_000_000, help="number of flow-log lines (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each loop; medians are reported")
    parser.add_argument("--seed", type=int, default=20240501, help="random seed for the generated lines")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.repeat < 1:
        parser.error("--lines and --repeat must be at least 1")
    if args.hostile:
        return hostile(args.hostile[0], args.hostile[1], args.repeat, args.timeout)

    lines = generate_lines(args.lines, args.seed)
    pattern = compile_pattern(LAB_PATTERN)
    matches = pattern.matches
    matched = sum(1 for line in lines if matches(line))
    rejects = sum(1 for line in lines if " REJECT " in line)
    nodata = sum(1 for line in lines if line.endswith(("NODATA", "SKIPDATA")))

    split_times: list[float] = []
    match_times: list[float] = []
    for _ in range(args.repeat):  # interleaved, so drift affects both loops alike
        split_times.append(_time_split(lines))
        match_times.append(_time_matches(lines, matches))
    split_median = statistics.median(split_times)
    match_median = statistics.median(match_times)
    ratio = split_median / match_median  # speed of (b) relative to (a)

    print(f"pattern: {LAB_PATTERN}")
    print(
        f"lines: {args.lines:,}  matched: {matched:,}  REJECT: {rejects:,}  NODATA/SKIPDATA: {nodata:,}  "
        f"repeat: {args.repeat}  python: {sys.version.split()[0]}"
    )
    print()
    print(f"{'loop':<34} {'median s':>9} {'lines/s':>13}")
    print(f"{'(a) line.split()':<34} {split_median:>9.3f} {args.lines / split_median:>13,.0f}")
    print(f"{'(b) pattern.matches(line)':<34} {match_median:>9.3f} {args.lines / match_median:>13,.0f}")
    print()
    verdict = "OK" if ratio >= 1 / 3 else "TOO SLOW"
    print(f"speed ratio b/a (lines/s): {ratio:.2f}  (target >= 0.33: {verdict})")
    return 0 if ratio >= 1 / 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
