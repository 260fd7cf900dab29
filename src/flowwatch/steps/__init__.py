"""The ordered steps of the stack (DESIGN.md "The stack"); ``down`` runs them backwards.

``STEPS`` are what ``up`` converges, in order (later steps read the outputs of earlier ones; alarms come after
the metric filters, anomaly detectors and Contributor Insights rules they read, so ``down`` removes them first). ``ALL_STEPS``
adds ``cleanup`` (what simulate-reject launched), which only ``down`` and ``status`` run. Each step is
annotated with its ``Step[Spec, Seen]``, so mypy checks every verb of every step against the contract.
"""

from __future__ import annotations

from typing import Any

from flowwatch.steps.alarm import AlarmSeen, AlarmSpec, AlarmStep
from flowwatch.steps.anomaly_detector import AnomalyDetectorStep, DetectorKey, DetectorSeen, DetectorsSpec
from flowwatch.steps.athena import AthenaSeen, AthenaSpec, AthenaStep
from flowwatch.steps.base import Step
from flowwatch.steps.bucket import BucketSeen, BucketSpec, BucketStep
from flowwatch.steps.cleanup import CleanupSeen, CleanupStep
from flowwatch.steps.dashboard import DashboardSeen, DashboardSpec, DashboardStep
from flowwatch.steps.delivery_role import DeliveryRoleSeen, DeliveryRoleStep, RoleSpec
from flowwatch.steps.flow_logs import FlowLogsSeen, FlowLogsSpec, FlowLogsStep
from flowwatch.steps.igw import IgwSeen, IgwSpec, IgwStep
from flowwatch.steps.insight_rule import InsightRuleStep, InsightSeen, InsightSpec
from flowwatch.steps.log_group import LogGroupSeen, LogGroupSpec, LogGroupStep
from flowwatch.steps.metric_filter import FilterSeen, FilterSpec, MetricFilterStep
from flowwatch.steps.nacl import NaclSeen, NaclSpec, NaclStep
from flowwatch.steps.sns import SnsSeen, SnsSpec, SnsStep
from flowwatch.steps.subnet import SubnetSeen, SubnetSpec, SubnetStep
from flowwatch.steps.vpc import VpcSeen, VpcSpec, VpcStep

VPC: Step[VpcSpec, VpcSeen] = VpcStep()
SUBNET: Step[SubnetSpec, SubnetSeen] = SubnetStep()
IGW: Step[IgwSpec, IgwSeen] = IgwStep()
LOG_GROUP: Step[LogGroupSpec, LogGroupSeen] = LogGroupStep()
DELIVERY_ROLE: Step[RoleSpec, DeliveryRoleSeen] = DeliveryRoleStep()
BUCKET: Step[BucketSpec, BucketSeen] = BucketStep()
FLOW_LOGS: Step[FlowLogsSpec, FlowLogsSeen] = FlowLogsStep()
NACL: Step[NaclSpec, NaclSeen] = NaclStep()
SNS: Step[SnsSpec, SnsSeen] = SnsStep()
METRIC_FILTER: Step[dict[str, FilterSpec], dict[str, FilterSeen]] = MetricFilterStep()
ANOMALY_DETECTOR: Step[DetectorsSpec, dict[DetectorKey, DetectorSeen]] = AnomalyDetectorStep()
INSIGHT_RULE: Step[dict[str, InsightSpec], dict[str, InsightSeen]] = InsightRuleStep()
ALARM: Step[dict[str, AlarmSpec], dict[str, AlarmSeen]] = AlarmStep()
DASHBOARD: Step[DashboardSpec, DashboardSeen] = DashboardStep()
ATHENA: Step[AthenaSpec, AthenaSeen] = AthenaStep()
CLEANUP: Step[None, CleanupSeen] = CleanupStep()

STEPS: tuple[Step[Any, Any], ...] = (VPC, SUBNET, IGW, LOG_GROUP, DELIVERY_ROLE, BUCKET, FLOW_LOGS, NACL, SNS,
                                     METRIC_FILTER, ANOMALY_DETECTOR, INSIGHT_RULE, ALARM, DASHBOARD, ATHENA)
# cleanup sits before nacl's rule, subnet and VPC in reverse order: down terminates the instance first
ALL_STEPS: tuple[Step[Any, Any], ...] = (*STEPS[:STEPS.index(NACL) + 1], CLEANUP, *STEPS[STEPS.index(NACL) + 1:])
STEP_NAMES = tuple(s.name for s in STEPS)
ALL_STEP_NAMES = tuple(s.name for s in ALL_STEPS)
