"""Deterministic resource names and the standard tags, so a later run finds everything again.

Names default to ``flowwatch-<stack>-<kind>`` (Glue: ``flowwatch_<stack>``); any can be overridden
with ``names.<kind>`` in the config. Every taggable resource carries ``flowwatch:stack=<stack>``,
``flowwatch:step=<step>`` and ``Name=<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STACK_TAG = "flowwatch:stack"
STEP_TAG = "flowwatch:step"

DEFAULT_KINDS = {
    "vpc": "vpc", "subnet": "public-subnet", "igw": "igw", "nacl": "nacl", "log_group": "flow-logs",
    "role": "flow-logs-role", "flow_log_cwl": "flow-log-cwl", "flow_log_s3": "flow-log-s3",
    "topic": "alerts", "workgroup": "athena", "instance": "traffic", "security_group": "traffic-sg",
}


@dataclass(frozen=True)
class Names:
    stack: str
    overrides: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_config(cls, config: Any) -> "Names":
        return cls(config.stack, tuple(sorted(config.names.items())))

    def of(self, kind: str) -> str:
        override = dict(self.overrides).get(kind)
        if override:
            return override
        if kind == "database":
            return f"flowwatch_{self.stack.replace('-', '_')}"
        if kind == "table":
            return "flow_logs"
        if kind == "log_group":
            return f"/flowwatch/{self.stack}/flow-logs"
        return f"flowwatch-{self.stack}-{DEFAULT_KINDS[kind]}"

    def bucket(self, account: str, region: str) -> str:
        """Bucket names are global: the default includes account and region."""
        return dict(self.overrides).get("bucket") or f"flowwatch-{self.stack}-{account}-{region}"

    def dashboard(self, region: str) -> str:
        """Dashboards are global to the account (not regional): the default includes the region, so stack
        ``lab`` in us-east-1 and stack ``lab`` in eu-west-1 never share one."""
        return dict(self.overrides).get("dashboard") or f"flowwatch-{self.stack}-{region}"

    def metric_filter(self, rule: str) -> str:
        return f"flowwatch-{self.stack}-{rule}"

    def alarm(self, rule: str) -> str:
        return f"flowwatch-{self.stack}-{rule}"

    def insight_rule(self, rule: str) -> str:
        """A Contributor Insights rule (1-128 characters; a rule name is at most 40, a stack 24)."""
        return f"flowwatch-{self.stack}-{rule}"


def tags(stack: str, step: str, name: str) -> list[dict[str, str]]:
    return [{"Key": STACK_TAG, "Value": stack}, {"Key": STEP_TAG, "Value": step}, {"Key": "Name", "Value": name}]


def tag_spec(resource_type: str, stack: str, step: str, name: str) -> list[dict[str, Any]]:
    """EC2 TagSpecifications: tagged at creation, never in a follow-up call."""
    return [{"ResourceType": resource_type, "Tags": tags(stack, step, name)}]


def tag_filters(stack: str, step: str) -> list[dict[str, Any]]:
    return [{"Name": f"tag:{STACK_TAG}", "Values": [stack]}, {"Name": f"tag:{STEP_TAG}", "Values": [step]}]


def tag_dict(stack: str, step: str, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags(stack, step, name)}
