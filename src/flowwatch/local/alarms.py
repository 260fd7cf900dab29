"""CloudWatch metric-alarm evaluation, as pure functions (no AWS call, no clock).

The local alarm evaluator (``flowwatch.local.alarm_state``) reads an alarm with DescribeAlarms, the
datapoints of its evaluation range with GetMetricStatistics, calls :func:`evaluate`, and on a
state change sets the state on the server and publishes :func:`notification` to the actions.

Rules, from the CloudWatch User Guide, "Using Amazon CloudWatch alarms" -> "Configuring how
CloudWatch alarms treat missing data" and "Avoiding premature transitions to alarm state":

* Datapoints are the alarm's statistic over aligned periods (``[k*Period, (k+1)*Period)``). The
  *evaluation range* holds more periods than ``EvaluationPeriods`` (N): AWS's examples use 5
  for N = 3; flowwatch uses N + 2 for every alarm. The newest period is the one containing
  "now" (it may still be filling: a breaching partial period alarms at once, as on AWS).
* At least N real datapoints in the range: the N most recent real ones are evaluated and
  TreatMissingData is not consulted. ALARM when at least ``DatapointsToAlarm`` (M) of them
  breach, else OK.
* No datapoint at all: ``missing`` -> INSUFFICIENT_DATA, ``ignore`` -> keep the state,
  ``breaching`` -> ALARM, ``notBreaching`` -> OK.
* Some, but fewer than N: ``breaching``/``notBreaching`` fill only the shortfall (N - real)
  with breaching / non-breaching points ("missing data points only as few times as
  possible"). ``missing``/``ignore`` evaluate the real points; a premature-alarm guard makes
  the alarm go to ALARM when no real point in the range is non-breaching and the oldest
  breaching point among the last N periods is at least M periods old (``missing``; ``ignore``
  keeps the state instead); with a non-breaching real point and fewer than M breaching the
  state is OK; otherwise (too few, too recent breaching points) the state is kept. These
  reproduce every row of both example tables of that page (tests/local/test_alarms.py).
* A new alarm starts in INSUFFICIENT_DATA (PutMetricAlarm: "the alarm state is immediately set
  to INSUFFICIENT_DATA"); an update keeps the state.

The notification is the JSON CloudWatch publishes to SNS (AlarmName, NewStateValue,
OldStateValue, NewStateReason, StateChangeTime, Trigger, ...) and the e-mail text AWS sends to
e-mail subscribers of the topic.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")

COMPARISONS: dict[str, tuple[Any, str]] = {
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")
EXTRA_PERIODS = 2  # evaluation range = EvaluationPeriods + 2 (AWS's example: 5 for 3)

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)", "eu-central-1": "EU (Frankfurt)", "eu-north-1": "EU (Stockholm)",
    "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)", "ap-south-1": "Asia Pacific (Mumbai)",
    "ca-central-1": "Canada (Central)", "sa-east-1": "South America (Sao Paulo)",
}


@dataclass(frozen=True)
class AlarmSpec:
    """What evaluation needs from a MetricAlarm of DescribeAlarms."""

    name: str
    namespace: str
    metric: str
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"
    dimensions: tuple[tuple[str, str], ...] = ()
    unit: str | None = None

    @classmethod
    def from_describe(cls, alarm: Mapping[str, Any]) -> "AlarmSpec":
        """From one ``MetricAlarms`` item; ValueError when flowwatch cannot evaluate it
        (metric math, extended statistic, unknown comparison)."""
        if alarm.get("Metrics") or not alarm.get("MetricName"):
            raise ValueError("metric-math alarms are not evaluated locally")
        statistic = alarm.get("Statistic")
        if statistic not in STATISTICS:
            raise ValueError(f"statistic {alarm.get('ExtendedStatistic') or statistic!r} is not evaluated locally")
        comparison = alarm.get("ComparisonOperator", "")
        if comparison not in COMPARISONS:
            raise ValueError(f"comparison {comparison!r} is not evaluated locally")
        n = int(alarm.get("EvaluationPeriods") or 1)
        treat = alarm.get("TreatMissingData") or "missing"
        return cls(name=alarm["AlarmName"], namespace=alarm["Namespace"], metric=alarm["MetricName"],
                   statistic=statistic, period=int(alarm.get("Period") or 60), evaluation_periods=n,
                   datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or n),
                   threshold=float(alarm.get("Threshold", 0.0)), comparison=comparison,
                   treat_missing_data=treat if treat in TREATMENTS else "missing",
                   dimensions=tuple((d["Name"], d["Value"]) for d in alarm.get("Dimensions") or ()),
                   unit=alarm.get("Unit"))

    @property
    def evaluation_range(self) -> int:
        return self.evaluation_periods + EXTRA_PERIODS

    def breaches(self, value: float) -> bool:
        return bool(COMPARISONS[self.comparison][0](value, self.threshold))

    def breaches_at(self, start: int, value: float) -> bool:
        """The per-period breach predicate of :func:`evaluate` (a static threshold ignores the period)."""
        return self.breaches(value)

    def crossed(self, used: Sequence[tuple[int, float]], breaching: int, state: str) -> str:
        """The StateReason of an evaluation of real datapoints (``Threshold Crossed: ...``)."""
        return _crossed(self, used, breaching, state, COMPARISONS[self.comparison][1])

    def period_starts(self, now: float) -> list[int]:
        """Epoch seconds of the evaluation range's periods, oldest first; the last contains ``now``."""
        newest = int(now) // self.period * self.period
        return [newest - i * self.period for i in reversed(range(self.evaluation_range))]


class Rules(Protocol):
    """What :func:`evaluate` needs of an alarm: N, M, TreatMissingData, a per-period breach
    predicate and the reason text. :class:`AlarmSpec` is one; ``flowwatch.local.anomaly`` gives
    its band and Contributor Insights alarms their own."""

    @property
    def evaluation_periods(self) -> int: ...
    @property
    def datapoints_to_alarm(self) -> int: ...
    @property
    def treat_missing_data(self) -> str: ...
    def breaches_at(self, start: int, value: float) -> bool: ...
    def crossed(self, used: Sequence[tuple[int, float]], breaching: int, state: str) -> str: ...


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    used: tuple[tuple[int, float], ...] = ()     # (period start, value) of the evaluated real datapoints
    filled: int = 0                              # missing datapoints filled by TreatMissingData

    def reason_data(self, spec: AlarmSpec, now: float) -> dict[str, Any]:
        """``StateReasonData`` as CloudWatch writes it for a threshold alarm."""
        data: dict[str, Any] = {"version": "1.0", "queryDate": _iso(now), "statistic": spec.statistic,
                                "period": spec.period, "recentDatapoints": [v for _, v in self.used],
                                "threshold": spec.threshold}
        if self.used:
            data["startDate"] = _iso(self.used[0][0])
            data["evaluatedDatapoints"] = [{"timestamp": _iso(t), "value": v} for t, v in reversed(self.used)]
        return data


def evaluate(spec: Rules, values: Sequence[float | None], current: str,
             starts: Sequence[int] | None = None) -> Evaluation:
    """The new state of an alarm from the datapoints of its evaluation range (oldest first,
    ``None`` = missing). ``current`` is kept where the rules say "retain"."""
    n, m = spec.evaluation_periods, spec.datapoints_to_alarm
    starts = list(starts) if starts is not None else list(range(len(values)))
    real = [(t, v) for t, v in zip(starts, values) if v is not None]

    if len(real) >= n:
        used = tuple(real[-n:])
        breaching = sum(spec.breaches_at(t, v) for t, v in used)
        state = ALARM if breaching >= m else OK
        return Evaluation(state, spec.crossed(used, breaching, state), used)

    if not real:
        treat = spec.treat_missing_data
        if treat == "ignore":
            return Evaluation(current, f"no datapoints were received for {len(values)} periods; "
                                       "missing data is ignored (state kept)")
        if treat == "missing":
            return Evaluation(INSUFFICIENT, f"Insufficient Data: {len(values)} datapoints were unknown.")
        state = ALARM if treat == "breaching" else OK
        label = "Breaching" if treat == "breaching" else "NonBreaching"
        return Evaluation(state, f"Threshold Crossed: no datapoints were received for {len(values)} periods and "
                                 f"{n} missing datapoints were treated as [{label}].", filled=n)

    used = tuple(real)
    breaching = sum(spec.breaches_at(t, v) for t, v in used)
    shortfall = n - len(real)
    treat = spec.treat_missing_data
    if treat in ("breaching", "notBreaching"):
        total = breaching + (shortfall if treat == "breaching" else 0)
        state = ALARM if total >= m else OK
        label = "Breaching" if treat == "breaching" else "NonBreaching"
        reason = (spec.crossed(used, total, state)
                  + f" {shortfall} missing datapoint(s) were treated as [{label}].")
        return Evaluation(state, reason, used, filled=shortfall)

    # missing / ignore: evaluate the real points only
    if breaching >= m:
        return Evaluation(ALARM, spec.crossed(used, breaching, ALARM), used)
    any_good = any(not spec.breaches_at(t, v) for t, v in real)
    last_n = list(zip(starts, values))[-n:]
    ages = [len(last_n) - i for i, (t, v) in enumerate(last_n) if v is not None and spec.breaches_at(t, v)]
    if not any_good and ages and max(ages) >= m:
        if treat == "missing":
            return Evaluation(ALARM, spec.crossed(used, breaching, ALARM)
                              + " (the more recent datapoints are missing)", used)
        return Evaluation(current, "only breaching datapoints, the more recent missing: missing data is "
                                   "ignored (state kept)", used)
    if any_good:
        return Evaluation(OK, spec.crossed(used, breaching, OK), used)
    return Evaluation(current, f"{len(real)} breaching datapoint(s), too few and too recent to alarm yet "
                               "(state kept)", used)


def _crossed(spec: AlarmSpec, used: Sequence[tuple[int, float]], breaching: int, state: str, words: str) -> str:
    points = ", ".join(f"{_num(v)} ({_short(t)})" for t, v in reversed(used))
    counted = breaching if state == ALARM else len(used) - breaching
    verb = "was" if state == ALARM else "was not"
    transition = "OK -> ALARM" if state == ALARM else "ALARM -> OK"
    need = spec.datapoints_to_alarm if state == ALARM else spec.evaluation_periods - spec.datapoints_to_alarm + 1
    return (f"Threshold Crossed: {counted} out of the last {len(used)} datapoints [{points}] {verb} {words} "
            f"the threshold ({_num(spec.threshold)}) (minimum {need} datapoint{'s' if need != 1 else ''} "
            f"for {transition} transition).")


# ---- the notification ----------------------------------------------------------------------

def notification(alarm: Mapping[str, Any], spec: AlarmSpec | None, *, old: str, new: str, reason: str,
                 when: float, account: str, region: str) -> dict[str, Any]:
    """The alarm JSON CloudWatch publishes to the SNS topics of AlarmActions / OKActions. ``spec`` None: a
    metric-math alarm (its ``Metrics`` from DescribeAlarms), whose Trigger is :func:`metric_math_trigger`."""
    name = spec.name if spec is not None else alarm["AlarmName"]
    return {
        "AlarmName": name,
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _iso(_epoch(alarm.get("AlarmConfigurationUpdatedTimestamp"))),
        "NewStateValue": new,
        "NewStateReason": reason,
        "StateChangeTime": _iso(when),
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.get("AlarmArn") or f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
        "OldStateValue": old,
        "OKActions": list(alarm.get("OKActions") or ()),
        "AlarmActions": list(alarm.get("AlarmActions") or ()),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions") or ()),
        "Trigger": metric_math_trigger(alarm) if spec is None else {
            "MetricName": spec.metric, "Namespace": spec.namespace, "StatisticType": "Statistic",
            "Statistic": spec.statistic.upper(), "Unit": spec.unit,
            "Dimensions": [{"value": v, "name": k} for k, v in spec.dimensions], "Period": spec.period,
            "EvaluationPeriods": spec.evaluation_periods, "DatapointsToAlarm": spec.datapoints_to_alarm,
            "ComparisonOperator": spec.comparison, "Threshold": spec.threshold,
            "TreatMissingData": spec.treat_missing_data, "EvaluateLowSampleCountPercentile": "",
        },
    }


def metric_math_trigger(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Trigger`` of a metric-math alarm's notification, in the shape CloudWatch publishes it (an
    anomaly detection alarm's SNS message: ``Period``, ``EvaluationPeriods``, ``ComparisonOperator``,
    ``ThresholdMetricId``, ``TreatMissingData``, ``EvaluateLowSampleCountPercentile`` and ``Metrics``: each
    query with ``Id``, ``MetricStat`` {``Metric`` {``Dimensions`` [{value, name}], ``MetricName``,
    ``Namespace``}, ``Period``, ``Stat``} or ``Expression``/``Label``, and ``ReturnData``); a static
    threshold alarm on an expression has ``Threshold`` instead of ``ThresholdMetricId``."""
    metrics: list[dict[str, Any]] = []
    periods = []
    for q in alarm.get("Metrics") or ():
        item: dict[str, Any] = {"Id": q.get("Id")}
        stat = q.get("MetricStat")
        if stat:
            metric = stat.get("Metric") or {}
            item["MetricStat"] = {"Metric": {"Dimensions": [{"value": d["Value"], "name": d["Name"]}
                                                            for d in metric.get("Dimensions") or ()],
                                             "MetricName": metric.get("MetricName"),
                                             "Namespace": metric.get("Namespace")},
                                  "Period": stat.get("Period"), "Stat": stat.get("Stat")}
            if stat.get("Unit"):
                item["MetricStat"]["Unit"] = stat["Unit"]
            periods.append(stat.get("Period"))
        else:
            item["Expression"] = q.get("Expression")
            if q.get("Label"):
                item["Label"] = q["Label"]
            if q.get("Period"):
                item["Period"] = q["Period"]
                periods.append(q["Period"])
        item["ReturnData"] = q.get("ReturnData", True) is not False
        metrics.append(item)
    n = int(alarm.get("EvaluationPeriods") or 1)
    trigger: dict[str, Any] = {"Period": int(alarm.get("Period") or next((p for p in periods if p), 60)),
                               "EvaluationPeriods": n, "DatapointsToAlarm": int(alarm.get("DatapointsToAlarm") or n),
                               "ComparisonOperator": alarm.get("ComparisonOperator")}
    if alarm.get("ThresholdMetricId"):
        trigger["ThresholdMetricId"] = alarm["ThresholdMetricId"]
    else:
        trigger["Threshold"] = float(alarm.get("Threshold", 0.0))
    trigger.update(TreatMissingData=alarm.get("TreatMissingData") or "missing", EvaluateLowSampleCountPercentile="",
                   Metrics=metrics)
    return trigger


BAND_WORDS = {"LessThanLowerOrGreaterThanUpperThreshold": "outside the band (less than the lower or greater "
                                                          "than the upper threshold)",
              "LessThanLowerThreshold": "less than the lower threshold of the band",
              "GreaterThanUpperThreshold": "greater than the upper threshold of the band"}


def subject(message: Mapping[str, Any]) -> str:
    """``ALARM: "name" in US East (N. Virginia)``, cut to SNS's 100 characters."""
    text = f'{message["NewStateValue"]}: "{message["AlarmName"]}" in {message["Region"]}'
    return text if len(text) <= 100 else text[:99] + "…"


def email_text(message: Mapping[str, Any]) -> str:
    """The e-mail body AWS sends to the topic's e-mail subscribers for this state change."""
    t = message["Trigger"]
    if "Metrics" in t:
        threshold = (BAND_WORDS.get(t["ComparisonOperator"], t["ComparisonOperator"]) if "ThresholdMetricId" in t
                     else f"{COMPARISONS.get(t['ComparisonOperator'], (None, t['ComparisonOperator']))[1]} "
                          f"{_num(t['Threshold'])}")
        monitored = ["Monitored Metrics:"]
        for m in t["Metrics"]:
            if "MetricStat" in m:
                ms = m["MetricStat"]
                dims = ", ".join(f"[{d['name']} = {d['value']}]" for d in ms["Metric"]["Dimensions"]) or "[]"
                monitored.append(f"- {m['Id']}: {ms['Metric']['Namespace']} {ms['Metric']['MetricName']} {dims}, "
                                 f"{ms['Stat']} over {ms['Period']} seconds")
            else:
                monitored.append(f"- {m['Id']}: {m['Expression']}")
        monitored.append(f"- TreatMissingData:           {t['TreatMissingData']}")
    else:
        threshold = f"{COMPARISONS.get(t['ComparisonOperator'], (None, t['ComparisonOperator']))[1]} " \
                    f"{_num(t['Threshold'])}"
        dims = ", ".join(f"[{d['name']} = {d['value']}]" for d in t["Dimensions"]) or "[]"
        monitored = [
            "Monitored Metric:",
            f"- MetricNamespace:            {t['Namespace']}",
            f"- MetricName:                 {t['MetricName']}",
            f"- Dimensions:                 {dims}",
            f"- Period:                     {t['Period']} seconds",
            f"- Statistic:                  {t['Statistic'].title()}",
            f"- Unit:                       {t['Unit'] or 'not specified'}",
            f"- TreatMissingData:           {t['TreatMissingData']}",
        ]
    return "\n".join([
        f'You are receiving this email because your Amazon CloudWatch Alarm "{message["AlarmName"]}" in the '
        f'{message["Region"]} region has entered the {message["NewStateValue"]} state, because '
        f'"{message["NewStateReason"]}" at "{_long(message["StateChangeTime"])}".',
        "",
        "Alarm Details:",
        f"- Name:                       {message['AlarmName']}",
        f"- Description:                {message.get('AlarmDescription') or ''}",
        f"- State Change:               {message['OldStateValue']} -> {message['NewStateValue']}",
        f"- Reason for State Change:    {message['NewStateReason']}",
        f"- Timestamp:                  {_long(message['StateChangeTime'])}",
        f"- AWS Account:                {message['AWSAccountId']}",
        f"- Alarm Arn:                  {message['AlarmArn']}",
        "",
        "Threshold:",
        f"- The alarm is in the ALARM state when the metric is {threshold} for at least "
        f"{t['DatapointsToAlarm']} of the last {t['EvaluationPeriods']} period(s) of {t['Period']} seconds.",
        "",
        *monitored,
        "",
        "State Change Actions:",
        f"- OK: {message['OKActions']}",
        f"- ALARM: {message['AlarmActions']}",
        f"- INSUFFICIENT_DATA: {message['InsufficientDataActions']}",
    ])


def sns_message(message: Mapping[str, Any]) -> str:
    """The ``Message`` of the SNS Publish (``MessageStructure=json``): e-mail subscribers get the
    text, every other protocol the alarm JSON, as with CloudWatch."""
    body = json.dumps(message)
    return json.dumps({"default": body, "email": email_text(message)})


def _num(v: float) -> str:
    return repr(float(v))


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return 0.0


def _iso(t: float) -> str:
    dt = datetime.fromtimestamp(t, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def _short(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def _long(iso: str) -> str:
    try:
        dt = datetime.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return iso
    return dt.strftime("%A %d %B, %Y %H:%M:%S UTC")
