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

flowwatch's Glue table has ONE partition column, :data:`flowwatch.records.PARTITION_KEY`
(``dt``), whose value is the whole date path after the base prefix ("2026/11/27",
"2026/11/27/05", "year=2026/month=11/day=27", "year=2026/month=11/day=27/hour=05"). Being
zero-padded, those values sort as the times they stand for, so a time window is a plain
``dt BETWEEN lo AND hi`` predicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flowwatch.records import PARTITION_KEY

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

__all__ = ["FILE_FORMATS", "FILE_WINDOW_SECONDS", "S3Layout", "to_utc"]

#: ``DestinationOptions.FileFormat`` values of CreateFlowLogs.
FILE_FORMATS = ("plain-text", "parquet")

#: The file window: "publishes the log files to the Amazon S3 bucket at 5-minute intervals".
FILE_WINDOW_SECONDS = 300
_NAME_PART = re.compile(r"[A-Za-z0-9-]+")
_TOKEN = re.compile(r"[A-Za-z0-9]+")


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
        if key.startswith("s3://"):
            bucket, _, key = key[5:].partition("/")
            if bucket != self.bucket:
                return None
        base = self.base_prefix()
        if not key.startswith(base):
            return None
        match = self._dt_regex().match(key[len(base):])
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
        """``LOCATION`` of the Glue table: ``s3://<bucket>/<base_prefix>``."""
        return f"s3://{self.bucket}/{self.base_prefix()}"

    def projection_format(self) -> str:
        """``projection.dt.format``: a Java DateTimeFormatter pattern matching :meth:`dt_value`."""
        if self.hive:
            fmt = "'year='yyyy'/month='MM'/day='dd"
            return fmt + "'/hour='HH" if self.per_hour else fmt
        return "yyyy/MM/dd/HH" if self.per_hour else "yyyy/MM/dd"

    def projection_parameters(self, start: str | date = "2020/01/01") -> dict[str, str]:
        """Glue table ``Parameters`` for Athena partition projection of ``dt``.

        ``start`` is the first day of the projected range (``"YYYY/MM/DD"``, ``"YYYY-MM-DD"``
        or a date); it is written in the projection format, as the Athena docs require.
        Plain-text tables also skip the header line every file starts with.
        """
        first = _start_date(start)
        params = {
            "projection.enabled": "true",
            f"projection.{PARTITION_KEY}.type": "date",
            f"projection.{PARTITION_KEY}.format": self.projection_format(),
            f"projection.{PARTITION_KEY}.range": f"{self.dt_value(first)},NOW",
            f"projection.{PARTITION_KEY}.interval": "1",
            f"projection.{PARTITION_KEY}.interval.unit": "HOURS" if self.per_hour else "DAYS",
            "storage.location.template": f"{self.table_location()}${{{PARTITION_KEY}}}",
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
