"""Benchmark: the four built-in detections on the local data plane (not a timed test).

Starts a local server (``flowwatch.local.process``, a temporary state directory), runs
``flowwatch --local up`` with ``alerts.detections: [rejected-spike, top-rejected-sources,
ssh-rdp-probe, egress-spike]`` and reads back the rules the stack really has (its metric filters and
insight rules), then measures, median of ``--repeat`` runs:

  (a) feed, in-process: events/s through every rule of the four detections at once, on the path the
      server runs after each PutLogEvents: the contributors rules (``InsightRules.tap_put_log_events``)
      and the anomaly detections' metric filters (``metric_filters.metric_data`` with their patterns);
  (b) end to end: events/s through the server: ``POST /_flowwatch/traffic`` -> PutLogEvents (moto) ->
      the event copy, the metric filters (PutMetricData) and the Contributor Insights evaluator;
  (c) latency from injection to ALARM, seen by polling DescribeAlarms (no forced evaluation: the
      alarm thread wakes on new data): a contributors alarm (top-rejected-sources: one source
      rejected 25 times) and an anomaly alarm (rejected-spike: 14 periods of baseline put in the
      past, the clock advanced one period, then a spike), each on a fresh server.

    PYTHONPATH=src python benchmarks/bench_detections.py [--events N] [--repeat R] [--seed S]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from flowwatch.local import process
from flowwatch.local.client import LocalApi

REGION = "us-east-1"
ACCOUNT = "123456789012"
V2 = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
      "bytes", "start", "end", "action", "log-status")
PERIOD = 300
DETECTIONS = "[rejected-spike, top-rejected-sources, ssh-rdp-probe, egress-spike]"


class Local:
    """A server with one stack of the four detections up."""

    def __init__(self, root: Path, stack: str) -> None:
        self.root, self.stack = root, stack
        process.start(0, root / "flowwatch")
        self.url = process.running(root / "flowwatch").url
        self.api = LocalApi(self.url)
        work = root / stack
        work.mkdir()
        (work / "flowwatch.yaml").write_text(f"stack: {stack}\nalerts:\n  detections: {DETECTIONS}\n")
        env = {**os.environ, "XDG_STATE_HOME": str(root)}
        subprocess.run([sys.executable, "-c", "from flowwatch.cli import main; main()", "--local", "up"], cwd=work,
                       env=env, check=True, capture_output=True)
        self.cw, self.logs, ec2 = (boto3.client(s, region_name=REGION, endpoint_url=self.url,
                                                aws_access_key_id="x", aws_secret_access_key="x")
                                   for s in ("cloudwatch", "logs", "ec2"))
        vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": [stack]}])["Vpcs"][0]
        self.vpc_id = vpc["VpcId"]
        self.subnet_id = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [self.vpc_id]}])["Subnets"][0][
            "SubnetId"]
        self.hosts = [str(a) for a in list(ipaddress.IPv4Network(vpc["CidrBlock"]).hosts())[4:40]]
        self.eni = "eni-0bench" + "0" * 8

    def stop(self) -> None:
        process.stop(self.root / "flowwatch")

    def send(self, lines: list[str]) -> None:
        self.api.traffic(region=REGION, fields=V2, lines=lines, eni=self.eni, vpc_id=self.vpc_id,
                         subnet_id=self.subnet_id)

    def now(self) -> float:
        health = self.api.health()
        assert health is not None
        return float(health["now"])

    def state(self, rule: str) -> str:
        return self.cw.describe_alarms(AlarmNames=[f"flowwatch-{self.stack}-{rule}"])["MetricAlarms"][0]["StateValue"]

    def wait(self, rule: str, state: str, timeout: float = 60) -> float:
        start = time.perf_counter()
        while self.state(rule) != state:
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"{rule} did not reach {state} in {timeout} s")
            time.sleep(0.005)
        return time.perf_counter() - start


def line(src: str, dst: str, port: int, proto: int, size: int, action: str, t: int, eni: str) -> str:
    return " ".join(map(str, (2, ACCOUNT, eni, src, dst, 40000, port, proto, 1, size, t, t + 30, action, "OK")))


def traffic(rng: random.Random, n: int, hosts: list[str], t: int, eni: str) -> list[str]:
    out = []
    for _ in range(n):
        inbound = rng.random() < 0.6
        outside = f"203.0.113.{rng.randrange(1, 255)}"
        inside = rng.choice(hosts)
        port = rng.choice((22, 3389, 443, 80, 8080, 53)) if inbound else 443
        action = "REJECT" if inbound and rng.random() < 0.3 else "ACCEPT"
        src, dst = (outside, inside) if inbound else (inside, outside)
        out.append(line(src, dst, port, rng.choice((6, 6, 6, 17, 1)), rng.randrange(40, 9000), action,
                        t + rng.randrange(0, 60), eni))
    return out


def feed_in_process(local: Local, lines: list[str], repeat: int) -> float:
    """(a): events/s through the stack's insight rules and anomaly metric filters, in-process."""
    from flowwatch.local.insight_rules import InsightRules
    from flowwatch.local.metric_filters import metric_data
    from flowwatch.patterns import compile_pattern

    group = next(r for r in local.cw.describe_insight_rules()["InsightRules"])["Definition"]
    log_group = json.loads(group)["LogGroupNames"][0]
    filters = [f for f in local.logs.describe_metric_filters(logGroupName=log_group)["metricFilters"]
               if f["filterName"].endswith(("rejected-spike", "egress-spike"))]
    assert len(filters) == 2, filters
    compiled = [(compile_pattern(f["filterPattern"]), f["metricTransformations"][0]) for f in filters]
    rules = [r for r in local.cw.describe_insight_rules()["InsightRules"] if local.stack in r["Name"]]
    assert len(rules) == 2, rules

    class Moto:   # moto's DescribeInsightRules, answered from what the server holds
        def client(self, service: str, region: str) -> Any:
            return self

        def account(self, region: str) -> str:
            return ACCOUNT

        def describe_insight_rules(self, **_: Any) -> dict[str, Any]:
            return {"InsightRules": rules}

    events = sorted(({"timestamp": int(x.split()[10]) * 1000, "message": x} for x in lines),
                    key=lambda e: e["timestamp"])
    times = []
    for _ in range(repeat):
        insights = InsightRules(Moto(), time.time)
        start = time.perf_counter()
        for i in range(0, len(events), 10_000):                     # PutLogEvents' batch size
            batch = events[i:i + 10_000]
            insights.tap_put_log_events(REGION, {"logGroupName": log_group, "logEvents": batch}, {})
            for pattern, tr in compiled:
                metric_data(pattern, tr, batch)
        times.append(time.perf_counter() - start)
    return len(events) / statistics.median(times)


def end_to_end(local: Local, lines: list[str], repeat: int) -> float:
    """(b): events/s through the server, in deliveries of 1,000 records."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(0, len(lines), 1000):
            local.send(lines[i:i + 1000])
        times.append(time.perf_counter() - start)
    return len(lines) / statistics.median(times)


def contributors_latency(root: Path, repeat: int) -> list[float]:
    local = Local(root / "c", "bench-c")
    try:
        out = []
        local.wait("top-rejected-sources", "OK")
        for k in range(repeat):
            t = int(local.now())
            lines = [line("198.51.100.7", local.hosts[0], 8000 + i, 6, 60, "REJECT", t, local.eni) for i in range(25)]
            start = time.perf_counter()
            local.send(lines)
            local.wait("top-rejected-sources", "ALARM")
            out.append(time.perf_counter() - start)
            local.api.advance(3 * PERIOD)                            # no datapoint in range: back to OK
            local.wait("top-rejected-sources", "OK")
        return out
    finally:
        local.stop()


def anomaly_latency(root: Path, repeat: int) -> list[float]:
    local = Local(root / "a", "bench-a")
    try:
        current = int(local.now()) // PERIOD * PERIOD
        baseline = []
        for k in range(14, 0, -1):
            t = current - k * PERIOD + 30
            baseline += [line(f"198.51.100.{40 + i}", local.hosts[0], 443, 6, 60, "REJECT", t, local.eni)
                         for i in range(3 + k % 3)]
        local.send(baseline)
        local.wait("rejected-spike", "OK")
        out = []
        for k in range(repeat):
            local.api.advance(PERIOD)
            t = int(local.now())
            spike = [line(f"198.51.100.{100 + i // 2}", local.hosts[0], 443, 6, 60, "REJECT", t, local.eni)
                     for i in range(40)]
            start = time.perf_counter()
            local.send(spike)
            local.wait("rejected-spike", "ALARM")
            out.append(time.perf_counter() - start)
            local.api.advance(PERIOD)                                 # a normal period: back to OK
            t = int(local.now())
            local.send([line(f"198.51.100.{40 + i}", local.hosts[0], 443, 6, 60, "REJECT", t, local.eni)
                        for i in range(4)])
            local.wait("rejected-spike", "OK")
        return out
    finally:
        local.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = Local(root / "f", "bench-f")
        try:
            t = int(local.now()) // 60 * 60
            lines = traffic(rng, args.events, local.hosts, t, local.eni)
            rate = feed_in_process(local, lines, args.repeat)
            print(f"(a) feed, in-process, 2 insight rules + 2 anomaly metric filters: {rate:,.0f} events/s "
                  f"({args.events:,} events, median of {args.repeat})")
            small = lines[:max(1000, args.events // 10)]
            rate = end_to_end(local, small, max(1, args.repeat // 2))
            print(f"(b) end to end through the server (traffic -> PutLogEvents -> every tap): {rate:,.0f} events/s "
                  f"({len(small):,} events)")
        finally:
            local.stop()
        c = contributors_latency(root, args.repeat)
        print(f"(c) injection -> ALARM, contributors (top-rejected-sources): median {statistics.median(c) * 1000:.0f} ms "
              f"(min {min(c) * 1000:.0f}, max {max(c) * 1000:.0f}; {len(c)} runs)")
        a = anomaly_latency(root, args.repeat)
        print(f"(c) injection -> ALARM, anomaly (rejected-spike, trained baseline): median "
              f"{statistics.median(a) * 1000:.0f} ms (min {min(a) * 1000:.0f}, max {max(a) * 1000:.0f}; {len(a)} runs)")


if __name__ == "__main__":
    main()
