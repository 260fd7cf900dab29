"""The data plane of the local AWS: what AWS does with data, which moto (a control plane) does not.

It runs inside the local server process (``flowwatch.local.server``) and talks to moto only
through boto3 against that same server (``http://127.0.0.1:<port>``), never through moto's
internals. The server's WSGI middleware hands it three kinds of request after moto answered
them (``tap_*``), plus flowwatch's own routes:

* **Flow-log delivery** (``POST /_flowwatch/traffic``, :meth:`DataPlane.deliver`): the local
  "flow-log service". Given record lines in a known field order, it finds every ACTIVE flow log
  whose resource (ENI, its subnet or its VPC) covers each record's ``interface-id``, keeps the
  records its TrafficType takes (ACCEPT / REJECT / ALL), renders them in that flow log's
  LogFormat and delivers them as AWS does:
  CloudWatch Logs: one stream per ENI, ``<eni>-all`` (``-accept``/``-reject`` for those traffic
  types), event timestamp = the record's ``start``;
  S3: one gzip object per flow log and delivery, first line the field names, under
  ``[prefix/]AWSLogs/<account>/vpcflowlogs/<region>/<yyyy>/<mm>/<dd>/`` named
  ``<account>_vpcflowlogs_<region>_<flow-log-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz``
  (:class:`flowwatch.s3layout.S3Layout`); Parquet (``.log.parquet``, written with DuckDB), Hive and
  per-hour layouts when the flow log was created with those DestinationOptions. moto drops
  DestinationOptions, so the server keeps its own copy from the CreateFlowLogs request itself
  (:meth:`tap_create_flow_logs`), falling back to the ``flowwatch:s3-options`` tag the
  flow_logs step writes.
* **Metric filters** (:meth:`tap_put_log_events`, for every PutLogEvents moto accepted, whoever
  sent it): each metric filter of the log group is evaluated with :mod:`flowwatch.patterns` on
  the new events; per minute, matching events put their value (with dimensions and unit), and a
  minute with events but no match puts ``defaultValue`` once, as CloudWatch does.
* **Alarms** (a thread, every ``tick`` seconds and right after new metric data; or on demand,
  ``POST /_flowwatch/evaluate``): every metric alarm of every region the server has seen is
  evaluated with :mod:`flowwatch.local.alarms`; a new alarm is first set to INSUFFICIENT_DATA;
  a state change is set on the server (SetAlarmState) and the CloudWatch alarm JSON is published
  to the SNS topics of the new state's actions (moto fires no action). A state set from outside
  with SetAlarmState is published too, and holds until the next period boundary, as on AWS.
* **Inbox** (:meth:`tap_publish`, ``GET /_flowwatch/inbox``): every message moto accepted on an
  SNS topic, with the e-mail subscribers who would have received it and the e-mail body AWS
  would send them (the ``email`` member of a ``MessageStructure=json`` message).

It makes its own boto3 clients (not ``flowwatch.aws.Aws``, which is one region): it stands for
the AWS services of every region the server has seen, all on one session and one endpoint.

Time: ``now()`` is the wall clock plus an offset that ``POST /_flowwatch/clock`` advances
(fast-forward for tests: "five minutes later" without waiting). Record and metric timestamps
are the callers' own, so only alarm evaluation and S3 file times follow the offset.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flowwatch.errors import error_code
from flowwatch.local import alarms as rules
from flowwatch.records import PRESETS

log = logging.getLogger("flowwatch.local")

DEFAULT_FIELDS = PRESETS["v2"]   # AWS's default format
INBOX_LIMIT = 1000
WARM_SERVICES = ("ec2", "logs", "s3", "sts", "cloudwatch", "sns")
BATCH = 5000


@dataclass
class Tracked:
    """flowwatch's view of one alarm (moto's own initial state is wrong: "OK")."""

    state: str
    config: Any
    hold_until: float = 0.0


@dataclass
class Delivery:
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


class DataPlane:
    def __init__(self, endpoint: str = "", *, tick: float = 2.0) -> None:
        self.endpoint = endpoint
        self.tick = tick
        self.offset = 0.0
        self.regions: set[str] = set()
        self.inbox: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.s3_options: dict[str, dict[str, Any]] = {}
        self._alarms: dict[tuple[str, str], Tracked] = {}
        self._refused: set[tuple[str, str]] = set()
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: Any = None
        self._accounts: dict[str, str] = {}
        self._lock = threading.Lock()          # clients, inbox, regions
        self._eval_lock = threading.Lock()     # one evaluation at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- plumbing ------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += float(seconds)
        self._wake.set()
        return self.offset

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                import boto3

                from flowwatch.aws import retry_config

                if self._session is None:   # one session for every region: service models load once
                    self._session = boto3.session.Session()
                self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint, config=retry_config(self.endpoint),
                    aws_access_key_id="flowwatch-local", aws_secret_access_key="flowwatch-local")
            return self._clients[key]

    def account(self, region: str) -> str:
        if region not in self._accounts:
            self._accounts[region] = self.client("sts", region).get_caller_identity()["Account"]
        return self._accounts[region]

    def saw_region(self, region: str | None) -> None:
        if region and region not in self.regions:
            with self._lock:
                self.regions.add(region)

    def start(self, warm_region: str = "us-east-1") -> None:
        self._thread = threading.Thread(target=self._run, args=(warm_region,), name="flowwatch-dataplane",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self, warm_region: str) -> None:
        for service in WARM_SERVICES:   # load the service models now, not on the first delivery (~1 s)
            self.client(service, warm_region)
        while not self._stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.evaluate_alarms()
            except Exception:  # the loop must survive a bad alarm or a transient error
                log.exception("alarm evaluation failed")

    # ---- flow-log delivery ---------------------------------------------------------------
    def deliver(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Deliver flow-log records to every flow log that covers their ENI (see module doc)."""
        region = payload.get("region") or "us-east-1"
        self.saw_region(region)
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

        ec2 = self.client("ec2", region)
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
                taken = [r for r in recs if _traffic_matches(fl.get("TrafficType", "ALL"), r.get("action"))]
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
        logs = self.client("logs", region)
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
            events = sorted(({"timestamp": _start_ms(r, now_ms), "message": _render(fields, r)} for r in recs),
                            key=lambda e: e["timestamp"])
            for i in range(0, len(events), BATCH):
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:i + BATCH])
            out.records += len(events)
            out.target.append(stream)
        return out

    def _to_s3(self, region: str, fl: dict[str, Any], per_eni: dict[str, list[dict[str, str]]]) -> Delivery:
        from flowwatch.s3layout import S3Layout

        dest = fl.get("LogDestination") or ""
        out = Delivery(fl["FlowLogId"], "s3", dest)
        bucket, _, prefix = dest.split(":::", 1)[-1].partition("/")
        opts = self.destination_options(fl)
        fields = log_format_fields(fl.get("LogFormat"))
        layout = S3Layout(bucket=bucket, account=self.account(region), region=region, prefix=prefix,
                          hive=bool(opts.get("HiveCompatiblePartitions")), per_hour=bool(opts.get("PerHourPartition")),
                          file_format=opts.get("FileFormat") or "plain-text")
        recs = [r for eni_recs in per_eni.values() for r in eni_recs]
        when = datetime.fromtimestamp(self.now(), tz=timezone.utc)
        key = layout.object_key(when, fl["FlowLogId"], secrets.token_hex(4))
        if layout.file_format == "parquet":
            body = _parquet(fields, recs)
        else:
            text = "\n".join([" ".join(fields), *(_render(fields, r) for r in recs)]) + "\n"
            body = gzip.compress(text.encode("utf-8"), mtime=0)
        try:
            self.client("s3", region).put_object(Bucket=bucket, Key=key, Body=body)
        except Exception as exc:
            if error_code(exc) not in ("NoSuchBucket", "AccessDenied"):
                raise
            out.error = f"bucket {bucket}: {error_code(exc)} (AWS would report DeliverLogsStatus FAILED)"
            return out
        out.records = len(recs)
        out.target.append(key)
        return out

    def destination_options(self, fl: Mapping[str, Any]) -> dict[str, Any]:
        """DestinationOptions of an S3 flow log: describe (if moto ever returns them), then the
        copy taken from the CreateFlowLogs request, then the flowwatch tag."""
        if fl.get("DestinationOptions"):
            return dict(fl["DestinationOptions"])
        if fl["FlowLogId"] in self.s3_options:
            return self.s3_options[fl["FlowLogId"]]
        from flowwatch.s3layout import S3_OPTIONS_TAG, parse_s3_options_tag

        tags = {t["Key"]: t["Value"] for t in fl.get("Tags") or ()}
        return parse_s3_options_tag(tags.get(S3_OPTIONS_TAG))

    # ---- taps: requests moto accepted ----------------------------------------------------
    def tap_create_flow_logs(self, params: Mapping[str, str], response: bytes) -> None:
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

    def tap_put_log_events(self, region: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> int:
        """Evaluate the log group's metric filters on the accepted events; returns datapoints put."""
        events = list(request.get("logEvents") or ())
        rejected = response.get("rejectedLogEventsInfo") or {}
        lo = max(rejected.get("tooOldLogEventEndIndex", -1), rejected.get("expiredLogEventEndIndex", -1)) + 1
        hi = rejected.get("tooNewLogEventStartIndex", len(events))
        events = events[lo:hi]
        group = request.get("logGroupName")
        if not events or not group:
            return 0
        logs = self.client("logs", region)
        filters = [f for page in logs.get_paginator("describe_metric_filters").paginate(logGroupName=group)
                   for f in page["metricFilters"] if f.get("logGroupName", group) == group]
        put = 0
        for mf in filters:
            put += self._metric_filter(region, mf, events)
        if put:
            self._wake.set()
        return put

    def _metric_filter(self, region: str, mf: Mapping[str, Any], events: list[Mapping[str, Any]]) -> int:
        from flowwatch.patterns import compile_pattern

        try:
            pattern = compile_pattern(mf.get("filterPattern") or "")
            per_transformation = [(tr, _metric_data(pattern, tr, events)) for tr in mf.get("metricTransformations") or ()]
        except ValueError as exc:
            log.warning("metric filter %s skipped: %s", mf.get("filterName"), exc)
            return 0
        cw = self.client("cloudwatch", region)
        put = 0
        for tr, data in per_transformation:
            for i in range(0, len(data), 20):
                cw.put_metric_data(Namespace=tr["metricNamespace"], MetricData=data[i:i + 20])
            put += len(data)
        return put

    def tap_publish(self, region: str, params: Mapping[str, str], response: bytes) -> dict[str, Any] | None:
        """Keep the message for the inbox, with the e-mail subscribers it would have reached."""
        topic = params.get("TopicArn") or params.get("TargetArn")
        if not topic:
            return None
        message = params.get("Message", "")
        body, default = message, message
        if params.get("MessageStructure") == "json":
            try:
                parts = json.loads(message)
                default = parts.get("default", "")
                body = parts.get("email", default)
            except ValueError:
                pass
        subscribers: list[dict[str, str]] = []
        try:
            sns = self.client("sns", topic.split(":")[3] or region)
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
                subscribers += [{"protocol": s["Protocol"], "endpoint": s["Endpoint"]} for s in page["Subscriptions"]]
        except Exception as exc:  # the message was accepted; recipients are a nicety
            log.warning("inbox: cannot list subscribers of %s: %s", topic, exc)
        ids = [el.text for el in ET.fromstring(response).iter() if _local(el.tag) == "MessageId"]
        entry = {"id": ids[0] if ids else secrets.token_hex(8), "time": self.now(), "topic_arn": topic,
                 "subject": params.get("Subject"), "body": body, "message": default,
                 "recipients": [s["endpoint"] for s in subscribers if s["protocol"] in ("email", "email-json")],
                 "subscribers": subscribers}
        with self._lock:
            self.inbox.append(entry)
            del self.inbox[:-INBOX_LIMIT]
        return entry

    # ---- alarms --------------------------------------------------------------------------
    def evaluate_alarms(self) -> list[dict[str, Any]]:
        """Evaluate every metric alarm of every region seen; returns the state changes made."""
        changes: list[dict[str, Any]] = []
        with self._eval_lock:
            for region in sorted(self.regions):
                changes += self._evaluate_region(region)
        return changes

    def _evaluate_region(self, region: str) -> list[dict[str, Any]]:
        cw = self.client("cloudwatch", region)
        alarms = [a for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
                  for a in page.get("MetricAlarms", ())]
        seen = {(region, a["AlarmName"]) for a in alarms}
        for key in [k for k in self._alarms if k[0] == region and k not in seen]:
            del self._alarms[key]
        changes = []
        now = self.now()
        for alarm in alarms:
            key = (region, alarm["AlarmName"])
            config = alarm.get("AlarmConfigurationUpdatedTimestamp")
            tracked = self._alarms.get(key)
            if tracked is None:   # new: AWS starts it in INSUFFICIENT_DATA (moto says OK)
                tracked = self._alarms[key] = Tracked(rules.INSUFFICIENT, config)
                self._set_state(cw, alarm["AlarmName"], rules.INSUFFICIENT, "Unchecked: Initial alarm creation")
            elif config != tracked.config:   # updated: AWS keeps the state
                tracked.config = config
                if alarm.get("StateValue") != tracked.state:
                    self._set_state(cw, alarm["AlarmName"], tracked.state, alarm.get("StateReason") or "")
            elif alarm.get("StateValue") != tracked.state:   # SetAlarmState from outside: actions fire
                changes.append(self._changed(region, alarm, None, tracked.state, alarm["StateValue"],
                                             alarm.get("StateReason") or "", now))
                tracked.state = alarm["StateValue"]
                period = int(alarm.get("Period") or 60)
                tracked.hold_until = (now // period + 1) * period
                continue
            if now < tracked.hold_until:
                continue
            try:
                spec = rules.AlarmSpec.from_describe(alarm)
            except ValueError as exc:
                if key not in self._refused:
                    self._refused.add(key)
                    log.warning("alarm %s not evaluated: %s", alarm["AlarmName"], exc)
                continue
            starts = spec.period_starts(now)
            values = [self._datapoint(cw, spec, start) for start in starts]
            result = rules.evaluate(spec, values, tracked.state, starts)
            if result.state != tracked.state:
                # notify first, so that whoever sees the new state finds the message in the inbox
                changes.append(self._changed(region, alarm, spec, tracked.state, result.state, result.reason, now))
                self._set_state(cw, spec.name, result.state, result.reason, result.reason_data(spec, now))
                tracked.state = result.state
        return changes

    def _datapoint(self, cw: Any, spec: rules.AlarmSpec, start: int) -> float | None:
        """The alarm's statistic over one aligned period (one call per period: moto bins from the
        first datapoint, not from period boundaries)."""
        args: dict[str, Any] = {"Namespace": spec.namespace, "MetricName": spec.metric, "Period": spec.period,
                                "StartTime": datetime.fromtimestamp(start, tz=timezone.utc),
                                "EndTime": datetime.fromtimestamp(start + spec.period, tz=timezone.utc),
                                "Statistics": [spec.statistic],
                                "Dimensions": [{"Name": k, "Value": v} for k, v in spec.dimensions]}
        if spec.unit:
            args["Unit"] = spec.unit
        points = cw.get_metric_statistics(**args)["Datapoints"]
        return float(points[0][spec.statistic]) if points else None

    def _set_state(self, cw: Any, name: str, state: str, reason: str, data: Mapping[str, Any] | None = None) -> None:
        args: dict[str, Any] = {"AlarmName": name, "StateValue": state, "StateReason": reason[:1023] or state}
        if data is not None:
            args["StateReasonData"] = json.dumps(data)
        cw.set_alarm_state(**args)

    def _changed(self, region: str, alarm: Mapping[str, Any], spec: rules.AlarmSpec | None, old: str, new: str,
                 reason: str, now: float) -> dict[str, Any]:
        change = {"region": region, "alarm": alarm["AlarmName"], "old": old, "new": new, "reason": reason,
                  "time": now, "notified": []}
        self.history.append(change)
        del self.history[:-INBOX_LIMIT]
        if spec is None:
            try:
                spec = rules.AlarmSpec.from_describe(alarm)
            except ValueError:
                return change
        actions = {rules.ALARM: "AlarmActions", rules.OK: "OKActions",
                   rules.INSUFFICIENT: "InsufficientDataActions"}[new]
        if not alarm.get("ActionsEnabled", True):
            return change
        message = rules.notification(alarm, spec, old=old, new=new, reason=reason, when=now,
                                     account=self.account(region), region=region)
        for arn in alarm.get(actions) or ():
            if not arn.startswith("arn:aws:sns:"):
                log.info("alarm %s: action %s is not an SNS topic; not run locally", spec.name, arn)
                continue
            try:
                self.client("sns", arn.split(":")[3]).publish(
                    TopicArn=arn, Subject=rules.subject(message), Message=rules.sns_message(message),
                    MessageStructure="json")
                change["notified"].append(arn)
            except Exception as exc:  # AWS records a failed action in the history and goes on
                log.warning("alarm %s: publish to %s failed: %s", spec.name, arn, exc)
        return change

    def alarm_states(self) -> list[dict[str, Any]]:
        return [{"region": r, "alarm": n, "state": t.state} for (r, n), t in sorted(self._alarms.items())]


def _metric_data(pattern: Any, tr: Mapping[str, Any], events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """MetricData of one metric transformation for a batch of events, per minute: the values of the
    matching events (by dimensions and unit), or ``defaultValue`` once for a minute with events but
    no match."""
    by_minute: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for event in events:
        by_minute[int(event["timestamp"]) // 60000 * 60].append(event)
    data: list[dict[str, Any]] = []
    for minute, minute_events in sorted(by_minute.items()):
        series: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        default: dict[str, Any] | None = None
        for event in minute_events:
            got = pattern.metric(event["message"], tr)
            if got is None:
                continue
            if got.get("default"):
                default = got
                continue
            dims = tuple(sorted((got.get("dimensions") or {}).items()))
            series[(dims, got.get("unit"))].append(float(got["value"]))
        if not series and default is not None:
            series[((), default.get("unit"))].append(float(default["value"]))
        for (dims, unit), values in series.items():
            for i in range(0, len(values), 150):
                datum: dict[str, Any] = {"MetricName": tr["metricName"], "Values": values[i:i + 150],
                                         "Timestamp": datetime.fromtimestamp(minute, tz=timezone.utc)}
                if dims:
                    datum["Dimensions"] = [{"Name": k, "Value": v} for k, v in dims]
                if unit:
                    datum["Unit"] = unit
                data.append(datum)
    return data


def _traffic_matches(traffic_type: str, action: str | None) -> bool:
    return traffic_type == "ALL" or action in (None, "-") or action == traffic_type


def _render(fields: Iterable[str], rec: Mapping[str, str]) -> str:
    return " ".join(rec.get(f) or "-" for f in fields)


def _start_ms(rec: Mapping[str, str], default: int) -> int:
    start = rec.get("start", "")
    return int(start) * 1000 if start.isdigit() else default


def _parquet(fields: tuple[str, ...], recs: list[dict[str, str]]) -> bytes:
    """The records as a Parquet file, with AWS's column names and types (INT_32 / INT_64 / STRING)."""
    import os
    import tempfile

    import duckdb

    from flowwatch.records import FIELDS

    types = {"INT_32": "INTEGER", "INT_64": "BIGINT"}
    specs = [FIELDS[f] for f in fields]
    columns = ", ".join(f'"{s.column}" {types.get(s.parquet_type, "VARCHAR")}' for s in specs)
    rows = [tuple(_typed(r.get(s.name), s.parquet_type) for s in specs) for r in recs]
    with tempfile.TemporaryDirectory(prefix="flowwatch-parquet-") as tmp:
        path = os.path.join(tmp, "records.parquet")
        con = duckdb.connect()
        try:
            con.execute(f"CREATE TABLE t ({columns})")
            if rows:
                con.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in specs)})", rows)
            con.execute(f"COPY t TO '{path}' (FORMAT PARQUET)")
        finally:
            con.close()
        with open(path, "rb") as fh:
            return fh.read()


def _typed(value: str | None, parquet_type: str) -> Any:
    if value is None or value == "-":
        return None
    if parquet_type in ("INT_32", "INT_64"):
        try:
            return int(value)
        except ValueError:
            return None
    return value


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
