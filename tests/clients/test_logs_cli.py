"""CloudWatch Logs as the AWS CLI and flowlogs-reader see the local AWS: FilterLogEvents with every
pattern kind, time range, paging and stream selection; TestMetricFilter; DescribeLogGroups'
metricFilterCount."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import flowlogs_reader
import pytest

from flowwatch.records import RecordFormat

pytestmark = pytest.mark.slow

V2 = RecordFormat.parse("v2")
LAB_PATTERN = V2.filter_pattern({"protocol": 1, "action": "REJECT"})   # the lab's metric filter pattern
T0 = (int(time.time()) - 600) * 1000


def lab_lines(action: str, protocol: int, n: int, start: int) -> list[str]:
    return V2.synth(account="123456789012", eni="eni-0aa", srcaddr="10.0.0.10", dstaddr="8.8.8.8",
                    protocol=protocol, action=action, start=start, count=n)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def group(aws_cli):
    """A log group: stream eni-a-all (3 ICMP rejects, 2 TCP accepts, a NODATA), stream json-1 (2 JSON events)."""
    name = f"/flowwatch/{uuid.uuid4().hex[:8]}"
    aws_cli("logs", "create-log-group", "--log-group-name", name)
    for stream in ("eni-a-all", "json-1"):
        aws_cli("logs", "create-log-stream", "--log-group-name", name, "--log-stream-name", stream)
    rejects = lab_lines("REJECT", 1, 3, T0 // 1000)
    accepts = lab_lines("ACCEPT", 6, 2, T0 // 1000)
    nodata = "2 123456789012 eni-0aa - - - - - - - 1700000000 1700000060 - NODATA"
    flow = [*rejects[:1], *accepts[:1], *rejects[1:], accepts[1], nodata]
    events = [{"timestamp": T0 + i * 1000, "message": m} for i, m in enumerate(flow)]
    aws_cli("logs", "put-log-events", "--log-group-name", name, "--log-stream-name", "eni-a-all",
            "--log-events", json.dumps(events))
    docs = [json.dumps({"action": "REJECT", "srcaddr": "10.0.0.10"}), json.dumps({"action": "ACCEPT"})]
    aws_cli("logs", "put-log-events", "--log-group-name", name, "--log-stream-name", "json-1",
            "--log-events", json.dumps([{"timestamp": T0 + 500 + i * 1000, "message": m} for i, m in enumerate(docs)]))
    return {"name": name, "rejects": rejects, "accepts": accepts, "nodata": nodata, "json": docs}


def messages(answer) -> list[str]:
    return [e["message"] for e in answer["events"]]


def test_lab_pattern_returns_exactly_the_rejected_icmp_records(aws_cli, group):
    got = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--filter-pattern", LAB_PATTERN)
    assert messages(got) == group["rejects"]
    assert {e["logStreamName"] for e in got["events"]} == {"eni-a-all"}


@pytest.mark.parametrize(("pattern", "expected"), [
    ('{ $.action = "REJECT" }', lambda g: [g["json"][0]]),
    ("?ACCEPT ?NODATA", lambda g: sorted([*g["accepts"], g["nodata"], g["json"][1]])),
    ("REJECT -ICMP", lambda g: sorted([*g["rejects"], g["json"][0]])),
    ('"eni-0aa" -REJECT -ACCEPT', lambda g: [g["nodata"]]),
])
def test_pattern_kinds(aws_cli, group, pattern, expected):
    got = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--filter-pattern", pattern)
    assert sorted(messages(got)) == sorted(expected(group))


def test_time_range_is_inclusive_at_both_ends(aws_cli, group):
    got = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--log-stream-names", "eni-a-all",
                  "--start-time", str(T0 + 1000), "--end-time", str(T0 + 3000))
    assert [e["timestamp"] for e in got["events"]] == [T0 + 1000, T0 + 2000, T0 + 3000]


def test_paging_with_max_items_and_page_size(aws_cli, group):
    everything = messages(aws_cli("logs", "filter-log-events", "--log-group-name", group["name"]))
    assert len(everything) == 8
    assert messages(aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--page-size", "2")) \
        == everything
    first = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--max-items", "3")
    assert messages(first) == everything[:3] and first["NextToken"]
    rest = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--max-items", "10",
                   "--starting-token", first["NextToken"])
    assert messages(rest) == everything[3:]


def test_next_token_pages_until_the_end(aws_cli, group):
    seen, token = [], None
    while True:
        args = ["logs", "filter-log-events", "--log-group-name", group["name"], "--limit", "3", "--no-paginate"]
        page = aws_cli(*args, *(["--next-token", token] if token else []))
        seen += [e["eventId"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert len(seen) == 8 and len(set(seen)) == 8 and seen == sorted(seen)


def test_interleaved_and_stream_selection(aws_cli, group):
    both = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--interleaved")
    stamps = [e["timestamp"] for e in both["events"]]
    assert stamps == sorted(stamps) and {e["logStreamName"] for e in both["events"]} == {"eni-a-all", "json-1"}
    by_name = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"], "--log-stream-names", "json-1")
    by_prefix = aws_cli("logs", "filter-log-events", "--log-group-name", group["name"],
                        "--log-stream-name-prefix", "json")
    assert messages(by_name) == messages(by_prefix) == group["json"]
    assert "InvalidParameterException" in aws_cli.fails(
        "logs", "filter-log-events", "--log-group-name", group["name"], "--log-stream-names", "json-1",
        "--log-stream-name-prefix", "json")


def test_flowlogs_reader_with_filter_pattern(boto, group):
    start = datetime.datetime.fromtimestamp(T0 / 1000 - 60, tz=datetime.timezone.utc)
    reader = flowlogs_reader.FlowLogsReader(group["name"], boto_client=boto("logs"), filter_pattern=LAB_PATTERN,
                                            start_time=start, end_time=start + datetime.timedelta(hours=1))
    records = list(reader)
    assert [(r.action, r.protocol, r.interface_id) for r in records] == [("REJECT", 1, "eni-0aa")] * 3
    assert [(r.srcaddr, r.bytes) for r in records] == [(line.split()[3], int(line.split()[9]))
                                                       for line in group["rejects"]]


# ---- TestMetricFilter ----------------------------------------------------------------------

def test_test_metric_filter_numbers_matches_and_extracts_named_fields(aws_cli):
    lines = [*lab_lines("ACCEPT", 6, 1, 1700000000), *lab_lines("REJECT", 1, 1, 1700000000)]
    got = aws_cli("logs", "test-metric-filter", "--filter-pattern", LAB_PATTERN, "--log-event-messages", *lines)
    assert [(m["eventNumber"], m["eventMessage"]) for m in got["matches"]] == [(2, lines[1])]
    values = got["matches"][0]["extractedValues"]
    assert values["$action"] == "REJECT" and values["$protocol"] == "1" and values["$srcaddr"] == "10.0.0.10"
    assert len(values) == 14


def test_test_metric_filter_terms_and_json_extract_nothing(aws_cli):
    got = aws_cli("logs", "test-metric-filter", "--filter-pattern", '{ $.action = "REJECT" }',
                  "--log-event-messages", '{"action": "REJECT"}', '{"action": "ACCEPT"}', "REJECT")
    assert [(m["eventNumber"], m["extractedValues"]) for m in got["matches"]] == [(1, {})]


def test_test_metric_filter_invalid_pattern(aws_cli):
    from flowwatch.patterns import PatternError, compile_pattern

    with pytest.raises(PatternError) as refused:
        compile_pattern("[a, b")
    err = aws_cli.fails("logs", "test-metric-filter", "--filter-pattern", "[a, b", "--log-event-messages", "x")
    assert f"(InvalidParameterException) when calling the TestMetricFilter operation: {refused.value.aws_message}" \
        in err


def test_describe_log_groups_counts_metric_filters(aws_cli, group):
    aws_cli("logs", "put-metric-filter", "--log-group-name", group["name"], "--filter-name", "rejects",
            "--filter-pattern", LAB_PATTERN, "--metric-transformations",
            "metricName=Ping-Deny,metricNamespace=Flowwatch/Test,metricValue=1")
    got = aws_cli("logs", "describe-log-groups", "--log-group-name-prefix", group["name"])
    assert [(g["logGroupName"], g["metricFilterCount"]) for g in got["logGroups"]] == [(group["name"], 1)]
