"""`flowwatch demo`: stage 1 (a fresh local AWS on a free port, in a temporary state dir; stopped and
removed at the end) around the story of ``flowwatch.actions.demo``, run on a Context of that server."""

from __future__ import annotations

import sys

import click

from flowwatch.cli.app import App
from flowwatch.cli.unlock import lock_request, lock_timeout_option


@click.command()
@click.option("--keep", is_flag=True, help="Leave the stack and the local server up at the end.")
@lock_timeout_option
@click.pass_obj
def demo(app: App, keep: bool, lock_timeout: float | None) -> None:
    """The whole story on the embedded local AWS: up, reject, alarm, notification, query, down."""
    sys.exit(run_demo(app, keep=keep, lock_timeout=lock_timeout))


def run_demo(app: App, *, keep: bool = False, lock_timeout: float | None = None) -> int:
    import shutil
    import tempfile
    import time
    from pathlib import Path

    from flowwatch.actions import demo as story
    from flowwatch.local import process
    from flowwatch.settings import Settings

    out = app.out
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="flowwatch-demo-"))
    directory = process.state_dir() if keep else work / "state"
    info = None
    failed = True                   # until the story returns 0; a failure keeps the server log (its error names it)
    try:
        out.heading("flowwatch demo: VPC flow logs -> metric filter -> alarm -> e-mail -> SQL, with no AWS account")
        story.stage(out, 1, "Start an embedded local AWS (moto + flowwatch's data plane), on 127.0.0.1 only")
        with out.working("starting the local AWS..."):
            info, fresh = process.start(None if keep else 0, directory)
        out.info(f"  local AWS on {info.url} (pid {info.pid}){'' if fresh else ', already running'}")
        settings = app.settings
        on_server = Settings(stack=story.STACK, endpoint_url=info.url, local=True, output=settings.output,
                             verbosity=settings.verbosity, debug=settings.debug)
        ctx = app.context(settings=on_server, config=story.config(),
                          lock=lock_request(app, lock_timeout, "flowwatch demo" + (" --keep" if keep else "")))
        code = story.story(ctx, keep=keep, began=began, output=settings.output,
                           server_log=directory / process.LOG_FILE)
        failed = code != 0
        return code
    finally:
        if not keep and info is not None:
            process.stop(directory, keep_log=failed)
        if not (failed and not keep and (directory / process.LOG_FILE).exists()):
            shutil.rmtree(work, ignore_errors=True)
