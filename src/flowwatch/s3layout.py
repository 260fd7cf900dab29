"""Where VPC flow logs land in S3, and how Athena finds them again.

Sources (AWS documentation):

* Key layout and file names: Amazon VPC User Guide, "Publish flow logs to Amazon S3" ->
  "Flow log files" https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3.html#flow-logs-s3-path ::

      bucket-and-optional-prefix/AWSLogs/account_id/vpcflowlogs/region/year/month/day/[hour/]
      bucket-and-optional-prefix/AWSLogs/aws-account-id=account_id/aws-service=vpcflowlogs/
          aws-region=region/year=year/month=month/day=day/[hour=hour/]
      aws_account_id_vpcflowlogs_region_flow_log_id_YYYYMMDDTHHmmZ_hash.log.gz

  Files are published every 5 minutes; the time in the name is the start of the 5-minute
  window of the records' END time: the documented example
  ``123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz`` "contains
  the flow log records with an end time between 16:20:00 and 16:24:59" (earlier versions of the
  page described the same file as holding "records for 16:15:01 to 16:20:00"; flowwatch follows
  the current text). The date folders are that window's too (5-minute windows never straddle
  an hour), so a record that ended yesterday is in yesterday's folder, whenever it was
  delivered; S3's Last-Modified is the upload time, "later than the timestamp in the file
  name". Parquet files end in ``.log.parquet``. The prefix may not use
  ``AWSLogs`` as a folder name. The bucket-policy resource is
  ``arn:aws:s3:::bucket/optional_folder/AWSLogs/account_id/*`` (Hive:
  ``.../AWSLogs/aws-account-id=account_id/*``).
* Partition projection: Amazon Athena User Guide, "Use partition projection with Amazon
  Athena" and "Supported types for partition projection" -> "Date type"
  https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html
  (``projection.<col>.type = date``, ``.format`` is a Java ``DateTimeFormatter`` pattern in
  which quoted text is literal, ``.range`` "<start>,NOW" in that same format, ``.interval``
  and ``.interval.unit``, and ``storage.location.template`` with ``${<col>}``).
* VPC flow logs in Athena: "Create and query a table for Amazon VPC flow logs using
  partition projection" https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs-partition-projection.html
  (``'projection.day.format' = 'yyyy/MM/dd'``, ``'storage.location.template' =
  's3://.../AWSLogs/${accid}/vpcflowlogs/${region}/${day}'``) and "Create a table for
  Amazon VPC flow logs and query it" (``"skip.header.line.count"="1"`` for the plain-text
  header line).

flowwatch's Glue table is partitioned as AWS's own Athena integration lays it out (source: the
partition-projection page above, whose table is ``PARTITIONED BY (accid string, region string,
day string)`` over ``LOCATION '.../AWSLogs/'`` with ``projection.<col>.type = enum`` and
``projection.<col>.values`` for account and region): :data:`flowwatch.records.PARTITION_KEYS`,
``aws_account_id``, ``aws_region`` and ``dt``, all strings; LOCATION is the ``AWSLogs/`` folder, so
one table reads every account and region of the bucket. ``dt``'s value is the whole date path after
the region folder ("2026/11/27", "2026/11/27/05", "year=2026/month=11/day=27",
"year=2026/month=11/day=27/hour=05"). Being zero-padded, those values sort as the times they
stand for, so a time window is a plain ``dt BETWEEN lo AND hi`` predicate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flowwatch.records import ACCOUNT_KEY, PARTITION_KEY, REGION_KEY

#: moto drops a flow log's DestinationOptions, so flowwatch also keeps them in this tag of the S3
#: flow log (read back when DescribeFlowLogs does not return them; the local AWS reads it too).
S3_OPTIONS_TAG = "flowwatch:s3-options"


def s3_options_tag(opts: dict[str, Any]) -> str:
    return " ".join(f"{k}={str(v).lower()}" for k, v in sorted(opts.items()))


def parse_s3_options_tag(value: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in (value or "").split():
        key, _, val = part.partition("=")
        out[key] = val if key == "FileFormat" else val == "true"
    return out

__all__ = ["FILE_FORMATS", "FILE_WINDOW_SECONDS", "KeyPartition", "S3Layout", "is_account", "is_region",
           "to_utc"]

#: ``DestinationOptions.FileFormat`` values of CreateFlowLogs.
FILE_FORMATS = ("plain-text", "parquet")

#: The file window: "publishes the log files to the Amazon S3 bucket at 5-minute intervals".
FILE_WINDOW_SECONDS = 300
_NAME_PART = re.compile(r"[A-Za-z0-9-]+")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_ACCOUNT = re.compile(r"\d{12}")
# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-7, mx-central-1 ...
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
_PLAIN_KEY = re.compile(r"AWSLogs/(\d{12})/vpcflowlogs/([a-z0-9-]+)/(.*)")
_HIVE_KEY = re.compile(r"AWSLogs/aws-account-id=(\d{12})/aws-service=vpcflowlogs/aws-region=([a-z0-9-]+)/(.*)")


def is_account(value: str) -> bool:
    """An AWS account id: 12 digits."""
    return _ACCOUNT.fullmatch(value) is not None


def is_region(value: str) -> bool:
    """An AWS region code (``us-east-1``, ``us-gov-west-1``)."""
    return _REGION.fullmatch(value) is not None


@dataclass(frozen=True)
class KeyPartition:
    """The partition values Athena gives an object: its account and region folders and its ``dt``."""

    account: str
    region: str
    dt: str | None


def to_utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive datetime is taken to be UTC already."""
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


@dataclass(frozen=True)
class S3Layout:
    """The S3 key layout of one flow log's destination, as CreateFlowLogs options describe it.

    ``prefix`` is the optional folder before ``AWSLogs/``; it is normalised to ``""`` or
    ``"some/prefix/"``. ``hive`` is ``DestinationOptions.HiveCompatiblePartitions``,
    ``per_hour`` is ``DestinationOptions.PerHourPartition`` and ``file_format`` is
    ``DestinationOptions.FileFormat``.
    """

    bucket: str
    account: str
    region: str
    prefix: str = ""
    hive: bool = False
    per_hour: bool = False
    file_format: str = "plain-text"

    def __post_init__(self) -> None:
        for name in ("bucket", "account", "region"):
            value = getattr(self, name)
            if not value or "/" in value or value != value.strip():
                raise ValueError(f"S3 layout {name} must be a non-empty name without '/', got {value!r}")
        if self.file_format not in FILE_FORMATS:
            raise ValueError(
                f"S3 layout file_format must be one of {', '.join(FILE_FORMATS)}, got {self.file_format!r}"
            )
        prefix = self.prefix.strip("/")
        if prefix and "AWSLogs" in prefix.split("/"):
            raise ValueError(f"S3 prefix {self.prefix!r} may not use AWSLogs as a folder name (AWS reserves it)")
        object.__setattr__(self, "prefix", f"{prefix}/" if prefix else "")

    # -- keys ------------------------------------------------------------------------------

    def base_prefix(self) -> str:
        """``<prefix>AWSLogs/<acct>/vpcflowlogs/<region>/`` (or its Hive-style form)."""
        if self.hive:
            return (
                f"{self.prefix}AWSLogs/aws-account-id={self.account}/aws-service=vpcflowlogs/"
                f"aws-region={self.region}/"
            )
        return f"{self.prefix}AWSLogs/{self.account}/vpcflowlogs/{self.region}/"

    def logs_prefix(self) -> str:
        """``<prefix>AWSLogs/``: the folder of every account's flow logs (the Glue table's LOCATION)."""
        return f"{self.prefix}AWSLogs/"

    def account_folder(self, folder: str) -> str | None:
        """The account of a folder directly under :meth:`logs_prefix` (``123456789012`` or, Hive,
        ``aws-account-id=123456789012``, with or without the trailing ``/``); None for anything else."""
        return self._folder_value(folder, "aws-account-id=", is_account)

    def regions_prefix(self, account: str) -> str:
        """The folder whose subfolders are ``account``'s regions: ``<prefix>AWSLogs/<acct>/vpcflowlogs/``
        (Hive: ``.../aws-account-id=<acct>/aws-service=vpcflowlogs/``)."""
        if self.hive:
            return f"{self.logs_prefix()}aws-account-id={account}/aws-service=vpcflowlogs/"
        return f"{self.logs_prefix()}{account}/vpcflowlogs/"

    def region_folder(self, folder: str) -> str | None:
        """The region of a folder directly under :meth:`regions_prefix` (``us-east-1`` or, Hive,
        ``aws-region=us-east-1``); None for anything else."""
        return self._folder_value(folder, "aws-region=", is_region)

    def _folder_value(self, folder: str, hive_key: str, valid: Callable[[str], bool]) -> str | None:
        name = folder.rstrip("/").rsplit("/", 1)[-1]
        if self.hive:
            if not name.startswith(hive_key):
                return None
            name = name[len(hive_key):]
        return name if valid(name) else None

    def of_source(self, account: str, region: str) -> "S3Layout":
        """The same layout for the flow logs of another account and region (same bucket and prefix)."""
        return replace(self, account=account, region=region)

    def dt_value(self, t: datetime) -> str:
        """Value of the ``dt`` partition column for time ``t`` (the date path, no trailing slash)."""
        u = to_utc(t)
        if self.hive:
            value = f"year={u:%Y}/month={u:%m}/day={u:%d}"
            return f"{value}/hour={u:%H}" if self.per_hour else value
        return f"{u:%Y/%m/%d/%H}" if self.per_hour else f"{u:%Y/%m/%d}"

    def partition_prefix(self, t: datetime) -> str:
        """The folder of the files for time ``t``: base prefix + date path + ``/``."""
        return f"{self.base_prefix()}{self.dt_value(t)}/"

    @staticmethod
    def window_start(t: datetime) -> datetime:
        """Start (UTC) of the 5-minute file window that contains ``t`` (for a record: its end time)."""
        u = to_utc(t)
        minutes = FILE_WINDOW_SECONDS // 60
        return u.replace(minute=u.minute - u.minute % minutes, second=0, microsecond=0)

    def file_name(self, t: datetime, flow_log_id: str, token: str) -> str:
        """``<acct>_vpcflowlogs_<region>_<flow-log-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz``.

        The time is the start of the 5-minute window containing ``t``; ``token`` is the hash
        (AWS uses 8 hex digits). Parquet files end in ``.log.parquet``.
        """
        if not _NAME_PART.fullmatch(flow_log_id):
            raise ValueError(f"flow log id must be letters, digits and '-', got {flow_log_id!r}")
        if not _TOKEN.fullmatch(token):
            raise ValueError(f"file token must be letters and digits, got {token!r}")
        stamp = f"{self.window_start(t):%Y%m%dT%H%MZ}"
        ext = ".log.parquet" if self.file_format == "parquet" else ".log.gz"
        return f"{self.account}_vpcflowlogs_{self.region}_{flow_log_id}_{stamp}_{token}{ext}"

    def object_key(self, t: datetime, flow_log_id: str, token: str) -> str:
        """Full key of the file AWS would write for time ``t``: partition prefix + file name."""
        return self.partition_prefix(t) + self.file_name(t, flow_log_id, token)

    def dt_from_key(self, key: str) -> str | None:
        """The ``dt`` value of an object key (or ``s3://bucket/key`` URL) of this layout.

        ``None`` when the key is not under :meth:`base_prefix` or has no valid date path.
        """
        part = self.partition_from_key(key)
        if part is None or (part.account, part.region) != (self.account, self.region):
            return None
        return part.dt

    def partition_from_key(self, key: str) -> KeyPartition | None:
        """Account, region and ``dt`` of an object key (or ``s3://bucket/key`` URL) under
        :meth:`logs_prefix`, for any account and region (``dt`` None when the date path is not this
        layout's); ``None`` when the key is not in this layout's account/region folders."""
        if key.startswith("s3://"):
            bucket, _, key = key[5:].partition("/")
            if bucket != self.bucket:
                return None
        if not key.startswith(self.logs_prefix()):
            return None
        match = (_HIVE_KEY if self.hive else _PLAIN_KEY).fullmatch(key[len(self.prefix):])
        if match is None or not is_region(match.group(2)):
            return None
        return KeyPartition(match.group(1), match.group(2), self._dt_of(match.group(3)))

    def _dt_of(self, rest: str) -> str | None:
        match = self._dt_regex().match(rest)
        if match is None:
            return None
        numbers = [int(g) for g in match.groups()]
        hour = numbers[3] if len(numbers) > 3 else 0
        try:
            datetime(numbers[0], numbers[1], numbers[2], hour)  # rejects month 13, day 32, hour 24
        except ValueError:
            return None
        return match.group(0).rstrip("/")

    def _dt_regex(self) -> re.Pattern[str]:
        if self.hive:
            pattern = r"year=(\d{4})/month=(\d{2})/day=(\d{2})/"
            if self.per_hour:
                pattern += r"hour=(\d{2})/"
        else:
            pattern = r"(\d{4})/(\d{2})/(\d{2})/"
            if self.per_hour:
                pattern += r"(\d{2})/"
        return re.compile(pattern)

    # -- time windows ----------------------------------------------------------------------

    def dt_range(self, start: datetime, end: datetime) -> tuple[str, str]:
        """Inclusive ``dt`` bounds covering ``[start, end]``, for ``dt BETWEEN lo AND hi``."""
        if to_utc(end) < to_utc(start):
            raise ValueError(f"time window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        return self.dt_value(start), self.dt_value(end)

    def dt_predicate(self, start: datetime, end: datetime, column: str = PARTITION_KEY) -> str:
        """SQL partition predicate for ``[start, end]``: ``dt BETWEEN '...' AND '...'``."""
        lo, hi = self.dt_range(start, end)
        return f"{column} BETWEEN '{lo}' AND '{hi}'"

    def partition_prefixes(self, start: datetime, end: datetime) -> list[str]:
        """Every partition folder that can hold records of ``[start, end]``, oldest first."""
        self.dt_range(start, end)  # validates the order
        step = timedelta(hours=1) if self.per_hour else timedelta(days=1)
        t = to_utc(start).replace(minute=0, second=0, microsecond=0)
        if not self.per_hour:
            t = t.replace(hour=0)
        stop = to_utc(end)
        prefixes = []
        while t <= stop:
            prefixes.append(self.partition_prefix(t))
            t += step
        return prefixes

    # -- Glue / Athena ---------------------------------------------------------------------

    def table_location(self) -> str:
        """``LOCATION`` of the Glue table: ``s3://<bucket>/<prefix>AWSLogs/``, the level above the accounts."""
        return f"s3://{self.bucket}/{self.logs_prefix()}"

    def location_template(self) -> str:
        """``storage.location.template``: the partition folder with ``${aws_account_id}``, ``${aws_region}``
        and ``${dt}`` in place of the values, exactly the keys :meth:`partition_prefix` writes."""
        account, region, dt = (f"${{{key}}}" for key in (ACCOUNT_KEY, REGION_KEY, PARTITION_KEY))
        if self.hive:
            folders = f"aws-account-id={account}/aws-service=vpcflowlogs/aws-region={region}/{dt}"
        else:
            folders = f"{account}/vpcflowlogs/{region}/{dt}"
        return f"{self.table_location()}{folders}"

    def projection_format(self) -> str:
        """``projection.dt.format``: a Java DateTimeFormatter pattern matching :meth:`dt_value`."""
        if self.hive:
            fmt = "'year='yyyy'/month='MM'/day='dd"
            return fmt + "'/hour='HH" if self.per_hour else fmt
        return "yyyy/MM/dd/HH" if self.per_hour else "yyyy/MM/dd"

    def projection_parameters(self, start: str | date = "2020/01/01", *, accounts: Iterable[str] = (),
                              regions: Iterable[str] = ()) -> dict[str, str]:
        """Glue table ``Parameters`` for Athena partition projection of the three partition keys.

        ``aws_account_id`` and ``aws_region`` are ``enum`` projections ("Supported types for partition
        projection" -> "Enum type": ``projection.<col>.type = enum``, ``projection.<col>.values`` a
        comma-separated list) of ``accounts``/``regions`` plus this layout's own, sorted and without
        repeats; ``dt`` is a ``date`` projection by day (by hour with per-hour partitions).
        ``start`` is the first day of the projected range (``"YYYY/MM/DD"``, ``"YYYY-MM-DD"``
        or a date); it is written in the projection format, as the Athena docs require.
        Plain-text tables also skip the header line every file starts with.
        """
        first = _start_date(start)
        account_values = _enum({self.account, *accounts}, is_account, "account")
        region_values = _enum({self.region, *regions}, is_region, "region")
        params = {
            "projection.enabled": "true",
            f"projection.{ACCOUNT_KEY}.type": "enum",
            f"projection.{ACCOUNT_KEY}.values": ",".join(account_values),
            f"projection.{REGION_KEY}.type": "enum",
            f"projection.{REGION_KEY}.values": ",".join(region_values),
            f"projection.{PARTITION_KEY}.type": "date",
            f"projection.{PARTITION_KEY}.format": self.projection_format(),
            f"projection.{PARTITION_KEY}.range": f"{self.dt_value(first)},NOW",
            f"projection.{PARTITION_KEY}.interval": "1",
            f"projection.{PARTITION_KEY}.interval.unit": "HOURS" if self.per_hour else "DAYS",
            "storage.location.template": self.location_template(),
        }
        if self.file_format == "plain-text":
            params["skip.header.line.count"] = "1"
        return params

    # -- CreateFlowLogs / bucket policy -----------------------------------------------------

    def log_destination(self, partition: str = "aws") -> str:
        """``LogDestination`` of CreateFlowLogs: the bucket ARN, plus the prefix folder if any."""
        bucket_arn = f"arn:{partition}:s3:::{self.bucket}"
        return f"{bucket_arn}/{self.prefix}" if self.prefix else bucket_arn

    def destination_options(self) -> dict[str, str | bool]:
        """``DestinationOptions`` of CreateFlowLogs."""
        return {
            "FileFormat": self.file_format,
            "HiveCompatiblePartitions": self.hive,
            "PerHourPartition": self.per_hour,
        }

    def delivery_resource_arn(self, partition: str = "aws") -> str:
        """Object ARN pattern the log-delivery bucket policy must allow ``s3:PutObject`` on (with Hive-compatible
        partitions AWS writes under ``AWSLogs/aws-account-id=<account>/``)."""
        account = f"aws-account-id={self.account}" if self.hive else self.account
        return f"arn:{partition}:s3:::{self.bucket}/{self.prefix}AWSLogs/{account}/*"


def _enum(values: Iterable[str], valid: "Callable[[str], bool]", what: str) -> list[str]:
    """An enum projection's values: sorted, each checked (a comma or a stray name would change the list)."""
    out = sorted(set(values))
    bad = [v for v in out if not valid(v)]
    if bad:
        raise ValueError(f"not an AWS {what}: {', '.join(map(repr, bad))}")
    return out


def _start_date(start: str | date) -> datetime:
    if isinstance(start, datetime):
        return to_utc(start).replace(hour=0, minute=0, second=0, microsecond=0)
    if isinstance(start, date):
        return datetime(start.year, start.month, start.day, tzinfo=UTC)
    match = re.fullmatch(r"(\d{4})[/-](\d{2})[/-](\d{2})", start.strip())
    if match is None:
        raise ValueError(f"projection start must be YYYY/MM/DD or YYYY-MM-DD, got {start!r}")
    try:
        year, month, day = (int(g) for g in match.groups())
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        raise ValueError(f"projection start {start!r} is not a valid date") from None
