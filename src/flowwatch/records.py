"""The VPC Flow Logs record format: the single source of truth for every consumer.

From one :class:`RecordFormat` flowwatch derives the ``LogFormat`` string of both flow logs,
the space-delimited CloudWatch metric-filter patterns, the Glue/Athena columns, the record
parser and the synthetic records of ``simulate-reject``.

Sources (AWS documentation):

* Field list, field versions and Parquet data types: Amazon VPC User Guide, "Flow log records"
  -> "Available fields"
  https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-logs-fields
  Versions 2-5 (29 fields) and their Parquet types were checked against the table as
  published in awsdocs/amazon-vpc-user-guide ``doc_source/flow-logs.md``. The ten version-7
  ECS fields (all STRING) also appear in the AWS CDK ``ec2.LogFormat`` reference; the
  version-8 ``reject-reason`` (STRING, e.g. ``BPA``) is taken from the current page.
* ``encryption-status``: Amazon VPC User Guide, "Enforce VPC encryption in transit"
  (values 0-3 or ``-``). NOT verified against the AWS table: its version (10) and its
  Parquet type (INT_32, by analogy with ``traffic-path``), and ``resource-id`` (version 9,
  STRING), which only secondary sources list. Neither is in any preset.
* Transit gateway flow logs: Amazon VPC Transit Gateways, "Transit Gateway Flow Log records" ->
  "Available fields" https://docs.aws.amazon.com/vpc/latest/tgw/tgw-flow-logs.html#flow-log-records
  (its default format is :data:`TGW_FIELDS`, the ``tgw`` format of :meth:`RecordFormat.parse`):
  ``resource-type``, the 13 ``tgw-*`` fields (STRING) and the 4 ``packets-lost-*`` counters
  (INT_64), all version 6; the fields it shares with VPC flow logs keep their types there
  (``srcport`` INT_32, ``packets`` INT_64, ``tcp-flags`` INT_32, ...). Its ``tcp-flags`` also
  sets PSH 8, ACK 16 and URG 32. Athena types follow AWS's DDL pattern (``bigint`` for INT_64).
* Athena column types: Amazon Athena User Guide, "Create a table for Amazon VPC flow logs
  and query it" https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs-create-table-statement.html
  (``version int, ..., protocol bigint, packets bigint, bytes bigint, start bigint,
  `end` bigint, ..., tcp_flags int, ..., traffic_path int``).
* Reserved words: Trino "Keywords and identifiers"
  https://trino.io/docs/current/language/reserved.html (Athena engine v3 is Trino).
* Record semantics (``-`` for a missing value, ``NODATA``/``SKIPDATA`` rows, the header line
  of S3 files): "Flow log records", "Flow log record examples" and "Publish flow logs to
  Amazon S3" in the Amazon VPC User Guide.
"""

from __future__ import annotations

import difflib
import gc
import ipaddress
import random
import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import IO, Any, Literal

from flowwatch import matching

__all__ = [
    "FIELDS",
    "ACCOUNT_KEY",
    "PARTITION_KEY",
    "PARTITION_KEYS",
    "REGION_KEY",
    "PRESETS",
    "TGW_FIELDS",
    "TGW_ONLY",
    "TRINO_RESERVED",
    "FieldSpec",
    "FormatError",
    "ParseResult",
    "RecordFormat",
    "RecordParser",
]

#: The time partition column of flowwatch's Glue table (the date path: "2026/11/27", ...).
#: Deliberately not ``region``, ``date`` or ``day``: a version-4 format has a ``region`` column,
#: and a partition key may not share a name with a data column.
PARTITION_KEY = "dt"
#: The account and region partition columns: the folders ``AWSLogs/<account>/vpcflowlogs/<region>/``
#: (or ``aws-account-id=``/``aws-region=``), so one table reads an organisation's bucket, as AWS's
#: own Athena integration lays it out (not ``account_id``/``region``: both are record fields).
ACCOUNT_KEY = "aws_account_id"
REGION_KEY = "aws_region"
#: Every partition column, in the Glue table's order.
PARTITION_KEYS = (ACCOUNT_KEY, REGION_KEY, PARTITION_KEY)

#: Placeholder AWS writes when a field does not apply or could not be computed.
MISSING = "-"

#: ``log-status`` values that mark a row without traffic ("Flow log record examples":
#: "No data and skipped records").
NO_TRAFFIC_STATUSES = frozenset({"NODATA", "SKIPDATA"})

_DOCS_FIELDS_URL = "https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-logs-fields"


class FormatError(ValueError):
    """A record format, field name or match condition is invalid.

    The message names the offending field and what is allowed, on one line, so the config
    layer can show it as is.
    """


#: The longest line a reader takes from a flow-log file. A record with every field of every
#: version is under 1 KB; a longer line is not a record, and reading it whole (a gzip file of a
#: few MB can hold one line of gigabytes) would only take memory.
MAX_LINE_BYTES = 64 * 1024


class LineTooLong(ValueError):
    """A line of a flow-log file is longer than MAX_LINE_BYTES (the message names the line)."""

    def __init__(self, number: int) -> None:
        super().__init__(f"line {number} is longer than {MAX_LINE_BYTES // 1024} KiB "
                         "(flow-log records are under 1 KB)")
        self.number = number


def bounded_lines(handle: IO[Any], *, limit: int = MAX_LINE_BYTES) -> Iterable[Any]:
    """The lines of an open file, each read at most ``limit`` characters (or bytes) at a time:
    LineTooLong at the first longer one, so memory stays bounded whatever the file holds."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        body = line.rstrip(b"\r\n" if isinstance(line, bytes) else "\r\n")
        if len(body) > limit:
            raise LineTooLong(number)
        yield line


def first_line(handle: IO[Any], *, limit: int = MAX_LINE_BYTES) -> Any:
    """The file's first line (empty when the file is), bounded as :func:`bounded_lines`."""
    return next(iter(bounded_lines(handle, limit=limit)), handle.read(0))


@dataclass(frozen=True)
class FieldSpec:
    """One flow-log field as documented in "Flow log records" -> "Available fields"."""

    name: str  #: AWS name, e.g. ``account-id``
    version: int  #: flow-log version that introduced the field
    athena_type: str  #: ``int`` | ``bigint`` | ``string`` (AWS's Athena DDL for flow logs)
    parquet_type: str  #: ``INT_32`` | ``INT_64`` | ``STRING`` (AWS's Parquet data type)
    description: str

    @property
    def column(self) -> str:
        """Glue/Athena column name: hyphens become underscores (``account-id`` -> ``account_id``)."""
        return self.name.replace("-", "_")

    @property
    def is_int(self) -> bool:
        """Whether values are integers (parsed with :func:`int`)."""
        return self.athena_type != "string"


def _f(name: str, version: int, athena: str, parquet: str, description: str) -> FieldSpec:
    return FieldSpec(name, version, athena, parquet, description)


_S, _I, _B = "string", "int", "bigint"

_FIELD_LIST: tuple[FieldSpec, ...] = (
    # --- version 2: the default format, in this order -------------------------------------
    _f("version", 2, _I, "INT_32", "VPC Flow Logs version: 2 for the default format, else the "
       "highest version among the fields of the custom format."),
    _f("account-id", 2, _S, "STRING", "AWS account ID of the owner of the source network "
       "interface (may be 'unknown' for interfaces created by AWS services)."),
    _f("interface-id", 2, _S, "STRING", "ID of the network interface for which traffic is recorded."),
    _f("srcaddr", 2, _S, "STRING", "Source address for incoming traffic, or the interface's "
       "IPv4/IPv6 address for outgoing traffic. See also pkt-srcaddr."),
    _f("dstaddr", 2, _S, "STRING", "Destination address for outgoing traffic, or the interface's "
       "IPv4/IPv6 address for incoming traffic. See also pkt-dstaddr."),
    _f("srcport", 2, _I, "INT_32", "Source port of the traffic."),
    _f("dstport", 2, _I, "INT_32", "Destination port of the traffic."),
    # AWS's Athena DDL types protocol as bigint although its Parquet type is INT_32.
    _f("protocol", 2, _B, "INT_32", "IANA protocol number of the traffic (1 ICMP, 6 TCP, 17 UDP)."),
    _f("packets", 2, _B, "INT_64", "Number of packets transferred during the flow."),
    _f("bytes", 2, _B, "INT_64", "Number of bytes transferred during the flow."),
    _f("start", 2, _B, "INT_64", "Unix seconds when the first packet of the flow was received "
       "within the aggregation interval."),
    _f("end", 2, _B, "INT_64", "Unix seconds when the last packet of the flow was received "
       "within the aggregation interval."),
    _f("action", 2, _S, "STRING", "ACCEPT or REJECT (by security groups or network ACLs)."),
    _f("log-status", 2, _S, "STRING", "OK, NODATA (no traffic in the interval) or SKIPDATA "
       "(records skipped in the interval)."),
    # --- version 3 ------------------------------------------------------------------------
    _f("vpc-id", 3, _S, "STRING", "ID of the VPC that contains the network interface."),
    _f("subnet-id", 3, _S, "STRING", "ID of the subnet that contains the network interface."),
    _f("instance-id", 3, _S, "STRING", "ID of the instance associated with the network interface, "
       "if you own it ('-' for requester-managed interfaces)."),
    _f("tcp-flags", 3, _I, "INT_32", "Bitmask of TCP flags seen in the interval: FIN 1, SYN 2, "
       "RST 4, SYN-ACK 18 (OR-ed, e.g. 19 = SYN-ACK and FIN)."),
    _f("type", 3, _S, "STRING", "Type of traffic: IPv4, IPv6 or EFA."),
    _f("pkt-srcaddr", 3, _S, "STRING", "Packet-level (original) source IP address of the traffic."),
    _f("pkt-dstaddr", 3, _S, "STRING", "Packet-level (original) destination IP address of the traffic."),
    # --- version 4 ------------------------------------------------------------------------
    _f("region", 4, _S, "STRING", "Region that contains the network interface."),
    _f("az-id", 4, _S, "STRING", "ID of the Availability Zone that contains the network "
       "interface ('-' for a sublocation)."),
    _f("sublocation-type", 4, _S, "STRING", "Type of sublocation: wavelength, outpost or "
       "localzone ('-' when not in a sublocation)."),
    _f("sublocation-id", 4, _S, "STRING", "ID of the sublocation that contains the network interface."),
    # --- version 5 ------------------------------------------------------------------------
    _f("pkt-src-aws-service", 5, _S, "STRING", "Name of the AWS IP-range subset of pkt-srcaddr "
       "(e.g. S3, EC2, ROUTE53), if it belongs to an AWS service."),
    _f("pkt-dst-aws-service", 5, _S, "STRING", "Name of the AWS IP-range subset of pkt-dstaddr, "
       "if it belongs to an AWS service."),
    _f("flow-direction", 5, _S, "STRING", "Direction of the flow relative to the interface: "
       "ingress or egress."),
    _f("traffic-path", 5, _I, "INT_32", "Path egress traffic takes: 1 same VPC, 2 internet gateway "
       "or gateway endpoint, 3 virtual private gateway, 4 intra-region peering, 5 inter-region "
       "peering, 6 local gateway, 7 gateway endpoint (Nitro), 8 internet gateway (Nitro)."),
    # --- version 7: Amazon ECS ------------------------------------------------------------
    _f("ecs-cluster-arn", 7, _S, "STRING", "ARN of the ECS cluster, if the traffic is from a running ECS task."),
    _f("ecs-cluster-name", 7, _S, "STRING", "Name of the ECS cluster, if the traffic is from a running ECS task."),
    _f("ecs-container-instance-arn", 7, _S, "STRING", "ARN of the ECS container instance (EC2 launch type)."),
    _f("ecs-container-instance-id", 7, _S, "STRING", "ID of the ECS container instance (EC2 launch type)."),
    _f("ecs-container-id", 7, _S, "STRING", "Docker runtime ID of the (first) container of the ECS task."),
    _f("ecs-second-container-id", 7, _S, "STRING", "Docker runtime ID of the second container of the ECS task."),
    _f("ecs-service-name", 7, _S, "STRING", "Name of the ECS service, if the task was started by a service."),
    _f("ecs-task-definition-arn", 7, _S, "STRING", "ARN of the ECS task definition."),
    _f("ecs-task-arn", 7, _S, "STRING", "ARN of the ECS task."),
    _f("ecs-task-id", 7, _S, "STRING", "ID of the ECS task."),
    # --- version 8 ------------------------------------------------------------------------
    _f("reject-reason", 8, _S, "STRING", "Why the traffic was rejected, e.g. BPA (VPC Block Public "
       "Access); '-' for any other reason."),
    # --- newer fields (see the module docstring for how far these are verified) -------------
    _f("resource-id", 9, _S, "STRING", "ID of the resource (e.g. a regional NAT gateway) "
       "associated with the recorded traffic."),
    _f("encryption-status", 10, _I, "INT_32", "VPC Encryption Controls status: 0 not encrypted, "
       "1 Nitro-encrypted, 2 application-encrypted, 3 both, '-' unknown or controls off."),
    # --- transit gateway flow logs only (version 6; "Transit Gateway Flow Log records") --------
    _f("resource-type", 6, _S, "STRING", "Type of resource the subscription is on: TransitGateway."),
    _f("tgw-id", 6, _S, "STRING", "ID of the transit gateway whose traffic is recorded."),
    _f("tgw-attachment-id", 6, _S, "STRING", "ID of the transit gateway attachment whose traffic is recorded."),
    _f("tgw-src-vpc-account-id", 6, _S, "STRING", "AWS account ID of the source VPC traffic."),
    _f("tgw-dst-vpc-account-id", 6, _S, "STRING", "AWS account ID of the destination VPC traffic."),
    _f("tgw-src-vpc-id", 6, _S, "STRING", "ID of the source VPC."),
    _f("tgw-dst-vpc-id", 6, _S, "STRING", "ID of the destination VPC."),
    _f("tgw-src-subnet-id", 6, _S, "STRING", "ID of the subnet of the source traffic."),
    _f("tgw-dst-subnet-id", 6, _S, "STRING", "ID of the subnet of the destination traffic."),
    _f("tgw-src-eni", 6, _S, "STRING", "ID of the source transit gateway attachment ENI of the flow."),
    _f("tgw-dst-eni", 6, _S, "STRING", "ID of the destination transit gateway attachment ENI of the flow."),
    _f("tgw-src-az-id", 6, _S, "STRING", "Availability Zone of the source transit gateway ('-' for a sublocation)."),
    _f("tgw-dst-az-id", 6, _S, "STRING", "Availability Zone of the destination transit gateway."),
    _f("tgw-pair-attachment-id", 6, _S, "STRING", "The egress or ingress attachment ID of the flow, by direction."),
    _f("packets-lost-no-route", 6, _B, "INT_64", "Packets lost because no route was specified."),
    _f("packets-lost-blackhole", 6, _B, "INT_64", "Packets lost to a blackhole route."),
    _f("packets-lost-mtu-exceeded", 6, _B, "INT_64", "Packets lost because their size exceeded the MTU."),
    _f("packets-lost-ttl-expired", 6, _B, "INT_64", "Packets lost because their time-to-live expired."),
)

#: Fields that only transit gateway flow logs have (a VPC flow log's LogFormat may not name them).
TGW_ONLY: frozenset[str] = frozenset(f.name for f in _FIELD_LIST if f.name.startswith(("tgw-", "packets-lost-"))
                                     or f.name == "resource-type")

#: The default format of a transit gateway flow log: every version 2 to 6 field it has, in the
#: order of "Transit Gateway Flow Log records" -> "Available fields".
TGW_FIELDS: tuple[str, ...] = (
    "version", "resource-type", "account-id", "tgw-id", "tgw-attachment-id", "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id", "tgw-src-vpc-id", "tgw-dst-vpc-id", "tgw-src-subnet-id", "tgw-dst-subnet-id",
    "tgw-src-eni", "tgw-dst-eni", "tgw-src-az-id", "tgw-dst-az-id", "tgw-pair-attachment-id",
    "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "log-status",
    "type", "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired", "tcp-flags", "region", "flow-direction", "pkt-src-aws-service",
    "pkt-dst-aws-service",
)

#: Every documented flow-log field, in AWS's order, by AWS name.
FIELDS: Mapping[str, FieldSpec] = MappingProxyType({f.name: f for f in _FIELD_LIST})

_BY_COLUMN: Mapping[str, FieldSpec] = MappingProxyType({f.column: f for f in _FIELD_LIST})


def _preset(max_version: int) -> tuple[str, ...]:
    return tuple(f.name for f in _FIELD_LIST if f.version <= max_version and f.name not in TGW_ONLY)


#: The console presets: each version's preset is every field up to that version, in AWS order.
#: ``v2`` is AWS's default format (the 14 version-2 fields).
PRESETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {f"v{v}": _preset(v) for v in (2, 3, 4, 5)}
)

#: Trino reserved keywords (https://trino.io/docs/current/language/reserved.html); an
#: identifier equal to one of these must be double-quoted in Athena (engine v3) SQL.
TRINO_RESERVED: frozenset[str] = frozenset(
    """
    ALTER AND AS AUTO BETWEEN BY CASE CAST CONSTRAINT CREATE CROSS CUBE CURRENT_CATALOG
    CURRENT_DATE CURRENT_PATH CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME CURRENT_TIMESTAMP
    CURRENT_USER DEALLOCATE DELETE DESCRIBE DISTINCT DROP ELSE END ESCAPE EXCEPT EXECUTE
    EXISTS EXTRACT FALSE FOR FROM FULL GROUP GROUPING HAVING IN INNER INSERT INTERSECT INTO
    IS JOIN JSON_ARRAY JSON_EXISTS JSON_OBJECT JSON_QUERY JSON_TABLE JSON_VALUE LEFT LIKE
    LISTAGG LOCALTIME LOCALTIMESTAMP NATURAL NORMALIZE NOT NULL ON OR ORDER OUTER PREPARE
    RECURSIVE RIGHT ROLLUP SELECT SKIP TABLE THEN TRIM TRUE UESCAPE UNION UNNEST USING
    VALUES WHEN WHERE WITH
    """.split()
)

MAX_PATTERN = 1024   # PutMetricFilter: filterPattern is at most 1024 characters
_PLACEHOLDER = re.compile(r"^\$\{([^}]*)\}$")


def _suggest(name: str) -> str:
    """``" (did you mean 'srcaddr'?)"`` for a near-miss, else the list of allowed names."""
    if name in _BY_COLUMN:  # a Glue column name where an AWS name is expected
        return f" (did you mean '{_BY_COLUMN[name].name}'?)"
    close = difflib.get_close_matches(name, list(FIELDS), n=1, cutoff=0.75)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (allowed: the AWS flow-log fields {', '.join(FIELDS)}; see {_DOCS_FIELDS_URL})"


def _field_name(token: str) -> str:
    """The AWS field name of one format token (``srcaddr`` or ``${srcaddr}``), validated."""
    match = _PLACEHOLDER.match(token)
    name = match.group(1).strip() if match else token
    if name not in FIELDS:
        raise FormatError(f"unknown flow-log field '{name}'{_suggest(name)}")
    return name


@cache
def _record_type(fields: tuple[str, ...]) -> type[tuple[Any, ...]]:
    """One namedtuple class per distinct format (shared by equal formats)."""
    columns = [FIELDS[f].column for f in fields]
    name = "FlowRecordV2" if fields == PRESETS["v2"] else "FlowRecord"
    return namedtuple(name, columns)


@dataclass(frozen=True)
class RecordFormat:
    """An ordered list of flow-log fields: AWS's default format, a preset, or a custom format.

    Custom formats are described in "Flow log records" -> "Custom format": any number of the
    available fields, in any order, at least one.
    """

    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        fields = tuple(self.fields)
        if not fields:
            raise FormatError(
                "empty flow-log format (give a preset v2, v3, v4, v5 or at least one field name)"
            )
        seen: set[str] = set()
        for name in fields:
            if name not in FIELDS:
                raise FormatError(f"unknown flow-log field '{name}'{_suggest(name)}")
            if name in seen:
                raise FormatError(
                    f"duplicate flow-log field '{name}' in the record format (each field may appear once)"
                )
            seen.add(name)
        object.__setattr__(self, "fields", fields)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> RecordFormat:
        """Build a format from a preset name (``"v2"`` .. ``"v5"``) or a field list.

        A field list may be a sequence of names or one string; names may be written bare
        (``srcaddr``) or as in ``LogFormat`` (``${srcaddr}``), separated by spaces or commas.

        Raises:
            FormatError: unknown preset or field, duplicate field, or empty format.
        """
        if isinstance(spec, str):
            text = spec.strip()
            if text.lower() == "tgw":
                return cls(TGW_FIELDS)
            if re.fullmatch(r"[vV]\d+", text):
                preset = PRESETS.get(text.lower())
                if preset is None:
                    raise FormatError(
                        f"unknown flow-log format preset '{text}' "
                        f"(allowed: {', '.join(PRESETS)}, tgw, or a list of field names)"
                    )
                return cls(preset)
            tokens: list[str] = [t for t in re.split(r"[\s,]+", text) if t]
        elif isinstance(spec, Sequence):
            tokens = []
            for item in spec:
                if not isinstance(item, str):
                    raise FormatError(
                        f"flow-log field names must be strings, got {type(item).__name__} {item!r}"
                    )
                tokens.append(item.strip())
        else:
            raise FormatError(
                f"flow-log format must be a preset name or a list of field names, got {type(spec).__name__}"
            )
        return cls(tuple(_field_name(t) for t in tokens))

    # -- derived views ------------------------------------------------------------------

    @property
    def specs(self) -> tuple[FieldSpec, ...]:
        """The :class:`FieldSpec` of each field, in format order."""
        return tuple(FIELDS[f] for f in self.fields)

    @property
    def version(self) -> int:
        """The value AWS writes in the ``version`` field: the highest version among the fields."""
        return max(FIELDS[f].version for f in self.fields)

    @property
    def columns(self) -> tuple[str, ...]:
        """Glue/Athena column names, in format order (hyphen -> underscore)."""
        return tuple(FIELDS[f].column for f in self.fields)

    @property
    def record_type(self) -> type[tuple[Any, ...]]:
        """The namedtuple class of parsed records (attribute names = :attr:`columns`)."""
        return _record_type(self.fields)

    def log_format(self) -> str:
        """The ``LogFormat`` of CreateFlowLogs: ``"${version} ${account-id} ..."``."""
        return " ".join(f"${{{f}}}" for f in self.fields)

    def header(self) -> str:
        """The first line of every plain-text S3 log file: the field names, space separated."""
        return " ".join(self.fields)

    def glue_columns(self) -> list[dict[str, str]]:
        """``StorageDescriptor.Columns`` of the Glue table: ``[{"Name": ..., "Type": ...}]``."""
        return [{"Name": s.column, "Type": s.athena_type} for s in self.specs]

    def spec(self, field_or_column: str) -> FieldSpec:
        """The :class:`FieldSpec` of a field of this format, by AWS name or column name."""
        return FIELDS[self.fields[self.index(field_or_column)]]

    def index(self, field: str) -> int:
        """Position of a field (AWS name or column name) in this format.

        Raises:
            FormatError: the field is not part of this format.
        """
        name = _BY_COLUMN[field].name if field in _BY_COLUMN else field
        try:
            return self.fields.index(name)
        except ValueError:
            known = "" if name in FIELDS else _suggest(name)
            raise FormatError(
                f"flow-log field '{field}' is not in the record format{known} "
                f"(format fields: {' '.join(self.fields)})"
            ) from None

    def __contains__(self, field: object) -> bool:
        if not isinstance(field, str):
            return False
        name = _BY_COLUMN[field].name if field in _BY_COLUMN else field
        return name in self.fields

    def __len__(self) -> int:
        return len(self.fields)

    def sql_column(self, field_or_column: str) -> str:
        """The column as an Athena/Trino SQL identifier, double-quoted when reserved (``"end"``).

        Also accepts the partition keys :data:`PARTITION_KEYS`.

        Raises:
            FormatError: neither a field of this format nor a partition key.
        """
        column = field_or_column if field_or_column in PARTITION_KEYS else self.spec(field_or_column).column
        return f'"{column}"' if column.upper() in TRINO_RESERVED else column

    # -- CloudWatch Logs metric filter ------------------------------------------------------

    def filter_pattern(self, match: Mapping[str, Any], *, vpc_cidr: str | None = None) -> str:
        """A space-delimited CloudWatch Logs filter pattern naming every field of the format.

        Each field is named by its column; fields in ``match`` (keys: AWS names or columns)
        get a condition (:mod:`flowwatch.matching`: a value, a comparison such as ``!=ACCEPT`` or
        ``>1000``, a list of values, a CIDR block or ``vpc``, the stack VPC's block ``vpc_cidr``).
        Values not made of ``[A-Za-z0-9._*]`` are double-quoted. For v2 and
        ``{"protocol": 1, "action": "REJECT"}``::

            [version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol=1,
             packets, bytes, start, end, action=REJECT, log_status]

        See "Filter pattern syntax for metric filters" -> "Using metric filters to match
        terms in space-delimited log events" in the Amazon CloudWatch Logs User Guide.

        Raises:
            FormatError: a key is not a field of the format, or a value is not usable.
        """
        terms = dict(enumerate(FIELDS[name].column for name in self.fields))
        for i, cond in self.match_conditions(match, vpc_cidr=vpc_cidr).items():
            terms[i] = matching.pattern_term(FIELDS[self.fields[i]].column, cond)
        pattern = "[" + ", ".join(terms[i] for i in range(len(self.fields))) + "]"
        if len(pattern) > MAX_PATTERN:
            raise FormatError(f"the alert match makes a filter pattern of {len(pattern)} characters; CloudWatch "
                              f"allows {MAX_PATTERN} (fewer values or a shorter record format)")
        return pattern

    def match_conditions(self, match: Mapping[str, Any], *,
                         vpc_cidr: str | None = None) -> dict[int, "matching.Condition"]:
        """``match`` as one :class:`flowwatch.matching.Condition` per field position (FormatError when a key
        is not a field of the format, is named twice, or a value is not usable)."""
        found: dict[int, matching.Condition] = {}
        for key, value in match.items():
            i = self.index(key)
            if i in found:
                raise FormatError(f"alert match names field '{self.fields[i]}' twice")
            spec = FIELDS[self.fields[i]]
            try:
                found[i] = matching.condition(spec.name, value, is_int=spec.is_int, vpc_cidr=vpc_cidr)
            except matching.MatchError as exc:
                raise FormatError(f"alert match {exc}") from None
        return found

    # -- parsing and generating -------------------------------------------------------------

    def parser(self) -> RecordParser:
        """The fast parser of records in this format (built once per distinct format)."""
        return _parser(self)

    def render(self, values: Sequence[Any]) -> str:
        """One record line from values in format order (``None`` -> ``-``)."""
        if len(values) != len(self.fields):
            raise FormatError(f"record has {len(values)} values, the format has {len(self.fields)} fields")
        return " ".join(MISSING if v is None else str(v) for v in values)

    def synth(
        self,
        *,
        account: str,
        eni: str,
        srcaddr: str,
        dstaddr: str,
        protocol: int,
        action: Literal["ACCEPT", "REJECT"],
        start: int,
        end: int | None = None,
        count: int = 1,
        rng: random.Random | None = None,
        vpc_id: str | None = None,
        subnet_id: str | None = None,
        instance_id: str | None = None,
        region: str | None = None,
        az_id: str | None = None,
        srcport: int | None = None,
        dstport: int | None = None,
        flow_direction: Literal["ingress", "egress"] | None = None,
        overrides: Mapping[str, str | int | None] | None = None,
    ) -> list[str]:
        """``count`` realistic traffic records in this format, as AWS would write them.

        Every field is filled plausibly, or ``-`` where AWS writes ``-`` (not applicable, or
        an identifier the caller did not give, such as ``vpc_id``): ICMP and other port-less
        protocols have ports 0; packets and bytes fit the protocol and action (a ping is
        84-byte packets, a rejected TCP attempt is a few SYNs); ``tcp-flags`` follows the
        handshake; ``type`` is IPv4/IPv6 from the address; ``flow-direction`` is derived from
        private/public addresses unless given; ``traffic-path`` is set for egress only;
        ``log-status`` is OK; ``version`` is the highest version among the format's fields.
        ``end`` defaults to ``start + 60`` (one-minute aggregation). ``overrides`` sets any
        field by AWS or column name (``None`` -> ``-``).

        Raises:
            FormatError: an invalid argument (action, protocol, count, times, override key).
        """
        if action not in ("ACCEPT", "REJECT"):
            raise FormatError(f"synthetic record action must be ACCEPT or REJECT, got {action!r}")
        if isinstance(protocol, bool) or not isinstance(protocol, int) or not 0 <= protocol <= 255:
            raise FormatError(f"synthetic record protocol must be an IANA number 0-255, got {protocol!r}")
        if count < 1:
            raise FormatError(f"synthetic record count must be >= 1, got {count}")
        end = start + 60 if end is None else end
        if end < start:
            raise FormatError(f"synthetic record end {end} is before start {start}")
        rng = rng if rng is not None else random.Random()
        fixed: dict[str, Any] = {}
        for key, value in (overrides or {}).items():
            fixed[self.spec(key).name] = value

        has_ports = protocol in (6, 17, 132)  # TCP, UDP, SCTP
        direction = flow_direction or _direction(srcaddr, dstaddr)
        common: dict[str, Any] = {
            "version": self.version,
            "account-id": account,
            "interface-id": eni,
            "srcaddr": srcaddr,
            "dstaddr": dstaddr,
            "protocol": protocol,
            "start": start,
            "end": end,
            "action": action,
            "log-status": "OK",
            "vpc-id": vpc_id,
            "subnet-id": subnet_id,
            "instance-id": instance_id,
            "type": "IPv6" if ":" in srcaddr else "IPv4",
            "pkt-srcaddr": srcaddr,
            "pkt-dstaddr": dstaddr,
            "region": region,
            "az-id": az_id,
            "flow-direction": direction,
            "traffic-path": _traffic_path(direction, dstaddr),
        }
        lines: list[str] = []
        for _ in range(count):
            packets, nbytes, flags = _volume(protocol, action, rng)
            values = dict(common)
            values["srcport"] = (srcport if srcport is not None else rng.randint(32768, 60999)) if has_ports else 0
            values["dstport"] = (
                (dstport if dstport is not None else rng.choice(_COMMON_PORTS[protocol])) if has_ports else 0
            )
            values["packets"] = packets
            values["bytes"] = nbytes
            values["tcp-flags"] = flags
            values.update(fixed)
            lines.append(" ".join(_text(values.get(name)) for name in self.fields))
        return lines


def _text(value: Any) -> str:
    return MISSING if value is None or value == "" else str(value)


# --- synthetic traffic helpers ----------------------------------------------------------------

_COMMON_PORTS: dict[int, tuple[int, ...]] = {
    6: (22, 80, 443, 443, 443, 3306, 3389, 5432, 8080),
    17: (53, 53, 123, 161, 500, 514),
    132: (2905, 3868, 36412),
}


def _is_private(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_private
    except ValueError:
        return True


def _direction(srcaddr: str, dstaddr: str) -> str:
    """Egress unless a public source talks to a private destination."""
    if not _is_private(srcaddr) and _is_private(dstaddr):
        return "ingress"
    return "egress"


def _traffic_path(direction: str, dstaddr: str) -> int | None:
    """``traffic-path`` of egress traffic: 1 inside the VPC, 8 through the internet gateway."""
    if direction != "egress":
        return None
    return 1 if _is_private(dstaddr) else 8


def _volume(protocol: int, action: str, rng: random.Random) -> tuple[int, int, int]:
    """Plausible (packets, bytes, tcp-flags) for one aggregated flow."""
    if protocol in (1, 58):  # ICMP / ICMPv6 echo: 84-byte IPv4 packets (20 IP + 8 ICMP + 56)
        packets = rng.randint(1, 10) if action == "REJECT" else rng.randint(4, 60)
        return packets, packets * (84 if protocol == 1 else 104), 0
    if protocol == 6:
        if action == "REJECT":  # SYN retries, 60-byte SYNs
            packets = rng.randint(1, 3)
            return packets, packets * 60, 2
        packets = rng.randint(3, 400)  # a short connection: handshake, data, FIN
        return packets, packets * rng.randint(52, 1400), rng.choice((3, 19, 19, 18))
    if protocol == 17:
        packets = rng.randint(1, 4) if action == "REJECT" else rng.randint(1, 40)
        return packets, packets * rng.randint(60, 512), 0
    packets = rng.randint(1, 20)
    return packets, packets * rng.randint(40, 1400), 0


# --- parser -----------------------------------------------------------------------------------


#: Numeric fields whose values are small non-negative integers, and their lookup table.
_SMALL_INT_FIELDS = frozenset({"version", "protocol", "tcp-flags", "traffic-path", "encryption-status"})
_SMALL_INTS: Mapping[str, int] = {str(i): i for i in range(256)}


@cache
def _parser(fmt: RecordFormat) -> RecordParser:
    return RecordParser(fmt)


@dataclass
class ParseResult:
    """What :meth:`RecordParser.parse` found in a batch of lines."""

    records: list[tuple[Any, ...]] = field(default_factory=list)  #: traffic records (log-status OK)
    nodata: list[tuple[Any, ...]] = field(default_factory=list)  #: NODATA / SKIPDATA rows
    header: bool = False  #: a header line (the field names) was seen and skipped
    malformed: int = 0  #: lines skipped: wrong field count or non-numeric numeric field


_ParseFn = Callable[[Iterable[str]], tuple[list[Any], list[Any], bool, int]]


class RecordParser:
    """Parses flow-log lines of one :class:`RecordFormat` into namedtuples.

    Values are converted: ``int`` for int/bigint fields, ``None`` for ``-``, ``str``
    otherwise. NODATA/SKIPDATA rows are kept apart from traffic, the S3 header line is
    recognised and skipped, and malformed lines (wrong field count, non-numeric value in a
    numeric field) are counted, never raised.

    The hot loop is generated once per format (straight-line code, no per-field branching
    on the common path), which is what makes it fast; see ``benchmarks/bench_parse.py``.
    """

    def __init__(self, fmt: RecordFormat) -> None:
        self.format = fmt
        self.record_type = fmt.record_type
        self._n = len(fmt.fields)
        self._header = list(fmt.fields)
        self._ints = tuple(FIELDS[f].is_int for f in fmt.fields)
        self._status = fmt.fields.index("log-status") if "log-status" in fmt.fields else None
        self._parse = self._compile()

    def parse(self, lines: Iterable[str]) -> ParseResult:
        """Parse lines (with or without trailing newlines); blank lines are ignored.

        The cyclic garbage collector is paused for the batch: records are tuples of str,
        int and None (no cycles), and at a million lines the collector's repeated scans of
        the growing result lists cost more than the parsing itself.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            records, nodata, header, malformed = self._parse(lines)
        finally:
            if was_enabled:
                gc.enable()
        return ParseResult(records, nodata, header, malformed)

    def parse_line(self, line: str) -> tuple[Any, ...] | None:
        """One record (traffic or NODATA/SKIPDATA), or ``None`` for a header, blank or malformed line."""
        parts = line.split()
        if len(parts) != self._n or parts == self._header:
            return None
        return self._convert(parts)

    def is_traffic(self, record: tuple[Any, ...]) -> bool:
        """False for NODATA/SKIPDATA rows."""
        return self._status is None or record[self._status] not in NO_TRAFFIC_STATUSES

    def _convert(self, parts: list[str]) -> tuple[Any, ...] | None:
        """The general (slow) path: ``-`` anywhere, or a non-numeric numeric field."""
        values: list[Any] = []
        for text, is_int in zip(parts, self._ints, strict=True):
            if text == MISSING:
                values.append(None)
            elif is_int:
                try:
                    values.append(int(text))
                except ValueError:
                    return None
            else:
                values.append(text)
        return tuple.__new__(self.record_type, values)

    def _compile(self) -> _ParseFn:
        """Generate the batch loop for this format (indices only; no user text in the code)."""
        n = self._n
        names = [f"a{i}" for i in range(n)]
        # Small-domain numbers (version, protocol, tcp-flags, ...) come from a lookup table,
        # ~4x cheaper than int(); anything unusual ("06", "-", "tcp") raises and takes the
        # general path, which also decides between header, malformed and valid.
        def conv(a: str, name: str) -> str:
            if not FIELDS[name].is_int:
                return a
            return f"_small[{a}]" if name in _SMALL_INT_FIELDS else f"_int({a})"

        values = ", ".join(conv(a, name) for a, name in zip(names, self.format.fields, strict=True))
        unpack = ", ".join(names) + ("," if n == 1 else "")
        if self._status is None:
            route_fast = "rapp(rec)"
            route_slow = "rapp(rec)"
        else:
            s = self._status
            route_fast = f"(rapp if a{s} == 'OK' or a{s} not in _NOTRAFFIC else napp)(rec)"
            route_slow = f"(napp if rec[{s}] in _NOTRAFFIC else rapp)(rec)"
        # Formats without a numeric field cannot detect the header through int() failing.
        header_check = "" if any(self._ints) else (
            "            if parts == _HEADER:\n"
            "                header = True\n"
            "                continue\n"
        )
        source = (
            "def _parse(lines):\n"
            "    records = []\n"
            "    nodata = []\n"
            "    rapp = records.append\n"
            "    napp = nodata.append\n"
            "    header = False\n"
            "    malformed = 0\n"
            "    for line in lines:\n"
            "        parts = line.split()\n"
            f"        if len(parts) != {n}:\n"
            "            if parts:\n"
            "                malformed += 1\n"
            "            continue\n"
            "        if _MISSING not in parts:\n"
            f"{header_check}"
            f"            {unpack} = parts\n"
            "            try:\n"
            f"                rec = _new(_R, ({values}{',' if n == 1 else ''}))\n"
            "            except (ValueError, KeyError):\n"
            "                if parts == _HEADER:\n"
            "                    header = True\n"
            "                    continue\n"
            "                rec = _convert(parts)\n"
            "                if rec is None:\n"
            "                    malformed += 1\n"
            "                    continue\n"
            f"                {route_slow}\n"
            "                continue\n"
            f"            {route_fast}\n"
            "        else:\n"
            "            rec = _convert(parts)\n"
            "            if rec is None:\n"
            "                malformed += 1\n"
            "                continue\n"
            f"            {route_slow}\n"
            "    return records, nodata, header, malformed\n"
        )
        namespace: dict[str, Any] = {
            "_new": tuple.__new__,
            "_R": self.record_type,
            "_int": int,
            "_MISSING": MISSING,
            "_HEADER": self._header,
            "_NOTRAFFIC": NO_TRAFFIC_STATUSES,
            "_convert": self._convert,
            "_small": _SMALL_INTS,
        }
        exec(compile(source, f"<flowwatch.records parser {len(self._header)} fields>", "exec"), namespace)
        parse: Callable[[Iterable[str]], tuple[list[Any], list[Any], bool, int]] = namespace["_parse"]
        return parse
