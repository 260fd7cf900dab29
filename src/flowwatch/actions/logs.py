"""`flowwatch logs tail`: the stack's flow-log records from CloudWatch Logs, parsed and coloured.

The filter pattern (`--rejects` is generated from the record format) is sent to FilterLogEvents AND
applied locally with flowwatch.patterns, so the output is right even where the endpoint does not
evaluate patterns (moto returns every event for a space-delimited pattern).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from flowwatch.errors import ConfigError
from flowwatch.model import Context
from flowwatch.polling import Poll

PROTOCOLS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6",
             132: "SCTP"}
FOLLOW_INTERVAL = 5.0


def pattern_for(fmt: Any, *, rejects: bool, pattern_text: str | None) -> tuple[str | None, Any]:
    """(the filter pattern to send, the compiled pattern to apply locally); ConfigError (exit 2) if invalid.
    ``--rejects`` is the pattern of ``action = REJECT`` in the record format ``fmt``."""
    from flowwatch.patterns import PatternError, compile_pattern

    if rejects:
        pattern_text = fmt.filter_pattern({"action": "REJECT"})
    try:
        return pattern_text, (compile_pattern(pattern_text) if pattern_text else None)
    except PatternError as exc:
        raise ConfigError(f"--pattern: {exc}") from None


def tail(ctx: Context, *, since: str, window: timedelta, follow: bool, pattern_text: str | None, pattern: Any,
         limit: int | None, poll: Poll | None = None, max_polls: int | None = None) -> int:
    """Print the records of the last ``window`` (``since`` is its text, for messages); with ``follow``
    poll again every FOLLOW_INTERVAL s (``poll`` overrides it: tests pass a fake sleep) and show only
    records not shown yet."""
    from flowwatch.errors import aws_errors

    fmt = ctx.config.record_format
    parser = fmt.parser()
    start_ms = int((time.time() - window.total_seconds()) * 1000)
    seen_ids: set[str] = set()
    shown = 0
    poll = poll or Poll(None, interval=FOLLOW_INTERVAL, max_interval=FOLLOW_INTERVAL)
    for polls, _ in enumerate(poll.ticks(), start=1):
        with aws_errors("logs"):
            events = list(_events(ctx.aws.logs, ctx.log_group, start_ms, pattern_text))
        for event in events:
            if event["eventId"] in seen_ids or (pattern and not pattern.matches(event["message"])):
                continue
            seen_ids.add(event["eventId"])
            record = parser.parse_line(event["message"])
            ctx.out.rich(render(fmt, record, event) if record else event["message"])
            shown += 1
            start_ms = max(start_ms, event["timestamp"])
            if limit and shown >= limit:
                return 0
        if not follow or (max_polls is not None and polls >= max_polls):
            break
    if not shown:
        ctx.out.info(f"no flow-log records in {ctx.log_group} for the last {since}"
                     f"{' matching the pattern' if pattern_text else ''}")
    return 0


def _events(logs: Any, group: str, start_ms: int, pattern_text: str | None) -> Iterator[dict[str, Any]]:
    args: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "interleaved": True}
    if pattern_text:
        args["filterPattern"] = pattern_text
    for page in logs.get_paginator("filter_log_events").paginate(**args):
        yield from page.get("events", [])


def render(fmt: Any, record: Any, event: dict[str, Any]) -> Any:
    """One record as a rich Text line: time, interface, src:port -> dst:port, protocol, volume, action."""
    from rich.text import Text

    get = record._asdict().get
    when = datetime.fromtimestamp((get("start") or event["timestamp"] / 1000), tz=timezone.utc)
    proto = get("protocol")
    name = PROTOCOLS.get(proto, str(proto) if proto is not None else "-")
    src = f"{get('srcaddr') or '-'}" + (f":{get('srcport')}" if get("srcport") else "")
    dst = f"{get('dstaddr') or '-'}" + (f":{get('dstport')}" if get("dstport") else "")
    action = get("action") or get("log_status") or "-"
    text = Text()
    text.append(f"{when:%Y-%m-%d %H:%M:%S} ", style="dim")
    text.append(f"{get('interface_id') or '-':<22} ")
    text.append(f"{src:>21} -> {dst:<21} ")
    text.append(f"{name:<6} ", style="cyan")
    text.append(f"{get('packets') or 0:>5} pkt {get('bytes') or 0:>8} B ", style="dim")
    text.append(action, style="bold red" if action == "REJECT" else "green" if action == "ACCEPT" else "yellow")
    return text
