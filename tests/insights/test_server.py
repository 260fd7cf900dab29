"""Logs Insights on a real local server (``python -m flowwatch.local.server``), called as users call it:
boto3, the AWS CLI (``python -m awscli``), and `flowwatch logs insights --local`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.local.test_dataplane import ACCOUNT, V2, name, start_server, stop_server
from tests.support.cli import run_cli

pytestmark = pytest.mark.slow   # a server process per module


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = tmp_path_factory.mktemp("state")     # $XDG_STATE_HOME: `--local` finds this server there
    (state / "flowwatch").mkdir(mode=0o700)
    running = start_server(state / "flowwatch")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture
def logs(server):
    import boto3

    return boto3.client("logs", region_name="us-east-1", endpoint_url=server.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def inject(logs, group: str, *, rejects: int, accepts: int, now: int) -> None:
    """``rejects`` REJECT and ``accepts`` ACCEPT version-2 records, through PutLogEvents as flow logs deliver them."""
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="eni-0abc-all")
    lines = (V2.synth(account=ACCOUNT, eni="eni-0abc", srcaddr="10.0.0.9", dstaddr="8.8.8.8", protocol=1,
                      action="REJECT", start=now - 120, count=rejects)
             + V2.synth(account=ACCOUNT, eni="eni-0abc", srcaddr="10.0.0.5", dstaddr="1.1.1.1", protocol=6,
                        action="ACCEPT", start=now - 120, count=accepts, dstport=443))
    logs.put_log_events(logGroupName=group, logStreamName="eni-0abc-all",
                        logEvents=[{"timestamp": now * 1000 - len(lines) + i, "message": m} for i, m in enumerate(lines)])


def cell(row, field):
    return next(c["value"] for c in row if c["field"] == field)


def test_boto3_count_of_injected_rejects(logs):
    group, now = f"/fw/{name()}", int(time.time())
    inject(logs, group, rejects=37, accepts=5, now=now)
    query_id = logs.start_query(logGroupName=group, startTime=now - 600, endTime=now,
                                queryString='filter action="REJECT" | stats count(*) as n')["queryId"]
    answer = logs.get_query_results(queryId=query_id)
    assert answer["status"] == "Complete"
    assert answer["results"] == [[{"field": "n", "value": "37"}]]
    assert answer["statistics"]["recordsMatched"] == 37.0 and answer["statistics"]["recordsScanned"] == 42.0
    assert logs.stop_query(queryId=query_id)["success"] is False
    assert query_id in [q["queryId"] for q in logs.describe_queries(logGroupName=group)["queries"]]


def test_boto3_rows_of_a_plain_query_and_the_malformed_error(logs):
    group, now = f"/fw/{name()}", int(time.time())
    inject(logs, group, rejects=2, accepts=1, now=now)
    query_id = logs.start_query(logGroupName=group, startTime=now - 600, endTime=now,
                                queryString="fields @timestamp, srcAddr, dstPort | sort @timestamp desc | limit 2")
    rows = logs.get_query_results(queryId=query_id["queryId"])["results"]
    assert [[c["field"] for c in row] for row in rows] == [["@timestamp", "srcAddr", "dstPort", "@ptr"]] * 2
    assert cell(rows[0], "srcAddr") == "10.0.0.5" and len(cell(rows[0], "@timestamp")) == 23   # the ACCEPT came last
    with pytest.raises(logs.exceptions.MalformedQueryException) as caught:
        logs.start_query(logGroupName=group, startTime=now - 600, endTime=now, queryString="stats count(*) by")
    assert caught.value.response["Error"]["Message"] == "mismatched input '<EOF>' expecting an expression"
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.start_query(logGroupName="/fw/none", startTime=now - 600, endTime=now, queryString="stats count(*)")


def aws_cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", server.url, "--output", "json", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_aws_cli_start_query_then_get_query_results(server, logs):
    group, now = f"/fw/{name()}", int(time.time())
    inject(logs, group, rejects=12, accepts=3, now=now)
    started = aws_cli(server, "logs", "start-query", "--log-group-name", group, "--start-time", str(now - 600),
                      "--end-time", str(now), "--query-string", "stats count(*) as flows by action | sort flows desc")
    assert started.returncode == 0, started.stderr
    query_id = json.loads(started.stdout)["queryId"]
    got = aws_cli(server, "logs", "get-query-results", "--query-id", query_id)
    answer = json.loads(got.stdout)
    assert answer["status"] == "Complete"
    assert [[(c["field"], c["value"]) for c in row] for row in answer["results"]] == [
        [("action", "REJECT"), ("flows", "12")], [("action", "ACCEPT"), ("flows", "3")]]
    listed = json.loads(aws_cli(server, "logs", "describe-queries", "--log-group-name", group).stdout)
    assert [q["queryId"] for q in listed["queries"]] == [query_id]
    bad = aws_cli(server, "logs", "start-query", "--log-group-name", group, "--start-time", str(now - 600),
                  "--end-time", str(now), "--query-string", "pattern @message")
    assert bad.returncode == 255                 # the AWS CLI's exit code for a service error
    assert "MalformedQueryException" in bad.stderr and "the pattern command is not supported" in bad.stderr


def test_flowwatch_logs_insights_local(server, logs, tmp_path, monkeypatch, capsys):
    now = int(time.time())
    inject(logs, "/flowwatch/test/flow-logs", rejects=9, accepts=4, now=now)
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(server.directory.parent))
    base = ("--local", "--output", "json", "logs", "insights")
    result = run_cli(capsys, monkeypatch, *base, "rejected-sources", "--since", "30m")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [{"srcAddr": "10.0.0.9", "rejects": "9"}]
    assert "Logs Insights: 1 row; 9 of 13 records matched" in result.err
    result = run_cli(capsys, monkeypatch, *base, "stats sum(packets) as p, count(*) as n by action | sort n desc",
                     "--since", "30m")
    assert [r["action"] for r in json.loads(result.out)] == ["REJECT", "ACCEPT"]
    result = run_cli(capsys, monkeypatch, "--local", "--output", "csv", "logs", "insights", "by-interface",
                     "--since", "30m")
    lines = result.out.splitlines()
    assert lines[0] == "interfaceId,action,flows,packets,bytes" and len(lines) == 3
    assert lines[1].startswith("eni-0abc,REJECT,9,") and lines[2].startswith("eni-0abc,ACCEPT,4,")
