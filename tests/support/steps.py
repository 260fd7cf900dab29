"""Driving one step the way the engine does: plan, then apply each change on the result of the one before."""

from __future__ import annotations

from typing import Any


def converge_step(step: Any, ctx: Any, have: Any = None) -> Any:
    """Plan ``step`` against ``have`` and apply every change in order; returns what the last apply returned."""
    for change in step.plan(step.desired(ctx), have):
        have = step.apply(ctx, change.after(have))
    step.publish(ctx.stack, have)
    return have


def destroy_step(step: Any, ctx: Any, have: Any, options: Any = None) -> Any:
    from flowwatch.model import DestroyOptions

    for change in step.plan_destroy(have, options or DestroyOptions()):
        have = step.apply(ctx, change.after(have))
    return have


def parents(ctx: Any, *names: str) -> None:
    """Create (quietly, through the engine) the steps ``names`` that the step under test reads outputs of."""
    from flowwatch import engine

    engine.converge(ctx, *names)
