"""`flowwatch unlock ID` and ``--lock-timeout``: the stack lock (``flowwatch.lock``) on the command line.

``up``, ``down``, ``simulate-reject`` and ``demo`` take ``--lock-timeout`` (:func:`lock_timeout_option`) and
hand :func:`lock_request` to their Context; ``unlock`` shows the holder, asks, and deletes the lock only when
its stored id is the one given (as Terraform's ``force-unlock``).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from flowwatch.cli.app import App

if TYPE_CHECKING:
    from flowwatch.lock import LockRequest
    from flowwatch.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
ENV = "FLOWWATCH_LOCK_TIMEOUT"
COMMAND_CHARS = 200                   # how much of the command line the lock's holder records


def _parse_timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None or ctx.resilient_parsing:
        return None
    from flowwatch.lock import parse_timeout

    assert param.name is not None
    source = ENV if ctx.get_parameter_source(param.name) == ParameterSource.ENVIRONMENT else "--lock-timeout"
    return parse_timeout(value, source=source)


def lock_timeout_option(command: F) -> F:
    """``--lock-timeout DURATION`` (also FLOWWATCH_LOCK_TIMEOUT): how long to wait for another writer."""
    return click.option(
        "--lock-timeout", metavar="DURATION", default="60s", show_default=True, envvar=ENV, callback=_parse_timeout,
        help="How long to wait for the stack's lock when another run holds it (0s: fail at once; e.g. 30s, 5m).",
    )(command)


def lock_request(app: App, timeout: float | None, command: str | None = None) -> "LockRequest":
    """The lock this run takes: its command line, ``timeout`` seconds, the unlock command for this stack."""
    from flowwatch.lock import DEFAULT_TIMEOUT, LockRequest

    line = command or shlex.join(["flowwatch", *sys.argv[1:]])
    if len(line) > COMMAND_CHARS:
        line = line[:COMMAND_CHARS - 1] + "…"
    return LockRequest(line, DEFAULT_TIMEOUT if timeout is None else timeout,
                       unlock=unlock_command(app.settings))


def unlock_command(settings: "Settings", lock_id: str = "{id}") -> str:
    """``flowwatch unlock ID`` with the global options that chose this stack (so it works as shown)."""
    words = ["flowwatch"]
    if settings.local:
        words.append("--local")
    for flag, value in (("--config", settings.config_path if settings.config_explicit else None),
                        ("--stack", settings.stack), ("--region", settings.region), ("--profile", settings.profile),
                        ("--endpoint-url", settings.endpoint_url)):
        if value:
            words += [flag, shlex.quote(value)]
    return " ".join([*words, "unlock", lock_id])


@click.command()
@click.argument("lock_id", metavar="ID")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def unlock(app: App, lock_id: str, yes: bool) -> None:
    """Break a stale stack lock (a run that was killed): shows who holds it, then deletes it if its ID is ID."""
    from flowwatch.console import safe
    from flowwatch.errors import UsageError
    from flowwatch.lock import StackLock, parameter_name, wrong_id

    ctx = app.context()
    out, fmt = ctx.out, app.settings.output
    lock = StackLock(ctx.aws.ssm, ctx.stack.name)
    holder = lock.holder()
    result: dict[str, Any] = {"command": "unlock", "stack": ctx.stack.name, "region": ctx.region,
                              "parameter": parameter_name(ctx.stack.name), "id": lock_id}
    if holder is None:
        out.info(f"stack {ctx.stack.name!r} is not locked (no {parameter_name(ctx.stack.name)} in {ctx.region})")
        if fmt == "json":
            out.json({**result, "locked": False, "unlocked": False, "holder": None})
        return
    if holder.id != lock_id:
        raise wrong_id(ctx.stack.name, lock_id, holder)
    out.info(f"stack {ctx.stack.name!r} is locked by {safe(holder.describe())}, lock ID {holder.id}")
    if not yes:
        if not sys.stdin or not sys.stdin.isatty():
            raise UsageError("unlock: refusing to break the lock without confirmation; pass --yes")
        out.warn("break it only if that run is gone: two runs at once can create the stack twice")
        if not click.confirm("Break the lock?", default=False, err=True):
            out.info("unlock cancelled: the lock is left in place")
            if fmt == "json":
                out.json({**result, "locked": True, "unlocked": False, "holder": holder.as_dict()})
            return
    deleted = lock.delete(lock_id)        # compares the stored id again, just before deleting
    if deleted is None:
        out.info(f"stack {ctx.stack.name!r} is not locked any more")
    else:
        out.info(f"[green]✓[/green] lock of stack {ctx.stack.name!r} broken (was {safe(holder.describe())})")
    if fmt == "json":
        out.json({**result, "locked": True, "unlocked": deleted is not None, "holder": holder.as_dict()})
