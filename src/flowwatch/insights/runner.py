"""`flowwatch logs insights`: one Logs Insights query over the stack's flow-log group, on AWS or the local AWS.

:func:`prepare` validates everything without AWS (the query text, the preset against the record format,
the time window); :func:`run` then calls StartQuery (epoch seconds, inclusive), polls GetQueryResults
with a growing pause (flowwatch.polling) until a final status, and calls StopQuery on Ctrl-C or when
the wait runs out, so an abandoned query scans nothing more. The same code runs against the local AWS,
whose data plane evaluates the query (flowwatch.local.insights_service).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowwatch.console import plural
from flowwatch.errors import AwsError, TimeoutError_, UsageError
from flowwatch.polling import Poll

if TYPE_CHECKING:
    from flowwatch.model import Context
    from flowwatch.records import RecordFormat
    from flowwatch.timewindow import TimeWindow

DEFAULT_SINCE = "1h"
MAX_QUERY_LENGTH = 10_000
FINAL = ("Complete", "Failed", "Cancelled", "Timeout", "Unknown")
#: Quick at first (a small query finishes in about a second), then every 5 s, for at most 15 minutes.
POLL = Poll(timeout=900.0, interval=0.5, backoff=1.6, max_interval=5.0)


@dataclass(frozen=True)
class InsightsRequest:
    """What one `flowwatch logs insights ...` asks for: a preset name or a query, already type-checked by click."""

    what: str
    since: str | None = None
    from_: str | None = None
    to: str | None = None
    limit: int | None = None
    log_group: str | None = None


@dataclass(frozen=True)
class Prepared:
    query: str
    preset: str | None
    window: "TimeWindow"


@dataclass(frozen=True)
class InsightsResult:
    query_id: str
    columns: list[str]
    rows: list[list[str | None]]
    statistics: dict[str, float]


def prepare(request: InsightsRequest, fmt: "RecordFormat", *, local: bool) -> Prepared:
    """The query and its window, validated (UsageError, exit 2) before any AWS call. With ``local`` the
    query is also parsed here, by the same evaluator the local AWS runs; on AWS, AWS judges it."""
    from flowwatch import timewindow
    from flowwatch.insights import presets

    text = request.what
    preset_name = None
    if not text.strip():
        raise UsageError("the Logs Insights query is empty")
    if _is_preset_name(text):
        chosen = presets.preset(text)
        preset_name, text = chosen.name, presets.build(chosen, fmt, limit=request.limit)
    elif len(text) > MAX_QUERY_LENGTH:
        raise UsageError(f"the query is {len(text):,} characters long; Logs Insights takes at most "
                         f"{MAX_QUERY_LENGTH:,}")
    if local or preset_name:
        check(text)
    since = request.since if request.since or request.from_ or request.to else DEFAULT_SINCE
    window = timewindow.resolve(since=since, from_=request.from_, to=request.to)
    assert window is not None
    return Prepared(text, preset_name, window)


def check(text: str) -> None:
    """UsageError naming the place, if the local evaluator refuses ``text``."""
    from flowwatch.insights.language import QueryError, compile_query

    try:
        compile_query(text)
    except QueryError as exc:
        raise UsageError(f"query: {exc.message} (at character {exc.start + 1})") from None


def _is_preset_name(text: str) -> bool:
    """A preset is one word of letters, digits and '-'; anything else is a query."""
    return all(c.isalnum() or c == "-" for c in text) and not text[:1].isdigit()


def run(ctx: "Context", prepared: Prepared, request: InsightsRequest, *, poll: Poll | None = None) -> InsightsResult:
    """Start the query, wait for it, return its rows; AwsError when it fails, TimeoutError_ past the wait."""
    logs = ctx.aws.logs
    group = request.log_group or ctx.log_group
    args: dict[str, Any] = {"logGroupName": group, "startTime": prepared.window.start_epoch,
                            "endTime": prepared.window.end_epoch, "queryString": prepared.query}
    if request.limit and not prepared.preset:
        args["limit"] = request.limit
    ctx.out.detail(f"Logs Insights over {group}, {prepared.window.describe()}:\n{prepared.query}")
    query_id = _start(logs, args)
    wait = poll or POLL.with_(sleep=ctx.poll.sleep, clock=ctx.poll.clock)
    status, answer = "Scheduled", {}
    try:
        with ctx.out.working(f"Logs Insights: running query {query_id}"):
            for _ in wait.ticks():
                answer = _call(logs.get_query_results, "GetQueryResults", queryId=query_id)
                status = answer.get("status", "Unknown")
                if status in FINAL:
                    break
    except KeyboardInterrupt:
        _stop(logs, query_id)
        raise
    if status not in FINAL:
        _stop(logs, query_id)
        raise TimeoutError_(f"logs insights: query {query_id} still {status} after {wait.timeout:.0f} s; stopped it")
    if status != "Complete":
        raise AwsError(f"logs insights: query {query_id} ended {status}", code=status,
                       hint="narrow the time window (--since) or simplify the query" if status == "Timeout" else None)
    columns, rows = table(answer.get("results", []))
    return InsightsResult(query_id, columns, rows, dict(answer.get("statistics") or {}))


def table(results: list[list[dict[str, str]]]) -> tuple[list[str], list[list[str | None]]]:
    """GetQueryResults' rows as columns (in order of first appearance, ``@ptr`` left out) and rows."""
    columns = list(dict.fromkeys(cell["field"] for row in results for cell in row if cell.get("field") != "@ptr"))
    rows = []
    for row in results:
        values = {cell.get("field"): cell.get("value") for cell in row}
        rows.append([values.get(c) for c in columns])
    return columns, rows


def show(ctx: "Context", result: InsightsResult, output: str) -> None:
    """Rows to stdout; the statistics to stderr."""
    from flowwatch.query import human_bytes, render

    if result.columns:
        render(ctx.out, result.columns, result.rows, output)
    stats = result.statistics
    matched, scanned = int(stats.get("recordsMatched", 0)), int(stats.get("recordsScanned", 0))
    ctx.out.info(f"Logs Insights: {plural(len(result.rows), 'row')}; {matched:,} of {plural(scanned, 'record')} "
                 f"matched, {human_bytes(int(stats.get('bytesScanned', 0)))} scanned; query {result.query_id}")


def _start(logs: Any, args: dict[str, Any]) -> str:
    from botocore.exceptions import ClientError

    try:
        return str(logs.start_query(**args)["queryId"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "MalformedQueryException":
            raise UsageError(f"query: Logs Insights refused it: {message}") from None
        err = AwsError.from_client_error(exc, step="logs insights", operation="StartQuery")
        if code == "ResourceNotFoundException":
            err.hint = f"no log group {args['logGroupName']}: run `flowwatch up`, or pass --log-group"
        raise err from None


def _call(fn: Any, operation: str, **kwargs: Any) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        return dict(fn(**kwargs))
    except ClientError as exc:
        raise AwsError.from_client_error(exc, step="logs insights", operation=operation) from None


def _stop(logs: Any, query_id: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        logs.stop_query(queryId=query_id)
    except (ClientError, BotoCoreError):
        pass  # best effort: the query ends on its own
