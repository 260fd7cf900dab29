"""CloudWatch Contributor Insights on the local AWS: every insight rule moto stores, evaluated on the log
events as they arrive (moto stores rules, evaluates none and has no GetInsightRuleReport).

:class:`InsightRules` keeps, per region, the rules of DescribeInsightRules (read through the data plane's
``moto_clients``, again after each PutInsightRule / DeleteInsightRules / DisableInsightRules /
EnableInsightRules: the taps only mark the region stale) parsed with
:func:`flowwatch.local.contributors.parse_rule`, and one :class:`~flowwatch.local.contributors.Evaluator`
of the ENABLED ones:

* :meth:`InsightRules.tap_put_log_events` (after every PutLogEvents moto accepted, whoever sent it,
  ``rejectedLogEventsInfo`` honoured) feeds the accepted events of the log group, named and as an ARN
  (``arn:aws:logs:<region>:<account>:log-group:<name>``), to every enabled rule that reads it. A
  DISABLED rule gets no data (AWS: "a disabled rule doesn't ... analyze log events"); its data so
  far stays readable. A rule whose definition changes (PutInsightRule on the same name) starts again
  from nothing; a rule moto refuses nothing of but the local parser does (an invalid definition) is
  logged and not evaluated.
* :meth:`InsightRules.get_insight_rule_report` serves GetInsightRuleReport
  (:func:`flowwatch.local.contributors.report`); an unknown rule is ResourceNotFoundException.
* :meth:`InsightRules.metric` is ``INSIGHT_RULE_METRIC(rule, metric)`` of one period, for the alarm
  evaluator and GetMetricData.

Memory is bounded: buckets older than :data:`RETENTION` (15 days, longer than any alarm range or the
two weeks a report can usefully span) are dropped as time passes, a rule keeps at most
:data:`MAX_BUCKETS` one-minute buckets (the newest), and a bucket at most :data:`MAX_CONTRIBUTORS`
distinct contributors (past it, the smallest are dropped from the per-contributor table: the
statistics SampleCount, Sum, Minimum and Maximum stay exact, the contributor list becomes approximate,
as AWS calls it: ``ApproximateAggregateValue``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flowwatch.local.api import ServiceError
from flowwatch.local.contributors import Evaluator, InsightRule, InsightRuleError, RuleSeries, parse_rule, report
from flowwatch.local.log_events import accepted
from flowwatch.local.loopback import Clients

log = logging.getLogger("flowwatch.local")

RETENTION = 15 * 86400
MAX_BUCKETS = 15 * 1440            # a rule's one-minute buckets (15 days' worth)
MAX_CONTRIBUTORS = 20_000          # distinct contributors kept per bucket
PRUNE_EVERY = 60.0                 # seconds (data-plane clock) between age prunes


@dataclass
class _Rule:
    name: str
    definition: str
    state: str
    rule: InsightRule
    series: RuleSeries


class _Region:
    def __init__(self) -> None:
        self.rules: dict[str, _Rule] = {}
        self.evaluator = Evaluator({})
        self.stale = True


class InsightRules:
    """The insight rules of every region, evaluated. ``moto``: clients that read moto's own answers;
    ``on_data``: called after a feed made contributions (the data plane wakes the alarm evaluator)."""

    def __init__(self, moto: Clients, now: Callable[[], float], on_data: Callable[[], None] = lambda: None) -> None:
        self.moto = moto
        self.now = now
        self.on_data = on_data
        self._regions: dict[str, _Region] = {}
        self._lock = threading.RLock()
        self._pruned = 0.0

    # ---- the rules, as moto stores them ------------------------------------------------------
    def mark_stale(self, region: str, request: Any = None, body: bytes = b"") -> None:
        """The tap of PutInsightRule, DeleteInsightRules, DisableInsightRules, EnableInsightRules."""
        with self._lock:
            self._regions.setdefault(region, _Region()).stale = True

    def _region(self, region: str) -> _Region:
        with self._lock:
            found = self._regions.setdefault(region, _Region())
            if found.stale:
                self._refresh(region, found)
            return found

    def _refresh(self, region: str, found: _Region) -> None:
        cw = self.moto.client("cloudwatch", region)
        listed: list[dict[str, Any]] = []
        token = None
        while True:
            page = cw.describe_insight_rules(**({"NextToken": token} if token else {}))
            listed += page.get("InsightRules") or []
            token = page.get("NextToken")
            if not token:
                break
        rules: dict[str, _Rule] = {}
        for item in listed:
            name, definition, state = item["Name"], item.get("Definition") or "", item.get("State") or "ENABLED"
            old = found.rules.get(name)
            if old is not None and old.definition == definition:
                old.state = state
                rules[name] = old
                continue
            try:
                parsed = parse_rule(definition)
            except InsightRuleError as exc:
                log.warning("insight rule %s not evaluated: %s", name, exc.message)
                continue
            rules[name] = _Rule(name, definition, state, parsed, RuleSeries())
        found.rules = rules
        evaluator = Evaluator({n: r.rule for n, r in rules.items() if r.state == "ENABLED"})
        for n in evaluator.series:
            evaluator.series[n] = rules[n].series
        found.evaluator = evaluator
        found.stale = False

    # ---- events in ------------------------------------------------------------------------------
    def tap_put_log_events(self, region: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> int:
        """Feed the accepted events of one PutLogEvents to the enabled rules of its log group."""
        group = request.get("logGroupName")
        events = accepted(request, response)
        if not group or not events:
            return 0
        arn = f"arn:aws:logs:{region}:{self.moto.account(region)}:log-group:{group}"
        with self._lock:
            found = self._region(region)
            if not found.evaluator.rules:
                return 0
            made = found.evaluator.feed(group, ((int(e["timestamp"]), str(e["message"])) for e in events), arn)
            if made:
                self._bound(found)
        if made:
            self.on_data()
        return made

    def _bound(self, found: _Region) -> None:
        now = self.now()
        prune = now - self._pruned >= PRUNE_EVERY
        if prune:
            self._pruned = now
        for r in found.rules.values():
            buckets = r.series.buckets
            if prune:
                r.series.prune(now - RETENTION)
            if len(buckets) > MAX_BUCKETS:
                for start in sorted(buckets)[:len(buckets) - MAX_BUCKETS]:
                    del buckets[start]
            for b in buckets.values():
                if len(b.contributors) > MAX_CONTRIBUTORS:
                    keep = sorted(b.contributors.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CONTRIBUTORS]
                    b.contributors = dict(keep)

    # ---- reads ---------------------------------------------------------------------------------
    def get_insight_rule_report(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("RuleName")
        if not name:
            raise ServiceError("MissingParameter", "The parameter RuleName is required.")
        with self._lock:
            found = self._region(region).rules.get(str(name))
            if found is None:
                raise ServiceError("ResourceNotFoundException", f"The rule {str(name)[:128]!r} does not exist.", 404)
            try:
                return wire(report(found.series, found.rule, request))
            except InsightRuleError as exc:
                raise ServiceError(exc.code, exc.message) from None

    def metric(self, region: str, rule: str, metric: str, start: int, period: int) -> float | None:
        """``INSIGHT_RULE_METRIC(rule, metric)`` over ``[start, start + period)``; None: no data (or no rule)."""
        with self._lock:
            found = self._region(region).rules.get(rule)
            return None if found is None else found.series.metric(metric, start, period)

    def names(self, region: str) -> list[str]:
        with self._lock:
            return sorted(self._region(region).rules)


def wire(value: Any) -> Any:
    """A response with its datetimes as epoch seconds (what the JSON protocol carries)."""
    from datetime import datetime

    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return value

