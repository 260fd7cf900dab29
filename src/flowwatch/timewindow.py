"""Durations and time windows given on the command line (`--since 10m`, `--from/--to` ISO-8601), in UTC."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from flowwatch.errors import UsageError

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_RE = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str, *, option: str = "--since") -> timedelta:
    match = DURATION_RE.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{option}: {text!r} is not a duration; use a number and a unit s, m, h, d or w "
                         "(e.g. 30s, 10m, 2h, 7d)")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def parse_time(text: str, *, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a time; use ISO-8601 like 2026-11-27T10:00 or "
                         "2026-11-27T10:00:00Z (UTC when no offset)") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
