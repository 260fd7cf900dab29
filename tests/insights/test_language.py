"""The Logs Insights language (flowwatch.insights.language) on the flow-log records AWS documents
("Flow log record examples", Amazon VPC User Guide): every command, the discovered fields, the values
and formats GetQueryResults gives, and the errors a malformed or hostile query gets."""

from __future__ import annotations

import pytest

from flowwatch.insights import language as lang
from flowwatch.insights.fields import VPC_FIELDS, discover, insights_name
from flowwatch.insights.language import QueryError, Source, Timestamp, compile_query, natural_key

# AWS's documented examples: accepted SSH, rejected RDP, no data, skipped data, an ICMP ping answered
# (security group) and its reply rejected (network ACL)
ACCEPT_SSH = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
REJECT_RDP = "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"
NODATA = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
SKIPDATA = "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA"
PING = "2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 ACCEPT OK"
PING_REPLY = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 0 0 1 4 336 1432917094 1432917142 REJECT OK"
LINES = [ACCEPT_SSH, REJECT_RDP, NODATA, SKIPDATA, PING, PING_REPLY]
T0 = 1_700_000_000_000     # 2023-11-14 22:13:20 UTC


def events(lines=LINES, step=60_000):
    """One event a minute, oldest first."""
    return [Source(T0 + i * step, T0 + i * step + 250, f"eni-{i % 2}-all", "123456789010:/fw/flow-logs", m, f"p{i}")
            for i, m in enumerate(lines)]


def run(text, lines=LINES, step=60_000, limit=10_000):
    query = compile_query(text)
    source = events(lines, step)
    if query.wants_newest_first:
        source = list(reversed(source))
    return query.run(source, newest_first=query.wants_newest_first, limit=limit)


def rows(text, **kw):
    return [dict(r) for r in run(text, **kw).rows]


def column(text, name, **kw):
    return [r.get(name) for r in rows(text, **kw)]


# ---- fields ---------------------------------------------------------------------------------

def test_default_format_records_get_the_discovered_names_in_order():
    found = discover(ACCEPT_SSH)
    assert list(found) == list(VPC_FIELDS)
    assert found["srcAddr"] == "172.31.16.139" and found["dstPort"] == "22" and found["logStatus"] == "OK"
    assert found["startTime"] == "1418530010" and found["endTime"] == "1418530070"


def test_other_messages_discover_nothing_but_json_keys_flattened_with_dots():
    assert discover("3 a b c") == {} and discover(ACCEPT_SSH.replace("2 ", "5 ", 1)) == {}
    assert discover('{"a": {"b": 1, "c": [{"d": "x"}, true]}, "n": null}') == {"a.b": 1, "a.c.0.d": "x",
                                                                                "a.c.1": "true"}
    assert discover("{not json") == {}


def test_insights_names_of_flow_log_fields():
    assert insights_name("srcaddr") == "srcAddr" and insights_name("log-status") == "logStatus"
    assert insights_name("start") == "startTime" and insights_name("tcp-flags") == "tcpFlags"
    assert insights_name("pkt-dst-aws-service") == "pktDstAwsService"


def test_a_query_without_fields_shows_every_field_with_a_value_and_ptr():
    (row,) = rows("filter srcPort = 49761")
    assert row["@timestamp"] == "2023-11-14 22:14:20.000"
    assert row["@ingestionTime"] == "2023-11-14 22:14:20.250"
    assert row["@log"] == "123456789010:/fw/flow-logs" and row["@logStream"] == "eni-1-all"
    assert row["@message"] == REJECT_RDP and row["action"] == "REJECT" and row["@ptr"] == "p1"
    assert set(VPC_FIELDS) <= set(row)


def test_json_events_are_queried_by_their_flattened_keys():
    lines = ['{"src": {"ip": "10.0.0.1"}, "bytes": 10}', '{"src": {"ip": "10.0.0.2"}, "bytes": 5}',
             '{"src": {"ip": "10.0.0.1"}, "bytes": 2.5}']
    assert rows("stats sum(bytes) as b by src.ip | sort b desc", lines=lines) == [
        {"src.ip": "10.0.0.1", "b": "12.5"}, {"src.ip": "10.0.0.2", "b": "5"}]


# ---- commands --------------------------------------------------------------------------------

def test_filter_then_stats_count_gives_the_number_of_matches():
    assert rows('filter action="REJECT" | stats count(*) as n') == [{"n": "2"}]
    assert rows("stats count(*)") == [{"count(*)": "6"}]


def test_stats_over_nothing_still_gives_one_row():
    assert rows('filter action = "NONE" | stats count(*) as n, sum(bytes) as b') == [{"n": "0"}]


def test_stats_functions_and_their_formats():
    (row,) = rows("filter logStatus = 'OK' | stats count(*) as n, count(srcPort) as ports, sum(bytes) as total,"
                  " avg(bytes) as mean, min(bytes) as low, max(packets) as high, count_distinct(srcAddr) as sources,"
                  " earliest(srcAddr) as first, latest(srcAddr) as last")
    assert row == {"n": "4", "ports": "4", "total": "9170", "mean": "2292.5", "low": "336", "high": "20",
                   "sources": "3", "first": "172.31.16.139", "last": "172.31.16.139"}


def test_avg_is_a_float_even_when_whole_and_count_an_integer():
    assert rows("stats avg(packets) as a, count(*) as c by action | sort c desc | limit 1") == [
        {"action": "ACCEPT", "a": "12.0", "c": "2"}]


def test_stats_by_several_fields_puts_the_groups_first():
    out = rows("filter ispresent(protocol) and protocol != '-' | stats sum(bytes) as b by action, protocol"
               " | sort b desc, protocol asc")
    assert [list(r) for r in out] == [["action", "protocol", "b"]] * 4
    assert [(r["action"], r["protocol"], r["b"]) for r in out] == [
        ("ACCEPT", "6", "4249"), ("REJECT", "6", "4249"), ("ACCEPT", "1", "336"), ("REJECT", "1", "336")]


def test_stats_by_bin_floors_the_timestamp_to_the_period():
    out = rows("stats count(*) as n by bin(2m) as window | sort window asc")
    assert out == [{"window": "2023-11-14 22:12:00.000", "n": "1"}, {"window": "2023-11-14 22:14:00.000", "n": "2"},
                   {"window": "2023-11-14 22:16:00.000", "n": "2"}, {"window": "2023-11-14 22:18:00.000", "n": "1"}]
    assert column("stats count(*) by bin(1h)", "bin(1h)") == ["2023-11-14 22:00:00.000"]
    assert column("stats count(*) by bin(1mon)", "bin(1mon)") == ["2023-11-01 00:00:00.000"]


def test_arithmetic_inside_stats_and_a_second_stats_over_the_first():
    assert rows("stats sum(bytes) / 1000 as kb, count(*) * 2 as twice") == [{"kb": "9.17", "twice": "12"}]
    assert rows("stats count(*) as n by action | stats max(n) as most, count(*) as groups") == [
        {"most": "2", "groups": "3"}]


def test_fields_with_aliases_and_expressions_and_display_choosing_the_columns():
    out = rows("filter protocol = 6 | fields srcAddr, bytes / packets as per_packet, concat(srcAddr, ':', srcPort)"
               " as src")
    assert out == [{"srcAddr": "172.31.9.69", "per_packet": "212.45", "src": "172.31.9.69:49761", "@ptr": "p1"},
                   {"srcAddr": "172.31.16.139", "per_packet": "212.45", "src": "172.31.16.139:20641", "@ptr": "p0"}]
    assert rows("filter protocol = 6 | fields srcAddr, dstAddr | display dstAddr") == [
        {"dstAddr": "172.31.9.12", "@ptr": "p1"}, {"dstAddr": "172.31.16.21", "@ptr": "p0"}]


def test_without_sort_newest_first_and_limit_takes_the_newest():
    assert column("fields @timestamp", "@ptr") == ["p5", "p4", "p3", "p2", "p1", "p0"]
    assert column("fields action | limit 2", "@ptr") == ["p5", "p4"]
    assert column("fields action", "@ptr", limit=3) == ["p5", "p4", "p3"]


def test_sort_asc_desc_and_several_keys():
    assert column("filter protocol = 1 | sort @timestamp asc", "@ptr") == ["p4", "p5"]
    assert column("filter logStatus = 'OK' | sort bytes desc, srcAddr asc | fields srcAddr", "srcAddr") == [
        "172.31.9.69", "172.31.16.139", "172.31.16.139", "203.0.113.12"]    # natural: 9 before 16


def test_sort_is_natural_as_the_documentation_shows():
    documented = ["!:", "#", "*%04", "0#", "5A", "111A", "2345_", "@", "@_", "A", "A9876fghj", "a12345hfh", "0"]
    import random

    shuffled = documented[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == documented
    assert sorted(["10", "9", "x10", "x9"], key=natural_key) == ["x9", "x10", "9", "10"]


def test_dedup_keeps_the_first_row_of_each_value():
    assert column("filter logStatus = 'OK' | sort @timestamp desc | dedup action | fields action", "action") == [
        "REJECT", "ACCEPT"]
    assert column("dedup interfaceId | fields interfaceId", "@ptr") == ["p5", "p3"]


def test_limit_after_stats_and_sort():
    assert rows("stats count(*) as n by logStatus | sort n desc | limit 1") == [{"logStatus": "OK", "n": "4"}]


def test_parse_glob_form_names_the_stars():
    out = rows('parse @message "* * * * * * * * * * * * * *" as v, account, eni, src, dst, sport, dport, proto,'
               ' pkts, size, first, last, act, status | filter act = "REJECT" | stats count(*) as n by src | sort src')
    assert out == [{"src": "172.31.9.69", "n": "1"}, {"src": "172.31.16.139", "n": "1"}]
    assert column('parse @message "eni-* " as tail | fields tail', "tail") == ["1235b8ca123456789"] * 2 + [
        "11111111aaaaaaaaa"] + ["1235b8ca123456789"] * 3


def test_parse_regex_form_takes_named_groups():
    out = rows("parse @message /(?<NetworkInterface>eni-.*?) / | stats count(*) by NetworkInterface"
               " | sort NetworkInterface")
    assert out == [{"NetworkInterface": "eni-1235b8ca123456789", "count(*)": "5"},     # 1235 is the shorter run
                   {"NetworkInterface": "eni-11111111aaaaaaaaa", "count(*)": "1"}]


def test_parse_leaves_the_fields_unset_where_the_pattern_does_not_match():
    assert column('parse @message "REJECT *" as tail | filter ispresent(tail) | fields tail', "tail") == ["OK", "OK"]


# ---- expressions ----------------------------------------------------------------------------

@pytest.mark.parametrize(("condition", "expected"), [
    ('action = "REJECT"', ["p5", "p1"]),
    ("action != 'ACCEPT'", ["p5", "p3", "p2", "p1"]),
    ("dstPort = 22", ["p0"]),
    ('dstPort = "22"', ["p0"]),
    ("bytes > 4000", ["p1", "p0"]),
    ("bytes >= 336 and bytes <= 336", ["p5", "p4"]),
    ("bytes < 1000", ["p5", "p4"]),
    ("dstPort in [22, 3389]", ["p1", "p0"]),
    ('action not in ["ACCEPT", "REJECT"]', ["p3", "p2"]),
    ('logStatus like "DATA"', ["p3", "p2"]),
    ("@message like /SKIP|NO/", ["p3", "p2"]),
    ("@message =~ /^2 \\d+ eni-1111/", ["p3"]),
    ('interfaceId not like "1235"', ["p3"]),
    ("not (protocol = 6 or protocol = 1)", ["p3", "p2"]),
    ("protocol = 1 and action = 'REJECT' or dstPort = 22", ["p5", "p0"]),
    ("bytes / packets > 200 and -bytes < -4000", ["p1", "p0"]),
    ("bytes % 1000 = 249", ["p1", "p0"]),
    ("2 ^ 3 = 8 and packets * 2 = 40", ["p1", "p0"]),
    ("strlen(srcAddr) = 13 and toupper(action) = 'ACCEPT'", ["p0"]),
    ("isempty(nosuchfield) and not ispresent(nosuchfield)", ["p5", "p4", "p3", "p2", "p1", "p0"]),
    ("nosuchfield = 1 or nosuchfield != 1 or nosuchfield > 0", []),
    ("@timestamp >= 1700000240000", ["p5", "p4"]),
])
def test_filter_conditions(condition, expected):
    assert column(f"filter {condition}", "@ptr") == expected


def test_the_substring_prefilter_never_changes_a_result():
    escaped = '{"action": "\\u0052EJECT", "srcAddr": "10.1.1.1"}'       # JSON may escape what it holds
    lines = LINES + [escaped, "REJECT is a word here, not a record"]
    assert column('filter action = "REJECT" | fields srcAddr', "srcAddr", lines=lines) == [
        "10.1.1.1", "172.31.16.139", "172.31.9.69"]
    # a field set by parse is not the discovered one: its value need not be in the message as such
    assert rows('parse @message "* *" as action, rest | filter action = "2" | stats count(*) as n',
                lines=lines) == [{"n": "6"}]
    assert rows('fields concat("RE", "JECT") as action | filter action = "REJECT" | stats count(*) as n',
                lines=lines) == [{"n": "8"}]
    assert rows('filter @message like "SKIP" and logStatus = "SKIPDATA" | stats count(*) as n') == [{"n": "1"}]
    assert run('filter action = "REJECT" | stats count(*)', lines=lines).records_scanned == 8


def test_text_that_is_not_a_number_compares_as_text_and_arithmetic_on_it_is_null():
    assert column("filter srcAddr > '200.0' | fields srcAddr", "srcAddr") == []     # a number and text: no order
    assert column("filter srcAddr > '200.0.0.0' | fields srcAddr", "srcAddr") == ["203.0.113.12"]
    assert rows("filter logStatus = 'NODATA' | fields bytes + 1 as more") == [{"@ptr": "p2"}]


def test_comments_and_case_of_keywords():
    text = "# rejects only\nfilter action = 'REJECT'  # the ACL's\n| STATS count(*) AS n # done"
    assert rows(text) == [{"n": "2"}]


def test_values_render_as_getqueryresults_gives_them():
    assert lang.render(Timestamp(T0)) == "2023-11-14 22:13:20.000"
    assert lang.render(3) == "3" and lang.render(2.5) == "2.5" and lang.render(4.0) == "4.0"
    assert lang.render(True) == "true" and lang.render(None) is None and lang.render(float("nan")) is None


def test_statistics_count_scanned_and_matched_records_and_bytes():
    result = run("filter protocol = 1 | stats count(*)")
    assert (result.records_scanned, result.records_matched) == (6, 2)
    assert result.bytes_scanned == sum(len(m) for m in LINES)


# ---- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message", "start"), [
    ("", "the query is empty", 0),
    ("   # only a comment", "the query is empty", 0),
    ("count(*)", "mismatched input 'count' expecting {K_FIELDS, K_DISPLAY, K_FILTER, K_PARSE, K_STATS, K_SORT, "
                 "K_LIMIT, K_DEDUP}", 0),
    ("filter", "mismatched input '<EOF>' expecting an expression", 6),
    ("filter action = ", "mismatched input '<EOF>' expecting an expression", 16),
    ("fields a | | fields b", "mismatched input '|'", 11),
    ("fields a |", "mismatched input '<EOF>' expecting a command after '|'", 10),
    ("fields a b", "mismatched input 'b' expecting '|' or the end of the query", 9),
    ("filter x like 5", "mismatched input '5' expecting a string or a /regular expression/", 14),
    ("filter x =~ 'a'", "mismatched input ''a'' expecting a /regular expression/", 12),
    ("filter x in [y]", "a list after 'in' holds literals only", 14),
    ("filter (a = 1", "mismatched input '<EOF>' expecting ')'", 13),
    ("filter a = 'open", "unterminated string literal", 11),
    ("filter a like /open", "unterminated regular expression", 14),
    ("limit 0", "limit must be between 1 and 10000, not 0", 6),
    ("limit 10001", "limit must be between 1 and 10000", 6),
    ("limit x", "mismatched input 'x' expecting a number", 6),
    ("unnest x", "the unnest command is not supported by the local Logs Insights", 0),
    ("stats pct(bytes, 50)", "the function pct() is not supported by the local Logs Insights", 6),
    ("stats nope(bytes)", "unknown function: nope", 6),
    ("stats bytes", "'bytes' in stats is not an aggregate function", 11),
    ("stats count(*) by count(*)", "stats cannot group by an aggregate", 26),
    ("stats sum(count(*))", "the aggregate function count() is only allowed in stats", 10),
    ("fields sum(bytes)", "the aggregate function sum() is only allowed in stats", 7),
    ("stats count(*) | stats count(*) | stats count(*)", "at most 2 stats commands", 34),
    ("stats count(*) by bin(5)", "bin() takes one time period", 18),
    ("stats count(*) by bin(5parsecs)", "'5parsecs' is not a time period", 22),
    ("fields strlen(a, b)", "strlen() takes 1 argument, not 2", 7),
    ('parse @message "no stars" as a', "a parse pattern needs at least one '*'", 15),
    ('parse @message "* *" as a', "the pattern has 2 '*' but 1 field names follow 'as'", 15),
    ("parse @message /(a/", "invalid regular expression /(a/: missing )", 15),
    ("parse @message /eni-\\S+/", "a parse regular expression needs named groups", 15),
    ("filter a = §", "token recognition error at: '§'", 11),
])
def test_malformed_queries_are_refused_with_the_place(text, message, start):
    with pytest.raises(QueryError) as caught:
        compile_query(text)
    assert message in caught.value.message
    assert caught.value.start == start and caught.value.end >= caught.value.start


def test_bounds_on_length_nesting_regexes_and_regex_size():
    with pytest.raises(QueryError, match="at most 10,000"):
        compile_query("fields " + "a" * 10_000)
    compile_query("filter " + "(" * 30 + "a = 1" + ")" * 30)
    with pytest.raises(QueryError, match="nests too deep"):
        compile_query("filter " + "(" * 40 + "a = 1" + ")" * 40)
    with pytest.raises(QueryError, match="nests too deep"):
        compile_query("filter " + "not " * 40 + "a")
    with pytest.raises(QueryError, match="at most 20 regular expressions"):
        compile_query("filter " + " or ".join(["@message like /a/"] * 21))
    with pytest.raises(QueryError, match="too complex"):
        compile_query("filter @message like /(?:ab|cd){900}/")


def test_stats_refuses_more_groups_than_the_bound(monkeypatch):
    monkeypatch.setattr(lang, "MAX_GROUPS", 3)
    with pytest.raises(QueryError, match="more than 3 groups"):
        run("stats count(*) by @ptr")


def test_regex_is_linear_on_a_pathological_pattern():
    lines = ["a" * 5000 + "!"]
    assert rows("filter @message like /(a+)+b/ | stats count(*) as n", lines=lines) == [{"n": "0"}]
