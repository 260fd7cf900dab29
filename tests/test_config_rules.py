"""Alert rules of each kind and the built-in detections, as the config validates and expands them."""

from __future__ import annotations

import re

import pytest

from flowwatch.config import KIND_DEFAULTS, parse_config
from flowwatch.detections import BUILTIN
from flowwatch.errors import ConfigError


def _config(alerts, **extra):
    return parse_config({"stack": "demo", "alerts": alerts, **extra})


def test_each_built_in_expands_after_the_configured_rules_with_the_stacks_namespace():
    config = _config({"detections": list(BUILTIN)})
    rules = config.alerts.rules
    assert [r.name for r in rules] == ["ping-deny", *BUILTIN]
    for rule in rules[1:]:
        want = BUILTIN[rule.name]
        assert rule.kind == want["kind"]
        assert rule.period == want["period"]
        assert rule.match == dict(want["match"])
        assert rule.namespace == "flowwatch/demo"
    assert config.alerts.detection_names == tuple(BUILTIN)


def test_a_detection_given_as_a_mapping_overrides_only_its_knobs():
    config = _config({"detections": [{"name": "top-rejected-sources", "threshold": 50, "keys": ["srcaddr", "dstport"]}]})
    rule = config.alerts.rules[-1]
    assert (rule.threshold, rule.keys, rule.period, rule.match) == (50.0, ["srcaddr", "dstport"], 300,
                                                                     {"action": "REJECT"})


@pytest.mark.parametrize(("kind", "period"), [(k, d["period"]) for k, d in KIND_DEFAULTS.items()])
def test_kind_defaults(kind, period):
    body = {"name": "r", "kind": kind, "match": {"action": "REJECT"}}
    rule = _config({"rules": [body]}).alerts.rules[0]
    assert rule.period == period
    assert rule.threshold == KIND_DEFAULTS[kind].get("threshold")
    assert rule.band == KIND_DEFAULTS[kind].get("band")
    assert rule.keys == KIND_DEFAULTS[kind].get("keys")
    assert (rule.metric == "") == (kind == "contributors")


def test_a_contributors_rule_without_match_counts_every_record():
    rule = _config({"rules": [{"name": "all", "kind": "contributors", "keys": ["dstaddr"]}]}).alerts.rules[0]
    assert rule.match == {}


@pytest.mark.parametrize(("alerts", "message"), [
    ({"detections": ["reject-spike"]}, "alerts.detections[0]: 'reject-spike' is not a built-in detection (did you "
                                       "mean 'rejected-spike'?)"),
    ({"detections": [{"threshold": 3}]}, "alerts.detections[0]: a built-in detection's name"),
    ({"detections": [{"name": "rejected-spike", "threshold": 3}]}, "threshold: not a key of an anomaly rule"),
    ({"detections": [{"name": "egress-spike", "kind": "threshold"}]}, "its kind cannot change"),
    ({"detections": ["ssh-rdp-probe", "ssh-rdp-probe"]}, "alerts.detections[1]: ssh-rdp-probe is turned on twice"),
    ({"rules": [{"name": "ssh-rdp-probe", "match": {"dstport": 22}}], "detections": ["ssh-rdp-probe"]},
     "turned on twice (or is also the name of a rule under rules)"),
    ({"rules": [{"name": "x", "kind": "anomaly", "match": {"action": "REJECT"}, "band": 0}]}, "band: 0: the band"),
    ({"rules": [{"name": "x", "kind": "anomaly", "match": {"action": "REJECT"}, "value": "action"}]},
     "alerts.rules[0].value: action holds text"),
    ({"rules": [{"name": "x", "kind": "contributors", "keys": ["srcaddr", "srcaddr"]}]}, "named twice"),
    ({"rules": [{"name": "x", "kind": "contributors", "keys": ["a", "b", "c", "d", "e"]}]}, "5 keys"),
    ({"rules": [{"name": "x", "kind": "contributors", "keys": ["srcadr"]}]}, "did you mean 'srcaddr'"),
    ({"rules": [{"name": "x", "kind": "contributors", "pattern": "[a]"}]}, "pattern: not a key of a contributors"),
    ({"rules": [{"name": "x", "kind": "contributors", "metric": "M"}]}, "metric: not a key of a contributors"),
    ({"rules": [{"name": "x", "kind": "contributors", "match": {"dstaddr": "!=vpc"}}]},
     "alerts.rules[0].match: 'dstaddr': Contributor Insights has no 'does not start with'"),
    ({"rules": [{"name": "x", "match": {"action": "REJECT"}, "keys": ["srcaddr"]}]}, "keys: not a key of a threshold"),
    ({"rules": [{"name": "x", "match": {"action": ["REJECT", "DENY"]}}]}, "'DENY' never appears in action"),
    ({"rules": [{"name": "x", "pattern": "[a, b]", "value": "bytes"}]}, "with a pattern, the value field"),
    ({"rules": [{"name": "x", "kind": "sum", "match": {"action": "REJECT"}}]}, "kind: 'sum' is not allowed"),
])
def test_bad_rules_are_one_line_naming_the_key(alerts, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        _config(alerts)
    assert "\n" not in str(err.value)


def test_the_ssh_detection_needs_a_vpc_block_of_few_enough_prefixes():
    """ssh-rdp-probe filters on the VPC's addresses with StartsWith (at most 10 prefixes)."""
    _config({"detections": ["ssh-rdp-probe"]}, network={"vpc_cidr": "10.0.0.0/22", "subnet_cidr": "10.0.0.0/26"})
    with pytest.raises(ConfigError, match=re.escape("alerts.detections[0].match: ")):
        _config({"detections": ["ssh-rdp-probe"]}, network={"vpc_cidr": "10.0.0.0/20", "subnet_cidr": "10.0.0.0/26"})


def test_a_built_in_needs_its_fields_in_the_record_format():
    with pytest.raises(ConfigError, match=re.escape("alerts.detections[0]: value: flow-log field 'bytes'")):
        _config({"rules": [{"name": "r", "match": {"action": "REJECT"}}], "detections": ["egress-spike"]},
                flow_logs={"format": ["srcaddr", "dstaddr", "action"]})
