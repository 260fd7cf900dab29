"""Durations and time windows given on the command line, in UTC: ``--since 90m|1h|2d|1w`` and
``--from``/``--to`` (ISO-8601), for ``logs tail`` and ``query``.

A window is a half-open UTC interval ``[start, end)``. The query presets turn it into two predicates
(see ``query.presets.window_conditions``):

* a partition predicate on ``dt`` (``dt BETWEEN lo AND hi``), so Athena reads only the
  partitions of the window and the local engine lists and opens only their files;
* a record-time predicate on ``start`` (``start >= <from> AND start < <to>``, Unix seconds).

The partition range reaches :data:`PARTITION_SLACK` past the window's end: a record lands in
the file (and partition) of the 5-minute delivery window of its *end* time, which is up to one
aggregation interval (at most 10 minutes) after its start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from flowwatch.errors import UsageError, shown

if TYPE_CHECKING:
    from flowwatch.s3layout import S3Layout

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_RE = re.compile(r"^(\d{1,15})([smhdw])$")
#: The longest window a command reads: 10 years (CloudWatch Logs keeps records at most 3653 days).
MAX_WINDOW = timedelta(days=3653)
#: The times --from/--to may name (a flow log has no record before 1970; far dates overflow the calendar).
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)


def parse_duration(text: str, *, option: str = "--since") -> timedelta:
    match = DURATION_RE.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{option}: {shown(text)} is not a duration; use a number and a unit s, m, h, d or w "
                         "(e.g. 30s, 10m, 2h, 7d)")
    count, unit = int(match.group(1)), match.group(2)
    seconds = count * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    if seconds > MAX_WINDOW.total_seconds():
        raise UsageError(f"{option}: {shown(text)} is longer than 10 years; allowed: 1s up to 3653d "
                         "(521w, 87672h)")
    return timedelta(**{UNITS[unit]: count})


def parse_time(text: str, *, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise UsageError(f"{option}: {shown(text)} is not a time; use ISO-8601 like 2026-11-27T10:00 or "
                         "2026-11-27T10:00:00Z (UTC when no offset)") from None
    if not EARLIEST <= value < LATEST:
        raise UsageError(f"{option}: {shown(text)} is out of range; allowed: from {EARLIEST:%Y-%m-%d} to before "
                         f"{LATEST:%Y-%m-%d} (UTC)")
    return value

#: How far past the window's end a record that started inside it can be delivered.
PARTITION_SLACK = timedelta(minutes=15)


@dataclass(frozen=True)
class TimeWindow:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    @property
    def start_epoch(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_epoch(self) -> int:
        return int(self.end.timestamp())

    def partition_range(self, layout: "S3Layout") -> tuple[str, str]:
        """Inclusive ``dt`` bounds of the partitions that can hold the window's records."""
        return layout.dt_range(self.start, self.end + PARTITION_SLACK)

    def partition_prefixes(self, layout: "S3Layout") -> list[str]:
        """The S3 folders of those partitions, oldest first."""
        return layout.partition_prefixes(self.start, self.end + PARTITION_SLACK)

    def describe(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M:%S} to {self.end:%Y-%m-%d %H:%M:%S} UTC"


def resolve(*, since: str | None = None, from_: str | None = None, to: str | None = None,
            now: datetime | None = None) -> TimeWindow | None:
    """The window the options describe, or None (no time restriction). UsageError on bad input."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if since is not None:
        if from_ is not None or to is not None:
            raise UsageError("--since excludes --from/--to: give one or the other")
        return TimeWindow(now - parse_duration(since, option="--since"), now)
    if from_ is None:
        if to is not None:
            raise UsageError("--to needs --from (or use --since)")
        return None
    start = parse_time(from_, option="--from")
    end = parse_time(to, option="--to") if to is not None else now
    if end <= start:
        raise UsageError(f"the window is empty: --to ({end:%Y-%m-%dT%H:%M:%SZ}) is not after "
                         f"--from ({start:%Y-%m-%dT%H:%M:%SZ})")
    if end - start > MAX_WINDOW:
        raise UsageError(f"the window from --from ({start:%Y-%m-%dT%H:%M:%SZ}) to --to ({end:%Y-%m-%dT%H:%M:%SZ}) "
                         "is longer than 10 years; allowed: at most 3653 days")
    return TimeWindow(start, end)
