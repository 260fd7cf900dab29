"""What `flowwatch query` prints: record times, row counts, column names, SQL errors, non-queries, and
the README's examples; as a user sees it (stdout, stderr, exit code), offline (--source) or on moto."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_query import logs, no_aws  # noqa: F401 - the same fixtures: files on disk, no AWS at all
from tests.query.test_athena import COLUMNS, DATA, queue_results
from tests.query.test_local import expected_rejects
from tests.support.aws_faults import moto_fixes
from tests.support.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def run(capsys, monkeypatch):
    def run_(*args: str, stdin: str | None = None):
        return run_cli(capsys, monkeypatch, *args, stdin=stdin)
    return run_


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- record times ------------------------------------------------------------------------------------

def test_tables_show_record_times_as_iso_utc(logs, no_aws, run):
    root, records = logs
    first = expected_rejects(records)[0]
    result = run("query", "rejects", "--source", str(root), "--limit", "1")
    assert result.code == 0, result.err
    assert iso(first["start"]) in result.out and iso(first["end"]) in result.out
    assert str(first["start"]) not in result.out


def test_a_time_under_another_name_is_a_time_too(logs, no_aws, run):
    root, records = logs
    result = run("query", "sql", "SELECT min(start) AS first_seen, max(\"end\") FROM flow_logs WHERE log_status = 'OK'",
                 "--source", str(root))
    assert result.code == 0, result.err
    ok = [r for r in records if r["log_status"] == "OK"]
    assert iso(min(r["start"] for r in ok)) in result.out and iso(max(r["end"] for r in ok)) in result.out


def test_json_and_csv_keep_epoch_seconds_unless_times_iso(logs, no_aws, run):
    root, records = logs
    first = expected_rejects(records)[0]
    raw = run("query", "rejects", "--source", str(root), "--limit", "1", "--output", "json")
    assert json.loads(raw.out)[0]["start"] == first["start"]
    readable = run("query", "rejects", "--source", str(root), "--limit", "1", "--output", "json", "--times", "iso")
    assert json.loads(readable.out)[0]["start"] == iso(first["start"])
    as_csv = run("query", "rejects", "--source", str(root), "--limit", "1", "--output", "csv", "--times", "iso")
    assert next(csv.DictReader(io.StringIO(as_csv.out)))["end"] == iso(first["end"])
    epoch_table = run("query", "rejects", "--source", str(root), "--limit", "1", "--times", "epoch")
    assert str(first["start"]) in epoch_table.out and not ISO.search(epoch_table.out)


def test_times_is_documented_in_help_and_readme(run):
    result = run("query", "rejects", "--help")
    assert "--times [iso|epoch]" in result.out
    assert "--times" in (REPO / "README.md").read_text()


# ---- row counts ----------------------------------------------------------------------------------------

EMPTY = "SELECT srcaddr, start FROM flow_logs WHERE srcaddr = '192.0.2.250'"


def test_an_empty_result_says_0_rows_on_stderr(logs, no_aws, run):
    root, _ = logs
    table = run("query", "sql", EMPTY, "--source", str(root))
    assert table.code == 0
    assert "0 rows" in table.err and "rows" not in table.out and "srcaddr" in table.out
    assert run("query", "sql", EMPTY, "--source", str(root), "--output", "json").out == "[]\n"
    assert run("query", "sql", EMPTY, "--source", str(root), "--output", "csv").out == "srcaddr,start\n"


def test_tables_count_their_rows_and_say_when_the_limit_cut_them(logs, no_aws, run):
    root, records = logs
    some = run("query", "sql", "SELECT DISTINCT dt FROM flow_logs", "--source", str(root))
    assert some.err.splitlines()[-1] == "2 rows" and "2 rows" not in some.out
    cut = run("query", "top-talkers", "--source", str(root), "--limit", "3")
    assert "3 rows (the limit: there may be more; raise --limit)" in cut.err
    piped = run("query", "top-talkers", "--source", str(root), "--limit", "3", "--output", "json")
    assert "rows" not in piped.err and len(json.loads(piped.out)) == 3


# ---- column names --------------------------------------------------------------------------------------

def test_unnamed_columns_are_named_as_athena_names_them(logs, no_aws, run):
    root, _ = logs
    sql = "SELECT count(*), f.srcaddr, sum(bytes) / 2, \"end\" FROM flow_logs f GROUP BY 2, 4 LIMIT 1"
    as_csv = run("query", "sql", sql, "--source", str(root), "--output", "csv")
    assert as_csv.code == 0, as_csv.err
    assert as_csv.out.splitlines()[0] == "_col0,srcaddr,_col2,end"
    as_json = run("query", "sql", "SELECT count(*) FROM flow_logs", "--source", str(root), "--output", "json")
    assert list(json.loads(as_json.out)[0]) == ["_col0"]
    table = run("query", "sql", "SELECT count(*) FROM flow_logs", "--source", str(root))
    assert "_col0" in table.out and "count_star" not in table.out


# ---- statements and SQL errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("sql", "where", "caret"), [
    ("SELEC * FRM x", "line 1:1", "^"),
    ("SELECT srcaddr FRM flow_logs", "line 1:20", " " * 19 + "^"),
    ("SELECT srcaddr\nFROM flow_logs WHERE", "line 2:", None),
])
def test_a_syntax_error_is_an_sql_error_with_its_position(logs, no_aws, run, sql, where, caret):
    root, _ = logs
    result = run("query", "sql", sql, "--source", str(root))
    assert result.code == 1 and result.out == ""
    first = result.err.splitlines()[0]
    assert first.startswith("error: query: SQL syntax error at " + where), result.err
    assert "athena" not in result.err.lower() and "Usage:" not in result.err
    if caret is not None:
        assert result.err.splitlines()[2] == "  " + caret


def test_an_engine_error_is_exit_1_with_the_engines_message_and_place(logs, no_aws, run):
    root, _ = logs
    result = run("query", "sql", "SELECT nope FROM flow_logs", "--source", str(root))
    assert result.code == 1 and result.out == ""
    lines = result.err.splitlines()
    assert lines[0].startswith("error: query: SQL error at line 1:8 (DuckDB): Binder Error: Referenced column "
                               "\"nope\" not found")
    assert lines[1].startswith("  SELECT nope FROM") and lines[2] == "         ^"
    assert "Usage:" not in result.err


@pytest.mark.parametrize("sql", ["DROP TABLE vpc_flow_logs", "SHOW TABLES", "INSERT INTO flow_logs SELECT * FROM flow_logs",
                                 "MSCK REPAIR TABLE flow_logs", "CREATE TABLE x AS SELECT 1"])
def test_a_statement_that_is_no_query_is_refused_without_suggesting_athena(logs, no_aws, run, sql):
    root, _ = logs
    result = run("query", "sql", sql, "--source", str(root))
    assert result.code == 2, result.err
    assert "is not a query" in result.err and "read-only queries" in result.err
    assert "--engine athena" not in result.err


# ---- on (moto's) AWS: the Athena engine ----------------------------------------------------------------

@pytest.fixture
def stack(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    with mock_aws(), moto_fixes():
        athena = boto3.client("athena", region_name="us-east-1")
        athena.create_work_group(Name="flowwatch-test-athena")
        yield athena


@pytest.mark.parametrize(("sql", "code", "message"), [
    ("DROP TABLE flow_logs", 2, "DROP TABLE is not a query"),
    ("SHOW PARTITIONS flow_logs", 2, "SHOW is not a query"),
    ("SELEC * FRM x", 1, "SQL syntax error at line 1:1"),
])
def test_athena_gets_no_statement_the_local_engine_would_refuse(stack, run, sql, code, message):
    result = run("query", "sql", sql)
    assert result.code == code and message in result.err, result.err
    assert stack.list_query_executions()["QueryExecutionIds"] == []


def test_a_failed_athena_query_shows_the_place_athena_names(stack, capsys, monkeypatch):
    import boto3

    session = boto3.Session(region_name="us-east-1")

    def failed(parsed: dict[str, Any], **_: Any) -> None:
        parsed["QueryExecution"]["Status"] = {
            "State": "FAILED", "StateChangeReason": "COLUMN_NOT_FOUND: line 2:3: Column 'nope' cannot be resolved"}

    session.events.register("after-call.athena.GetQueryExecution", failed)
    result = run_cli(capsys, monkeypatch, "query", "sql", "SELECT nope FROM flow_logs",
                     session_factory=lambda profile, region: session)
    assert result.code == 1 and result.out == ""
    lines = result.err.splitlines()
    assert re.match(r"error: query: Athena query \S+ FAILED: COLUMN_NOT_FOUND: line 2:3: Column 'nope' cannot be "
                    r"resolved$", lines[0]), result.err
    assert lines[1:3] == ["    nope", "    ^"]          # line 2 of the SQL Athena ran (--show-sql), the caret at 3
    assert "$5/TB" not in result.err


def test_athena_reports_its_rows_and_cost(stack, run):
    queue_results(COLUMNS, DATA)
    result = run("query", "top-talkers", "--output", "json")
    assert result.code == 0 and "Athena: 7 rows; data scanned" in result.err


def test_moto_athena_under_local_says_it_runs_no_sql_and_costs_nothing(session):
    from dataclasses import replace

    from flowwatch.query import QueryRequest, run_athena
    from tests.support.context import make_ctx

    ctx = make_ctx(session)
    ctx.aws.athena.create_work_group(Name=ctx.names.of("workgroup"))
    ctx = replace(ctx, local=True)
    run_athena(ctx, "SELECT srcaddr FROM flow_logs", "table", ctx.out, request=QueryRequest(preset=None, sql="x"))
    err = ctx.out.err.file.getvalue()
    assert "moto" in err and "runs no SQL" in err and "--engine local" in err
    assert "Athena (local AWS): 0 rows" in err and "$" not in err and "billed" not in err


# ---- the README's examples, with config.example.yaml ---------------------------------------------------

def readme_query_examples() -> list[str]:
    """Every `flowwatch query ...` command of the README: code lines and inline code, comments dropped."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    inline = re.findall(r"`(flowwatch query [^`]*)`", text)
    found = [c for c in lines + inline if c.startswith("flowwatch query ")
             and not any(mark in c for mark in ("PRESET", "<", "...", "\\|"))]
    return list(dict.fromkeys(found))


def test_the_readme_has_query_examples():
    examples = readme_query_examples()
    assert any(" sql " in e for e in examples) and any("--source" in e for e in examples) and len(examples) >= 8


@pytest.mark.parametrize("example", readme_query_examples())
def test_every_readme_query_example_runs_with_config_example(example, logs, no_aws, run):
    root, _ = logs
    args = shlex.split(example)[1:]
    if "--source" in args:
        args[args.index("--source") + 1] = str(root)
    elif args[1] != "list":
        args += ["--source", str(root)]   # the same command over files on disk: offline
    result = run("--config", str(REPO / "config.example.yaml"), *args)
    assert result.code == 0, f"{example}: {result.err}"
    if args[1] == "sql":   # over the table config.example.yaml names vpc_flow_logs: rows, not an error
        rows = json.loads(result.out) if "json" in args else None
        assert rows if rows is not None else re.search(r"^[1-9]\d* rows?$", result.err, re.M), result.err


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_type_error_in_the_engine_is_an_sql_error_too(logs, no_aws, run, fmt):
    root, _ = logs
    result = run("query", "sql", "SELECT CAST(srcaddr AS integer) FROM flow_logs", "--source", str(root), "--output", fmt)
    assert result.code == 1
    assert re.match(r"error: query: SQL error at line 1:\d+ \(DuckDB\): Conversion Error: Could not convert string",
                    result.err), result.err
    assert "the local engine failed" not in result.err
