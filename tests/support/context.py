"""Building blocks of the tests: configs and Contexts on a given session, the recorded-call filters."""

from __future__ import annotations

import io
from typing import Any

from flowwatch.aws import is_mutating


def mutating(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [c for c in calls if is_mutating(c[1])]


def make_config(**overrides: Any):
    from flowwatch.config import parse_config

    data: dict[str, Any] = {"stack": "test"}
    data.update(overrides)
    return parse_config(data)


def make_ctx(session, config=None, *, dry_run: bool = False, keep_data: bool = False, sleep=None,
             iam_timeout: float | None = None):
    """A Context on ``session``; waits never sleep (``sleep`` records them instead, when given)."""
    from flowwatch.aws import Aws
    from flowwatch.console import Output
    from flowwatch.model import Context, Stack, default_poll
    from flowwatch.naming import Names

    config = config or make_config()
    err = io.StringIO()
    out = Output(stderr=err, stdout=io.StringIO(), color=False)
    sleep = sleep or (lambda _: None)
    poll = default_poll().with_(sleep=sleep, **({"timeout": iam_timeout} if iam_timeout is not None else {}))
    ctx = Context(config=config, aws=Aws(session), out=out, names=Names.from_config(config),
                  stack=Stack(config.stack), dry_run=dry_run, keep_data=keep_data, poll=poll)
    return ctx


def fresh(ctx, **kw: Any):
    """A new Context on the same session and config (what a second CLI run would have)."""
    return make_ctx(ctx.aws.session, ctx.config, **kw)
