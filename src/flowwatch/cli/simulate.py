"""`flowwatch simulate-reject`: forbidden traffic, then the live wait for the alarm (``flowwatch.actions.simulate``)."""

from __future__ import annotations

import sys

import click

from flowwatch.cli.app import App
from flowwatch.cli.unlock import lock_request, lock_timeout_option


@click.command("simulate-reject")
@click.option("--mode", type=click.Choice(["instance", "inject"]), default=None,
              help="instance: launch a pinging EC2 instance (AWS default); inject: write synthetic REJECT records.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Watch the alarm until ALARM or timeout.")
@click.option("--timeout", type=click.IntRange(min=1), default=None,
              help="Seconds to wait for ALARM (default 900 on AWS, 120 locally).")
@click.option("--count", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="Records to inject (inject mode).")
@lock_timeout_option
@click.pass_obj
def simulate_reject(app: App, mode: str | None, wait: bool, timeout: int | None, count: int,
                    lock_timeout: float | None) -> None:
    """Make forbidden (denied ICMP) traffic happen and watch the alarm fire. Not idempotent: each run adds traffic."""
    from flowwatch.actions import simulate

    ctx = app.context(lock=lock_request(app, lock_timeout))
    sys.exit(simulate.simulate(ctx, mode=mode, wait=wait, timeout=timeout, count=count, output=app.settings.output))


@click.command("simulate")
@click.argument("scenario", type=click.Choice(["ping-reject", "port-scan", "ssh-probe", "reject-spike",
                                               "egress-spike"]))
@click.option("--mode", type=click.Choice(["instance", "inject"]), default=None,
              help="instance: the traffic instance makes the traffic (ping-reject, ssh-probe; AWS default); "
                   "inject: write synthetic records (the others, and always locally).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Watch the alarm until ALARM or timeout.")
@click.option("--timeout", type=click.IntRange(min=1), default=None,
              help="Seconds to wait for ALARM (default 900 on AWS, 120 locally).")
@click.option("--count", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="Records to inject (ping-reject in inject mode).")
@lock_timeout_option
@click.pass_obj
def simulate_scenario(app: App, scenario: str, mode: str | None, wait: bool, timeout: int | None, count: int,
                      lock_timeout: float | None) -> None:
    """Make the traffic one detection exists for, then watch its alarm fire. Not idempotent: each run adds traffic.

    ping-reject (= simulate-reject: the lab's alarm), port-scan (top-rejected-sources), ssh-probe (ssh-rdp-probe),
    reject-spike (rejected-spike), egress-spike (egress-spike). The detection must be turned on in the config
    (alerts.detections).
    """
    from flowwatch.actions import scenarios

    ctx = app.context(lock=lock_request(app, lock_timeout))
    sys.exit(scenarios.run(ctx, scenario, mode=mode, wait=wait, timeout=timeout, count=count,
                           output=app.settings.output))


@click.command("watch")
@click.pass_obj
def watch(app: App) -> None:
    """A live view of the stack until Ctrl-C: flows per minute, reject rate and its band, alarms, top contributors.

    Refreshed every 5 s on the local AWS, every 30 s on AWS; piped, one frame in plain text.
    """
    from flowwatch.actions import watch as view

    ctx = app.context()
    now = None
    if ctx.local_api is not None:
        from flowwatch.actions.scenarios import local_now

        now = lambda: local_now(ctx)   # noqa: E731 - the local AWS's clock (moved by `advance`)
    sys.exit(view.watch(ctx, now=now))
