"""Dashboard tags on the local AWS (flowwatch.local.dashboards), through boto3 against a running local server of
this module's own (moto alone drops PutDashboard's Tags and has no tags for a dashboard ARN)."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from flowwatch.local.dashboards import dashboard_of

from tests.local.test_dataplane import REGION, server  # noqa: F401  (module-scoped: a server per test module)

ACCOUNT = "123456789012"
BODY = '{"widgets": []}'
OURS = [{"Key": "flowwatch:stack", "Value": "lab"}, {"Key": "Name", "Value": "board"}]


@pytest.fixture
def cw(server):  # noqa: F811
    import boto3

    return boto3.client("cloudwatch", region_name=REGION, endpoint_url=server.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def fresh_name() -> str:
    return f"board-{uuid.uuid4().hex[:8]}"


def arn(name: str) -> str:
    return f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{name}"


def tags(cw, resource: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=resource)["Tags"]}


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_dashboard_arns_are_recognised():
    assert dashboard_of(arn("d")) == (ACCOUNT, "d")
    assert dashboard_of(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:d") is None
    assert dashboard_of(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:insight-rule/d") is None


def test_the_tags_of_the_creating_put_are_kept_and_an_update_ignores_its_tags(cw):
    name = fresh_name()
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY, Tags=OURS)
    assert cw.get_dashboard(DashboardName=name)["DashboardArn"] == arn(name)
    assert tags(cw, arn(name)) == {"flowwatch:stack": "lab", "Name": "board"}
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY, Tags=[{"Key": "flowwatch:stack", "Value": "other"}])
    assert tags(cw, arn(name)) == {"flowwatch:stack": "lab", "Name": "board"}


def test_tag_and_untag_a_dashboard(cw):
    name = fresh_name()
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY)
    assert tags(cw, arn(name)) == {}
    cw.tag_resource(ResourceARN=arn(name), Tags=OURS)
    cw.tag_resource(ResourceARN=arn(name), Tags=[{"Key": "Name", "Value": "renamed"}])
    assert tags(cw, arn(name)) == {"flowwatch:stack": "lab", "Name": "renamed"}
    cw.untag_resource(ResourceARN=arn(name), TagKeys=["Name"])
    assert tags(cw, arn(name)) == {"flowwatch:stack": "lab"}


def test_deleting_a_dashboard_forgets_its_tags(cw):
    name = fresh_name()
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY, Tags=OURS)
    cw.delete_dashboards(DashboardNames=[name])
    with pytest.raises(ClientError) as missing:
        cw.list_tags_for_resource(ResourceARN=arn(name))
    assert code(missing) == "ResourceNotFoundException"
    cw.put_dashboard(DashboardName=name, DashboardBody=BODY)          # a new one of the same name: untagged
    assert tags(cw, arn(name)) == {}


def test_an_unknown_dashboard_is_not_found(cw):
    with pytest.raises(ClientError) as missing:
        cw.tag_resource(ResourceARN=arn(fresh_name()), Tags=OURS)
    assert code(missing) == "ResourceNotFoundException"


def test_alarm_arns_still_reach_moto(cw):
    name = fresh_name()
    cw.put_metric_alarm(AlarmName=name, MetricName="M", Namespace="N", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        Tags=[{"Key": "flowwatch:stack", "Value": "lab"}])
    alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"]
    assert tags(cw, alarm) == {"flowwatch:stack": "lab"}
    cw.tag_resource(ResourceARN=alarm, Tags=[{"Key": "extra", "Value": "1"}])
    assert tags(cw, alarm) == {"flowwatch:stack": "lab", "extra": "1"}
    with pytest.raises(ClientError) as missing:        # moto's own answer for an alarm that does not exist
        cw.tag_resource(ResourceARN=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{fresh_name()}", Tags=OURS)
    assert code(missing) == "ResourceNotFoundException"
