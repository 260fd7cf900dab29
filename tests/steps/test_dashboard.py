"""dashboard: the body per config (pure), the plan (pure), then moto round trips: create, no-op, update, tags,
ownership, ``dashboard: false``, down. moto drops a dashboard's tags; tests/support/aws_faults.dashboard_tags
applies the ones flowwatch SENT, as AWS does, and the tests assert on what was sent."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from flowwatch import engine
from flowwatch.errors import ConfigError, OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.naming import Names
from flowwatch.steps.dashboard import (BodyInputs, DashboardSeen, DashboardSpec, DashboardStep, console_url,
                                       dashboard_arn, dashboard_body, rule_widget)

from tests.support.context import fresh, make_config, make_ctx, mutating
from tests.support.steps import converge_step, destroy_step, parents

STEP = DashboardStep()
ACCOUNT = "123456789012"
V2 = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
      "bytes", "start", "end", "action", "log-status")


def inputs(config=None, **over):
    config = config or make_config()
    rules = tuple(config.alerts.rules)
    base = BodyInputs(stack=config.stack, region=config.region, partition="aws", account=ACCOUNT, vpc_id="vpc-0a1b2c3d",
                      vpc_cidr=config.network.vpc_cidr, log_group="/flowwatch/test/flow-logs", bucket="the-bucket",
                      fields=tuple(config.record_format.fields), rules=rules,
                      alarms={r.name: f"alarm-of-{r.name}" for r in rules},
                      insight_rules={r.name: f"insight-of-{r.name}" for r in rules})
    return replace(base, **over)


def widgets(body, kind):
    return [w for w in body["widgets"] if w["type"] == kind]


def queries(body):
    return [w["properties"]["query"] for w in widgets(body, "log")]


REJECTS = {"rules": [{"name": "rejects", "match": {"action": "REJECT"}}]}    # for any format with `action`
TWO_RULES = {"rules": [
    {"name": "ping-deny", "match": {"protocol": 1, "action": "REJECT"}, "threshold": 1},
    {"name": "ssh-reject", "match": {"dstport": 22, "action": "REJECT"}, "threshold": 7, "period": 300}]}


# ---------- the body ----------
def test_the_body_has_a_header_the_flow_charts_the_alarms_and_one_widget_per_rule():
    body = dashboard_body(inputs(make_config(alerts=TWO_RULES)))
    assert [w["type"] for w in body["widgets"]] == ["text", "log", "log", "log", "alarm", "metric", "metric"]
    header = widgets(body, "text")[0]["properties"]["markdown"]
    for part in ("`test`", "vpc-0a1b2c3d", "10.0.0.0/24", "/flowwatch/test/flow-logs", "the-bucket"):
        assert part in header
    (alarms,) = widgets(body, "alarm")
    assert alarms["properties"]["alarms"] == [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:alarm-of-ping-deny",
                                              f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:alarm-of-ssh-reject"]


def test_each_threshold_rule_shows_its_metric_with_the_threshold_as_a_line():
    config = make_config(alerts=TWO_RULES)
    by_title = {w["properties"]["title"].split(":")[0]: w["properties"] for w in widgets(dashboard_body(inputs(config)),
                                                                                          "metric")}
    ssh = by_title["ssh-reject"]
    assert ssh["metrics"] == [["flowwatch/test", "Ssh-Reject", {"id": "m1", "label": "Ssh-Reject"}]]
    assert ssh["stat"] == "Sum" and ssh["period"] == 300 and ssh["region"] == "us-east-1"
    assert ssh["annotations"] == {"horizontal": [{"label": "threshold 7", "value": 7.0}]}
    assert by_title["ping-deny"]["annotations"]["horizontal"][0]["value"] == 1.0


def test_the_default_format_is_queried_on_the_discovered_names_without_a_parse():
    flows, into, out_of = queries(dashboard_body(inputs()))
    assert all(q.startswith("SOURCE '/flowwatch/test/flow-logs' | ") for q in (flows, into, out_of))
    assert "parse" not in flows + into + out_of
    assert 'strcontains(action, "ACCEPT")' in flows and 'strcontains(action, "REJECT")' in flows
    assert flows.endswith("by bin(1m)") and "sum(bytes)" in into and "sum(bytes)" in out_of
    assert 'filter isIpv4InSubnet(dstAddr, "10.0.0.0/24") and not isIpv4InSubnet(srcAddr, "10.0.0.0/24")' in into
    assert 'filter isIpv4InSubnet(srcAddr, "10.0.0.0/24") and not isIpv4InSubnet(dstAddr, "10.0.0.0/24")' in out_of
    assert {w["properties"]["view"] for w in widgets(dashboard_body(inputs()), "log")} == {"timeSeries"}


def test_the_direction_is_relative_to_the_configured_vpc_cidr():
    config = make_config(network={"vpc_cidr": "10.9.0.0/16", "subnet_cidr": "10.9.1.0/24"})
    _, into, out_of = queries(dashboard_body(inputs(config)))
    assert into.count('"10.9.0.0/16"') == out_of.count('"10.9.0.0/16"') == 2
    assert "10.0.0.0/24" not in into + out_of


def test_a_custom_record_format_is_parsed_into_its_own_field_names():
    fields = ["version", "interface-id", "srcaddr", "dstaddr", "bytes", "action", "tcp-flags", "pkt-srcaddr"]
    flows, into, _ = queries(dashboard_body(inputs(make_config(flow_logs={"format": fields}, alerts=REJECTS))))
    parse = ('parse @message "* * * * * * * *" as version, interfaceId, srcAddr, dstAddr, bytes, action, tcpFlags, '
             'pktSrcaddr')
    assert flows.startswith(f"SOURCE '/flowwatch/test/flow-logs' | {parse} | ")
    assert into.startswith(f"SOURCE '/flowwatch/test/flow-logs' | {parse} | ")


def test_charts_whose_fields_the_format_lacks_are_left_out():
    no_bytes = make_config(flow_logs={"format": ["version", "srcaddr", "dstaddr", "action"]}, alerts=REJECTS)
    assert [w["properties"]["title"] for w in widgets(dashboard_body(inputs(no_bytes)), "log")] == [
        "Flows per minute: accepted vs rejected"]
    no_action = inputs(fields=("version", "srcaddr", "dstaddr", "bytes"), rules=())
    assert [w["properties"]["title"] for w in widgets(dashboard_body(no_action), "log")] == [
        "Bytes per minute into the VPC (10.0.0.0/24)", "Bytes per minute out of the VPC (10.0.0.0/24)"]


def test_widgets_are_laid_out_on_the_24_unit_grid_without_overlap():
    body = dashboard_body(inputs(make_config(alerts={"rules": [
        {"name": f"r{i}", "match": {"action": "REJECT"}} for i in range(5)]})))
    cells = set()
    for w in body["widgets"]:
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24 and w["height"] > 0
        here = {(x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])}
        assert not cells & here, w
        cells |= here
    assert dashboard_body(inputs()) == dashboard_body(inputs())          # deterministic


def test_more_than_100_alarms_take_several_alarm_widgets():
    rules = tuple(SimpleNamespace(name=f"r{i}", metric="M", namespace="N", threshold=1.0, period=60)
                  for i in range(101))
    body = dashboard_body(inputs(rules=rules, alarms={r.name: r.name for r in rules}))
    assert [len(w["properties"]["alarms"]) for w in widgets(body, "alarm")] == [100, 1]


def test_an_anomaly_rule_shows_its_metric_and_the_band():
    rule = SimpleNamespace(kind="anomaly", name="rejected-spike", metric="Rejected-Spike", namespace="flowwatch/test",
                           band=3, period=300)
    props = rule_widget(rule, inputs())["properties"]
    assert props["metrics"] == [
        ["flowwatch/test", "Rejected-Spike", {"id": "m1", "label": "Rejected-Spike"}],
        [{"expression": "ANOMALY_DETECTION_BAND(m1, 3)", "id": "ad1", "label": "expected band"}]]
    assert props["period"] == 300 and props["stat"] == "Sum" and "annotations" not in props


def test_a_contributors_rule_shows_its_contributor_insights_rule():
    rule = SimpleNamespace(kind="contributors", name="top-rejected-sources", keys=["srcaddr"], threshold=25,
                           period=300)
    props = rule_widget(rule, inputs(insight_rules={"top-rejected-sources": "flowwatch-test-top-rejected-sources"}))[
        "properties"]
    assert props["insightRule"] == {"ruleName": "flowwatch-test-top-rejected-sources", "maxContributorCount": 10,
                                    "orderBy": "Sum"}
    assert props["annotations"] == {"horizontal": [{"label": "threshold 25", "value": 25.0}]}
    assert "metrics" not in props and props["title"] == "top-rejected-sources: top contributors by srcaddr"


def test_the_widget_follows_the_rule_kind_and_an_unknown_kind_is_refused():
    threshold = make_config().alerts.rules[0]
    assert "annotations" in rule_widget(threshold, inputs())["properties"]          # no kind: threshold
    anomaly = SimpleNamespace(kind="anomaly", name="a", metric="A", namespace="N", period=60)
    assert "ANOMALY_DETECTION_BAND" in json.dumps(dashboard_body(inputs(rules=(anomaly,), alarms={"a": "a"})))
    with pytest.raises(ValueError, match="no widget for rule 'x' of kind 'weird'"):
        rule_widget(SimpleNamespace(kind="weird", name="x"), inputs())


# ---------- names, addresses, config ----------
def test_the_default_name_carries_the_region_since_dashboards_are_global():
    assert Names("lab").dashboard("us-east-1") == "flowwatch-lab-us-east-1"
    assert Names("lab").dashboard("eu-west-1") != Names("lab").dashboard("us-east-1")
    assert Names.from_config(make_config(names={"dashboard": "Lab_Dash"})).dashboard("us-east-1") == "Lab_Dash"
    assert dashboard_arn("aws", ACCOUNT, "d") == f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/d"


@pytest.mark.parametrize(("partition", "region", "url"), [
    ("aws", "eu-west-1", "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
                         "#dashboards/dashboard/d"),
    ("aws-cn", "cn-north-1", "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1"
                             "#dashboards/dashboard/d"),
    ("aws-us-gov", "us-gov-west-1", "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudwatch/home"
                                    "?region=us-gov-west-1#dashboards/dashboard/d")])
def test_the_console_address_is_the_partitions(partition, region, url):
    assert console_url(partition, region, "d") == url


def test_the_config_key_is_a_bool_on_by_default():
    assert make_config().dashboard is True and make_config(dashboard=False).dashboard is False
    with pytest.raises(ConfigError, match="^config: dashboard: expected true or false, got str 'yes'$"):
        make_config(dashboard="yes")
    with pytest.raises(ConfigError, match="names.dashboard: 'a b': a CloudWatch dashboard name"):
        make_config(names={"dashboard": "a b"})


# ---------- the plan ----------
BODY = {"widgets": [{"type": "text", "properties": {"markdown": "x"}}]}
TAGS = (("Name", "d"), ("flowwatch:stack", "test"), ("flowwatch:step", "dashboard"))
WANT = DashboardSpec("d", "arn:d", "https://url", BODY, TAGS)


def seen(body=BODY, tags=TAGS, ours=True):
    return DashboardSeen("d", "arn:d", "https://url", body, tags, ours)


def test_plan():
    assert [(c.action, c.kind) for c in STEP.plan(WANT, None)] == [("create", "dashboard")]
    assert STEP.plan(WANT, seen()) == []
    other = {"widgets": [{"type": "text", "properties": {"markdown": "y"}}]}
    (change,) = STEP.plan(WANT, seen(body=other))
    assert (change.action, change.kind, change.reason) == ("update", "dashboard", "widgets ~ text")
    (change,) = STEP.plan(WANT, seen(tags=TAGS[1:]))
    assert (change.action, change.kind, change.reason) == ("update", "tags", "tags Name")
    with pytest.raises(OwnershipError, match="dashboard: d exists and is not the stack's"):
        STEP.plan(WANT, seen(ours=False))


def test_dashboard_false_removes_ours_only():
    off = replace(WANT, body=None)
    assert [c.action for c in STEP.plan(off, seen())] == ["delete"]
    assert STEP.plan(off, seen(ours=False)) == [] == STEP.plan(off, None)
    assert [c.action for c in STEP.plan_destroy(seen(), DestroyOptions())] == ["delete"]
    assert STEP.plan_destroy(seen(ours=False), DestroyOptions()) == []


# ---------- on moto ----------
@pytest.fixture
def sent(session):
    """The parameters of every PutDashboard / TagResource flowwatch sent, as (operation, params)."""
    seen_calls: list[tuple[str, dict]] = []
    for op in ("PutDashboard", "TagResource"):
        session.events.register(f"provide-client-params.cloudwatch.{op}",
                                lambda params, _op=op, **_: seen_calls.append((_op, dict(params))))
    return seen_calls


NAME = "flowwatch-test-us-east-1"


def test_create_sends_the_body_and_the_tags_and_then_discover_agrees(ctx, sent):
    parents(ctx, "vpc")
    created = converge_step(STEP, ctx)
    (op, params), = sent
    assert op == "PutDashboard" and params["DashboardName"] == NAME
    assert json.loads(params["DashboardBody"]) == STEP.desired(ctx).body
    assert ctx.stack.vpc_id in params["DashboardBody"]
    assert params["Tags"] == [{"Key": "Name", "Value": NAME}, {"Key": "flowwatch:stack", "Value": "test"},
                              {"Key": "flowwatch:step", "Value": "dashboard"}]
    found = STEP.discover(ctx)
    assert found == created and found.ours
    assert found.arn == f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{NAME}"
    assert STEP.plan(STEP.desired(ctx), found) == []
    assert ctx.stack.dashboard == NAME
    assert ctx.stack.dashboard_url == console_url("aws", "us-east-1", NAME)
    assert destroy_step(STEP, ctx, found) is None and STEP.discover(ctx) is None


def test_a_second_up_makes_no_mutating_call(ctx, session, calls):
    engine.up(ctx)
    calls.clear()
    assert engine.up(fresh(ctx)).changed == 0
    assert mutating(calls) == []
    assert ("cloudwatch", "GetDashboard") in calls


def test_a_config_change_updates_the_body_without_resending_tags(ctx, session, sent):
    engine.up(ctx)
    sent.clear()
    config = make_config(alerts=TWO_RULES)
    report = engine.up(make_ctx(session, config))
    assert [c.target for c in report.changes if c.step == "dashboard"] == [f"dashboard {NAME} (7 widgets)"]
    (op, params), = sent
    assert op == "PutDashboard" and "Tags" not in params
    stored = json.loads(session.client("cloudwatch").get_dashboard(DashboardName=NAME)["DashboardBody"])
    assert [w["properties"]["title"].split(":")[0] for w in widgets(stored, "metric")] == ["ping-deny", "ssh-reject"]


def test_drifted_tags_are_put_back_with_tag_resource(ctx, session, sent):
    engine.up(ctx)
    cw = session.client("cloudwatch")
    arn = f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{NAME}"
    cw.untag_resource(ResourceARN=arn, TagKeys=["Name"])
    sent.clear()
    report = engine.up(fresh(ctx))
    assert [(c.step, c.params.get("kind")) for c in report.changes] == [("dashboard", "tags")]
    assert [op for op, _ in sent] == ["TagResource"]
    assert {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]}["Name"] == NAME


@pytest.mark.parametrize("tags", [[], [{"Key": "flowwatch:stack", "Value": "other"}]])
def test_a_dashboard_of_that_name_that_is_not_ours_stops_up_before_any_change(session, calls, tags):
    cw = session.client("cloudwatch")
    cw.put_dashboard(DashboardName=NAME, DashboardBody='{"widgets": []}', **({"Tags": tags} if tags else {}))
    calls.clear()
    with pytest.raises(OwnershipError, match=f"dashboard: {NAME} exists and is not the stack's"):
        engine.up(make_ctx(session))
    assert mutating(calls) == []
    assert cw.get_dashboard(DashboardName=NAME)["DashboardBody"] == '{"widgets": []}'


def test_dashboard_false_deletes_ours_and_leaves_a_foreign_one(ctx, session, calls):
    cw = session.client("cloudwatch")
    engine.up(ctx)
    calls.clear()
    report = engine.up(make_ctx(session, make_config(dashboard=False)))
    assert [(c.step, c.action) for c in report.changes] == [("dashboard", "delete")]
    assert mutating(calls) == [("cloudwatch", "DeleteDashboards")]
    assert cw.list_dashboards()["DashboardEntries"] == []
    cw.put_dashboard(DashboardName=NAME, DashboardBody='{"widgets": []}')       # someone else's, same name
    assert engine.up(make_ctx(session, make_config(dashboard=False))).changed == 0
    assert [d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]] == [NAME]


def test_down_removes_it_and_an_orphan_under_an_old_name(ctx, session):
    engine.up(make_ctx(session, make_config(names={"dashboard": "old-name"})))     # an older config's name
    engine.up(ctx)
    cw = session.client("cloudwatch")
    assert sorted(d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]) == [NAME, "old-name"]
    report = engine.down(fresh(ctx))
    removed = sorted(c.target for c in report.changes if c.step == "dashboard")
    assert removed == [f"dashboard {NAME}", "dashboard old-name"]
    assert cw.list_dashboards()["DashboardEntries"] == []
    tagged = session.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "flowwatch:stack", "Values": ["test"]}])["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in tagged if ":dashboard/" in r["ResourceARN"]] == []


def test_status_shows_the_dashboard_with_its_address(ctx, session):
    engine.up(ctx)
    other = fresh(ctx)
    rows = {r.step: r for r in engine.status(other)}
    assert rows["dashboard"].state == "found"
    assert dict(rows["dashboard"].facts.ids) == {"dashboard": NAME, "url": console_url("aws", "us-east-1", NAME)}
    assert other.stack.dashboard_url == console_url("aws", "us-east-1", NAME)
