"""The only place that creates boto3 clients: one session, lazily created clients, botocore's
standard retries (throttling), and ``wait_until`` for polling and eventual consistency.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: ``(service, operation, milliseconds, request_id, error_code)``: told of every AWS call made (``-v``).
CallHook = Callable[[str, str, float, "str | None", "str | None"], None]

#: Operations that change nothing: a dry run, a second `up` and a second `down` make only these.
READ_ONLY_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup", "Search", "BatchGet", "TestMetricFilter")


def is_mutating(operation: str) -> bool:
    """Whether a botocore operation name (``CreateVpc``, ``DescribeVpcs``) can change anything."""
    return not operation.startswith(READ_ONLY_PREFIXES)


# Botocore "standard" retry mode: exponential backoff with jitter on throttling and transient
# errors (Throttling, ThrottlingException, RequestLimitExceeded, SlowDown, 5xx, ...).
MAX_ATTEMPTS = 10


def retry_config(endpoint_url: str | None = None, attempts: int = MAX_ATTEMPTS) -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard", "max_attempts": attempts},
                  connect_timeout=5 if endpoint_url else 10, read_timeout=60,
                  user_agent_extra="flowwatch")


def default_session(profile: str | None, region: str) -> Any:
    """The standard AWS credential chain (``--profile``/AWS_PROFILE, SSO, environment, instance role)."""
    import boto3

    return boto3.Session(profile_name=profile, region_name=region)


class Aws:
    """A boto3 session plus lazily created clients, all pointed at one endpoint when given."""

    SERVICES = ("ec2", "iam", "logs", "s3", "sns", "cloudwatch", "glue", "athena", "sts", "ssm", "sqs",
                "resourcegroupstaggingapi")

    def __init__(self, session: Any, endpoint_url: str | None = None, *, on_call: CallHook | None = None) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.on_call = on_call
        self._clients: dict[str, Any] = {}
        self._account: str | None = None

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str, attempts: int = MAX_ATTEMPTS) -> Any:
        """The client of ``service``; ``attempts``: tries per call (a user's one interactive question,
        such as ``pattern test --remote``, takes 2: botocore's patient retries of a 5xx only delay it)."""
        key = service if attempts == MAX_ATTEMPTS else f"{service}/{attempts}"
        if key not in self._clients:
            client = self.session.client(service, endpoint_url=self.endpoint_url,
                                         config=retry_config(self.endpoint_url, attempts))
            if service == "s3":
                _expect_bucket_owner(client, lambda: self.account)
            if self.on_call is not None:
                _report_calls(client, service, self.on_call)
            self._clients[key] = client
        return self._clients[key]

    def __getattr__(self, name: str) -> Any:
        if name in Aws.SERVICES:
            return self.client(name)
        raise AttributeError(name)

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = self.sts.get_caller_identity()["Account"]
        return self._account

    @property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region)


def _expect_bucket_owner(client: Any, account: Callable[[], str]) -> None:
    """Send ``ExpectedBucketOwner`` = the caller's account on every S3 call whose input has it (all bucket and
    object calls; CreateBucket and ListBuckets have none): a bucket of the stack's name that another account
    owns (a squatted name) answers 403 instead of taking or giving flowwatch's data. flowwatch's S3 calls all
    act on the stack's bucket, which must be in the caller's account; an explicit value is left alone."""

    def add(params: dict[str, Any], model: Any, **_: Any) -> None:
        shape = model.input_shape
        if shape is not None and "ExpectedBucketOwner" in shape.members and "ExpectedBucketOwner" not in params:
            params["ExpectedBucketOwner"] = account()

    client.meta.events.register("provide-client-params.s3", add)


def _report_calls(client: Any, service: str, on_call: CallHook) -> None:
    """Tell ``on_call`` of every call of this client (its own events: a shared session's other clients,
    e.g. a test's, stay silent): operation, wall time including retries, request id, error code."""
    key = "flowwatch_started"

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        context[key] = (model.name, time.perf_counter())

    def after(context: dict[str, Any], parsed: Any = None, exception: Any = None, **_: Any) -> None:
        if key not in context:
            return
        operation, started = context.pop(key)
        meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        headers = meta.get("HTTPHeaders") or {}
        request_id = meta.get("RequestId") or headers.get("x-amzn-requestid") or headers.get("x-amz-request-id")
        error = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
        on_call(service, operation, (time.perf_counter() - started) * 1000, request_id,
                error or (type(exception).__name__ if exception is not None else None))

    client.meta.events.register("before-call", before)
    client.meta.events.register("after-call", after)
    client.meta.events.register("after-call-error", after)


def wait_until(check: Callable[[], T | None], *, timeout: float, interval: float = 2.0,
               sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
               retry_codes: tuple[str, ...] = (), what: str = "condition") -> T:
    """Call ``check`` until it returns something truthy; ClientErrors with ``retry_codes`` count as "not yet".

    Raises ``flowwatch.errors.TimeoutError_`` after ``timeout`` seconds. Tests pass a fake sleep/clock.
    """
    from flowwatch.errors import TimeoutError_, error_code
    from flowwatch.polling import Poll

    for _ in Poll(timeout, interval, backoff=1.5, sleep=sleep, clock=clock).ticks():
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # only the named codes are retried
            if error_code(exc) not in retry_codes:
                raise
    raise TimeoutError_(f"timed out after {timeout:.0f} s waiting for {what}")
