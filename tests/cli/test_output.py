"""What the commands print: tables that fit the terminal (80 and 160 columns, ids never folded, times
readable), every column with --wide or in a pipe, `status` exit codes, `--output json|csv` with stable keys."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from flowwatch.console import Output, cut, table_layout

from tests.support.cli import run_cli
from tests.support.aws_faults import moto_fixes

IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
EPOCH = re.compile(r"(?<!\d)1[5-9]\d{8}(?!\d)")
ISO = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
QUERY_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")    # `query` tables: ISO-8601 UTC


def terminal(monkeypatch, columns: int) -> None:
    """rich sees a terminal of ``columns`` columns (no colour codes to strip)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("NO_COLOR", "1")


def table_lines(text: str) -> list[str]:
    """The lines as a terminal shows them (bold and the like taken out: NO_COLOR keeps styles)."""
    return [line for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if line.strip()]


def assert_fits(text: str, width: int) -> None:
    lines = table_lines(text)
    assert lines, "no table"
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, f"lines over {width} columns: {too_long}"


def assert_ids_whole(text: str, ids: set[str]) -> None:
    """Every id or address the table shows is shown whole: no fragment of one ends or starts a cell."""
    for line in table_lines(text):
        for cell in re.split(r"[│┃]", line):
            cell = cell.strip()
            for token in cell.split():
                token = token.strip(",;()…")
                if re.fullmatch(r"[\d.]+", token) and token.count(".") >= 1 and not re.fullmatch(r"\d+\.\d+", token):
                    assert IPV4.fullmatch(token), f"a broken address {token!r} in {line!r}"
                if re.match(r"(vpc|subnet|igw|acl|eni|fl|sg|i|rtb)-", token):
                    assert token in ids or "…" in cell, f"a broken id {token!r} in {line!r}"


# ---------- the layout, pure ----------
REJECT_COLUMNS = ["date", "interface_id", "srcaddr", "dstaddr", "start", "end", "action", "protocol"]
REJECT_ROWS = [["2026-11-27", "eni-0a1b2c3d4e5f67890", "10.0.0.10", "203.0.113.200", 1795766400 + i, 1795766460 + i,
                "REJECT", 1] for i in range(3)]


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_layout_fits_and_never_cuts_an_id(width):
    layout = table_layout(REJECT_COLUMNS, REJECT_ROWS, width)
    assert layout.total <= width
    shown = [c.name for c in layout.columns]
    assert {"srcaddr", "dstaddr", "start"} <= set(shown)
    for row in layout.rows:
        cells = dict(zip(shown, row))
        assert cells["srcaddr"] == "10.0.0.10" and cells["dstaddr"] == "203.0.113.200"
        assert cells.get("interface_id") in (None, "eni-0a1b2c3d4e5f67890")
        assert ISO.fullmatch(cells["start"])
    assert set(layout.hidden) | set(shown) == set(REJECT_COLUMNS)


def test_layout_drops_the_least_important_columns_first():
    assert table_layout(REJECT_COLUMNS, REJECT_ROWS, 80).hidden == ("date", "interface_id", "end")
    assert table_layout(REJECT_COLUMNS, REJECT_ROWS, 60).hidden == ("date", "interface_id", "end", "protocol")
    assert table_layout(REJECT_COLUMNS, REJECT_ROWS, None).hidden == ()


def test_free_text_is_cut_at_a_word_never_inside_an_id():
    assert cut("vpc-0a1b2c3d4e5f67890 (10.0.0.0/24, adopted)", 26) == "vpc-0a1b2c3d4e5f67890…"
    assert cut("update threshold 5 -> 1 and more", 12) == "update thre…"
    assert cut("short", 12) == "short"


def test_an_id_that_starts_a_free_text_cell_keeps_its_width():
    rows = [["subnet", "found", "subnet-0123456789abcdef0 (10.0.0.0/26 in us-east-1a)", "x " * 40]]
    layout = table_layout(["step", "state", "found", "detail"], rows, 60)
    found = layout.rows[0][2]
    assert found is not None and found.startswith("subnet-0123456789abcdef0") and layout.total <= 60


def test_status_like_table_at_80_columns():
    out, err = io.StringIO(), io.StringIO()
    output = Output(stdout=out, stderr=err, color=True)         # a terminal (colour codes: table_lines drops them)
    output.out.width = 80
    rows = [["vpc", "found", "vpc-0a1b2c3d4e5f67890 (10.0.0.0/24)", None],
            ["flow_logs", "found", "fl-0123456789abcdef0 (cloud-watch-logs), fl-0123456789abcdef1 (s3)",
             "cloud-watch-logs delivery SUCCESS; s3 delivery SUCCESS"]]
    output.data(["step", "state", "found", "detail"], rows, title="flowwatch stack demo (us-east-1)")
    assert_fits(out.getvalue(), 80)
    assert_ids_whole(out.getvalue(), {"vpc-0a1b2c3d4e5f67890", "fl-0123456789abcdef0", "fl-0123456789abcdef1"})
    assert len(table_lines(out.getvalue())) == 1 + 3 + 2 + 1      # title, head, two rows on one line each, foot


def test_wide_shows_every_column_in_full():
    out = io.StringIO()
    output = Output(stdout=out, stderr=io.StringIO(), color=False, wide=True)
    output.data(REJECT_COLUMNS, REJECT_ROWS * 1)
    text = out.getvalue()
    assert all(col in text for col in REJECT_COLUMNS) and "eni-0a1b2c3d4e5f67890" in text
    assert "…" not in text and len(table_lines(text)) == 4 + 3


# ---------- query: a terminal of 80 and of 160 columns ----------
@pytest.fixture
def flow_files(tmp_path):
    from tests.query.test_local import write_tree

    root = tmp_path / "logs"
    return root, write_tree(root)


@pytest.mark.parametrize("columns", [80, 160])
def test_query_rejects_fits_the_terminal(flow_files, capsys, monkeypatch, columns):
    root, _ = flow_files
    terminal(monkeypatch, columns)
    result = run_cli(capsys, monkeypatch, "query", "rejects", "--source", str(root))
    assert result.code == 0, result.err
    assert_fits(result.out, columns)
    assert_ids_whole(result.out, set(re.findall(r"eni-[0-9a-f]+", result.out)))
    assert QUERY_TIME.search(result.out) and not EPOCH.search(result.out)   # start as a time, not epoch seconds
    body = [line for line in table_lines(result.out) if IPV4.search(line)]
    assert body and all(line.startswith("│") and line.endswith("│") for line in body)   # one line per row


def test_query_rejects_in_a_pipe_keeps_every_column(flow_files, capsys, monkeypatch):
    root, _ = flow_files
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli(capsys, monkeypatch, "query", "rejects", "--source", str(root))
    assert result.code == 0
    header = table_lines(result.out)[1]
    for column in ("interface_id", "srcaddr", "dstaddr", "start", "end", "action", "protocol"):
        assert column in header
    assert "…" not in result.out


# ---------- pattern test ----------
LINES = ("2 123456789012 eni-1 10.0.0.5 8.8.8.8 0 0 1 4 336 1790000000 1790000060 REJECT OK\n"
         "2 123456789012 eni-1 10.0.0.5 1.1.1.1 44321 443 6 10 840 1790000000 1790000060 ACCEPT OK\n")


def test_pattern_test_json(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "--output", "json", "pattern", "test",
                     "[version, account, eni, src, dst, srcport, dstport, protocol=1, ...]", stdin=LINES)
    assert result.code == 0
    doc = json.loads(result.out)
    assert (doc["engine"], doc["kind"], doc["lines"], doc["matched"]) == ("flowwatch", "delimited", 2, 1)
    assert doc["matches"][0]["line"] == LINES.splitlines()[0]
    assert doc["matches"][0]["fields"]["dst"] == "8.8.8.8"


# ---------- the stack on moto: status exit codes, JSON of every command ----------
@pytest.fixture
def stack(tmp_path, capsys, monkeypatch):
    from moto import mock_aws

    with mock_aws(), moto_fixes():
        (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
        monkeypatch.chdir(tmp_path)
        up = run_cli(capsys, monkeypatch, "--output", "json", "up")
        assert up.code == 0, up.err
        yield json.loads(up.out)


@pytest.mark.slow
def test_up_and_dry_run_json(stack, capsys, monkeypatch):
    assert stack["command"] == "up" and stack["dry_run"] is False and stack["stack"] == "test"
    assert stack["counts"]["changes"] == len(stack["changes"]) > 0 and stack["counts"]["errors"] == 0
    first = stack["changes"][0]
    assert set(first) == {"step", "action", "target", "reason"} and first["step"] == "vpc"
    assert [s["step"] for s in stack["steps"]][:2] == ["vpc", "subnet"]
    again = json.loads(run_cli(capsys, monkeypatch, "--output", "json", "up", "--dry-run").out)
    assert again["dry_run"] is True and again["changes"] == [] and again["counts"]["steps_changed"] == 0
    assert all(s["found"] for s in again["steps"])


@pytest.mark.slow
def test_status_json_keys_ids_and_exit_codes(stack, capsys, monkeypatch):
    import boto3

    result = run_cli(capsys, monkeypatch, "--output", "json", "status")
    assert result.code == 0, result.out
    doc = json.loads(result.out)
    assert doc["ok"] is True and doc["not_converged"] == []
    keys = {"step", "kind", "state", "found", "ids", "detail", "deliveries", "alarms", "subscriptions",
            "pending_subscriptions", "datapoints", "notifications"}
    assert all(set(row) == keys for row in doc["steps"])
    rows = {r["step"]: r for r in doc["steps"]}
    vpc_id = boto3.client("ec2", region_name="us-east-1").describe_vpcs(
        Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]}])["Vpcs"][0]["VpcId"]
    assert rows["vpc"]["ids"] == {"vpc": vpc_id}
    assert rows["log_group"]["ids"]["log_group"] == "/flowwatch/test/flow-logs"
    assert rows["sns"]["ids"]["topic"].startswith("arn:aws:sns:")
    assert {d["destination_type"] for d in rows["flow_logs"]["deliveries"]} == {"cloud-watch-logs", "s3"}
    assert set(rows["flow_logs"]["ids"]) == {"cloud-watch-logs", "s3"}
    assert rows["alarm"]["alarms"] and set(rows["alarm"]["alarms"][0]) == {"name", "state"}
    assert any(r["kind"] == "info" and r["datapoints"] is not None for r in doc["steps"])

    logs = boto3.client("logs", region_name="us-east-1")
    logs.put_retention_policy(logGroupName="/flowwatch/test/flow-logs", retentionInDays=7)
    drifted = run_cli(capsys, monkeypatch, "--output", "json", "status")
    assert drifted.code == 1
    doc = json.loads(drifted.out)
    assert doc["ok"] is False and doc["not_converged"] == ["log_group"]

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    alarm = rows["alarm"]["alarms"][0]["name"]
    cloudwatch.delete_alarms(AlarmNames=[alarm])
    missing = run_cli(capsys, monkeypatch, "status")                       # the table: exit code too
    assert missing.code == 1
    assert re.search(r"alarm\s+│\s+missing", "\n".join(table_lines(missing.out)))
    csv_rows = list(csv.DictReader(io.StringIO(run_cli(capsys, monkeypatch, "--output", "csv", "status").out)))
    assert set(csv_rows[0]) == {"step", "state", "found", "ids", "detail"}
    assert {r["step"]: r["state"] for r in csv_rows}["alarm"] == "missing"


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 160])
def test_status_table_fits_the_terminal(stack, capsys, monkeypatch, columns):
    terminal(monkeypatch, columns)
    result = run_cli(capsys, monkeypatch, "status")
    assert result.code == 0
    assert_fits(result.out, columns)
    ids = set(re.findall(r"(?:vpc|subnet|igw|acl|fl|rtb)-[0-9a-f]{8,}", json.dumps(
        json.loads(run_cli(capsys, monkeypatch, "--output", "json", "status").out))))
    assert ids
    assert_ids_whole(result.out, ids)


@pytest.mark.slow
def test_simulate_logs_tail_and_down_json(stack, capsys, monkeypatch):
    sim = run_cli(capsys, monkeypatch, "--output", "json", "simulate-reject", "--mode", "inject", "--no-wait",
                  "--count", "3")
    assert sim.code == 0, sim.err
    done = json.loads(sim.out)
    assert done["mode"] == "inject" and done["injected"]["records"] == 3 and done["waited"] is False
    assert done["injected"]["eni"].startswith("eni-") and done["state"] is None

    tail = run_cli(capsys, monkeypatch, "--output", "json", "logs", "tail", "--since", "1h")
    records = [json.loads(line) for line in tail.out.splitlines()]
    assert len(records) == 3 and all(r["action"] == "REJECT" and r["interface_id"] == done["injected"]["eni"]
                                     for r in records)
    assert isinstance(records[0]["start"], int) and records[0]["message"].split()[2] == done["injected"]["eni"]
    as_csv = list(csv.reader(io.StringIO(run_cli(capsys, monkeypatch, "--output", "csv", "logs", "tail",
                                                 "--since", "1h").out)))
    assert as_csv[0][:4] == ["version", "account_id", "interface_id", "srcaddr"] and len(as_csv) == 4

    for columns in (80, 160):
        terminal(monkeypatch, columns)
        lines = table_lines(run_cli(capsys, monkeypatch, "logs", "tail", "--since", "1h").out)
        assert len(lines) == 3 and all(len(line) <= columns for line in lines)
        assert all(IPV4.findall(line) and "REJECT" in line and ISO.search(line) for line in lines)
        if columns == 160:
            assert all(done["injected"]["eni"] in line for line in lines)
    monkeypatch.delenv("TTY_COMPATIBLE")

    down = run_cli(capsys, monkeypatch, "--output", "json", "down", "--yes")
    assert down.code == 0, down.err
    report = json.loads(down.out)
    assert report["command"] == "down" and report["counts"]["changes"] == len(report["changes"]) > 0
    assert {c["action"] for c in report["changes"]} == {"delete"}


def test_every_step_reports_no_ids_for_nothing_and_the_ids_it_saw():
    from flowwatch.steps import ALL_STEPS
    from flowwatch.steps.flow_logs import FlowLogSeen, FlowLogsSeen, FlowLogsStep
    from flowwatch.steps.vpc import VpcSeen, VpcStep

    assert all(dict(step.status(None).ids) == {} for step in ALL_STEPS)
    assert VpcStep().status(VpcSeen("vpc-0a1b2c3d", "10.0.0.0/24")).ids == {"vpc": "vpc-0a1b2c3d"}
    cwl = FlowLogSeen("fl-0123", "cloud-watch-logs", "arn:aws:logs:...", "${version}", "ALL", 60, {}, None,
                      "SUCCESS", None)
    assert FlowLogsStep().status(FlowLogsSeen(cwl=cwl)).ids == {"cloud-watch-logs": "fl-0123"}
