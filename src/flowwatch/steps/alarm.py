"""alarm: one CloudWatch alarm per alert rule, M of M periods, missing data = notBreaching, alarm and OK
actions to the stack's topic; what it watches depends on the rule's kind:

* ``threshold``: the rule's metric, Sum over the period >= threshold (the lab's alarm);
* ``anomaly``: metric math, the metric (m1: Sum over the period) and ``ANOMALY_DETECTION_BAND(m1, band)``
  (ad1, the band of the rule's anomaly detector, steps/anomaly_detector.py); ``ThresholdMetricId: ad1``,
  ALARM when the metric is outside the band (``LessThanLowerOrGreaterThanUpperThreshold``);
* ``contributors``: ``INSIGHT_RULE_METRIC('<insight rule>', 'MaxContributorValue')`` (the top contributor's
  value in each period, of the rule's Contributor Insights rule, steps/insight_rule.py) >= threshold.

(Amazon CloudWatch User Guide: "Create a CloudWatch alarm based on anomaly detection", "Setting an alarm on
Contributor Insights data"; PutMetricAlarm.) DescribeAlarms returns the metric-math form as ``Metrics``; it is
compared normalised, so a second ``up`` is silent, and switching a rule's kind rewrites the alarm.

Named ``flowwatch-<stack>-<rule>`` and tagged; found by that name. Alarms of ours (tag) whose rule was
removed from the config are deleted; an alarm with our name that is not tagged as ours stops ``up``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flowwatch.errors import OwnershipError
from flowwatch.model import PENDING, AlarmState, Change, Context, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tags
from flowwatch.steps.base import tag_map

COMPARED = ("MetricName", "Namespace", "Statistic", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
            "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions", "ActionsEnabled", "Metrics",
            "ThresholdMetricId")
#: the statistic of a contributors alarm: the value of the top contributor in each period
CONTRIBUTOR_STAT = "MaxContributorValue"


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    props: dict[str, Any]
    description: str = ""
    tags: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class AlarmSeen:
    name: str
    props: dict[str, Any]
    state: str
    ours: bool


def alarm_props(rule: Any, topic_arn: str | Pending | None, insight_rule: str = "") -> dict[str, Any]:
    """PutMetricAlarm's parameters (but name, description and tags) for ``rule``; ``insight_rule``: the name of a
    contributors rule's Contributor Insights rule."""
    actions = [topic_arn] if isinstance(topic_arn, str) else []
    common = {"EvaluationPeriods": rule.evaluation_periods, "DatapointsToAlarm": rule.evaluation_periods,
              "TreatMissingData": "notBreaching", "AlarmActions": actions, "OKActions": actions,
              "ActionsEnabled": True}
    if rule.kind == "anomaly":
        return {"Metrics": [
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": rule.namespace, "MetricName": rule.metric},
                                        "Period": rule.period, "Stat": "Sum"}, "ReturnData": True},
            {"Id": "ad1", "Expression": f"ANOMALY_DETECTION_BAND(m1, {rule.band:g})",
             "Label": f"{rule.metric} (expected)", "ReturnData": True}],
            "ThresholdMetricId": "ad1", "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", **common}
    if rule.kind == "contributors":
        return {"Metrics": [
            {"Id": "m1", "Expression": f"INSIGHT_RULE_METRIC('{insight_rule}', '{CONTRIBUTOR_STAT}')",
             "Period": rule.period, "Label": f"{rule.name} top contributor", "ReturnData": True}],
            "Threshold": float(rule.threshold), "ComparisonOperator": "GreaterThanOrEqualToThreshold", **common}
    return {"MetricName": rule.metric, "Namespace": rule.namespace, "Statistic": "Sum", "Period": rule.period,
            "Threshold": float(rule.threshold), "ComparisonOperator": "GreaterThanOrEqualToThreshold", **common}


def describe(props: dict[str, Any]) -> str:
    periods = f"{props['DatapointsToAlarm']} of {props['EvaluationPeriods']}"
    metrics = props.get("Metrics")
    if not metrics:
        return (f"Sum {props['Namespace']}/{props['MetricName']} >= {props['Threshold']:g} over {props['Period']} s, "
                f"{periods}")
    if props.get("ThresholdMetricId"):
        stat = metrics[0].get("MetricStat", {})
        metric = stat.get("Metric", {})
        band = next((m["Expression"] for m in metrics if m.get("Id") == props["ThresholdMetricId"]), "")
        return (f"Sum {metric.get('Namespace')}/{metric.get('MetricName')} outside {band} over "
                f"{stat.get('Period')} s, {periods}")
    return f"{metrics[0].get('Expression')} >= {props['Threshold']:g} over {metrics[0].get('Period')} s, {periods}"


class AlarmStep:
    name = "alarm"

    def desired(self, ctx: Context) -> dict[str, AlarmSpec]:
        specs = {}
        for rule in ctx.config.alerts.rules:
            name = ctx.names.alarm(rule.name)
            props = alarm_props(rule, ctx.stack.topic_arn, ctx.names.insight_rule(rule.name))
            specs[name] = AlarmSpec(
                name, props, f"flowwatch stack {ctx.stack.name}: rule {rule.name} ({describe(props)}) on VPC flow logs",
                tuple((t["Key"], t["Value"]) for t in tags(ctx.stack.name, self.name, name)))
        return specs

    def discover(self, ctx: Context) -> dict[str, AlarmSeen] | None:
        cw = ctx.aws.cloudwatch
        prefix = ctx.names.alarm("")
        wanted = {ctx.names.alarm(r.name) for r in ctx.config.alerts.rules}
        seen: dict[str, AlarmSeen] = {}
        for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]):
            for a in page["MetricAlarms"]:
                alarm_tags = tag_map(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])
                ours = alarm_tags.get(STACK_TAG) == ctx.stack.name
                if ours or a["AlarmName"] in wanted:
                    props = {k: a.get(k) for k in COMPARED}
                    props["DatapointsToAlarm"] = props["DatapointsToAlarm"] or props["EvaluationPeriods"]
                    props["Metrics"] = a.get("Metrics") or None
                    seen[a["AlarmName"]] = AlarmSeen(a["AlarmName"], props, a.get("StateValue", ""), ours)
        return seen

    def plan(self, want: dict[str, AlarmSpec], have: dict[str, AlarmSeen] | None) -> list[Change]:
        have = have or {}
        changes = []
        for name, spec in want.items():
            seen = have.get(name)
            if seen is None:
                changes.append(Change(self.name, "create", f"alarm {name}: {describe(spec.props)}", "not found",
                                      {"name": name}, spec=spec))
                continue
            if not seen.ours:
                raise OwnershipError(f"alarm: {name} exists and is not the stack's",
                                     hint="delete or rename that alarm, or use another --stack")
            diffs = [_change(k, seen.props.get(k), spec.props.get(k)) for k in COMPARED
                     if _differs(k, seen.props.get(k), spec.props.get(k))]
            if diffs:
                changes.append(Change(self.name, "update", f"alarm {name}", "; ".join(diffs), {"name": name},
                                      spec=spec))
        for name in sorted(set(have) - set(want)):
            if have[name].ours:
                changes.append(Change(self.name, "delete", f"alarm {name}", "rule no longer configured",
                                      {"name": name}))
        return changes

    def apply(self, ctx: Context, change: Change) -> dict[str, AlarmSeen] | None:
        """``change.spec`` is the one alarm's AlarmSpec."""
        have: dict[str, AlarmSeen] = dict(change.before or {})
        name = change.params["name"]
        cw = ctx.aws.cloudwatch
        if change.action == "delete":
            cw.delete_alarms(AlarmNames=[name])
            have.pop(name, None)
            return have
        spec: AlarmSpec = change.spec
        cw.put_metric_alarm(AlarmName=name, AlarmDescription=spec.description,
                            Tags=[{"Key": k, "Value": v} for k, v in spec.tags], **spec.props)
        have[name] = AlarmSeen(name, spec.props, have[name].state if name in have else "INSUFFICIENT_DATA", True)
        return have

    def plan_destroy(self, have: dict[str, AlarmSeen] | None, options: DestroyOptions) -> list[Change]:
        return [Change(self.name, "delete", f"alarm {name}", "down", {"name": name})
                for name, seen in sorted((have or {}).items()) if seen.ours]

    def publish(self, stack: Stack, have: dict[str, AlarmSeen] | None) -> None:
        stack.alarms = sorted(n for n, s in have.items() if s.ours) if have else PENDING

    def found(self, have: dict[str, AlarmSeen] | None) -> str | None:
        return ", ".join(f"{n} ({s.state})" for n, s in sorted(have.items())) if have else None

    def status(self, have: dict[str, AlarmSeen] | None) -> StatusDetail:
        alarms = sorted((have or {}).items())
        return StatusDetail(alarms=tuple(AlarmState(n, s.state) for n, s in alarms),
                            ids={f"alarm:{n}": n for n, _ in alarms})


def _differs(key: str, seen: Any, want: Any) -> bool:
    if key.endswith("Actions") and want == []:
        return False                  # no topic yet (dry run): whatever actions are there are not drift
    if key == "Metrics":
        return _norm_metrics(seen) != _norm_metrics(want)
    return _norm(seen) != _norm(want)


def _change(key: str, seen: Any, want: Any) -> str:
    if key == "Metrics":
        def text(metrics: Any) -> str:
            return ", ".join(str(m.get("Expression") or m.get("Id")) for m in metrics or ()) or "none"
        return f"Metrics {text(seen)} -> {text(want)}"
    return f"{key} {seen} -> {want}"


def _norm(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return sorted(value)
    return None if value == "" else value


def _norm_metrics(metrics: Any) -> Any:
    """A metric-math alarm's Metrics as compared: what PutMetricAlarm takes, with AWS's defaults filled in
    (ReturnData true, no dimensions, no unit, no account) and numbers as floats; None: no Metrics."""
    if not metrics:
        return None
    out = []
    for m in metrics:
        stat = m.get("MetricStat")
        norm_stat = None
        if stat:
            metric = stat.get("Metric") or {}
            norm_stat = (metric.get("Namespace"), metric.get("MetricName"),
                         tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ())),
                         _norm(stat.get("Period")), stat.get("Stat"), stat.get("Unit") or None)
        out.append((m.get("Id"), m.get("Expression") or None, m.get("Label") or None,
                    m.get("ReturnData", True) is not False, _norm(m.get("Period")), norm_stat,
                    m.get("AccountId") or None))
    return sorted(out, key=repr)
