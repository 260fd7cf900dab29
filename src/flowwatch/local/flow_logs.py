"""The local VPC flow-log service: delivery of flow-log records to CloudWatch Logs and to S3.

moto stores flow logs (CreateFlowLogs, DescribeFlowLogs) but never writes a record; this is what
AWS's flow-log service would do with the traffic that ``POST /_flowwatch/traffic`` reports.

:meth:`FlowLogService.deliver`: given record lines in a known field order, find every ACTIVE flow
log whose resource (ENI, its subnet or its VPC) covers each record's ``interface-id``, keep the
records its TrafficType takes (ACCEPT / REJECT / ALL), render them in that flow log's LogFormat
and deliver them as AWS does:

* CloudWatch Logs: one stream per ENI, ``<eni>-all`` (``-accept``/``-reject`` for those traffic
  types), event timestamp = the record's ``start``;
* S3: one object per flow log and 5-minute window of the records' END time, under
  ``[prefix/]AWSLogs/<account>/vpcflowlogs/<region>/<yyyy>/<mm>/<dd>/[<HH>/]`` (or the Hive
  form) named ``<account>_vpcflowlogs_<region>_<flow-log-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz``
  (:class:`flowwatch.s3layout.S3Layout`). Amazon VPC User Guide, "Flow log files"
  (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-s3-path.html): the example file
  ``..._20180620T1620Z_fe123456.log.gz`` "contains the flow log records with an end time between
  16:20:00 and 16:24:59". So one delivery of records that ended in several windows (yesterday,
  two windows today) becomes several objects, each named by its window and in that window's
  day (and hour) folder; the data plane's clock only dates a record without a valid ``end``
  (then its ``start``; AWS's own NODATA/SKIPDATA records have both). Every file starts with a
  line of the field names.
* "The maximum file size for a log file is 75 MB. If the log file reaches the file size limit
  within the 5-minute period, the flow log stops adding flow log records to it [...] and creates
  a new log file" (same guide, "Publish flow logs to Amazon S3"): a window whose file would be
  larger becomes several files of at most :data:`MAX_FILE_BYTES`, each with its own hash.
* "Each file is compressed into a single Gzip file" and "Data in Parquet format with Gzip
  compression takes 20 percent less storage space than plain text with Gzip compression" (same
  page, "Log file format"): text files are gzip (``.log.gz``); Parquet files (``.log.parquet``,
  written with DuckDB) are Gzip-compressed Parquet (not DuckDB's default Snappy, which readers
  built for flow logs, such as flowlogs-reader's, cannot decompress), with the Glue column names
  (``account_id``) and AWS's Parquet types (INT_32 / INT_64 / STRING, see
  :data:`flowwatch.records.FIELDS`), ``-`` written as NULL, DuckDB's row groups (122,880 rows).
  Hive and per-hour layouts when the flow log was created with those DestinationOptions.

moto drops DestinationOptions, so :meth:`FlowLogService.tap_create_flow_logs` keeps a copy from
every CreateFlowLogs request moto accepted; :meth:`FlowLogService.destination_options` falls back
to the ``flowwatch:s3-options`` tag the flow_logs step writes.
"""

from __future__ import annotations

import gzip
import re
import secrets
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flowwatch.errors import error_code
from flowwatch.local.loopback import Clients
from flowwatch.records import PRESETS
from flowwatch.s3layout import FILE_WINDOW_SECONDS, S3_OPTIONS_TAG, S3Layout, parse_s3_options_tag

DEFAULT_FIELDS = PRESETS["v2"]   # AWS's default format
BATCH = 5000                     # PutLogEvents: at most 10,000 events per call
MAX_FILE_BYTES = 75 * 1000 * 1000   # "The maximum file size for a log file is 75 MB"
GZIP_LEVEL = 6                   # zlib's default: gzip's 9 costs about twice the time for ~2% less


@dataclass
class Delivery:
    """What one flow log received from one ``deliver`` (the route returns these as they are)."""

    flow_log_id: str
    destination_type: str
    destination: str
    records: int = 0
    target: list[str] = field(default_factory=list)   # streams or object keys
    error: str | None = None


def log_format_fields(log_format: str | None) -> tuple[str, ...]:
    """``"${version} ${srcaddr}"`` -> ``("version", "srcaddr")``; AWS's default format when empty."""
    found = tuple(re.findall(r"\$\{([A-Za-z0-9-]+)\}", log_format or ""))
    return found or DEFAULT_FIELDS


def stream_name(eni: str, traffic_type: str) -> str:
    return f"{eni}-{traffic_type.lower()}"


class FlowLogService:
    """Delivers records to the flow logs that moto stores. ``now``: the data plane's clock (the time of
    records without a valid end or start); ``max_file_bytes``: the largest S3 file."""

    def __init__(self, clients: Clients, now: Callable[[], float], *, max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.clients = clients
        self.now = now
        self.max_file_bytes = max_file_bytes
        self.s3_options: dict[str, dict[str, Any]] = {}   # flow-log id -> DestinationOptions as created

    # ---- CreateFlowLogs (tap) ------------------------------------------------------------
    def tap_create_flow_logs(self, params: Mapping[str, str], response: bytes) -> None:
        """Keep the DestinationOptions of a CreateFlowLogs request moto accepted (moto drops them)."""
        ids = [el.text for el in ET.fromstring(response).iter() if _local(el.tag) == "item" and el.text
               and el.text.startswith("fl-")]
        opts: dict[str, Any] = {}
        if "DestinationOptions.FileFormat" in params:
            opts["FileFormat"] = params["DestinationOptions.FileFormat"]
        for name in ("HiveCompatiblePartitions", "PerHourPartition"):
            if f"DestinationOptions.{name}" in params:
                opts[name] = params[f"DestinationOptions.{name}"].lower() == "true"
        if opts:
            for flow_log_id in ids:
                self.s3_options[flow_log_id] = opts

    def destination_options(self, fl: Mapping[str, Any]) -> dict[str, Any]:
        """DestinationOptions of an S3 flow log: describe (if moto ever returns them), then the
        copy taken from the CreateFlowLogs request, then the flowwatch tag."""
        if fl.get("DestinationOptions"):
            return dict(fl["DestinationOptions"])
        if fl["FlowLogId"] in self.s3_options:
            return self.s3_options[fl["FlowLogId"]]
        tags = {t["Key"]: t["Value"] for t in fl.get("Tags") or ()}
        return parse_s3_options_tag(tags.get(S3_OPTIONS_TAG))

    # ---- delivery ------------------------------------------------------------------------
    def deliver(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver flow-log records to every flow log that covers their ENI (see module doc)."""
        region = payload.get("region") or "us-east-1"
        fields = tuple(payload.get("fields") or DEFAULT_FIELDS)
        records: list[dict[str, str]] = []
        malformed = 0
        for line in payload.get("lines") or ():
            parts = str(line).split()
            if len(parts) != len(fields):
                malformed += 1
                continue
            records.append(dict(zip(fields, parts)))
        by_eni: dict[str, list[dict[str, str]]] = defaultdict(list)
        for rec in records:
            eni = rec.get("interface-id")
            by_eni[eni if eni and eni != "-" else payload.get("eni") or "-"].append(rec)

        ec2 = self.clients.client("ec2", region)
        targets: dict[str, tuple[dict[str, Any], dict[str, list[dict[str, str]]]]] = {}
        uncovered = 0
        for eni, recs in by_eni.items():
            resource_ids = [r for r in (eni, *self._locate(ec2, eni, recs, payload)) if r and r != "-"]
            flow_logs = ec2.describe_flow_logs(
                Filters=[{"Name": "resource-id", "Values": resource_ids}])["FlowLogs"] if resource_ids else []
            active = [fl for fl in flow_logs if fl.get("FlowLogStatus", "ACTIVE") == "ACTIVE"]
            if not active:
                uncovered += len(recs)
            for fl in active:
                taken = [r for r in recs if traffic_matches(fl.get("TrafficType", "ALL"), r.get("action"))]
                if taken:
                    targets.setdefault(fl["FlowLogId"], (fl, {}))[1].setdefault(eni, []).extend(taken)

        deliveries = []
        for fl, per_eni in targets.values():
            if fl.get("LogDestinationType", "cloud-watch-logs") == "s3":
                deliveries.append(self._to_s3(region, fl, per_eni))
            else:
                deliveries.append(self._to_logs(region, fl, per_eni))
        return {"records": len(records), "malformed": malformed, "uncovered": uncovered,
                "deliveries": [d.__dict__ for d in deliveries]}

    def _locate(self, ec2: Any, eni: str, recs: list[dict[str, str]], payload: Mapping[str, Any]) -> tuple[str, str]:
        """(subnet, vpc) of an ENI: from EC2 when it exists, else from the records or the request."""
        if eni.startswith("eni-"):
            try:
                found = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
            except Exception as exc:  # InvalidNetworkInterfaceID.NotFound: a synthetic ENI
                if error_code(exc) not in ("InvalidNetworkInterfaceID.NotFound", "InvalidNetworkInterfaceID.Malformed"):
                    raise
                found = []
            if found:
                return found[0].get("SubnetId", ""), found[0].get("VpcId", "")
        first = recs[0]
        return (first.get("subnet-id") or payload.get("subnet_id") or "",
                first.get("vpc-id") or payload.get("vpc_id") or "")

    def _to_logs(self, region: str, fl: dict[str, Any], per_eni: dict[str, list[dict[str, str]]]) -> Delivery:
        logs = self.clients.client("logs", region)
        group = fl.get("LogGroupName") or ""
        out = Delivery(fl["FlowLogId"], "cloud-watch-logs", group)
        fields = log_format_fields(fl.get("LogFormat"))
        for eni, recs in per_eni.items():
            stream = stream_name(eni, fl.get("TrafficType", "ALL"))
            try:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    out.error = f"log group {group} does not exist (AWS would report DeliverLogsStatus FAILED)"
                    return out
                if error_code(exc) != "ResourceAlreadyExistsException":
                    raise
            now_ms = int(self.now() * 1000)
            events: list[dict[str, Any]] = [{"timestamp": start_ms(r, now_ms), "message": render(fields, r)}
                                            for r in recs]
            events.sort(key=lambda e: e["timestamp"])
            for i in range(0, len(events), BATCH):
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:i + BATCH])
            out.records += len(events)
            out.target.append(stream)
        return out

    def _to_s3(self, region: str, fl: dict[str, Any], per_eni: dict[str, list[dict[str, str]]]) -> Delivery:
        dest = fl.get("LogDestination") or ""
        out = Delivery(fl["FlowLogId"], "s3", dest)
        bucket, _, prefix = dest.split(":::", 1)[-1].partition("/")
        opts = self.destination_options(fl)
        fields = log_format_fields(fl.get("LogFormat"))
        layout = S3Layout(bucket=bucket, account=self.clients.account(region), region=region, prefix=prefix,
                          hive=bool(opts.get("HiveCompatiblePartitions")), per_hour=bool(opts.get("PerHourPartition")),
                          file_format=opts.get("FileFormat") or "plain-text")
        encode = parquet if layout.file_format == "parquet" else gzip_text
        s3 = self.clients.client("s3", region)
        recs = [r for eni_recs in per_eni.values() for r in eni_recs]
        for window, window_recs in file_windows(recs, self.now()):
            for body, count in split_files(lambda part: encode(fields, part), window_recs, self.max_file_bytes):
                key = layout.object_key(window, fl["FlowLogId"], secrets.token_hex(4))
                try:
                    s3.put_object(Bucket=bucket, Key=key, Body=body)
                except Exception as exc:
                    if error_code(exc) not in ("NoSuchBucket", "AccessDenied"):
                        raise
                    out.error = f"bucket {bucket}: {error_code(exc)} (AWS would report DeliverLogsStatus FAILED)"
                    return out
                out.records += count
                out.target.append(key)
        return out


def traffic_matches(traffic_type: str, action: str | None) -> bool:
    """Whether a flow log of ``traffic_type`` (ALL / ACCEPT / REJECT) takes a record with ``action``."""
    return traffic_type == "ALL" or action in (None, "-") or action == traffic_type


def render(fields: Iterable[str], rec: Mapping[str, str]) -> str:
    """One record as a line of ``fields`` (absent values are ``-``, as AWS writes them)."""
    return " ".join(rec.get(f) or "-" for f in fields)


def start_ms(rec: Mapping[str, str], default: int) -> int:
    start = rec.get("start", "")
    return int(start) * 1000 if start.isdigit() else default


def file_time(rec: Mapping[str, str], default: float) -> float:
    """The time that names a record's S3 file: its ``end``, else its ``start``, else ``default``."""
    for name in ("end", "start"):
        value = rec.get(name) or ""
        if value.isdigit():
            return int(value)
    return default


def file_windows(recs: Iterable[dict[str, str]], default: float) -> list[tuple[datetime, list[dict[str, str]]]]:
    """The records grouped by the 5-minute window of their :func:`file_time`, oldest window first
    (each window's records in their given order)."""
    groups: dict[int, list[dict[str, str]]] = defaultdict(list)
    for rec in recs:
        t = int(file_time(rec, default))
        groups[t - t % FILE_WINDOW_SECONDS].append(rec)
    return [(datetime.fromtimestamp(w, tz=timezone.utc), groups[w]) for w in sorted(groups)]


def split_files(encode: Callable[[list[dict[str, str]]], bytes], recs: list[dict[str, str]],
                limit: int) -> list[tuple[bytes, int]]:
    """``recs`` encoded as files of at most ``limit`` bytes (one record alone may exceed it), as
    (body, record count). The common case, one file under the limit, encodes once."""
    body = encode(recs)
    if len(body) <= limit or len(recs) <= 1:
        return [(body, len(recs))]
    parts = -(-len(body) // limit) + 1          # one more: compressed sizes do not split evenly
    size = -(-len(recs) // parts)
    return [f for i in range(0, len(recs), size) for f in split_files(encode, recs[i:i + size], limit)]


def gzip_text(fields: tuple[str, ...], recs: list[dict[str, str]]) -> bytes:
    """A plain-text log file: the field-name header line, one line per record, gzip."""
    text = "\n".join([" ".join(fields), *(render(fields, r) for r in recs)]) + "\n"
    return gzip.compress(text.encode("utf-8"), compresslevel=GZIP_LEVEL, mtime=0)


def parquet(fields: tuple[str, ...], recs: list[dict[str, str]]) -> bytes:
    """The records as a Gzip-compressed Parquet file, with AWS's column names and types (INT_32 /
    INT_64 / STRING); ``-`` and values that are not numbers in a number column are NULL.

    DuckDB reads the rendered lines as text (one VARCHAR per field) and casts them: much faster
    than inserting Python values row by row."""
    import os
    import tempfile

    import duckdb

    from flowwatch.records import FIELDS

    types = {"INT_32": "INTEGER", "INT_64": "BIGINT"}
    specs = [FIELDS[f] for f in fields]
    raw = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(specs)))
    columns = ", ".join(f'TRY_CAST(c{i} AS {types[s.parquet_type]}) AS "{s.column}"' if s.parquet_type in types
                        else f'c{i} AS "{s.column}"' for i, s in enumerate(specs))
    with tempfile.TemporaryDirectory(prefix="flowwatch-parquet-") as tmp:
        lines, target = os.path.join(tmp, "records.txt"), os.path.join(tmp, "records.parquet")
        with open(lines, "w", encoding="utf-8") as fh:
            fh.writelines(render(fields, r) + "\n" for r in recs)
        con = duckdb.connect()
        try:
            con.execute(f"COPY (SELECT {columns} FROM read_csv('{lines}', delim=' ', header=false, quote='', "
                        f"escape='', nullstr='-', auto_detect=false, columns={{{raw}}})) "
                        f"TO '{target}' (FORMAT PARQUET, COMPRESSION GZIP)")
        finally:
            con.close()
        with open(target, "rb") as fh:
            return fh.read()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
