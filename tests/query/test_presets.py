"""Presets and time windows of `flowwatch query`: pure, no AWS, no DuckDB."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from flowwatch.errors import UsageError
from flowwatch import timewindow
from flowwatch.query import presets
from flowwatch.records import RecordFormat
from flowwatch.s3layout import S3Layout

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
V2 = RecordFormat.parse("v2").columns
V5 = RecordFormat.parse("v5").columns
LAYOUT = S3Layout("bucket", "123456789012", "us-east-1")


def _conditions(sql: str) -> list[str]:
    where = sqlglot.parse_one(sql, read="athena").args["where"].this
    parts = where.flatten() if isinstance(where, exp.And) else [where]
    return [p.sql(dialect="athena") for p in parts]


@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.name)
def test_every_preset_is_athena_sql_that_keeps_nodata_out(preset):
    tree = sqlglot.parse_one(preset.sql, read="athena")          # raises on a syntax error
    assert isinstance(tree, exp.Select)
    assert [t.name for t in tree.find_all(exp.Table)] == [presets.TEMPLATE_TABLE]
    built = presets.build(preset, table="flow_logs", params={"ip": "10.0.0.5", "vpc_cidr": "10.0.0.0/24"}, columns=V5)
    again = sqlglot.parse_one(built, read="athena")
    assert again.sql(dialect="athena") == sqlglot.parse_one(again.sql(dialect="athena"), read="athena").sql("athena")
    assert "log_status = 'OK'" in _conditions(built)
    assert preset.description and preset.name in presets.BY_NAME


@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: p.name)
def test_presets_use_the_glue_column_names(preset):
    read = {c.name for c in sqlglot.parse_one(preset.sql, read="athena").find_all(exp.Column)}
    assert read <= set(V5) | {"dt"}, read - set(V5)
    built = presets.build(preset, table="flow_logs", params={"ip": "10.0.0.5", "vpc_cidr": "10.0.0.0/24"})
    if "end" in read:
        assert '"end"' in built                                  # reserved in Trino: quoted


def test_rejects_is_the_labs_query():
    sql = presets.build(presets.BY_NAME["rejects"], table="flow_logs")
    tree = sqlglot.parse_one(sql, read="athena")
    assert [e.alias_or_name for e in tree.expressions] == [
        "date", "interface_id", "srcaddr", "dstaddr", "start", "end", "action", "protocol"]
    assert "action = 'REJECT'" in _conditions(sql)
    assert tree.args["order"].expressions[0].this.name == "start"


def test_window_becomes_partition_and_record_time_predicates():
    window = timewindow.TimeWindow(datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc),
                                   datetime(2026, 11, 27, 23, 50, tzinfo=timezone.utc))
    parts = window.partition_range(LAYOUT)
    sql = presets.build(presets.BY_NAME["top-talkers"], table="flow_logs", window=window, partitions=parts)
    conditions = _conditions(sql)
    # 23:50 + the delivery slack reaches the next day's partition
    assert "dt BETWEEN '2026/11/26' AND '2026/11/28'" in conditions
    assert f"start >= {int(window.start.timestamp())}" in conditions
    assert f"start < {int(window.end.timestamp())}" in conditions


def test_per_hour_and_hive_layouts_give_their_own_partition_values():
    window = timewindow.TimeWindow(datetime(2026, 11, 27, 5, 10, tzinfo=timezone.utc),
                                   datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc))
    hourly = S3Layout("b", "123456789012", "us-east-1", per_hour=True)
    hive = S3Layout("b", "123456789012", "us-east-1", hive=True)
    assert window.partition_range(hourly) == ("2026/11/27/05", "2026/11/27/06")
    assert window.partition_range(hive) == ("year=2026/month=11/day=27", "year=2026/month=11/day=27")


def test_table_name_limit_and_parameters_are_composed_not_formatted():
    sql = presets.build(presets.BY_NAME["traffic-to"], table="my_flows", params={"ip": " 10.0.0.7 "}, limit=5)
    tree = sqlglot.parse_one(sql, read="athena")
    assert [t.name for t in tree.find_all(exp.Table)] == ["my_flows"]
    assert tree.args["limit"].expression.name == "5"
    assert "dstaddr = '10.0.0.7'" in _conditions(sql)
    assert presets.build(presets.BY_NAME["top-talkers"], table="t").rstrip().endswith("LIMIT 10")


@pytest.mark.parametrize("bad", ["10.0.0.5' OR '1'='1", "10.0.0.256", "", "example.com"])
def test_addresses_are_validated(bad):
    with pytest.raises(UsageError, match="not an IPv4 or IPv6 address"):
        presets.build(presets.BY_NAME["traffic-from"], table="t", params={"ip": bad})


def test_ipv6_addresses_are_canonical():
    sql = presets.build(presets.BY_NAME["traffic-from"], table="t", params={"ip": "2001:DB8::0001"})
    assert "srcaddr = '2001:db8::1'" in _conditions(sql)


def test_required_and_optional_address():
    with pytest.raises(UsageError, match="needs an address"):
        presets.build(presets.BY_NAME["traffic-from"], table="t")
    icmp = presets.build(presets.BY_NAME["icmp"], table="t")
    assert not any(c.startswith("srcaddr") for c in _conditions(icmp))
    assert "srcaddr = '10.0.0.9'" in _conditions(presets.build(presets.BY_NAME["icmp"], table="t",
                                                                 params={"ip": "10.0.0.9"}))


def test_a_preset_needing_a_column_the_format_lacks_fails_before_any_query():
    no_status = RecordFormat.parse(["srcaddr", "dstaddr", "bytes", "packets", "start", "end", "action"]).columns
    with pytest.raises(UsageError, match="reads log_status"):
        presets.build(presets.BY_NAME["top-talkers"], table="t", columns=no_status)


def test_user_sql_is_scoped_to_the_window_at_every_table_reference():
    window = timewindow.TimeWindow(NOW - timedelta(hours=1), NOW)
    sql = presets.scope_user_sql(
        "SELECT a.srcaddr, count(*) AS n FROM flowwatch_test.flow_logs a JOIN flow_logs b "
        "ON a.srcaddr = b.dstaddr GROUP BY 1",
        table="flow_logs", database="flowwatch_test", window=window, partitions=window.partition_range(LAYOUT),
        limit=3)
    tree = sqlglot.parse_one(sql, read="athena")
    scoped = list(tree.find_all(exp.Subquery))
    assert sorted(s.alias for s in scoped) == ["a", "b"]
    for sub in scoped:
        assert "dt BETWEEN '2026/11/27' AND '2026/11/27'" in sub.this.args["where"].sql("athena")
    assert tree.args["limit"].expression.name == "3"


def test_user_sql_errors_are_usage_errors():
    with pytest.raises(UsageError, match="not valid Athena SQL"):
        presets.scope_user_sql("SELECT FROM WHERE (", table="t", database="d")
    with pytest.raises(UsageError, match="exactly one"):
        presets.scope_user_sql("SELECT 1; SELECT 2", table="t", database="d")
    assert presets.scope_user_sql("SHOW TABLES", table="t", database="d") == "SHOW TABLES"
    with pytest.raises(UsageError, match="queries"):
        presets.scope_user_sql("SHOW TABLES", table="t", database="d", limit=3)


# ---- time windows -----------------------------------------------------------------------------------

def test_since():
    window = timewindow.resolve(since="90m", now=NOW)
    assert window == timewindow.TimeWindow(NOW - timedelta(minutes=90), NOW)
    assert timewindow.resolve(since="1w", now=NOW).start == NOW - timedelta(days=7)
    assert timewindow.resolve(now=NOW) is None


def test_from_to():
    window = timewindow.resolve(from_="2026-11-26", to="2026-11-27T07:30+02:00", now=NOW)
    assert window.start == datetime(2026, 11, 26, tzinfo=timezone.utc)
    assert window.end == datetime(2026, 11, 27, 5, 30, tzinfo=timezone.utc)
    assert timewindow.resolve(from_="2026-11-27T10:00Z", now=NOW).end == NOW


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"since": "5x"}, "not a duration"),
    ({"since": "0h"}, "not a duration"),
    ({"since": "1h", "from_": "2026-11-26"}, "excludes"),
    ({"to": "2026-11-26"}, "needs --from"),
    ({"from_": "yesterday"}, "not a time"),
    ({"from_": "2026-11-27", "to": "2026-11-26"}, "empty"),
])
def test_bad_windows(kwargs, message):
    with pytest.raises(UsageError, match=message):
        timewindow.resolve(now=NOW, **kwargs)


def test_named_queries_for_the_athena_console():
    queries = presets.named_queries(RecordFormat.parse("v5"), "flowwatch_test", "flow_logs", "10.0.0.0/24")
    assert list(queries) == [f"flowwatch-{p.name}" for p in presets.PRESETS]
    # on a v2 table the presets reading v3+ fields are left out, as AWS's integration leaves them out
    v2 = presets.named_queries(RecordFormat.parse("v2"), "flowwatch_test", "flow_logs", "10.0.0.0/24")
    needing = {"top-talkers-packet-level", "top-instances", "top-subnets", "bytes-by-pair-packet-level"}
    assert list(v2) == [f"flowwatch-{p.name}" for p in presets.PRESETS if p.name not in needing]
    for name, (description, sql) in queries.items():
        tree = sqlglot.parse_one(sql, read="athena")
        assert [(t.db, t.name) for t in tree.find_all(exp.Table)] == [("flowwatch_test", "flow_logs")]
        assert description == presets.BY_NAME[name.removeprefix("flowwatch-")].description
    assert "srcaddr = ?" in _conditions(queries["flowwatch-traffic-from"][1])      # asked for when run
    assert not any(c.startswith("srcaddr") for c in _conditions(queries["flowwatch-icmp"][1]))
    narrow = RecordFormat.parse(["srcaddr", "dstaddr", "bytes", "packets", "start", "end", "action", "log-status"])
    assert "flowwatch-rejects" not in presets.named_queries(narrow, "d", "t")        # reads interface_id, protocol
    assert "flowwatch-top-talkers" in presets.named_queries(narrow, "d", "t")


# AWS's predefined Athena queries for flow logs, "Predefined queries" in
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-run-athena-query.html (the complete list: 16).
AWS_PREDEFINED = (
    "VpcFlowLogsAcceptedTraffic", "VpcFlowLogsAdminPortTraffic", "VpcFlowLogsIPv4Traffic", "VpcFlowLogsIPv6Traffic",
    "VpcFlowLogsRejectedTCPTraffic", "VpcFlowLogsRejectedTraffic", "VpcFlowLogsSshRdpTraffic", "VpcFlowLogsTopTalkers",
    "VpcFlowLogsTopTalkersPacketLevel", "VpcFlowLogsTopTalkingInstances", "VpcFlowLogsTopTalkingSubnets",
    "VpcFlowLogsTopTCPTraffic", "VpcFlowLogsTotalBytesTransferred", "VpcFlowLogsTotalBytesTransferredPacketLevel",
    "VpcFlowLogsTrafficFrmSrcAddr", "VpcFlowLogsTrafficToDstAddr",
)


def test_every_aws_predefined_query_has_one_preset():
    covered = [name for p in presets.PRESETS for name in p.aws]
    assert sorted(covered) == sorted(AWS_PREDEFINED)          # each exactly once, nothing invented
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for p in presets.PRESETS:
        assert f"| `{p.name}` |" in readme, f"README's preset table lacks {p.name}"
