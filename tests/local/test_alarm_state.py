"""CloudWatch alarm evaluation on the local AWS (flowwatch.local.alarm_state): tracked states, the
first INSUFFICIENT_DATA, SetAlarmState, the alarm JSON published to the new state's actions, and a
state set from outside. The rules themselves are tests/local/test_alarms.py's.

End to end on a server of this module's own; unit tests on moto in-process with a fake clock.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from flowwatch.local.alarm_state import AlarmEvaluator
from tests.local.test_dataplane import (REGION, SessionClients, alarm_stack, alarm_state, api, aws,  # noqa: F401
                                        messages, network, records, server, server_now)


# ---- end to end on the server --------------------------------------------------------------

@pytest.mark.parametrize(("treat", "expected"), [("missing", "INSUFFICIENT_DATA"), ("breaching", "ALARM"),
                                                 ("notBreaching", "OK"), ("ignore", "INSUFFICIENT_DATA")])
@pytest.mark.slow
def test_new_alarm_without_data_by_treat_missing_data(aws, api, treat, expected):
    _, alarm, topic = alarm_stack(aws, treat=treat, email=None)
    api.evaluate()
    assert alarm_state(aws, alarm) == expected             # starts INSUFFICIENT_DATA, not moto's "OK"
    sent = messages(api, topic)
    assert len(sent) == (0 if expected == "INSUFFICIENT_DATA" else 1)
    assert all(m["recipients"] == [] for m in sent)        # nobody subscribed: nobody would get the e-mail


@pytest.mark.slow
def test_m_of_n_needs_m_breaching_periods(aws, api, network):
    group, alarm, topic = alarm_stack(aws, treat="missing", n=3, m=2)
    logs = aws("logs")
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = server_now(api) // 60 * 60

    def put(start):
        lines = records(api, "eni-0abababababababab", 1, start=start)
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": start * 1000, "message": lines[0]}])

    put(now - 120)          # "- - X - -": one breaching period, two periods old, then missing
    api.evaluate()
    assert alarm_state(aws, alarm) == "ALARM"              # premature-alarm rule (M = 2 <= age)
    api.advance(10 * 60)    # the range empties: missing -> INSUFFICIENT_DATA
    api.evaluate()
    assert alarm_state(aws, alarm) == "INSUFFICIENT_DATA"
    assert [json.loads(m["message"])["NewStateValue"] for m in messages(api, topic)] == ["ALARM"]


@pytest.mark.slow
def test_set_alarm_state_from_outside_fires_the_actions(aws, api):
    _, alarm, topic = alarm_stack(aws)
    api.evaluate()
    aws("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="testing the pager")
    api.evaluate()
    last = messages(api, topic)[-1]
    assert json.loads(last["message"])["NewStateValue"] == "ALARM"
    assert json.loads(last["message"])["NewStateReason"] == "testing the pager"


# ---- unit: moto in-process, a fake clock ---------------------------------------------------

class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return FakeClock(int(time.time()) // 3600 * 3600 - 3600 + 15)   # 15 s into a minute, an hour ago


@pytest.fixture
def evaluator(session, clock):
    return AlarmEvaluator(SessionClients(session), now=clock)


@pytest.fixture
def topic(session):
    """A topic with an SQS subscriber: what the evaluator published, as a subscriber receives it."""
    sns, sqs = session.client("sns"), session.client("sqs")
    arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    def received() -> list[dict]:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in got]   # raw delivery: the "default" (= SQS) member, the alarm JSON

    return arn, received


def _alarm(session, topic_arn: str | None = None, **kw) -> str:
    args = {"AlarmName": "pings", "Namespace": "NS", "MetricName": "Pings", "Statistic": "Sum", "Period": 60,
            "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching", **kw}
    if topic_arn:
        args.update(AlarmActions=[topic_arn], OKActions=[topic_arn])
    session.client("cloudwatch").put_metric_alarm(**args)
    return args["AlarmName"]


def _described(session, alarm: str) -> dict:
    return session.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]


def test_a_new_alarm_follows_its_data_and_publishes_each_change(session, evaluator, clock, topic):
    arn, received = topic
    alarm = _alarm(session, arn)
    (first,) = evaluator.evaluate([REGION])                # INSUFFICIENT_DATA first, then no data: notBreaching
    assert (first["old"], first["new"], first["notified"]) == ("INSUFFICIENT_DATA", "OK", [arn])
    assert evaluator.evaluate([REGION]) == []              # no change, no message

    session.client("cloudwatch").put_metric_data(Namespace="NS", MetricData=[
        {"MetricName": "Pings", "Value": 3, "Timestamp": datetime.fromtimestamp(clock.t - 5, tz=timezone.utc)}])
    (fired,) = evaluator.evaluate([REGION])
    assert (fired["alarm"], fired["old"], fired["new"], fired["time"]) == (alarm, "OK", "ALARM", clock.t)
    described = _described(session, alarm)
    assert described["StateValue"] == "ALARM" and described["StateReason"] == fired["reason"]
    assert json.loads(described["StateReasonData"])["recentDatapoints"] == [3.0]
    assert evaluator.states() == [{"region": REGION, "alarm": alarm, "state": "ALARM"}]
    assert [(h["old"], h["new"]) for h in evaluator.history()] == [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM")]
    sent = received()
    assert [(m["OldStateValue"], m["NewStateValue"]) for m in sent] == [("INSUFFICIENT_DATA", "OK"), ("OK", "ALARM")]
    assert sent[-1]["AlarmName"] == alarm and sent[-1]["NewStateReason"] == fired["reason"]


def test_a_state_set_from_outside_fires_and_holds_until_the_next_period(session, evaluator, clock, topic):
    arn, received = topic
    alarm = _alarm(session, arn)
    evaluator.evaluate([REGION])                                        # -> OK
    session.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="pager test")
    (change,) = evaluator.evaluate([REGION])
    assert (change["old"], change["new"], change["reason"], change["notified"]) == ("OK", "ALARM", "pager test", [arn])
    clock.t += 30                                                       # same period: the set state holds
    assert evaluator.evaluate([REGION]) == [] and _described(session, alarm)["StateValue"] == "ALARM"
    clock.t += 15                                                       # the next period: evaluated again
    (back,) = evaluator.evaluate([REGION])
    assert (back["old"], back["new"]) == ("ALARM", "OK")
    assert [m["NewStateValue"] for m in received()] == ["OK", "ALARM", "OK"]


def test_actions_disabled_or_not_sns_publish_nothing(session, evaluator):
    _alarm(session, AlarmName="quiet", AlarmActions=["arn:aws:sns:us-east-1:123456789012:t"],
           OKActions=["arn:aws:sns:us-east-1:123456789012:t"], ActionsEnabled=False)
    _alarm(session, AlarmName="ec2", OKActions=["arn:aws:automate:us-east-1:ec2:stop"])
    changes = {c["alarm"]: c for c in evaluator.evaluate([REGION])}
    assert changes["quiet"]["notified"] == [] and changes["ec2"]["notified"] == []
    assert changes["quiet"]["new"] == changes["ec2"]["new"] == "OK"


def test_an_alarm_it_cannot_evaluate_stays_insufficient_and_a_deleted_one_is_forgotten(session, evaluator):
    cw = session.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="p99", Namespace="NS", MetricName="Pings", ExtendedStatistic="p99", Period=60,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="breaching")
    assert evaluator.evaluate([REGION]) == []
    assert _described(session, "p99")["StateValue"] == "INSUFFICIENT_DATA"
    assert evaluator.states() == [{"region": REGION, "alarm": "p99", "state": "INSUFFICIENT_DATA"}]
    cw.delete_alarms(AlarmNames=["p99"])
    evaluator.evaluate([REGION])
    assert evaluator.states() == []


def test_regions_are_evaluated_each_with_its_own_clients(session, evaluator):
    session.client("cloudwatch", region_name="eu-west-1").put_metric_alarm(
        AlarmName="eu", Namespace="NS", MetricName="M", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    _alarm(session, AlarmName="us")
    changes = evaluator.evaluate(["us-east-1", "eu-west-1"])
    assert [(c["region"], c["alarm"]) for c in changes] == [("eu-west-1", "eu"), ("us-east-1", "us")]   # sorted
