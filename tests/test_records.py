"""flowwatch.records: the flow-log record format and everything derived from it."""

from __future__ import annotations

import gc
import random
import re

import pytest

from flowwatch.records import (
    FIELDS,
    PARTITION_KEY,
    PRESETS,
    TGW_FIELDS,
    TGW_ONLY,
    FieldSpec,
    FormatError,
    ParseResult,
    RecordFormat,
)

V2 = RecordFormat.parse("v2")

V2_FIELDS = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
).split()

# From the "Flow log record examples" page of the VPC user guide.
ACCEPT_SSH = (
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
)
REJECT_RDP = (
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"
)
NODATA = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
SKIPDATA = "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA"


# --- the field table ------------------------------------------------------------------------


def test_fields_follow_the_aws_table_order_and_versions() -> None:
    names = [n for n in FIELDS if n not in TGW_ONLY]  # the VPC table; the transit gateway fields follow
    assert names[:14] == V2_FIELDS
    assert names[14:21] == ["vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr"]
    assert names[21:25] == ["region", "az-id", "sublocation-type", "sublocation-id"]
    assert names[25:29] == ["pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"]
    assert names[29:39] == [
        "ecs-cluster-arn", "ecs-cluster-name", "ecs-container-instance-arn", "ecs-container-instance-id",
        "ecs-container-id", "ecs-second-container-id", "ecs-service-name", "ecs-task-definition-arn",
        "ecs-task-arn", "ecs-task-id",
    ]
    assert "reject-reason" in names
    versions = [FIELDS[n].version for n in names]
    assert versions == sorted(versions), "AWS lists fields by version"
    counts = {v: versions.count(v) for v in set(versions)}
    assert (counts[2], counts[3], counts[4], counts[5], counts[7], counts[8]) == (14, 7, 4, 4, 10, 1)
    assert FIELDS["reject-reason"].version == 8


def test_parquet_and_athena_types_are_the_documented_ones() -> None:
    parquet = {n: s.parquet_type for n, s in FIELDS.items() if n not in TGW_ONLY}
    assert {n for n, t in parquet.items() if t == "INT_64"} == {"packets", "bytes", "start", "end"}
    assert {n for n, t in parquet.items() if t == "INT_32"} == {
        "version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path", "encryption-status",
    }
    # AWS's Athena DDL: version int, srcport int, dstport int, protocol bigint, packets bigint,
    # bytes bigint, start bigint, `end` bigint, tcp_flags int, traffic_path int, the rest string.
    athena = {n: s.athena_type for n, s in FIELDS.items() if s.athena_type != "string" and n not in TGW_ONLY}
    assert athena == {
        "version": "int", "srcport": "int", "dstport": "int", "protocol": "bigint", "packets": "bigint",
        "bytes": "bigint", "start": "bigint", "end": "bigint", "tcp-flags": "int", "traffic-path": "int",
        "encryption-status": "int",
    }
    assert all(s.description for s in FIELDS.values())


def test_field_spec_column_replaces_hyphens() -> None:
    assert FIELDS["account-id"].column == "account_id"
    assert FIELDS["pkt-src-aws-service"].column == "pkt_src_aws_service"
    assert FieldSpec("end", 2, "bigint", "INT_64", "x").column == "end"


def test_presets_are_every_field_up_to_their_version() -> None:
    assert list(PRESETS) == ["v2", "v3", "v4", "v5"]
    assert PRESETS["v2"] == tuple(V2_FIELDS)
    assert [len(PRESETS[p]) for p in PRESETS] == [14, 21, 25, 29]
    for name, fields in PRESETS.items():
        assert fields == tuple(f for f in FIELDS if FIELDS[f].version <= int(name[1:]))


def test_partition_key_never_clashes_with_a_column() -> None:
    assert PARTITION_KEY == "dt"
    assert PARTITION_KEY not in {s.column for s in FIELDS.values()}


# --- parsing a format -----------------------------------------------------------------------


def test_v2_log_format_is_the_aws_default_format_string() -> None:
    assert V2.log_format() == (
        "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} "
        "${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
    )
    assert V2.header() == " ".join(V2_FIELDS)
    assert V2.version == 2


@pytest.mark.parametrize(
    "spec",
    [
        "${version} ${srcaddr} ${region} ${end}",
        "version srcaddr region end",
        "version, srcaddr, region, end",
        ["version", "srcaddr", "region", "end"],
        ("${version}", "${srcaddr}", "${region}", "${end}"),
    ],
)
def test_custom_formats_parse_in_any_notation(spec: object) -> None:
    fmt = RecordFormat.parse(spec)  # type: ignore[arg-type]
    assert fmt.fields == ("version", "srcaddr", "region", "end")
    assert fmt.log_format() == "${version} ${srcaddr} ${region} ${end}"
    assert fmt.version == 4


def test_log_format_round_trips() -> None:
    for preset in PRESETS:
        fmt = RecordFormat.parse(preset)
        assert RecordFormat.parse(fmt.log_format()) == fmt
    assert RecordFormat.parse(" V3 ") == RecordFormat.parse("v3")


def test_transit_gateway_fields_are_the_documented_ones() -> None:
    # "Transit Gateway Flow Log records" -> "Available fields": the default format, version 6 fields.
    tgw = RecordFormat.parse("tgw")
    assert tgw.fields == TGW_FIELDS and len(tgw) == 36 and tgw.version == 6
    assert RecordFormat.parse(" ".join(f"${{{f}}}" for f in TGW_FIELDS)) == tgw
    assert {n for n in TGW_ONLY if FIELDS[n].parquet_type == "INT_64"} == {
        "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded", "packets-lost-ttl-expired"}
    assert all(FIELDS[n].version == 6 for n in TGW_ONLY) and len(TGW_ONLY) == 18
    assert not TGW_ONLY & set(PRESETS["v5"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("version srcadr", "unknown flow-log field 'srcadr' (did you mean 'srcaddr'?)"),
        (["${version}", "${acount-id}"], "unknown flow-log field 'acount-id' (did you mean 'account-id'?)"),
        ("version account_id", "unknown flow-log field 'account_id' (did you mean 'account-id'?)"),
        ("v6", "unknown flow-log format preset 'v6' (allowed: v2, v3, v4, v5, tgw, or a list of field names)"),
        ("version srcaddr version", "duplicate flow-log field 'version' in the record format"),
        ("", "empty flow-log format"),
        ([], "empty flow-log format"),
    ],
)
def test_bad_formats_name_the_field_and_what_is_allowed(spec: object, message: str) -> None:
    with pytest.raises(FormatError) as info:
        RecordFormat.parse(spec)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_unknown_field_without_near_match_lists_the_allowed_fields() -> None:
    with pytest.raises(FormatError, match=r"unknown flow-log field 'bogus' \(allowed: .*version, account-id"):
        RecordFormat.parse(["bogus"])


def test_format_error_is_a_value_error() -> None:
    assert issubclass(FormatError, ValueError)
    with pytest.raises(ValueError):
        RecordFormat(("version", "nope"))


# --- Glue / Athena --------------------------------------------------------------------------


def test_v2_glue_columns() -> None:
    assert V2.columns == (
        "version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport",
        "protocol", "packets", "bytes", "start", "end", "action", "log_status",
    )
    assert V2.glue_columns() == [
        {"Name": "version", "Type": "int"},
        {"Name": "account_id", "Type": "string"},
        {"Name": "interface_id", "Type": "string"},
        {"Name": "srcaddr", "Type": "string"},
        {"Name": "dstaddr", "Type": "string"},
        {"Name": "srcport", "Type": "int"},
        {"Name": "dstport", "Type": "int"},
        {"Name": "protocol", "Type": "bigint"},
        {"Name": "packets", "Type": "bigint"},
        {"Name": "bytes", "Type": "bigint"},
        {"Name": "start", "Type": "bigint"},
        {"Name": "end", "Type": "bigint"},
        {"Name": "action", "Type": "string"},
        {"Name": "log_status", "Type": "string"},
    ]


def test_custom_glue_columns_keep_region_and_end_as_plain_columns() -> None:
    fmt = RecordFormat.parse("${region} ${az-id} ${srcaddr} ${end} ${tcp-flags} ${traffic-path} ${flow-direction}")
    assert fmt.glue_columns() == [
        {"Name": "region", "Type": "string"},
        {"Name": "az_id", "Type": "string"},
        {"Name": "srcaddr", "Type": "string"},
        {"Name": "end", "Type": "bigint"},
        {"Name": "tcp_flags", "Type": "int"},
        {"Name": "traffic_path", "Type": "int"},
        {"Name": "flow_direction", "Type": "string"},
    ]
    assert PARTITION_KEY not in fmt.columns


def test_sql_column_quotes_trino_reserved_words_only() -> None:
    assert V2.sql_column("end") == '"end"'
    assert V2.sql_column("start") == "start"
    assert V2.sql_column("log-status") == "log_status"
    assert V2.sql_column("log_status") == "log_status"
    assert V2.sql_column(PARTITION_KEY) == "dt"
    v4 = RecordFormat.parse("v4")
    assert v4.sql_column("region") == "region"
    assert v4.sql_column("type") == "type"
    with pytest.raises(FormatError, match="'region' is not in the record format"):
        V2.sql_column("region")


def test_index_accepts_aws_names_and_columns() -> None:
    assert V2.index("log-status") == 13
    assert V2.index("log_status") == 13
    assert V2.index("end") == 11
    assert "account_id" in V2 and "account-id" in V2 and "vpc-id" not in V2
    with pytest.raises(FormatError, match="'vpc-id' is not in the record format"):
        V2.index("vpc-id")
    with pytest.raises(FormatError, match="did you mean 'srcaddr'"):
        V2.index("srcadr")


# --- CloudWatch Logs metric filter patterns -------------------------------------------------


def test_v2_ping_deny_pattern() -> None:
    assert V2.filter_pattern({"protocol": 1, "action": "REJECT"}) == (
        "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol=1, "
        "packets, bytes, start, end, action=REJECT, log_status]"
    )


def test_v5_pattern_names_all_29_fields() -> None:
    v5 = RecordFormat.parse("v5")
    pattern = v5.filter_pattern({"protocol": 1, "action": "REJECT", "flow-direction": "egress"})
    assert pattern == (
        "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol=1, "
        "packets, bytes, start, end, action=REJECT, log_status, vpc_id, subnet_id, instance_id, "
        "tcp_flags, type, pkt_srcaddr, pkt_dstaddr, region, az_id, sublocation_type, sublocation_id, "
        "pkt_src_aws_service, pkt_dst_aws_service, flow_direction=egress, traffic_path]"
    )
    assert len(pattern[1:-1].split(", ")) == 29


def test_custom_pattern_follows_the_custom_order() -> None:
    fmt = RecordFormat.parse("${action} ${srcaddr} ${dstport} ${protocol} ${interface-id}")
    assert fmt.filter_pattern({"dstport": 22, "action": "REJECT", "interface_id": "eni-0a1b2c"}) == (
        '[action=REJECT, srcaddr, dstport=22, protocol, interface_id="eni-0a1b2c"]'
    )


def test_pattern_values_quoting_and_operators() -> None:
    fmt = RecordFormat.parse("srcaddr dstport action")
    assert fmt.filter_pattern({"srcaddr": "10.0.0.5"}) == "[srcaddr=10.0.0.5, dstport, action]"
    assert fmt.filter_pattern({"srcaddr": "10.0.*"}) == "[srcaddr=10.0.*, dstport, action]"
    assert fmt.filter_pattern({"srcaddr": "2001:db8::1"}) == '[srcaddr="2001:db8::1", dstport, action]'
    assert fmt.filter_pattern({"action": "!=ACCEPT"}) == "[srcaddr, dstport, action!=ACCEPT]"
    assert fmt.filter_pattern({"dstport": "<1024"}) == "[srcaddr, dstport<1024, action]"
    assert fmt.filter_pattern({"dstport": ">= 3389"}) == "[srcaddr, dstport>=3389, action]"
    assert fmt.filter_pattern({}) == "[srcaddr, dstport, action]"


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ({"region": "us-east-1"}, "flow-log field 'region' is not in the record format"),
        ({"protocl": 1}, "did you mean 'protocol'"),
        ({"protocol": "icmp"}, "'protocol': 'icmp' is not a number"),
        ({"action": ">REJECT"}, "needs a number"),
        ({"action": True}, "a value is a string, an integer or a list of them"),
        ({"srcaddr": 'a"b'}, "may not contain quotes"),
        ({"log-status": "OK", "log_status": "OK"}, "names field 'log-status' twice"),
    ],
)
def test_bad_pattern_conditions(match: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        V2.filter_pattern(match)  # type: ignore[arg-type]


# --- the parser -----------------------------------------------------------------------------


def test_parser_converts_values_and_names_them() -> None:
    result = V2.parser().parse([ACCEPT_SSH, REJECT_RDP])
    assert isinstance(result, ParseResult)
    assert result.malformed == 0 and not result.header and result.nodata == []
    first, second = result.records
    assert isinstance(first, V2.record_type) and isinstance(first, tuple)
    assert first == (2, "123456789010", "eni-1235b8ca123456789", "172.31.16.139", "172.31.16.21",
                     20641, 22, 6, 20, 4249, 1418530010, 1418530070, "ACCEPT", "OK")
    assert second.action == "REJECT" and second.dstport == 3389 and second.end == 1418530070
    assert second.log_status == "OK" and second._fields == V2.columns


def test_parser_skips_the_s3_header_and_keeps_nodata_apart() -> None:
    lines = [V2.header() + "\n", ACCEPT_SSH + "\n", NODATA + "\n", SKIPDATA + "\n", REJECT_RDP + "\n"]
    result = V2.parser().parse(lines)
    assert result.header is True
    assert [r.action for r in result.records] == ["ACCEPT", "REJECT"]
    assert [r.log_status for r in result.nodata] == ["NODATA", "SKIPDATA"]
    nodata = result.nodata[0]
    assert nodata.srcaddr is None and nodata.srcport is None and nodata.action is None
    assert nodata.start == 1431280876 and nodata.interface_id == "eni-1235b8ca123456789"
    assert result.malformed == 0


def test_parser_counts_malformed_lines_and_never_raises() -> None:
    lines = [
        ACCEPT_SSH,
        "2 123456789010 eni-1 10.0.0.1",  # too few fields
        ACCEPT_SSH + " extra",  # too many
        ACCEPT_SSH.replace(" 22 ", " ssh "),  # non-numeric port
        NODATA.replace("1431280876", "soon"),  # non-numeric with '-' present (slow path)
        "",  # blank lines are not records and not malformed
        "   \n",
        REJECT_RDP,
    ]
    result = V2.parser().parse(lines)
    assert len(result.records) == 2
    assert result.malformed == 4
    assert result.nodata == [] and result.header is False


def test_unusual_but_valid_numbers_take_the_general_path() -> None:
    lines = [
        ACCEPT_SSH.replace(" 6 20 ", " 06 20 "),  # zero-padded protocol
        ACCEPT_SSH.replace(" 6 20 ", " 300 20 "),  # out of the small-number table
        ACCEPT_SSH.replace(" ACCEPT OK", " ACCEPT NODATA"),  # NODATA without any '-'
    ]
    result = V2.parser().parse(lines)
    assert [r.protocol for r in result.records] == [6, 300]
    assert [r.protocol for r in result.nodata] == [6]
    assert result.malformed == 0


def test_dash_becomes_none_in_string_and_numeric_fields() -> None:
    v5 = RecordFormat.parse("v5")
    line = ("5 123456789012 eni-0a 10.0.0.5 52.94.133.131 40000 443 6 10 840 100 160 ACCEPT OK vpc-1 subnet-1 "
            "i-1 19 IPv4 10.0.0.5 52.94.133.131 us-east-1 use1-az1 - - - S3 egress 2")
    (rec,) = v5.parser().parse([line]).records
    assert rec.sublocation_type is None and rec.sublocation_id is None and rec.pkt_src_aws_service is None
    assert rec.pkt_dst_aws_service == "S3" and rec.traffic_path == 2 and rec.tcp_flags == 19
    ingress = line.replace(" egress 2", " ingress -")
    (rec,) = v5.parser().parse([ingress]).records
    assert rec.traffic_path is None and rec.flow_direction == "ingress"


def test_parse_line() -> None:
    parser = V2.parser()
    rec = parser.parse_line(ACCEPT_SSH + "\n")
    assert rec is not None and rec.srcport == 20641
    assert parser.parse_line(V2.header()) is None
    assert parser.parse_line("garbage") is None
    assert parser.parse_line(ACCEPT_SSH.replace(" 6 ", " tcp ")) is None
    nodata = parser.parse_line(NODATA)
    assert nodata is not None and nodata.log_status == "NODATA" and not parser.is_traffic(nodata)
    assert parser.is_traffic(rec)


def test_parser_for_a_format_without_numbers_or_log_status() -> None:
    fmt = RecordFormat.parse("srcaddr dstaddr action")
    result = fmt.parser().parse(["srcaddr dstaddr action", "10.0.0.1 8.8.8.8 REJECT", "10.0.0.1 - ACCEPT", "x y"])
    assert result.header is True
    assert result.records == [("10.0.0.1", "8.8.8.8", "REJECT"), ("10.0.0.1", None, "ACCEPT")]
    assert result.malformed == 1


def test_single_field_format() -> None:
    fmt = RecordFormat.parse(["packets"])
    result = fmt.parser().parse(["packets", "12", "-", "many"])
    assert result.header and result.records == [(12,), (None,)] and result.malformed == 1


def test_parser_accepts_any_iterable_and_restores_gc() -> None:
    assert gc.isenabled()
    result = V2.parser().parse(line for line in [ACCEPT_SSH] * 3)
    assert len(result.records) == 3
    assert gc.isenabled()
    gc.disable()
    try:
        V2.parser().parse([ACCEPT_SSH])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_record_type_is_shared_by_equal_formats() -> None:
    assert RecordFormat.parse("v2").record_type is RecordFormat.parse(list(V2_FIELDS)).record_type
    assert RecordFormat.parse("v3").record_type is not V2.record_type
    assert RecordFormat.parse("v2").parser() is V2.parser()


def test_render_is_the_inverse_of_parse() -> None:
    rec = V2.parser().parse_line(NODATA)
    assert rec is not None
    assert V2.render(rec) == NODATA
    with pytest.raises(FormatError):
        V2.render((1, 2))


# --- synthetic records ----------------------------------------------------------------------

SYNTH_ARGS = dict(
    account="123456789012",
    eni="eni-0123456789abcdef0",
    srcaddr="10.0.0.10",
    dstaddr="8.8.8.8",
    protocol=1,
    action="REJECT",
    start=1_764_000_000,
)


def pattern_matches(pattern: str, line: str) -> bool:
    """Minimal evaluator of generated space-delimited patterns (names and ``name=value`` only)."""
    terms = pattern[1:-1].split(", ")
    values = line.split(" ")
    if len(terms) != len(values):
        return False
    for term, value in zip(terms, values, strict=True):
        if "=" in term:
            expected = term.split("=", 1)[1].strip('"')
            if value != expected:
                return False
    return True


def test_synth_lines_parse_back_with_the_given_values() -> None:
    lines = V2.synth(**SYNTH_ARGS, count=5, rng=random.Random(7))  # type: ignore[arg-type]
    assert len(lines) == 5
    result = V2.parser().parse(lines)
    assert result.malformed == 0 and len(result.records) == 5
    for rec in result.records:
        assert rec.version == 2 and rec.account_id == "123456789012"
        assert rec.interface_id == "eni-0123456789abcdef0"
        assert (rec.srcaddr, rec.dstaddr, rec.protocol, rec.action) == ("10.0.0.10", "8.8.8.8", 1, "REJECT")
        assert (rec.srcport, rec.dstport) == (0, 0), "ICMP has no ports"
        assert (rec.start, rec.end) == (1_764_000_000, 1_764_000_060)
        assert rec.packets >= 1 and rec.bytes == rec.packets * 84
        assert rec.log_status == "OK"


def test_synth_matches_the_generated_ping_deny_pattern() -> None:
    for spec in ("v2", "v3", "v4", "v5", "${action} ${protocol} ${srcaddr} ${region} ${end}"):
        fmt = RecordFormat.parse(spec)
        pattern = fmt.filter_pattern({"protocol": 1, "action": "REJECT"})
        (reject,) = fmt.synth(**SYNTH_ARGS, rng=random.Random(1))  # type: ignore[arg-type]
        assert len(reject.split(" ")) == len(fmt.fields) == len(pattern[1:-1].split(", "))
        assert pattern_matches(pattern, reject)
        accept_args = {**SYNTH_ARGS, "action": "ACCEPT"}
        (accept,) = fmt.synth(**accept_args, rng=random.Random(1))  # type: ignore[arg-type]
        assert not pattern_matches(pattern, accept)
        tcp_args = {**SYNTH_ARGS, "protocol": 6}
        (tcp,) = fmt.synth(**tcp_args, rng=random.Random(1))  # type: ignore[arg-type]
        assert not pattern_matches(pattern, tcp)


def test_synth_fills_every_v5_field_plausibly() -> None:
    v5 = RecordFormat.parse("v5")
    (line,) = v5.synth(
        **SYNTH_ARGS, rng=random.Random(3), vpc_id="vpc-0abc", subnet_id="subnet-0abc",  # type: ignore[arg-type]
        instance_id="i-0abc", region="us-east-1", az_id="use1-az1",
    )
    (rec,) = v5.parser().parse([line]).records
    assert rec.version == 5
    assert (rec.vpc_id, rec.subnet_id, rec.instance_id) == ("vpc-0abc", "subnet-0abc", "i-0abc")
    assert (rec.region, rec.az_id) == ("us-east-1", "use1-az1")
    assert rec.type == "IPv4" and rec.tcp_flags == 0
    assert (rec.pkt_srcaddr, rec.pkt_dstaddr) == ("10.0.0.10", "8.8.8.8")
    assert rec.sublocation_type is None and rec.pkt_src_aws_service is None
    assert rec.flow_direction == "egress" and rec.traffic_path == 8


def test_synth_tcp_and_defaults() -> None:
    v3 = RecordFormat.parse("v3")
    tcp = {**SYNTH_ARGS, "protocol": 6, "srcaddr": "198.51.100.7", "dstaddr": "10.0.0.10", "dstport": 22}
    lines = v3.synth(**tcp, count=20, rng=random.Random(5))  # type: ignore[arg-type]
    for rec in v3.parser().parse(lines).records:
        assert 32768 <= rec.srcport <= 60999 and rec.dstport == 22
        assert rec.tcp_flags == 2, "a rejected connection attempt is SYNs"
        assert 1 <= rec.packets <= 3 and rec.bytes == 60 * rec.packets
        assert rec.vpc_id is None and rec.instance_id is None, "unknown identifiers are '-'"
    ipv6 = {**SYNTH_ARGS, "srcaddr": "2001:db8::10", "dstaddr": "2001:db8::20", "protocol": 58}
    (rec,) = v3.parser().parse(v3.synth(**ipv6, rng=random.Random(1))).records  # type: ignore[arg-type]
    assert rec.type == "IPv6" and (rec.srcport, rec.dstport) == (0, 0)


def test_synth_is_deterministic_for_a_seed_and_takes_overrides() -> None:
    a = V2.synth(**SYNTH_ARGS, count=3, rng=random.Random(11))  # type: ignore[arg-type]
    b = V2.synth(**SYNTH_ARGS, count=3, rng=random.Random(11))  # type: ignore[arg-type]
    assert a == b
    v8 = RecordFormat.parse(list(PRESETS["v5"]) + ["reject-reason"])
    (line,) = v8.synth(**SYNTH_ARGS, end=1_764_000_030, overrides={"reject_reason": "BPA", "packets": 1})  # type: ignore[arg-type]
    (rec,) = v8.parser().parse([line]).records
    assert rec.version == 8 and rec.reject_reason == "BPA" and rec.packets == 1 and rec.end == 1_764_000_030


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": "DROP"}, "ACCEPT or REJECT"),
        ({"protocol": 256}, "0-255"),
        ({"count": 0}, ">= 1"),
        ({"end": 1}, "before start"),
        ({"overrides": {"vpc-id": "vpc-1"}}, "'vpc-id' is not in the record format"),
    ],
)
def test_synth_rejects_bad_arguments(change: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError, match=re.escape(message)):
        V2.synth(**{**SYNTH_ARGS, **change})  # type: ignore[arg-type]
