"""CloudWatch anomaly detectors on the local AWS: the detector APIs and the band of each period, from the
metric's own datapoints (moto 5.2.5 implements none of PutAnomalyDetector, DescribeAnomalyDetectors,
DeleteAnomalyDetector).

:class:`AnomalyDetectors` keeps one :class:`flowwatch.local.anomaly.DetectorStore` per region (the model,
validation, errors and response shapes are that module's) and serves the three operations from it.
What it adds is the data:

* :meth:`AnomalyDetectors.history`: a metric's values per aligned period over the training window
  (:data:`flowwatch.local.anomaly.TRAINING_SECONDS`, 14 days), from ONE GetMetricStatistics call of
  one-minute bins that it adds up per period (moto bins from the first datapoint, not from period
  boundaries; metric-filter data is stamped on minutes, so minute bins are exact for it; a metric put
  at other seconds is binned by the minute its first datapoint of each bin falls in). The statistic of
  a period is computed from the minute Sum / SampleCount / Minimum / Maximum (Average = Sum / SampleCount).
* :meth:`AnomalyDetectors.bands`: the band of each period of a range, trained on that history, with the
  detector's Configuration (ExcludedTimeRanges, MetricTimezone) when the metric has one; the
  detector's StateValue follows training (:meth:`DetectorStore.update_state` with the number of
  training values of the newest period).
* DescribeAnomalyDetectors brings every listed detector's StateValue up to date first, so a
  detector reads TRAINED once its metric has :data:`~flowwatch.local.anomaly.MIN_TRAINING` periods
  of data, whether or not an alarm uses it.

The alarm evaluator (``alarm_state.py``) and GetMetricData (``metric_data.py``) read bands here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from flowwatch.local.anomaly import (TRAINING_SECONDS, Band, DetectorError, DetectorStore, TrainingConfig, band,
                                     training_values)
from flowwatch.local.api import ServiceError
from flowwatch.local.loopback import Clients

BIN = 60                               # seconds per GetMetricStatistics bin
PERIOD_FOR_STATE = 300                 # the period DescribeAnomalyDetectors trains a detector's state on


def _error(exc: DetectorError) -> ServiceError:
    return ServiceError(exc.code, exc.message, exc.status)


def period_value(stat: str, minutes: Sequence[Mapping[str, float]]) -> float:
    """The statistic ``stat`` of a period from its minute bins (each with Sum, SampleCount, Minimum, Maximum)."""
    if stat == "Sum":
        return sum(m["Sum"] for m in minutes)
    if stat == "SampleCount":
        return sum(m["SampleCount"] for m in minutes)
    if stat == "Minimum":
        return min(m["Minimum"] for m in minutes)
    if stat == "Maximum":
        return max(m["Maximum"] for m in minutes)
    count = sum(m["SampleCount"] for m in minutes)
    return sum(m["Sum"] for m in minutes) / count if count else 0.0


class AnomalyDetectors:
    """The anomaly detectors of every region, and the bands of their metrics. ``now``: the data plane's clock."""

    def __init__(self, clients: Clients, now: Callable[[], float]) -> None:
        self.clients = clients
        self.now = now
        self._stores: dict[str, DetectorStore] = {}
        self._lock = threading.RLock()

    def store(self, region: str) -> DetectorStore:
        with self._lock:
            found = self._stores.get(region)
            if found is None:
                found = self._stores[region] = DetectorStore()
            return found

    # ---- the served operations -------------------------------------------------------------
    def put(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            with self._lock:
                return self._stores.setdefault(region, DetectorStore()).put(request)
        except DetectorError as exc:
            raise _error(exc) from None

    def describe(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        store = self.store(region)
        for detector in store.detectors():
            try:
                self.train(region, detector.namespace, detector.metric, detector.dimensions, detector.stat,
                           PERIOD_FOR_STATE)
            except Exception:   # a metric that cannot be read keeps its state
                pass
        try:
            with self._lock:
                return store.describe(request)
        except DetectorError as exc:
            raise _error(exc) from None

    def delete(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            with self._lock:
                return self._stores.setdefault(region, DetectorStore()).delete(request)
        except DetectorError as exc:
            raise _error(exc) from None

    # ---- the data ----------------------------------------------------------------------------
    def history(self, region: str, namespace: str, metric: str, dimensions: Iterable[tuple[str, str]], stat: str,
                period: int, until: int, unit: str | None = None, since: int | None = None) -> dict[int, float]:
        """The metric's ``stat`` per aligned period (start -> value) from ``since`` (default: the training
        window before ``until``) to ``until`` (epoch s, exclusive), periods with no datapoint left out."""
        if since is None:
            since = (until - TRAINING_SECONDS - period) // period * period
        args: dict[str, Any] = {"Namespace": namespace, "MetricName": metric, "Period": BIN,
                                "StartTime": datetime.fromtimestamp(since, tz=timezone.utc),
                                "EndTime": datetime.fromtimestamp(until, tz=timezone.utc),
                                "Statistics": ["Sum", "SampleCount", "Minimum", "Maximum"],
                                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions]}
        if unit:
            args["Unit"] = unit
        points = self.clients.client("cloudwatch", region).get_metric_statistics(**args)["Datapoints"]
        per_period: dict[int, list[Mapping[str, float]]] = {}
        for p in points:
            t = int(p["Timestamp"].timestamp()) // period * period
            per_period.setdefault(t, []).append(p)
        return {t: period_value(stat, minutes) for t, minutes in sorted(per_period.items())}

    def config(self, region: str, namespace: str, metric: str, dimensions: Iterable[tuple[str, str]],
               stat: str) -> TrainingConfig:
        with self._lock:
            store = self._stores.get(region)
            detector = store.find(namespace, metric, dimensions, stat) if store else None
            return detector.training if detector is not None else TrainingConfig()

    def bands(self, region: str, namespace: str, metric: str, dimensions: Sequence[tuple[str, str]], stat: str,
              period: int, starts: Sequence[int], width: float,
              unit: str | None = None) -> tuple[dict[int, float], list[Band | None]]:
        """(the metric's history, the band of each period of ``starts``); the detector's StateValue follows."""
        history = self.history(region, namespace, metric, dimensions, stat, period, max(starts) + period, unit)
        config = self.config(region, namespace, metric, dimensions, stat)
        pairs = list(history.items())
        out = [band(pairs, s, period, width, config) for s in starts]
        self._update_state(region, namespace, metric, dimensions, stat,
                           len(training_values(pairs, max(starts), period, config)))
        return history, out

    def train(self, region: str, namespace: str, metric: str, dimensions: Sequence[tuple[str, str]], stat: str,
              period: int) -> None:
        """Bring one detector's StateValue up to date at the clock's current period."""
        newest = int(self.now()) // period * period
        history = self.history(region, namespace, metric, dimensions, stat, period, newest + period)
        config = self.config(region, namespace, metric, dimensions, stat)
        self._update_state(region, namespace, metric, dimensions, stat,
                           len(training_values(list(history.items()), newest, period, config)))

    def _update_state(self, region: str, namespace: str, metric: str, dimensions: Iterable[tuple[str, str]],
                      stat: str, training: int) -> None:
        with self._lock:
            store = self._stores.get(region)
            detector = store.find(namespace, metric, dimensions, stat) if store else None
            if detector is not None:
                store.update_state(detector, training)  # type: ignore[union-attr]
