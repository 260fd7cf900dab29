"""insight_rule: one CloudWatch Contributor Insights rule per contributors rule, over the stack's log group.

Named ``flowwatch-<stack>-<rule>`` (naming.Names.insight_rule), ENABLED, tagged at creation (PutInsightRule's
Tags; AWS ignores Tags when the rule exists already). VPC flow logs in CloudWatch Logs are space-delimited
text, which Contributor Insights reads as ``CLF``: the definition names each field it uses by its 1-based
position in the record format (``Fields``), GENERATED from the format like the metric-filter patterns, so a
custom format never silently breaks it. As in AWS's sample rules for VPC flow logs ("Byte transfers by
source and destination IP address", "Rejected TCP connections by network interface and source IP")::

    {"Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": ["/flowwatch/lab/flow-logs"],
     "LogFormat": "CLF", "Fields": {"4": "srcaddr", "13": "action"},
     "Contribution": {"Keys": ["srcaddr"], "Filters": [{"Match": "action", "In": ["REJECT"]}]},
     "AggregateOn": "Count"}

``value`` (a numeric field) is summed (``ValueOf``, ``AggregateOn: Sum``); without it records are counted.
The rule's ``match`` becomes ``Filters`` (flowwatch.matching.insight_filters).

Found by DescribeInsightRules (every page) and the name prefix, with ListTagsForResource on each: a rule with
our name that is not tagged as ours stops ``up`` (OwnershipError), as alarms do; rules of ours whose rule
was removed from the config are deleted; ``down`` deletes ours (DeleteInsightRules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flowwatch.errors import FlowwatchError, OwnershipError
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tags
from flowwatch.steps.base import tag_map, vpc_cidr

SCHEMA = {"Name": "CloudWatchLogRule", "Version": 1}
ENABLED = "ENABLED"


@dataclass(frozen=True)
class InsightSpec:
    name: str
    definition: dict[str, Any]
    tags: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        return json.dumps(self.definition, separators=(",", ":"))


@dataclass(frozen=True)
class InsightSeen:
    name: str
    definition: Any                      # the parsed JSON (the text when it is not JSON)
    state: str
    ours: bool


def rule_definition(fmt: Any, rule: Any, log_group: str, vpc: str | None) -> dict[str, Any]:
    """The Contributor Insights rule definition of contributors rule ``rule`` over ``log_group`` in record
    format ``fmt`` (``vpc``: the CIDR ``vpc`` stands for in a match)."""
    from flowwatch.matching import insight_filters
    from flowwatch.records import FIELDS

    def column(i: int) -> str:
        return FIELDS[fmt.fields[i]].column

    keys = [fmt.index(k) for k in rule.keys or ()]
    conds = fmt.match_conditions(rule.match or {}, vpc_cidr=vpc)
    value = fmt.index(rule.value) if rule.value else None
    used = sorted({*keys, *conds, *([value] if value is not None else [])})
    contribution: dict[str, Any] = {"Keys": [column(i) for i in keys]}
    if value is not None:
        contribution["ValueOf"] = column(value)
    contribution["Filters"] = insight_filters([conds[i] for i in sorted(conds)],
                                              {FIELDS[name].name: FIELDS[name].column for name in fmt.fields})
    return {"Schema": dict(SCHEMA), "LogGroupNames": [log_group], "LogFormat": "CLF",
            "Fields": {str(i + 1): column(i) for i in used}, "Contribution": contribution,
            "AggregateOn": "Sum" if value is not None else "Count"}


def _parsed(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def rule_arn(ctx: Context, name: str) -> str:
    return f"arn:{ctx.aws.partition}:cloudwatch:{ctx.region}:{ctx.account}:insight-rule/{name}"


class InsightRuleStep:
    name = "insight_rule"

    def desired(self, ctx: Context) -> dict[str, InsightSpec]:
        from flowwatch.errors import ConfigError
        from flowwatch.matching import MatchError
        from flowwatch.records import FormatError

        fmt = ctx.config.record_format
        specs = {}
        for rule in ctx.config.alerts.rules:
            if rule.kind != "contributors":
                continue
            name = ctx.names.insight_rule(rule.name)
            try:
                definition = rule_definition(fmt, rule, ctx.log_group, vpc_cidr(ctx))
            except (FormatError, MatchError) as exc:     # an adopted VPC's block the filters cannot say
                raise ConfigError(f"alerts: rule {rule.name}: {exc}") from None
            specs[name] = InsightSpec(name, definition,
                                      tuple((t["Key"], t["Value"]) for t in tags(ctx.stack.name, self.name, name)))
        return specs

    def discover(self, ctx: Context) -> dict[str, InsightSeen] | None:
        cw = ctx.aws.cloudwatch
        prefix = ctx.names.insight_rule("")
        wanted = set(self.desired(ctx))
        seen: dict[str, InsightSeen] = {}
        token: str | None = None
        while True:                    # DescribeInsightRules pages by NextToken (botocore has no paginator)
            page = cw.describe_insight_rules(**({"NextToken": token} if token else {}))
            for r in page.get("InsightRules", ()):
                name = r["Name"]
                if not name.startswith(prefix):
                    continue
                rule_tags = tag_map(cw.list_tags_for_resource(ResourceARN=rule_arn(ctx, name)).get("Tags"))
                ours = rule_tags.get(STACK_TAG) == ctx.stack.name
                if ours or name in wanted:
                    seen[name] = InsightSeen(name, _parsed(r.get("Definition")), r.get("State", ""), ours)
            token = page.get("NextToken")
            if not token:
                return seen

    def plan(self, want: dict[str, InsightSpec], have: dict[str, InsightSeen] | None) -> list[Change]:
        have = have or {}
        changes = []
        for name, spec in want.items():
            seen = have.get(name)
            if seen is None:
                changes.append(Change(self.name, "create", f"insight rule {name}: {_describe(spec.definition)}",
                                      "not found", {"name": name}, spec=spec))
                continue
            if not seen.ours:
                raise OwnershipError(f"insight_rule: Contributor Insights rule {name} exists and is not the stack's",
                                     hint="delete or rename that rule, or use another --stack")
            diffs = _differences(seen.definition, spec.definition)
            if seen.state != ENABLED:
                diffs.append(f"state {seen.state} -> {ENABLED}")
            if diffs:
                changes.append(Change(self.name, "update", f"insight rule {name}", "; ".join(diffs), {"name": name},
                                      spec=spec))
        for name in sorted(set(have) - set(want)):
            if have[name].ours:
                changes.append(Change(self.name, "delete", f"insight rule {name}", "rule no longer configured",
                                      {"name": name}))
        return changes

    def apply(self, ctx: Context, change: Change) -> dict[str, InsightSeen] | None:
        have: dict[str, InsightSeen] = dict(change.before or {})
        name = change.params["name"]
        cw = ctx.aws.cloudwatch
        if change.action == "delete":
            failures = cw.delete_insight_rules(RuleNames=[name]).get("Failures") or []
            real = [f for f in failures if "NotFound" not in str(f.get("ExceptionType", ""))]
            if real:
                raise FlowwatchError(f"insight_rule: DeleteInsightRules failed for {name}: "
                                     f"{real[0].get('ExceptionType')}: {real[0].get('FailureDescription', '')}")
            have.pop(name, None)
            return have
        spec: InsightSpec = change.spec
        cw.put_insight_rule(RuleName=name, RuleState=ENABLED, RuleDefinition=spec.text,
                            Tags=[{"Key": k, "Value": v} for k, v in spec.tags])
        have[name] = InsightSeen(name, spec.definition, ENABLED, True)
        return have

    def plan_destroy(self, have: dict[str, InsightSeen] | None, options: DestroyOptions) -> list[Change]:
        return [Change(self.name, "delete", f"insight rule {name}", "down", {"name": name})
                for name, seen in sorted((have or {}).items()) if seen.ours]

    def publish(self, stack: Stack, have: dict[str, InsightSeen] | None) -> None:
        stack.insight_rules = sorted(n for n, s in have.items() if s.ours) if have is not None else PENDING

    def found(self, have: dict[str, InsightSeen] | None) -> str | None:
        if have is None:
            return None
        return ", ".join(f"{n} ({s.state})" for n, s in sorted(have.items())) or "none (no contributors rule)"

    def status(self, have: dict[str, InsightSeen] | None) -> StatusDetail:
        return StatusDetail(ids={f"insight_rule:{n}": n for n in sorted(have or {})})


def _describe(definition: dict[str, Any]) -> str:
    contribution = definition.get("Contribution", {})
    what = f"Sum of {contribution['ValueOf']}" if "ValueOf" in contribution else "Count"
    return f"{what} by {', '.join(contribution.get('Keys', []))}"


def _differences(seen: Any, want: dict[str, Any]) -> list[str]:
    if not isinstance(seen, dict):
        return ["definition is not JSON"]
    return [f"{key} differs" for key in sorted(set(seen) | set(want)) if _norm(seen.get(key)) != _norm(want.get(key))]


def _norm(value: Any) -> Any:
    """JSON as compared: numbers as floats ({"Version": 1} == {"Version": 1.0}), key order ignored."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value
