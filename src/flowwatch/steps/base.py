"""What every step shares: the step protocol and small helpers for ownership and AWS reads."""

from __future__ import annotations

import json
from typing import Any, Protocol

from flowwatch.errors import error_code
from flowwatch.errors import AmbiguousStateError, OwnershipError
from flowwatch.model import PENDING, Change, Context, Stack
from flowwatch.naming import STACK_TAG


class Step(Protocol):
    """Six methods: `plan`/`plan_destroy` are pure, `discover` only reads, `apply` alone changes AWS."""

    name: str

    def desired(self, ctx: Context) -> Any: ...
    def discover(self, ctx: Context) -> Any: ...
    def plan(self, want: Any, have: Any) -> list[Change]: ...
    def apply(self, ctx: Context, change: Change, have: Any) -> Any: ...
    def plan_destroy(self, have: Any, ctx: Context) -> list[Change]: ...
    def publish(self, stack: Stack, have: Any) -> None: ...
    def found(self, have: Any) -> str | None: ...


def pending(*values: Any) -> bool:
    """True when a parent output is not there yet (dry-run or empty account): discover nothing."""
    return any(v is PENDING or v is None for v in values)


def one(step: str, items: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """Exactly zero or one resource carries our tags; more is an error that lists them."""
    if len(items) > 1:
        raise AmbiguousStateError(step, [i[key] for i in items])
    return items[0] if items else None


def missing(exc: BaseException, *codes: str) -> bool:
    return error_code(exc) in codes


def tag_map(tags: Any) -> dict[str, str]:
    """EC2/IAM/SNS style [{"Key","Value"}] or a plain mapping -> dict."""
    if isinstance(tags, dict):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags or ()}


def require_ours(step: str, kind: str, name: str, tags: Any, stack: str) -> None:
    """A resource with our exact name that does not carry our stack tag is never adopted."""
    if tag_map(tags).get(STACK_TAG) != stack:
        owner = tag_map(tags).get(STACK_TAG)
        whose = f"flowwatch stack {owner!r}" if owner else "something outside flowwatch"
        raise OwnershipError(
            f"{step}: {kind} {name} already exists and belongs to {whose}, not to stack {stack!r}",
            hint=f"pick another name with names.{kind} in the config, or another --stack")


def policy_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def same_policy(a: Any, b: Any) -> bool:
    """Compare IAM-style policies whatever their encoding (string, URL-encoded, dict)."""
    return _norm(a) == _norm(b)


def _norm(doc: Any) -> Any:
    if isinstance(doc, str):
        from urllib.parse import unquote

        text = doc if doc.lstrip().startswith("{") else unquote(doc)
        try:
            doc = json.loads(text)
        except ValueError:
            return text
    if isinstance(doc, dict):
        return {k: _norm_value(k, v) for k, v in doc.items()}
    return doc


def _norm_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _norm_value(k, v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_norm_value(key, v) for v in value]
        if len(items) == 1 and key not in ("Statement",):
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True)) if key != "Statement" else items
    return value


# Eventual consistency: a resource created a moment ago may not be visible yet to the next call that
# names it. Those calls retry on exactly these codes (botocore retries throttling; this is the rest).
NOT_VISIBLE_YET = {
    "vpc": ("InvalidVpcID.NotFound",),
    "subnet": ("InvalidSubnetID.NotFound",),
    "igw": ("InvalidInternetGatewayID.NotFound", "InvalidVpcID.NotFound"),
    "route": ("InvalidGatewayID.NotFound", "InvalidRouteTableID.NotFound"),
    "role": ("NoSuchEntity",),
    "log_group": ("ResourceNotFoundException",),
    "bucket": ("NoSuchBucket",),
    "glue_database": ("EntityNotFoundException",),
}


def when_visible(ctx: Context, call: Any, kind: str, what: str, timeout: float = 60) -> Any:
    """``call()`` on a just-created ``kind``; retried (with backoff) only while AWS says it is not found yet."""
    import time

    from flowwatch.aws import wait_until

    return wait_until(call, timeout=timeout, interval=1, retry_codes=NOT_VISIBLE_YET[kind],
                      sleep=ctx.extras.get("sleep") or time.sleep, what=what)
