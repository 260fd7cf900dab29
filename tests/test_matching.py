"""Alert-rule match values as filter-pattern terms and Contributor Insights filters (flowwatch.matching)."""

from __future__ import annotations

import ipaddress
import re

import pytest

from flowwatch.matching import MatchError, cidr_prefixes, condition, insight_filters, pattern_term
from flowwatch.patterns import compile_pattern
from flowwatch.records import FormatError, RecordFormat

V2 = RecordFormat.parse("v2")


def _covers(prefixes: tuple[str, ...], address: str) -> bool:
    return any(address == p or (p.endswith("*") and address.startswith(p[:-1])) for p in prefixes)


@pytest.mark.parametrize("block", ["10.0.0.0/24", "10.0.0.0/16", "10.0.16.0/20", "172.16.0.0/12", "10.0.0.0/28",
                                   "10.0.0.64/28", "10.0.0.5/32", "10.1.0.0/22", "10.0.0.0/8"])
def test_prefixes_cover_exactly_the_block(block):
    net = ipaddress.IPv4Network(block)
    prefixes = cidr_prefixes(block)
    lo, hi = int(net.network_address), int(net.broadcast_address)
    probes = {lo, hi, lo - 1, hi + 1, (lo + hi) // 2} | {lo + 2 ** k for k in range(0, 32 - net.prefixlen)}
    for n in probes:
        if 0 <= n < 2 ** 32:
            address = str(ipaddress.IPv4Address(n))
            assert _covers(prefixes, address) == (ipaddress.IPv4Address(n) in net), (block, address)
    # a prefix never reaches past the block: "10.0.0.1*" would also cover 10.0.0.100
    assert all(p.endswith(".*") or p.count(".") == 3 and "*" not in p for p in prefixes)


@pytest.mark.parametrize("block", ["10.0.0.0/17", "10.0.0.0/19", "10.0.0.0/25", "10.0.0.64/26", "10.0.0.0/27", "10.0.0.0/9"])
def test_blocks_needing_too_many_prefixes_are_refused(block):
    with pytest.raises(MatchError, match="at most 16"):
        cidr_prefixes(block)


def test_host_bits_are_refused():
    with pytest.raises(MatchError, match="not an IPv4 CIDR block"):
        cidr_prefixes("10.0.0.1/24")


@pytest.mark.parametrize(("match", "lines"), [
    ({"dstport": [22, 3389]}, {"22": True, "3389": True, "2222": False, "80": False}),
    ({"dstaddr": "10.0.0.0/24"}, {"10.0.0.9": True, "10.0.1.9": False, "110.0.0.9": False}),
    ({"dstaddr": "!=10.0.0.0/23"}, {"10.0.0.9": False, "10.0.1.9": False, "10.0.2.9": True, "8.8.8.8": True}),
    ({"srcaddr": "vpc"}, {"10.0.0.200": True, "10.0.8.1": False}),
])
def test_generated_patterns_select_what_the_match_says(match, lines):
    """The pattern, run through the pattern engine, selects exactly the records the match describes."""
    pattern = compile_pattern(V2.filter_pattern(match, vpc_cidr="10.0.0.0/24"))
    field = next(iter(match))
    for value, expected in lines.items():
        record = {"version": "2", "account-id": "123456789012", "interface-id": "eni-1", "srcaddr": "198.51.100.7",
                  "dstaddr": "10.0.0.5", "srcport": "40000", "dstport": "443", "protocol": "6", "packets": "3",
                  "bytes": "180", "start": "1700000000", "end": "1700000060", "action": "REJECT", "log-status": "OK"}
        record[field] = value
        line = " ".join(record[f] for f in V2.fields)
        assert pattern.matches(line) == expected, (match, value)


def test_vpc_needs_a_known_block():
    with pytest.raises(FormatError, match="vpc is not known"):
        V2.filter_pattern({"srcaddr": "vpc"})


@pytest.mark.parametrize(("match", "message"), [
    ({"dstport": "10.0.0.0/24"}, "address fields only"),
    ({"dstport": ["!=22"]}, "inside a list"),
    ({"dstport": list(range(11))}, "1-10 values"),
    ({"srcaddr": "10.*.0.1"}, "start or end of a value only"),
    ({"srcaddr": ""}, "empty value"),
])
def test_bad_values(match, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        V2.filter_pattern(match, vpc_cidr="10.0.0.0/24")


def test_a_pattern_over_1024_characters_is_refused():
    wide = RecordFormat.parse("v5")
    with pytest.raises(FormatError, match="1024"):
        wide.filter_pattern({"srcaddr": "10.0.0.0/20", "dstaddr": "!=10.0.0.0/20", "pkt-srcaddr": "10.0.0.0/20"})


ALIAS = {f: f.replace("-", "_") for f in V2.fields}


def _filters(match, vpc="10.0.0.0/24"):
    conds = [condition(f, v, is_int=f in ("dstport", "protocol", "bytes"), vpc_cidr=vpc) for f, v in match.items()]
    return insight_filters(conds, ALIAS)


def test_insight_filters_for_each_kind_of_value():
    assert _filters({"action": "REJECT"}) == [{"Match": "action", "In": ["REJECT"]}]
    assert _filters({"protocol": 6}) == [{"Match": "protocol", "EqualTo": 6}]
    assert _filters({"dstport": [22, 3389]}) == [{"Match": "dstport", "In": ["22", "3389"]}]
    assert _filters({"dstaddr": "vpc"}) == [{"Match": "dstaddr", "StartsWith": ["10.0.0."]}]
    assert _filters({"dstaddr": "10.0.0.0/22"}) == [
        {"Match": "dstaddr", "StartsWith": ["10.0.0.", "10.0.1.", "10.0.2.", "10.0.3."]}]
    assert _filters({"bytes": ">=1000"}) == [{"Match": "bytes", "GreaterThan": 999}]
    assert _filters({"bytes": "<1000"}) == [{"Match": "bytes", "LessThan": 1000}]
    assert _filters({"action": "!=ACCEPT"}) == [{"Match": "action", "NotIn": ["ACCEPT"]}]


@pytest.mark.parametrize(("match", "message"), [
    ({"dstaddr": "!=vpc"}, "no 'does not start with'"),
    ({"srcaddr": "*.5"}, "no 'ends with'"),
    ({"dstaddr": "10.0.0.0/20"}, "at most 10"),
    ({"action": "REJECT", "protocol": 6, "dstport": 22, "srcaddr": "1.2.3.4", "bytes": ">5"}, "at most 4"),
])
def test_insight_filters_refuse_what_contributor_insights_cannot_say(match, message):
    with pytest.raises(MatchError, match=re.escape(message)):
        _filters(match)


def test_pattern_term_joins_alternatives_on_one_field():
    assert pattern_term("dstport", condition("dstport", [22, 3389], is_int=True)) == "dstport=22 || dstport=3389"
    assert pattern_term("dstaddr", condition("dstaddr", "!=10.0.0.0/23", is_int=False)) == (
        "dstaddr!=10.0.0.* && dstaddr!=10.0.1.*")
