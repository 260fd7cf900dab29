"""`flowwatch query` through click (CliRunner on flowwatch.cli.cli): exit codes, stdout/stderr, round-trips."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowwatch.cli import cli
from flowwatch.query.presets import PRESETS

from tests.support.cli import run_cli
from tests.query.test_athena import COLUMNS, DATA, queue_results
from tests.query.test_local import expected_rejects, expected_top_talkers, write_tree
from tests.support.aws_faults import moto_fixes


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def logs(tmp_path: Path):
    root = tmp_path / "logs"
    return root, write_tree(root)


@pytest.fixture
def no_aws(monkeypatch):
    """Any AWS session or client made during the test fails it."""
    import boto3

    def refuse(*_, **__):
        raise AssertionError("an AWS session was created")

    monkeypatch.setattr(boto3, "Session", refuse)
    monkeypatch.setattr(boto3, "client", refuse)


def test_list_shows_every_preset_with_its_description():
    result = invoke("query", "list")
    assert result.exit_code == 0
    for preset in PRESETS:
        assert preset.name in result.stdout
    listed = json.loads(invoke("query", "list", "--output", "json").stdout)
    assert [p["preset"] for p in listed] == [p.name for p in PRESETS]
    assert {p["preset"]: p["description"] for p in listed}["rejects"] == PRESETS[0].description


def test_help_lists_the_presets_and_the_options():
    result = invoke("query", "--help")
    assert result.exit_code == 0 and "top-talkers" in result.stdout and "sql" in result.stdout
    preset_help = invoke("query", "traffic-from", "--help").stdout
    for option in ("--since", "--from", "--to", "--limit", "--output", "--engine", "--source", "--ip"):
        assert option in preset_help


def test_json_and_csv_round_trip(logs, no_aws):
    root, records = logs
    as_json = invoke("query", "rejects", "--source", str(root), "--output", "json")
    assert as_json.exit_code == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert rows == expected_rejects(records)
    as_csv = invoke("query", "rejects", "--source", str(root), "--output", "csv")
    assert as_csv.exit_code == 0
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert parsed == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
    assert "malformed lines" in as_csv.stderr and "malformed" not in as_csv.stdout


def test_the_global_output_is_the_default(logs, no_aws):
    root, records = logs
    result = invoke("--output", "json", "query", "top-talkers", "--source", str(root), "--limit", "4")
    assert json.loads(result.stdout) == expected_top_talkers(records, 4)
    table = invoke("query", "top-talkers", "--source", str(root), "--limit", "4")
    assert expected_top_talkers(records, 4)[0]["srcaddr"] in table.stdout and "┃" in table.stdout


def test_the_address_is_an_argument_or_an_option(logs, no_aws):
    root, records = logs
    by_arg = invoke("query", "traffic-from", "10.0.0.5", "--source", str(root), "--output", "json")
    by_opt = invoke("query", "traffic-from", "--ip", "10.0.0.5", "--source", str(root), "--output", "json")
    assert by_arg.exit_code == 0 and json.loads(by_arg.stdout) == json.loads(by_opt.stdout)
    assert len(json.loads(by_arg.stdout)) == sum(1 for r in records if r["srcaddr"] == "10.0.0.5"
                                                 and r["log_status"] == "OK")


@pytest.mark.parametrize(("args", "message"), [
    (["traffic-from"], "needs an address"),
    (["traffic-to", "10.0.0.1", "--ip", "10.0.0.2"], "give the address once"),
    (["traffic-to", "10.0.0.300"], "not an IPv4 or IPv6 address"),
    (["icmp", "--ip", "10.0.0.5'; DROP TABLE x; --"], "not an IPv4 or IPv6 address"),
    (["rejects", "--since", "5x"], "not a duration"),
    (["rejects", "--since", "1h", "--from", "2026-11-26"], "excludes"),
    (["rejects", "--to", "2026-11-26"], "needs --from"),
    (["rejects", "--from", "last tuesday"], "not a time"),
    (["rejects", "--limit", "0"], "0"),
    (["rejects", "--engine", "spark"], "spark"),
    (["sql", "DROP TABLE flow_logs"], "read-only queries"),
    (["sql", "SELECT 1; SELECT 2"], "exactly one"),
    (["sql", "  "], "empty"),
])
def test_bad_input_is_exit_2_before_any_aws_call(args, message, no_aws, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    result = invoke("query", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_source_cannot_run_on_athena(logs, no_aws):
    root, _ = logs
    result = invoke("query", "rejects", "--source", str(root), "--engine", "athena")
    assert result.exit_code == 2 and "--source" in result.stderr


def test_local_engine_refuses_statements_that_are_not_queries(logs, no_aws):
    root, _ = logs
    result = invoke("query", "sql", "SHOW TABLES", "--source", str(root))
    assert result.exit_code == 2 and "SHOW TABLES is not a query" in result.stderr
    assert "--engine athena" not in result.stderr


def test_show_sql_prints_the_transpiled_sql(logs, no_aws):
    root, _ = logs
    result = invoke("query", "rejects", "--source", str(root), "--since", "1h", "--show-sql")
    assert result.exit_code == 0
    assert result.stdout.startswith("SELECT STRFTIME(TO_TIMESTAMP(start), '%Y-%m-%d') AS \"date\"")
    assert "dt BETWEEN" in result.stdout and "start >=" in result.stdout


def test_sql_from_stdin(logs, no_aws):
    root, records = logs
    result = CliRunner().invoke(cli, ["query", "sql", "-", "--source", str(root), "--output", "json"],
                                input="SELECT count(*) AS n FROM flow_logs WHERE log_status = 'OK'")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": sum(r["log_status"] == "OK" for r in records)}]


def test_a_missing_config_file_is_exit_2(tmp_path, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "--config", str(tmp_path / "nope.yaml"), "query", "rejects")
    assert result.code == 2 and "config file not found" in result.err


def test_a_big_table_stops_at_the_row_cap():
    from flowwatch.console import Output
    from flowwatch.query import MAX_TABLE_ROWS, render

    err, out = io.StringIO(), io.StringIO()
    render(Output(stderr=err, stdout=out, color=False), ["n"], [(i,) for i in range(MAX_TABLE_ROWS + 5)], "table")
    assert f"showing the first {MAX_TABLE_ROWS} rows" in err.getvalue()
    assert str(MAX_TABLE_ROWS - 1) in out.getvalue() and str(MAX_TABLE_ROWS + 1) not in out.getvalue()


# ---- on (moto's) AWS ---------------------------------------------------------------------------------

@pytest.fixture
def stack(tmp_path, monkeypatch):
    from moto import mock_aws

    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    with mock_aws(), moto_fixes():
        yield


def test_athena_is_the_default_engine_on_aws(stack, capsys, monkeypatch):
    import boto3

    missing = run_cli(capsys, monkeypatch, "query", "rejects")              # no workgroup yet
    assert missing.code == 1 and "WorkGroup does not exist" in missing.err and "flowwatch up" in missing.err
    boto3.client("athena", region_name="us-east-1").create_work_group(Name="flowwatch-test-athena")
    queue_results(COLUMNS, DATA)
    result = invoke("query", "top-talkers", "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert [r["srcaddr"] for r in json.loads(result.stdout)] == [r[0] for r in DATA]
    assert "Athena: 7 rows" in result.stderr and "$5/TB" in result.stderr


@pytest.mark.slow
def test_icmp_defaults_to_the_traffic_instance(stack):
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1")
    tags = [{"Key": "flowwatch:stack", "Value": "test"}, {"Key": "flowwatch:step", "Value": "instance"}]
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"][0]
    result = invoke("query", "icmp", "--show-sql")
    assert result.exit_code == 0, result.stderr
    assert f"srcaddr = '{instance['PrivateIpAddress']}'" in result.stdout
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    assert "srcaddr =" not in invoke("query", "icmp", "--show-sql").stdout


def test_source_uses_the_config_file_when_there_is_one(logs, no_aws, tmp_path, monkeypatch, capsys):
    root, _ = logs
    monkeypatch.chdir(tmp_path)
    query = ["query", "sql", "SELECT DISTINCT dt FROM flow_logs ORDER BY dt", "--source", str(root), "--output", "csv"]
    assert invoke(*query).stdout.splitlines() == ["dt", "2026/03/09", "2026/03/10"]          # defaults
    (tmp_path / "flowwatch.yaml").write_text("stack: test\nflow_logs:\n  per_hour_partitions: true\n")
    assert invoke(*query).stdout.splitlines() == ["dt", "2026/03/09/05", "2026/03/09/17", "2026/03/10/05"]
    (tmp_path / "flowwatch.yaml").write_text("stack: test\nflow_logs:\n  format: v9\n")
    broken = run_cli(capsys, monkeypatch, *query)
    assert broken.code == 2 and "flow_logs.format" in broken.err
