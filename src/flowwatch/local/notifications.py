"""SNS delivery, made visible: the inbox of every message published on the local AWS.

moto accepts Publish and e-mail subscriptions but sends no e-mail. :meth:`Inbox.tap_publish` runs
for every Publish moto accepted (the alarm evaluator's notifications and anyone else's) and keeps
the message (``GET /_flowwatch/inbox``) with the topic's subscribers, the e-mail recipients who
would have received it, and the e-mail body AWS would send them (the ``email`` member of a
``MessageStructure=json`` message, else the message itself). The newest :data:`INBOX_LIMIT` stay.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

from flowwatch.local.loopback import Clients

log = logging.getLogger("flowwatch.local")

INBOX_LIMIT = 1000


class Inbox:
    """The messages published so far, oldest first. ``now``: the data plane's clock (message times)."""

    def __init__(self, clients: Clients, now: Callable[[], float]) -> None:
        self.clients = clients
        self.now = now
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._messages)

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def tap_publish(self, region: str, params: Mapping[str, str], response: bytes) -> dict[str, Any] | None:
        """Keep the message for the inbox, with the e-mail subscribers it would have reached."""
        topic = params.get("TopicArn") or params.get("TargetArn")
        if not topic:
            return None
        message = params.get("Message", "")
        body, default = message, message
        if params.get("MessageStructure") == "json":
            try:
                parts = json.loads(message)
                default = parts.get("default", "")
                body = parts.get("email", default)
            except ValueError:
                pass
        subscribers: list[dict[str, str]] = []
        try:
            sns = self.clients.client("sns", topic.split(":")[3] or region)
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
                subscribers += [{"protocol": s["Protocol"], "endpoint": s["Endpoint"]} for s in page["Subscriptions"]]
        except Exception as exc:  # the message was accepted; recipients are a nicety
            log.warning("inbox: cannot list subscribers of %s: %s", topic, exc)
        ids = [el.text for el in ET.fromstring(response).iter() if el.tag.rsplit("}", 1)[-1] == "MessageId"]
        entry = {"id": ids[0] if ids else secrets.token_hex(8), "time": self.now(), "topic_arn": topic,
                 "subject": params.get("Subject"), "body": body, "message": default,
                 "recipients": [s["endpoint"] for s in subscribers if s["protocol"] in ("email", "email-json")],
                 "subscribers": subscribers}
        with self._lock:
            self._messages.append(entry)
            del self._messages[:-INBOX_LIMIT]
        return entry
