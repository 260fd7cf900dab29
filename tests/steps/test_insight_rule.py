"""insight_rule: the definition generated from the record format, pure plans, then moto round trips."""

from __future__ import annotations

import json

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.insight_rule import InsightRuleStep, InsightSeen, InsightSpec, rule_definition

from tests.support.context import make_config, make_ctx, mutating
from tests.support.steps import converge_step, destroy_step, parents

STEP = InsightRuleStep()
GROUP = "/flowwatch/test/flow-logs"
ALL4 = {"detections": ["rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]}


def _rule(config, name):
    return next(r for r in config.alerts.rules if r.name == name)


def test_top_rejected_sources_reads_v2_as_aws_sample_rules_do():
    """v2 positions as in AWS's sample rules for VPC flow logs (srcaddr 4, action 13: "Rejected TCP connections")."""
    config = make_config(alerts=ALL4)
    definition = rule_definition(config.record_format, _rule(config, "top-rejected-sources"), GROUP, "10.0.0.0/24")
    assert definition == {
        "Schema": {"Name": "CloudWatchLogRule", "Version": 1}, "LogGroupNames": [GROUP], "LogFormat": "CLF",
        "Fields": {"4": "srcaddr", "13": "action"},
        "Contribution": {"Keys": ["srcaddr"], "Filters": [{"Match": "action", "In": ["REJECT"]}]},
        "AggregateOn": "Count"}


def test_ssh_rdp_probe_filters_the_vpc_block_and_ports():
    config = make_config(alerts=ALL4)
    definition = rule_definition(config.record_format, _rule(config, "ssh-rdp-probe"), GROUP, "10.1.2.0/24")
    assert definition["Fields"] == {"4": "srcaddr", "5": "dstaddr", "7": "dstport"}
    assert sorted(definition["Contribution"]["Filters"], key=lambda f: f["Match"]) == [
        {"Match": "dstaddr", "StartsWith": ["10.1.2."]}, {"Match": "dstport", "In": ["22", "3389"]}]


def test_a_sum_and_a_custom_record_format():
    """Positions follow the configured format: fields renamed by column, the summed field in ValueOf."""
    fields = ["version", "interface-id", "pkt-srcaddr", "dstaddr", "dstport", "action", "bytes", "start", "end",
              "log-status"]
    rule = {"name": "talkers", "kind": "contributors", "keys": ["pkt-srcaddr", "dstaddr"], "value": "bytes",
            "match": {"action": "ACCEPT"}, "threshold": 1000000}
    config = make_config(flow_logs={"format": fields}, alerts={"rules": [rule]})
    definition = rule_definition(config.record_format, config.alerts.rules[0], GROUP, None)
    pos = {name: str(fields.index(name) + 1) for name in fields}
    assert definition["Fields"] == {pos["pkt-srcaddr"]: "pkt_srcaddr", pos["dstaddr"]: "dstaddr",
                                    pos["action"]: "action", pos["bytes"]: "bytes"}
    assert definition["Contribution"] == {"Keys": ["pkt_srcaddr", "dstaddr"], "ValueOf": "bytes",
                                          "Filters": [{"Match": "action", "In": ["ACCEPT"]}]}
    assert definition["AggregateOn"] == "Sum"


def test_plan():
    spec = InsightSpec("r", {"A": 1})
    assert [c.action for c in STEP.plan({"r": spec}, None)] == ["create"]
    assert STEP.plan({"r": spec}, {"r": InsightSeen("r", {"A": 1.0}, "ENABLED", True)}) == []
    (update,) = STEP.plan({"r": spec}, {"r": InsightSeen("r", {"A": 2}, "DISABLED", True)})
    assert update.reason == "A differs; state DISABLED -> ENABLED"
    with pytest.raises(OwnershipError):
        STEP.plan({"r": spec}, {"r": InsightSeen("r", {"A": 1}, "ENABLED", False)})
    assert [c.action for c in STEP.plan({}, {"x": InsightSeen("x", {}, "ENABLED", True)})] == ["delete"]
    assert STEP.plan({}, {"x": InsightSeen("x", {}, "ENABLED", False)}) == []
    assert STEP.plan_destroy({"x": InsightSeen("x", {}, "", False)}, DestroyOptions()) == []


def test_apply_then_discover_agree(ctx, session, calls):
    ctx.config = make_config(alerts=ALL4)
    parents(ctx, "vpc")
    created = converge_step(STEP, ctx)
    assert sorted(created) == ["flowwatch-test-ssh-rdp-probe", "flowwatch-test-top-rejected-sources"]
    assert STEP.discover(ctx) == created
    cw = session.client("cloudwatch")
    rules = {r["Name"]: r for r in cw.describe_insight_rules()["InsightRules"]}
    assert {n: r["State"] for n, r in rules.items()} == {n: "ENABLED" for n in created}
    sent = json.loads(rules["flowwatch-test-top-rejected-sources"]["Definition"])
    assert sent["LogGroupNames"] == [ctx.log_group] and sent["Fields"]["4"] == "srcaddr"
    arn = f"arn:aws:cloudwatch:us-east-1:123456789012:insight-rule/flowwatch-test-ssh-rdp-probe"
    assert {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]} == {
        "flowwatch:stack": "test", "flowwatch:step": "insight_rule", "Name": "flowwatch-test-ssh-rdp-probe"}
    calls.clear()
    assert converge_step(STEP, ctx, STEP.discover(ctx)) == created
    assert mutating(calls) == []
    assert destroy_step(STEP, ctx, created) == {} == STEP.discover(ctx)
    assert cw.describe_insight_rules()["InsightRules"] == []


def test_a_rule_with_our_name_not_tagged_ours_stops_up(ctx, session):
    ctx.config = make_config(alerts={"detections": ["top-rejected-sources"]})
    session.client("cloudwatch").put_insight_rule(RuleName="flowwatch-test-top-rejected-sources",
                                                  RuleState="ENABLED", RuleDefinition="{}")
    with pytest.raises(OwnershipError, match="not the stack's"):
        STEP.plan(STEP.desired(ctx), STEP.discover(ctx))


def test_a_removed_rule_is_deleted_and_a_changed_one_updated(ctx, session):
    ctx.config = make_config(alerts=ALL4)
    have = converge_step(STEP, ctx)
    probe = {"name": "ssh-rdp-probe", "threshold": 5, "keys": ["srcaddr", "dstaddr"]}
    ctx.config = make_config(alerts={"detections": [probe]})
    plan = STEP.plan(STEP.desired(ctx), STEP.discover(ctx))
    assert sorted((c.action, c.params["name"]) for c in plan) == [
        ("delete", "flowwatch-test-top-rejected-sources"), ("update", "flowwatch-test-ssh-rdp-probe")]
    converge_step(STEP, ctx, have)
    (rule,) = session.client("cloudwatch").describe_insight_rules()["InsightRules"]
    assert json.loads(rule["Definition"])["Contribution"]["Keys"] == ["srcaddr", "dstaddr"]
