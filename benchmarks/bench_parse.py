"""Benchmark: flowwatch's flow-log record parser against a bare ``line.split()`` loop.

Generates N deterministic version-2 lines (``random.Random(seed)``) with a realistic mix:
mostly accepted TCP/UDP between private and public addresses, some rejected traffic and
pings, NODATA/SKIPDATA rows, a header line at the start of every simulated S3 file and a
few malformed lines. Each contender runs ``--runs`` times on the same lines in this process;
the median is reported as lines/s, with the parser's time relative to a bare ``line.split()``
loop (result dropped), to a split loop that keeps the parts (same retention as a parser;
it pays the cyclic GC's scans of a growing list, which ``RecordParser.parse`` pauses) and to
that loop with the GC paused (the floor for anything that returns a million rows).

    /work/venv/bin/python benchmarks/bench_parse.py [--lines 1000000] [--runs 5] [--seed 42]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from flowwatch.records import RecordFormat

_ACCOUNT = "123456789012"
_FILE_LINES = 5_000  # records per simulated S3 file (each file starts with a header line)


def generate(n: int, seed: int) -> list[str]:
    """``n`` v2 lines, deterministic for a seed."""
    rng = random.Random(seed)
    fmt = RecordFormat.parse("v2")
    header = fmt.header()
    enis = [f"eni-{rng.getrandbits(68):017x}" for _ in range(40)]
    private = [f"10.0.{rng.randint(0, 3)}.{rng.randint(4, 250)}" for _ in range(200)]
    public = [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(2000)
    ]
    t0 = 1_764_000_000
    lines: list[str] = []
    while len(lines) < n:
        if len(lines) % _FILE_LINES == 0:
            lines.append(header)
            continue
        eni = rng.choice(enis)
        start = t0 + len(lines) // 50
        end = start + rng.randint(1, 60)
        roll = rng.random()
        if roll < 0.008:
            lines.append(f"2 {_ACCOUNT} {eni} - - - - - - - {start} {end} - NODATA")
            continue
        if roll < 0.009:
            lines.append(f"2 {_ACCOUNT} {eni} - - - - - - - {start} {end} - SKIPDATA")
            continue
        if roll < 0.0095:  # truncated line or a non-numeric port: counted as malformed
            lines.append(f"2 {_ACCOUNT} {eni} 10.0.0.1 10.0.0.2 443" if rng.random() < 0.5 else
                         f"2 {_ACCOUNT} {eni} 10.0.0.1 10.0.0.2 https 443 6 1 40 {start} {end} ACCEPT OK")
            continue
        src, dst = rng.choice(private), rng.choice(public)
        if rng.random() < 0.5:
            src, dst = dst, src
        proto = rng.choices((6, 17, 1, 50), weights=(75, 17, 7, 1))[0]
        action = "REJECT" if rng.random() < 0.12 else "ACCEPT"
        if proto in (6, 17):
            sport, dport = rng.randint(32768, 60999), rng.choice((443, 443, 80, 22, 53, 123, 3389, 5432))
        else:
            sport = dport = 0
        packets = rng.randint(1, 3) if action == "REJECT" else rng.randint(1, 5000)
        nbytes = packets * rng.randint(40, 1500)
        lines.append(
            f"2 {_ACCOUNT} {eni} {src} {dst} {sport} {dport} {proto} {packets} {nbytes} {start} {end} {action} OK"
        )
    return lines


def bare_split(lines: Sequence[str]) -> None:
    """The floor: ``line.split()`` on every line, result dropped."""
    for line in lines:
        line.split()


def split_keep(lines: Sequence[str]) -> list[list[str]]:
    """``line.split()`` on every line, parts kept in a list (what a naive parser retains)."""
    out: list[list[str]] = []
    append = out.append
    for line in lines:
        append(line.split())
    return out


def split_keep_gc_paused(lines: Sequence[str]) -> list[list[str]]:
    """:func:`split_keep` with the cyclic GC paused, as the parser does: the retention floor."""
    gc.disable()
    try:
        return split_keep(lines)
    finally:
        gc.enable()


def measure(fn: Callable[[Sequence[str]], Any], lines: Sequence[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        fn(lines)
        times.append(time.perf_counter() - t)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    lines = generate(args.lines, args.seed)
    parser = RecordFormat.parse("v2").parser()
    result = parser.parse(lines)
    print(
        f"{len(lines):,} lines: {len(result.records):,} records, {len(result.nodata):,} NODATA/SKIPDATA, "
        f"header={result.header}, {result.malformed:,} malformed"
    )
    del result

    n = len(lines)
    contenders = [
        ("bare line.split() loop", bare_split),
        ("split loop keeping parts", split_keep),
        ("same, GC paused", split_keep_gc_paused),
        ("RecordParser.parse", parser.parse),
    ]
    medians = {name: statistics.median(measure(fn, lines, args.runs)) for name, fn in contenders}
    print(f"python {sys.version.split()[0]}, median of {args.runs} runs, default GC settings")
    for name, seconds in medians.items():
        print(f"  {name:<26}: {n / seconds:>12,.0f} lines/s  ({seconds * 1e3:8.1f} ms)")
    parse = medians["RecordParser.parse"]
    print(f"  parse time / bare split time        : {parse / medians['bare line.split() loop']:.2f}x")
    print(f"  parse time / split-and-keep time    : {parse / medians['split loop keeping parts']:.2f}x")
    print(f"  parse time / same, GC paused        : {parse / medians['same, GC paused']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
