"""Ownership: flowwatch touches only what carries its stack tag (or, for a name-keyed resource, its exact
name AND its tag). Look-alikes are never modified or deleted; a foreign resource with the stack's exact
name stops `up` (exit 1, one clear line) before any change, instead of being adopted.

"Never touched" is checked three ways: the whole account dump (every resource, every property) is the
same before `up` and after `down`; no mutating call flowwatch sent names a foreign id or name; and for a
collision, flowwatch sent no mutating call at all.
"""

from __future__ import annotations

import json

import pytest

from flowwatch import engine
from flowwatch.errors import DriftError, FlowwatchError

from tests.support.aws_faults import RespondOnce, is_mutating
from tests.support.cli import run_cli
from tests.support.context import make_config, make_ctx
from tests.support.stack_state import account_dump, leftovers

pytestmark = pytest.mark.slow   # whole up/down cycles on moto

ACCOUNT = "123456789012"
BUCKET = f"flowwatch-test-{ACCOUNT}-us-east-1"
# The lab's names for the stack's own resources (what config.example.yaml-style configs use).
LAB_NAMES = {"vpc": "Lab-VPC-Flow-Logs", "subnet": "Lab-Public-Subnet", "igw": "Lab-IGW",
             "security_group": "Lab-SSH", "instance": "Lab-Traffic"}


@pytest.fixture
def session(pooled_session):
    return pooled_session


@pytest.fixture
def sent(session):
    """Every mutating call flowwatch (or anyone on this session) sends: (operation, params as JSON)."""
    seen: list[tuple[str, str]] = []

    def record(event_name, params, **_):
        operation = event_name.split(".")[2]
        if is_mutating(operation):
            seen.append((operation, json.dumps(params, default=str, sort_keys=True)))

    session.events.register("before-parameter-build.*.*", record)
    return seen


def name(tags):
    return {"Key": "Name", "Value": tags}


def make_lookalikes(session) -> list[str]:
    """Resources that look like the stack's (lab names, flowwatch-test-* prefixes) without its tag."""
    ec2, logs, iam, s3 = (session.client(n) for n in ("ec2", "logs", "iam", "s3"))
    sns, cw, glue, athena = (session.client(n) for n in ("sns", "cloudwatch", "glue", "athena"))
    spec = lambda kind, value: [{"ResourceType": kind, "Tags": [name(value)]}]  # noqa: E731
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/24", TagSpecifications=spec("vpc", "Lab-VPC-Flow-Logs"))["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/26", AvailabilityZone="us-east-1a",
                               TagSpecifications=spec("subnet", "Lab-Public-Subnet"))["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway(TagSpecifications=spec("internet-gateway", "Lab-IGW"))["InternetGateway"][
        "InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"][0]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="1", RuleAction="deny", Egress=True,
                                 CidrBlock="0.0.0.0/0", IcmpTypeCode={"Type": -1, "Code": -1})
    sg = ec2.create_security_group(GroupName="Lab-SSH", Description="the lab's SSH group", VpcId=vpc,
                                   TagSpecifications=spec("security-group", "Lab-SSH"))["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22,
                                                                      "ToPort": 22,
                                                                      "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 SubnetId=subnet, SecurityGroupIds=[sg],
                                 TagSpecifications=spec("instance", "Lab-Traffic"))["Instances"][0]["InstanceId"]
    other_group = "/flowwatch/test/flow-logs-archive"          # shares our log group's prefix
    logs.create_log_group(logGroupName=other_group)
    logs.create_log_group(logGroupName="/aws/lambda/unrelated", tags={"team": "payments"})
    logs.put_metric_filter(logGroupName=other_group, filterName="flowwatch-test-ping-deny", filterPattern="REJECT",
                           metricTransformations=[{"metricName": "Old", "metricNamespace": "Old", "metricValue": "1"}])
    fl = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogGroupName=other_group,
                              LogDestinationType="cloud-watch-logs",
                              DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/lab-role",
                              TagSpecifications=spec("vpc-flow-log", "flowwatch-test-flow-log-cwl"))["FlowLogIds"][0]
    iam.create_role(RoleName="flowwatch-test-flow-logs-role-old", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}}]}))
    s3.create_bucket(Bucket="flowwatch-test-archive")
    s3.put_object(Bucket="flowwatch-test-archive", Key="AWSLogs/old.log.gz", Body=b"old")
    topic = sns.create_topic(Name="flowwatch-test-alerts-old")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="old@example.com")
    cw.put_metric_alarm(AlarmName="flowwatch-test-ping-deny-old", MetricName="Ping-Deny",
                        Namespace="Lab-VPC-Flow-Log-Ping", Statistic="Sum", Period=60, EvaluationPeriods=1,
                        Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic])
    # a Contributor Insights rule under the stack's prefix, untagged; an anomaly detector in another namespace
    cw.put_insight_rule(RuleName="flowwatch-test-top-rejected-sources-old", RuleState="ENABLED",
                        RuleDefinition=json.dumps({"Schema": {"Name": "CloudWatchLogRule", "Version": 1},
                                                   "LogGroupNames": ["/aws/lambda/unrelated"], "LogFormat": "CLF",
                                                   "Fields": {"4": "srcaddr"}, "AggregateOn": "Count",
                                                   "Contribution": {"Keys": ["srcaddr"], "Filters": []}}))
    cw.put_anomaly_detector(SingleMetricAnomalyDetector={"Namespace": "Lab-VPC-Flow-Log-Ping",
                                                         "MetricName": "Rejected-Spike", "Stat": "Sum"})
    glue.create_database(DatabaseInput={"Name": "flowwatch_test_archive"})
    athena.create_work_group(Name="flowwatch-test-athena-old", Configuration={
        "ResultConfiguration": {"OutputLocation": "s3://flowwatch-test-archive/athena/"}})
    return [vpc, subnet, igw, acl, sg, instance, fl, other_group, "/aws/lambda/unrelated",
            "flowwatch-test-flow-logs-role-old", "flowwatch-test-archive", topic, "flowwatch-test-ping-deny-old",
            "flowwatch_test_archive", "flowwatch-test-athena-old"]


def test_lookalikes_are_never_modified_or_deleted(session, sent):
    foreign = make_lookalikes(session)
    before = account_dump(session)
    sent.clear()
    config = make_config(names=LAB_NAMES, alerts={"email": "ops@example.com", "detections": [
        "rejected-spike", "top-rejected-sources", "ssh-rdp-probe", "egress-spike"]})

    engine.up(make_ctx(session, config))
    inventory = leftovers(session)
    assert len(inventory["vpcs"]) == 2 and len(inventory["flow_logs"]) == 3     # ours made beside theirs
    engine.up(make_ctx(session, config))          # found again by tag, not by the look-alike names
    engine.down(make_ctx(session, config))

    assert account_dump(session) == before        # theirs exactly as they were; ours all gone
    assert sent, "the recorder saw flowwatch's calls"
    for operation, params in sent:
        for ident in foreign:
            assert ident not in params, f"{operation} named the foreign {ident}: {params}"


# ---------- a foreign resource with the stack's exact name ----------
def _log_group(session, tags):
    logs = session.client("logs")
    logs.create_log_group(logGroupName="/flowwatch/test/flow-logs", **({"tags": tags} if tags else {}))
    logs.put_metric_filter(logGroupName="/flowwatch/test/flow-logs", filterName="flowwatch-test-ping-deny",
                           filterPattern="REJECT", metricTransformations=[
                               {"metricName": "Theirs", "metricNamespace": "Theirs", "metricValue": "1"}])


def _role(session, tags):
    session.client("iam").create_role(RoleName="flowwatch-test-flow-logs-role", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "ec2.amazonaws.com"}}]}),
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])


def _bucket(session, tags, with_data=False):
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    if tags:
        s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    if with_data:
        s3.put_object(Bucket=BUCKET, Key="theirs.txt", Body=b"theirs")


def _topic(session, tags):
    sns = session.client("sns")
    arn = sns.create_topic(Name="flowwatch-test-alerts", Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    sns.subscribe(TopicArn=arn["TopicArn"], Protocol="email", Endpoint="theirs@example.com")


def _alarm(session, tags):
    session.client("cloudwatch").put_metric_alarm(
        AlarmName="flowwatch-test-ping-deny", MetricName="Theirs", Namespace="Theirs", Statistic="Sum", Period=300,
        EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])


def _database(session, tags):
    session.client("glue").create_database(DatabaseInput={"Name": "flowwatch_test", "Description": "theirs"},
                                           **({"Tags": tags} if tags else {}))


def _workgroup(session, tags):
    session.client("athena").create_work_group(
        Name="flowwatch-test-athena", Configuration={"ResultConfiguration": {"OutputLocation": "s3://theirs/"}},
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])


COLLISIONS = {
    "log-group": (_log_group, "log group /flowwatch/test/flow-logs exists and is not the stack's"),
    "role": (_role, "IAM role flowwatch-test-flow-logs-role exists and is not the stack's"),
    "empty-bucket": (_bucket, f"bucket {BUCKET} exists and is not tagged as the stack's"),
    "bucket-with-data": (lambda s, t: _bucket(s, t, with_data=True),
                         f"bucket {BUCKET} exists and is not tagged as the stack's"),
    "topic": (_topic, "topic flowwatch-test-alerts exists and is not the stack's"),
    "alarm": (_alarm, "alarm: flowwatch-test-ping-deny exists and is not the stack's"),
    "glue-database": (_database, "Glue database flowwatch_test exists and is not the stack's"),
    "workgroup": (_workgroup, "workgroup flowwatch-test-athena exists and is not the stack's"),
}
OWNERS = {"untagged": None, "other-stack": {"flowwatch:stack": "other", "flowwatch:step": "x"},
          "other-team": {"team": "payments"}}


def _cli(tmp_path, capsys, monkeypatch, session, *args):
    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    return run_cli(capsys, monkeypatch, *args, session_factory=lambda profile, region: session)


@pytest.mark.parametrize("owner", sorted(OWNERS))
@pytest.mark.parametrize("kind", sorted(COLLISIONS))
def test_a_foreign_resource_with_our_name_stops_up_before_any_change(kind, owner, session, sent, tmp_path, capsys,
                                                                     monkeypatch):
    make, message = COLLISIONS[kind]
    make(session, OWNERS[owner])
    before = account_dump(session)
    sent.clear()

    result = _cli(tmp_path, capsys, monkeypatch, session, "up")
    lines = [line for line in result.err.splitlines() if line.startswith(("error:", "hint:"))]
    assert result.code == 1, result.err
    assert lines[0].startswith("error: ") and message in lines[0], result.err
    assert "Traceback" not in result.err
    assert sent == []                                   # refused before the first change: nothing to clean up
    assert account_dump(session) == before

    result = _cli(tmp_path, capsys, monkeypatch, session, "down", "--yes")
    assert result.code == 0, result.err
    assert "Nothing to remove" in result.err
    assert sent == [] and account_dump(session) == before


def test_a_foreign_security_group_in_the_stacks_vpc_survives_down(session, sent):
    """Someone put their own 'Lab-SSH' into the stack's VPC: down removes everything else, refuses the VPC
    (DependencyViolation, exit 1, with a hint), never the group; once they remove it, down finishes."""
    config = make_config(names=LAB_NAMES)
    engine.up(make_ctx(session, config))
    ec2 = session.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]}])["Vpcs"]
    sg = ec2.create_security_group(GroupName="Lab-SSH", Description="theirs", VpcId=vpc["VpcId"],
                                   TagSpecifications=[{"ResourceType": "security-group",
                                                       "Tags": [name("Lab-SSH")]}])["GroupId"]
    sent.clear()
    # AWS refuses DeleteVpc while a non-default group is in the VPC; moto deletes the VPC anyway.
    refuse = RespondOnce("ec2", "DeleteVpc", "DependencyViolation", 400,
                         message=f"The vpc '{vpc['VpcId']}' has dependencies and cannot be deleted.").install(session)
    with pytest.raises(FlowwatchError) as exc:
        engine.down(make_ctx(session, config))
    assert "DependencyViolation" in exc.value.message and "outside the stack" in (exc.value.hint or "")
    assert [g["GroupId"] for g in ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]] == [sg]
    assert not any(sg in params for _, params in sent)
    assert leftovers(session).keys() == {"vpcs", "security_groups"}     # everything else is gone

    assert refuse.attempts == 1
    ec2.delete_security_group(GroupId=sg)
    engine.down(make_ctx(session, config))
    assert leftovers(session) == {}


def test_a_foreign_route_in_the_main_table_stops_up(session, sent):
    """The stack's VPC exists, but its 0.0.0.0/0 route points at someone else's gateway: not replaced."""
    config = make_config()
    engine.up(make_ctx(session, config))
    ec2 = session.client("ec2")
    (igw,) = ec2.describe_internet_gateways(Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]}])[
        "InternetGateways"]
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]}])["Vpcs"]
    theirs = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    (table,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    ec2.replace_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=theirs)
    sent.clear()
    with pytest.raises(FlowwatchError, match="not to the stack's"):
        engine.up(make_ctx(session, config))
    assert sent == []
    assert igw["InternetGatewayId"] != theirs


def test_drift_that_cannot_be_fixed_in_place_stops_up_before_any_change(session, sent):
    engine.up(make_ctx(session, make_config()))
    sent.clear()
    with pytest.raises(DriftError, match="10.0.0.0/24, the config wants 10.1.0.0/24"):
        engine.up(make_ctx(session, make_config(network={"vpc_cidr": "10.1.0.0/24", "subnet_cidr": "10.1.0.0/26"},
                                                alerts={"email": "new@example.com"})))
    assert sent == []


def test_simulate_never_takes_over_a_foreign_group_named_like_its_own(session, sent):
    """'Lab-SSH' (with SSH open to the world) already sits in the stack's VPC, untagged: simulate-reject
    would strip inbound rules from ITS group, so it must refuse this one rather than adopt it."""
    from flowwatch.actions.simulate import simulate
    from flowwatch.errors import OwnershipError

    config = make_config(names=LAB_NAMES)
    engine.up(make_ctx(session, config))
    ec2 = session.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": ["test"]}])["Vpcs"]
    sg = ec2.create_security_group(GroupName="Lab-SSH", Description="theirs", VpcId=vpc["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    before = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    sent.clear()
    with pytest.raises(OwnershipError, match="Lab-SSH already exists"):
        simulate(make_ctx(session, config), mode="instance", wait=False)
    assert ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"] == before
    assert not any(sg in params for _, params in sent)
    assert not any(op == "RunInstances" for op, _ in sent)


def test_down_refuses_before_removing_anything_when_someone_attached_a_policy_to_the_role(session):
    """IAM refuses DeleteRole while a managed policy is attached: down must say so before it deletes the
    flow logs and the log group, not half-way (and never detach what it did not attach)."""
    engine.up(make_ctx(session, make_config()))
    iam = session.client("iam")
    policy_arn = iam.create_policy(PolicyName="someone-elses", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:GetLogEvents",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="flowwatch-test-flow-logs-role", PolicyArn=policy_arn)
    with pytest.raises(FlowwatchError, match="someone-elses"):
        engine.down(make_ctx(session, make_config()))
    assert session.client("ec2").describe_flow_logs()["FlowLogs"], "nothing may be removed before the refusal"
    assert iam.list_attached_role_policies(RoleName="flowwatch-test-flow-logs-role")["AttachedPolicies"]
    iam.detach_role_policy(RoleName="flowwatch-test-flow-logs-role", PolicyArn=policy_arn)
    engine.down(make_ctx(session, make_config()))
    assert session.client("ec2").describe_flow_logs()["FlowLogs"] == []
