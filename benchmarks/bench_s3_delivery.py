"""Benchmark: throughput of the local AWS's S3 flow-log delivery (records/s), plain text and Parquet.

One FlowLogService on moto in-process (no HTTP: the delivery itself, S3 PutObject included), a VPC
with one S3 flow log per file format, and N deterministic version-2 records (``random.Random(seed)``,
TCP/UDP/ICMP, accepted and rejected) whose end times fall in four 5-minute windows. Each run
delivers all N records in one ``deliver`` call; the median of ``--runs`` runs is reported. Only
``FlowLogService(clients, now)`` and ``deliver`` are used, so the same script measures older code:

    PYTHONPATH=src python benchmarks/bench_s3_delivery.py [--records 50000] [--runs 5] [--seed 42]
    PYTHONPATH=/tmp/old/src python benchmarks/bench_s3_delivery.py      # a worktree of main
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import time
from typing import Any

from flowwatch.records import RecordFormat

_ACCOUNT = "123456789012"
_REGION = "us-east-1"
_NOW = 1_795_000_000   # the service's clock: 2026-11-18T08:26:40Z


class _Clients:
    """flowwatch.local.loopback.Clients over one boto3 session of moto in-process (one client per service)."""

    def __init__(self, session: Any) -> None:
        self.client = functools.cache(lambda service, region: session.client(service, region_name=region))

    def account(self, region: str) -> str:
        return _ACCOUNT


def synth(n: int, seed: int) -> list[str]:
    fmt, rng = RecordFormat.parse("v2"), random.Random(seed)
    lines: list[str] = []
    while len(lines) < n:
        protocol = rng.choice((6, 6, 6, 17, 1))
        start = _NOW - 900 + rng.randrange(840)          # ends (start + 60) in four windows
        lines += fmt.synth(account=_ACCOUNT, eni=f"eni-{rng.randrange(16):017x}", srcaddr=f"10.0.0.{rng.randrange(64)}",
                           dstaddr=f"203.0.113.{rng.randrange(256)}", protocol=protocol,
                           action=rng.choice(("ACCEPT", "ACCEPT", "REJECT")), start=start, count=1, rng=rng,
                           srcport=None if protocol == 1 else 1024 + rng.randrange(60000),
                           dstport=None if protocol == 1 else rng.choice((22, 53, 80, 443, 3389)))
    return lines[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    import boto3
    from moto import mock_aws

    import flowwatch
    from flowwatch.local.flow_logs import FlowLogService

    lines = synth(args.records, args.seed)
    fields = list(RecordFormat.parse("v2").fields)
    print(f"flowwatch from {os.path.dirname(flowwatch.__file__)}; {args.records} records, {args.runs} runs")
    with mock_aws():
        session = boto3.Session(region_name=_REGION)
        ec2, s3 = session.client("ec2"), session.client("s3")
        service = FlowLogService(_Clients(session), lambda: float(_NOW))
        for file_format in ("plain-text", "parquet"):
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/24")["Vpc"]["VpcId"]
            bucket = f"bench-{file_format}"
            s3.create_bucket(Bucket=bucket)
            (fl_id,) = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                            LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}",
                                            DestinationOptions={"FileFormat": file_format})["FlowLogIds"]
            service.s3_options[fl_id] = {"FileFormat": file_format}   # moto drops DestinationOptions
            payload = {"region": _REGION, "fields": fields, "lines": lines, "vpc_id": vpc}
            service.deliver(payload)                                 # warm-up (imports, DuckDB)
            times, objects = [], 0
            for _ in range(args.runs):
                started = time.perf_counter()
                result = service.deliver(payload)
                times.append(time.perf_counter() - started)
                objects = sum(len(d["target"]) for d in result["deliveries"])
            median = statistics.median(times)
            print(f"{file_format:<11} median {median * 1000:8.1f} ms  {args.records / median:10,.0f} records/s  "
                  f"({objects} objects per delivery; runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms)")


if __name__ == "__main__":
    main()
