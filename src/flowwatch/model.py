"""Shared types: Change (one planned mutation), Stack (outputs later steps read), Context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from flowwatch.aws import Aws
    from flowwatch.config import Config
    from flowwatch.console import Output
    from flowwatch.naming import Names


class _Pending:
    """A value that will exist once an earlier step is applied (dry-run, empty account)."""

    _instance: "_Pending | None" = None

    def __new__(cls) -> "_Pending":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PENDING"

    def __bool__(self) -> bool:
        return False


PENDING: Any = _Pending()
Pending = _Pending


@dataclass(frozen=True)
class Change:
    step: str
    action: Literal["create", "update", "delete"]
    target: str                      # "alarm flowwatch-demo-ping-deny"
    reason: str                      # "not found", "threshold 5 -> 1"
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Stack:
    """Outputs of the steps, read by later steps (one explicit field per output)."""

    name: str
    account: str | None = None
    vpc_id: Any = None
    subnet_id: Any = None
    route_table_id: Any = None
    igw_id: Any = None
    log_group_arn: Any = None
    role_arn: Any = None
    bucket: Any = None
    flow_log_ids: Any = None          # {"cloud-watch-logs": id, "s3": id}
    nacl_id: Any = None
    topic_arn: Any = None
    metric_filters: Any = None        # names
    alarms: Any = None                # names
    workgroup: Any = None


class LocalAws(Protocol):
    """The embedded local AWS's own routes, as product code sees them: a client handed in through
    ``Context.local_api`` (``flowwatch.local.client.LocalApi``); None on AWS. Only ``cli/`` and
    ``local/`` know where it comes from."""

    def traffic(self, *, region: str, fields: Sequence[str], lines: list[str], eni: str | None = None,
                vpc_id: str | None = None, subnet_id: str | None = None) -> dict[str, Any]: ...

    def inbox(self) -> list[dict[str, Any]]: ...


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
    extras: dict[str, Any] = field(default_factory=dict)

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

    def s3_layout(self):  # -> flowwatch.s3layout.S3Layout
        from flowwatch.s3layout import S3Layout

        fl = self.config.flow_logs
        return S3Layout(bucket=self.bucket, account=self.account, region=self.region, prefix="",
                        hive=fl.hive_partitions, per_hour=fl.per_hour_partitions, file_format=fl.s3_file_format)
