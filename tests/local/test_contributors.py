"""Contributor Insights (flowwatch.local.contributors), pure: rules, events, reports.

References are computed here with plain Python (collections.Counter over the generated events'
own fields), never with the module's helpers. Rules are AWS's documented VPC flow-log examples
("Contributor Insights rule examples") or built the same way.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict

import pytest

from flowwatch.local.contributors import (MAX_DEFINITION_LENGTH, Evaluator, InsightRuleError, parse_rule,
                                          report)

SCHEMA = {"Name": "CloudWatchLogRule", "Version": 1}
GROUP = "/flowwatch/lab/flows"

# AWS's examples: byte transfers by source and destination; rejected TCP connections
BYTES_RULE = {"Schema": SCHEMA, "LogGroupNames": [GROUP], "LogFormat": "CLF",
              "Fields": {"4": "srcaddr", "5": "dstaddr", "10": "bytes"},
              "Contribution": {"Keys": ["srcaddr", "dstaddr"], "ValueOf": "bytes", "Filters": []},
              "AggregateOn": "Sum"}
REJECTED_TCP = {"Schema": SCHEMA, "LogGroupNames": [GROUP], "LogFormat": "CLF",
                "Fields": {"3": "interfaceID", "4": "sourceAddress", "8": "protocol", "13": "action"},
                "Contribution": {"Keys": ["interfaceID", "sourceAddress"],
                                 "Filters": [{"Match": "protocol", "EqualTo": 6}, {"Match": "action", "In": ["REJECT"]}]},
                "AggregateOn": "Sum"}
REJECTED_SOURCES = {"Schema": SCHEMA, "LogGroupNames": ["/flowwatch/*"], "LogFormat": "CLF",
                    "Fields": {"4": "srcaddr", "13": "action"},
                    "Contribution": {"Keys": ["srcaddr"], "Filters": [{"Match": "action", "In": ["REJECT"]}]},
                    "AggregateOn": "Count"}


def flows(n: int, seed: int = 7, start_ms: int = 1_700_000_000_000, step_ms: int = 1000) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"t": start_ms + i * step_ms, "eni": f"eni-{rng.randrange(3)}",
                    "src": f"10.0.0.{rng.randrange(8)}", "dst": f"203.0.113.{rng.randrange(4)}",
                    "sport": rng.randrange(1024, 65535), "dport": rng.choice([22, 80, 443, 3389]),
                    "proto": rng.choice([1, 6, 17]), "packets": rng.randrange(1, 20),
                    "bytes": rng.choice([rng.randrange(40, 9000), "-"]) if rng.random() < 0.1 else rng.randrange(40, 9000),
                    "action": rng.choice(["ACCEPT", "REJECT"])})
    return out


def line(f: dict) -> str:
    # version-2 record: version account eni src dst sport dport proto packets bytes start end action status
    return (f"2 123456789012 {f['eni']} {f['src']} {f['dst']} {f['sport']} {f['dport']} {f['proto']} "
            f"{f['packets']} {f['bytes']} 1 2 {f['action']} OK")


def events(fs: list[dict]) -> list[tuple[int, str]]:
    return [(f["t"], line(f)) for f in fs]


def run(rule_body: dict, evs, group: str = GROUP):
    rule = parse_rule(json.dumps(rule_body))
    ev = Evaluator({"r": rule})
    ev.feed(group, evs)
    return rule, ev.series["r"]


# ---- evaluation against a Counter reference -------------------------------------------------

def test_sum_of_bytes_by_pair_matches_a_counter_and_skips_non_numeric_values():
    fs = flows(3000)
    rule, series = run(BYTES_RULE, events(fs))
    expected: Counter = Counter()
    for f in fs:
        if f["bytes"] != "-":
            expected[(f["src"], f["dst"])] += f["bytes"]
    got = report(series, rule, {"StartTime": 1_699_000_000, "EndTime": 1_701_000_000, "Period": 86400,
                                "MaxContributorCount": 100})
    assert {tuple(c["Keys"]): c["ApproximateAggregateValue"] for c in got["Contributors"]} == dict(expected)
    assert got["AggregateValue"] == sum(expected.values())
    assert got["ApproximateUniqueCount"] == len(expected)
    assert got["KeyLabels"] == ["srcaddr", "dstaddr"] and got["AggregationStatistic"] == "SUM"


def test_rejected_tcp_example_sum_without_valueof_counts_events():
    fs = flows(2000, seed=3)
    rule, series = run(REJECTED_TCP, events(fs))
    expected = Counter((f["eni"], f["src"]) for f in fs if f["proto"] == 6 and f["action"] == "REJECT")
    got = report(series, rule, {"StartTime": 1_699_000_000, "EndTime": 1_701_000_000, "Period": 86400})
    top = [(tuple(c["Keys"]), c["ApproximateAggregateValue"]) for c in got["Contributors"]]
    ranked = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert top == [(k, float(v)) for k, v in ranked]


def test_metric_datapoints_per_period_match_the_reference():
    fs = flows(1800, seed=11)                      # 30 minutes, one flow a second
    rule, series = run(REJECTED_SOURCES, events(fs))
    period = 300
    per: dict[int, Counter] = defaultdict(Counter)
    for f in fs:
        if f["action"] == "REJECT":
            per[f["t"] // 1000 // period * period][f["src"]] += 1
    start = fs[0]["t"] // 1000
    got = report(series, rule, {"StartTime": start, "EndTime": start + 1800, "Period": period,
                                "Metrics": ["UniqueContributors", "MaxContributorValue", "SampleCount", "Sum",
                                            "Minimum", "Maximum", "Average"]})
    points = {int(p["Timestamp"].timestamp()): p for p in got["MetricDatapoints"]}
    in_range = {p: c for p, c in per.items() if p + period > start}
    assert set(points) == set(in_range)
    for p, counter in in_range.items():
        point = points[p]
        assert point["UniqueContributors"] == len(counter)
        assert point["MaxContributorValue"] == max(counter.values())
        assert point["SampleCount"] == sum(counter.values()) == point["Sum"]
        assert point["Minimum"] == point["Maximum"] == point["Average"] == 1.0
    # each contributor's datapoints: only the periods it appeared in, oldest first
    for c in got["Contributors"]:
        appeared = sorted(p for p, counter in in_range.items() if c["Keys"][0] in counter)
        assert [int(d["Timestamp"].timestamp()) for d in c["Datapoints"]] == appeared
        assert [d["ApproximateValue"] for d in c["Datapoints"]] == [in_range[p][c["Keys"][0]] for p in appeared]


def test_only_requested_metrics_are_returned():
    rule, series = run(REJECTED_SOURCES, events(flows(200)))
    got = report(series, rule, {"StartTime": 1_699_000_000, "EndTime": 1_701_000_000, "Period": 86400, "Metrics": ["Sum"]})
    assert all(set(p) == {"Timestamp", "Sum"} for p in got["MetricDatapoints"])


def test_sum_statistics_use_single_observations():
    evs = [(60_000, "2 1 eni-1 10.0.0.1 10.0.0.9 1 2 6 1 100 1 2 ACCEPT OK"),
           (61_000, "2 1 eni-1 10.0.0.1 10.0.0.9 1 2 6 1 300 1 2 ACCEPT OK"),
           (62_000, "2 1 eni-1 10.0.0.2 10.0.0.9 1 2 6 1 50 1 2 ACCEPT OK")]
    rule, series = run(BYTES_RULE, evs)
    assert series.metric("MaxContributorValue", 60, 60) == 400.0   # 10.0.0.1's 100 + 300
    assert series.metric("Minimum", 60, 60) == 50.0
    assert series.metric("Maximum", 60, 60) == 300.0
    assert series.metric("SampleCount", 60, 60) == 3.0
    assert series.metric("Average", 60, 60) == 150.0
    assert series.metric("UniqueContributors", 60, 60) == 2.0
    assert series.metric("Sum", 120, 60) is None                    # no event: a missing datapoint


def test_order_by_maximum_ranks_by_the_best_period():
    # a: 5 events in one minute; b: 3 a minute for 3 minutes (total 9 > 5, best period 3 < 5)
    evs = [(60_000 + i, f"x x x a") for i in range(5)]
    evs += [(m * 60_000 + i, f"x x x b") for m in (2, 3, 4) for i in range(3)]
    body = {"Schema": SCHEMA, "LogGroupNames": [GROUP], "LogFormat": "CLF",
            "Contribution": {"Keys": ["4"]}, "AggregateOn": "Count"}
    rule, series = run(body, evs)
    by_sum = report(series, rule, {"StartTime": 0, "EndTime": 600, "Period": 60})
    by_max = report(series, rule, {"StartTime": 0, "EndTime": 600, "Period": 60, "OrderBy": "Maximum"})
    assert [c["Keys"] for c in by_sum["Contributors"]] == [["b"], ["a"]]
    assert [c["Keys"] for c in by_max["Contributors"]] == [["a"], ["b"]]


def test_filters_operators_on_json_events():
    body = {"Schema": SCHEMA, "LogGroupNames": ["api"], "LogFormat": "JSON",
            "Contribution": {"Keys": ["$.ip"], "ValueOf": "$.bytes",
                             "Filters": [{"Match": "$.method", "NotIn": ["GET"]},
                                         {"Match": "$.status", "GreaterThan": 199},
                                         {"Match": "$.src.zone", "StartsWith": ["eu-", "us-"]},
                                         {"Match": "$.tags[0]", "IsPresent": True}]},
            "AggregateOn": "Sum"}
    docs = []
    rng = random.Random(5)
    for i in range(500):
        d: dict = {"ip": f"1.1.1.{rng.randrange(5)}", "bytes": rng.randrange(100),
                   "method": rng.choice(["GET", "PUT", "POST"]), "status": rng.choice([200, 404, 100, "x"]),
                   "src": {"zone": rng.choice(["eu-west", "us-east", "ap-south"])}}
        if rng.random() < 0.7:
            d["tags"] = ["t"]
        if rng.random() < 0.1:
            del d["ip"]
        docs.append(d)
    expected: Counter = Counter()
    for d in docs:
        if ("ip" in d and d["method"] != "GET" and isinstance(d["status"], int) and d["status"] > 199
                and d["src"]["zone"][:3] in ("eu-", "us-") and "tags" in d):
            expected[d["ip"]] += d["bytes"]
    rule, series = run(body, [(60_000 + i, json.dumps(d)) for i, d in enumerate(docs)] + [(1, "not json")],
                       group="api")
    got = report(series, rule, {"StartTime": 0, "EndTime": 3600, "Period": 3600, "MaxContributorCount": 100})
    assert {c["Keys"][0]: c["ApproximateAggregateValue"] for c in got["Contributors"]} == dict(expected)


@pytest.mark.parametrize(("flt", "value", "matches"), [
    ({"In": ["6"]}, "6", True), ({"In": ["6"]}, "17", False), ({"NotIn": ["6"]}, "17", True),
    ({"StartsWith": ["10."]}, "10.0.0.1", True), ({"StartsWith": ["10."]}, "110.0.0.1", False),
    ({"EqualTo": 6}, "6", True), ({"EqualTo": 6}, "6.0", True), ({"NotEqualTo": 6}, "7", True),
    ({"NotEqualTo": 6}, "-", False), ({"GreaterThan": 5}, "5", False), ({"LessThan": 5}, "4.5", True),
    ({"IsPresent": True}, None, False), ({"IsPresent": False}, None, True), ({"In": ["x"]}, None, False),
])
def test_each_filter_operator(flt, value, matches):
    body = {"Schema": SCHEMA, "LogGroupNames": ["g"], "LogFormat": "CLF",
            "Contribution": {"Keys": ["1"], "Filters": [{"Match": "2", **flt}]}, "AggregateOn": "Count"}
    rule = parse_rule(body)
    message = "k" if value is None else f"k {value}"
    assert (rule.contribution(message) is not None) is matches


def test_log_groups_prefix_and_case_sensitive_values():
    rule = parse_rule(REJECTED_SOURCES)
    assert rule.applies_to("/flowwatch/lab/flows") and not rule.applies_to("/other")
    assert rule.contribution("2 1 eni 10.0.0.1 x 1 2 6 1 1 1 2 reject OK") is None   # case sensitive
    ev = Evaluator({"r": rule})
    assert ev.feed("/other", [(0, "2 1 eni 10.0.0.1 x 1 2 6 1 1 1 2 REJECT OK")]) == 0


def test_clf_quoted_and_bracketed_fields():
    body = {"Schema": SCHEMA, "LogGroupNames": ["g"], "LogFormat": "CLF",
            "Fields": {"1": "ip", "4": "time", "5": "request", "6": "status"},
            "Contribution": {"Keys": ["ip", "request"], "Filters": [{"Match": "status", "EqualTo": 200}]},
            "AggregateOn": "Count"}
    rule = parse_rule(body)
    got = rule.contribution('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326')
    assert got == (("127.0.0.1", "GET /a.gif HTTP/1.0"), 1.0)


def test_deterministic_and_incremental():
    evs = events(flows(1000, seed=9))
    _, one = run(REJECTED_SOURCES, evs)
    rule = parse_rule(REJECTED_SOURCES)
    ev = Evaluator({"r": rule})
    for i in range(0, len(evs), 77):
        ev.feed(GROUP, evs[i:i + 77])
    req = {"StartTime": 1_699_000_000, "EndTime": 1_701_000_000, "Period": 86400}
    assert report(one, rule, req) == report(ev.series["r"], rule, req)


# ---- validation -----------------------------------------------------------------------------

def body_with(**changes):
    body = json.loads(json.dumps(REJECTED_SOURCES))
    for path, value in changes.items():
        target = body
        *parents, last = path.split("__")
        for p in parents:
            target = target[p]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return body


@pytest.mark.parametrize(("changes", "words"), [
    ({"Schema": {"Name": "X", "Version": 1}}, "Schema"),
    ({"LogFormat": "TEXT"}, "LogFormat"),
    ({"AggregateOn": "Avg"}, "AggregateOn"),
    ({"LogGroupNames": ...}, "LogGroupNames or LogGroupARNs"),
    ({"LogGroupARNs": ["arn:aws:logs:us-east-1:1:log-group:x"]}, "not both"),
    ({"Contribution__Keys": []}, "Keys"),
    ({"Contribution__Keys": ["srcaddr"] * 5}, "maximum is 4"),
    ({"Contribution__Keys": ["nosuch"]}, "neither a name in Fields"),
    ({"Contribution__ValueOf": "srcaddr"}, "only used with AggregateOn Sum"),
    ({"Contribution__Filters": [{"Match": "action", "In": ["A"]}] * 5}, "maximum is 4"),
    ({"Contribution__Filters": [{"Match": "action", "In": [str(i) for i in range(11)]}]}, "maximum is 10"),
    ({"Contribution__Filters": [{"Match": "action", "Contains": ["A"]}]}, "unknown operator"),
    ({"Contribution__Filters": [{"Match": "action", "In": ["A"], "NotIn": ["B"]}]}, "exactly one operator"),
    ({"Contribution__Filters": [{"Match": "action", "EqualTo": "REJECT"}]}, "single number"),
    ({"Contribution__Filters": [{"Match": "action", "IsPresent": "yes"}]}, "true or false"),
    ({"Contribution__Extra": 1}, "unknown Contribution field"),
    ({"Extra": 1}, "unknown field"),
    ({"Fields": {"0": "x"}}, "position"),
])
def test_invalid_rules_are_refused_with_a_named_field(changes, words):
    with pytest.raises(InsightRuleError) as err:
        parse_rule(json.dumps(body_with(**changes)))
    assert err.value.code == "InvalidParameterValue"
    assert words in err.value.message and len(err.value.message) <= 500


def test_json_paths_are_validated():
    body = {"Schema": SCHEMA, "LogGroupNames": ["g"], "LogFormat": "JSON",
            "Contribution": {"Keys": ["ip"]}, "AggregateOn": "Count"}
    with pytest.raises(InsightRuleError, match="JSON property path"):
        parse_rule(body)
    body["Contribution"]["Keys"] = ["$.users[1].name"]
    assert parse_rule(body).contribution('{"users": [{}, {"name": "n"}]}') == (("n",), 1.0)


@pytest.mark.parametrize("text", [
    "x" * (MAX_DEFINITION_LENGTH + 1),
    "[" * 5000 + "]" * 5000,
    '{"Schema": ' + "[" * 3000 + "]" * 3000 + "}",
    json.dumps({**REJECTED_SOURCES, "LogGroupNames": ["é"]}, ensure_ascii=False),
    "{not json",
    "",
])
def test_hostile_definitions_fail_fast_and_bounded(text):
    began = time.perf_counter()
    with pytest.raises(InsightRuleError) as err:
        parse_rule(text)
    assert time.perf_counter() - began < 0.5
    assert len(str(err.value)) <= 500


def test_huge_event_is_skipped_not_parsed():
    rule = parse_rule({"Schema": SCHEMA, "LogGroupNames": ["g"], "LogFormat": "JSON",
                       "Contribution": {"Keys": ["$.a"]}, "AggregateOn": "Count"})
    ev = Evaluator({"r": rule})
    assert ev.feed("g", [(0, '{"a": "' + "x" * 2_000_000 + '"}'), (0, "[" * 100_000), (0, '{"a": 1}')]) == 1


@pytest.mark.parametrize(("request_", "words"), [
    ({"StartTime": 600, "EndTime": 0, "Period": 60}, "StartTime must be less"),
    ({"StartTime": 0, "EndTime": 600, "Period": 0}, "Period"),
    ({"StartTime": 0, "EndTime": 600, "Period": 90}, "multiple of 60"),
    ({"StartTime": 0, "EndTime": 600, "Period": 60, "MaxContributorCount": 101}, "between 1 and 100"),
    ({"StartTime": 0, "EndTime": 600, "Period": 60, "MaxContributorCount": 0}, "between 1 and 100"),
    ({"StartTime": 0, "EndTime": 600, "Period": 60, "Metrics": ["p99"]}, "Metrics"),
    ({"StartTime": 0, "EndTime": 600, "Period": 60, "OrderBy": "Count"}, "OrderBy"),
    ({"StartTime": 0, "EndTime": 10**9, "Period": 60}, "maximum is"),
])
def test_report_request_validation(request_, words):
    rule, series = run(REJECTED_SOURCES, [])
    with pytest.raises(InsightRuleError, match=words):
        report(series, rule, request_)
    with pytest.raises(InsightRuleError) as err:
        report(series, rule, {"EndTime": 600, "Period": 60})
    assert err.value.code == "MissingParameter"


def test_default_max_contributor_count_is_10():
    evs = [(60_000, f"x x x 10.0.0.{i}") for i in range(30)]
    body = {"Schema": SCHEMA, "LogGroupNames": [GROUP], "LogFormat": "CLF",
            "Contribution": {"Keys": ["4"]}, "AggregateOn": "Count"}
    rule, series = run(body, evs)
    got = report(series, rule, {"StartTime": 0, "EndTime": 600, "Period": 60})
    assert len(got["Contributors"]) == 10 and got["ApproximateUniqueCount"] == 30
