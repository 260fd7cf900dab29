"""The ordered steps of the stack (DESIGN.md "The stack"); ``down`` runs them backwards."""

from __future__ import annotations

from flowwatch.steps.alarm import AlarmStep
from flowwatch.steps.athena import AthenaStep
from flowwatch.steps.flow_logs import FlowLogsStep
from flowwatch.steps.igw import IgwStep
from flowwatch.steps.metric_filter import MetricFilterStep
from flowwatch.steps.nacl import NaclStep
from flowwatch.steps.sns import SnsStep
from flowwatch.steps.subnet import SubnetStep
from flowwatch.steps.traffic import TrafficStep
from flowwatch.steps.vpc import VpcStep

STEPS = (VpcStep(), SubnetStep(), IgwStep(), FlowLogsStep(), NaclStep(), TrafficStep(), SnsStep(),
         MetricFilterStep(), AlarmStep(), AthenaStep())
STEP_NAMES = tuple(s.name for s in STEPS)
