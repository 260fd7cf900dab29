"""alarm: one CloudWatch alarm per alert rule on the rule's metric: Sum over the period >= threshold,
M of M periods, missing data = notBreaching, alarm and OK actions to the stack's topic.

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
            "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions", "ActionsEnabled")


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


def alarm_props(rule: Any, topic_arn: str | Pending | None) -> dict[str, Any]:
    actions = [topic_arn] if isinstance(topic_arn, str) else []
    return {"MetricName": rule.metric, "Namespace": rule.namespace, "Statistic": "Sum", "Period": rule.period,
            "EvaluationPeriods": rule.evaluation_periods, "DatapointsToAlarm": rule.evaluation_periods,
            "Threshold": float(rule.threshold), "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching", "AlarmActions": actions, "OKActions": actions,
            "ActionsEnabled": True}


def describe(props: dict[str, Any]) -> str:
    return (f"Sum {props['Namespace']}/{props['MetricName']} >= {props['Threshold']:g} over {props['Period']} s, "
            f"{props['DatapointsToAlarm']} of {props['EvaluationPeriods']}")


class AlarmStep:
    name = "alarm"

    def desired(self, ctx: Context) -> dict[str, AlarmSpec]:
        specs = {}
        for rule in ctx.config.alerts.rules:
            name = ctx.names.alarm(rule.name)
            props = alarm_props(rule, ctx.stack.topic_arn)
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
            diffs = [f"{k} {seen.props.get(k)} -> {v}" for k, v in spec.props.items()
                     if _norm(seen.props.get(k)) != _norm(v) and not (k.endswith("Actions") and v == [])]
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


def _norm(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, list):
        return sorted(value)
    return value
