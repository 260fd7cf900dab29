"""CloudWatch anomaly detection, ANOMALY_DETECTION_BAND and INSIGHT_RULE_METRIC alarms, as pure
functions (no AWS call, no clock).

moto 5.2.5 implements none of PutAnomalyDetector, DescribeAnomalyDetectors, DeleteAnomalyDetector
(NotImplementedError) and evaluates no alarm. The local data plane uses this module:

* :class:`DetectorStore` answers the three detector APIs (validation, errors, response shapes);
  the data plane keeps one per region and calls :meth:`DetectorStore.update_state` after training.
* :func:`band` is the model: the expected range of a metric for one period, from its history.
* :class:`AnomalyAlarmSpec` / :class:`InsightAlarmSpec` read a MetricAlarm of DescribeAlarms that
  uses ``ANOMALY_DETECTION_BAND`` / ``INSIGHT_RULE_METRIC``; :func:`evaluate_anomaly` and
  :func:`evaluate_insight` give its new state with the missing-data and M-of-N rules of
  :func:`flowwatch.local.alarms.evaluate` (the same code), AWS's StateReason text and
  StateReasonData.

Usage (what the alarm evaluator does for a band alarm)::

    spec = AnomalyAlarmSpec.from_describe(alarm)                  # ValueError: not evaluated locally
    starts = spec.period_starts(now)
    values = [datapoint(spec, s) for s in starts]                 # the metric, None = missing
    history = [(s, v), ...]                                       # the metric over the training window
    bands = [band(history, s, spec.period, spec.width, config) for s in starts]
    result = evaluate_anomaly(spec, values, bands, current_state, starts)
    set_alarm_state(result.state, result.reason, anomaly_reason_data(spec, result, bands, starts, now))

The model (CloudWatch's is not public: "CloudWatch applies statistical and machine learning
algorithms", "The algorithm trains on up to two weeks of metric data", "accounts for the
seasonality and trend changes"; CloudWatch User Guide, "Using CloudWatch anomaly detection"
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Anomaly_Detection.html).
flowwatch's is deterministic and explainable, chosen so that a spike stands out of a baseline
of a few minutes and one outlier in training does not widen the band:

1. Training values: the metric's datapoints of the periods strictly before the evaluated one
   and at most :data:`TRAINING_SECONDS` (14 days) older, minus the periods that overlap an
   ``ExcludedTimeRanges`` entry of the detector's Configuration. Missing periods are left out,
   not imputed: a metric filter with a default value already reports 0 in every period in which
   the log group receives events, so a gap means no log traffic at all, which says nothing
   about the metric's usual level (and imputing 0 would drag a band for bytes towards 0).
2. Fewer than :data:`MIN_TRAINING` (12) training values: no band (``None``); an alarm whose
   evaluation range has no band is INSUFFICIENT_DATA whatever TreatMissingData says, and the
   detector's StateValue is PENDING_TRAINING.
3. Daily seasonality: when the training values span at least :data:`SEASONAL_DAYS` (3) days and
   at least MIN_TRAINING of them fall in the same hour of day as the evaluated period (in the
   Configuration's ``MetricTimezone``, default UTC), only those are used; else all of them.
   Trend is not modelled: a median over at most two weeks follows a lasting change with a lag.
4. center = median; spread = 1.4826 * MAD (median absolute deviation: the standard deviation of
   normal data, robust to outliers). When more than half the values are equal MAD is 0; then
   spread = 1.2533 * mean absolute deviation from the median (also sigma for normal data), and
   in every case at least max(:data:`RELATIVE_FLOOR` * |center|, :data:`ABSOLUTE_FLOOR`) =
   max(5 % of the center, 0.5): a flat baseline still has a band (flat at 0, width 2: [0, 1],
   so one event per period is normal and two are an anomaly; flat at 1000 bytes: [900, 1100]).
5. Band of width w (``ANOMALY_DETECTION_BAND(m1, w)``, w defaults to 2):
   [center - w * spread, center + w * spread]; when every training value is >= 0 (counts,
   bytes) the lower bound is clipped at 0, as CloudWatch does: "a band for a statistic that
   can't be negative will never extend below zero".

Alarm texts, from alarms CloudWatch sent (EventBridge samples in the CloudWatch User Guide,
"Alarm events and EventBridge", and published SNS messages):
``Thresholds Crossed: 1 out of the last 1 datapoints [0.0 (03/10/19 15:58:00)] was less than the
lower thresholds [0.0205...] or greater than the upper thresholds [0.3006...] (minimum 1 datapoint
for OK -> ALARM transition).``, ``... were greater than the upper thresholds [a, b] ...``,
``... was not less than the lower thresholds [..] or not greater than the upper thresholds [..]
(minimum 1 datapoint for ALARM -> OK transition).``; StateReasonData ``{"version": "1.0",
"queryDate", "startDate", "period", "recentDatapoints", "recentLowerThresholds",
"recentUpperThresholds"}`` (one-sided alarms carry only their side, and their
``evaluatedDatapoints`` a ``threshold``). A metric-math alarm's reason is the threshold alarm's
``Threshold Crossed: ...`` and its StateReasonData has no ``statistic``.

Detector APIs: API Reference, PutAnomalyDetector, DescribeAnomalyDetectors, DeleteAnomalyDetector,
AnomalyDetector, AnomalyDetectorConfiguration (``ExcludedTimeRanges``: "as many as 10 time
ranges"), SingleMetricAnomalyDetector; the error codes are botocore's service model's
(InvalidParameterValue, MissingParameter, InvalidParameterCombination, ResourceNotFoundException,
InvalidNextToken). The exact messages are not documented: flowwatch's say what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flowwatch.local.alarms as rules
from flowwatch.local.alarms import ALARM, INSUFFICIENT, OK, Evaluation

__all__ = [
    "MIN_TRAINING",
    "AnomalyAlarmSpec",
    "Band",
    "Detector",
    "DetectorError",
    "DetectorStore",
    "InsightAlarmSpec",
    "TrainingConfig",
    "anomaly_reason_data",
    "band",
    "evaluate_anomaly",
    "evaluate_insight",
    "insight_reason_data",
    "training_values",
]

TRAINING_SECONDS = 14 * 86400     # "trains on up to two weeks of metric data"
MIN_TRAINING = 12                 # training values before any band exists
SEASONAL_DAYS = 3                 # history span (days) before same-hour-of-day values are used
MAD_SCALE = 1.4826                # MAD -> sigma for normal data
MEAN_AD_SCALE = 1.2533            # mean absolute deviation -> sigma for normal data (sqrt(pi/2))
RELATIVE_FLOOR = 0.05
ABSOLUTE_FLOOR = 0.5
DEFAULT_WIDTH = 2.0               # ANOMALY_DETECTION_BAND(m1) = ANOMALY_DETECTION_BAND(m1, 2)
MAX_EXCLUDED_RANGES = 10
BAND_COMPARISONS = {
    "LessThanLowerOrGreaterThanUpperThreshold": (True, True),
    "LessThanLowerThreshold": (True, False),
    "GreaterThanUpperThreshold": (False, True),
}
BASIC_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
PENDING, TRAINED, TRAINED_INSUFFICIENT = "PENDING_TRAINING", "TRAINED", "TRAINED_INSUFFICIENT_DATA"

_BAND_RE = re.compile(r"\s*ANOMALY_DETECTION_BAND\s*\(\s*([a-z][A-Za-z0-9_]*)\s*(?:,\s*([0-9]+(?:\.[0-9]+)?)\s*)?\)\s*\Z")
_INSIGHT_RE = re.compile(r"""\s*INSIGHT_RULE_METRIC\s*\(\s*(?:'([^']{1,128})'|"([^"]{1,128})")\s*,\s*"""
                         r"""(?:'([A-Za-z]{1,32})'|"([A-Za-z]{1,32})"|([A-Za-z]{1,32}))\s*\)\s*\Z""")


# ---- the model ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Band:
    """The expected range of one period, and what it was computed from."""

    lower: float
    upper: float
    center: float
    spread: float
    training: int          # number of training values used
    seasonal: bool         # same-hour-of-day values only


@dataclass(frozen=True)
class TrainingConfig:
    """The detector's Configuration as the model uses it."""

    excluded: tuple[tuple[float, float], ...] = ()     # [start, end) epoch seconds
    timezone: str = "UTC"

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any] | None) -> TrainingConfig:
        configuration = configuration or {}
        ranges = tuple((_epoch(r["StartTime"]), _epoch(r["EndTime"]))
                       for r in configuration.get("ExcludedTimeRanges") or ())
        return cls(excluded=ranges, timezone=configuration.get("MetricTimezone") or "UTC")


def training_values(history: Iterable[tuple[int, float | None]], start: int, period: int,
                    config: TrainingConfig = TrainingConfig()) -> list[tuple[int, float]]:
    """The (period start, value) pairs that train the band of the period beginning at ``start``."""
    oldest = start - TRAINING_SECONDS
    out = []
    for t, v in history:
        if v is None or not oldest <= t < start or not math.isfinite(v):
            continue
        if any(t < end and t + period > s for s, end in config.excluded):
            continue
        out.append((t, v))
    out.sort()
    return out


def band(history: Iterable[tuple[int, float | None]], start: int, period: int, width: float = DEFAULT_WIDTH,
         config: TrainingConfig = TrainingConfig()) -> Band | None:
    """The band of the period beginning at ``start`` (epoch s) from the metric's ``history``
    ((period start, value) pairs; None = missing); None while training (see the module docstring)."""
    points = training_values(history, start, period, config)
    if len(points) < MIN_TRAINING:
        return None
    values = [v for _, v in points]
    seasonal = False
    if start - points[0][0] >= SEASONAL_DAYS * 86400:
        zone = _zone(config.timezone)
        hour = datetime.fromtimestamp(start, tz=zone).hour
        same = [v for t, v in points if datetime.fromtimestamp(t, tz=zone).hour == hour]
        if len(same) >= MIN_TRAINING:
            values, seasonal = same, True
    center = statistics.median(values)
    mad = statistics.median(abs(v - center) for v in values)
    spread = MAD_SCALE * mad if mad > 0 else MEAN_AD_SCALE * math.fsum(abs(v - center) for v in values) / len(values)
    spread = max(spread, RELATIVE_FLOOR * abs(center), ABSOLUTE_FLOOR)
    lower, upper = center - width * spread, center + width * spread
    if min(values) >= 0:
        lower = max(lower, 0.0)
    return Band(lower=lower, upper=upper, center=center, spread=spread, training=len(values), seasonal=seasonal)


def _zone(name: str) -> Any:
    if name in ("UTC", ""):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


# ---- alarms ---------------------------------------------------------------------------------

def _queries(alarm: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    metrics = alarm.get("Metrics")
    if not metrics:
        raise ValueError("not a metric-math alarm (no Metrics)")
    return list(metrics)


def _common(alarm: Mapping[str, Any]) -> dict[str, Any]:
    n = int(alarm.get("EvaluationPeriods") or 1)
    treat = alarm.get("TreatMissingData") or "missing"
    return {"name": alarm["AlarmName"], "evaluation_periods": n,
            "datapoints_to_alarm": int(alarm.get("DatapointsToAlarm") or n),
            "treat_missing_data": treat if treat in rules.TREATMENTS else "missing"}


@dataclass(frozen=True)
class AnomalyAlarmSpec:
    """What evaluation needs from a MetricAlarm on ``ANOMALY_DETECTION_BAND(m1, w)``."""

    name: str
    namespace: str
    metric: str
    stat: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    width: float = DEFAULT_WIDTH
    treat_missing_data: str = "missing"
    dimensions: tuple[tuple[str, str], ...] = ()
    unit: str | None = None
    metric_id: str = "m1"
    band_id: str = "ad1"

    @classmethod
    def from_describe(cls, alarm: Mapping[str, Any]) -> AnomalyAlarmSpec:
        """From one ``MetricAlarms`` item; ValueError when it is not a band alarm flowwatch evaluates."""
        queries = _queries(alarm)
        band_id = alarm.get("ThresholdMetricId")
        if not band_id:
            raise ValueError("no ThresholdMetricId: not an anomaly detection alarm")
        comparison = alarm.get("ComparisonOperator", "")
        if comparison not in BAND_COMPARISONS:
            raise ValueError(f"comparison {comparison!r} is not an anomaly detection comparison")
        by_id = {q.get("Id"): q for q in queries}
        expression = (by_id.get(band_id) or {}).get("Expression") or ""
        m = _BAND_RE.match(expression)
        if not m:
            raise ValueError(f"threshold expression {expression[:80]!r} is not ANOMALY_DETECTION_BAND(id[, width])")
        metric_id, width_text = m.group(1), m.group(2)
        width = float(width_text) if width_text else DEFAULT_WIDTH
        if not width > 0:
            raise ValueError("the band width must be greater than 0")
        stat_query = by_id.get(metric_id) or {}
        stat = stat_query.get("MetricStat")
        if not stat:
            raise ValueError(f"ANOMALY_DETECTION_BAND({metric_id}) does not name a MetricStat of the alarm")
        if stat.get("Stat") not in BASIC_STATS:
            raise ValueError(f"statistic {stat.get('Stat')!r} is not evaluated locally")
        metric = stat["Metric"]
        return cls(namespace=metric["Namespace"], metric=metric["MetricName"], stat=stat["Stat"],
                   period=int(stat.get("Period") or 60), comparison=comparison, width=width,
                   dimensions=tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ()),
                   unit=stat.get("Unit"), metric_id=metric_id, band_id=band_id, **_common(alarm))

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + rules.EXTRA_PERIODS

    def period_starts(self, now: float) -> list[int]:
        newest = int(now) // self.period * self.period
        return [newest - i * self.period for i in reversed(range(self.evaluation_range))]

    def outside(self, value: float, b: Band) -> bool:
        low, high = BAND_COMPARISONS[self.comparison]
        return (low and value < b.lower) or (high and value > b.upper)


@dataclass(frozen=True)
class _BandRules:
    """An AnomalyAlarmSpec with its bands, as :func:`flowwatch.local.alarms.evaluate` takes it."""

    spec: AnomalyAlarmSpec
    bands: Mapping[int, Band]

    @property
    def evaluation_periods(self) -> int:
        return self.spec.evaluation_periods

    @property
    def datapoints_to_alarm(self) -> int:
        return self.spec.datapoints_to_alarm

    @property
    def treat_missing_data(self) -> str:
        return self.spec.treat_missing_data

    def breaches_at(self, start: int, value: float) -> bool:
        return self.spec.outside(value, self.bands[start])

    def crossed(self, used: Sequence[tuple[int, float]], breaching: int, state: str) -> str:
        newest_first = list(reversed(used))
        points = ", ".join(f"{_num(v)} ({_short(t)})" for t, v in newest_first)
        counted = breaching if state == ALARM else len(used) - breaching
        verb = "was" if counted == 1 else "were"
        low, high = BAND_COMPARISONS[self.spec.comparison]
        lowers = ", ".join(_num(self.bands[t].lower) for t, _ in newest_first)
        uppers = ", ".join(_num(self.bands[t].upper) for t, _ in newest_first)
        neg = "" if state == ALARM else "not "
        parts = []
        if low:
            parts.append(f"{neg}less than the lower thresholds [{lowers}]")
        if high:
            parts.append(f"{neg}greater than the upper thresholds [{uppers}]")
        n, m = self.spec.evaluation_periods, self.spec.datapoints_to_alarm
        need = m if state == ALARM else n - m + 1
        transition = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
        return (f"Thresholds Crossed: {counted} out of the last {len(used)} datapoints [{points}] {verb} "
                f"{' or '.join(parts)} (minimum {need} datapoint{'s' if need != 1 else ''} for {transition} "
                "transition).")


def evaluate_anomaly(spec: AnomalyAlarmSpec, values: Sequence[float | None], bands: Sequence[Band | None],
                     current: str, starts: Sequence[int]) -> Evaluation:
    """The new state of a band alarm from its evaluation range (oldest first): the metric's values
    and each period's band (None while training). A period with a value but no band counts as
    missing; a range with no band at all is INSUFFICIENT_DATA (the model is still training)."""
    if all(b is None for b in bands):
        return Evaluation(INSUFFICIENT, "Insufficient Data: the anomaly detection model has fewer than "
                                        f"{MIN_TRAINING} training datapoints (still training).")
    by_start = {t: b for t, b in zip(starts, bands) if b is not None}
    usable = [v if t in by_start else None for t, v in zip(starts, values)]
    return rules.evaluate(_BandRules(spec, by_start), usable, current, starts)


def anomaly_reason_data(spec: AnomalyAlarmSpec, result: Evaluation, bands: Sequence[Band | None],
                        starts: Sequence[int], now: float) -> dict[str, Any]:
    """``StateReasonData`` as CloudWatch writes it for an anomaly detection alarm."""
    by_start = dict(zip(starts, bands))
    low, high = BAND_COMPARISONS[spec.comparison]
    data: dict[str, Any] = {"version": "1.0", "queryDate": rules._iso(now)}
    if result.used:
        data["startDate"] = rules._iso(result.used[0][0])
    data["period"] = spec.period
    data["recentDatapoints"] = [v for _, v in result.used]
    used_bands = [by_start[t] for t, _ in result.used]
    if low:
        data["recentLowerThresholds"] = [b.lower for b in used_bands if b is not None]
    if high:
        data["recentUpperThresholds"] = [b.upper for b in used_bands if b is not None]
    if result.used and low != high:
        data["evaluatedDatapoints"] = [
            {"timestamp": rules._iso(t), "value": v, "threshold": (b.lower if low else b.upper)}
            for (t, v), b in reversed(list(zip(result.used, used_bands))) if b is not None]
    return data


@dataclass(frozen=True)
class InsightAlarmSpec:
    """What evaluation needs from a MetricAlarm on ``INSIGHT_RULE_METRIC('rule', 'Metric')``
    with a static threshold."""

    name: str
    rule: str
    metric: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"
    expression_id: str = "e1"

    @classmethod
    def from_describe(cls, alarm: Mapping[str, Any]) -> InsightAlarmSpec:
        from flowwatch.local.contributors import METRICS

        queries = _queries(alarm)
        returned = [q for q in queries if q.get("ReturnData", True)]
        query = returned[0] if len(returned) == 1 else (queries[0] if len(queries) == 1 else None)
        if query is None:
            raise ValueError("exactly one of the alarm's Metrics must return data")
        m = _INSIGHT_RE.match(query.get("Expression") or "")
        if not m:
            raise ValueError(f"expression {str(query.get('Expression'))[:80]!r} is not "
                             "INSIGHT_RULE_METRIC('rule', 'metric')")
        rule = m.group(1) or m.group(2)
        metric = m.group(3) or m.group(4) or m.group(5)
        if metric not in METRICS:
            raise ValueError(f"INSIGHT_RULE_METRIC metric {metric!r} is not one of {', '.join(METRICS)}")
        comparison = alarm.get("ComparisonOperator", "")
        if comparison not in rules.COMPARISONS:
            raise ValueError(f"comparison {comparison!r} is not a static-threshold comparison")
        period = int(query.get("Period") or alarm.get("Period") or 0)
        if period <= 0:
            raise ValueError("the INSIGHT_RULE_METRIC expression has no Period")
        return cls(rule=rule, metric=metric, period=period, threshold=float(alarm.get("Threshold", 0.0)),
                   comparison=comparison, expression_id=query.get("Id") or "e1", **_common(alarm))

    def as_threshold(self) -> rules.AlarmSpec:
        """The equivalent static-threshold rules (its reason text is the metric-math alarm's)."""
        return rules.AlarmSpec(name=self.name, namespace="", metric=f"INSIGHT_RULE_METRIC({self.rule}, {self.metric})",
                               statistic="Maximum", period=self.period, evaluation_periods=self.evaluation_periods,
                               datapoints_to_alarm=self.datapoints_to_alarm, threshold=self.threshold,
                               comparison=self.comparison, treat_missing_data=self.treat_missing_data)

    def period_starts(self, now: float) -> list[int]:
        return self.as_threshold().period_starts(now)


def evaluate_insight(spec: InsightAlarmSpec, values: Sequence[float | None], current: str,
                     starts: Sequence[int]) -> Evaluation:
    """The new state of an INSIGHT_RULE_METRIC alarm from the metric's value per period
    (``RuleSeries.metric``; None = no matched event in the period)."""
    return rules.evaluate(spec.as_threshold(), values, current, starts)


def insight_reason_data(spec: InsightAlarmSpec, result: Evaluation, now: float) -> dict[str, Any]:
    """``StateReasonData`` of a metric-math alarm: the threshold alarm's, without ``statistic``."""
    data = result.reason_data(spec.as_threshold(), now)
    data.pop("statistic", None)
    return data


# ---- the detector APIs ----------------------------------------------------------------------

class DetectorError(ValueError):
    """An error AWS would return: ``code`` (as in botocore's model) and ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message[:500])
        self.code, self.message, self.status = code, message[:500], status


_Key = tuple[str, str, tuple[tuple[str, str], ...], str]


@dataclass
class Detector:
    id: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    configuration: dict[str, Any] = field(default_factory=dict)
    characteristics: dict[str, Any] = field(default_factory=dict)
    state: str = PENDING

    @property
    def key(self) -> _Key:
        return (self.namespace, self.metric, self.dimensions, self.stat)

    def describe(self) -> dict[str, Any]:
        dims = [{"Name": n, "Value": v} for n, v in self.dimensions]
        item: dict[str, Any] = {
            "AnomalyDetectorId": self.id, "Namespace": self.namespace, "MetricName": self.metric,
            "Dimensions": dims, "Stat": self.stat,
            "Configuration": json.loads(json.dumps(self.configuration, default=str)), "StateValue": self.state,
            "SingleMetricAnomalyDetector": {"Namespace": self.namespace, "MetricName": self.metric,
                                            "Dimensions": dims, "Stat": self.stat},
        }
        if self.characteristics:
            item["MetricCharacteristics"] = dict(self.characteristics)
        return item

    @property
    def training(self) -> TrainingConfig:
        return TrainingConfig.from_configuration(self.configuration)


def _string(value: Any, name: str, maximum: int = 255) -> str:
    if not isinstance(value, str) or not value:
        raise DetectorError("MissingParameter", f"The parameter {name} is required.")
    if len(value) > maximum:
        raise DetectorError("InvalidParameterValue", f"The parameter {name} must be at most {maximum} characters.")
    return value


def _metric_of(request: Mapping[str, Any], *, required: bool = True) -> _Key | None:
    """(namespace, metric, dimensions, stat) from SingleMetricAnomalyDetector or the legacy
    top-level fields; InvalidParameterCombination when both are given."""
    legacy = [k for k in ("Namespace", "MetricName", "Dimensions", "Stat") if request.get(k) is not None]
    single = request.get("SingleMetricAnomalyDetector")
    if request.get("MetricMathAnomalyDetector") is not None:
        if single is not None or legacy:
            raise DetectorError("InvalidParameterCombination", "MetricMathAnomalyDetector cannot be used together "
                                "with SingleMetricAnomalyDetector or Namespace, MetricName, Dimensions and Stat.")
        raise DetectorError("InvalidParameterValue", "Metric math anomaly detectors are not evaluated by the "
                            "local AWS; use SingleMetricAnomalyDetector.")
    if single is not None and legacy:
        raise DetectorError("InvalidParameterCombination", "SingleMetricAnomalyDetector cannot be used together "
                            f"with {', '.join(legacy)}.")
    source = single if single is not None else request
    if single is None and not legacy:
        if not required:
            return None
        raise DetectorError("MissingParameter", "Specify SingleMetricAnomalyDetector (or Namespace, MetricName "
                            "and Stat).")
    namespace = _string(source.get("Namespace"), "Namespace")
    if namespace.startswith(":"):
        raise DetectorError("InvalidParameterValue", "The parameter Namespace must not start with ':'.")
    metric = _string(source.get("MetricName"), "MetricName")
    stat = _string(source.get("Stat"), "Stat", 50)
    if stat not in BASIC_STATS:
        raise DetectorError("InvalidParameterValue", f"The statistic {stat!r} is not evaluated by the local AWS "
                            f"(use one of {', '.join(BASIC_STATS)}).")
    raw_dims = source.get("Dimensions") or []
    if not isinstance(raw_dims, list) or len(raw_dims) > 30:
        raise DetectorError("InvalidParameterValue", "The parameter Dimensions must hold at most 30 dimensions.")
    dims = []
    for d in raw_dims:
        if not isinstance(d, Mapping):
            raise DetectorError("InvalidParameterValue", "Each dimension must have a Name and a Value.")
        dims.append((_string(d.get("Name"), "Dimensions.Name"), _string(d.get("Value"), "Dimensions.Value", 1024)))
    return (namespace, metric, tuple(sorted(dims)), stat)


def _configuration(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise DetectorError("InvalidParameterValue", "The parameter Configuration must be an object.")
    out: dict[str, Any] = {}
    ranges = raw.get("ExcludedTimeRanges") or []
    if not isinstance(ranges, list) or len(ranges) > MAX_EXCLUDED_RANGES:
        raise DetectorError("InvalidParameterValue", f"Configuration.ExcludedTimeRanges can hold at most "
                            f"{MAX_EXCLUDED_RANGES} time ranges.")
    clean = []
    for r in ranges:
        if not isinstance(r, Mapping) or r.get("StartTime") is None or r.get("EndTime") is None:
            raise DetectorError("MissingParameter", "Each excluded time range needs a StartTime and an EndTime.")
        start, end = _epoch(r["StartTime"]), _epoch(r["EndTime"])
        if end <= start:
            raise DetectorError("InvalidParameterValue", "In an excluded time range, StartTime must be before "
                                "EndTime.")
        clean.append({"StartTime": _when(start), "EndTime": _when(end)})
    if clean:
        out["ExcludedTimeRanges"] = clean
    tz = raw.get("MetricTimezone")
    if tz is not None:
        if not isinstance(tz, str) or len(tz) > 50 or (tz != "UTC" and not _valid_zone(tz)):
            raise DetectorError("InvalidParameterValue", f"The MetricTimezone {str(tz)[:50]!r} is not a tz "
                                "database time zone.")
        out["MetricTimezone"] = tz
    return out


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


class DetectorStore:
    """The anomaly detectors of one region (PutAnomalyDetector / DescribeAnomalyDetectors /
    DeleteAnomalyDetector). Ids are deterministic (a hash of the metric and statistic)."""

    def __init__(self) -> None:
        self._detectors: dict[_Key, Detector] = {}

    def put(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """PutAnomalyDetector: create, or replace the configuration of the same metric's detector."""
        key = _metric_of(request)
        assert key is not None
        configuration = _configuration(request.get("Configuration"))
        characteristics = dict(request.get("MetricCharacteristics") or {})
        detector = self._detectors.get(key)
        if detector is None:
            digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
            detector = self._detectors[key] = Detector(f"ad-{digest}", key[0], key[1], key[2], key[3])
        detector.configuration, detector.characteristics = configuration, characteristics
        return {"AnomalyDetectorId": detector.id}

    def describe(self, request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """DescribeAnomalyDetectors (filters, MaxResults up to 100, NextToken)."""
        request = request or {}
        ids = request.get("AnomalyDetectorIds")
        filters = [k for k in ("Namespace", "MetricName", "Dimensions", "AnomalyDetectorTypes") if request.get(k)]
        if ids and filters:
            raise DetectorError("InvalidParameterCombination", "AnomalyDetectorIds cannot be used together with "
                                f"{', '.join(filters)}.")
        if ids is not None and len(ids) > 50:
            raise DetectorError("InvalidParameterValue", "AnomalyDetectorIds can hold at most 50 identifiers.")
        limit = request.get("MaxResults", 100)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise DetectorError("InvalidParameterValue", "The parameter MaxResults must be between 1 and 100.")
        types = request.get("AnomalyDetectorTypes") or ["SINGLE_METRIC"]
        if any(t not in ("SINGLE_METRIC", "METRIC_MATH") for t in types):
            raise DetectorError("InvalidParameterValue", "AnomalyDetectorTypes holds SINGLE_METRIC or METRIC_MATH.")
        wanted_dims = {(d["Name"], d["Value"]) for d in request.get("Dimensions") or ()}
        found = []
        for d in sorted(self._detectors.values(), key=lambda d: d.id):
            if ids is not None and d.id not in ids:
                continue
            if "SINGLE_METRIC" not in types:
                continue
            if request.get("Namespace") and d.namespace != request["Namespace"]:
                continue
            if request.get("MetricName") and d.metric != request["MetricName"]:
                continue
            if wanted_dims and not wanted_dims <= set(d.dimensions):
                continue
            found.append(d)
        token = request.get("NextToken")
        offset = 0
        if token is not None:
            if not (isinstance(token, str) and token.isdigit() and int(token) <= len(found)):
                raise DetectorError("InvalidNextToken", "The NextToken is invalid.")
            offset = int(token)
        page = found[offset:offset + limit]
        response: dict[str, Any] = {"AnomalyDetectors": [d.describe() for d in page]}
        if offset + limit < len(found):
            response["NextToken"] = str(offset + limit)
        return response

    def delete(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteAnomalyDetector by AnomalyDetectorId or by metric; ResourceNotFoundException (404)."""
        detector_id = request.get("AnomalyDetectorId")
        if detector_id is not None:
            key = next((k for k, d in self._detectors.items() if d.id == detector_id), None)
        else:
            key = _metric_of(request)
        if key is None or key not in self._detectors:
            raise DetectorError("ResourceNotFoundException", "The anomaly detector does not exist.", 404)
        del self._detectors[key]
        return {}

    def find(self, namespace: str, metric: str, dimensions: Iterable[tuple[str, str]], stat: str) -> Detector | None:
        """The detector of a metric and statistic (an alarm's MetricStat), or None."""
        return self._detectors.get((namespace, metric, tuple(sorted(dimensions)), stat))

    def detectors(self) -> list[Detector]:
        return sorted(self._detectors.values(), key=lambda d: d.id)

    def update_state(self, detector: Detector, training: int) -> str:
        """Set StateValue from the number of training values the model has now: PENDING_TRAINING
        until MIN_TRAINING, then TRAINED; TRAINED_INSUFFICIENT_DATA when a trained model's
        window later falls below it."""
        if training >= MIN_TRAINING:
            detector.state = TRAINED
        elif detector.state != PENDING:
            detector.state = TRAINED_INSUFFICIENT
        return detector.state


# ---- helpers --------------------------------------------------------------------------------

def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    raise DetectorError("InvalidParameterValue", f"{str(value)[:40]!r} is not a timestamp.")


def _when(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def _num(v: float) -> str:
    return repr(float(v))


def _short(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%d/%m/%y %H:%M:%S")
