"""CloudWatch metric alarms, evaluated: the state machine moto lacks (it stores alarms, never evaluates them).

:meth:`AlarmEvaluator.evaluate` evaluates every metric alarm of the given regions with the pure
rules of :mod:`flowwatch.local.alarms`, on the datapoints GetMetricStatistics returns for each
aligned period of the evaluation range, at the data plane's clock:

* a new alarm is first set to INSUFFICIENT_DATA (moto starts it in OK); an updated one keeps its state;
* a state change is set on the server (SetAlarmState, with StateReason and StateReasonData) and the
  CloudWatch alarm JSON is published to the SNS topics of the new state's actions (AlarmActions,
  OKActions, InsufficientDataActions; moto fires none), before the state is set, so whoever sees
  the new state finds the message in the inbox;
* a state set from outside with SetAlarmState is published too, and holds until the next period
  boundary, as on AWS.

Metric-math alarms of the two shapes the detections make are evaluated too (others are logged once
and skipped), with :mod:`flowwatch.local.anomaly`'s rules:

* ``ANOMALY_DETECTION_BAND(m1, w)`` with ``ThresholdMetricId``: the metric's values per period and the
  band of each period from the metric's own history (``AnomalyDetectors.bands``: one
  GetMetricStatistics call over the 14-day training window; the detector's ExcludedTimeRanges and
  MetricTimezone; its StateValue follows); StateReason and StateReasonData as
  :func:`~flowwatch.local.anomaly.evaluate_anomaly` / ``anomaly_reason_data`` build them;
* ``INSIGHT_RULE_METRIC('rule', 'Metric')`` with a static threshold: the rule's metric per period
  (``InsightRules.metric``), :func:`~flowwatch.local.anomaly.evaluate_insight` / ``insight_reason_data``.

Their notifications carry the metric-math ``Trigger`` (``Metrics``, ``ThresholdMetricId`` or
``Threshold``: :func:`flowwatch.local.alarms.notification`).

It keeps flowwatch's view of each alarm (:class:`Tracked`) and the state changes made
(:meth:`AlarmEvaluator.history`, newest :data:`HISTORY_LIMIT`), which ``GET /_flowwatch/alarms``
returns. One evaluation runs at a time.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import flowwatch.local.alarms as rules
from flowwatch.local import anomaly
from flowwatch.local.alarm_history import AlarmHistory
from flowwatch.local.alarms import Evaluation
from flowwatch.local.loopback import Clients

if TYPE_CHECKING:
    from flowwatch.local.anomaly_service import AnomalyDetectors
    from flowwatch.local.insight_rules import InsightRules

log = logging.getLogger("flowwatch.local")

HISTORY_LIMIT = 1000


@dataclass
class Tracked:
    """flowwatch's view of one alarm (moto's own initial state is wrong: "OK")."""

    state: str
    config: Any
    hold_until: float = 0.0


class AlarmEvaluator:
    """Tracked alarm states and their evaluation. ``now``: the data plane's clock."""

    def __init__(self, clients: Clients, now: Callable[[], float], history: AlarmHistory | None = None, *,
                 detectors: AnomalyDetectors | None = None, insights: InsightRules | None = None) -> None:
        self.clients = clients
        self.now = now
        self.detectors = detectors      # ANOMALY_DETECTION_BAND alarms (None: skipped)
        self.insights = insights        # INSIGHT_RULE_METRIC alarms (None: skipped)
        self.alarm_history = history or AlarmHistory(now)
        self._alarms: dict[tuple[str, str], Tracked] = {}
        self._refused: set[tuple[str, str]] = set()
        self._history: list[dict[str, Any]] = []
        self._lock = threading.Lock()   # one evaluation at a time

    def states(self) -> list[dict[str, Any]]:
        return [{"region": r, "alarm": n, "state": t.state} for (r, n), t in sorted(self._alarms.items())]

    def history(self) -> list[dict[str, Any]]:
        return list(self._history)

    def evaluate(self, regions: Iterable[str]) -> list[dict[str, Any]]:
        """Evaluate every metric alarm of ``regions`` (in sorted order); returns the state changes made."""
        changes: list[dict[str, Any]] = []
        with self._lock:
            for region in sorted(regions):
                changes += self._evaluate_region(region)
        return changes

    def _evaluate_region(self, region: str) -> list[dict[str, Any]]:
        cw = self.clients.client("cloudwatch", region)
        alarms = [a for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
                  for a in page.get("MetricAlarms", ())]
        seen = {(region, a["AlarmName"]) for a in alarms}
        for key in [k for k in self._alarms if k[0] == region and k not in seen]:
            del self._alarms[key]
        changes = []
        now = self.now()
        for alarm in alarms:
            key = (region, alarm["AlarmName"])
            config = alarm.get("AlarmConfigurationUpdatedTimestamp")
            tracked = self._alarms.get(key)
            if tracked is None:   # new: AWS starts it in INSUFFICIENT_DATA (moto says OK)
                tracked = self._alarms[key] = Tracked(rules.INSUFFICIENT, config)
                self.alarm_history.silent(region, alarm["AlarmName"], rules.INSUFFICIENT)
                _set_state(cw, alarm["AlarmName"], rules.INSUFFICIENT, "Unchecked: Initial alarm creation")
            elif config != tracked.config:   # updated: AWS keeps the state
                tracked.config = config
                if alarm.get("StateValue") != tracked.state:
                    self.alarm_history.silent(region, alarm["AlarmName"], tracked.state)
                    _set_state(cw, alarm["AlarmName"], tracked.state, alarm.get("StateReason") or "")
            elif alarm.get("StateValue") != tracked.state:   # SetAlarmState from outside: actions fire
                changes.append(self._changed(region, alarm, None, tracked.state, alarm["StateValue"],
                                             alarm.get("StateReason") or "", now))
                self._record_actions(changes[-1])   # its StateUpdate: recorded by the SetAlarmState tap
                tracked.state = alarm["StateValue"]
                period = int(alarm.get("Period") or 60)
                tracked.hold_until = (now // period + 1) * period
                continue
            if now < tracked.hold_until:
                continue
            spec: rules.AlarmSpec | None = None
            try:
                if alarm.get("Metrics"):
                    result, data = self._metric_math(region, alarm, tracked.state, now)
                else:
                    spec = rules.AlarmSpec.from_describe(alarm)
                    starts = spec.period_starts(now)
                    values = [_datapoint(cw, spec, start) for start in starts]
                    result = rules.evaluate(spec, values, tracked.state, starts)
                    data = result.reason_data(spec, now)
            except ValueError as exc:
                if key not in self._refused:
                    self._refused.add(key)
                    log.warning("alarm %s not evaluated: %s", alarm["AlarmName"], exc)
                continue
            if result.state != tracked.state:
                # notify first, so that whoever sees the new state finds the message in the inbox
                changes.append(self._changed(region, alarm, spec, tracked.state, result.state, result.reason, now))
                _set_state(cw, alarm["AlarmName"], result.state, result.reason, data)
                self._record_actions(changes[-1])   # after the StateUpdate (SetAlarmState's tap), as AWS orders them
                tracked.state = result.state
        return changes

    def _metric_math(self, region: str, alarm: Mapping[str, Any], current: str,
                     now: float) -> tuple[Evaluation, dict[str, Any]]:
        """(evaluation, StateReasonData) of a band or Contributor Insights alarm; ValueError: neither."""
        if alarm.get("ThresholdMetricId"):
            band_spec = anomaly.AnomalyAlarmSpec.from_describe(alarm)
            if self.detectors is None:
                raise ValueError("anomaly detection alarms are not evaluated here")
            starts = band_spec.period_starts(now)
            history, bands = self.detectors.bands(region, band_spec.namespace, band_spec.metric, band_spec.dimensions,
                                                  band_spec.stat, band_spec.period, starts, band_spec.width,
                                                  band_spec.unit)
            values = [history.get(s) for s in starts]
            result = anomaly.evaluate_anomaly(band_spec, values, bands, current, starts)
            return result, anomaly.anomaly_reason_data(band_spec, result, bands, starts, now)
        insight_spec = anomaly.InsightAlarmSpec.from_describe(alarm)
        if self.insights is None:
            raise ValueError("INSIGHT_RULE_METRIC alarms are not evaluated here")
        starts = insight_spec.period_starts(now)
        values = [self.insights.metric(region, insight_spec.rule, insight_spec.metric, s, insight_spec.period)
                  for s in starts]
        result = anomaly.evaluate_insight(insight_spec, values, current, starts)
        return result, anomaly.insight_reason_data(insight_spec, result, now)

    def _changed(self, region: str, alarm: Mapping[str, Any], spec: rules.AlarmSpec | None, old: str, new: str,
                 reason: str, now: float) -> dict[str, Any]:
        """Record a state change and publish the alarm JSON to the topics of the new state's actions."""
        change: dict[str, Any] = {"region": region, "alarm": alarm["AlarmName"], "old": old, "new": new,
                                  "reason": reason, "time": now, "notified": []}
        self._history.append(change)
        del self._history[:-HISTORY_LIMIT]
        if spec is None and not alarm.get("Metrics"):
            try:
                spec = rules.AlarmSpec.from_describe(alarm)
            except ValueError:
                return change
        actions = {rules.ALARM: "AlarmActions", rules.OK: "OKActions",
                   rules.INSUFFICIENT: "InsufficientDataActions"}[new]
        if not alarm.get("ActionsEnabled", True):
            return change
        message = rules.notification(alarm, spec, old=old, new=new, reason=reason, when=now,
                                     account=self.clients.account(region), region=region)
        for arn in alarm.get(actions) or ():
            if not arn.startswith("arn:aws:sns:"):
                log.info("alarm %s: action %s is not an SNS topic; not run locally", alarm["AlarmName"], arn)
                continue
            try:
                self.clients.client("sns", arn.split(":")[3]).publish(
                    TopicArn=arn, Subject=rules.subject(message), Message=rules.sns_message(message),
                    MessageStructure="json")
                change["notified"].append(arn)
            except Exception as exc:  # AWS records a failed action in the history and goes on
                log.warning("alarm %s: publish to %s failed: %s", alarm["AlarmName"], arn, exc)
                change.setdefault("failed", []).append((arn, str(exc)[:200]))
        return change

    def _record_actions(self, change: Mapping[str, Any]) -> None:
        for arn in change["notified"]:
            self.alarm_history.action(change["region"], change["alarm"], arn)
        for arn, error in change.get("failed", ()):
            self.alarm_history.action(change["region"], change["alarm"], arn, error)


def _datapoint(cw: Any, spec: rules.AlarmSpec, start: int) -> float | None:
    """The alarm's statistic over one aligned period (one call per period: moto bins from the
    first datapoint, not from period boundaries)."""
    args: dict[str, Any] = {"Namespace": spec.namespace, "MetricName": spec.metric, "Period": spec.period,
                            "StartTime": datetime.fromtimestamp(start, tz=timezone.utc),
                            "EndTime": datetime.fromtimestamp(start + spec.period, tz=timezone.utc),
                            "Statistics": [spec.statistic],
                            "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions]}
    if spec.unit:
        args["Unit"] = spec.unit
    points = cw.get_metric_statistics(**args)["Datapoints"]
    return float(points[0][spec.statistic]) if points else None


def _set_state(cw: Any, name: str, state: str, reason: str, data: Mapping[str, Any] | None = None) -> None:
    args: dict[str, Any] = {"AlarmName": name, "StateValue": state, "StateReason": reason[:1023] or state}
    if data is not None:
        args["StateReasonData"] = json.dumps(data)
    cw.set_alarm_state(**args)
