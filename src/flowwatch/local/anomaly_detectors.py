"""A stand-in store of anomaly detectors for the local AWS, so that ``up`` (whose anomaly_detector step reads
DescribeAnomalyDetectors on every run) works on it: moto 5.2.5 implements none of PutAnomalyDetector,
DescribeAnomalyDetectors and DeleteAnomalyDetector (HTTP 500, retried by botocore).

It only keeps what was sent, per region, as AWS answers it (a detector is named by its metric: Namespace,
MetricName, Dimensions, Stat; a new one is PENDING_TRAINING; Delete of a missing one:
ResourceNotFoundException). It evaluates nothing: the data plane's model of the band (issue 14, branch
fw-detect: ``flowwatch.local.anomaly.DetectorStore``) replaces it when it is wired in.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from flowwatch.local.api import ServiceError


class AnomalyDetectors:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}

    @staticmethod
    def _metric(request: dict[str, Any]) -> dict[str, Any]:
        single = request.get("SingleMetricAnomalyDetector")
        legacy = {k: request[k] for k in ("Namespace", "MetricName", "Dimensions", "Stat") if request.get(k)}
        if request.get("MetricMathAnomalyDetector"):
            raise ServiceError("InvalidParameterValue", "MetricMathAnomalyDetector is not served by the local AWS")
        if single and legacy:
            raise ServiceError("InvalidParameterCombination", "When using SingleMetricAnomalyDetector, you cannot "
                               "specify Namespace, MetricName, Dimensions or Stat")
        metric = dict(single or legacy)
        for key in ("Namespace", "MetricName", "Stat"):
            if not metric.get(key):
                raise ServiceError("MissingParameter", f"The parameter {key} is required.")
        metric["Dimensions"] = [{"Name": d["Name"], "Value": d["Value"]} for d in metric.get("Dimensions") or ()]
        metric.pop("AccountId", None)
        return metric

    @staticmethod
    def _key(metric: dict[str, Any]) -> tuple[Any, ...]:
        return (metric["Namespace"], metric["MetricName"],
                tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"])), metric["Stat"])

    def put(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        metric = self._metric(request)
        config = request.get("Configuration") or {}
        with self._lock:
            store = self._store.setdefault(region, {})
            detector = store.get(self._key(metric)) or {"AnomalyDetectorId": str(uuid.uuid4()),
                                                         "StateValue": "PENDING_TRAINING"}
            detector.update(metric=metric, Configuration={
                "ExcludedTimeRanges": list(config.get("ExcludedTimeRanges") or []),
                **({"MetricTimezone": config["MetricTimezone"]} if config.get("MetricTimezone") else {})})
            store[self._key(metric)] = detector
        return {}

    def describe(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        namespace, name = request.get("Namespace"), request.get("MetricName")
        types = request.get("AnomalyDetectorTypes") or ["SINGLE_METRIC"]
        with self._lock:
            items = sorted(self._store.get(region, {}).items())
        out = []
        for _, d in items:
            m = d["metric"]
            if "SINGLE_METRIC" not in types or (namespace and m["Namespace"] != namespace) or \
                    (name and m["MetricName"] != name):
                continue
            out.append({"AnomalyDetectorId": d["AnomalyDetectorId"], **{k: m[k] for k in
                        ("Namespace", "MetricName", "Dimensions", "Stat")}, "Configuration": d["Configuration"],
                        "StateValue": d["StateValue"], "SingleMetricAnomalyDetector": dict(m)})
        return {"AnomalyDetectors": out}

    def delete(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            store = self._store.setdefault(region, {})
            if request.get("AnomalyDetectorId"):
                key = next((k for k, d in store.items() if d["AnomalyDetectorId"] == request["AnomalyDetectorId"]),
                           None)
            else:
                key = self._key(self._metric(request))
            if key not in store:
                raise ServiceError("ResourceNotFoundException", "An anomaly detection model with the specified "
                                   "metric does not exist.")
            del store[key]
        return {}
