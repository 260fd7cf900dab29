"""The fields Logs Insights gives an event without a ``parse``: the system fields and the discovered ones.

From "Supported logs and discovered fields" (CloudWatch Logs User Guide,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html):

* every event: ``@message``, ``@timestamp``, ``@ingestionTime``, ``@logStream``, ``@log``
  (``<account-id>:<log-group-name>``), and ``@ptr`` in the results of a query without ``stats``;
* Amazon VPC flow logs: ``version, accountId, interfaceId, srcAddr, dstAddr, srcPort, dstPort, protocol,
  packets, bytes, startTime, endTime, action, logStatus`` (the 14 fields of the default format, in its
  order). The page names them for the default format only: a custom format is not discovered, its
  fields are read with ``parse`` (the presets do that, see ``presets``). The local AWS recognises a
  default-format record by its shape: 14 space-separated values, the first ``2``;
* JSON events: every key, nested keys joined with ``.`` and array items by their index
  (``a.b``, ``items.0.id``), at most :data:`MAX_JSON_FIELDS` of them (the page's 200-field limit).
"""

from __future__ import annotations

import json
from typing import Any

SYSTEM_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")

#: The discovered names of the default (version 2) format, in the record's order.
VPC_FIELDS = ("version", "accountId", "interfaceId", "srcAddr", "dstAddr", "srcPort", "dstPort", "protocol",
              "packets", "bytes", "startTime", "endTime", "action", "logStatus")

#: flow-log field (AWS's name) -> the name Logs Insights discovers it under.
DISCOVERED_NAME = dict(zip(("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
                            "protocol", "packets", "bytes", "start", "end", "action", "log-status"), VPC_FIELDS))

MAX_JSON_FIELDS = 200
MAX_JSON_DEPTH = 32
_NOTHING: dict[str, Any] = {}


def insights_name(field: str) -> str:
    """The Logs Insights name of a flow-log field: the discovered one, else camelCase (``tcp-flags`` -> ``tcpFlags``)."""
    if field in DISCOVERED_NAME:
        return DISCOVERED_NAME[field]
    head, *rest = field.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def discover(message: str) -> dict[str, Any]:
    """The discovered fields of one event's message (empty when it is neither a default-format record nor JSON)."""
    if message.startswith("{"):
        return _json_fields(message)
    parts = message.split(" ")
    if len(parts) == 14 and parts[0] == "2":
        return dict(zip(VPC_FIELDS, parts))
    return _NOTHING


_VPC_INDEX = {name: i for i, name in enumerate(VPC_FIELDS)}


def _json_fields(message: str) -> dict[str, Any]:
    try:
        value = json.loads(message)
    except ValueError:
        return _NOTHING
    if not isinstance(value, dict):
        return _NOTHING
    found: dict[str, Any] = {}
    _flatten(value, "", found, 0)
    return found


def _flatten(value: Any, prefix: str, found: dict[str, Any], depth: int) -> None:
    if len(found) >= MAX_JSON_FIELDS or depth > MAX_JSON_DEPTH:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        name = f"{prefix}{key}"
        if isinstance(item, (dict, list)):
            _flatten(item, name + ".", found, depth + 1)
        elif item is not None and len(found) < MAX_JSON_FIELDS:
            found[name] = ("true" if item else "false") if isinstance(item, bool) else item


class Record(dict[str, Any]):
    """One event's fields as a query sees them: what the query set (``parse``, ``fields``) in the dict; the
    system and discovered fields looked up on first use, from ``event`` (timestamp, ingestion_time, stream,
    log, message, ptr); ``record[name]`` is None for a field the event lacks."""

    __slots__ = ("event", "_parts", "_json")

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event
        self._parts: list[str] | None = None
        self._json: dict[str, Any] | None = None

    def __missing__(self, key: str) -> Any:
        index = _VPC_INDEX.get(key)
        if index is not None:                      # the common case: a flow-log field
            parts = self._parts
            if parts is None:
                parts = self._parts = self._split()
            if parts:
                return parts[index]
        if key[:1] == "@" and key in _SYSTEM:
            return _SYSTEM[key](self.event)
        if self.event.message[:1] == "{":
            if self._json is None:
                self._json = _json_fields(self.event.message)
            return self._json.get(key)
        return None

    def _split(self) -> list[str]:
        parts = self.event.message.split(" ")
        return parts if len(parts) == 14 and parts[0] == "2" else []

    def every(self) -> dict[str, Any]:
        """Every field with a value: system, discovered, then the query's own."""
        out = {name: self[name] for name in SYSTEM_FIELDS}
        out.update(discover(self.event.message))
        out.update(self)
        return {k: v for k, v in out.items() if v is not None}


def _timestamp(ms: int) -> Any:
    from flowwatch.insights.language import Timestamp

    return Timestamp(ms)


_SYSTEM: dict[str, Any] = {
    "@timestamp": lambda e: _timestamp(e.timestamp),
    "@ingestionTime": lambda e: _timestamp(e.ingestion_time),
    "@message": lambda e: e.message,
    "@logStream": lambda e: e.stream,
    "@log": lambda e: e.log,
    "@ptr": lambda e: e.ptr,
}
