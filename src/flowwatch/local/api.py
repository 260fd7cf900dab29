"""The operations the local data plane serves or completes, by ``<signing service>:<Action>``.

moto answers most AWS operations well; some it answers wrongly or not at all (FilterLogEvents
ignores structured patterns, TestMetricFilter and DescribeAlarmHistory are not implemented, ...).
Each part of the data plane registers here what it does about one operation, and the server
(``flowwatch.local.server``) routes every request through this registry before moto:

* ``serve(op, fn)``: the data plane answers the operation itself, moto never sees it.
  ``fn(region, request) -> response``: ``request`` is the parsed JSON body (JSON protocols:
  CloudWatch Logs, Athena, CloudWatch's JSON protocol) and the response a JSON-ready dict. An
  error is raised as :class:`ServiceError` and answered as AWS's JSON protocol does
  (``__type`` and ``message``, HTTP 400 unless said otherwise).
* ``after(op, fn)``: moto answers, then ``fn(region, request, body)`` sees moto's successful
  (HTTP 200) answer: to act on it (metric filters on PutLogEvents, the inbox on Publish) or to
  complete it (a field moto leaves out). ``request`` is the JSON body or, for query protocols
  (EC2, SNS), the form parameters; ``body`` is moto's raw answer. When ``fn`` returns bytes they
  replace the answer (for the next ``fn`` and the client); any other result keeps it. A failing
  ``fn`` is logged and the answer so far is returned. Several ``fn`` of one operation run in the
  order they were registered.

``op`` is the SigV4 signing name of the service and the operation: ``logs:FilterLogEvents``,
``monitoring:DescribeAlarmHistory`` (CloudWatch signs as ``monitoring``), ``athena:BatchGetNamedQuery``,
``ec2:DescribeFlowLogs``, ``sns:Publish``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

Serve = Callable[[str, dict[str, Any]], dict[str, Any]]
After = Callable[[str, Any, bytes], Any]


class ServiceError(Exception):
    """An AWS error answer: ``code`` (the ``__type``), ``message``, HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message}).encode("utf-8")


class Api:
    """The registry: what is served, what is completed after moto."""

    def __init__(self) -> None:
        self.served: dict[str, Serve] = {}
        self.completed: dict[str, list[After]] = {}

    def serve(self, op: str, fn: Serve) -> None:
        if op in self.served:
            raise ValueError(f"{op} is served twice")
        self.served[op] = fn

    def after(self, op: str, fn: After) -> None:
        self.completed.setdefault(op, []).append(fn)

    def wants(self, op: str) -> bool:
        return op in self.served or op in self.completed


def json_request(raw: bytes) -> dict[str, Any]:
    """A JSON-protocol request body (empty = ``{}``); ServiceError SerializationException otherwise."""
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise ServiceError("SerializationException", "the request body is not JSON") from None
    if not isinstance(value, dict):
        raise ServiceError("SerializationException", "the request body is not a JSON object")
    return value


def required(request: Mapping[str, Any], name: str) -> Any:
    """``request[name]``, or AWS's InvalidParameterException when it is missing."""
    if request.get(name) in (None, ""):
        raise ServiceError("InvalidParameterException", f"1 validation error detected: Value null at '{name}' "
                           "failed to satisfy constraint: Member must not be null")
    return request[name]
