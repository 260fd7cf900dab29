"""CloudWatch Logs metric filters on the local AWS (flowwatch.local.metric_filters): every accepted
PutLogEvents -> the log group's metric filters -> PutMetricData, per minute, with values, dimensions,
unit and defaultValue as CloudWatch puts them.

End to end on a server of this module's own; unit tests with fake clients (no AWS at all).
"""

from __future__ import annotations

import pytest

from datetime import datetime, timezone
from typing import Any

from flowwatch.local.metric_filters import MetricFilters, metric_data
from flowwatch.patterns import compile_pattern
from tests.local.test_dataplane import V2, api, aws, name, records, server, server_now  # noqa: F401 (fixtures)

MINUTE = 1_700_000_040   # a minute boundary


# ---- end to end on the server --------------------------------------------------------------

@pytest.mark.slow
def test_metric_filter_values_default_and_dimensions(aws, api):
    logs, cw = aws("logs"), aws("cloudwatch")
    group, ns = f"/fw/{name()}", f"NS{name()}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    rejects = V2.filter_pattern({"action": "REJECT"})
    logs.put_metric_filter(logGroupName=group, filterName="count", filterPattern=V2.filter_pattern(
        {"protocol": 1, "action": "REJECT"}), metricTransformations=[
        {"metricName": "Pings", "metricNamespace": ns, "metricValue": "1", "defaultValue": 0}])
    logs.put_metric_filter(logGroupName=group, filterName="bytes", filterPattern=rejects, metricTransformations=[
        {"metricName": "Bytes", "metricNamespace": ns, "metricValue": "$bytes", "unit": "Bytes",
         "dimensions": {"Protocol": "$protocol"}}])
    minute = server_now(api) // 60 * 60 - 120
    lines = (records(api, "eni-0eeeeeeeeeeeeeeee", 3, start=minute)
             + records(api, "eni-0eeeeeeeeeeeeeeee", 2, action="ACCEPT", protocol=6, start=minute + 60))
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": int(line.split()[10]) * 1000, "message": line} for line in lines])

    def stats(metric: str, dims=(), stat="Sum"):
        points = cw.get_metric_statistics(Namespace=ns, MetricName=metric, Dimensions=list(dims),
                                          StartTime=minute - 60, EndTime=minute + 180, Period=60,
                                          Statistics=[stat])["Datapoints"]
        return sorted((int(p["Timestamp"].timestamp()), p[stat]) for p in points)

    # minute 1: three matching pings -> 3; minute 2: events but no match -> defaultValue 0 once
    assert stats("Pings") == [(minute, 3.0), (minute + 60, 0.0)]
    assert stats("Pings", stat="SampleCount") == [(minute, 3.0), (minute + 60, 1.0)]
    expected_bytes = sum(int(line.split()[9]) for line in lines[:3])
    assert stats("Bytes", [{"Name": "Protocol", "Value": "1"}]) == [(minute, float(expected_bytes))]


# ---- unit: metric_data, pure ---------------------------------------------------------------

PINGS = V2.filter_pattern({"protocol": 1, "action": "REJECT"})


def _events(n: int, start: int, action: str = "REJECT", protocol: int = 1) -> list[dict[str, Any]]:
    lines = V2.synth(account="123456789012", eni="eni-0aaaaaaaaaaaaaaaa", srcaddr="10.0.0.10", dstaddr="8.8.8.8",
                     protocol=protocol, action=action, start=start, count=n)
    return [{"timestamp": start * 1000 + i, "message": line} for i, line in enumerate(lines)]


def _at(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def test_matches_put_their_values_and_a_minute_without_match_its_default_once():
    tr = {"metricName": "Pings", "metricNamespace": "NS", "metricValue": "1", "defaultValue": 0}
    events = _events(3, MINUTE) + _events(2, MINUTE + 60, action="ACCEPT", protocol=6)
    assert metric_data(compile_pattern(PINGS), tr, events) == [   # Unit "None": CloudWatch's default
        {"MetricName": "Pings", "Values": [1.0, 1.0, 1.0], "Timestamp": _at(MINUTE), "Unit": "None"},
        {"MetricName": "Pings", "Values": [0.0], "Timestamp": _at(MINUTE + 60), "Unit": "None"}]


def test_no_default_value_puts_nothing_for_a_minute_without_match():
    tr = {"metricName": "Pings", "metricNamespace": "NS", "metricValue": "1"}
    assert metric_data(compile_pattern(PINGS), tr, _events(2, MINUTE, action="ACCEPT", protocol=6)) == []


def test_field_values_dimensions_and_unit():
    tr = {"metricName": "Bytes", "metricNamespace": "NS", "metricValue": "$bytes", "unit": "Bytes",
          "dimensions": {"Protocol": "$protocol"}}
    events = _events(2, MINUTE) + _events(1, MINUTE, protocol=17)
    data = metric_data(compile_pattern(V2.filter_pattern({"action": "REJECT"})), tr, events)
    by_dims = {d["Dimensions"][0]["Value"]: d for d in data}
    assert set(by_dims) == {"1", "17"} and all(d["Unit"] == "Bytes" for d in data)
    assert by_dims["1"]["Values"] == [float(e["message"].split()[9]) for e in events[:2]]


def test_many_values_are_split_into_data_of_at_most_150():
    tr = {"metricName": "Pings", "metricNamespace": "NS", "metricValue": "1"}
    data = metric_data(compile_pattern(PINGS), tr, _events(151, MINUTE))
    assert [len(d["Values"]) for d in data] == [150, 1]


# ---- unit: the tap, with fake clients ------------------------------------------------------

class FakeLogs:
    def __init__(self, filters: list[dict[str, Any]]) -> None:
        self.filters = filters

    def get_paginator(self, operation: str) -> "FakeLogs":
        assert operation == "describe_metric_filters"
        return self

    def paginate(self, logGroupName: str):
        return [{"metricFilters": [f for f in self.filters if f["logGroupName"].startswith(logGroupName)]}]


class FakeCloudWatch:
    def __init__(self) -> None:
        self.put: list[dict[str, Any]] = []

    def put_metric_data(self, **kw: Any) -> None:
        self.put.append(kw)


class FakeClients:
    def __init__(self, **services: Any) -> None:
        self.services = services

    def client(self, service: str, region: str) -> Any:
        return self.services[service]

    def account(self, region: str) -> str:
        return "123456789012"


def _filter(group: str, **tr: Any) -> dict[str, Any]:
    return {"filterName": "f", "logGroupName": group, "filterPattern": PINGS,
            "metricTransformations": [{"metricName": "Pings", "metricNamespace": "NS", "metricValue": "1", **tr}]}


def test_only_accepted_events_of_the_group_count_and_the_alarm_evaluator_is_woken():
    # the fake returns /fw/a-other's filter too: only the group's own filters are evaluated
    cw = FakeCloudWatch()
    woken = []
    filters = MetricFilters(FakeClients(logs=FakeLogs([_filter("/fw/a"), _filter("/fw/a-other")]), cloudwatch=cw),
                            on_data=lambda: woken.append(1))
    events = _events(4, MINUTE)
    rejected = {"tooOldLogEventEndIndex": 0, "tooNewLogEventStartIndex": 3}   # keeps events 1 and 2
    assert filters.tap_put_log_events("us-east-1", {"logGroupName": "/fw/a", "logEvents": events},
                                      {"rejectedLogEventsInfo": rejected}) == 1
    assert cw.put == [{"Namespace": "NS", "MetricData": [
        {"MetricName": "Pings", "Values": [1.0, 1.0], "Timestamp": _at(MINUTE), "Unit": "None"}]}]
    assert woken == [1]


def test_nothing_put_wakes_nobody_and_a_bad_filter_is_skipped():
    cw = FakeCloudWatch()
    woken = []
    bad = {**_filter("/fw/b"), "filterPattern": "[unclosed"}
    filters = MetricFilters(FakeClients(logs=FakeLogs([bad]), cloudwatch=cw), on_data=lambda: woken.append(1))
    assert filters.tap_put_log_events("us-east-1", {"logGroupName": "/fw/b", "logEvents": _events(2, MINUTE)}, {}) == 0
    assert filters.tap_put_log_events("us-east-1", {"logGroupName": "/fw/b", "logEvents": []}, {}) == 0
    assert cw.put == [] and woken == []


def test_metric_data_is_put_20_at_a_time():
    cw = FakeCloudWatch()
    filters = MetricFilters(FakeClients(logs=FakeLogs([_filter("/fw/c")]), cloudwatch=cw))
    events = [e for m in range(21) for e in _events(1, MINUTE + 60 * m)]   # 21 minutes: 21 data
    assert filters.tap_put_log_events("us-east-1", {"logGroupName": "/fw/c", "logEvents": events}, {}) == 21
    assert [len(call["MetricData"]) for call in cw.put] == [20, 1]
