"""metric_filter: one CloudWatch Logs metric filter per threshold or anomaly rule on the stack's log group
(contributors rules are counted by their Contributor Insights rule: steps/insight_rule.py).

Named ``flowwatch-<stack>-<rule>``; found by that exact name on our own log group. The default rule is the
lab's (rejected ICMP -> metric Ping-Deny, value 1, default 0). A rule given as ``match`` gets a
space-delimited pattern GENERATED from the record format, so a custom format never silently breaks it; the
pattern names every field by its column, so a rule with ``value: bytes`` publishes ``$bytes`` (else 1).
``vpc`` in a match is the stack VPC's CIDR (the configured one, or the adopted VPC's, published by the vpc
step). Filters of ours whose rule was removed from the config (or is now a contributors rule) are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowwatch.errors import error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.steps.base import metric_rules, pending, vpc_cidr


@dataclass(frozen=True)
class FilterSpec:
    name: str
    pattern: str
    metric: str
    namespace: str
    log_group: str = ""
    value: str = "1"                 # metricValue: "1" (count records) or "$<column>" (sum a field)

    def transformation(self) -> dict[str, Any]:
        return {"metricName": self.metric, "metricNamespace": self.namespace, "metricValue": self.value,
                "defaultValue": 0.0}


@dataclass(frozen=True)
class FilterSeen:
    name: str
    pattern: str
    transformation: dict[str, Any]
    log_group: str = ""


def rule_pattern(ctx: Context, rule: Any) -> str:
    if rule.pattern is not None:
        return str(rule.pattern)
    from flowwatch.errors import ConfigError
    from flowwatch.records import FormatError

    try:
        return str(ctx.config.record_format.filter_pattern(rule.match, vpc_cidr=vpc_cidr(ctx)))
    except FormatError as exc:         # an adopted VPC's block that a pattern cannot say (checked at plan time)
        raise ConfigError(f"alerts: rule {rule.name}: {exc}") from None


def metric_value(ctx: Context, rule: Any) -> str:
    """The metric filter's metricValue: ``$<column>`` of the rule's ``value`` field (the generated pattern
    names every field by its column), else 1 per matching record."""
    if rule.value is None:
        return "1"
    from flowwatch.records import FIELDS

    fmt = ctx.config.record_format
    return "$" + FIELDS[fmt.fields[fmt.index(rule.value)]].column


class MetricFilterStep:
    name = "metric_filter"

    def desired(self, ctx: Context) -> dict[str, FilterSpec]:
        return {ctx.names.metric_filter(r.name): FilterSpec(ctx.names.metric_filter(r.name), rule_pattern(ctx, r),
                                                            r.metric, r.namespace, ctx.log_group,
                                                            metric_value(ctx, r))
                for r in metric_rules(ctx)}

    def discover(self, ctx: Context) -> dict[str, FilterSeen] | None:
        if pending(ctx.stack.log_group_arn):
            return None
        prefix = ctx.names.metric_filter("")
        seen: dict[str, FilterSeen] = {}
        try:
            pages = ctx.aws.logs.get_paginator("describe_metric_filters").paginate(
                logGroupName=ctx.log_group, filterNamePrefix=prefix)
            for page in pages:
                for f in page["metricFilters"]:
                    if f.get("logGroupName", ctx.log_group) == ctx.log_group:
                        t = (f.get("metricTransformations") or [{}])[0]
                        seen[f["filterName"]] = FilterSeen(f["filterName"], f.get("filterPattern", ""), t,
                                                           ctx.log_group)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        return seen

    def plan(self, want: dict[str, FilterSpec], have: dict[str, FilterSeen] | None) -> list[Change]:
        have = have or {}
        changes = []
        for name, spec in want.items():
            seen = have.get(name)
            if seen is None:
                changes.append(Change(self.name, "create", f"metric filter {name} -> {spec.namespace}/{spec.metric}",
                                      "not found", {"name": name}, spec=spec))
            elif seen.pattern != spec.pattern:
                changes.append(Change(self.name, "update", f"metric filter {name}", "pattern differs", {"name": name},
                                      spec=spec))
            elif not _same_transformation(seen.transformation, spec.transformation()):
                changes.append(Change(self.name, "update", f"metric filter {name}", "metric differs", {"name": name},
                                      spec=spec))
        for name in sorted(set(have) - set(want)):
            changes.append(Change(self.name, "delete", f"metric filter {name}", "rule no longer configured",
                                  {"name": name, "log_group": have[name].log_group}))
        return changes

    def apply(self, ctx: Context, change: Change) -> dict[str, FilterSeen] | None:
        """``change.spec`` is the one filter's FilterSpec."""
        have = dict(change.before or {})
        name = change.params["name"]
        if change.action == "delete":
            ctx.aws.logs.delete_metric_filter(logGroupName=change.params["log_group"], filterName=name)
            have.pop(name, None)
            return have
        spec: FilterSpec = change.spec
        ctx.aws.logs.put_metric_filter(logGroupName=spec.log_group, filterName=name, filterPattern=spec.pattern,
                                       metricTransformations=[spec.transformation()])
        have[name] = FilterSeen(name, spec.pattern, spec.transformation(), spec.log_group)
        return have

    def plan_destroy(self, have: dict[str, FilterSeen] | None, options: DestroyOptions) -> list[Change]:
        return [Change(self.name, "delete", f"metric filter {name}", "down",
                       {"name": name, "log_group": seen.log_group}) for name, seen in sorted((have or {}).items())]

    def publish(self, stack: Stack, have: dict[str, FilterSeen] | None) -> None:
        stack.metric_filters = sorted(have) if have is not None else PENDING

    def found(self, have: dict[str, FilterSeen] | None) -> str | None:
        return ", ".join(sorted(have)) if have else None

    def status(self, have: dict[str, FilterSeen] | None) -> StatusDetail:
        return StatusDetail(ids={f"filter:{name}": name for name in sorted(have or {})})


def _same_transformation(seen: dict[str, Any], want: dict[str, Any]) -> bool:
    def norm(t: dict[str, Any]) -> tuple[Any, ...]:
        default = t.get("defaultValue")
        return (t.get("metricName"), t.get("metricNamespace"), str(t.get("metricValue")),
                None if default is None else float(default), tuple(sorted((t.get("dimensions") or {}).items())),
                t.get("unit") or "None")
    return norm(seen) == norm(want)
