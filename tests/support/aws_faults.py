"""Bad days on moto: AWS-shaped error responses injected through botocore's own event system.

- :class:`Throttler` answers a seeded fraction of all requests (every attempt, reads and writes) with the
  throttling error each service really sends, in its wire protocol, from a ``before-send`` handler: the
  response is parsed and judged by botocore's standard retry handler exactly like one from AWS, so the
  retries under test are botocore's, not ours.
- :class:`FailAt` answers the Nth mutating call with a non-retryable error (AccessDenied-like), once.
- :class:`InterruptAt` raises KeyboardInterrupt at the Nth mutating call: before it is sent (nothing
  happened) or after AWS answered it (it happened, flowwatch never saw the answer).
- :func:`new_session` gives a moto-backed session that loads service models once per process, and does
  what AWS does with CreateBucket's tags (moto drops them; AWS applies them with the bucket).
- :func:`moto_fixes` also answers CloudWatch's anomaly-detector operations, which moto 5.2.5 does not
  implement at all (:class:`AnomalyDetectors`).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
from collections.abc import Iterator
from unittest import mock
from collections import Counter
from typing import Any

from flowwatch.aws import is_mutating  # noqa: F401 (the suites import it from here)
ACCOUNT = "123456789012"
PARTITION = "aws"

# The throttling error each service sends: (code, HTTP status).
THROTTLE = {
    "ec2": ("RequestLimitExceeded", 503),
    "s3": ("SlowDown", 503),
    "iam": ("Throttling", 400),
    "sts": ("Throttling", 400),
    "sns": ("Throttling", 400),
    "cloudwatch": ("Throttling", 400),
    "cloudwatch-logs": ("ThrottlingException", 400),
    "glue": ("ThrottlingException", 400),
    "athena": ("ThrottlingException", 400),
    "ssm": ("ThrottlingException", 400),
    "resource-groups-tagging-api": ("ThrottledException", 400),
    "sqs": ("RequestThrottled", 400),
}
# A hard, non-retryable failure: the caller lacks a permission.
DENIED = {
    "ec2": ("UnauthorizedOperation", 403),
    "s3": ("AccessDenied", 403),
    "cloudwatch-logs": ("AccessDeniedException", 400),
    "glue": ("AccessDeniedException", 400),
    "athena": ("AccessDeniedException", 400),
    "ssm": ("AccessDeniedException", 400),
}
DENIED_DEFAULT = ("AccessDenied", 403)

_LOADER: Any = None


def new_session(region: str = "us-east-1", emulate: bool = True) -> Any:
    """A boto3 session (inside ``mock_aws``) sharing one botocore loader: clients are made in ms, not 60 ms."""
    import boto3
    import botocore.loaders
    import botocore.session

    global _LOADER
    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    session = boto3.Session(botocore_session=core, region_name=region)
    paths = _LOADER.search_paths          # boto3 appends its data path once per session
    _LOADER.search_paths[:] = list(dict.fromkeys(paths))
    if emulate:
        emulate_create_bucket_tags(session)
    return session


class PooledSession:
    """A boto3 session look-alike that hands out ONE client per (service, endpoint) for the whole process.

    botocore needs ~25 ms to build a client (EC2: more) and every flowwatch Context builds its own; a suite
    that runs `up` a few hundred times spends minutes on that. Clients hold no AWS state (moto's state lives
    in its backends, reset by each ``mock_aws``), so sharing them is safe. Handlers registered through
    ``.events`` reach the session and every pooled client, and :meth:`close` removes them again. Clients
    have flowwatch's retry config; their retry quota is shared too, so throttling tests use
    :func:`new_session` instead.
    """

    _base: Any = None
    _clients: dict[tuple[str, str | None], Any] = {}

    def __init__(self, region: str = "us-east-1") -> None:
        if PooledSession._base is None:
            PooledSession._base = new_session(region, emulate=False)
        self._registered: list[tuple[str, Any]] = []
        self.events = _PooledEvents(self)
        self.region_name = region
        emulate_create_bucket_tags(self)

    def client(self, service_name: str, endpoint_url: str | None = None, **_: Any) -> Any:
        from flowwatch.aws import retry_config

        key = (service_name, endpoint_url)
        if key not in self._clients:
            self._clients[key] = self._base.client(service_name, endpoint_url=endpoint_url,
                                                   config=retry_config(endpoint_url))
        return self._clients[key]

    def get_partition_for_region(self, region: str) -> str:
        return self._base.get_partition_for_region(region)

    def emitters(self) -> list[Any]:
        return [self._base.events] + [c.meta.events for c in self._clients.values()]

    def close(self) -> None:
        for event, handler in self._registered:
            for emitter in self.emitters():
                try:
                    emitter.unregister(event, handler)
                except ValueError:     # this emitter never had it
                    pass
        self._registered.clear()


class _PooledEvents:
    def __init__(self, owner: PooledSession) -> None:
        self.owner = owner

    def register(self, event: str, handler: Any) -> None:
        self._add("register", event, handler)

    def register_first(self, event: str, handler: Any) -> None:
        self._add("register_first", event, handler)

    def _add(self, how: str, event: str, handler: Any) -> None:
        self.owner._registered.append((event, handler))
        for emitter in self.owner.emitters():
            getattr(emitter, how)(event, handler)


def _unconditional_get_permission(self: Any, action: str, resource: str) -> Any:
    """moto applies bucket policies to object calls but cannot evaluate conditions: it treats the TLS-only
    Deny (``aws:SecureTransport = false``) as denying everything, so DeleteObjects fails where AWS would
    allow it. Like flowwatch's local server (flowwatch.local.server), let moto see only the unconditional
    statements."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    doc = json.loads(self.policy)
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    doc["Statement"] = [st for st in statements if "Condition" not in st]
    if not doc["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(doc)).is_action_permitted(action, resource)


def _guarded(original: Any) -> Any:
    """botocore runs every ``before-send`` handler, so moto's would still execute a request our (earlier)
    handler answered with an error. The guarded stub skips requests that AWS, in this test, refused."""

    def __call__(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if getattr(request, "flowwatch_fault", False):
            return None
        return original(self, event_name, request, **kwargs)

    __call__.flowwatch_guard = True  # type: ignore[attr-defined]
    return __call__


@contextlib.contextmanager
def moto_fixes() -> Iterator[None]:
    """The two patches of moto the suites rely on, applied for the ``with`` block and undone after it:
    conditional bucket-policy statements ignored (as the local server does), and requests answered by
    a fault injector never executed by moto as well. The ``session`` / ``pooled_session`` fixtures
    enter it; a suite that makes its own moto session enters it too."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.s3.models import FakeBucket

    with mock.patch.object(FakeBucket, "get_permission", _unconditional_get_permission), \
            mock.patch.object(BotocoreStubber, "__call__", _guarded(BotocoreStubber.__call__)), \
            mock.patch.multiple(CloudWatchResponse, create=True, **AnomalyDetectors.responses()), \
            dashboard_tags():
        yield


@contextlib.contextmanager
def dashboard_tags() -> Iterator[None]:
    """What AWS does with a dashboard's tags, which moto 5.2.5 drops: PutDashboard's ``Tags`` applied when the
    call CREATES the dashboard (ignored on an update, as the API Reference says), TagResource / UntagResource /
    ListTagsForResource on a dashboard ARN (moto: ResourceNotFoundException / no tags), DeleteDashboards
    forgetting them, and the Tagging API listing tagged dashboards (type ``cloudwatch:dashboard``). The tags
    applied are exactly the ones the caller SENT."""
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.resource_tagging import TaggedResource

    put, tag, delete = CloudWatchResponse.put_dashboard, CloudWatchBackend.tag_resource, \
        CloudWatchBackend.delete_dashboards
    tagged = CloudWatchBackend.iter_tagged_resources

    def put_dashboard(self: Any) -> Any:
        backend = self.cloudwatch_backend
        name = self._get_param("DashboardName")
        new = backend.get_dashboard(name) is None
        answer = put(self)
        sent = self._get_param("Tags", [])
        if new and sent:
            backend.tagger.tag_resource(backend.get_dashboard(name).arn, sent)
        return answer

    def tag_resource(self: Any, arn: str, tags: dict[str, str]) -> None:
        if any(d.arn == arn for d in self.dashboards.values()):
            self.tagger.tag_resource(arn, self.tagger.convert_dict_to_tags_input(tags))
            return
        tag(self, arn, tags)

    def delete_dashboards(self: Any, dashboards: list[str]) -> Any:
        arns = [self.dashboards[d].arn for d in dashboards if d in self.dashboards]
        error = delete(self, dashboards)
        if error is None:
            for arn in arns:
                self.tagger.delete_all_tags_for_resource(arn)
        return error

    def iter_tagged_resources(self: Any) -> Iterator[Any]:
        yield from tagged(self)
        for dashboard in self.dashboards.values():
            found = self.tagger.get_tag_dict_for_resource(dashboard.arn)
            if found:
                yield TaggedResource(arn=dashboard.arn, tags=found, resource_type="cloudwatch:dashboard")

    with mock.patch.object(CloudWatchResponse, "put_dashboard", put_dashboard), \
            mock.patch.object(CloudWatchBackend, "tag_resource", tag_resource), \
            mock.patch.object(CloudWatchBackend, "delete_dashboards", delete_dashboards), \
            mock.patch.object(CloudWatchBackend, "iter_tagged_resources", iter_tagged_resources):
        yield


class AnomalyDetectors:
    """CloudWatch's PutAnomalyDetector, DescribeAnomalyDetectors and DeleteAnomalyDetector, which moto 5.2.5
    does not implement (NotImplementedError in-process), answered inside moto by the product's own detector
    store, the one the local AWS serves them with (:class:`flowwatch.local.anomaly.DetectorStore`: validation,
    errors, response shapes), one per moto CloudWatch backend (account and region; reset with every
    ``mock_aws``). moto's parameters are handed to it as the JSON request the local AWS gets; its
    :class:`~flowwatch.local.anomaly.DetectorError` becomes a moto CloudWatch error with the same code.

    They are moto response methods, so every session and client sees them (the CLI's own sessions too), and
    call recorders and fault injectors see the calls as any other."""

    PARAMS = ("SingleMetricAnomalyDetector", "MetricMathAnomalyDetector", "Namespace", "MetricName", "Dimensions",
              "Stat", "Configuration", "MetricCharacteristics", "AnomalyDetectorId", "AnomalyDetectorIds",
              "AnomalyDetectorTypes", "MaxResults", "NextToken")

    @staticmethod
    def responses() -> dict[str, Any]:
        return {"put_anomaly_detector": AnomalyDetectors._put, "describe_anomaly_detectors": AnomalyDetectors._describe,
                "delete_anomaly_detector": AnomalyDetectors._delete}

    @staticmethod
    def store(response: Any) -> Any:
        from flowwatch.local.anomaly import DetectorStore

        backend = response.cloudwatch_backend
        return backend.__dict__.setdefault("flowwatch_anomaly_detectors", DetectorStore())

    @staticmethod
    def _request(response: Any) -> dict[str, Any]:
        request = {k: response._get_param(k) for k in AnomalyDetectors.PARAMS}
        request = {k: v for k, v in request.items() if v is not None}
        if isinstance(request.get("MaxResults"), str) and request["MaxResults"].isdigit():
            request["MaxResults"] = int(request["MaxResults"])
        return request

    @staticmethod
    def _call(response: Any, operation: str) -> Any:
        from moto.cloudwatch.exceptions import CloudWatchException
        from moto.core.responses import ActionResult, EmptyResult

        from flowwatch.local.anomaly import DetectorError

        try:
            answer = getattr(AnomalyDetectors.store(response), operation)(AnomalyDetectors._request(response))
        except DetectorError as exc:
            error = type(exc.code, (CloudWatchException,), {"code": exc.code})(exc.message)
            error.code = exc.code
            error.status = exc.status
            raise error from None
        return ActionResult(answer) if operation == "describe" else EmptyResult()

    @staticmethod
    def _put(response: Any) -> Any:
        return AnomalyDetectors._call(response, "put")

    @staticmethod
    def _describe(response: Any) -> Any:
        return AnomalyDetectors._call(response, "describe")

    @staticmethod
    def _delete(response: Any) -> Any:
        return AnomalyDetectors._call(response, "delete")


def _require_guard() -> None:
    from moto.core.botocore_stubber import BotocoreStubber

    if not getattr(BotocoreStubber.__call__, "flowwatch_guard", False):
        raise RuntimeError("fault injection needs moto_fixes() (the session fixtures enter it)")


def emulate_create_bucket_tags(session: Any) -> None:
    """AWS applies ``CreateBucketConfiguration.Tags`` atomically with the bucket; moto ignores them.

    Without this, moto would show a window (after CreateBucket, before PutBucketTagging) in which the
    bucket is untagged, which AWS never shows. The tags applied are exactly the ones flowwatch SENT.
    """
    sent: list[tuple[str, list[dict[str, str]]]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent[:] = [(params["Bucket"], (params.get("CreateBucketConfiguration") or {}).get("Tags") or [])]

    def apply(http_response: Any, **_: Any) -> None:
        if sent and 200 <= http_response.status_code < 300:
            from moto.s3.models import s3_backends

            bucket, tags = sent.pop()
            if tags:
                s3_backends[ACCOUNT][PARTITION].put_bucket_tagging(bucket, {t["Key"]: t["Value"] for t in tags})

    session.events.register_first("before-parameter-build.s3.CreateBucket", remember)
    session.events.register_first("after-call.s3.CreateBucket", apply)


# ---------- wire-format error responses ----------
class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.getvalue()


def protocol_of(service: str, request: Any) -> str:
    if service == "s3":
        return "rest-xml"
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "smithy-protocol" in headers:
        raise NotImplementedError(f"{service}: rpc-v2-cbor error responses are not built here")
    if "x-amz-target" in headers:
        return "json"
    return "ec2" if service == "ec2" else "query"


def error_response(service: str, request: Any, code: str, status: int, message: str) -> Any:
    """The error response ``service`` sends, in its own protocol, as botocore would receive it."""
    from botocore.awsrequest import AWSResponse

    protocol = protocol_of(service, request)
    request_id = "f10ead00-0000-4000-8000-000000000000"
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id,
                   "x-amzn-query-error": f"{code};Sender"}
    elif protocol == "ec2":
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>").encode()
        headers = {"Content-Type": "text/xml;charset=UTF-8"}
    elif protocol == "query":
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    else:
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{request_id}</RequestId><HostId>flowwatch-test</HostId></Error>").encode()
        headers = {"Content-Type": "application/xml", "x-amz-request-id": request_id}
    return AWSResponse(request.url, status, headers, _Raw(body))


def _answer(request: Any, response: Any) -> Any:
    """Mark ``request`` as answered by the fault injector, so that moto does not also execute it."""
    request.flowwatch_fault = True
    return response


def _service_op(event_name: str) -> tuple[str, str]:
    _, service, operation = event_name.split(".", 2)
    return service, operation


class Throttler:
    """Answer each request attempt with the service's throttling error with probability ``rate``."""

    def __init__(self, rate: float = 0.15, seed: int = 15, services: tuple[str, ...] | None = None,
                 limit: int | None = None) -> None:
        self.rate = rate
        self.random = random.Random(seed)
        self.services = services
        self.limit = limit
        self.attempts = 0
        self.injected: Counter[str] = Counter()     # "service.Operation" -> throttled attempts
        self.codes: Counter[str] = Counter()

    def install(self, session: Any) -> "Throttler":
        _require_guard()
        session.events.register_first("before-send", self._before_send)
        return self

    def _before_send(self, event_name: str, request: Any, **_: Any) -> Any:
        service, operation = _service_op(event_name)
        if self.services is not None and service not in self.services:
            return None
        self.attempts += 1
        if self.random.random() >= self.rate or (self.limit is not None and self.total >= self.limit):
            return None
        code, status = THROTTLE[service]
        self.injected[f"{service}.{operation}"] += 1
        self.codes[code] += 1
        return _answer(request, error_response(service, request, code, status, "Rate exceeded"))

    @property
    def total(self) -> int:
        return sum(self.injected.values())


class RespondOnce:
    """The first ``times`` attempts of one operation get a canned answer: an error code, or a raw body."""

    def __init__(self, service: str, operation: str, code: str | None = None, status: int = 400,
                 body: str | None = None, times: int = 1, message: str = "injected", after: str | None = None) -> None:
        self.service, self.operation, self.code, self.status = service, operation, code, status
        self.body, self.left, self.message = body, times, message
        self.after = after              # armed only once this operation (same service) has succeeded
        self.armed = after is None
        self.attempts = 0

    def install(self, session: Any) -> "RespondOnce":
        _require_guard()
        session.events.register_first(f"before-send.{self.service}.{self.operation}", self._before_send)
        if self.after:
            session.events.register(f"after-call.{self.service}.{self.after}", self._arm)
        return self

    def _arm(self, **_: Any) -> None:
        self.armed = True

    def _before_send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        if not self.armed:
            return None
        self.attempts += 1
        if self.left <= 0:
            return None
        self.left -= 1
        if self.body is not None:
            return _answer(request, AWSResponse(request.url, self.status, {"Content-Type": "text/xml"},
                                                _Raw(self.body.encode())))
        return _answer(request, error_response(self.service, request, self.code or "", self.status, self.message))


class _AtNthMutating:
    """Counts mutating API calls (not attempts) and acts at call number ``index`` (0-based)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.seen: list[tuple[str, str]] = []
        self.hit: tuple[str, str] | None = None

    def _count(self, event_name: str) -> bool:
        service, operation = _service_op(event_name)
        if not is_mutating(operation):
            return False
        self.seen.append((service, operation))
        if len(self.seen) - 1 == self.index:
            self.hit = (service, operation)
            return True
        return False


class FailAt(_AtNthMutating):
    """The Nth mutating call gets a non-retryable error response from "AWS" (it takes no effect)."""

    def install(self, session: Any) -> "FailAt":
        self._armed: tuple[str, str] | None = None
        _require_guard()
        session.events.register("before-call", self._before_call)
        session.events.register_first("before-send", self._before_send)
        return self

    def _before_call(self, event_name: str, **_: Any) -> None:
        if self._count(event_name):
            self._armed = _service_op(event_name)

    def _before_send(self, event_name: str, request: Any, **_: Any) -> Any:
        if self._armed is None or _service_op(event_name) != self._armed:
            return None
        service, operation = self._armed
        self._armed = None
        code, status = DENIED.get(service, DENIED_DEFAULT)
        return _answer(request, error_response(service, request, code, status,
                                               f"injected: not authorized to perform {operation}"))


class InterruptAt(_AtNthMutating):
    """KeyboardInterrupt at the Nth mutating call: ``when="before"`` it is sent, or ``"after"`` AWS did it."""

    def __init__(self, index: int, when: str) -> None:
        super().__init__(index)
        assert when in ("before", "after")
        self.when = when

    def install(self, session: Any) -> "InterruptAt":
        session.events.register("before-call", self._before_call)
        session.events.register("after-call", self._after_call)
        return self

    def _before_call(self, event_name: str, **_: Any) -> None:
        if self._count(event_name) and self.when == "before":
            raise KeyboardInterrupt(f"interrupted before {self.hit}")

    def _after_call(self, event_name: str, http_response: Any, **_: Any) -> None:
        if self.when == "after" and self.hit == _service_op(event_name) and len(self.seen) - 1 == self.index:
            if 200 <= http_response.status_code < 300:
                self.index = -1            # once
                raise KeyboardInterrupt(f"interrupted after {self.hit}")


class BackoffRecorder:
    """Stands in for the ``time`` module in botocore.endpoint: records botocore's retry delays, sleeps 0."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
