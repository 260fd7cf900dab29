"""The Athena engine of `flowwatch query`: one statement in the stack's workgroup.

StartQueryExecution (workgroup + Glue database; the workgroup sets the encrypted result
location), GetQueryExecution polled with a growing delay until a final state, then
GetQueryResults through its paginator (the header row is the first row of the first page),
values typed from ``ResultSetMetadata.ColumnInfo``. FAILED/CANCELLED become an ``AwsError``
with Athena's ``StateChangeReason``; Ctrl-C stops the query so it costs nothing more.
Athena bills $5 per TB scanned, at least 10 MB per query, rounded up to the MB.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flowwatch.errors import AwsError, FlowwatchError, SqlError, TimeoutError_, caret_context
from flowwatch.polling import Poll

PRICE_PER_TB = 5.0
_MB = 1024 ** 2
_TB = 1024 ** 4
_MIN_BILLED = 10 * _MB
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
PAGE_SIZE = 1000  # GetQueryResults' maximum

_INTS = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOATS = {"float", "real", "double"}


@dataclass(frozen=True)
class AthenaResult:
    query_id: str
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    scanned_bytes: int
    elapsed_ms: int

    @property
    def cost_usd(self) -> float:
        return billed_bytes(self.scanned_bytes) / _TB * PRICE_PER_TB


def billed_bytes(scanned: int) -> int:
    """What Athena bills for a query that scanned ``scanned`` bytes."""
    return max(_MIN_BILLED, math.ceil(scanned / _MB) * _MB)


def run(athena: Any, sql: str, *, workgroup: str, database: str, out: Any,
        sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
        timeout: float = 1800.0) -> AthenaResult:
    """Run ``sql`` and return all its rows; AwsError on any failure."""
    query_id = start(athena, sql, workgroup=workgroup, database=database)
    out.detail(f"Athena query {query_id} in workgroup {workgroup}")
    try:
        with out.working(f"Athena: running query {query_id}"):
            execution = wait(athena, query_id, sleep=sleep, clock=clock, timeout=timeout, sql=sql)
    except KeyboardInterrupt:
        _stop(athena, query_id)
        raise
    columns, types, rows = fetch(athena, query_id)
    stats = execution.get("Statistics", {})
    return AthenaResult(query_id, columns, types, rows, int(stats.get("DataScannedInBytes") or 0),
                        int(stats.get("TotalExecutionTimeInMillis") or 0))


def start(athena: Any, sql: str, *, workgroup: str, database: str) -> str:
    from botocore.exceptions import ClientError

    try:
        response = athena.start_query_execution(QueryString=sql, WorkGroup=workgroup,
                                                QueryExecutionContext={"Database": database})
    except ClientError as exc:
        err = AwsError.from_client_error(exc, step="query", operation="StartQueryExecution")
        if "does not exist" in err.message:
            err.hint = f"run `flowwatch up` to create the workgroup {workgroup} and the Glue table"
        raise err from None
    return str(response["QueryExecutionId"])


#: Poll delays: quick at first (small queries finish in about a second), then every 5 s.
POLL = Poll(timeout=1800.0, interval=0.25, backoff=1.6, max_interval=5.0)


def wait(athena: Any, query_id: str, *, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic, timeout: float = 1800.0, sql: str = "") -> dict[str, Any]:
    """The QueryExecution once SUCCEEDED; SqlError when Athena failed the SQL (its reason names a line:column
    of ``sql``), AwsError when FAILED/CANCELLED otherwise, TimeoutError_ after ``timeout``."""
    from botocore.exceptions import ClientError

    state = "QUEUED"
    for _ in POLL.with_(timeout=timeout, sleep=sleep, clock=clock).ticks():
        try:
            execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        except ClientError as exc:
            raise AwsError.from_client_error(exc, step="query", operation="GetQueryExecution") from None
        status = execution["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return execution
        if state in ("FAILED", "CANCELLED"):
            raise _failure(query_id, state, status, sql)
    _stop(athena, query_id)
    raise TimeoutError_(f"query: Athena query {query_id} still {state} after {timeout:.0f} s; stopped it")


def fetch(athena: Any, query_id: str) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """Columns, Athena types and typed rows, every page of GetQueryResults."""
    from botocore.exceptions import ClientError

    columns: list[str] = []
    types: list[str] = []
    rows: list[tuple[Any, ...]] = []
    paginator = athena.get_paginator("get_query_results")
    try:
        for number, page in enumerate(paginator.paginate(QueryExecutionId=query_id,
                                                         PaginationConfig={"PageSize": PAGE_SIZE})):
            result_set = page["ResultSet"]
            if number == 0:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c.get("Label") or c["Name"] for c in info]
                types = [c.get("Type", "varchar").lower() for c in info]
            page_rows = [_texts(r) for r in result_set.get("Rows", [])]
            if number == 0 and page_rows and page_rows[0] == columns:
                page_rows = page_rows[1:]  # SELECT results start with a header row
            rows.extend(tuple(_typed(v, t) for v, t in zip(r, types)) for r in page_rows)
    except ClientError as exc:
        raise AwsError.from_client_error(exc, step="query", operation="GetQueryResults") from None
    return columns, types, rows


def _texts(row: dict[str, Any]) -> list[str | None]:
    return [cell.get("VarCharValue") for cell in row.get("Data", [])]


def _typed(value: str | None, athena_type: str) -> Any:
    """An Athena result cell (always text) as the Python value its column type means."""
    if value is None:
        return None
    base = athena_type.split("(", 1)[0]
    try:
        if base in _INTS:
            return int(value)
        if base in _FLOATS:
            return float(value)
        if base == "decimal":
            return Decimal(value)
    except ValueError:
        return value
    if base == "boolean":
        return value.lower() == "true"
    return value


def _failure(query_id: str, state: str, status: dict[str, Any], sql: str = "") -> FlowwatchError:
    """Athena's reason, in one line. A reason naming a place in the SQL ("SYNTAX_ERROR: line 1:8: ...",
    "COLUMN_NOT_FOUND: line 2:3: ...") is a SqlError with that line of the SQL under it."""
    reason = " ".join(str(status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage")
                          or "no reason given").split())
    hint = None
    if "does not exist" in reason or "Table not found" in reason or "TABLE_NOT_FOUND" in reason:
        hint = "run `flowwatch up` to create the Glue table and workgroup"
    elif state == "CANCELLED":
        hint = "someone (or a workgroup limit) stopped it; run the query again"
    message = f"query: Athena query {query_id} {state}: {reason}"
    place = _PLACE.search(reason) if state == "FAILED" else None
    if place is not None:
        position = (int(place.group(1)), int(place.group(2)))
        return SqlError(message, hint=hint or "--show-sql prints the SQL Athena ran", position=position,
                        context=caret_context(sql, position))
    return AwsError(message, hint=hint, code=state)


#: Where Athena (Trino) places an error in the statement: "line 1:8: ...".
_PLACE = re.compile(r"\bline (\d+):(\d+)\b")


def _stop(athena: Any, query_id: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        athena.stop_query_execution(QueryExecutionId=query_id)
    except (ClientError, BotoCoreError):
        pass  # best effort: the query times out on its own
