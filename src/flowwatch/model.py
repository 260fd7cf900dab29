"""Shared types: Change (one planned mutation), Plan (the ordered changes of every step), Stack (the
outputs later steps read, typed), DestroyOptions, StatusDetail (what ``status`` shows, as data), Context."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from flowwatch.polling import Poll

if TYPE_CHECKING:
    from flowwatch.aws import Aws
    from flowwatch.config import Config
    from flowwatch.console import Output
    from flowwatch.lock import LockRequest
    from flowwatch.naming import Names
    from flowwatch.records import RecordFormat
    from flowwatch.s3layout import S3Layout


class Pending:
    """A value that will exist once an earlier step is applied (dry-run, empty account). One instance: PENDING."""

    _instance: "Pending | None" = None

    def __new__(cls) -> "Pending":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PENDING"

    def __bool__(self) -> bool:
        return False


PENDING = Pending()
_Pending = Pending            # the former private name

@dataclass(frozen=True)
class Change:
    """One mutation a step plans. ``apply`` reads nothing but this: ``spec`` is the step's desired state,
    ``params`` the ids the change acts on, ``before`` what the step had just before it (the engine threads
    each apply's result into the next change of the same step; None when nothing was there)."""

    step: str
    action: Literal["create", "update", "delete"]
    target: str                      # "alarm flowwatch-demo-ping-deny"
    reason: str                      # "not found", "threshold 5 -> 1"
    params: Mapping[str, Any] = field(default_factory=dict)
    spec: Any = field(default=None, compare=False, repr=False)
    before: Any = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """What the change acts on, for steps that own several kinds of resource ("route", "policy"...)."""
        return str(self.params.get("kind", ""))

    def after(self, before: Any) -> "Change":
        """This change, to be applied on ``before`` (the result of the previous change of its step)."""
        from dataclasses import replace

        return replace(self, before=before)


@dataclass(frozen=True)
class StepPlan:
    """One step's part of a Plan: its changes, and what it found (shown on a "no change" line)."""

    step: str
    changes: tuple[Change, ...]
    found: str | None = None
    seen: Any = field(default=None, compare=False, repr=False)   # what discover returned (the engine reuses it)


@dataclass(frozen=True)
class Plan:
    """The ordered changes of every step (``up``: steps in order; ``down``: backwards)."""

    steps: tuple[StepPlan, ...]
    dry_run: bool = False

    @property
    def changes(self) -> list[Change]:
        return [c for s in self.steps for c in s.changes]

    @property
    def steps_changed(self) -> int:
        return sum(1 for s in self.steps if s.changes)

    @property
    def steps_unchanged(self) -> int:
        return sum(1 for s in self.steps if not s.changes)

    def of(self, step: str) -> StepPlan:
        return next(s for s in self.steps if s.step == step)

    def __bool__(self) -> bool:
        return bool(self.changes)


@dataclass(frozen=True)
class DestroyOptions:
    """What ``plan_destroy`` may know beyond what was discovered."""

    keep_data: bool = False        # --keep-data: keep the log group and the bucket


# ---------- status, as data (Output renders it) ----------
@dataclass(frozen=True)
class Delivery:
    flow_log_id: str
    destination_type: str          # cloud-watch-logs | s3
    status: str | None             # DeliverLogsStatus
    error: str | None = None


@dataclass(frozen=True)
class AlarmState:
    name: str
    state: str                     # OK | ALARM | INSUFFICIENT_DATA


@dataclass(frozen=True)
class SubscriptionState:
    protocol: str
    endpoint: str
    confirmed: bool


@dataclass(frozen=True)
class StatusDetail:
    """What a step reports beyond found/missing/drifted. ``notes`` are facts the user must act on (an e-mail
    subscription waiting for confirmation...): the engine hands them to Output; a step never prints."""

    deliveries: tuple[Delivery, ...] = ()
    alarms: tuple[AlarmState, ...] = ()
    subscriptions: tuple[SubscriptionState, ...] | None = None
    pending_subscriptions: int = 0
    notes: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()        # what looks like the stack's but is not (down leaves it in place)
    ids: Mapping[str, str] = field(default_factory=dict)   # what was found, by kind: {"vpc": "vpc-0a1b..."}


@dataclass
class Stack:
    """Outputs of the steps, read by later steps (one explicit field per output)."""

    name: str
    account: str | None = None
    vpc_id: str | Pending | None = None
    vpc_cidr: str | Pending | None = None                      # the VPC's CIDR block (an adopted VPC's too)
    subnet_id: str | Pending | None = None
    route_table_id: str | Pending | None = None
    igw_id: str | Pending | None = None
    log_group_arn: str | Pending | None = None
    role_arn: str | Pending | None = None
    bucket: str | Pending | None = None
    flow_log_ids: dict[str, str] | Pending | None = None      # {"cloud-watch-logs": id, "s3": id}
    nacl_id: str | Pending | None = None
    topic_arn: str | Pending | None = None
    metric_filters: list[str] | Pending | None = None          # names
    anomaly_detectors: list[str] | Pending | None = None       # "<namespace>/<metric>" of each detector
    insight_rules: list[str] | Pending | None = None           # names
    alarms: list[str] | Pending | None = None                  # names
    workgroup: str | Pending | None = None
    dashboard: str | Pending | None = None                     # name (global to the account)
    dashboard_url: str | Pending | None = None                 # its CloudWatch console address


class LocalAws(Protocol):
    """The embedded local AWS's own routes, as product code sees them: a client handed in through
    ``Context.local_api`` (``flowwatch.local.client.LocalApi``); None on AWS. Only ``cli/`` and
    ``local/`` know where it comes from."""

    def traffic(self, *, region: str, fields: Sequence[str], lines: list[str], eni: str | None = None,
                vpc_id: str | None = None, subnet_id: str | None = None) -> dict[str, Any]: ...

    def inbox(self) -> list[dict[str, Any]]: ...


#: (record format, database, table) -> {name: (description, SQL)}: the named queries the athena step
#: keeps in its workgroup. Supplied by the engine (which may import flowwatch.query); steps never do.
NamedQueries = Callable[["RecordFormat", str, str], Mapping[str, tuple[str, str]]]


def default_poll() -> Poll:
    """Waiting on eventual consistency in steps: up to 60 s (also the budget for a new IAM role to become
    assumable), first pause 1 s, backoff 1.5x. Tests pass ``Poll(..., sleep=lambda _: None)``."""
    return Poll(timeout=60.0, interval=1.0, backoff=1.5, sleep=time.sleep)


@dataclass
class Context:
    config: "Config"
    aws: "Aws"
    out: "Output"
    names: "Names"
    stack: Stack
    dry_run: bool = False
    local: bool = False
    yes: bool = False
    keep_data: bool = False
    local_api: LocalAws | None = None
    poll: Poll = field(default_factory=default_poll)
    named_queries: NamedQueries | None = None
    lock: "LockRequest | None" = None      # take the stack's lock for the mutating part (None: a run that doesn't)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)   # this run (ClientTokens derive from it)

    def client_token(self, *parts: object) -> str:
        """An EC2 ClientToken for one create of this run: the same for a retried call of the same attempt
        (``parts`` name the create and its attempt), a new one for a new run or a new attempt."""
        import hashlib

        key = "\x1f".join([self.run_id, self.stack.name, *map(str, parts)])
        return hashlib.sha256(key.encode("utf-8")).hexdigest()     # 64 characters: EC2's limit

    @property
    def account(self) -> str:
        if self.stack.account is None:
            self.stack.account = self.aws.account
        return self.stack.account

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def bucket(self) -> str:
        return self.names.bucket(self.account, self.region)

    @property
    def log_group(self) -> str:
        return self.names.of("log_group")

    @property
    def destroy_options(self) -> DestroyOptions:
        return DestroyOptions(keep_data=self.keep_data)

    def s3_layout(self) -> "S3Layout":
        from flowwatch.s3layout import S3Layout

        fl = self.config.flow_logs
        return S3Layout(bucket=self.bucket, account=self.account, region=self.region, prefix="",
                        hive=fl.hive_partitions, per_hour=fl.per_hour_partitions, file_format=fl.s3_file_format)
