"""flowwatch demo: the whole story in one command, with no AWS account.

1. start a fresh embedded local AWS (``flowwatch.local``) on a free port of 127.0.0.1, in a
   temporary state dir;
2. ``up`` a temporary stack ``demo`` (e-mail alerts to you@example.com) through the engine;
3. ``simulate-reject`` (inject): a host of the subnet pings 8.8.8.8, the NACL denies ICMP
   egress, the local flow-log service delivers the REJECT records to CloudWatch Logs and S3;
4. wait for the alarm (the same wait loop as on AWS) and show the e-mail AWS would have sent;
5. ``simulate port-scan``: one outside source rejected on 25 ports in one period, the detection
   ``top-rejected-sources`` (a Contributor Insights rule and its alarm) fires, then a short ``watch``
   of the stack (a few frames: flows, alarms, the top contributor);
6. ``query rejects`` (the real preset, local engine) over the delivered S3 files;
7. ``down``, stop the server, remove the temporary files.

Stage 1 (the server: start, stop, its temporary state dir) is ``flowwatch.cli.demo``'s; the
story (:func:`story`, stages 2-6) runs on a Context whose ``local_api`` is that server's client,
through the engine and action functions, in this process. ``--keep`` leaves the stack up on the
local AWS of the default state dir (started if needed), so ``flowwatch --local --stack demo
status|query|down`` work afterwards.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowwatch.errors import FlowwatchError
from flowwatch.model import Context

STACK = "demo"
EMAIL = "you@example.com"


#: the detection the demo shows besides the lab's alarm, and the scenario that makes its traffic
DETECTION, SCENARIO = "top-rejected-sources", "port-scan"
SCENARIO_TIMEOUT = 30.0       # the local data plane evaluates within seconds
WATCH_FRAMES, WATCH_INTERVAL = 3, 1.0


def config() -> Any:
    """The demo's stack: the defaults, with e-mail alerts to EMAIL and one detection (DETECTION)."""
    from flowwatch.config import parse_config

    return parse_config({"stack": STACK, "alerts": {"email": EMAIL, "detections": [DETECTION]}},
                        source="demo config")


def story(ctx: Context, *, keep: bool, began: float, output: str = "table",
          clock: Callable[[], float] = time.monotonic, server_log: Path | None = None) -> int:
    """Stages 2 to 6 on a Context of the local AWS (``ctx.local_api`` set); stage 1, the server, is the caller's.
    ``server_log``: the server's log, named when the alarm does not fire (the caller keeps it then)."""
    from flowwatch import engine
    from flowwatch.actions import simulate

    out = ctx.out
    if ctx.local_api is None:
        raise FlowwatchError("demo: needs the local AWS (a Context with local_api)")
    stage(out, 2, f"flowwatch up: the stack {STACK!r} (VPC, subnet, flow logs to CloudWatch Logs and S3, NACL "
                   "rule denying ICMP egress, SNS topic, metric filter, alarm, Athena table)")
    engine.up(ctx)

    stage(out, 3, "flowwatch simulate-reject: a host of the subnet pings 8.8.8.8; the network ACL rejects it "
                   "and the flow logs record REJECT")
    injected = clock()
    if simulate.simulate(ctx, mode="inject", wait=True, timeout=simulate.LOCAL_TIMEOUT, count=10, suggest=keep) != 0:
        raise FlowwatchError("demo: the alarm did not fire", hint=(
            f"the local AWS's log says what its data plane delivered and evaluated: {server_log}" if server_log
            else "see the local AWS's log (`flowwatch local status` names it)"))
    latency = clock() - injected

    stage(out, 4, f"The notification: what AWS would have e-mailed to {EMAIL}")
    topic = ctx.aws.sns.create_topic(Name=ctx.names.of("topic"))["TopicArn"]   # idempotent: the ARN by name
    fired = [m for m in ctx.local_api.inbox() if m["topic_arn"] == topic
             and str(m.get("subject", "")).startswith("ALARM")]
    if fired:
        out.notification(fired[-1])
    else:
        out.warn("no ALARM notification in the local inbox")

    stage(out, 5, f"flowwatch simulate {SCENARIO}: one outside address tries 25 ports of a host; the detection "
                   f"{DETECTION} (Contributor Insights, top rejected sources) fires; then `flowwatch watch`")
    detection(ctx, suggest=keep)

    stage(out, 6, "flowwatch query rejects: the rejected traffic, read back from the flow-log files in S3")
    query_rejects(ctx, output)

    if keep:
        out.info("")
        out.info(f"[bold]Left running[/bold] on {ctx.aws.endpoint_url}: try "
                 f"`flowwatch --local --stack {STACK} status`, "
                 f"`flowwatch --local --stack {STACK} query rejects`, `flowwatch --local local inbox`; "
                 f"then `flowwatch --local --stack {STACK} down --yes` and `flowwatch local stop`.")
    else:
        stage(out, 7, "flowwatch down: remove everything the stack owns, then stop the local AWS")
        engine.down(ctx)
    out.info("")
    out.info(f"[green]✓[/green] demo finished in {clock() - began:.1f} s; the alarm was in ALARM {latency:.1f} s "
             "after the rejected traffic was injected. On AWS: `flowwatch up`, then `flowwatch simulate-reject` "
             "(flow-log delivery takes 5-10 minutes there).")
    if not keep:
        out.info("The demo's stack and its temporary local AWS are removed; to explore them afterwards (status, "
                 "query, the inbox), run `flowwatch demo --keep`.")
    return 0


def detection(ctx: Context, *, suggest: bool = False) -> None:
    """Stage 5: the scenario of DETECTION, then a short watch. A detection that does not fire is a warning, not
    a failed demo (the lab's alarm, the demo's subject, fired already)."""
    from flowwatch.actions import scenarios, watch

    code = scenarios.run(ctx, SCENARIO, wait=True, timeout=SCENARIO_TIMEOUT, suggest=suggest)
    if code != 0:
        ctx.out.warn(f"the {DETECTION} alarm did not fire within {SCENARIO_TIMEOUT:.0f} s on this local AWS")
    watch.watch(ctx, frames=WATCH_FRAMES, interval=WATCH_INTERVAL, now=lambda: scenarios.local_now(ctx))


def stage(out: Any, number: int, text: str) -> None:
    """One numbered stage heading of the story."""
    out.info("")
    out.heading(f"[cyan]{number}.[/cyan] {text}")


def query_rejects(ctx: Any, fmt: str = "table") -> None:
    """``flowwatch query rejects`` on the local engine (DuckDB over the delivered S3 files); the
    files it cached for this throw-away bucket are removed afterwards."""
    from flowwatch.query import QueryRequest, local_engine, run_in

    try:
        run_in(ctx, QueryRequest(preset="rejects", output=fmt))
    finally:
        shutil.rmtree(local_engine.cache_root() / "s3" / ctx.bucket, ignore_errors=True)
