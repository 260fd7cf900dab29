"""anomaly_detector: one CloudWatch anomaly detector per anomaly rule, on the rule's metric (the one its metric
filter publishes): namespace, metric name, statistic Sum, no dimensions (PutAnomalyDetector with
SingleMetricAnomalyDetector). The rule's alarm (steps/alarm.py) reads ``ANOMALY_DETECTION_BAND`` of it.

Anomaly detectors have no name, no ARN of their own and no tags, so they are found by their metric
(DescribeAnomalyDetectors filtered by namespace, one namespace at a time). Ours are:

* the detector on a configured anomaly rule's metric (Sum, no dimensions), in whatever namespace the rule
  names;
* any detector in the stack's own default namespace ``flowwatch/<stack>`` (config.default_namespace), which
  only this stack's metric filters publish to: one no anomaly rule uses any more (the rule was removed or is
  now of another kind) is deleted.

Detectors in other namespaces that no anomaly rule names are never touched (a rule with its own namespace
that is removed leaves its detector behind: nothing says it was flowwatch's). ``down`` deletes ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowwatch.config import default_namespace
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.steps.base import missing

STAT = "Sum"
#: what flowwatch sends as the model's configuration: no excluded time ranges (AWS's default time zone, UTC)
CONFIGURATION: dict[str, Any] = {"ExcludedTimeRanges": []}


@dataclass(frozen=True)
class DetectorKey:
    """What identifies a single-metric anomaly detector: its metric and statistic."""

    namespace: str
    metric: str
    stat: str = STAT
    dimensions: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        dims = "".join(f" {k}={v}" for k, v in self.dimensions)
        return f"{self.namespace}/{self.metric} ({self.stat}{dims})"

    def single_metric(self) -> dict[str, Any]:
        """The SingleMetricAnomalyDetector that names this detector (Put and Delete)."""
        out: dict[str, Any] = {"Namespace": self.namespace, "MetricName": self.metric, "Stat": self.stat}
        if self.dimensions:
            out["Dimensions"] = [{"Name": k, "Value": v} for k, v in self.dimensions]
        return out


@dataclass(frozen=True)
class DetectorsSpec:
    """The detectors the config wants (by key, with the rule that wants each) and the namespace that is the
    stack's own (every detector in it is ours)."""

    wanted: dict[DetectorKey, str]
    own_namespace: str


@dataclass(frozen=True)
class DetectorSeen:
    key: DetectorKey
    excluded_ranges: int = 0              # how many ExcludedTimeRanges its configuration has
    state: str = ""                       # StateValue: PENDING_TRAINING | TRAINED_INSUFFICIENT_DATA | TRAINED


def _key(detector: dict[str, Any]) -> DetectorKey | None:
    single = detector.get("SingleMetricAnomalyDetector") or {
        k: detector[k] for k in ("Namespace", "MetricName", "Dimensions", "Stat") if k in detector}
    if not single.get("MetricName"):
        return None                         # a metric-math detector: never one of ours
    dims = tuple(sorted((d["Name"], d["Value"]) for d in single.get("Dimensions") or ()))
    return DetectorKey(single.get("Namespace", ""), single["MetricName"], single.get("Stat", ""), dims)


class AnomalyDetectorStep:
    name = "anomaly_detector"

    def desired(self, ctx: Context) -> DetectorsSpec:
        wanted = {DetectorKey(r.namespace, r.metric): r.name for r in ctx.config.alerts.rules if r.kind == "anomaly"}
        return DetectorsSpec(wanted, default_namespace(ctx.stack.name))

    def discover(self, ctx: Context) -> dict[DetectorKey, DetectorSeen] | None:
        want = self.desired(ctx)
        # the stack's own namespace is read whole (every metric: []); another one for its rules' metrics only
        by_namespace: dict[str, set[str]] = {want.own_namespace: set()}
        for wanted in want.wanted:
            if wanted.namespace != want.own_namespace:
                by_namespace.setdefault(wanted.namespace, set()).add(wanted.metric)
        cw = ctx.aws.cloudwatch
        seen: dict[DetectorKey, DetectorSeen] = {}
        for namespace, metrics in sorted(by_namespace.items()):
            for metric in sorted(metrics) if metrics else [None]:
                params: dict[str, Any] = {"Namespace": namespace, "AnomalyDetectorTypes": ["SINGLE_METRIC"]}
                if metric is not None:
                    params["MetricName"] = metric
                for page in cw.get_paginator("describe_anomaly_detectors").paginate(**params):
                    for d in page.get("AnomalyDetectors", ()):
                        found = _key(d)
                        if found is None or found.namespace != namespace:
                            continue
                        if namespace != want.own_namespace and found not in want.wanted:
                            continue            # another namespace: only the rules' own detectors are ours
                        ranges = len((d.get("Configuration") or {}).get("ExcludedTimeRanges") or ())
                        seen[found] = DetectorSeen(found, ranges, d.get("StateValue", ""))
        return seen

    def plan(self, want: DetectorsSpec, have: dict[DetectorKey, DetectorSeen] | None) -> list[Change]:
        have = have or {}
        changes = []
        for key, rule in want.wanted.items():
            seen = have.get(key)
            if seen is None:
                changes.append(Change(self.name, "create", f"anomaly detector {key}", f"rule {rule}: not found",
                                      {"key": key}, spec=key))
            elif seen.excluded_ranges:
                changes.append(Change(self.name, "update", f"anomaly detector {key}",
                                      f"{seen.excluded_ranges} excluded time range(s) -> none", {"key": key},
                                      spec=key))
        for key in sorted(set(have) - set(want.wanted), key=str):
            changes.append(Change(self.name, "delete", f"anomaly detector {key}",
                                  "no anomaly rule uses this metric any more", {"key": key}))
        return changes

    def apply(self, ctx: Context, change: Change) -> dict[DetectorKey, DetectorSeen] | None:
        have: dict[DetectorKey, DetectorSeen] = dict(change.before or {})
        key: DetectorKey = change.params["key"]
        cw = ctx.aws.cloudwatch
        if change.action == "delete":
            try:
                cw.delete_anomaly_detector(SingleMetricAnomalyDetector=key.single_metric())
            except Exception as exc:        # already gone (an interrupted down): what was wanted
                if not missing(exc, "ResourceNotFoundException", "ResourceNotFound"):
                    raise
            have.pop(key, None)
            return have
        cw.put_anomaly_detector(SingleMetricAnomalyDetector=key.single_metric(), Configuration=CONFIGURATION)
        before = have.get(key)
        have[key] = DetectorSeen(key, 0, before.state if before else "PENDING_TRAINING")
        return have

    def plan_destroy(self, have: dict[DetectorKey, DetectorSeen] | None, options: DestroyOptions) -> list[Change]:
        return [Change(self.name, "delete", f"anomaly detector {key}", "down", {"key": key})
                for key in sorted(have or {}, key=str)]

    def publish(self, stack: Stack, have: dict[DetectorKey, DetectorSeen] | None) -> None:
        stack.anomaly_detectors = sorted(f"{k.namespace}/{k.metric}" for k in have) if have is not None else PENDING

    def found(self, have: dict[DetectorKey, DetectorSeen] | None) -> str | None:
        if have is None:
            return None
        if not have:
            return "none (no anomaly rule)"
        return ", ".join(f"{k} {s.state}".rstrip() for k, s in sorted(have.items(), key=lambda i: str(i[0])))

    def status(self, have: dict[DetectorKey, DetectorSeen] | None) -> StatusDetail:
        return StatusDetail(ids={f"anomaly_detector:{k}": str(k) for k in sorted(have or {}, key=str)})
