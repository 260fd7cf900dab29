"""Rebuild the sample tree from the source lines in sources/ (see SOURCES.md): gzip with mtime 0,
so the bytes are the same on every run.

    python tests/data/flowlogs/build.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

HERE = Path(__file__).parent
SRC = HERE / "sources"
ACCOUNT = "123456789010"
BASE = Path("AWSLogs") / ACCOUNT / "vpcflowlogs" / "us-east-1"

V2 = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
V5 = (V2 + " vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type "
      "sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path")
ECS = (" ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id "
       "ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id")
TGW = ("version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id "
       "tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id "
       "tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
       "log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded "
       "packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service")


def lines(name: str) -> list[str]:
    return (SRC / name).read_text().splitlines()


def key(day: str, stamp: str, flow_log: str, digest: str) -> Path:
    y, m, d = day.split("-")
    return BASE / y / m / d / f"{ACCOUNT}_vpcflowlogs_us-east-1_{flow_log}_{stamp}_{digest}.log.gz"


def member(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def write(path: Path, data: bytes) -> None:
    target = HERE / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def main() -> None:
    v2 = lines("beats-accept-reject-traffic.txt")           # header + 4 records
    nodata = lines("beats-no-data-skip-data.txt")           # 2 rows, no header
    ipv6 = lines("beats-ipv6.txt")                          # 1 record, no header
    write(key("2014-12-14", "20141214T0405Z", "fl-1234abcd", "0a1b2c3d"),
          member("\n".join(v2 + nodata) + "\n"))
    # Two objects concatenated: two gzip members, each with its header line.
    write(key("2016-10-31", "20161031T1135Z", "fl-1234abcd", "1b2c3d4e"),
          member("\n".join([V2, *ipv6]) + "\n") + member("\n".join(v2) + "\n"))
    # A record with a double space between two fields (RecordParser's split() accepts it).
    spaced = v2[1].replace(" 22 6 ", " 22  6 ")
    write(key("2014-12-14", "20141214T0410Z", "fl-1234abcd", "2c3d4e5f"),
          member("\n".join([v2[0], spaced, v2[2]]) + "\n"))
    # LF lines, then a last line ending in CRLF: mixed line endings.
    write(key("2016-10-31", "20161031T1140Z", "fl-1234abcd", "3d4e5f60"),
          member(V2 + "\n" + ipv6[0] + "\n" + ipv6[0].replace(" 34892 ", " 34893 ") + "\r\n"))
    # The first file's gzip cut short: a truncated object.
    whole = member("\n".join(v2 + nodata) + "\n")
    write(key("2014-12-14", "20141214T0415Z", "fl-1234abcd", "4e5f6071"), whole[: len(whole) * 2 // 3])
    write(key("2021-12-20", "20211220T1135Z", "fl-5v5v5v5v", "5f607182"),
          member(V5 + "\n" + "\n".join(lines("integrations-v5-all-fields.txt")) + "\n"))
    write(key("2025-08-20", "20250820T0830Z", "fl-ecs7ecs7", "60718293"),
          member(V5 + ECS + "\n" + "\n".join(lines("integrations-ecs-samples.txt")) + "\n"))
    write(key("2025-08-20", "20250820T0835Z", "fl-v8v8v8v8", "718293a4"),
          member(V5 + ECS + " reject-reason\n" + "\n".join(lines("integrations-v8-samples.txt")) + "\n"))
    write(key("2019-08-26", "20190826T1950Z", "fl-tcpflags", "8293a4b5"),
          member("\n".join(lines("beats-tcp-flag-sequence.txt")) + "\n"))
    write(key("2025-08-19", "20250819T0835Z", "fl-tgw00001", "93a4b5c6"),
          member(TGW + "\n" + "\n".join(lines("integrations-tgw-samples.txt")) + "\n"))
    write(key("2021-03-04", "20210304T1400Z", "fl-natgw001", "a4b5c6d7"),
          member("\n".join(lines("beats-custom-nat-gateway.txt")) + "\n"))


if __name__ == "__main__":
    main()
