"""CloudWatch Logs metric filters: PutLogEvents -> metric data (moto stores metric filters, never runs them).

:meth:`MetricFilters.tap_put_log_events` runs for every PutLogEvents moto accepted, whoever sent it
(the flow-log service or a user): each metric filter of the log group is evaluated with
:mod:`flowwatch.patterns` on the accepted events (moto's rejectedLogEventsInfo honoured), and the
result is put with PutMetricData. Per minute and metric transformation, matching events put their
value (``metricValue``: a literal or ``$field``, with dimensions and unit), and a minute with events
but no match puts ``defaultValue`` once, as CloudWatch does (:func:`metric_data`, pure).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from flowwatch.local.log_events import accepted
from flowwatch.local.loopback import Clients

log = logging.getLogger("flowwatch.local")

DATA_PER_CALL = 20      # PutMetricData: MetricData entries per call
VALUES_PER_DATUM = 150  # a MetricDatum's Values


class MetricFilters:
    """Evaluates the metric filters of a log group on new events. ``on_data``: called after metric
    data was put (the data plane wakes the alarm evaluator)."""

    def __init__(self, clients: Clients, on_data: Callable[[], None] = lambda: None) -> None:
        self.clients = clients
        self.on_data = on_data

    def tap_put_log_events(self, region: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> int:
        """Evaluate the log group's metric filters on the accepted events; returns datapoints put."""
        events = accepted(request, response)
        group = request.get("logGroupName")
        if not events or not group:
            return 0
        logs = self.clients.client("logs", region)
        filters = [f for page in logs.get_paginator("describe_metric_filters").paginate(logGroupName=group)
                   for f in page["metricFilters"] if f.get("logGroupName", group) == group]
        put = 0
        for mf in filters:
            put += self._metric_filter(region, mf, events)
        if put:
            self.on_data()
        return put

    def _metric_filter(self, region: str, mf: Mapping[str, Any], events: list[Mapping[str, Any]]) -> int:
        from flowwatch.patterns import compile_pattern

        try:
            pattern = compile_pattern(mf.get("filterPattern") or "")
            per_transformation = [(tr, metric_data(pattern, tr, events))
                                  for tr in mf.get("metricTransformations") or ()]
        except ValueError as exc:
            log.warning("metric filter %s skipped: %s", mf.get("filterName"), exc)
            return 0
        cw = self.clients.client("cloudwatch", region)
        put = 0
        for tr, data in per_transformation:
            for i in range(0, len(data), DATA_PER_CALL):
                cw.put_metric_data(Namespace=tr["metricNamespace"], MetricData=data[i:i + DATA_PER_CALL])
            put += len(data)
        return put


def metric_data(pattern: Any, tr: Mapping[str, Any], events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """MetricData of one metric transformation for a batch of events, per minute: the values of the
    matching events (by dimensions and unit), or ``defaultValue`` once for a minute with events but
    no match. ``pattern``: a compiled :mod:`flowwatch.patterns` pattern."""
    by_minute: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_minute[int(event["timestamp"]) // 60000 * 60].append(event)
    data: list[dict[str, Any]] = []
    for minute, minute_events in sorted(by_minute.items()):
        series: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        default: dict[str, Any] | None = None
        for event in minute_events:
            got = pattern.metric(event["message"], tr)
            if got is None:
                continue
            if got.get("default"):
                default = got
                continue
            dims = tuple(sorted((got.get("dimensions") or {}).items()))
            series[(dims, got.get("unit"))].append(float(got["value"]))
        if not series and default is not None:
            series[((), default.get("unit"))].append(float(default["value"]))
        for (dims, unit), values in series.items():
            for i in range(0, len(values), VALUES_PER_DATUM):
                datum: dict[str, Any] = {"MetricName": tr["metricName"], "Values": values[i:i + VALUES_PER_DATUM],
                                         "Timestamp": datetime.fromtimestamp(minute, tz=timezone.utc)}
                if dims:
                    datum["Dimensions"] = [{"Name": k, "Value": v} for k, v in dims]
                if unit:
                    datum["Unit"] = unit
                data.append(datum)
    return data


# ---- TestMetricFilter (moto: not implemented) and DescribeLogGroups' metricFilterCount -----------

TEST_MESSAGES = 50   # TestMetricFilter: logEventMessages holds 1 to 50 messages


def serve_test_metric_filter(region: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """TestMetricFilter, as the API reference and the AWS CLI's example shape it: ``{"matches":
    [{"eventNumber", "eventMessage", "extractedValues"}]}`` for the messages the pattern matches
    (``Pattern.test_metric_filter``: numbered from 1, ``$name``/``$1`` fields); an invalid pattern is
    InvalidParameterException with AWS's text (``PatternError.aws_message``)."""
    from flowwatch.local.api import ServiceError, required
    from flowwatch.patterns import PatternError, compile_pattern

    text = request.get("filterPattern")
    if text is None:
        required(request, "filterPattern")
    messages = required(request, "logEventMessages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= TEST_MESSAGES:
        raise ServiceError("InvalidParameterException", "1 validation error detected: Value at 'logEventMessages' "
                           f"failed to satisfy constraint: Member must have length between 1 and {TEST_MESSAGES}")
    try:
        pattern = compile_pattern(str(text))
    except PatternError as exc:
        raise ServiceError("InvalidParameterException", exc.aws_message) from None
    return {"matches": pattern.test_metric_filter([str(m) for m in messages])}


def complete_describe_log_groups(clients: Clients, region: str, body: bytes) -> bytes:
    """DescribeLogGroups with the real ``metricFilterCount`` of each group (moto answers 0)."""
    import json

    answer = json.loads(body)
    logs = clients.client("logs", region)
    for group in answer.get("logGroups") or ():
        name = group.get("logGroupName")
        group["metricFilterCount"] = sum(
            1 for page in logs.get_paginator("describe_metric_filters").paginate(logGroupName=name)
            for f in page["metricFilters"] if f.get("logGroupName", name) == name)
    return json.dumps(answer).encode("utf-8")
