"""GetMetricData with the expressions the local data plane computes: ``ANOMALY_DETECTION_BAND(m, w)`` and
``INSIGHT_RULE_METRIC('rule', 'Metric')`` (moto computes neither; dashboards and ``flowwatch watch`` read them).

A request whose queries hold no such expression goes to moto unchanged (through ``moto_clients``) and
its answer comes back as moto gave it. Otherwise the other queries (MetricStat ones, and whatever else
moto makes of the rest) go to moto in one call, and the data plane adds its own results, every result
in the order of the request's queries, those with ``ReturnData: false`` left out:

* ``ANOMALY_DETECTION_BAND(m1, w)``: the band of each aligned period of ``m1``'s MetricStat Period in
  ``[StartTime, EndTime)``, from :meth:`flowwatch.local.anomaly_service.AnomalyDetectors.bands` (the
  alarm evaluator's model and history). A band is two time series; the answer holds TWO results with
  the expression's Id, the upper bound first: Labels ``<label> Upper`` and ``<label> Lower``, where
  ``<label>`` is the query's Label or ``<MetricName> (expected)`` (the Label flowwatch's alarms give
  it). That pairing is flowwatch's reading (the API reference does not show a band result). Periods
  still in training (no band) have no datapoint.
* ``INSIGHT_RULE_METRIC(rule, metric)``: one result, a datapoint per period (the query's Period,
  required) in which the rule matched an event (:meth:`flowwatch.local.insight_rules.InsightRules.metric`);
  Label: the query's, or the expression.

Datapoints are ordered by ``ScanBy`` (``TimestampDescending``, AWS's default, or ``TimestampAscending``);
StatusCode ``Complete``. At most :data:`MAX_PERIODS` periods per expression (ValidationError beyond:
AWS's own limit is 100,800 datapoints per call).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flowwatch.local.anomaly import _BAND_RE, _INSIGHT_RE, DEFAULT_WIDTH
from flowwatch.local.anomaly_service import AnomalyDetectors
from flowwatch.local.api import ServiceError
from flowwatch.local.insight_rules import InsightRules, wire
from flowwatch.local.loopback import Clients

MAX_PERIODS = 10_080


def _epoch(value: Any, name: str) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise ServiceError("ValidationError", f"The parameter {name} is required and must be a timestamp.")


def computed(query: Mapping[str, Any]) -> bool:
    """Whether the data plane computes this query (a band or a Contributor Insights expression)."""
    expression = query.get("Expression") or ""
    return bool(_BAND_RE.match(expression) or _INSIGHT_RE.match(expression))


class MetricData:
    """Serves GetMetricData (see the module docstring). ``moto``: clients whose requests go to moto unchanged."""

    def __init__(self, moto: Clients, detectors: AnomalyDetectors, insights: InsightRules) -> None:
        self.moto = moto
        self.detectors = detectors
        self.insights = insights

    def _moto(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            answer = self.moto.client("cloudwatch", region).get_metric_data(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ServiceError(error.get("Code") or "InternalFailure", error.get("Message") or str(exc),
                               int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)) from None
        answer.pop("ResponseMetadata", None)
        return dict(wire(answer))

    def get_metric_data(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        queries = list(request.get("MetricDataQueries") or ())
        if not any(computed(q) for q in queries):
            return self._moto(region, request)
        start, end = _epoch(request.get("StartTime"), "StartTime"), _epoch(request.get("EndTime"), "EndTime")
        if end <= start:
            raise ServiceError("ValidationError", "The parameter StartTime must be less than the parameter EndTime.")
        descending = (request.get("ScanBy") or "TimestampDescending") == "TimestampDescending"
        others = [q for q in queries if not computed(q) and not self._aligned(q)]
        from_moto: dict[str, list[dict[str, Any]]] = {}
        messages: list[Any] = []
        if any(q.get("ReturnData", True) for q in others):
            answer = self._moto(region, {**{k: v for k, v in request.items() if k != "NextToken"},
                                         "MetricDataQueries": others})
            for r in answer.get("MetricDataResults") or ():
                from_moto.setdefault(r["Id"], []).append(r)
            messages = list(answer.get("Messages") or ())
        by_id = {q.get("Id"): q for q in queries}
        results: list[dict[str, Any]] = []
        for q in queries:
            if q.get("ReturnData", True) is False:
                continue
            if self._aligned(q):
                results.append(self._metric(region, q, start, end, descending))
                continue
            if not computed(q):
                results += from_moto.get(q.get("Id"), [])
                continue
            expression = q["Expression"]
            band = _BAND_RE.match(expression)
            if band:
                results += self._band(region, q, band.group(1), float(band.group(2) or DEFAULT_WIDTH), by_id,
                                      start, end, descending)
            else:
                results.append(self._insight(region, q, start, end, descending))
        return {"MetricDataResults": results, "Messages": messages}

    @staticmethod
    def _aligned(q: Mapping[str, Any]) -> bool:
        from flowwatch.local.anomaly import BASIC_STATS

        stat = q.get("MetricStat") or {}
        return bool(stat) and stat.get("Stat") in BASIC_STATS and not q.get("AccountId")

    def _metric(self, region: str, q: Mapping[str, Any], start: float, end: float, descending: bool) -> dict[str, Any]:
        stat = q["MetricStat"]
        metric = stat["Metric"]
        period = int(stat.get("Period") or 60)
        starts = self._starts(start, end, period)
        dims = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ())
        points: list[tuple[int, float]] = []
        if starts:
            history = self.detectors.history(region, metric["Namespace"], metric["MetricName"], dims, stat["Stat"],
                                             period, starts[-1] + period, stat.get("Unit"), since=starts[0])
            points = [(s, history[s]) for s in starts if s in history]
        if descending:
            points.reverse()
        return {"Id": q["Id"], "Label": q.get("Label") or metric["MetricName"],
                "Timestamps": [float(s) for s, _ in points], "Values": [v for _, v in points], "StatusCode": "Complete"}

    @staticmethod
    def _starts(start: float, end: float, period: int) -> list[int]:
        first = int(start) // period * period
        if first < start:
            first += period
        starts = list(range(first, int(end), period))
        if len(starts) > MAX_PERIODS:
            raise ServiceError("ValidationError", f"The expression would return {len(starts)} datapoints per "
                               f"series; the local AWS returns at most {MAX_PERIODS}. Use a longer period.")
        return starts

    def _band(self, region: str, q: Mapping[str, Any], metric_id: str, width: float, by_id: Mapping[Any, Any],
              start: float, end: float, descending: bool) -> list[dict[str, Any]]:
        stat = (by_id.get(metric_id) or {}).get("MetricStat")
        if not stat:
            raise ServiceError("ValidationError", f"ANOMALY_DETECTION_BAND({metric_id}): {metric_id} is not a "
                               "MetricStat query of this request.")
        metric = stat["Metric"]
        period = int(stat.get("Period") or 60)
        starts = self._starts(start, end, period)
        label = q.get("Label") or f"{metric['MetricName']} (expected)"
        upper: dict[str, Any] = {"Id": q["Id"], "Label": f"{label} Upper", "Timestamps": [], "Values": [],
                                 "StatusCode": "Complete"}
        lower: dict[str, Any] = {"Id": q["Id"], "Label": f"{label} Lower", "Timestamps": [], "Values": [],
                                 "StatusCode": "Complete"}
        if starts:
            dims = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ())
            _, bands = self.detectors.bands(region, metric["Namespace"], metric["MetricName"], dims, stat["Stat"],
                                            period, starts, width, stat.get("Unit"))
            pairs = [(s, b) for s, b in zip(starts, bands) if b is not None]
            if descending:
                pairs.reverse()
            for s, b in pairs:
                upper["Timestamps"].append(float(s))
                upper["Values"].append(b.upper)
                lower["Timestamps"].append(float(s))
                lower["Values"].append(b.lower)
        return [upper, lower]

    def _insight(self, region: str, q: Mapping[str, Any], start: float, end: float,
                 descending: bool) -> dict[str, Any]:
        m = _INSIGHT_RE.match(q["Expression"])
        assert m is not None
        rule, metric = m.group(1) or m.group(2), m.group(3) or m.group(4) or m.group(5)
        period = q.get("Period")
        if not isinstance(period, int) or period < 60 or period % 60:
            raise ServiceError("ValidationError", "An INSIGHT_RULE_METRIC query needs a Period that is a multiple "
                               "of 60.")
        from flowwatch.local.contributors import METRICS

        if metric not in METRICS:
            raise ServiceError("ValidationError", f"INSIGHT_RULE_METRIC metric {metric!r} is not one of "
                               f"{', '.join(METRICS)}.")
        points = [(s, self.insights.metric(region, rule, metric, s, period)) for s in self._starts(start, end, period)]
        kept = [(s, v) for s, v in points if v is not None]
        if descending:
            kept.reverse()
        return {"Id": q["Id"], "Label": q.get("Label") or q["Expression"], "Timestamps": [float(s) for s, _ in kept],
                "Values": [v for _, v in kept], "StatusCode": "Complete"}
