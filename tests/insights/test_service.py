"""The local AWS's Logs Insights operations (flowwatch.local.insights_service) over the data plane's copy
of the log events, on moto in-process: what StartQuery accepts and refuses, the results and statistics
of GetQueryResults, StopQuery, DescribeQueries, and how long queries are kept."""

from __future__ import annotations

import json

import pytest

from flowwatch.local import insights_service as service_module
from flowwatch.local.api import ServiceError
from flowwatch.local.insights_service import InsightsService
from flowwatch.local.log_events import LogEvents

from tests.local.test_dataplane import SessionClients

REGION = "us-east-1"
NOW = 1_700_000_000.0
GROUP = "/fw/flow-logs"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def record(i: int, action: str) -> str:
    return f"2 123456789012 eni-0a{i % 3} 10.0.0.{i % 4} 8.8.8.8 {40000 + i} 443 6 2 {100 + i} 1 2 {action} OK"


@pytest.fixture
def plane(session):
    clients = SessionClients(session)
    logs = clients.client("logs", REGION)
    for group in (GROUP, "/fw/other"):
        logs.create_log_group(logGroupName=group)
    clock = Clock()
    events = LogEvents(clients, clock)
    at = int(NOW * 1000)
    batch = [{"timestamp": at - 1000 * i, "message": record(i, "REJECT" if i % 2 else "ACCEPT")} for i in range(20)]
    events.put(REGION, {"logGroupName": GROUP, "logStreamName": "eni-0a0-all", "logEvents": batch}, {})
    events.put(REGION, {"logGroupName": "/fw/other", "logStreamName": "s",
                        "logEvents": [{"timestamp": at, "message": record(99, "REJECT")}]}, {})
    return InsightsService(events, clock), clock


def start(svc, query, **kw):
    request = {"logGroupName": GROUP, "startTime": int(NOW) - 3600, "endTime": int(NOW), "queryString": query, **kw}
    return svc.start_query(REGION, request)["queryId"]


def results(svc, query_id):
    return svc.get_query_results(REGION, {"queryId": query_id})


def values(answer):
    return [{c["field"]: c["value"] for c in row} for row in answer["results"]]


def test_stats_rows_and_statistics(plane):
    svc, _ = plane
    answer = results(svc, start(svc, 'filter action = "REJECT" | stats count(*) as n, sum(bytes) as b'))
    assert answer["status"] == "Complete" and answer["queryLanguage"] == "CWLI"
    assert values(answer) == [{"n": "10", "b": str(sum(100 + i for i in range(1, 20, 2)))}]
    stats = answer["statistics"]
    assert stats["recordsMatched"] == 10.0 and stats["recordsScanned"] == 20.0
    assert stats["bytesScanned"] == float(sum(len(record(i, "REJECT" if i % 2 else "ACCEPT")) for i in range(20)))


def test_rows_of_a_query_without_stats_carry_ptr_and_come_newest_first(plane):
    svc, _ = plane
    rows = values(results(svc, start(svc, "fields @timestamp, srcPort | limit 3")))
    assert [r["srcPort"] for r in rows] == ["40000", "40001", "40002"]
    assert rows[0]["@timestamp"] == "2023-11-14 22:13:20.000"
    assert all(r["@ptr"] for r in rows) and len({r["@ptr"] for r in rows}) == 3
    stats = results(svc, start(svc, "fields srcPort | limit 3"))["statistics"]
    assert stats["recordsScanned"] == 20.0        # every event of the window is scanned, not only the 3 shown


def test_the_window_is_in_seconds_and_inclusive(plane):
    svc, _ = plane
    count = 'stats count(*) as n'
    assert values(results(svc, start(svc, count, startTime=int(NOW) - 5, endTime=int(NOW) - 1))) == [{"n": "5"}]
    assert values(results(svc, start(svc, count, startTime=int(NOW), endTime=int(NOW)))) == [{"n": "1"}]


def test_several_groups_by_name_list_or_arn(plane):
    svc, _ = plane
    arn = f"arn:aws:logs:{REGION}:123456789012:log-group:/fw/other:*"
    for kw in ({"logGroupNames": [GROUP, "/fw/other"]}, {"logGroupIdentifiers": [GROUP, arn]}):
        request = {"startTime": int(NOW) - 3600, "endTime": int(NOW), "queryString": "stats count(*) as n by @log"}
        rows = values(results(svc, svc.start_query(REGION, {**request, **kw})["queryId"]))
        assert sorted((r["@log"], r["n"]) for r in rows) == [("123456789012:/fw/flow-logs", "20"),
                                                              ("123456789012:/fw/other", "1")]


def test_the_request_limit_bounds_the_rows(plane):
    svc, _ = plane
    assert len(results(svc, start(svc, "fields srcPort", limit=4))["results"]) == 4


@pytest.mark.parametrize(("change", "code", "message"), [
    ({"logGroupName": None}, "InvalidParameterException", "Exactly one of logGroupName"),
    ({"logGroupNames": [GROUP]}, "InvalidParameterException", "Exactly one of logGroupName"),
    ({"logGroupName": "/missing"}, "ResourceNotFoundException", "does not exist"),
    ({"startTime": None}, "InvalidParameterException", "'startTime'"),
    ({"endTime": -1}, "InvalidParameterException", "'endTime'"),
    ({"startTime": int(NOW), "endTime": int(NOW) - 1}, "InvalidParameterException", "End time should not be before"),
    ({"queryString": None}, "InvalidParameterException", "'queryString'"),
    ({"queryString": "fields " + "a" * 10_000}, "InvalidParameterException", "length less than or equal to 10000"),
    ({"limit": 0}, "InvalidParameterException", "between 1 and 10000"),
    ({"limit": 10_001}, "InvalidParameterException", "between 1 and 10000"),
    ({"queryLanguage": "SQL"}, "InvalidParameterException", "only CWLI"),
    ({"logGroupIdentifiers": ["arn:aws:s3:::bucket"], "logGroupName": None}, "InvalidParameterException",
     "Invalid log group ARN"),
])
def test_start_query_refuses_what_aws_refuses(plane, change, code, message):
    svc, _ = plane
    request = {"logGroupName": GROUP, "startTime": int(NOW) - 60, "endTime": int(NOW), "queryString": "stats count(*)"}
    request.update(change)
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(ServiceError) as caught:
        svc.start_query(REGION, request)
    assert caught.value.code == code and message in caught.value.message


def test_a_malformed_query_gets_the_compile_error_with_offsets(plane):
    svc, _ = plane
    with pytest.raises(ServiceError) as caught:
        start(svc, "filter action = | stats count(*)")
    body = json.loads(caught.value.body())
    assert body["__type"] == "MalformedQueryException"
    assert body["queryCompileError"] == {"location": {"startCharOffset": 16, "endCharOffset": 16},
                                         "message": "mismatched input '|' expecting an expression"}
    assert body["message"] == body["queryCompileError"]["message"]


def test_stop_query_is_false_once_complete_and_unknown_ids_are_not_found(plane):
    svc, _ = plane
    query_id = start(svc, "stats count(*)")
    assert svc.stop_query(REGION, {"queryId": query_id}) == {"success": False}
    for call in (svc.stop_query, svc.get_query_results):
        with pytest.raises(ServiceError, match="ResourceNotFoundException"):
            call(REGION, {"queryId": "0000"})


def test_describe_queries_newest_first_by_group_and_status_in_pages(plane):
    svc, _ = plane
    first, second = start(svc, "stats count(*)"), start(svc, "fields @message")
    listed = svc.describe_queries(REGION, {})["queries"]
    assert [q["queryId"] for q in listed] == [second, first]
    assert listed[0] == {"queryId": second, "queryString": "fields @message", "status": "Complete",
                         "createTime": int(NOW * 1000), "logGroupName": GROUP, "queryLanguage": "CWLI"}
    assert svc.describe_queries(REGION, {"logGroupName": "/fw/other"})["queries"] == []
    assert svc.describe_queries(REGION, {"status": "Running"})["queries"] == []
    page = svc.describe_queries(REGION, {"maxResults": 1})
    assert [q["queryId"] for q in page["queries"]] == [second] and page["nextToken"]
    rest = svc.describe_queries(REGION, {"maxResults": 1, "nextToken": page["nextToken"]})
    assert [q["queryId"] for q in rest["queries"]] == [first] and "nextToken" not in rest
    with pytest.raises(ServiceError, match="enum value set"):
        svc.describe_queries(REGION, {"status": "Done"})


def test_queries_are_forgotten_after_seven_days_and_beyond_the_count(plane, monkeypatch):
    svc, clock = plane
    old = start(svc, "stats count(*)")
    clock.now += 7 * 86_400 + 1
    with pytest.raises(ServiceError, match="ResourceNotFoundException"):
        results(svc, old)
    monkeypatch.setattr(service_module, "MAX_QUERIES", 2)
    ids = [start(svc, "stats count(*)") for _ in range(3)]
    with pytest.raises(ServiceError):
        results(svc, ids[0])
    assert results(svc, ids[2])["status"] == "Complete"


def test_a_query_past_its_time_ends_in_timeout_and_too_many_groups_in_failed(plane, monkeypatch):
    svc, _ = plane
    ticks = iter(range(0, 10_000, 100))
    slow = InsightsService(svc.events, svc.now, seconds=50, monotonic=lambda: next(ticks))
    assert results(slow, start(slow, "stats count(*)"))["status"] == "Timeout"
    from flowwatch.insights import language

    monkeypatch.setattr(language, "MAX_GROUPS", 2)
    answer = results(svc, start(svc, "stats count(*) by srcPort"))
    assert answer["status"] == "Failed" and answer["results"] == []
