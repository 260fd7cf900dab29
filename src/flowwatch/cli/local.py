"""`flowwatch local start | stop | status | inbox`: the embedded local AWS as a background server
(``flowwatch.local.process``) and what its own routes tell (``flowwatch.local.client``)."""

from __future__ import annotations

import sys

import click

from flowwatch.cli.app import App
from flowwatch.cli.options import FlowwatchGroup


class _PortOption(click.Option):
    """``--port``, whose help names the effective default (FLOWWATCH_LOCAL_PORT, else 4599), read when shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from flowwatch.errors import UsageError
        from flowwatch.local.process import DEFAULT_PORT, default_port

        try:
            port = str(default_port())
        except UsageError:          # the help still shows; a command would say what is wrong
            port = f"{DEFAULT_PORT}, FLOWWATCH_LOCAL_PORT is not a port"
        self.help = f"Port on 127.0.0.1 (default {port}: FLOWWATCH_LOCAL_PORT or 4599; 0 picks a free one)."
        return super().get_help_record(ctx)


@click.group(cls=FlowwatchGroup)
def local() -> None:
    """The embedded local AWS (moto's server + flowwatch's data plane) on 127.0.0.1."""


@local.command("start")
@click.option("--port", cls=_PortOption, type=click.IntRange(0, 65535), default=None)
@click.pass_obj
def local_start(app: App, port: int | None) -> None:
    """Start the local AWS in the background."""
    from flowwatch.local import process
    from flowwatch.local.client import LocalError

    out = app.out
    info = process.running()
    if info is not None:
        if port not in (None, 0, info.port):
            raise LocalError(f"the local AWS is already running on port {info.port} (pid {info.pid}), not on {port}",
                             hint=f"stop it first (`flowwatch local stop`, its state is lost), then "
                                  f"`flowwatch local start --port {port}`")
        out.info(f"local AWS already running on {info.url} (pid {info.pid})")
        return
    with out.working("starting the local AWS..."):
        info, _ = process.start(port)
    out.info(f"[green]✓[/green] local AWS running on {info.url} (pid {info.pid})")
    out.info("[dim]use it with --local (or FLOWWATCH_LOCAL=1); state lasts until `flowwatch local stop`[/dim]")
    out.info(f"[dim]other clients (the AWS CLI, boto3, flowlogs-reader): AWS_ENDPOINT_URL={info.url} "
             "with any credentials[/dim]")


@local.command("stop")
@click.pass_obj
def local_stop(app: App) -> None:
    """Stop the local AWS (its state is lost)."""
    from flowwatch.local import process

    info = process.stop()
    if info is None:
        app.out.info("local AWS is not running")
    else:
        app.out.info(f"[green]✓[/green] local AWS stopped (pid {info.pid}, port {info.port} free)")


@local.command("status")
@click.pass_obj
def local_status(app: App) -> None:
    """Is the local AWS running, where, and what does it hold."""
    import time

    from flowwatch.local import process
    from flowwatch.local.client import LocalApi

    out = app.out
    info = process.running()
    if info is None:
        stale = process.read_info()
        out.info("local AWS is not running" + (f" (stale state for pid {stale.pid} ignored)" if stale else ""))
        # someone who gave --local (or FLOWWATCH_LOCAL) already knows it: never suggest it back
        alternative = "" if app.settings.local else ", or use --local on any command (it starts it)"
        out.info(f"[dim]start it with `flowwatch local start`{alternative}[/dim]")
        sys.exit(1)
    api = LocalApi(info.url)
    health = api.health() or {}
    alarms = api.alarms()
    row = {"url": info.url, "pid": info.pid, "uptime_s": round(time.time() - info.started),
           "regions": ", ".join(health.get("regions") or ()) or "-", "messages": health.get("inbox", 0),
           "alarms": ", ".join(f"{a['alarm']}={a['state']}" for a in alarms["alarms"]) or "-"}
    if app.settings.output == "json":
        out.json(row)
    else:
        out.data(list(row), [list(row.values())], app.settings.output, title="flowwatch local AWS")


@local.command("inbox")
@click.pass_obj
def local_inbox(app: App) -> None:
    """The notifications the local AWS would have e-mailed."""
    from flowwatch.local import process
    from flowwatch.local.client import LocalApi, LocalError

    info = process.running()
    if info is None:
        raise LocalError("the local AWS is not running, so its inbox is empty", hint="flowwatch local start")
    messages = LocalApi(info.url).inbox()
    if app.settings.output == "json":
        app.out.json(messages)
        return
    if app.settings.output == "csv":
        columns = ["time", "topic_arn", "subject", "recipients", "body"]
        app.out.data(columns, [[m.get("time"), m.get("topic_arn"), m.get("subject"),
                                " ".join(m.get("recipients") or ()), m.get("body")] for m in messages], "csv")
        return
    if not messages:
        app.out.info("no notification yet (alarm state changes published to SNS topics show up here)")
        return
    for message in messages:
        app.out.notification(message)
