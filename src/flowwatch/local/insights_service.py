"""CloudWatch Logs Insights on the local AWS: StartQuery, GetQueryResults, StopQuery, DescribeQueries.

moto answers StartQuery/GetQueryResults with ``@ptr`` rows only (``stats count(*) as n`` gives no ``n``).
The data plane serves these four operations itself: a query is parsed and evaluated by
:mod:`flowwatch.insights.language` over the copy of the log events the data plane keeps
(:class:`flowwatch.local.log_events.LogEvents`).

As the API reference describes them:

* StartQuery: ``logGroupName``, ``logGroupNames`` (at most 50) or ``logGroupIdentifiers`` (names or
  ARNs), exactly one of them; ``startTime``/``endTime`` in epoch seconds, both inclusive (an event at
  ``endTime + 0.999`` s counts); ``queryString`` (at most 10,000 characters); ``limit`` (1 to 10,000,
  the default). A query the language refuses is ``MalformedQueryException`` with its
  ``queryCompileError`` (``location.startCharOffset``/``endCharOffset``, ``message``); a missing log
  group ``ResourceNotFoundException``. The query runs at once, inside StartQuery (its status is final
  by the first GetQueryResults): ``Complete``, ``Failed`` (too many ``stats`` groups) or ``Timeout``
  (more than :data:`QUERY_SECONDS` of evaluation; AWS's limit is 60 minutes).
* GetQueryResults: ``results`` (lists of ``{field, value}``, ``@ptr`` in each row of a query without
  ``stats``), ``statistics`` (``recordsMatched``, ``recordsScanned``, ``bytesScanned``, as floats),
  ``status``.
* StopQuery: ``success`` is true only for a query still Scheduled or Running, false once it is final.
* DescribeQueries: newest first, by ``logGroupName`` and ``status``, ``maxResults`` 1 to 1,000, ``nextToken``.

Results are kept :data:`KEEP_SECONDS` (AWS keeps them 7 days) and at most :data:`MAX_QUERIES` queries
(the oldest are forgotten first), on the data plane's clock.
"""

from __future__ import annotations

import base64
import heapq
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flowwatch.local.api import ServiceError, required
from flowwatch.local.log_events import LogEvents

QUERY_SECONDS = 60.0
KEEP_SECONDS = 7 * 86_400
MAX_QUERIES = 1_000
MAX_GROUPS = 50
MAX_QUERY_LENGTH = 10_000
MAX_LIMIT = 10_000
STATUSES = ("Scheduled", "Running", "Complete", "Failed", "Cancelled", "Timeout", "Unknown")
LANGUAGE = "CWLI"


class MalformedQuery(ServiceError):
    """MalformedQueryException with AWS's ``queryCompileError``."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__("MalformedQueryException", message)
        self.start, self.end = start, end

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message, "queryCompileError": {
            "location": {"startCharOffset": self.start, "endCharOffset": self.end},
            "message": self.message}}).encode("utf-8")


@dataclass
class _Query:
    query_id: str
    text: str
    groups: list[str]
    created: float
    status: str = "Running"
    results: list[list[dict[str, str]]] = field(default_factory=list)
    statistics: dict[str, float] = field(default_factory=dict)


class _Timeout(Exception):
    pass


class InsightsService:
    """The four operations over ``events``; ``now``: the data plane's clock."""

    def __init__(self, events: LogEvents, now: Callable[[], float], *, seconds: float = QUERY_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.events = events
        self.now = now
        self.seconds = seconds
        self.monotonic = monotonic
        self._queries: OrderedDict[str, _Query] = OrderedDict()
        self._lock = threading.Lock()

    # ---- StartQuery ----------------------------------------------------------------------
    def start_query(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        from flowwatch.insights.language import QueryError, compile_query

        language = request.get("queryLanguage") or LANGUAGE
        if language != LANGUAGE:
            raise ServiceError("InvalidParameterException",
                               f"queryLanguage {str(language)[:20]} is not supported by the local AWS (only CWLI)")
        groups = self._groups(region, request)
        start, end = _seconds(request, "startTime"), _seconds(request, "endTime")
        if end < start:
            raise ServiceError("InvalidParameterException", "End time should not be before the start time")
        text = required(request, "queryString")
        if not isinstance(text, str) or len(text) > MAX_QUERY_LENGTH:
            raise ServiceError("InvalidParameterException", "1 validation error detected: Value at 'queryString' "
                               f"failed to satisfy constraint: Member must have length less than or equal to "
                               f"{MAX_QUERY_LENGTH}")
        limit = request.get("limit", MAX_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ServiceError("InvalidParameterException", f"1 validation error detected: Value '{limit}' at 'limit' "
                               f"failed to satisfy constraint: Member must have value between 1 and {MAX_LIMIT}")
        try:
            query = compile_query(text)
        except QueryError as exc:
            raise MalformedQuery(exc.message, exc.start, exc.end) from None
        for group in groups:
            self.events.ensure_group(region, group)
        record = _Query(str(uuid.uuid4()), text, groups, self.now())
        self._remember(record)
        self._run(record, query, region, start * 1000, end * 1000 + 999, limit)
        return {"queryId": record.query_id}

    def _groups(self, region: str, request: dict[str, Any]) -> list[str]:
        given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if request.get(k)]
        if len(given) != 1:
            raise ServiceError("InvalidParameterException", "Exactly one of logGroupName, logGroupNames or "
                               "logGroupIdentifiers must be specified")
        value = request[given[0]]
        names = [value] if given[0] == "logGroupName" else value
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ServiceError("InvalidParameterException", f"{given[0]} must be a list of log group names")
        if len(names) > MAX_GROUPS:
            raise ServiceError("InvalidParameterException", f"1 validation error detected: Value at '{given[0]}' "
                               f"failed to satisfy constraint: Member must have length less than or equal to "
                               f"{MAX_GROUPS}")
        # a name or an ARN, read as FilterLogEvents reads its logGroupIdentifier
        return list(dict.fromkeys(self.events.group_name(region, {"logGroupIdentifier": n}) for n in names))

    def _run(self, record: _Query, query: Any, region: str, start_ms: int, end_ms: int, limit: int) -> None:
        from flowwatch.insights.language import QueryError

        deadline = self.monotonic() + self.seconds
        newest_first = query.wants_newest_first
        events, wrap = self._sources(region, record.groups, start_ms, end_ms, ptr=not query.is_stats)
        scanned: tuple[int, int] | None = None
        try:
            if newest_first:     # a limit or dedup before any sort: the newest first, every event scanned
                every = list(_bounded(events, deadline, self.monotonic))
                scanned = (len(every), sum(len(e.message) for e in every))
                events = reversed(every)
            else:
                events = _bounded(events, deadline, self.monotonic)
            result = query.run(events, newest_first=newest_first, limit=limit, wrap=wrap)
        except _Timeout:
            record.status = "Timeout"
            return
        except QueryError:
            record.status = "Failed"
            return
        records, size = scanned or (result.records_scanned, result.bytes_scanned)
        record.results = [[{"field": k, "value": v} for k, v in row] for row in result.rows]
        record.statistics = {"recordsMatched": float(result.records_matched), "recordsScanned": float(records),
                             "bytesScanned": float(size),
                             "logGroupsScanned": float(len(record.groups))}
        record.status = "Complete"

    def _sources(self, region: str, groups: list[str], start_ms: int, end_ms: int,
                 *, ptr: bool) -> tuple[Iterator[Any], Callable[[Any], Any] | None]:
        """The events of ``groups`` in time order, and how to make a query's Source of one (None: they are
        Sources already). One group: its events as LogEvents keeps them, wrapped only if a query looks
        further than its prefilter; several: merged in time order, as Sources."""
        from flowwatch.insights.language import Source

        account = self.events.clients.account(region)

        def wrapper(group: str) -> Callable[[Any], Source]:
            log = f"{account}:{group}"
            return lambda e: Source(e.timestamp, e.ingestion_time, e.stream, log, e.message,
                                    _ptr(group, e) if ptr else "")

        def of(group: str) -> Iterator[tuple[int, int, Source]]:
            wrap = wrapper(group)
            for e in self.events.events(region, group, start=start_ms, end=end_ms):
                yield e.timestamp, e.seq, wrap(e)

        if len(groups) == 1:
            return self.events.events(region, groups[0], start=start_ms, end=end_ms), wrapper(groups[0])
        return (s for _, _, s in heapq.merge(*(of(g) for g in groups))), None

    # ---- the others ----------------------------------------------------------------------
    def get_query_results(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        record = self._find(request)
        return {"queryLanguage": LANGUAGE, "results": record.results, "statistics": record.statistics,
                "status": record.status}

    def stop_query(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        record = self._find(request)
        if record.status in ("Scheduled", "Running"):
            record.status = "Cancelled"
            return {"success": True}
        return {"success": False}

    def describe_queries(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        status = request.get("status")
        if status is not None and status not in STATUSES:
            raise ServiceError("InvalidParameterException", f"1 validation error detected: Value '{str(status)[:40]}' "
                               f"at 'status' failed to satisfy constraint: Member must satisfy enum value set: "
                               f"[{', '.join(STATUSES)}]")
        size = request.get("maxResults", 1000)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 1000:
            raise ServiceError("InvalidParameterException", f"1 validation error detected: Value '{size}' at "
                               "'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000")
        group = request.get("logGroupName")
        with self._lock:
            self._forget_old()
            chosen = [q for q in reversed(self._queries.values())
                      if (group is None or group in q.groups) and (status is None or q.status == status)]
        offset = _offset(request.get("nextToken"))
        page = chosen[offset:offset + size]
        answer: dict[str, Any] = {"queries": [
            {"queryId": q.query_id, "queryString": q.text, "status": q.status, "createTime": int(q.created * 1000),
             "logGroupName": q.groups[0], "queryLanguage": LANGUAGE} for q in page]}
        if offset + size < len(chosen):
            answer["nextToken"] = str(offset + size)
        return answer

    def _find(self, request: dict[str, Any]) -> _Query:
        query_id = required(request, "queryId")
        with self._lock:
            self._forget_old()
            record = self._queries.get(str(query_id))
        if record is None:
            raise ServiceError("ResourceNotFoundException", "Query does not exist.")
        return record

    def _remember(self, record: _Query) -> None:
        with self._lock:
            self._forget_old()
            self._queries[record.query_id] = record
            while len(self._queries) > MAX_QUERIES:
                self._queries.popitem(last=False)

    def _forget_old(self) -> None:
        oldest = self.now() - KEEP_SECONDS
        while self._queries:
            first = next(iter(self._queries.values()))
            if first.created >= oldest:
                return
            self._queries.popitem(last=False)


def _bounded(events: Iterator[Any], deadline: float, clock: Callable[[], float]) -> Iterator[Any]:
    """``events``, raising _Timeout once past ``deadline`` (looked at every 4,096 events)."""
    for i, event in enumerate(events):
        if not i & 4095 and clock() > deadline:
            raise _Timeout
        yield event


def _seconds(request: dict[str, Any], name: str) -> int:
    value = required(request, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ServiceError("InvalidParameterException", f"1 validation error detected: Value '{value}' at '{name}' "
                           "failed to satisfy constraint: Member must have value greater than or equal to 0")
    return value


def _ptr(group: str, event: Any) -> str:
    raw = json.dumps([group, event.stream, event.timestamp, event.seq], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _offset(token: Any) -> int:
    if token is None:
        return 0
    if not isinstance(token, str) or not token.isdigit():
        raise ServiceError("InvalidParameterException", "The specified nextToken is invalid.")
    return int(token)
