"""The events of every log group, as CloudWatch Logs serves them to readers: FilterLogEvents.

moto stores log events but its FilterLogEvents treats a structured filter pattern as a phrase
(``[...]``, ``{ $.x = ... }``, ``?a ?b`` and ``-term`` all answer wrongly). The local AWS keeps
its own copy of every event that moto accepted (:meth:`LogEvents.put`, after each PutLogEvents,
whoever sent it; moto's ``rejectedLogEventsInfo`` honoured) and answers FilterLogEvents from it,
with flowwatch's pattern engine (:mod:`flowwatch.patterns`); the same copy is what Logs Insights
queries read (:meth:`LogEvents.events`).

Per log stream the events are kept in columns sorted by (timestamp, arrival): a time range is a
bisection, and several streams are merged in time order (FilterLogEvents interleaves; the
``interleaved`` flag has been ignored by AWS since 2019). DeleteLogGroup and DeleteLogStream
remove the copy with moto's.

FilterLogEvents as the API reference describes it: ``logGroupName`` or ``logGroupIdentifier``
(a name or an ARN, not both), ``logStreamNames`` or ``logStreamNamePrefix`` (not both),
``startTime`` (inclusive) and ``endTime`` (inclusive) in epoch milliseconds, ``filterPattern``,
``limit`` (1 to 10,000, the default) and ``nextToken``; a page also ends when its messages reach
1 MB. Events: ``logStreamName``, ``timestamp``, ``message``, ``ingestionTime``, ``eventId``.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import heapq
import json
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from flowwatch.local.api import ServiceError, json_request
from flowwatch.local.loopback import Clients

MAX_LIMIT = 10_000
CHUNK = 4096
"""Events tested against a pattern at a time (then made Events, if they match)."""
MAX_PAGE_BYTES = 1_048_576
"""A FilterLogEvents page holds at most 1 MB of messages (then ``nextToken``)."""


class Event(NamedTuple):
    timestamp: int
    seq: int              # arrival order: ties in timestamp keep it
    stream: str
    ingestion_time: int
    message: str

    @property
    def event_id(self) -> str:
        """A decimal id unique in the server and ordered as the events are (AWS's are 56 digits)."""
        return str((self.timestamp << 64) | self.seq).zfill(56)


@dataclass
class _Stream:
    timestamps: array = field(default_factory=lambda: array("q"))
    seqs: array = field(default_factory=lambda: array("q"))
    ingested: array = field(default_factory=lambda: array("q"))
    messages: list[str] = field(default_factory=list)

    def add(self, timestamp: int, seq: int, ingested: int, message: str) -> None:
        if not self.timestamps or timestamp >= self.timestamps[-1]:
            self.timestamps.append(timestamp)
            self.seqs.append(seq)
            self.ingested.append(ingested)
            self.messages.append(message)
            return
        at = bisect.bisect_right(self.timestamps, timestamp)
        self.timestamps.insert(at, timestamp)
        self.seqs.insert(at, seq)
        self.ingested.insert(at, ingested)
        self.messages.insert(at, message)

    def between(self, name: str, start: int | None, end: int | None, after: tuple[int, int] | None,
                matches: Callable[[str], bool] | None = None) -> Iterator[Event]:
        """The events with ``start <= timestamp <= end`` past ``after``, those ``matches`` accepts only:
        the messages are tested a chunk at a time, and an Event is made for a match only (most
        events of a search are no match: making each one an Event cost more than the pattern)."""
        ts, seqs, ingested, messages = self.timestamps, self.seqs, self.ingested, self.messages
        lo = 0 if start is None else bisect.bisect_left(ts, start)
        hi = len(ts) if end is None else bisect.bisect_right(ts, end)
        if after is not None:
            lo = max(lo, bisect.bisect_left(ts, after[0]))
            while lo < hi and (ts[lo], seqs[lo]) <= after:
                lo += 1
        for chunk in range(lo, hi, CHUNK):
            top = min(chunk + CHUNK, hi)
            if matches is None:
                hits: Iterable[int] = range(chunk, top)
            else:
                hits = [i for i, message in enumerate(messages[chunk:top], chunk) if matches(message)]
            for i in hits:
                yield Event(ts[i], seqs[i], name, ingested[i], messages[i])


def accepted(request: Mapping[str, Any], response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The events of a PutLogEvents request that CloudWatch Logs kept (``rejectedLogEventsInfo``)."""
    events = list(request.get("logEvents") or ())
    rejected = response.get("rejectedLogEventsInfo") or {}
    lo = max(rejected.get("tooOldLogEventEndIndex", -1), rejected.get("expiredLogEventEndIndex", -1)) + 1
    hi = rejected.get("tooNewLogEventStartIndex", len(events))
    return events[lo:hi]


class LogEvents:
    """Every accepted event, per (region, log group, stream). ``now``: the data plane's clock (ingestion times)."""

    def __init__(self, clients: Clients, now: Callable[[], float]) -> None:
        self.clients = clients
        self.now = now
        self._groups: dict[tuple[str, str], dict[str, _Stream]] = {}
        self._seq = 0
        self._lock = threading.Lock()

    # ---- writes (after moto accepted them) -------------------------------------------------
    def put(self, region: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> int:
        """Keep the accepted events of one PutLogEvents; returns how many."""
        group, stream = request.get("logGroupName"), request.get("logStreamName")
        events = accepted(request, response)
        if not group or not stream or not events:
            return 0
        ingested = int(self.now() * 1000)
        with self._lock:
            columns = self._groups.setdefault((region, group), {}).setdefault(stream, _Stream())
            for event in sorted(events, key=lambda e: int(e["timestamp"])):
                self._seq += 1
                columns.add(int(event["timestamp"]), self._seq, ingested, str(event["message"]))
        return len(events)

    def delete_group(self, region: str, group: str) -> None:
        with self._lock:
            self._groups.pop((region, group), None)

    def delete_stream(self, region: str, group: str, stream: str) -> None:
        with self._lock:
            self._groups.get((region, group), {}).pop(stream, None)

    # ---- the taps (flowwatch.local.api ``after``) ------------------------------------------
    def after_put_log_events(self, region: str, request: Any, body: bytes) -> None:
        self.put(region, request, json_request(body))

    def after_delete_log_group(self, region: str, request: Any, body: bytes) -> None:
        self.delete_group(region, str(request.get("logGroupName") or ""))

    def after_delete_log_stream(self, region: str, request: Any, body: bytes) -> None:
        self.delete_stream(region, str(request.get("logGroupName") or ""), str(request.get("logStreamName") or ""))

    # ---- reads ---------------------------------------------------------------------------
    def streams(self, region: str, group: str) -> list[str]:
        with self._lock:
            return sorted(self._groups.get((region, group), {}))

    def count(self, region: str, group: str) -> int:
        with self._lock:
            return sum(len(s.messages) for s in self._groups.get((region, group), {}).values())

    def events(self, region: str, group: str, *, streams: Sequence[str] | None = None, prefix: str | None = None,
               start: int | None = None, end: int | None = None, after: tuple[int, int] | None = None,
               matches: Callable[[str], bool] | None = None) -> Iterator[Event]:
        """The events of ``group`` in (timestamp, arrival) order, from the named ``streams`` or those
        starting with ``prefix`` (else every stream), with ``start <= timestamp <= end`` (ms), past
        the event ``after`` = (timestamp, seq), whose message ``matches`` (when given) accepts."""
        with self._lock:
            chosen = [(name, columns) for name, columns in self._groups.get((region, group), {}).items()
                      if (streams is None or name in streams) and (not prefix or name.startswith(prefix))]
        per_stream = [columns.between(name, start, end, after, matches) for name, columns in chosen]
        if len(per_stream) == 1:
            return per_stream[0]
        return heapq.merge(*per_stream, key=lambda e: (e.timestamp, e.seq))

    # ---- FilterLogEvents -----------------------------------------------------------------
    def filter_log_events(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        from flowwatch.patterns import PatternError, compile_pattern

        group = self.group_name(region, request)
        streams = request.get("logStreamNames")
        prefix = request.get("logStreamNamePrefix")
        if streams is not None and prefix is not None:
            raise ServiceError("InvalidParameterException",
                               "logStreamNames and logStreamNamePrefix are mutually exclusive")
        limit = request.get("limit", MAX_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ServiceError("InvalidParameterException", f"1 validation error detected: Value '{limit}' at 'limit' "
                               f"failed to satisfy constraint: Member must have value between 1 and {MAX_LIMIT}")
        start, end = _millis(request, "startTime"), _millis(request, "endTime")
        try:
            pattern = compile_pattern(request.get("filterPattern") or "")
        except PatternError as exc:
            raise ServiceError("InvalidParameterException", getattr(exc, "aws_message", None) or str(exc)) from None
        query = json.dumps([region, group, streams, prefix, start, end, request.get("filterPattern") or ""])
        after = _token_position(request.get("nextToken"), query)
        self.ensure_group(region, group)

        found: list[dict[str, Any]] = []
        size = 0
        last: tuple[int, int] | None = None
        more = False
        matches = None if not (request.get("filterPattern") or "").strip() else pattern.matches
        for event in self.events(region, group, streams=streams, prefix=prefix, start=start, end=end, after=after,
                                 matches=matches):
            if len(found) == limit or (found and size + len(event.message) > MAX_PAGE_BYTES):
                more = True
                break
            found.append({"logStreamName": event.stream, "timestamp": event.timestamp, "message": event.message,
                          "ingestionTime": event.ingestion_time, "eventId": event.event_id})
            size += len(event.message)
            last = (event.timestamp, event.seq)
        answer: dict[str, Any] = {"events": found, "searchedLogStreams": []}
        if more and last is not None:
            answer["nextToken"] = _token(query, last)
        return answer

    def group_name(self, region: str, request: Mapping[str, Any]) -> str:
        """The log group of a request: ``logGroupName``, or ``logGroupIdentifier`` (a name or an ARN)."""
        name, identifier = request.get("logGroupName"), request.get("logGroupIdentifier")
        if name and identifier:
            raise ServiceError("InvalidParameterException",
                               "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if not name and not identifier:
            raise ServiceError("InvalidParameterException",
                               "Should provide either name or ARN (identifier) of the log group.")
        if name:
            return str(name)
        ident = str(identifier)
        if ident.startswith("arn:"):
            parts = ident.split(":")
            if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
                raise ServiceError("InvalidParameterException", f"Invalid log group ARN: {ident[:200]}")
            return parts[6]
        return ident

    def ensure_group(self, region: str, group: str) -> None:
        """ResourceNotFoundException unless the log group exists (moto holds the groups)."""
        logs = self.clients.client("logs", region)
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group):
            if any(g["logGroupName"] == group for g in page["logGroups"]):
                return
        raise ServiceError("ResourceNotFoundException", "The specified log group does not exist.")


def _millis(request: Mapping[str, Any], name: str) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ServiceError("InvalidParameterException", f"1 validation error detected: Value '{value}' at '{name}' "
                           "failed to satisfy constraint: Member must have value greater than or equal to 0")
    return value


def _token(query: str, last: tuple[int, int]) -> str:
    digest = hashlib.sha256(query.encode("utf-8")).hexdigest()[:16]
    raw = json.dumps({"q": digest, "t": last[0], "s": last[1]}).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _token_position(token: Any, query: str) -> tuple[int, int] | None:
    if token is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(str(token).encode("ascii")))
        position = (int(value["t"]), int(value["s"]))
        fits = value["q"] == hashlib.sha256(query.encode("utf-8")).hexdigest()[:16]
    except (ValueError, KeyError, TypeError):
        fits = False
    if not fits:
        raise ServiceError("InvalidParameterException", "The specified nextToken is invalid.")
    return position
