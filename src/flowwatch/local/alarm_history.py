"""CloudWatch alarm history, as DescribeAlarmHistory shows it (moto: not implemented).

Every item is an AlarmHistoryItem of the API reference (AlarmName, AlarmType, Timestamp,
HistoryItemType, HistorySummary, HistoryData), of three kinds:

* ``StateUpdate``: every state change, made by the local alarm evaluator or by a user with
  SetAlarmState (both reach moto as SetAlarmState, whose tap records them):
  ``HistorySummary`` "Alarm updated from OK to ALARM", ``HistoryData`` the JSON of the AWS CLI's
  recorded example (``awscli/examples/cloudwatch/describe-alarm-history.rst``):
  ``{"version":"1.0","oldState":{"stateValue","stateReason"[,"stateReasonData"]},"newState":{...}}``.
  The evaluator's own bookkeeping sets (an alarm's initial INSUFFICIENT_DATA, moto starting it
  in OK; the state put back after PutMetricAlarm) are announced with :meth:`AlarmHistory.silent`
  and are no change on AWS, so they record nothing.
* ``Action``: each SNS notification the evaluator published for a state change,
  "Successfully executed action arn:aws:sns:..." (or "Failed to execute action ...").
* ``ConfigurationUpdate``: PutMetricAlarm (``Alarm "name" created`` / ``updated``) and
  DeleteAlarms (``Alarm "name" deleted``).

DescribeAlarmHistory filters by AlarmName, AlarmTypes (MetricAlarm when omitted, the only kind
the local AWS evaluates), HistoryItemType, StartDate/EndDate (inclusive), orders by ScanBy
(TimestampDescending by default), pages by MaxRecords (1 to 100, default 50) and NextToken.
The newest :data:`HISTORY_LIMIT` items of each region are kept.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flowwatch.local.api import ServiceError

HISTORY_LIMIT = 10_000
MAX_RECORDS = 100
ITEM_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action")
INITIAL = {"stateValue": "INSUFFICIENT_DATA", "stateReason": "Unchecked: Initial alarm creation"}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class AlarmHistory:
    """The history items of every region; ``now``: the data plane's clock (item timestamps)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self._items: dict[str, list[dict[str, Any]]] = {}
        self._state: dict[tuple[str, str], dict[str, Any]] = {}   # the last state set, as HistoryData shows it
        self._silent: set[tuple[str, str, str]] = set()
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def _add(self, region: str, name: str, kind: str, summary: str, data: Any) -> None:
        items = self._items.setdefault(region, [])
        items.append({"AlarmName": name, "AlarmType": "MetricAlarm", "Timestamp": round(self.now(), 3),
                      "HistoryItemType": kind, "HistorySummary": summary[:255], "HistoryData": _compact(data)})
        del items[:-HISTORY_LIMIT]

    # ---- what the evaluator and the taps report ---------------------------------------------
    def silent(self, region: str, name: str, state: str) -> None:
        """The next SetAlarmState of ``name`` to ``state`` is the evaluator's bookkeeping, not a change."""
        with self._lock:
            self._silent.add((region, name, state))

    def after_set_alarm_state(self, region: str, request: Any, body: bytes) -> None:
        name, value = str(request.get("AlarmName") or ""), str(request.get("StateValue") or "")
        if not name or not value:
            return
        new: dict[str, Any] = {"stateValue": value, "stateReason": str(request.get("StateReason") or "")}
        if request.get("StateReasonData"):
            try:
                new["stateReasonData"] = json.loads(request["StateReasonData"])
            except ValueError:
                pass
        key = (region, name)
        with self._lock:
            old = self._state.get(key, INITIAL)
            self._state[key] = new
            if (region, name, value) in self._silent:
                self._silent.discard((region, name, value))
                return
            if old["stateValue"] != value:
                self._add(region, name, "StateUpdate", f"Alarm updated from {old['stateValue']} to {value}",
                          {"version": "1.0", "oldState": old, "newState": new})

    def action(self, region: str, name: str, arn: str, error: str | None = None) -> None:
        """An alarm action run (the SNS publish of a state change), successful unless ``error``."""
        data: dict[str, Any] = {"actionState": "Failed" if error else "Succeeded",
                                "stateUpdateTimestamp": int(self.now() * 1000), "notificationResource": arn}
        if error:
            data["error"] = error
        summary = f"Failed to execute action {arn}" if error else f"Successfully executed action {arn}"
        with self._lock:
            self._add(region, name, "Action", summary, data)

    def after_put_metric_alarm(self, region: str, request: Any, body: bytes) -> None:
        name = str(request.get("AlarmName") or "")
        if not name:
            return
        alarm = {k: v for k, v in request.items() if k not in ("Tags",)}
        with self._lock:
            created = (region, name) not in self._known
            self._known.add((region, name))
            data = ({"type": "Create", "version": "1.0", "createdAlarm": alarm} if created
                    else {"type": "Update", "version": "1.0", "updatedAlarm": alarm})
            self._add(region, name, "ConfigurationUpdate", f'Alarm "{name}" {"created" if created else "updated"}',
                      data)

    def after_delete_alarms(self, region: str, request: Any, body: bytes) -> None:
        with self._lock:
            for name in request.get("AlarmNames") or ():
                self._known.discard((region, name))
                self._state.pop((region, name), None)
                self._add(region, name, "ConfigurationUpdate", f'Alarm "{name}" deleted',
                          {"type": "Delete", "version": "1.0", "deletedAlarm": {"AlarmName": name}})

    # ---- DescribeAlarmHistory ----------------------------------------------------------------
    def describe(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        name = request.get("AlarmName")
        types = request.get("AlarmTypes") or ["MetricAlarm"]
        kind = request.get("HistoryItemType")
        if kind is not None and kind not in ITEM_TYPES:
            raise ServiceError("ValidationError", f"1 validation error detected: Value '{kind}' at "
                               f"'historyItemType' failed to satisfy constraint: Member must satisfy enum value "
                               f"set: [{', '.join(ITEM_TYPES)}]")
        start, end = _epoch(request.get("StartDate")), _epoch(request.get("EndDate"))
        limit = request.get("MaxRecords", 50)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_RECORDS:
            raise ServiceError("ValidationError", f"1 validation error detected: Value '{limit}' at 'maxRecords' "
                               f"failed to satisfy constraint: Member must have value between 1 and {MAX_RECORDS}")
        descending = request.get("ScanBy", "TimestampDescending") != "TimestampAscending"
        with self._lock:
            items = [dict(item) for item in self._items.get(region, ())
                     if (name is None or item["AlarmName"] == name) and item["AlarmType"] in types
                     and (kind is None or item["HistoryItemType"] == kind)
                     and (start is None or item["Timestamp"] >= start) and (end is None or item["Timestamp"] <= end)]
        if descending:
            items.reverse()
        offset = _offset(request.get("NextToken"), len(items))
        answer: dict[str, Any] = {"AlarmHistoryItems": items[offset:offset + limit]}
        if offset + limit < len(items):
            answer["NextToken"] = base64.urlsafe_b64encode(_compact({"o": offset + limit}).encode()).decode()
        return answer


def _epoch(value: Any) -> float | None:
    """A JSON-protocol timestamp (epoch seconds, or ISO 8601) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ServiceError("ValidationError", f"Invalid timestamp: {str(value)[:50]}") from None


def _offset(token: Any, size: int) -> int:
    if token is None:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(str(token).encode("ascii")))["o"])
    except (ValueError, KeyError, TypeError):
        offset = -1
    if not 0 <= offset <= size:
        raise ServiceError("InvalidNextToken", "The service cannot process this request: the next token is invalid.")
    return offset
