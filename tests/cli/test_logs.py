"""`flowwatch logs tail`: records from the stack's log group, filtered locally too (moto returns every
event for a space-delimited pattern), parsed and shown with protocol names."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from flowwatch import engine

from tests.support.cli import run_cli
from tests.support.context import make_ctx
from tests.support.aws_faults import moto_fixes

pytestmark = pytest.mark.slow   # whole stacks on moto


@pytest.fixture
def stack_with_records(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    with mock_aws(), moto_fixes():
        session = boto3.Session(region_name="us-east-1")
        engine.up(make_ctx(session))
        from flowwatch.records import RecordFormat

        fmt = RecordFormat.parse("v2")
        now = int(time.time())
        lines = (fmt.synth(account="123456789012", eni="eni-0abc", srcaddr="10.0.0.5", dstaddr="8.8.8.8", protocol=1,
                           action="REJECT", start=now - 60, count=2)
                 + fmt.synth(account="123456789012", eni="eni-0abc", srcaddr="10.0.0.5", dstaddr="1.1.1.1",
                             protocol=6, action="ACCEPT", start=now - 60, count=3, dstport=443))
        logs = session.client("logs")
        logs.create_log_stream(logGroupName="/flowwatch/test/flow-logs", logStreamName="eni-0abc-all")
        logs.put_log_events(logGroupName="/flowwatch/test/flow-logs", logStreamName="eni-0abc-all",
                            logEvents=[{"timestamp": now * 1000, "message": m} for m in lines])
        (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
        monkeypatch.chdir(tmp_path)
        yield lines


def test_tail_shows_every_record(stack_with_records, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "logs", "tail")
    assert result.code == 0, result.err
    rows = result.out.strip().splitlines()
    assert len(rows) == 5
    assert sum("REJECT" in r for r in rows) == 2 and sum("ACCEPT" in r for r in rows) == 3
    assert any("ICMP" in r for r in rows) and any("TCP" in r and "1.1.1.1:443" in r for r in rows)


def test_tail_rejects_only(stack_with_records, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "logs", "tail", "--rejects")
    rows = result.out.strip().splitlines()
    assert len(rows) == 2 and all("REJECT" in r and "ICMP" in r for r in rows)


def test_tail_pattern_and_limit(stack_with_records, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "logs", "tail", "--pattern", "[..., dstport=443, protocol=6, packets, "
                     "bytes, start, end, action, log_status]", "--limit", "2")
    rows = result.out.strip().splitlines()
    assert len(rows) == 2 and all("1.1.1.1:443" in r for r in rows)


def test_tail_bad_since_is_exit_2(stack_with_records, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "logs", "tail", "--since", "ten minutes")
    assert result.code == 2 and "--since" in result.err


def test_follow_prints_new_records_once(stack_with_records, capsys):
    """--follow polls again after a pause and shows only records it has not shown yet."""
    import boto3

    from flowwatch.actions import logs as logs_action
    from flowwatch.polling import Poll

    logs = boto3.client("logs", region_name="us-east-1")
    extra = "2 123456789012 eni-0abc 10.0.0.5 9.9.9.9 0 0 1 1 84 1790000000 1790000060 REJECT OK"
    pauses = []

    def sleep(seconds):
        pauses.append(seconds)
        logs.put_log_events(logGroupName="/flowwatch/test/flow-logs", logStreamName="eni-0abc-all",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": extra}])

    ctx = make_ctx(boto3.Session(region_name="us-east-1"))
    pattern_text, pattern = logs_action.pattern_for(ctx.config.record_format, rejects=True, pattern_text=None)
    logs_action.tail(ctx, since="10m", window=timedelta(minutes=10), follow=True, pattern_text=pattern_text,
                     pattern=pattern, limit=None, max_polls=3,
                     poll=Poll(None, interval=logs_action.FOLLOW_INTERVAL, sleep=sleep))
    rows = ctx.out.out.file.getvalue().strip().splitlines()
    assert pauses == [logs_action.FOLLOW_INTERVAL] * 2
    assert len(rows) == 2 + 2          # the two rejects, then the record added at each of the two pauses
    assert sum("9.9.9.9" in r for r in rows) == 2
