"""The one polling helper: every wait in flowwatch (AWS eventual consistency, Athena queries, the
alarm watch of simulate-reject, the local server's start, ``logs tail --follow``) is a loop over
:meth:`Poll.ticks`.

A leaf module (no flowwatch, boto3 or click import), so the local AWS uses it too. The clock and
the sleep are injectable: tests pass a fake clock and a sleep that advances it, and never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Poll:
    """How to wait: at most ``timeout`` seconds (None: until the caller stops), first pause ``interval``,
    each next pause ``backoff`` times longer, never more than ``max_interval``."""

    timeout: float | None
    interval: float = 2.0
    backoff: float = 1.0
    max_interval: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def with_(self, **changes: object) -> "Poll":
        return replace(self, **changes)  # type: ignore[arg-type]

    def ticks(self) -> Iterator[float]:
        """Yield the elapsed seconds before each attempt: the first at once, the next after a pause.

        Stops (without raising) after the attempt made at or past the timeout; the pause before the
        last attempt is cut so that it lands on the timeout, not after it.
        """
        started = self.clock()
        delay = self.interval
        while True:
            elapsed = self.clock() - started
            yield elapsed
            if self.timeout is not None and elapsed >= self.timeout:
                return
            pause = delay if self.timeout is None else min(delay, max(self.timeout - elapsed, 0.0))
            self.sleep(pause)
            delay = min(delay * self.backoff, self.max_interval)

