"""One writer per stack: a lock that AWS arbitrates, held by ``up``, ``down``, ``simulate-reject`` and the
demo for their mutating part only (DESIGN.md "One writer per stack").

The lock is the SSM parameter ``/flowwatch/<stack>/lock`` in the stack's region, created with
``PutParameter(Overwrite=False)``: SSM creates it for exactly one caller, every other one gets
``ParameterAlreadyExists``. Its value names the holder (:class:`Holder`: a random id, user, host, pid,
command, since when, flowwatch's version). Release reads it back, compares the id and deletes it, in a
``finally`` (also on Ctrl-C, and on SIGTERM: :func:`held` turns it into an exception while held).

A second writer polls with backoff for ``timeout`` seconds, with a live line on stderr (who holds it, since
when, how long it has waited), then stops with :class:`LockHeldError` (exit 1) naming the holder and the
command that breaks the lock. Nothing breaks a lock by itself: a holder killed with SIGKILL leaves its lock
until ``flowwatch unlock ID`` (:func:`unlock`), which deletes it only when the id given is the one stored.

The parameter carries no stack tag (it is not a resource of the stack: it exists only while a writer runs).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from flowwatch.errors import AwsError, FlowwatchError, UsageError, error_code, shown
from flowwatch.polling import Poll

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 24 * 3600.0
FIRST_PAUSE = 0.5           # the first pause of a waiting writer; then x1.5 up to MAX_PAUSE
MAX_PAUSE = 5.0
_DURATION = re.compile(r"^(\d{1,6})([smh])$")
ALLOWED = "allowed: a number and a unit s, m or h, from 0s (fail at once) up to 24h (e.g. 0s, 30s, 5m)"


def parameter_name(stack: str) -> str:
    """The SSM parameter that is the stack's lock."""
    return f"/flowwatch/{stack}/lock"


def parse_timeout(text: str, *, source: str = "--lock-timeout") -> float:
    """``60s``, ``5m``, ``1h`` -> seconds; ``0s`` means do not wait. UsageError (exit 2) naming ``source``."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise UsageError(f"{source}: {shown(text)} is not a duration; {ALLOWED}")
    seconds = float(int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)])
    if seconds > MAX_TIMEOUT:
        raise UsageError(f"{source}: {shown(text)} is longer than 24h; {ALLOWED}")
    return seconds


@dataclass(frozen=True)
class Holder:
    """Who holds a stack's lock: what the parameter's value says (JSON)."""

    id: str
    user: str
    host: str
    pid: int
    command: str
    since: str                  # UTC, ISO-8601 (seconds)
    version: str

    @classmethod
    def me(cls, command: str) -> "Holder":
        from flowwatch import __version__

        try:
            user = getpass.getuser()
        except Exception:        # no passwd entry, no LOGNAME (a container): still a lock, with a blank name
            user = "?"
        return cls(id=str(uuid.uuid4()), user=user, host=socket.gethostname(), pid=os.getpid(), command=command,
                   since=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                   version=__version__)

    def value(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> "Holder":
        """The holder a parameter value names; a value flowwatch did not write gives id "" (never ours)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            data = {}

        def text_of(key: str) -> str:
            return str(data.get(key, ""))[:200]

        try:
            pid = int(data.get("pid", 0))
        except (TypeError, ValueError):
            pid = 0
        return cls(id=text_of("id"), user=text_of("user") or "?", host=text_of("host") or "?", pid=pid,
                   command=text_of("command") or "?", since=text_of("since") or "?", version=text_of("version"))

    def describe(self) -> str:
        """``alice@build-7 (pid 4242, `flowwatch up`, since 2026-12-02T17:20:01Z)``"""
        return f"{self.user}@{self.host} (pid {self.pid}, `{self.command}`, since {self.since})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrong_id(stack: str, given: str, holder: Holder) -> UsageError:
    """``flowwatch unlock ID`` with an ID that is not the stored one: the error naming the real holder."""
    return UsageError(f"unlock: {shown(given)} is not the id of the lock of stack {stack!r}; it is held "
                      f"by {holder.describe()}, lock ID {holder.id or '(none: not a flowwatch lock)'}")


class LockHeldError(FlowwatchError):
    """Another writer holds the stack's lock and did not release it in time (exit 1)."""

    def __init__(self, message: str, holder: Holder) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockRequest:
    """That a command takes the stack's lock for its mutating part: its command line (the holder's
    ``command``), how long to wait, and how to write the unlock command for this stack (``{id}``)."""

    command: str
    timeout: float = DEFAULT_TIMEOUT
    unlock: str = "flowwatch unlock {id}"
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)


class StackLock:
    """The lock of one stack on one SSM client."""

    def __init__(self, ssm: Any, stack: str) -> None:
        self.ssm = ssm
        self.stack = stack
        self.name = parameter_name(stack)

    # ---- reads ----
    def holder(self) -> Holder | None:
        try:
            value = self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"]
        except Exception as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise AwsError.from_client_error(exc, step="lock", operation="GetParameter") from None
        return Holder.parse(value)

    # ---- writes ----
    def try_acquire(self, me: Holder) -> Holder | None:
        """Create the lock naming ``me``: None when it is ours now, else the holder that has it."""
        try:
            self.ssm.put_parameter(Name=self.name, Value=me.value(), Type="String", Overwrite=False,
                                   Description=f"flowwatch: the lock of stack {self.stack} (one writer at a time)")
            return None
        except Exception as exc:
            if error_code(exc) != "ParameterAlreadyExists":
                raise AwsError.from_client_error(exc, step="lock", operation="PutParameter") from None
        return self.holder() or Holder("", "?", "?", 0, "?", "?", "")   # released meanwhile: try again

    def acquire(self, request: LockRequest, on_wait: Callable[[Holder, float], None] | None = None) -> Holder:
        """Take the lock, waiting up to ``request.timeout`` seconds for its holder (``on_wait(holder, waited)``
        before each pause); LockHeldError when it is still held then."""
        me = Holder.me(request.command)
        poll = Poll(request.timeout, interval=FIRST_PAUSE, backoff=1.5, max_interval=MAX_PAUSE,
                    sleep=request.sleep, clock=request.clock)
        holder: Holder | None = None
        waited = 0.0
        for waited in poll.ticks():
            holder = self.try_acquire(me)
            if holder is None:
                return me
            if on_wait is not None and waited < request.timeout:
                on_wait(holder, waited)
        assert holder is not None
        unlock = request.unlock.format(id=holder.id or "ID")
        raise LockHeldError(
            f"stack {self.stack!r} is locked by {holder.describe()}, lock ID {holder.id or '?'}; gave up after "
            f"{waited:.0f} s. If that run is gone (killed, crashed), break the lock: `{unlock}`", holder)

    def release(self, me: Holder) -> str | None:
        """Delete the lock if it is still ``me``'s. None when released; else why not (the caller warns)."""
        current = self.holder()
        if current is None:
            return f"the lock of stack {self.stack!r} was gone before this run released it (broken with `unlock`?)"
        if current.id != me.id:
            return (f"the lock of stack {self.stack!r} is now held by {current.describe()}, not by this run: "
                    "left in place")
        self._delete("lock")
        return None

    def delete(self, holder_id: str) -> Holder | None:
        """``flowwatch unlock ID``: delete the lock when its stored id is ``holder_id``. Returns the holder
        deleted (None: not locked); UsageError when the lock names another id."""
        current = self.holder()
        if current is None:
            return None
        if current.id != holder_id:
            raise wrong_id(self.stack, holder_id, current)
        self._delete("unlock")
        return current

    def _delete(self, step: str) -> None:
        """Delete the parameter (already gone is fine: the end wanted)."""
        try:
            self.ssm.delete_parameter(Name=self.name)
        except Exception as exc:
            if error_code(exc) != "ParameterNotFound":
                raise AwsError.from_client_error(exc, step=step, operation="DeleteParameter") from None


class Terminated(KeyboardInterrupt):
    """SIGTERM while the lock is held: raised so that every ``finally`` runs (and the lock is released)."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While inside: SIGTERM raises :class:`Terminated` (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def held(ctx: Any, request: LockRequest | None) -> Iterator[Holder | None]:
    """Hold the stack's lock for the block (``request`` None: take none and yield None). Waiting shows a
    live line; the lock is released when the block ends, however it ends (exception, Ctrl-C, SIGTERM)."""
    if request is None:
        yield None
        return
    lock = StackLock(ctx.aws.ssm, ctx.stack.name)
    with _sigterm_raises():
        with ctx.out.live() as update:
            def on_wait(holder: Holder, waited: float) -> None:
                update(f"[yellow]waiting for the lock of stack {ctx.stack.name!r}[/yellow]: held by "
                       f"{_markup_safe(holder.describe())}; waited {waited:.0f} s of {request.timeout:.0f} s")

            me = lock.acquire(request, on_wait)
        ctx.out.detail(f"lock {lock.name} taken (ID {me.id})")
        try:
            yield me
        finally:
            try:
                problem = lock.release(me)
            except FlowwatchError as exc:
                problem = f"could not release the lock of stack {ctx.stack.name!r}: {exc.message}; " \
                          f"break it with `{request.unlock.format(id=me.id)}`"
            if problem:
                ctx.out.warn(problem)
            else:
                ctx.out.detail(f"lock {lock.name} released")


def _markup_safe(text: str) -> str:
    from flowwatch.console import safe

    return safe(text)
