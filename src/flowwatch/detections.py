"""The built-in detections that ``alerts.detections`` turns on by name (DESIGN.md "Detections").

Each is an alert rule like the others once expanded (``flowwatch up --dry-run`` shows it); every knob but
``kind`` can be overridden by listing it as a mapping: ``- {name: top-rejected-sources, threshold: 50}``.
The defaults suit a small VPC (a handful of instances, a few hundred flow records a minute):

* ``rejected-spike`` (anomaly): rejected flows per 5 minutes outside their usual band (width 2).
* ``top-rejected-sources`` (contributors): one source rejected 25 times in 5 minutes (a scanner).
* ``ssh-rdp-probe`` (contributors): one source sending 10 flows in 5 minutes to SSH (22) or RDP (3389) on the
  VPC's addresses. Contributor Insights filters have no "does not start with", so a source inside the VPC
  counts too; GuardDuty's SSH/RDP brute-force findings look at the same traffic.
* ``egress-spike`` (anomaly): bytes sent from the VPC's addresses to addresses outside it, per 5 minutes,
  outside their usual band (width 3: egress is burstier than rejects).

``vpc`` in a match stands for the stack VPC's CIDR block (flowwatch.matching).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

BUILTIN: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType({
    "rejected-spike": MappingProxyType({"kind": "anomaly", "match": {"action": "REJECT"}, "band": 2, "period": 300}),
    "top-rejected-sources": MappingProxyType({"kind": "contributors", "match": {"action": "REJECT"},
                                              "keys": ["srcaddr"], "threshold": 25, "period": 300}),
    "ssh-rdp-probe": MappingProxyType({"kind": "contributors", "match": {"dstport": [22, 3389], "dstaddr": "vpc"},
                                       "keys": ["srcaddr"], "threshold": 10, "period": 300}),
    "egress-spike": MappingProxyType({"kind": "anomaly", "match": {"srcaddr": "vpc", "dstaddr": "!=vpc"},
                                      "value": "bytes", "band": 3, "period": 300}),
})


def definition(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rule mapping of built-in ``name`` with ``overrides`` applied (KeyError: not a built-in;
    ValueError: an override tries to change ``kind``)."""
    base = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in BUILTIN[name].items()}
    overrides = dict(overrides or {})
    if "kind" in overrides and overrides["kind"] != base["kind"]:
        raise ValueError(f"{name} is {'an' if base['kind'] == 'anomaly' else 'a'} {base['kind']} detection; its kind cannot change (write your own rule "
                         "under alerts.rules instead)")
    if "pattern" in overrides:
        base.pop("match", None)
    return {"name": name, **base, **overrides}
