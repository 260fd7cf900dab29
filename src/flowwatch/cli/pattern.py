"""`flowwatch pattern test`: a filter pattern on lines, offline or with --remote (``flowwatch.actions.pattern_test``)."""

from __future__ import annotations

import sys

import click

from flowwatch.cli.app import App


@click.group()
def pattern() -> None:
    """CloudWatch Logs filter patterns, evaluated offline."""


@pattern.command("test")
@click.argument("pattern_text", metavar="PATTERN")
@click.argument("source", metavar="[FILE|-]", default="-", type=click.File("r", encoding="utf-8"))
@click.option("--remote", is_flag=True, help="Evaluate with CloudWatch Logs TestMetricFilter instead.")
@click.pass_obj
def pattern_test(app: App, pattern_text: str, source, remote: bool) -> None:
    """Print the lines of FILE (or stdin) that PATTERN matches. Exit 0 if any matched, 1 if none, 2 if invalid."""
    from flowwatch.actions import pattern_test as action

    compiled = action.compile_or_fail(pattern_text)             # invalid: exit 2, before any AWS call
    if getattr(source, "name", None) in ("<stdin>", None) and source.isatty():
        app.out.info("[dim]reading lines from the terminal: paste them, then Ctrl-D "
                     "(or give a FILE: flowwatch pattern test PATTERN FILE)[/dim]")
    lines = action.read_lines(source)
    ctx = app.context() if remote else None
    sys.exit(action.match_lines(app.out, compiled, pattern_text, lines, ctx=ctx, output=app.settings.output))
