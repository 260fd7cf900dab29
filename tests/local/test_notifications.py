"""SNS delivery made visible (flowwatch.local.notifications): every message published on the local AWS
lands in the inbox with its subscribers, the e-mail recipients and the e-mail body AWS would send.

End to end on a server of this module's own; unit tests with fake clients and a fixed clock.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import flowwatch.local.notifications as notifications
from flowwatch.local.notifications import Inbox
from tests.local.test_dataplane import api, aws, name, server  # noqa: F401 (fixtures)

RESPONSE = (b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
            b'<MessageId>m-1</MessageId></PublishResult></PublishResponse>')
TOPIC = "arn:aws:sns:eu-west-1:123456789012:alerts"


# ---- end to end on the server --------------------------------------------------------------

@pytest.mark.slow
def test_a_published_message_reaches_the_inbox_with_its_recipients(aws, api):
    sns = aws("sns")
    topic = sns.create_topic(Name=f"t{name()}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    sns.subscribe(TopicArn=topic, Protocol="email-json", Endpoint="bot@example.com")
    plain = sns.publish(TopicArn=topic, Subject="hello", Message="plain text")["MessageId"]
    structured = sns.publish(TopicArn=topic, MessageStructure="json",
                             Message=json.dumps({"default": "for everyone", "email": "for e-mail"}))["MessageId"]
    first, second = [m for m in api.inbox() if m["topic_arn"] == topic]
    assert (first["id"], first["subject"], first["body"], first["message"]) == (plain, "hello", "plain text",
                                                                                "plain text")
    assert first["recipients"] == ["ops@example.com", "bot@example.com"]
    assert {s["protocol"] for s in first["subscribers"]} == {"email", "email-json"}
    assert (second["id"], second["subject"], second["body"], second["message"]) == (structured, None, "for e-mail",
                                                                                    "for everyone")
    assert abs(first["time"] - api.health()["now"]) < 600 and api.health()["inbox"] >= 2


@pytest.mark.slow
def test_a_rejected_publish_is_not_in_the_inbox(aws, api):
    sns = aws("sns")
    before = len(api.inbox())
    with pytest.raises(sns.exceptions.ClientError):
        sns.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:no-such-topic", Message="x")
    assert len(api.inbox()) == before


# ---- unit: fake clients, a fixed clock -----------------------------------------------------

class FakeSns:
    def __init__(self, subscriptions: list[dict[str, str]] | Exception) -> None:
        self.subscriptions = subscriptions
        self.topics: list[str] = []

    def get_paginator(self, operation: str) -> "FakeSns":
        assert operation == "list_subscriptions_by_topic"
        return self

    def paginate(self, TopicArn: str):
        self.topics.append(TopicArn)
        if isinstance(self.subscriptions, Exception):
            raise self.subscriptions
        return [{"Subscriptions": self.subscriptions}]


class FakeClients:
    def __init__(self, sns: FakeSns) -> None:
        self.sns = sns
        self.regions: list[str] = []

    def client(self, service: str, region: str) -> Any:
        assert service == "sns"
        self.regions.append(region)
        return self.sns

    def account(self, region: str) -> str:
        return "123456789012"


def _inbox(subscriptions) -> tuple[Inbox, FakeClients]:
    clients = FakeClients(FakeSns(subscriptions))
    return Inbox(clients, now=lambda: 1_700_000_000.0), clients


def test_entry_of_a_json_message_with_email_and_other_subscribers():
    inbox, clients = _inbox([{"Protocol": "email", "Endpoint": "ops@example.com"},
                             {"Protocol": "sqs", "Endpoint": "arn:aws:sqs:eu-west-1:123456789012:q"}])
    message = json.dumps({"default": '{"AlarmName": "a"}', "email": "You are receiving this email"})
    entry = inbox.tap_publish("us-east-1", {"Action": "Publish", "TopicArn": TOPIC, "Subject": "ALARM: a",
                                            "Message": message, "MessageStructure": "json"}, RESPONSE)
    assert entry == {"id": "m-1", "time": 1_700_000_000.0, "topic_arn": TOPIC, "subject": "ALARM: a",
                     "body": "You are receiving this email", "message": '{"AlarmName": "a"}',
                     "recipients": ["ops@example.com"],
                     "subscribers": [{"protocol": "email", "endpoint": "ops@example.com"},
                                     {"protocol": "sqs", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:q"}]}
    assert clients.regions == ["eu-west-1"]                 # the topic's region, not the request's
    assert inbox.messages() == [entry] and len(inbox) == 1


def test_a_json_message_without_email_member_or_not_json_at_all():
    inbox, _ = _inbox([])
    only_default = inbox.tap_publish("us-east-1", {"TopicArn": TOPIC, "MessageStructure": "json",
                                                   "Message": json.dumps({"default": "d"})}, RESPONSE)
    assert (only_default["body"], only_default["message"]) == ("d", "d")
    not_json = inbox.tap_publish("us-east-1", {"TopicArn": TOPIC, "MessageStructure": "json", "Message": "{oops"},
                                 RESPONSE)
    assert (not_json["body"], not_json["message"]) == ("{oops", "{oops")


def test_a_target_arn_no_topic_and_no_message_id():
    inbox, _ = _inbox([])
    assert inbox.tap_publish("us-east-1", {"PhoneNumber": "+15550100", "Message": "sms"}, RESPONSE) is None
    entry = inbox.tap_publish("us-east-1", {"TargetArn": TOPIC, "Message": "m"}, b"<PublishResponse/>")
    assert entry is not None and entry["topic_arn"] == TOPIC and len(entry["id"]) == 16   # made up, hex
    assert len(inbox) == 1


def test_subscribers_that_cannot_be_listed_do_not_lose_the_message():
    inbox, _ = _inbox(RuntimeError("moto is busy"))
    entry = inbox.tap_publish("us-east-1", {"TopicArn": TOPIC, "Message": "m"}, RESPONSE)
    assert entry is not None and entry["recipients"] == [] and entry["subscribers"] == []


def test_the_newest_messages_are_kept(monkeypatch):
    monkeypatch.setattr(notifications, "INBOX_LIMIT", 3)
    inbox, _ = _inbox([])
    for i in range(5):
        inbox.tap_publish("us-east-1", {"TopicArn": TOPIC, "Message": str(i)}, RESPONSE)
    assert [m["message"] for m in inbox.messages()] == ["2", "3", "4"]
