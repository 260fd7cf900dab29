"""`flowwatch logs insights`: presets made for the record format, bad input refused before any AWS call,
the StartQuery / GetQueryResults / StopQuery conversation (moto in-process and a stub client), the output."""

from __future__ import annotations

import json

import pytest

from flowwatch.errors import AwsError, TimeoutError_, UsageError
from flowwatch.insights import presets, runner
from flowwatch.insights.language import compile_query
from flowwatch.polling import Poll
from flowwatch.records import RecordFormat

from tests.support.cli import run_cli, use_session

V2 = RecordFormat.parse("v2")
V5 = RecordFormat.parse("v5")


# ---- presets --------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.name)
@pytest.mark.parametrize("fmt", [V2, V5, RecordFormat.parse(["srcaddr", "dstaddr", "srcport", "dstport", "protocol",
                                                             "packets", "bytes", "action", "interface-id"])],
                         ids=["v2", "v5", "custom"])
def test_every_preset_compiles_for_every_format_that_has_its_fields(preset, fmt):
    if not all(f in fmt for f in preset.needs):
        with pytest.raises(UsageError, match="not in the configured record format"):
            presets.build(preset, fmt)
        return
    text = presets.build(preset, fmt)
    compile_query(text)
    assert text.startswith("parse @message") != presets.is_default(fmt)


def test_the_default_format_uses_the_discovered_names_and_others_a_parse_into_them():
    assert presets.build(presets.BY_NAME["rejected-sources"], V2) == (
        'filter action = "REJECT" | stats count(*) as rejects by srcAddr | sort rejects desc | limit 20')
    text = presets.build(presets.BY_NAME["rejected-sources"], V5, limit=5)
    assert text.startswith('parse @message "' + " ".join(["*"] * len(V5.fields)) + '" as version, accountId, '
                           "interfaceId, srcAddr, dstAddr, srcPort, dstPort, protocol, packets, bytes, startTime, "
                           "endTime, action, logStatus, vpcId, subnetId, instanceId, tcpFlags, type, pktSrcaddr")
    assert text.endswith("| sort rejects desc | limit 5")


def test_a_preset_for_a_format_without_its_fields_is_refused():
    with pytest.raises(UsageError, match="preset ssh-rdp needs the flow-log fields srcaddr, dstport"):
        presets.build(presets.BY_NAME["ssh-rdp"], RecordFormat.parse(["action", "bytes"]))


# ---- the runner against a stub client ------------------------------------------------------------

class StubLogs:
    def __init__(self, statuses, results=None, interrupt_at=None):
        self.statuses = list(statuses)
        self.results = results or []
        self.interrupt_at = interrupt_at
        self.calls: list[tuple[str, dict]] = []

    def start_query(self, **kw):
        self.calls.append(("StartQuery", kw))
        return {"queryId": "q-1"}

    def get_query_results(self, **kw):
        self.calls.append(("GetQueryResults", kw))
        if self.interrupt_at is not None and len(self.calls) - 1 == self.interrupt_at:
            raise KeyboardInterrupt
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"status": status, "results": self.results if status == "Complete" else [],
                "statistics": {"recordsMatched": 2.0, "recordsScanned": 9.0, "bytesScanned": 900.0}}

    def stop_query(self, **kw):
        self.calls.append(("StopQuery", kw))
        return {"success": True}


class StubCtx:
    def __init__(self, logs):
        from types import SimpleNamespace

        from flowwatch.console import Output

        self.aws = SimpleNamespace(logs=logs)
        self.log_group = "/flowwatch/test/flow-logs"
        self.out = Output(0, False)
        self.poll = Poll(None, sleep=lambda _: None)


def prepared(what="rejected-sources", **kw):
    request = runner.InsightsRequest(what=what, **kw)
    return runner.prepare(request, V2, local=False), request


def fake_poll():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds
    return Poll(timeout=30, interval=0.5, backoff=2, max_interval=5, sleep=sleep, clock=lambda: now[0]), now


def test_start_poll_until_complete_then_rows_in_columns():
    rows = [[{"field": "srcAddr", "value": "10.0.0.1"}, {"field": "rejects", "value": "2"}],
            [{"field": "rejects", "value": "1"}, {"field": "@ptr", "value": "x"}]]
    logs = StubLogs(["Scheduled", "Running", "Complete"], rows)
    prep, request = prepared(since="2h")
    poll, now = fake_poll()
    result = runner.run(StubCtx(logs), prep, request, poll=poll)
    assert [c for c, _ in logs.calls] == ["StartQuery", "GetQueryResults", "GetQueryResults", "GetQueryResults"]
    args = logs.calls[0][1]
    assert args["logGroupName"] == "/flowwatch/test/flow-logs" and args["queryString"] == prep.query
    assert args["endTime"] - args["startTime"] == 7200 and "limit" not in args
    assert now[0] == 1.5                         # 0.5 s then 1 s: the pause grows
    assert (result.columns, result.rows) == (["srcAddr", "rejects"], [["10.0.0.1", "2"], [None, "1"]])


def test_ctrl_c_stops_the_query_and_a_timeout_stops_it_too():
    logs = StubLogs(["Running"], interrupt_at=2)
    prep, request = prepared()
    with pytest.raises(KeyboardInterrupt):
        runner.run(StubCtx(logs), prep, request, poll=fake_poll()[0])
    assert logs.calls[-1] == ("StopQuery", {"queryId": "q-1"})
    logs = StubLogs(["Running"])
    with pytest.raises(TimeoutError_, match="still Running after 30 s; stopped it"):
        runner.run(StubCtx(logs), prep, request, poll=fake_poll()[0])
    assert logs.calls[-1][0] == "StopQuery"


@pytest.mark.parametrize("status", ["Failed", "Cancelled", "Timeout"])
def test_a_query_that_does_not_complete_is_an_aws_error(status):
    prep, request = prepared()
    with pytest.raises(AwsError, match=f"query q-1 ended {status}"):
        runner.run(StubCtx(StubLogs([status])), prep, request, poll=fake_poll()[0])


def test_a_query_of_your_own_sends_the_limit_to_start_query():
    logs = StubLogs(["Complete"])
    prep, request = prepared('filter action = "REJECT"', limit=7)
    runner.run(StubCtx(logs), prep, request, poll=fake_poll()[0])
    assert logs.calls[0][1]["limit"] == 7 and logs.calls[0][1]["queryString"] == 'filter action = "REJECT"'


# ---- the command --------------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch, session):
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    use_session(monkeypatch, session)
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["  "], "error: the Logs Insights query is empty"),
    (["rejected-source"], "error: unknown Logs Insights preset 'rejected-source'; did you mean 'rejected-sources'?"),
    (["top-talkers", "--since", "5x"], "error: --since: '5x' is not a duration"),
    (["top-talkers", "--from", "yesterday"], "error: --from: 'yesterday' is not a time"),
    (["top-talkers", "--since", "1h", "--to", "2026-01-01T00:00"], "error: --since excludes --from/--to"),
    (["filter action = | stats count(*)", "--local"],
     "error: query: mismatched input '|' expecting an expression (at character 17)"),
    (["fields a | nope", "--local"], "error: query: mismatched input 'nope' expecting {K_FIELDS"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_aws_call(project, capsys, monkeypatch, calls, args, message):
    result = run_cli(capsys, monkeypatch, "logs", "insights", *args)
    assert result.code == 2, result.err
    assert result.err.splitlines()[0].startswith(message), result.err
    assert calls == []


def test_a_query_too_long_is_refused_before_any_call(project, capsys, monkeypatch, calls):
    result = run_cli(capsys, monkeypatch, "logs", "insights", "fields " + "a" * 10_000)
    assert result.code == 2 and "at most 10,000" in result.err and calls == []


def test_list_shows_the_presets(project, capsys, monkeypatch, calls):
    result = run_cli(capsys, monkeypatch, "--output", "json", "logs", "insights", "list")
    listed = json.loads(result.out)
    assert result.code == 0 and calls == []
    assert {"rejected-sources", "top-talkers", "rejected-ports", "by-interface"} <= {p["preset"] for p in listed}


def test_show_query_prints_the_preset_for_the_configured_format(project, capsys, monkeypatch, calls):
    (project / "flowwatch.yaml").write_text("stack: test\nflow_logs:\n  format: v3\n")
    result = run_cli(capsys, monkeypatch, "logs", "insights", "rejected-ports", "--show-query", "--limit", "3")
    assert result.code == 0 and calls == []
    assert result.out.startswith('parse @message "') and result.out.rstrip().endswith("limit 3")


def test_the_query_runs_on_the_stack_log_group_on_moto(project, capsys, monkeypatch, session, calls):
    session.client("logs").create_log_group(logGroupName="/flowwatch/test/flow-logs")
    calls.clear()
    result = run_cli(capsys, monkeypatch, "logs", "insights", "top-talkers", "--since", "30m")
    assert result.code == 0, result.err
    ops = [op for _, op in calls]
    assert ops[0] == "StartQuery" and "GetQueryResults" in ops and "StopQuery" not in ops
    assert "Logs Insights: 0 rows" in result.err     # moto: no events, no rows (it never evaluates a query)


def test_a_missing_log_group_is_an_aws_error_with_a_hint(project, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "logs", "insights", "top-talkers", "--log-group", "/nope")
    assert result.code == 1
    assert "StartQuery failed: ResourceNotFoundException" in result.err
