"""Discovery of everything tagged for the stack: resources left under old names (orphans) and second copies
(duplicates) are listed by `status` (exit 1), reported by `up`, and removed by `up --prune` and `down`.

Through the real CLI on moto; "nothing left" is checked both through the Tagging API and through each
service's own list calls (tests/support/inventory.py: VPCs, subnets, gateways, flow logs, log groups, IAM
roles, buckets, topics, alarms, Glue databases, workgroups), plus the metric filters of every log group.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.inventory import empty, inventory

pytestmark = pytest.mark.slow   # whole up/down cycles on moto

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


@pytest.fixture
def session(pooled_session):
    return pooled_session


@pytest.fixture
def cli(capsys, monkeypatch, session, tmp_path):
    monkeypatch.chdir(tmp_path)

    def run(*args: str):
        return run_cli(capsys, monkeypatch, *args, session_factory=lambda profile, region: session)
    return run


def leftovers(session, stack: str) -> dict:
    """What is left of ``stack``: tagged resources, each service's own lists, and metric filters anywhere."""
    left = empty(inventory(session, stack))
    logs = session.client("logs")
    left_roles = [r["RoleName"] for r in session.client("iam").list_roles()["Roles"]
                  if stack in json.dumps(session.client("iam").list_role_tags(RoleName=r["RoleName"])["Tags"])]
    if left_roles:
        left["tagged_roles"] = left_roles
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    filters = [f["filterName"] for g in groups for f in logs.describe_metric_filters(logGroupName=g)["metricFilters"]]
    if filters:
        left["metric_filters"] = filters
    glue = [d["Name"] for d in session.client("glue").get_databases()["DatabaseList"]]
    athena = [w["Name"] for w in session.client("athena").list_work_groups()["WorkGroups"] if w["Name"] != "primary"]
    if glue:
        left["glue_databases"] = glue
    if athena:
        left["workgroups"] = athena
    return left


def test_the_rename_sequence_leaves_nothing(cli, session):
    Path("flowwatch.yaml").write_text("stack: lab\n")
    assert cli("up").code == 0
    shutil.copy(EXAMPLE, "flowwatch.yaml")                     # same stack, the lab's names
    second = cli("--output", "json", "up")
    assert second.code == 0
    report = json.loads(second.out)
    orphans = {(e["kind"], e["id"]) for e in report["extras"]}
    assert {("log group", "/flowwatch/lab/flow-logs"), ("IAM role", "flowwatch-lab-flow-logs-role"),
            ("SNS topic", "flowwatch-lab-alerts"), ("Glue database", "flowwatch_lab"),
            ("metric filter", "/flowwatch/lab/flow-logs:flowwatch-lab-ping-deny")} <= orphans
    assert {e["state"] for e in report["extras"]} == {"orphaned (not in the config)"}
    assert "`flowwatch up --prune` removes it" in second.err
    status = cli("status")
    assert status.code == 1 and "orphaned (not in the config)" in status.out
    down = cli("down", "--yes")
    assert down.code == 0, down.err
    assert leftovers(session, "lab") == {}


def test_a_duplicate_vpc_is_shown_by_status_and_removed_by_down(cli, session):
    Path("flowwatch.yaml").write_text("stack: lab\n")
    assert cli("up").code == 0
    ec2 = session.client("ec2")
    (primary,) = [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": ["lab"]}])
                  ["Vpcs"]]
    tags = [{"Key": "flowwatch:stack", "Value": "lab"}, {"Key": "flowwatch:step", "Value": "vpc"},
            {"Key": "Name", "Value": "flowwatch-lab-vpc"}]
    extra = ec2.create_vpc(CidrBlock="10.0.0.0/24", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])[
        "Vpc"]["VpcId"]
    status = cli("--output", "json", "status")
    assert status.code == 1
    rows = {(r["state"], r["found"]) for r in json.loads(status.out)["steps"]}
    assert (f"duplicate of {primary}", f"vpc {extra}") in rows
    assert cli("up").code == 0                                 # the primary is still the one with the gateway
    dry = cli("up", "--dry-run", "--prune")
    assert dry.code == 0 and f"vpc {extra}" in dry.err
    assert {v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[primary, extra])["Vpcs"]} == {primary, extra}
    down = cli("down", "--yes")
    assert down.code == 0, down.err
    assert leftovers(session, "lab") == {}


def test_up_prune_removes_the_duplicate_and_keeps_the_stack(cli, session):
    Path("flowwatch.yaml").write_text("stack: lab\n")
    assert cli("up").code == 0
    ec2 = session.client("ec2")
    tags = [{"Key": "flowwatch:stack", "Value": "lab"}, {"Key": "flowwatch:step", "Value": "subnet"}]
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/24", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags[:1]}])[
        "Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/26", AvailabilityZone="us-east-1a",
                               TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}])["Subnet"]["SubnetId"]
    assert cli("up", "--prune").code == 0
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Vpcs"] == []
    assert ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["Subnets"] == []
    assert cli("status").code == 0
    assert cli("down", "--yes").code == 0 and leftovers(session, "lab") == {}


def test_a_whole_second_network_is_listed_as_duplicates_and_down_removes_both(session, monkeypatch):
    """What two `up` at once leave: a second VPC with its subnet, gateway, flow logs and NACL rule."""
    from flowwatch import engine
    from flowwatch.steps import IGW, VPC

    from tests.support.context import fresh, make_config, make_ctx

    ctx = make_ctx(session, make_config(stack="lab"))
    engine.up(ctx)
    with monkeypatch.context() as blind:          # a second writer that did not see the first one's network
        blind.setattr(type(VPC), "discover", lambda self, c: None)
        blind.setattr(type(IGW), "discover", lambda self, c: None)
        engine.up(fresh(ctx))
    made = inventory(session, "lab")
    assert len(made["vpcs"]) == 2 and len(made["flow_logs"]) == 4
    rows = engine.status(fresh(ctx))
    duplicates = sorted(r.step for r in rows if r.state.startswith("duplicate of "))
    assert duplicates == ["flow_logs", "flow_logs", "igw", "subnet", "vpc"]
    engine.down(fresh(ctx))
    assert leftovers(session, "lab") == {}
