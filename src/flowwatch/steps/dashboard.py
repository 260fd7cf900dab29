"""dashboard: one CloudWatch dashboard of the stack (``dashboard: true``, the default).

Widgets (the body is built by :func:`dashboard_body`, a pure function of the config and the stack's outputs):
a text header (stack, VPC, log group, bucket); accepted vs rejected flows per minute and the bytes into and
out of the VPC per minute (Logs Insights ``log`` widgets over the stack's log group, on the field names of the
configured record format); an alarm status widget with every alarm of the stack; one metric widget per alert
rule, built per rule kind (:data:`RULE_WIDGETS`: the threshold as a horizontal annotation, the anomaly band,
the top contributors). The body structure follows the CloudWatch API Reference, "Dashboard Body Structure and
Syntax" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).

Dashboards are global to the account, so the default name carries the region: ``flowwatch-<stack>-<region>``
(``names.dashboard`` overrides it). Found by that exact name (GetDashboard), ours when its tags say
``flowwatch:stack=<stack>`` (ListTagsForResource on ``arn:<partition>:cloudwatch::<account>:dashboard/<name>``);
a dashboard of that name that is not ours stops ``up``. Tagged at creation (PutDashboard ``Tags``: AWS applies
them only when the call creates the dashboard, so drifted tags are put back with TagResource). The bodies are
compared as parsed JSON, so a second ``up`` makes no call. ``dashboard: false`` removes ours.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowwatch.errors import OwnershipError, error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tag_dict

NOT_FOUND = ("ResourceNotFound", "ResourceNotFoundException")
GRID = 24                       # a dashboard is 24 units wide
MAX_ALARMS_PER_WIDGET = 100     # an alarm status widget lists 1-100 alarm ARNs


# ---------- the console address ----------
CONSOLE_HOSTS = {"aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}


def dashboard_arn(partition: str, account: str, name: str) -> str:
    """A dashboard's ARN has no region: dashboards are global (SAR, Amazon CloudWatch, resource type dashboard)."""
    return f"arn:{partition}:cloudwatch::{account}:dashboard/{name}"


def console_url(partition: str, region: str, name: str) -> str:
    """The dashboard in the CloudWatch console of ``partition`` (aws, aws-cn, aws-us-gov)."""
    host = CONSOLE_HOSTS.get(partition, "console.aws.amazon.com")
    return f"https://{region}.{host}/cloudwatch/home?region={region}#dashboards/dashboard/{name}"


# ---------- the body ----------
@dataclass(frozen=True)
class BodyInputs:
    """What the body is made of: the config and the stack's outputs, resolved (no AWS call)."""

    stack: str
    region: str
    partition: str
    account: str
    vpc_id: str | None              # None: not created yet (a dry run on an empty account)
    vpc_cidr: str
    log_group: str
    bucket: str
    fields: tuple[str, ...]         # the record format's fields, AWS's names
    rules: tuple[Any, ...]          # the alert rules (flowwatch.config.AlertRule, or a later kind's model)
    alarms: Mapping[str, str]       # rule name -> alarm name
    insight_rules: Mapping[str, str] = field(default_factory=dict)   # rule name -> Contributor Insights rule

    def alarm_arn(self, rule: str) -> str:
        return f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:{self.alarms[rule]}"


def body_inputs(ctx: Context) -> BodyInputs:
    rules = tuple(ctx.config.alerts.rules)
    vpc = ctx.stack.vpc_id
    return BodyInputs(stack=ctx.stack.name, region=ctx.region, partition=ctx.aws.partition, account=ctx.account,
                      vpc_id=vpc if isinstance(vpc, str) else None, vpc_cidr=ctx.config.network.vpc_cidr,
                      log_group=ctx.log_group, bucket=ctx.bucket, fields=tuple(ctx.config.record_format.fields),
                      rules=rules, alarms={r.name: ctx.names.alarm(r.name) for r in rules},
                      insight_rules={r.name: ctx.names.insight_rule(r.name) for r in rules})


def rule_kind(rule: Any) -> str:
    """A rule's kind; rules without one (the config before ``kind:`` exists) are threshold rules."""
    return str(getattr(rule, "kind", "threshold") or "threshold")


def _metric_props(title: str, inputs: BodyInputs, period: int, **extra: Any) -> dict[str, Any]:
    return {"title": title, "region": inputs.region, "view": "timeSeries", "stacked": False, "period": period,
            **extra}


def _threshold_line(rule: Any) -> dict[str, Any]:
    threshold = float(rule.threshold)
    return {"horizontal": [{"label": f"threshold {threshold:g}", "value": threshold}]}


def threshold_widget(rule: Any, inputs: BodyInputs) -> dict[str, Any]:
    """The rule's metric (Sum per period, as the alarm reads it) and its threshold as a horizontal line."""
    return {"type": "metric", "properties": _metric_props(
        f"{rule.name}: {rule.namespace}/{rule.metric} (Sum per {rule.period} s)", inputs, rule.period, stat="Sum",
        metrics=[[rule.namespace, rule.metric, {"id": "m1", "label": rule.metric}]],
        annotations=_threshold_line(rule))}


def anomaly_widget(rule: Any, inputs: BodyInputs) -> dict[str, Any]:
    """The rule's metric with the band its anomaly detector expects: ``ANOMALY_DETECTION_BAND(m1, band)``."""
    band = float(getattr(rule, "band", 2))
    return {"type": "metric", "properties": _metric_props(
        f"{rule.name}: {rule.namespace}/{rule.metric} and its expected band ({band:g} standard deviations)",
        inputs, rule.period, stat="Sum",
        metrics=[[rule.namespace, rule.metric, {"id": "m1", "label": rule.metric}],
                 [{"expression": f"ANOMALY_DETECTION_BAND(m1, {band:g})", "id": "ad1", "label": "expected band"}]])}


def contributors_widget(rule: Any, inputs: BodyInputs) -> dict[str, Any]:
    """The top contributors of the rule's Contributor Insights rule, and the alarm's threshold."""
    extra: dict[str, Any] = {}
    if getattr(rule, "threshold", None) is not None:
        extra["annotations"] = _threshold_line(rule)
    keys = ", ".join(getattr(rule, "keys", ()) or ())
    return {"type": "metric", "properties": _metric_props(
        f"{rule.name}: top contributors{f' by {keys}' if keys else ''}", inputs, rule.period,
        insightRule={"ruleName": inputs.insight_rules.get(rule.name, rule.name), "maxContributorCount": 10,
                     "orderBy": "Sum"},
        legend={"position": "bottom"}, **extra)}


#: rule kind -> the widget that shows it; a new kind adds its builder here.
RULE_WIDGETS: dict[str, Callable[[Any, BodyInputs], dict[str, Any]]] = {
    "threshold": threshold_widget, "anomaly": anomaly_widget, "contributors": contributors_widget}


def rule_widget(rule: Any, inputs: BodyInputs) -> dict[str, Any]:
    kind = rule_kind(rule)
    if kind not in RULE_WIDGETS:
        raise ValueError(f"dashboard: no widget for rule {rule.name!r} of kind {kind!r}; kinds: "
                         f"{', '.join(RULE_WIDGETS)}")
    return RULE_WIDGETS[kind](rule, inputs)


def _insights_names(fields: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The ``parse`` a custom record format needs (none for the default one, whose fields Logs Insights
    discovers), and flow-log field -> the name a query uses."""
    from flowwatch.insights.fields import insights_name
    from flowwatch.insights.presets import is_default, parse_command
    from flowwatch.records import RecordFormat

    fmt = RecordFormat.parse(list(fields))
    parse = "" if is_default(fmt) else parse_command(fmt)
    return parse, {f: insights_name(f) for f in fields}


def _query(log_group: str, parse: str, *commands: str) -> str:
    return " | ".join([f"SOURCE '{log_group}'", *([parse] if parse else []), *commands])


def flow_widgets(inputs: BodyInputs) -> list[dict[str, Any]]:
    """Logs Insights time series over the log group: flows per minute by action, bytes in and out of the VPC.

    A time series is one ``stats ... by bin()``; each line is one aggregate. Accepted and rejected flows are
    ``sum(strcontains(action, ...))`` (1 or 0 per record); bytes in and out are one query each, since a
    direction is a filter (``isIpv4InSubnet`` on the VPC CIDR) and a boolean is not summed."""
    parse, name = _insights_names(inputs.fields)
    have = set(inputs.fields)
    widgets: list[dict[str, Any]] = []

    def log(title: str, query: str) -> dict[str, Any]:
        return {"type": "log", "properties": {"title": title, "region": inputs.region, "view": "timeSeries",
                                              "stacked": False, "query": query}}

    if "action" in have:
        action = name["action"]
        widgets.append(log("Flows per minute: accepted vs rejected", _query(
            inputs.log_group, parse,
            f'fields strcontains({action}, "ACCEPT") as accepted, strcontains({action}, "REJECT") as rejected',
            "stats sum(accepted) as accepted_flows, sum(rejected) as rejected_flows by bin(1m)")))
    if {"bytes", "srcaddr", "dstaddr"} <= have:
        src, dst, size, cidr = name["srcaddr"], name["dstaddr"], name["bytes"], inputs.vpc_cidr
        widgets.append(log(f"Bytes per minute into the VPC ({cidr})", _query(
            inputs.log_group, parse,
            f'filter isIpv4InSubnet({dst}, "{cidr}") and not isIpv4InSubnet({src}, "{cidr}")',
            f"stats sum({size}) as bytes_in by bin(1m)")))
        widgets.append(log(f"Bytes per minute out of the VPC ({cidr})", _query(
            inputs.log_group, parse,
            f'filter isIpv4InSubnet({src}, "{cidr}") and not isIpv4InSubnet({dst}, "{cidr}")',
            f"stats sum({size}) as bytes_out by bin(1m)")))
    return widgets


def header_widget(inputs: BodyInputs) -> dict[str, Any]:
    vpc = f"`{inputs.vpc_id}`" if inputs.vpc_id else "(not created yet)"
    markdown = (f"# flowwatch stack `{inputs.stack}` ({inputs.region})\n"
                f"VPC {vpc} `{inputs.vpc_cidr}` · flow-log group `{inputs.log_group}` · "
                f"bucket `{inputs.bucket}`\n\n"
                "Made by `flowwatch up`, which puts this body back on its next run: change the config, not the "
                "dashboard.")
    return {"type": "text", "properties": {"markdown": markdown}}


def alarm_widgets(inputs: BodyInputs) -> list[dict[str, Any]]:
    arns = [inputs.alarm_arn(r.name) for r in inputs.rules]
    return [{"type": "alarm", "properties": {"title": "Alarms of the stack", "alarms": arns[i:i + MAX_ALARMS_PER_WIDGET],
                                             "sortBy": "stateUpdatedTimestamp"}}
            for i in range(0, len(arns), MAX_ALARMS_PER_WIDGET)]


def _placed(rows: Sequence[tuple[int, Sequence[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Widgets in rows (height, widgets), each row's widgets sharing the 24 units; rows stacked."""
    placed: list[dict[str, Any]] = []
    y = 0
    for height, widgets in rows:
        if not widgets:
            continue
        width = GRID // len(widgets)
        for i, widget in enumerate(widgets):
            placed.append({**widget, "x": i * width, "y": y, "width": width, "height": height})
        y += height
    return placed


def dashboard_body(inputs: BodyInputs) -> dict[str, Any]:
    """The dashboard body: the same inputs always give the same body (so a second ``up`` compares equal)."""
    flows = flow_widgets(inputs)
    rules = [rule_widget(r, inputs) for r in inputs.rules]
    rows: list[tuple[int, Sequence[dict[str, Any]]]] = [(3, [header_widget(inputs)]), (6, flows)]
    rows += [(3, [w]) for w in alarm_widgets(inputs)]
    rows += [(6, rules[i:i + 2]) for i in range(0, len(rules), 2)]
    return {"start": "-PT3H", "periodOverride": "inherit", "widgets": _placed(rows)}


def body_json(body: Mapping[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


# ---------- the step ----------
@dataclass(frozen=True)
class DashboardSpec:
    name: str
    arn: str
    url: str
    body: dict[str, Any] | None         # None: ``dashboard: false`` (ours is removed)
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DashboardSeen:
    name: str
    arn: str
    url: str
    body: dict[str, Any]
    tags: tuple[tuple[str, str], ...]
    ours: bool
    warnings: tuple[str, ...] = ()      # PutDashboard's DashboardValidationMessages


def _widgets(body: Mapping[str, Any]) -> dict[str, Any]:
    """The widgets of a body by title (the type when a widget has none), for saying what changed."""
    return {str((w.get("properties") or {}).get("title") or w.get("type")): w
            for w in body.get("widgets") or () if isinstance(w, dict)}


def _why(have: Mapping[str, Any], want: Mapping[str, Any]) -> str:
    old, new = _widgets(have), _widgets(want)
    parts = [f"+ {t}" for t in new if t not in old] + [f"- {t}" for t in old if t not in new]
    parts += [f"~ {t}" for t in new if t in old and old[t] != new[t]]
    return "widgets " + "; ".join(parts) if parts else "dashboard settings differ from the config's"


class DashboardStep:
    name = "dashboard"

    def desired(self, ctx: Context) -> DashboardSpec:
        name = ctx.names.dashboard(ctx.region)
        partition = ctx.aws.partition
        body = dashboard_body(body_inputs(ctx)) if ctx.config.dashboard else None
        return DashboardSpec(name, dashboard_arn(partition, ctx.account, name), console_url(partition, ctx.region, name),
                             body, tuple(sorted(tag_dict(ctx.stack.name, self.name, name).items())))

    def discover(self, ctx: Context) -> DashboardSeen | None:
        cw = ctx.aws.cloudwatch
        name = ctx.names.dashboard(ctx.region)
        try:
            found = cw.get_dashboard(DashboardName=name)
        except Exception as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise
        partition = ctx.aws.partition
        arn = found.get("DashboardArn") or dashboard_arn(partition, ctx.account, name)
        try:
            tags = cw.list_tags_for_resource(ResourceARN=arn).get("Tags", [])
        except Exception as exc:
            if error_code(exc) not in NOT_FOUND:
                raise
            tags = []
        tag_pairs = tuple(sorted((t["Key"], t["Value"]) for t in tags))
        try:
            body = json.loads(found.get("DashboardBody") or "{}")
        except ValueError:
            body = {}
        return DashboardSeen(name, arn, console_url(partition, ctx.region, name),
                             body if isinstance(body, dict) else {}, tag_pairs,
                             dict(tag_pairs).get(STACK_TAG) == ctx.stack.name)

    def plan(self, want: DashboardSpec, have: DashboardSeen | None) -> list[Change]:
        if want.body is None:
            if have is not None and have.ours:
                return [Change(self.name, "delete", f"dashboard {have.name}", "dashboard: false",
                               {"name": have.name})]
            return []
        widgets = len(want.body["widgets"])
        if have is None:
            return [Change(self.name, "create", f"dashboard {want.name} ({widgets} widgets)", "not found",
                           {"kind": "dashboard", "name": want.name}, spec=want)]
        if not have.ours:
            raise OwnershipError(f"dashboard: {want.name} exists and is not the stack's",
                                 hint="set names.dashboard to another name, set dashboard: false, or use another "
                                      "--stack")
        changes = []
        if have.body != want.body:
            changes.append(Change(self.name, "update", f"dashboard {want.name} ({widgets} widgets)",
                                  _why(have.body, want.body), {"kind": "dashboard", "name": want.name}, spec=want))
        seen_tags = dict(have.tags)
        drift = [k for k, v in want.tags if seen_tags.get(k) != v]
        if drift:
            changes.append(Change(self.name, "update", f"dashboard {want.name} tags", f"tags {', '.join(drift)}",
                                  {"kind": "tags", "name": want.name}, spec=want))
        return changes

    def apply(self, ctx: Context, change: Change) -> DashboardSeen | None:
        cw = ctx.aws.cloudwatch
        before: DashboardSeen | None = change.before
        if change.action == "delete":
            try:
                cw.delete_dashboards(DashboardNames=[change.params["name"]])
            except Exception as exc:
                if error_code(exc) not in NOT_FOUND:
                    raise
            return None
        spec: DashboardSpec = change.spec
        assert spec.body is not None
        tags = [{"Key": k, "Value": v} for k, v in spec.tags]
        if change.kind == "tags":
            cw.tag_resource(ResourceARN=before.arn if before else spec.arn, Tags=tags)
            merged = tuple(sorted({**dict(before.tags if before else ()), **dict(spec.tags)}.items()))
            return _seen(spec, before, tags=merged)
        args: dict[str, Any] = {"DashboardName": spec.name, "DashboardBody": body_json(spec.body)}
        if change.action == "create":
            args["Tags"] = tags            # applied by AWS only when the call creates the dashboard
        answer = cw.put_dashboard(**args)
        warnings = tuple(f"{m.get('DataPath', '')}: {m.get('Message', '')}".strip(": ")
                         for m in answer.get("DashboardValidationMessages") or ())
        return _seen(spec, before, tags=spec.tags if change.action == "create" else None, warnings=warnings)

    def plan_destroy(self, have: DashboardSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or not have.ours:
            return []
        return [Change(self.name, "delete", f"dashboard {have.name}", "down", {"name": have.name})]

    def publish(self, stack: Stack, have: DashboardSeen | None) -> None:
        ours = have is not None and have.ours
        stack.dashboard = have.name if have is not None and ours else PENDING
        stack.dashboard_url = have.url if have is not None and ours else PENDING

    def found(self, have: DashboardSeen | None) -> str | None:
        if have is None:
            return None
        return f"{have.name} ({len(have.body.get('widgets') or ())} widgets)"

    def status(self, have: DashboardSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        notes = tuple(f"PutDashboard warned: {w}" for w in have.warnings)
        return StatusDetail(ids={"dashboard": have.name, "url": have.url}, notes=notes)


def _seen(spec: DashboardSpec, before: DashboardSeen | None, *, tags: tuple[tuple[str, str], ...] | None = None,
          warnings: tuple[str, ...] = ()) -> DashboardSeen:
    assert spec.body is not None
    kept = before.tags if before is not None else ()
    return DashboardSeen(spec.name, before.arn if before is not None else spec.arn, spec.url, spec.body,
                         tags if tags is not None else kept, True,
                         warnings or (before.warnings if before is not None else ()))
