"""The operations the data plane serves or completes, as pure functions or on in-process parts:
TestMetricFilter, DescribeAlarmHistory, DescribeFlowLogs' destinationOptions (the whole answers,
as real clients see them, are in tests/clients/)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from flowwatch.local.alarm_history import AlarmHistory
from flowwatch.local.api import ServiceError
from flowwatch.local.flow_log_options import complete_describe_flow_logs
from flowwatch.local.metric_filters import serve_test_metric_filter as metric_filter_test

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def test_metric_filter_numbers_from_one_and_names_fields_with_dollar():
    got = metric_filter_test("us-east-1", {"filterPattern": "[w1=ERROR, w2]",
                                           "logEventMessages": ["INFO x", "ERROR disk"]})
    assert got == {"matches": [{"eventNumber": 2, "eventMessage": "ERROR disk",
                                "extractedValues": {"$w1": "ERROR", "$w2": "disk"}}]}


@pytest.mark.parametrize("request_", [
    {"filterPattern": "[a, b", "logEventMessages": ["x"]},
    {"filterPattern": "x", "logEventMessages": []},
    {"filterPattern": "x", "logEventMessages": ["x"] * 51},
    {"logEventMessages": ["x"]},
])
def test_metric_filter_refuses(request_):
    with pytest.raises(ServiceError) as err:
        metric_filter_test("us-east-1", request_)
    assert err.value.code == "InvalidParameterException"


def test_empty_pattern_matches_every_message():
    assert [m["eventNumber"] for m in metric_filter_test("r", {"filterPattern": "", "logEventMessages": ["a", "b"]})[
        "matches"]] == [1, 2]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


def test_history_silent_sets_record_nothing_and_changes_record_old_and_new():
    history = AlarmHistory(Clock())
    history.silent("r", "a", "INSUFFICIENT_DATA")
    history.after_set_alarm_state("r", {"AlarmName": "a", "StateValue": "INSUFFICIENT_DATA",
                                        "StateReason": "Unchecked: Initial alarm creation"}, b"")
    history.after_set_alarm_state("r", {"AlarmName": "a", "StateValue": "ALARM", "StateReason": "breach",
                                        "StateReasonData": json.dumps({"version": "1.0"})}, b"")
    history.after_set_alarm_state("r", {"AlarmName": "a", "StateValue": "ALARM", "StateReason": "again"}, b"")
    history.action("r", "a", "arn:aws:sns:r:1:t")
    items = history.describe("r", {"ScanBy": "TimestampAscending"})["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from INSUFFICIENT_DATA to ALARM",
                                                    "Successfully executed action arn:aws:sns:r:1:t"]
    data = json.loads(items[0]["HistoryData"])
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "breach", "stateReasonData": {"version": "1.0"}}
    assert history.describe("other", {})["AlarmHistoryItems"] == []


def test_history_pages_and_refuses_bad_tokens():
    history = AlarmHistory(Clock())
    for i in range(5):
        history.after_put_metric_alarm("r", {"AlarmName": f"a{i}"}, b"")
    first = history.describe("r", {"MaxRecords": 2})
    second = history.describe("r", {"MaxRecords": 2, "NextToken": first["NextToken"]})
    third = history.describe("r", {"MaxRecords": 2, "NextToken": second["NextToken"]})
    names = [i["AlarmName"] for page in (first, second, third) for i in page["AlarmHistoryItems"]]
    assert names == ["a4", "a3", "a2", "a1", "a0"] and "NextToken" not in third
    with pytest.raises(ServiceError):
        history.describe("r", {"NextToken": "garbage"})
    with pytest.raises(ServiceError):
        history.describe("r", {"MaxRecords": 101})


def flow_logs_xml(*items: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><DescribeFlowLogsResponse xmlns="{NS}"><requestId>1</requestId>'
            f'<flowLogSet>{"".join(items)}</flowLogSet></DescribeFlowLogsResponse>').encode()


def item(flow_log_id: str, kind: str) -> str:
    return f"<item><flowLogId>{flow_log_id}</flowLogId><logDestinationType>{kind}</logDestinationType></item>"


def test_describe_flow_logs_completed_for_s3_only():
    body = flow_logs_xml(item("fl-1", "s3"), item("fl-2", "cloud-watch-logs"), item("fl-3", "s3"))
    kept = {"fl-1": {"FileFormat": "parquet", "HiveCompatiblePartitions": True}}
    root = ET.fromstring(complete_describe_flow_logs(body, lambda fl: kept.get(fl["FlowLogId"], {})))
    options = {i.findtext(f"{{{NS}}}flowLogId"): [(c.tag.split("}")[1], c.text) for c in
                                                  i.find(f"{{{NS}}}destinationOptions") or ()]
               for i in root.iter(f"{{{NS}}}item")}
    assert options == {
        "fl-1": [("fileFormat", "parquet"), ("hiveCompatiblePartitions", "true"), ("perHourPartition", "false")],
        "fl-2": [],
        "fl-3": [("fileFormat", "plain-text"), ("hiveCompatiblePartitions", "false"), ("perHourPartition", "false")]}


def test_describe_flow_logs_without_s3_is_unchanged():
    body = flow_logs_xml(item("fl-2", "cloud-watch-logs"))
    assert complete_describe_flow_logs(body, lambda fl: {}) is body
