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

from flowwatch.console import plural, safe
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
         limit: int | None, poll: Poll | None = None, max_polls: int | None = None, output: str = "table") -> int:
    """Print the records of the last ``window`` (``since`` is its text, for messages); with ``follow``
    poll again every FOLLOW_INTERVAL s (``poll`` overrides it: tests pass a fake sleep) and show only
    records not shown yet. ``output``: ``table`` one compact line per record; ``json`` one JSON object per
    line (the record's parsed fields and ``message``, the raw line); ``csv`` the record's fields, one header."""
    from flowwatch.errors import aws_errors

    fmt = ctx.config.record_format
    parser = fmt.parser()
    columns = [c for c, _ in _fields(fmt)]
    if output == "csv":
        ctx.out.csv_row(columns)
    unparsed = 0
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
            if output == "json":
                fields = record._asdict() if record else dict.fromkeys(columns)
                ctx.out.json_line({**fields, "message": event["message"]})
            elif output == "csv":
                if record:
                    ctx.out.csv_row(list(record._asdict().values()))
                else:
                    unparsed += 1
            else:
                width = None if ctx.out.full_width else ctx.out.out.width
                if record:
                    ctx.out.rich(render(fmt, record, event, width=width))
                else:                         # not a record: the event's text, shown literally
                    ctx.out.untrusted(event["message"])
            shown += 1
            start_ms = max(start_ms, event["timestamp"])
            if limit and shown >= limit:
                return 0
        if not follow or (max_polls is not None and polls >= max_polls):
            break
    if unparsed:
        ctx.out.warn(f"{plural(unparsed, 'event')} not records of the configured format: not in the CSV")
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


def _fields(fmt: Any) -> list[tuple[str, Any]]:
    """The parsed record's fields (names as the parser gives them), from one parsed sample."""
    record = fmt.parser().parse_line(" ".join("-" for _ in fmt.fields))
    return list(record._asdict().items()) if record else [(f.replace("-", "_"), None) for f in fmt.fields]


def render(fmt: Any, record: Any, event: dict[str, Any], width: int | None = None) -> Any:
    """One record as a compact rich Text line: time, interface, src:port -> dst:port, protocol, volume, action.
    Within ``width`` (a terminal's; None: everything) it gives up, in this order, the alignment of the
    addresses, the interface id (shortened, then left out), the volume (compact, then left out), the date;
    an address is never cut."""
    from rich.text import Text

    get = record._asdict().get
    when = datetime.fromtimestamp((get("start") or event["timestamp"] / 1000), tz=timezone.utc)
    proto = get("protocol")
    name = PROTOCOLS.get(proto, str(proto) if proto is not None else "-")
    src = f"{get('srcaddr') or '-'}" + (f":{get('srcport')}" if get("srcport") else "")
    dst = f"{get('dstaddr') or '-'}" + (f":{get('dstport')}" if get("dstport") else "")
    action = get("action") or get("log_status") or "-"
    iface = str(get("interface_id") or "-")
    packets, size = get("packets") or 0, get("bytes") or 0
    # each part: its renderings, longest first; "" leaves the part out
    options = {
        "time": [f"{when:%Y-%m-%d %H:%M:%S}", f"{when:%H:%M:%S}"],
        "iface": [iface, *_short_ids(iface), ""],
        "flow": [f"{src:>15} -> {dst:<15}", f"{src} -> {dst}"],
        "proto": [f"{name:<4}", name],
        "volume": [f"{packets} pkt {size} B", f"{packets}p {_compact(size)}", ""],
        "action": [action],
    }
    styles = {"time": "dim", "proto": "cyan", "volume": "dim",
              "action": "bold red" if action == "REJECT" else "green" if action == "ACCEPT" else "yellow"}
    chosen = dict.fromkeys(options, 0)

    def line() -> list[tuple[str, str]]:
        return [(options[k][i], k) for k, i in chosen.items() if options[k][i]]

    for part in ("flow", "proto", "iface", "iface", "iface", "volume", "volume", "time"):
        if width is None or len(" ".join(t for t, _ in line())) <= width:
            break
        chosen[part] = min(chosen[part] + 1, len(options[part]) - 1)
    text = Text()
    for i, (part, key) in enumerate(line()):
        if i:
            text.append(" ")
        text.append(safe(part, markup=False), style=styles.get(key))
    return text


def _short_ids(ident: str) -> list[str]:
    """An id shortened to its kind and last digits ("eni-…4e5f67890", "eni-…67890"); none if already short."""
    kind, sep, digits = ident.partition("-")
    return [f"{kind}-…{digits[-n:]}" for n in (9, 5) if sep and len(digits) > n]


def _compact(n: int) -> str:
    """Bytes in three digits or fewer: 84B, 84K, 12M."""
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1000:
            return f"{value:.0f}{unit}"
        value /= 1000
    return f"{value:.0f}T"
