"""The lab on the local AWS, read back by the official AWS CLI: after `flowwatch --local up` and
`simulate-reject`, the stack's own metric-filter pattern (as DescribeMetricFilters gives it) returns
exactly the rejected ICMP records through `aws logs filter-log-events`, among accepted and other
rejected traffic; `aws logs start-query` counts the REJECT records; the S3 flow log shows its
DestinationOptions; and `down` leaves the alarm history readable until the alarm is gone."""

from __future__ import annotations

import json

import pytest

from flowwatch.local import process
from flowwatch.local.client import LocalApi
from flowwatch.records import RecordFormat
from tests.clients.conftest import Cli
from tests.local.test_dataplane import ACCOUNT, REGION
from tests.support.cli import run_cli

pytestmark = pytest.mark.slow

V2 = RecordFormat.parse("v2")
ENI = "eni-0fedcba9876543210"


def _is_rejected_ping(message: str) -> bool:
    """The reference, computed here from AWS's v2 field order (not with flowwatch's parser)."""
    fields = message.split(" ")
    return len(fields) == 14 and fields[7] == "1" and fields[12] == "REJECT"


def test_the_stack_pattern_through_the_aws_cli_returns_exactly_the_rejected_pings(tmp_path_factory, tmp_path, capsys,
                                                                                   monkeypatch):
    directory = tmp_path_factory.mktemp("lab-cli")
    info, _ = process.start(0, directory / "flowwatch")
    try:
        monkeypatch.setenv("XDG_STATE_HOME", str(directory))
        monkeypatch.chdir(tmp_path)
        (tmp_path / "flowwatch.yaml").write_text("stack: labcli\n")
        assert run_cli(capsys, monkeypatch, "--local", "up").code == 0
        reject = run_cli(capsys, monkeypatch, "--local", "simulate-reject", "--no-wait")
        assert reject.code == 0, reject.err
        cli = Cli(info.url)
        group = cli("logs", "describe-log-groups", "--log-group-name-prefix", "/flowwatch/labcli")["logGroups"][0]
        assert group["metricFilterCount"] == 1
        [metric_filter] = cli("logs", "describe-metric-filters", "--log-group-name", group["logGroupName"])[
            "metricFilters"]

        # other traffic on the same ENI: TCP rejects and ICMP accepts, which the lab's alarm must ignore
        vpc = cli("ec2", "describe-vpcs", "--filters", "Name=tag:flowwatch:stack,Values=labcli")["Vpcs"][0]["VpcId"]
        now = int(LocalApi(info.url).health()["now"])
        other = [*V2.synth(account=ACCOUNT, eni=ENI, srcaddr="10.0.0.20", dstaddr="1.1.1.1", protocol=6,
                           action="REJECT", start=now - 120, count=4),
                 *V2.synth(account=ACCOUNT, eni=ENI, srcaddr="10.0.0.21", dstaddr="1.1.1.1", protocol=1,
                           action="ACCEPT", start=now - 120, count=3)]
        LocalApi(info.url).traffic(region=REGION, fields=V2.fields, lines=other, eni=ENI, vpc_id=vpc)

        every = cli("logs", "filter-log-events", "--log-group-name", group["logGroupName"])["events"]
        expected = sorted(e["message"] for e in every if _is_rejected_ping(e["message"]))
        assert expected and len(expected) < len(every)
        got = cli("logs", "filter-log-events", "--log-group-name", group["logGroupName"],
                  "--filter-pattern", metric_filter["filterPattern"])["events"]
        assert sorted(e["message"] for e in got) == expected

        started = cli("logs", "start-query", "--log-group-name", group["logGroupName"],
                      "--start-time", str(now - 3600), "--end-time", str(now + 3600),
                      "--query-string", 'filter action="REJECT" | stats count(*) as n')
        results = cli("logs", "get-query-results", "--query-id", started["queryId"])
        assert results["status"] == "Complete"
        rejects = sum(1 for e in every if e["message"].split(" ")[12:13] == ["REJECT"])
        assert results["results"] == [[{"field": "n", "value": str(rejects)}]]

        s3_logs = cli("ec2", "describe-flow-logs", "--filter", "Name=log-destination-type,Values=s3")["FlowLogs"]
        assert [fl["DestinationOptions"] for fl in s3_logs] == [
            {"FileFormat": "plain-text", "HiveCompatiblePartitions": False, "PerHourPartition": False}]
        assert run_cli(capsys, monkeypatch, "--local", "down", "--yes").code == 0
        assert cli("logs", "describe-log-groups", "--log-group-name-prefix", "/flowwatch/labcli")["logGroups"] == []
    finally:
        process.stop(directory / "flowwatch")
