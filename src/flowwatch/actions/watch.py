"""flowwatch watch: a live terminal view of the stack, refreshed until Ctrl-C (exit 130, as every interrupted
command); piped (stdout not a terminal), one frame in plain text and exit 0.

What a frame shows, and where it comes from (the same calls on AWS and on the local AWS):

* **flows per minute**, accepted vs rejected, over the last :data:`FLOW_MINUTES` minutes, as a bar chart: one
  Logs Insights query (``stats sum(accepted), sum(rejected) by bin(1m)`` over the flow-log group, the
  dashboard's own query). Not GetMetricData: no metric of the stack counts ACCEPTed flows (the metric
  filters count what the alert rules match: rejected pings, rejects, bytes out), and adding a metric filter
  would change the stack for a view. Logs Insights costs USD 0.005 per GB scanned: 15 minutes of a small
  VPC's flow log is a few MB (a hundredth of a cent a query), and since a bin is a minute the query runs at
  most once a minute (:data:`FLOW_REFRESH`), not at every refresh.
* **each anomaly rule's metric against its band** (``rejected-spike``: the reject rate): one GetMetricData
  call per frame for all of them, the metric (Sum per period) and ``ANOMALY_DETECTION_BAND(m1, band)``
  (USD 0.01 per 1,000 metrics requested: the cheap call, so it runs at every refresh).
* **each alarm's state**: DescribeAlarms of the stack's alarms (free).
* **the top contributors** of each contributors rule in its current period: GetInsightRuleReport.

A part whose call fails (a local AWS without that API yet, a missing permission) says so in its place; the
rest of the frame is still drawn. :func:`collect` reads, :func:`render` is pure, :func:`watch` is the loop
(an injected clock and sleep for tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flowwatch.errors import error_code
from flowwatch.model import Context

FLOW_MINUTES = 15
FLOW_REFRESH = 60.0          # seconds between two flow queries (a bin is a minute)
LOCAL_INTERVAL = 5.0
AWS_INTERVAL = 30.0
BAND_PERIODS = 12            # periods of each band shown
TOP = 5                      # contributors shown per rule
BAR = 30                     # characters of the longest bar


@dataclass(frozen=True)
class BandView:
    rule: str
    metric: str
    period: int
    points: list[tuple[float, float | None, float | None, float | None]]   # (time, value, lower, upper)
    note: str | None = None


@dataclass(frozen=True)
class Contributors:
    rule: str
    keys: list[str]
    threshold: float | None
    top: list[tuple[str, float]]
    note: str | None = None


@dataclass
class Frame:
    stack: str
    region: str
    at: float
    flows: list[tuple[float, float, float]] = field(default_factory=list)    # (minute, accepted, rejected)
    flows_note: str | None = None
    bands: list[BandView] = field(default_factory=list)
    alarms: list[tuple[str, str, str]] = field(default_factory=list)         # (name, kind, state)
    contributors: list[Contributors] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---- reading ---------------------------------------------------------------------------------------

class Collector:
    """Reads one frame at a time; keeps the flow query's last answer between its runs."""

    def __init__(self, ctx: Context, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ctx = ctx
        self.sleep = sleep
        self._flows: tuple[float, list[tuple[float, float, float]], str | None] | None = None

    def frame(self, now: float) -> Frame:
        ctx = self.ctx
        frame = Frame(ctx.stack.name, ctx.region, now)
        if self._flows is None or now - self._flows[0] >= FLOW_REFRESH:
            self._flows = (now, *self.flows(now))
        frame.flows, frame.flows_note = self._flows[1], self._flows[2]
        frame.alarms = self.alarms()
        frame.bands = self.bands(now)
        frame.contributors = [self.contributors(rule, now) for rule in ctx.config.alerts.rules
                              if rule.kind == "contributors"]
        return frame

    def alarms(self) -> list[tuple[str, str, str]]:
        ctx = self.ctx
        names = {ctx.names.alarm(r.name): r.kind for r in ctx.config.alerts.rules}
        try:
            found = ctx.aws.cloudwatch.describe_alarms(AlarmNames=list(names))["MetricAlarms"]
        except Exception as exc:
            return [(name, kind, f"? ({error_code(exc) or type(exc).__name__})") for name, kind in names.items()]
        states = {a["AlarmName"]: a["StateValue"] for a in found}
        return [(name, kind, states.get(name, "missing")) for name, kind in names.items()]

    def flows(self, now: float) -> tuple[list[tuple[float, float, float]], str | None]:
        ctx = self.ctx
        fmt = ctx.config.record_format
        if "action" not in fmt:
            return [], "the record format has no action field: no accepted/rejected chart"
        query = flow_query(fmt)
        logs = ctx.aws.logs
        try:
            qid = logs.start_query(logGroupName=ctx.log_group, startTime=int(now) - FLOW_MINUTES * 60,
                                   endTime=int(now), queryString=query)["queryId"]
            result: dict[str, Any] = {}
            for _ in range(40):
                result = logs.get_query_results(queryId=qid)
                if result.get("status") in ("Complete", "Failed", "Cancelled", "Timeout", "Unknown"):
                    break
                self.sleep(0.25)
        except Exception as exc:
            return [], f"Logs Insights: {error_code(exc) or type(exc).__name__}: {str(exc)[:120]}"
        if result.get("status") != "Complete":
            return [], f"Logs Insights query {result.get('status', 'did not finish')}"
        rows = []
        for row in result.get("results", []):
            cells = {c["field"]: c["value"] for c in row}
            when = _epoch(cells.get("bin(1m)") or cells.get("bin") or "")
            if when is None:
                continue
            rows.append((when, float(cells.get("accepted_flows") or 0), float(cells.get("rejected_flows") or 0)))
        return sorted(rows), None

    def bands(self, now: float) -> list[BandView]:
        ctx = self.ctx
        rules = [r for r in ctx.config.alerts.rules if r.kind == "anomaly"]
        if not rules:
            return []
        queries: list[dict[str, Any]] = []
        for i, r in enumerate(rules):
            queries.append({"Id": f"m{i}", "MetricStat": {"Metric": {"Namespace": r.namespace, "MetricName": r.metric},
                                                          "Period": r.period, "Stat": "Sum"}, "ReturnData": True})
            queries.append({"Id": f"ad{i}", "Expression": f"ANOMALY_DETECTION_BAND(m{i}, {r.band or 2:g})",
                            "ReturnData": True})
        span = max(r.period for r in rules) * BAND_PERIODS
        start = datetime.fromtimestamp(int(now) - span, tz=timezone.utc)
        end = datetime.fromtimestamp(int(now) + 60, tz=timezone.utc)
        results: list[dict[str, Any]] = []
        note = None
        try:
            results = ctx.aws.cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start,
                                                         EndTime=end)["MetricDataResults"]
        except Exception as exc:
            note = f"GetMetricData: {error_code(exc) or type(exc).__name__}"
        views = []
        for i, r in enumerate(rules):
            values = _series(next((x for x in results if x.get("Id") == f"m{i}"), None))
            lower, upper = _band_series([x for x in results if x.get("Id") == f"ad{i}"])
            times = sorted(values)
            rule_note = note
            if not rule_note and values and not upper:
                rule_note = "no band yet (the detector is still training)"
            points = [(t, values.get(t), lower.get(t), upper.get(t)) for t in times[-BAND_PERIODS:]]
            views.append(BandView(r.name, f"{r.namespace}/{r.metric}", r.period, points, rule_note))
        return views

    def contributors(self, rule: Any, now: float) -> Contributors:
        ctx = self.ctx
        start = int(now) // rule.period * rule.period
        try:
            report = ctx.aws.cloudwatch.get_insight_rule_report(
                RuleName=ctx.names.insight_rule(rule.name), StartTime=datetime.fromtimestamp(start, tz=timezone.utc),
                EndTime=datetime.fromtimestamp(start + rule.period, tz=timezone.utc), Period=rule.period,
                MaxContributorCount=TOP, Metrics=["UniqueContributors", "MaxContributorValue"])
        except Exception as exc:
            return Contributors(rule.name, list(rule.keys or ()), rule.threshold, [],
                                f"GetInsightRuleReport: {error_code(exc) or type(exc).__name__}")
        top = [(", ".join(c.get("Keys", [])), float(c.get("ApproximateAggregateValue", 0.0)))
               for c in report.get("Contributors", [])]
        return Contributors(rule.name, list(report.get("KeyLabels") or rule.keys or ()), rule.threshold, top)


def flow_query(fmt: Any) -> str:
    """Accepted and rejected flows per minute (the dashboard's query; a custom format gets its ``parse``)."""
    from flowwatch.insights.fields import insights_name
    from flowwatch.insights.presets import is_default, parse_command

    action = insights_name("action")
    commands = [] if is_default(fmt) else [parse_command(fmt)]
    commands += [f'fields strcontains({action}, "ACCEPT") as accepted, strcontains({action}, "REJECT") as rejected',
                 "stats sum(accepted) as accepted_flows, sum(rejected) as rejected_flows by bin(1m)"]
    return " | ".join(commands)


def _epoch(text: str) -> float | None:
    try:
        when = datetime.fromisoformat(text.replace(" ", "T").rstrip("Z"))
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc).timestamp()


def _series(result: dict[str, Any] | None) -> dict[float, float]:
    if not result:
        return {}
    return {t.timestamp(): float(v) for t, v in zip(result.get("Timestamps", []), result.get("Values", []))}


def _band_series(results: list[dict[str, Any]]) -> tuple[dict[float, float], dict[float, float]]:
    """(lower, upper) per time of an ANOMALY_DETECTION_BAND query. Its answer is two series with the band's
    Id (the lower and the upper bound, their Labels ending in "Lower" and "Upper" as the console shows them);
    unlabelled, the smaller value of a time is the lower bound; one series alone is read as the upper bound."""
    series = [{t.timestamp(): float(v) for t, v in zip(r.get("Timestamps", []), r.get("Values", []))}
              for r in results]
    if not series:
        return {}, {}
    labelled = {("lower" if "lower" in str(r.get("Label", "")).lower() else
                 "upper" if "upper" in str(r.get("Label", "")).lower() else ""): s for r, s in zip(results, series)}
    if "lower" in labelled and "upper" in labelled:
        return labelled["lower"], labelled["upper"]
    if len(series) == 1:
        return {}, series[0]
    times = set(series[0]) & set(series[1])
    return ({t: min(series[0][t], series[1][t]) for t in times}, {t: max(series[0][t], series[1][t]) for t in times})


# ---- drawing -----------------------------------------------------------------------------------

def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M")


def _bar(value: float, peak: float, char: str) -> str:
    if peak <= 0 or value <= 0:
        return ""
    return char * max(1, round(BAR * value / peak))


STATE_STYLE = {"ALARM": "bold red", "OK": "green", "INSUFFICIENT_DATA": "yellow"}


def render(frame: Frame) -> Any:
    """The frame as a rich renderable (pure)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text.assemble((f"flowwatch watch: stack {frame.stack} ({frame.region})", "bold"),
                                      f"   {datetime.fromtimestamp(frame.at, tz=timezone.utc):%Y-%m-%d %H:%M:%S} UTC")]

    flows = Table(title=f"Flows per minute (last {FLOW_MINUTES} min): accepted vs rejected", title_justify="left",
                  show_edge=False, box=None, pad_edge=False)
    for column in ("minute", "accepted", "", "rejected", ""):
        flows.add_column(column, justify="right" if column in ("accepted", "rejected") else "left")
    peak = max((max(a, r) for _, a, r in frame.flows), default=0.0)
    for minute, accepted, rejected in frame.flows:
        flows.add_row(_clock(minute), f"{accepted:g}", Text(_bar(accepted, peak, "█"), "green"), f"{rejected:g}",
                      Text(_bar(rejected, peak, "█"), "red"))
    parts += [Text(""), flows]
    if frame.flows_note or not frame.flows:
        parts.append(Text(f"  {frame.flows_note or 'no flow records in the window'}", "dim"))

    for view in frame.bands:
        table = Table(title=f"{view.rule}: {view.metric} per {view.period} s against its band", title_justify="left",
                      show_edge=False, box=None, pad_edge=False)
        for column in ("period", "value", "band", ""):
            table.add_column(column, justify="right" if column == "value" else "left")
        for t, value, lower, upper in view.points:
            outside = value is not None and upper is not None and (value > upper or (lower is not None and value < lower))
            band = f"[{lower:g} .. {upper:g}]" if upper is not None and lower is not None else (
                f"<= {upper:g}" if upper is not None else "-")
            table.add_row(_clock(t), "-" if value is None else f"{value:g}", band,
                          Text("outside" if outside else "", "bold red"))
        parts += [Text(""), table]
        if view.note or not view.points:
            parts.append(Text(f"  {view.note or 'no datapoint yet'}", "dim"))

    alarms = Table(title="Alarms", title_justify="left", show_edge=False, box=None, pad_edge=False)
    for column in ("alarm", "kind", "state"):
        alarms.add_column(column)
    for name, kind, state in frame.alarms:
        alarms.add_row(name, kind, Text(state, STATE_STYLE.get(state, "yellow")))
    parts += [Text(""), alarms]

    for c in frame.contributors:
        table = Table(title=f"{c.rule}: top contributors this period ({', '.join(c.keys)}; alarm at "
                            f"{c.threshold:g})" if c.threshold is not None else f"{c.rule}: top contributors",
                      title_justify="left", show_edge=False, box=None, pad_edge=False)
        table.add_column("contributor")
        table.add_column("value", justify="right")
        for keys, value in c.top:
            reached = c.threshold is not None and value >= c.threshold
            table.add_row(keys, Text(f"{value:g}", "bold red" if reached else ""))
        parts += [Text(""), table]
        if c.note or not c.top:
            parts.append(Text(f"  {c.note or 'no contributor this period'}", "dim"))
    for note in frame.notes:
        parts.append(Text(note, "dim"))
    return Group(*parts)


# ---- the loop --------------------------------------------------------------------------------------

def watch(ctx: Context, *, interval: float | None = None, frames: int | None = None,
          clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
          now: Callable[[], float] | None = None) -> int:
    """Draw frames every ``interval`` seconds until Ctrl-C (KeyboardInterrupt goes up: exit 130) or ``frames``
    were drawn (the demo's short watch). Piped: one plain frame. ``now``: the stack's clock (the local AWS's)."""
    out = ctx.out
    interval = interval or (LOCAL_INTERVAL if ctx.local else AWS_INTERVAL)
    collector = Collector(ctx, sleep=sleep)
    current = now or clock
    if not out.out.is_terminal:
        out.rich(render(collector.frame(current())))
        return 0
    from rich.live import Live

    drawn = 0
    with Live(render(collector.frame(current())), console=out.out, refresh_per_second=4, transient=False) as live:
        drawn = 1
        while frames is None or drawn < frames:
            sleep(interval)
            live.update(render(collector.frame(current())))
            drawn += 1
    return 0
