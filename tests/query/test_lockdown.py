"""Hostile input to `flowwatch query`: what the local engine may read, user SQL kept literal, bounded
SQL and lines, and a bucket of the stack's name that is not the stack's (squatted) never read."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowwatch.console import Output
from flowwatch.errors import UsageError
from flowwatch.query import local_engine as local
from flowwatch.query import presets
from flowwatch.records import MAX_LINE_BYTES, RecordFormat, LineTooLong, bounded_lines

from tests.query.test_local import BUCKET, ACCOUNT, query, write_tree
from tests.support.aws_faults import _answer, error_response
from tests.support.cli import run_cli, use_session

V2 = RecordFormat.parse("v2")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    write_tree(root)
    return root


def one_line_error(err: str) -> str:
    """The one line saying what is wrong (click's usage lines around it aside)."""
    lines = [line for line in err.splitlines() if line.lower().startswith("error")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ---- DuckDB locked down --------------------------------------------------------------------------------------

@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_reading_a_file_outside_the_cache_and_source_is_refused(capsys, monkeypatch, logs, tmp_path, output):
    secret = tmp_path / "secret.csv"
    secret.write_text("user,password\nroot,hunter2\n")
    result = run_cli(capsys, monkeypatch, "--output", output, "query", "sql",
                     f"SELECT * FROM read_csv('{secret}')", "--source", str(logs))
    assert result.code == 2
    assert "hunter2" not in result.out + result.err
    assert str(secret) in one_line_error(result.err)


def test_etc_passwd_is_refused(capsys, monkeypatch, logs):
    result = run_cli(capsys, monkeypatch, "query", "sql", "SELECT * FROM read_csv('/etc/passwd')",
                     "--source", str(logs))
    assert result.code == 2
    assert "root" not in result.out
    one_line_error(result.err)


def test_files_inside_the_source_stay_readable(capsys, monkeypatch, logs):
    first = sorted(logs.rglob("*.log.gz"))[0]
    result = run_cli(capsys, monkeypatch, "--output", "json", "query", "sql",
                     f"SELECT size AS n FROM read_blob('{first}')", "--source", str(logs))
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["n"] > 0


def test_the_connection_user_sql_runs_on_is_locked(logs):
    engine = local.LocalEngine(V2, table="flow_logs", database="db", out=Output(stderr=io.StringIO()),
                               cache=local.FileCache(local.cache_root()), readable=[logs])
    try:
        engine.load(local.discover(logs, presets_layout()))
        _, rows, _ = engine.fetch("SELECT current_setting('enable_external_access') AS e, "
                                  "current_setting('lock_configuration') AS l, "
                                  "current_setting('autoload_known_extensions') AS a")
        assert rows == [(False, True, False)]
        import duckdb

        with pytest.raises(duckdb.Error):
            engine.con.execute("SET enable_external_access = true")
    finally:
        engine.close()


def presets_layout():
    from flowwatch.query import _dt_layout

    return _dt_layout("us-east-1")


@pytest.mark.parametrize("statement", [
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA enable_profiling",
    "ATTACH '/tmp/flowwatch-attached.db' AS other",
    "COPY (SELECT 1) TO '/tmp/flowwatch-copied.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "WITH gone AS (DELETE FROM flow_logs RETURNING *) SELECT * FROM gone",
    "SELECT 1; SELECT 2",
])
def test_statements_other_than_one_read_only_query_are_refused(capsys, monkeypatch, logs, statement):
    result = run_cli(capsys, monkeypatch, "query", "sql", statement, "--source", str(logs))
    assert result.code == 2
    one_line_error(result.err)
    assert not Path("/tmp/flowwatch-copied.csv").exists()


# ---- user SQL is never formatted ------------------------------------------------------------------------------

@pytest.mark.parametrize("output", ["json", "csv", "table"])
@pytest.mark.parametrize("literal", ["{}", "{{x}}", "{0}", "%s %d", "{a!r:>{b}}"])
def test_braces_and_percents_in_user_sql_come_back_unchanged(logs, output, literal):
    text, _ = query(sql=f"SELECT '{literal}' AS a", source=logs, output=output)
    if output == "json":
        assert text == [{"a": literal}]
    elif output == "csv":
        assert text.splitlines() == ["a", literal]
    else:
        assert literal in text


def test_the_athena_statement_keeps_braces_unchanged():
    from flowwatch.query import QueryRequest, Target, prepare

    target = Target.defaults("lab", "us-east-1")
    sql = prepare(target, QueryRequest(sql="SELECT '{{x}}' AS a, '{}' AS b, '%s' AS c"), "athena").sql
    assert "'{{x}}'" in sql and "'{}'" in sql and "'%s'" in sql


# ---- SQL size and nesting ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "SELECT " + "(" * 5000 + "1" + ")" * 5000,
    "SELECT " + "ARRAY[" * 5000 + "1" + "]" * 5000,
    "SELECT * FROM " + "(SELECT * FROM " * 2000 + "flow_logs" + ") AS x" * 2000,
    "SELECT " + "NOT " * 3000 + "true",                    # no parentheses: sqlglot's own recursion
    "SELECT " + "- " * 3000 + "1",
    "SELECT " + "CASE WHEN true THEN " * 300 + "1" + " END" * 300,
])
def test_deeply_nested_sql_is_a_usage_error(capsys, monkeypatch, logs, statement):
    result = run_cli(capsys, monkeypatch, "query", "sql", statement, "--source", str(logs))
    assert result.code == 2
    assert "nest" in one_line_error(result.err)


def test_nesting_a_query_needs_still_runs(logs):
    depth = presets.MAX_SQL_DEPTH - 2
    text, _ = query(sql="SELECT " + "(" * depth + "1" + ")" * depth + " AS a", source=logs)
    assert text == [{"a": 1}]


def test_parentheses_in_strings_and_comments_do_not_count():
    presets.check_bounds("SELECT '" + "(" * 1000 + "' AS a -- " + "(" * 1000 + "\n")
    presets.check_bounds('SELECT 1 AS "' + "[" * 1000 + '" /* ' + "(" * 1000 + " */")


@pytest.mark.parametrize("via_stdin", [False, True])
def test_sql_larger_than_athena_allows_is_a_usage_error(capsys, monkeypatch, logs, via_stdin):
    statement = "SELECT 1 AS a -- " + "x" * presets.MAX_SQL_BYTES
    args = ("query", "sql", "-" if via_stdin else statement, "--source", str(logs))
    result = run_cli(capsys, monkeypatch, *args, stdin=statement if via_stdin else None)
    assert result.code == 2
    assert f"{presets.MAX_SQL_BYTES:,}" in one_line_error(result.err)


def test_sql_with_too_many_tokens_is_a_usage_error(capsys, monkeypatch, logs):
    statement = "SELECT 1 AS a WHERE " + " AND ".join(["1 = 1"] * presets.MAX_SQL_TOKENS)
    assert len(statement.encode()) < presets.MAX_SQL_BYTES
    result = run_cli(capsys, monkeypatch, "query", "sql", statement, "--source", str(logs))
    assert result.code == 2
    assert "tokens" in one_line_error(result.err)


def test_a_long_in_list_within_the_bounds_runs(logs):
    addresses = ", ".join(f"'10.0.{i // 250}.{i % 250}'" for i in range(1000))
    text, _ = query(sql=f"SELECT count(*) AS n FROM flow_logs WHERE srcaddr IN ({addresses}, '10.0.0.5')",
                    source=logs)
    assert text[0]["n"] > 0


# ---- line length ------------------------------------------------------------------------------------------------

def test_bounded_lines_stops_at_the_first_longer_line():
    lines = bounded_lines(io.StringIO("ok\n" + "x" * MAX_LINE_BYTES + "\n" + "y" * (MAX_LINE_BYTES + 1) + "\nz\n"))
    assert next(lines) == "ok\n"
    assert len(next(lines)) == MAX_LINE_BYTES + 1
    with pytest.raises(LineTooLong, match="line 3 is longer than 64 KiB"):
        next(lines)


def _long_line_gz(path: Path, size: int, *, header: bool) -> None:
    """A gzip file of ``size`` bytes of one line with no newline (multi-member: a few KB per 16 MiB)."""
    member = gzip.compress(b"a" * (16 << 20), compresslevel=9)
    with path.open("wb") as handle:
        if header:
            handle.write(gzip.compress((V2.header() + "\n").encode()))
        for _ in range(size // (16 << 20)):
            handle.write(member)
        handle.write(gzip.compress(b"\n"))


def test_a_file_whose_first_line_is_too_long_is_skipped_with_a_warning(logs):
    bad = logs / "huge.log.gz"
    _long_line_gz(bad, 32 << 20, header=False)
    rows, err = query("top-talkers", source=logs)
    assert rows                                   # the other files are read
    assert f"skipped {bad}: line 1 is longer than 64 KiB" in err


_MEASURE = textwrap.dedent("""
    import resource, subprocess, sys
    done = subprocess.run([sys.executable, "-m", "flowwatch", "--output", "json", "query", "top-talkers",
                           "--source", sys.argv[1]], capture_output=True, text=True)
    print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
    sys.stderr.write(done.stderr)
""")


@pytest.mark.slow
@pytest.mark.parametrize("size, header", [(2 << 30, False), (256 << 20, True)])
def test_a_gzip_file_holding_one_huge_line_is_read_in_bounded_memory(tmp_path, size, header):
    folder = tmp_path / "hostile"
    folder.mkdir()
    _long_line_gz(folder / "bomb.log.gz", size, header=header)
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(folder)], capture_output=True, text=True,
                          timeout=300)
    code, peak_mib = (int(v) for v in done.stdout.split())
    assert code == 0, done.stderr
    assert peak_mib < 600, f"peak RSS {peak_mib} MiB"
    if not header:
        assert "line 1 is longer than 64 KiB" in done.stderr


# ---- a bucket of the stack's name that is not the stack's ----------------------------------------------------------

OTHER_ACCOUNT = "999999999999"


@pytest.fixture
def sent(session) -> list[tuple[str, dict]]:
    """Every S3 call flowwatch makes, with the parameters it sent."""
    seen: list[tuple[str, dict]] = []
    session.events.register("provide-client-params.s3.*",
                            lambda params, model, **_: seen.append((model.name, dict(params))))
    return seen


def squat(session, owner: str) -> None:
    """S3 as AWS answers ExpectedBucketOwner for a bucket another account owns: 403 when it differs."""
    def before_send(request, **_):
        expected = request.headers.get("x-amz-expected-bucket-owner")
        if isinstance(expected, bytes):
            expected = expected.decode()
        if expected is not None and expected != owner:
            return _answer(request, error_response("s3", request, "AccessDenied", 403, "Access Denied"))
        return None

    session.events.register_first("before-send.s3", before_send)


def _stack_bucket(session, tmp_path, tags: dict[str, str] | None) -> Path:
    from tests.query.test_local import FILE_TIMES, LAYOUT, file_lines
    import random

    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    if tags:
        s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    lines = file_lines(FILE_TIMES[0], random.Random(3))
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.object_key(FILE_TIMES[0], "fl-0123456789abcdef0", "00000000"),
                  Body=gzip.compress(("\n".join(lines) + "\n").encode()))
    config = tmp_path / "flowwatch.yaml"
    config.write_text("stack: test\n")
    return config


def _read_calls(sent):
    return [op for op, _ in sent if op in ("ListObjectsV2", "GetObject")]


@pytest.mark.parametrize("tags", [None, {"flowwatch:stack": "other"}, {"team": "test"}])
def test_a_bucket_without_the_stack_tag_is_not_read(capsys, monkeypatch, session, sent, tmp_path, tags):
    config = _stack_bucket(session, tmp_path, tags)
    use_session(monkeypatch, session)
    sent.clear()
    result = run_cli(capsys, monkeypatch, "--config", str(config), "query", "rejects", "--engine", "local")
    assert result.code == 1
    assert "not tagged flowwatch:stack=test" in result.err
    assert result.out == ""
    assert _read_calls(sent) == []


def test_a_bucket_of_another_account_is_not_read(capsys, monkeypatch, session, sent, tmp_path):
    config = _stack_bucket(session, tmp_path, {"flowwatch:stack": "test"})
    squat(session, OTHER_ACCOUNT)
    use_session(monkeypatch, session)
    sent.clear()
    result = run_cli(capsys, monkeypatch, "--config", str(config), "query", "rejects", "--engine", "local")
    assert result.code == 1
    assert "another account" in result.err
    assert result.out == ""
    assert _read_calls(sent) == []
    assert ("HeadBucket", {"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT}) in sent


def test_every_read_of_the_stack_bucket_names_the_expected_owner(capsys, monkeypatch, session, sent, tmp_path):
    config = _stack_bucket(session, tmp_path, {"flowwatch:stack": "test"})
    squat(session, ACCOUNT)                        # the caller's own bucket: every call answered
    use_session(monkeypatch, session)
    sent.clear()
    result = run_cli(capsys, monkeypatch, "--config", str(config), "--output", "json", "query", "rejects",
                     "--engine", "local")
    assert result.code == 0, result.err
    assert json.loads(result.out)
    s3_reads = [(op, params) for op, params in sent if op in ("HeadBucket", "GetBucketTagging", "ListObjectsV2",
                                                              "GetObject")]
    assert {op for op, _ in s3_reads} == {"HeadBucket", "GetBucketTagging", "ListObjectsV2", "GetObject"}
    assert all(params.get("ExpectedBucketOwner") == ACCOUNT for _, params in s3_reads), s3_reads
