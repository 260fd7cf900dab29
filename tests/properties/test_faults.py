"""Transient faults: throttling on a share of ALL calls, and the named eventual-consistency errors.

Throttling is answered in each service's own wire format from a ``before-send`` handler (tests/aws_faults.py),
so botocore parses it and botocore's standard retry handler (configured in ``flowwatch.aws.retry_config``)
decides to retry it: flowwatch has no retry loop for throttling. botocore's backoff delays are recorded
instead of slept. Eventual consistency (an id not visible yet, the new IAM role not assumable yet) is
retried by flowwatch on exactly named codes, and only those.
"""

from __future__ import annotations

import json

import pytest

from flowwatch.aws import MAX_ATTEMPTS, Aws

from tests.support.aws_faults import THROTTLE, BackoffRecorder, FailAt, RespondOnce, Throttler, is_mutating, new_session, moto_fixes
from tests.support.cli import run_cli
from tests.support.context import make_config, make_ctx
from tests.support.inventory import empty, inventory

pytestmark = pytest.mark.slow   # whole up/down cycles on moto

FAULT_RATE = 0.15
CONFIG = """\
stack: test
alerts:
  email: ops@example.com
  detections: [rejected-spike, top-rejected-sources, ssh-rdp-probe, egress-spike]
"""


@pytest.fixture
def backoff(monkeypatch):
    """botocore.endpoint sleeps between retries with time.sleep: record the delays, sleep 0."""
    import botocore.endpoint

    recorder = BackoffRecorder()
    monkeypatch.setattr(botocore.endpoint, "time", recorder)
    return recorder


@pytest.fixture
def moto(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws(), moto_fixes():
        yield


@pytest.fixture
def fast_session(moto):
    return new_session()


# ---------- the injected faults are what botocore's retry handler sees ----------
PROBES = {  # a harmless read per service flowwatch uses
    "ec2": ("ec2", "describe_vpcs"), "s3": ("s3", "list_buckets"), "iam": ("iam", "list_roles"),
    "sts": ("sts", "get_caller_identity"), "sns": ("sns", "list_topics"),
    "cloudwatch": ("cloudwatch", "describe_alarms"), "cloudwatch-logs": ("logs", "describe_log_groups"),
    "glue": ("glue", "get_databases"), "athena": ("athena", "list_work_groups"),
    "ssm": ("ssm", "describe_parameters"), "resource-groups-tagging-api": ("resourcegroupstaggingapi", "get_resources"),
}


@pytest.mark.parametrize("service", sorted(PROBES))
def test_a_throttled_attempt_is_retried_by_botocore(service, fast_session, backoff):
    client_name, method = PROBES[service]
    throttler = Throttler(rate=1.0, services=(service,), limit=1).install(fast_session)
    response = getattr(Aws(fast_session).client(client_name), method)()
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert throttler.total == 1 and throttler.codes == {THROTTLE[service][0]: 1}
    assert len(backoff.delays) == 1 and 0 <= backoff.delays[0] <= 1.0   # botocore's first backoff: <= 1 s


@pytest.mark.parametrize("service", sorted(PROBES))
def test_throttling_on_every_attempt_ends_with_the_service_code_after_botocore_budget(service, fast_session, backoff):
    from botocore.exceptions import ClientError

    client_name, method = PROBES[service]
    throttler = Throttler(rate=1.0, services=(service,)).install(fast_session)
    with pytest.raises(ClientError) as exc:
        getattr(Aws(fast_session).client(client_name), method)()
    assert exc.value.response["Error"]["Code"] == THROTTLE[service][0]     # the body parses to the service's code
    assert throttler.attempts == MAX_ATTEMPTS + 1                          # botocore: 1 try + MAX_ATTEMPTS retries
    assert len(backoff.delays) == MAX_ATTEMPTS


def test_a_non_retryable_error_is_not_retried(fast_session, backoff):
    from flowwatch import engine
    from flowwatch.errors import AwsError

    fail = FailAt(0).install(fast_session)              # CreateVpc: UnauthorizedOperation
    with pytest.raises(AwsError, match="vpc: CreateVpc failed: UnauthorizedOperation") as exc:
        engine.up(make_ctx(fast_session))
    assert fail.hit == ("ec2", "CreateVpc") and backoff.delays == []
    assert exc.value.hint and "docs/IAM.md" in exc.value.hint


# ---------- the whole life cycle, every command, 15 % of all calls throttled ----------
def _use_session(monkeypatch, session):
    """Every command run through the CLI (whatever profile and region) gets our instrumented session."""
    from tests.support.cli import use_session
    use_session(monkeypatch, session)


@pytest.mark.parametrize("seed", [1, 2])
def test_every_command_succeeds_with_15_percent_of_calls_throttled(seed, tmp_path, capsys, monkeypatch, fast_session,
                                                                   backoff):
    (tmp_path / "flowwatch.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    _use_session(monkeypatch, fast_session)
    throttler = Throttler(rate=FAULT_RATE, seed=seed).install(fast_session)
    mutations: list[tuple[str, str]] = []
    fast_session.events.register("before-call.*.*", lambda event_name, **_: mutations.append(
        tuple(event_name.split(".")[1:3])) if is_mutating(event_name.split(".")[2]) else None)
    plain = new_session()                                  # an unthrottled view, to check the outcome

    def ok(*args: str) -> str:
        result = run_cli(capsys, monkeypatch, *args)
        assert result.code == 0, f"{args}: {result.err}"
        assert "Traceback" not in result.err
        return result.out

    ok("up")
    assert len(inventory(plain)["tagged"]) >= 10
    mutations.clear()
    ok("up")
    assert mutations == []                                 # converged: the second up is silent, throttled or not
    status = json.loads(ok("--output", "json", "status"))
    states = {row["step"]: row["state"] for row in status["steps"]}
    assert all(states[s] == "found" for s in ("vpc", "subnet", "igw", "flow_logs", "nacl", "sns", "metric_filter",
                                              "alarm", "athena")), states
    ok("simulate-reject", "--mode", "inject", "--no-wait", "--count", "5")
    events = plain.client("logs").filter_log_events(logGroupName="/flowwatch/test/flow-logs")["events"]
    assert len(events) >= 5
    ok("query", "rejects", "--engine", "athena")
    ok("down", "--yes")
    assert empty(inventory(plain)) == {}
    ok("down", "--yes")                                    # nothing left: a no-op, still under throttling

    # the faults were real and many: the measured rate, every error family, and botocore's backoff
    rate = throttler.total / throttler.attempts
    print(f"seed {seed}: {throttler.total} of {throttler.attempts} attempts throttled ({rate:.1%}): "
          f"{dict(throttler.codes)}")
    assert throttler.total >= 20 and 0.09 <= rate <= 0.21
    assert {"RequestLimitExceeded", "SlowDown", "Throttling", "ThrottlingException"} <= set(throttler.codes)
    assert len(backoff.delays) == throttler.total          # each one retried by botocore after its backoff


# ---------- eventual consistency: named codes only ----------
NOT_YET_VISIBLE = [  # (service, operation refused, code, the create it follows)
    ("ec2", "DescribeVpcs", "InvalidVpcID.NotFound", "CreateVpc"),          # botocore's vpc_exists waiter
    ("ec2", "CreateSubnet", "InvalidVpcID.NotFound", "CreateVpc"),
    ("ec2", "ModifySubnetAttribute", "InvalidSubnetID.NotFound", "CreateSubnet"),
    ("ec2", "AttachInternetGateway", "InvalidInternetGatewayID.NotFound", "CreateInternetGateway"),
    ("ec2", "CreateRoute", "InvalidGatewayID.NotFound", "AttachInternetGateway"),
    ("cloudwatch-logs", "PutRetentionPolicy", "ResourceNotFoundException", "CreateLogGroup"),
    ("iam", "PutRolePolicy", "NoSuchEntity", "CreateRole"),
    ("s3", "PutBucketTagging", "NoSuchBucket", "CreateBucket"),
    ("glue", "CreateTable", "EntityNotFoundException", "CreateDatabase"),
]
STATUS = {"InvalidVpcID.NotFound": 400, "InvalidSubnetID.NotFound": 400, "InvalidInternetGatewayID.NotFound": 400,
          "InvalidGatewayID.NotFound": 400, "ResourceNotFoundException": 400, "NoSuchEntity": 404,
          "NoSuchBucket": 404, "EntityNotFoundException": 400}


def _complete(session) -> dict:
    inv = inventory(session)
    assert len(inv["vpcs"]) == len(inv["subnets"]) == len(inv["igws"]) == 1 and len(inv["flow_logs"]) == 2
    assert inv["log_groups"] and inv["roles"] and inv["buckets"] and inv["alarms"] and inv["nacl_rule_90"]
    return inv


@pytest.mark.parametrize(("service", "operation", "code", "after"), NOT_YET_VISIBLE,
                         ids=[f"{s}.{o}" for s, o, _, _ in NOT_YET_VISIBLE])
def test_a_just_created_resource_not_visible_yet_is_waited_for(service, operation, code, after, fast_session,
                                                               backoff, monkeypatch):
    from flowwatch import engine

    import botocore.waiter

    waiter = BackoffRecorder()                          # botocore's waiters sleep with time.sleep
    monkeypatch.setattr(botocore.waiter, "time", waiter)
    sleeps: list[float] = []
    answer = RespondOnce(service, operation, code, STATUS[code], times=2, after=after).install(fast_session)
    engine.up(make_ctx(fast_session, sleep=sleeps.append))
    assert answer.attempts >= 3                        # refused twice, then done
    _complete(fast_session)
    assert backoff.delays == []                        # not a throttling retry: botocore's retry handler said no
    if operation == "DescribeVpcs":
        assert len(waiter.delays) == 2                 # botocore's vpc_exists waiter retries its named code
    else:
        assert len(sleeps) == 2                        # flowwatch's wait_until, on the named code only


@pytest.mark.parametrize(("service", "operation", "code"), [
    ("ec2", "CreateSubnet", "InvalidParameterValue"),
    ("iam", "PutRolePolicy", "MalformedPolicyDocument"),
    ("glue", "CreateTable", "InvalidInputException"),
])
def test_other_codes_are_not_retried(service, operation, code, fast_session, backoff):
    from flowwatch import engine
    from flowwatch.errors import AwsError

    answer = RespondOnce(service, operation, code, 400).install(fast_session)
    with pytest.raises(AwsError, match=f"{operation} failed: {code}"):
        engine.up(make_ctx(fast_session))
    assert answer.attempts == 1 and backoff.delays == []


FLOW_LOG_ROLE_NOT_READY = """<?xml version="1.0" encoding="UTF-8"?>
<CreateFlowLogsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>f10ead00-0000-4000-8000-000000000001</requestId>
  <flowLogIdSet/>
  <unsuccessful><item><error><code>400</code>
    <message>Unable to assume given IAM role, or the role does not allow flow logs to publish</message>
  </error><resourceId>vpc-00000000</resourceId></item></unsuccessful>
</CreateFlowLogsResponse>"""


def test_the_new_delivery_role_not_assumable_yet_is_waited_for(fast_session, backoff):
    from flowwatch import engine

    sleeps: list[float] = []
    answer = RespondOnce("ec2", "CreateFlowLogs", status=200, body=FLOW_LOG_ROLE_NOT_READY, times=2).install(
        fast_session)
    engine.up(make_ctx(fast_session, sleep=sleeps.append))
    assert answer.attempts == 4 and len(sleeps) == 2      # two refusals, then both flow logs
    _complete(fast_session)


def test_another_unsuccessful_flow_log_is_an_error(fast_session):
    from flowwatch import engine
    from flowwatch.errors import AwsError

    body = FLOW_LOG_ROLE_NOT_READY.replace("Unable to assume given IAM role, or the role does not allow flow logs "
                                           "to publish", "LogDestination: bucket does not exist")
    RespondOnce("ec2", "CreateFlowLogs", status=200, body=body).install(fast_session)
    with pytest.raises(AwsError, match="CreateFlowLogs failed: 400: LogDestination"):
        engine.up(make_ctx(fast_session, config=make_config()))
