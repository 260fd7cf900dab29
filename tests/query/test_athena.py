"""The Athena engine on moto: results queued through moto's API, pages, states, cost, rendering."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import requests

from flowwatch.console import Output
from flowwatch.errors import AwsError, SqlError
from flowwatch.query import athena_engine, run_athena
from tests.support.context import make_ctx

MOTO_API = "http://motoapi.amazonaws.com/moto-api"
COLUMNS = [("srcaddr", "varchar"), ("bytes", "bigint"), ("share", "double"), ("seen", "boolean")]


def queue_results(columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
    """What Athena would return for the next started query: header row first, every value as text."""
    def row(values: list[str | None]) -> dict[str, Any]:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}

    body = {"results": [{
        "rows": [row([name for name, _ in columns])] + [row(r) for r in rows],
        "column_info": [{"Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN"} for name, kind in columns],
    }]}
    assert requests.post(f"{MOTO_API}/static/athena/query-results", json=body).status_code == 201


@pytest.fixture
def paged_moto(monkeypatch):
    """moto returns every row in one page; AWS pages by MaxResults with a NextToken. Make moto do the same."""
    from moto.athena.responses import AthenaResponse

    def get_query_results(self: Any) -> str:
        result = self.athena_backend.get_query_results(self._get_param("QueryExecutionId")).to_dict()
        size, start = int(self._get_param("MaxResults") or 1000), int(self._get_param("NextToken") or 0)
        rows = result["ResultSet"]["Rows"]
        result["ResultSet"]["Rows"] = rows[start:start + size]
        if start + size < len(rows):
            result["NextToken"] = str(start + size)
        return json.dumps(result)

    monkeypatch.setattr(AthenaResponse, "get_query_results", get_query_results)


@pytest.fixture
def athena_ctx(session, calls):
    ctx = make_ctx(session)
    ctx.aws.athena.create_work_group(Name=ctx.names.of("workgroup"))
    return ctx


DATA = [[f"10.0.0.{i}", str(1000 - i), f"{i / 10}", "true" if i % 2 else "false"] for i in range(1, 8)]


def test_results_are_paginated_typed_and_the_header_row_dropped(athena_ctx, calls, paged_moto, monkeypatch):
    monkeypatch.setattr(athena_engine, "PAGE_SIZE", 3)
    queue_results(COLUMNS, DATA + [["10.0.0.99", None, None, None]])
    result = athena_engine.run(athena_ctx.aws.athena, "SELECT 1", workgroup=athena_ctx.names.of("workgroup"),
                               database=athena_ctx.names.of("database"), out=athena_ctx.out, sleep=lambda _: None)
    assert result.columns == [c for c, _ in COLUMNS]
    assert result.rows == [(f"10.0.0.{i}", 1000 - i, i / 10, bool(i % 2)) for i in range(1, 8)] + \
        [("10.0.0.99", None, None, None)]
    assert sum(op == "GetQueryResults" for _, op in calls) == 3             # 9 rows (header included) / 3
    assert result.scanned_bytes == 0 and result.cost_usd == pytest.approx(10 * 1024 ** 2 / 1024 ** 4 * 5)


def test_the_query_runs_in_the_stacks_workgroup_and_database(athena_ctx, session):
    queue_results(COLUMNS, DATA)
    result = athena_engine.run(athena_ctx.aws.athena, "SELECT srcaddr FROM flow_logs",
                               workgroup="flowwatch-test-athena", database="flowwatch_test", out=athena_ctx.out,
                               sleep=lambda _: None)
    execution = athena_ctx.aws.athena.get_query_execution(QueryExecutionId=result.query_id)["QueryExecution"]
    assert execution["WorkGroup"] == "flowwatch-test-athena"
    assert execution["QueryExecutionContext"] == {"Database": "flowwatch_test"}
    assert execution["Query"] == "SELECT srcaddr FROM flow_logs"


def test_polling_backs_off_until_the_query_finishes(athena_ctx):
    body = {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 3}}
    assert requests.post(f"{MOTO_API}/state-manager/set-transition", json=body).status_code == 201
    try:
        slept: list[float] = []
        result = athena_engine.run(athena_ctx.aws.athena, "SELECT 1", workgroup="flowwatch-test-athena",
                                   database="flowwatch_test", out=athena_ctx.out, sleep=slept.append)
    finally:
        requests.post(f"{MOTO_API}/state-manager/unset-transition", json={"model_name": "athena::execution"})
    assert result.rows == []
    assert len(slept) >= 2 and slept == sorted(slept) and slept[1] > slept[0]
    pauses: list[float] = []
    list(zip(range(40), athena_engine.POLL.with_(sleep=pauses.append, clock=lambda: 0.0).ticks()))
    assert pauses[:2] == [0.25, 0.4] and pauses[-1] == 5.0                   # growing, then capped


def test_a_cancelled_query_is_a_clean_error(athena_ctx):
    body = {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 5}}
    requests.post(f"{MOTO_API}/state-manager/set-transition", json=body)
    athena = athena_ctx.aws.athena

    def cancel(_: float) -> None:       # someone stops it while we wait
        for qid in athena.list_query_executions()["QueryExecutionIds"]:
            athena.stop_query_execution(QueryExecutionId=qid)

    try:
        with pytest.raises(AwsError, match="CANCELLED") as err:
            athena_engine.run(athena, "SELECT 1", workgroup="flowwatch-test-athena", database="flowwatch_test",
                              out=athena_ctx.out, sleep=cancel)
    finally:
        requests.post(f"{MOTO_API}/state-manager/unset-transition", json={"model_name": "athena::execution"})
    assert err.value.exit_code == 1 and err.value.message.startswith("query: Athena query ")


class _FailingAthena:
    """Athena as it answers a query over a missing table (moto never fails a query)."""

    def start_query_execution(self, **_: Any) -> dict[str, str]:
        return {"QueryExecutionId": "q-1"}

    def get_query_execution(self, **_: Any) -> dict[str, Any]:
        return {"QueryExecution": {"Status": {
            "State": "FAILED",
            "StateChangeReason": "TABLE_NOT_FOUND: line 1:15: Table "
                                 "'awsdatacatalog.flowwatch_test.flow_logs' does not exist",
        }}}


def test_a_failed_query_reports_athenas_reason():
    out = Output(stderr=io.StringIO(), stdout=io.StringIO(), color=False)
    with pytest.raises(SqlError) as err:
        athena_engine.run(_FailingAthena(), "SELECT 1", workgroup="w", database="d", out=out, sleep=lambda _: None)
    assert err.value.message == ("query: Athena query q-1 FAILED: TABLE_NOT_FOUND: line 1:15: Table "
                                 "'awsdatacatalog.flowwatch_test.flow_logs' does not exist")
    assert "flowwatch up" in (err.value.hint or "")


def test_start_errors_are_aws_errors(athena_ctx):
    from botocore.exceptions import ClientError

    class Refusing:
        def start_query_execution(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "InvalidRequestException", "Message": "WorkGroup is disabled"}},
                              "StartQueryExecution")

    with pytest.raises(AwsError, match="StartQueryExecution failed: InvalidRequestException: WorkGroup is disabled"):
        athena_engine.run(Refusing(), "SELECT 1", workgroup="w", database="d", out=athena_ctx.out)


@pytest.mark.parametrize(("scanned", "billed"), [(0, 10 * 1024 ** 2), (10 * 1024 ** 2 + 1, 11 * 1024 ** 2),
                                                 (3 * 1024 ** 4, 3 * 1024 ** 4)])
def test_billing_has_a_10_mb_minimum_and_rounds_up_to_the_mb(scanned, billed):
    assert athena_engine.billed_bytes(scanned) == billed


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_rows_are_rendered_with_the_cost_on_stderr(athena_ctx, paged_moto, monkeypatch, fmt):
    monkeypatch.setattr(athena_engine, "PAGE_SIZE", 2)
    queue_results(COLUMNS, DATA)
    run_athena(athena_ctx, "SELECT srcaddr, bytes, share, seen FROM flow_logs", fmt, athena_ctx.out)
    stdout, stderr = athena_ctx.out._stdout.getvalue(), athena_ctx.out.err.file.getvalue()
    assert "Athena: 7 rows; data scanned 0 B (billed 10.0 MiB, about $0.000048 at $5/TB)" in stderr
    if fmt == "json":
        assert json.loads(stdout) == [
            {"srcaddr": r[0], "bytes": int(r[1]), "share": float(r[2]), "seen": r[3] == "true"} for r in DATA]
    elif fmt == "csv":
        assert stdout.splitlines() == ["srcaddr,bytes,share,seen"] + \
            [f"{r[0]},{r[1]},{float(r[2])},{r[3].capitalize()}" for r in DATA]
    else:
        assert "10.0.0.7" in stdout and "srcaddr" in stdout
