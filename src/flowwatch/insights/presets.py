"""The Logs Insights presets of `flowwatch logs insights`, generated against the stack's record format.

Each preset is written once over the names Logs Insights discovers in default-format flow logs
(``srcAddr``, ``dstPort``, ``action``, ... see ``fields``). Logs Insights discovers those names for the
default format only, so for any other record format the query starts with a ``parse`` of ``@message``
into the same names (``tcp-flags`` -> ``tcpFlags`` for fields beyond version 2): one text per preset,
right for every format. A preset that needs a field the format lacks is refused (exit 2) before any
AWS call.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowwatch.errors import UsageError
from flowwatch.insights.fields import insights_name

if TYPE_CHECKING:
    from flowwatch.records import RecordFormat


@dataclass(frozen=True)
class InsightsPreset:
    name: str
    description: str
    needs: tuple[str, ...]          # flow-log fields, AWS's names
    body: str                       # the query over the discovered names, without its limit
    limit: int | None = 20          # None: the preset has no limit of its own (a time series)


PRESETS: tuple[InsightsPreset, ...] = (
    InsightsPreset("rejected-sources", "Sources with the most REJECTed flows.", ("srcaddr", "action"),
                   'filter action = "REJECT" | stats count(*) as rejects by srcAddr | sort rejects desc'),
    InsightsPreset("top-talkers", "Source -> destination pairs by bytes sent.",
                   ("srcaddr", "dstaddr", "bytes", "packets"),
                   "stats sum(bytes) as bytes, sum(packets) as packets, count(*) as flows by srcAddr, dstAddr"
                   " | sort bytes desc"),
    InsightsPreset("rejected-ports", "Destination ports and protocols of REJECTed flows.",
                   ("dstport", "protocol", "action"),
                   'filter action = "REJECT" | stats count(*) as rejects, count_distinct(srcAddr) as sources'
                   " by dstPort, protocol | sort rejects desc"),
    InsightsPreset("by-interface", "Flows, packets and bytes per network interface and action.",
                   ("interface-id", "packets", "bytes", "action"),
                   "stats count(*) as flows, sum(packets) as packets, sum(bytes) as bytes by interfaceId, action"
                   " | sort flows desc"),
    InsightsPreset("rejects-over-time", "REJECTed flows per 5 minutes.", ("action",),
                   'filter action = "REJECT" | stats count(*) as rejects by bin(5m) as window | sort window asc',
                   limit=None),
    InsightsPreset("ssh-rdp", "Flows to SSH (22) and RDP (3389), by source and action.",
                   ("srcaddr", "dstport", "action"),
                   "filter dstPort in [22, 3389] | stats count(*) as flows by srcAddr, dstPort, action"
                   " | sort flows desc"),
    InsightsPreset("recent-rejects", "The latest REJECTed flows, one per line.",
                   ("interface-id", "srcaddr", "srcport", "dstaddr", "dstport", "protocol", "action"),
                   'filter action = "REJECT" | fields @timestamp, interfaceId, srcAddr, srcPort, dstAddr, dstPort,'
                   " protocol, action | sort @timestamp desc", limit=50),
)

BY_NAME = {p.name: p for p in PRESETS}


def preset(name: str) -> InsightsPreset:
    found = BY_NAME.get(name)
    if found is None:
        close = difflib.get_close_matches(name, BY_NAME, n=1)
        raise UsageError(f"unknown Logs Insights preset {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                         hint="`flowwatch logs insights list` shows the presets; a query of your own goes in quotes")
    return found


def build(chosen: InsightsPreset, fmt: "RecordFormat", *, limit: int | None = None) -> str:
    """The query of ``chosen`` for records in ``fmt``, ending in ``limit N`` (the preset's own by default)."""
    missing = [f for f in chosen.needs if f not in fmt]
    if missing:
        raise UsageError(f"preset {chosen.name} needs the flow-log field{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)}, not in the configured record format",
                         hint="add them to flow_logs.format, or write the query yourself")
    parts = [parse_command(fmt)] if not is_default(fmt) else []
    parts.append(chosen.body)
    count = limit or chosen.limit
    if count:
        parts.append(f"limit {count}")
    return " | ".join(p for p in parts if p)


def is_default(fmt: "RecordFormat") -> bool:
    from flowwatch.records import PRESETS as FORMATS

    return tuple(fmt.fields) == FORMATS["v2"]


def parse_command(fmt: "RecordFormat") -> str:
    """``parse @message "* * ..." as ...``: a record of ``fmt`` into the Logs Insights names."""
    stars = " ".join("*" for _ in fmt.fields)
    return f'parse @message "{stars}" as ' + ", ".join(insights_name(f) for f in fmt.fields)
