"""The data plane of the local AWS: what AWS does with data, which moto (a control plane) does not.

It runs inside the local server process (``flowwatch.local.server``) and talks to moto only
through boto3 against that same server (``http://127.0.0.1:<port>``), never through moto's
internals. This module is the small core; each emulated API has its own module. Map (module:
what AWS does there -> main class: entry points, and the route or tap of the server that calls them):

* ``flow_logs.py``: VPC flow-log delivery to CloudWatch Logs streams and S3 objects (gzip or
  Parquet, Hive/per-hour keys, DestinationOptions kept from CreateFlowLogs)
  -> :class:`~flowwatch.local.flow_logs.FlowLogService`: ``deliver`` (``POST /_flowwatch/traffic``),
  ``tap_create_flow_logs``.
* ``metric_filters.py``: CloudWatch Logs metric filters, PutLogEvents -> PutMetricData
  -> :class:`~flowwatch.local.metric_filters.MetricFilters`: ``tap_put_log_events``.
* ``alarm_state.py``: CloudWatch alarm evaluation and state (SetAlarmState, alarm actions -> SNS)
  -> :class:`~flowwatch.local.alarm_state.AlarmEvaluator`: ``evaluate`` (``POST /_flowwatch/evaluate``
  and the thread below), ``states``/``history`` (``GET /_flowwatch/alarms``).
  Metric-math alarms on ``ANOMALY_DETECTION_BAND`` and ``INSIGHT_RULE_METRIC`` too (the bands and the
  rule metrics from the two parts below).
* ``alarms.py``: the pure CloudWatch alarm rules, the notification JSON and e-mail text.
* ``anomaly_service.py``: anomaly detectors (PutAnomalyDetector, DescribeAnomalyDetectors,
  DeleteAnomalyDetector) and the band of a metric per period from its history
  -> :class:`~flowwatch.local.anomaly_service.AnomalyDetectors`: served, ``bands``; the model and
  the detector store are ``anomaly.py``'s (pure).
* ``insight_rules.py``: Contributor Insights: moto's insight rules evaluated on every PutLogEvents
  -> :class:`~flowwatch.local.insight_rules.InsightRules`: ``tap_put_log_events``, GetInsightRuleReport
  (served), ``metric`` (INSIGHT_RULE_METRIC), the PutInsightRule/Delete/Disable/EnableInsightRules taps;
  the rule engine is ``contributors.py``'s (pure).
* ``metric_data.py``: GetMetricData (served): ``ANOMALY_DETECTION_BAND`` and ``INSIGHT_RULE_METRIC``
  computed, every other query answered by moto -> :class:`~flowwatch.local.metric_data.MetricData`.
* ``alarm_history.py``: DescribeAlarmHistory (state changes, actions, configuration updates)
  -> :class:`~flowwatch.local.alarm_history.AlarmHistory`: the SetAlarmState/PutMetricAlarm/DeleteAlarms taps.
* ``athena.py``: named queries as AWS deletes them -> :class:`~flowwatch.local.athena.NamedQueries`
  (BatchGetNamedQuery, DeleteNamedQuery, DeleteWorkGroup's RecursiveDeleteOption).
* ``dashboards.py``: dashboard tags (PutDashboard's Tags, TagResource, UntagResource, ListTagsForResource
  on a dashboard ARN, DeleteDashboards) -> :class:`~flowwatch.local.dashboards.DashboardTags`.
* ``metrics.py``: ListMetrics, each metric once; ``flow_log_options.py``: DescribeFlowLogs'
  destinationOptions; ``metric_filters.py`` also serves TestMetricFilter and DescribeLogGroups'
  metricFilterCount.
* ``moto_clients``: clients whose requests (signed with :data:`MOTO_KEY`) go to moto unchanged,
  so an operation the data plane serves can still read moto's answer of it.
* ``insights_service.py``: CloudWatch Logs Insights over the kept log events
  -> :class:`~flowwatch.local.insights_service.InsightsService`: StartQuery, GetQueryResults, StopQuery,
  DescribeQueries (served).
* ``notifications.py``: SNS delivery made visible
  -> :class:`~flowwatch.local.notifications.Inbox`: ``tap_publish``, ``messages`` (``GET /_flowwatch/inbox``).
* ``loopback.py``: the boto3 clients of the server against itself -> ``LoopbackClients``.
* ``server.py``: the process; moto's WSGI app wrapped by the middleware that serves the routes
  and calls the taps above (and keeps S3 bucket policies).

Each part takes its inputs explicitly: the clients (a :class:`flowwatch.local.loopback.Clients`:
a client per service and region, the account id), the clock (``now``), a callback. This module
composes them in :class:`DataPlane`, with what they share:

* the clock (:class:`Clock`): the wall clock plus an offset that ``POST /_flowwatch/clock``
  advances (fast-forward for tests: "five minutes later" without waiting). Record and metric
  timestamps are the callers' own, so only alarm evaluation, S3 file times and inbox times
  follow the offset;
* the regions seen (every signed request's region, and each traffic report's): alarms are
  evaluated in each of them;
* the background thread: it loads the service models at start, then evaluates every alarm each
  ``tick`` seconds and right after new metric data (or after the clock moved).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flowwatch.local import metric_filters, metrics
from flowwatch.local.alarm_history import AlarmHistory
from flowwatch.local.alarm_state import AlarmEvaluator
from flowwatch.local.athena import NamedQueries
from flowwatch.local.dashboards import DashboardTags
from flowwatch.local.flow_log_options import complete_describe_flow_logs
from flowwatch.local.api import Api, json_request
from flowwatch.local.flow_logs import FlowLogService
from flowwatch.local.anomaly_service import AnomalyDetectors
from flowwatch.local.insight_rules import InsightRules
from flowwatch.local.insights_service import InsightsService
from flowwatch.local.metric_data import MetricData
from flowwatch.local.log_events import LogEvents
from flowwatch.local.loopback import LoopbackClients
from flowwatch.local.metric_filters import MetricFilters
from flowwatch.local.notifications import Inbox

log = logging.getLogger("flowwatch.local")

MOTO_KEY = "flowwatch-moto"
"""The access key of :attr:`DataPlane.moto_clients`: the server hands their requests to moto unchanged."""
WARM_SERVICES = ("ec2", "logs", "s3", "sts", "cloudwatch", "sns")


class Clock:
    """``wall()`` plus an offset that only moves forward by :meth:`advance`."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self.offset = 0.0

    def now(self) -> float:
        return self.wall() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += float(seconds)
        return self.offset


class DataPlane:
    """The parts of the data plane, on one clock, one set of clients and one alarm thread."""

    def __init__(self, endpoint: str = "", *, tick: float = 2.0, clock: Clock | None = None) -> None:
        self.tick = tick
        self.clock = clock or Clock()
        self.clients = LoopbackClients(endpoint)
        self.moto_clients = LoopbackClients(endpoint, key=MOTO_KEY)   # moto's own answers, past the data plane
        self.regions: set[str] = set()
        self.flow_logs = FlowLogService(self.clients, self.clock.now)
        self.metric_filters = MetricFilters(self.clients, on_data=self.wake)
        self.alarm_history = AlarmHistory(self.clock.now)
        self.anomaly_detectors = AnomalyDetectors(self.clients, self.clock.now)
        self.insight_rules = InsightRules(self.moto_clients, self.clock.now, on_data=self.wake)
        self.metric_data = MetricData(self.moto_clients, self.anomaly_detectors, self.insight_rules)
        self.alarms = AlarmEvaluator(self.clients, self.clock.now, self.alarm_history,
                                     detectors=self.anomaly_detectors, insights=self.insight_rules)
        self.named_queries = NamedQueries(self.moto_clients)
        self.dashboard_tags = DashboardTags(self.clients, self.moto_clients)
        self.inbox = Inbox(self.clients, self.clock.now)
        self.log_events = LogEvents(self.clients, self.clock.now)
        self.insights = InsightsService(self.log_events, self.clock.now)
        self.api = self._operations()
        self._lock = threading.Lock()          # regions
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return self.clients.endpoint

    @endpoint.setter
    def endpoint(self, url: str) -> None:
        self.clients.endpoint = self.moto_clients.endpoint = url

    def _operations(self) -> Api:
        """What each part serves or completes (see flowwatch.local.api), in the order it runs."""
        api = Api()
        events, filters = self.log_events, self.metric_filters
        api.after("logs:PutLogEvents", events.after_put_log_events)
        api.after("logs:PutLogEvents",
                  lambda region, request, body: filters.tap_put_log_events(region, request, json_request(body)))
        api.after("logs:DeleteLogGroup", events.after_delete_log_group)
        api.after("logs:DeleteLogStream", events.after_delete_log_stream)
        api.serve("logs:FilterLogEvents", events.filter_log_events)
        api.after("sns:Publish", self.inbox.tap_publish)
        api.after("ec2:CreateFlowLogs", lambda region, params, body: self.flow_logs.tap_create_flow_logs(params, body))
        api.after("ec2:DescribeFlowLogs",
                  lambda region, params, body: complete_describe_flow_logs(body, self.flow_logs.destination_options))
        api.serve("logs:TestMetricFilter", metric_filters.serve_test_metric_filter)
        api.after("logs:DescribeLogGroups",
                  lambda region, request, body: metric_filters.complete_describe_log_groups(self.clients, region, body))
        history, queries = self.alarm_history, self.named_queries
        api.serve("monitoring:DescribeAlarmHistory", history.describe)
        api.after("monitoring:SetAlarmState", history.after_set_alarm_state)
        api.after("monitoring:PutMetricAlarm", history.after_put_metric_alarm)
        api.after("monitoring:DeleteAlarms", history.after_delete_alarms)
        api.serve("monitoring:ListMetrics", lambda region, request: metrics.list_metrics(self.moto_clients, region, request))
        # dashboard tags (dashboards.py); other ARNs' tags are moto's, read through moto_clients
        boards = self.dashboard_tags
        api.after("monitoring:PutDashboard", boards.after_put_dashboard)
        api.after("monitoring:DeleteDashboards", boards.after_delete_dashboards)
        api.serve("monitoring:TagResource", boards.tag_resource)
        api.serve("monitoring:UntagResource", boards.untag_resource)
        api.serve("monitoring:ListTagsForResource", boards.list_tags_for_resource)
        api.serve("athena:GetNamedQuery", queries.get_named_query)
        api.serve("athena:BatchGetNamedQuery", queries.batch_get_named_query)
        api.serve("athena:DeleteNamedQuery", queries.delete_named_query)
        api.serve("athena:DeleteWorkGroup", queries.delete_work_group)
        api.after("athena:ListNamedQueries", queries.after_list_named_queries)
        # Logs Insights (insights_service.py): queries over the same copy of the events
        insights = self.insights
        api.serve("logs:StartQuery", insights.start_query)
        api.serve("logs:GetQueryResults", insights.get_query_results)
        api.serve("logs:StopQuery", insights.stop_query)
        api.serve("logs:DescribeQueries", insights.describe_queries)
        # anomaly detectors (anomaly_service.py: anomaly.DetectorStore per region, StateValue from training)
        detectors = self.anomaly_detectors
        api.serve("monitoring:PutAnomalyDetector", detectors.put)
        api.serve("monitoring:DescribeAnomalyDetectors", detectors.describe)
        api.serve("monitoring:DeleteAnomalyDetector", detectors.delete)
        # Contributor Insights (insight_rules.py): moto's rules, evaluated on the events as they arrive
        insight_rules = self.insight_rules
        api.after("logs:PutLogEvents", lambda region, request, body: insight_rules.tap_put_log_events(
            region, request, json_request(body)))
        for op in ("PutInsightRule", "DeleteInsightRules", "DisableInsightRules", "EnableInsightRules"):
            api.after(f"monitoring:{op}", insight_rules.mark_stale)
        api.serve("monitoring:GetInsightRuleReport", insight_rules.get_insight_rule_report)
        # GetMetricData (metric_data.py): bands and INSIGHT_RULE_METRIC computed, any other request to moto
        api.serve("monitoring:GetMetricData", self.metric_data.get_metric_data)
        return api

    def saw_region(self, region: str | None) -> None:
        if region and region not in self.regions:
            with self._lock:
                self.regions.add(region)

    def advance(self, seconds: float) -> float:
        """Move the clock forward; the alarm thread evaluates at once. Returns the new offset."""
        offset = self.clock.advance(seconds)
        self.wake()
        return offset

    def evaluate_alarms(self) -> list[dict[str, Any]]:
        """Evaluate every metric alarm of every region seen; returns the state changes made."""
        with self._lock:
            regions = sorted(self.regions)
        return self.alarms.evaluate(regions)

    # ---- the alarm thread ----------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

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
            self.clients.client(service, warm_region)
        # not a Poll: the pause ends early on wake() (new metric data, clock moved, stop)
        while not self._stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.evaluate_alarms()
            except Exception:  # the loop must survive a bad alarm or a transient error
                log.exception("alarm evaluation failed")
