"""What every step shares: the typed step contract (``Step``) and small helpers for ownership and AWS reads.

Every step has the same verbs. ``desired`` and ``discover`` read (config and stack outputs; AWS), ``plan``
and ``plan_destroy`` are pure, ``apply`` alone changes AWS and reads nothing but the Change it is given
(plus ``ctx.aws`` for clients and ``ctx.poll`` to wait), ``publish`` hands outputs to later steps,
``found`` and ``status`` describe what is there, as text and as data. A step never prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from flowwatch.errors import error_code
from flowwatch.model import Change, Context, DestroyOptions, Pending, Stack, StatusDetail
from flowwatch.polling import Poll

SpecT = TypeVar("SpecT")
SeenT = TypeVar("SeenT")
T = TypeVar("T")


class Step(Protocol[SpecT, SeenT]):
    """The contract of every step: ``SpecT`` is what the config wants, ``SeenT`` what exists (None: nothing)."""

    name: str

    def desired(self, ctx: Context) -> SpecT: ...
    def discover(self, ctx: Context) -> SeenT | None: ...
    def plan(self, want: SpecT, have: SeenT | None) -> list[Change]: ...
    def apply(self, ctx: Context, change: Change) -> SeenT | None: ...
    def plan_destroy(self, have: SeenT | None, options: DestroyOptions) -> list[Change]: ...
    def publish(self, stack: Stack, have: SeenT | None) -> None: ...
    def found(self, have: SeenT | None) -> str | None: ...
    def status(self, have: SeenT | None) -> StatusDetail: ...


def ready(value: str | Pending | None) -> str | None:
    """A parent output that exists (a str), or None when it is not there yet (dry-run or empty account)."""
    return value if isinstance(value, str) else None


def pending(*values: Any) -> bool:
    """True when a parent output is not there yet (dry-run or empty account): discover nothing."""
    return any(not isinstance(v, str) for v in values)


def one(step: str, items: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The resource carrying our tags; of several copies (two ``up`` at once) the primary is the lowest id,
    the same on every run: the others are extras (flowwatch.inventory), which ``status`` lists and
    ``down`` / ``up --prune`` remove."""
    return min(items, key=lambda i: str(i[key])) if items else None


def vpc_cidr(ctx: Context) -> str | None:
    """What ``vpc`` stands for in a rule's match: the stack VPC's CIDR block, as the vpc step discovered it (an
    adopted VPC's own), else the configured ``network.vpc_cidr`` (the block the vpc step creates). None: an
    adopted VPC not read yet (a rule matching ``vpc`` then cannot be written)."""
    if isinstance(ctx.stack.vpc_cidr, str):
        return ctx.stack.vpc_cidr
    return None if ctx.config.adopted else ctx.config.network.vpc_cidr


def metric_rules(ctx: Context) -> list[Any]:
    """The alert rules that count with a metric filter: threshold and anomaly rules (contributors rules are
    counted by their Contributor Insights rule)."""
    return [r for r in ctx.config.alerts.rules if r.kind in ("threshold", "anomaly")]


def missing(exc: BaseException, *codes: str) -> bool:
    return error_code(exc) in codes


def tag_map(tags: Any) -> dict[str, str]:
    """EC2/IAM/SNS style [{"Key","Value"}] or a plain mapping -> dict."""
    if isinstance(tags, dict):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags or ()}


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


def when_visible(poll: Poll, call: Callable[[], T], kind: str, what: str) -> T:
    """``call()`` on a just-created ``kind``; retried (with ``poll``'s backoff) only while AWS says it is not
    found yet. A call that returns nothing (None) counts as done."""
    from flowwatch.aws import wait_until

    done: list[T] = []

    def attempt() -> bool:
        done.append(call())
        return True

    wait_until(attempt, timeout=poll.timeout or 60.0, interval=poll.interval, sleep=poll.sleep, clock=poll.clock,
               retry_codes=NOT_VISIBLE_YET[kind], what=what)
    return done[-1]
