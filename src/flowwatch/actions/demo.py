"""flowwatch demo: the whole story in one command, with no AWS account.

1. start a fresh embedded local AWS (``flowwatch.local``) on a free port of 127.0.0.1, in a
   temporary state dir;
2. ``up`` a temporary stack ``demo`` (e-mail alerts to you@example.com) through the engine;
3. ``simulate-reject`` (inject): a host of the subnet pings 8.8.8.8, the NACL denies ICMP
   egress, the local flow-log service delivers the REJECT records to CloudWatch Logs and S3;
4. wait for the alarm (the same wait loop as on AWS) and show the e-mail AWS would have sent;
5. ``query rejects`` (the real preset, local engine) over the delivered S3 files;
6. ``down``, stop the server, remove the temporary files.

Everything runs in this process through the engine and action functions (no subprocess but the
server). ``--keep`` leaves the stack up on the local AWS of the default state dir (started if
needed), so ``flowwatch --local --stack demo status|query|down`` work afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowwatch.errors import FlowwatchError

STACK = "demo"
EMAIL = "you@example.com"


def run(settings: Any, *, keep: bool = False, clock: Callable[[], float] = time.monotonic) -> int:
    from flowwatch import local
    from flowwatch.console import Output

    out = Output(settings.verbosity, settings.debug)
    began = clock()
    work = Path(tempfile.mkdtemp(prefix="flowwatch-demo-"))
    directory = local.state_dir() if keep else work / "state"
    info = None
    try:
        out.heading("flowwatch demo: VPC flow logs -> metric filter -> alarm -> e-mail -> SQL, with no AWS account")
        _stage(out, 1, "Start an embedded local AWS (moto + flowwatch's data plane), on 127.0.0.1 only")
        with out.working("starting the local AWS..."):
            info, fresh = local.start(None if keep else 0, directory)
        out.info(f"  local AWS on {info.url} (pid {info.pid}){'' if fresh else ', already running'}")
        return _story(settings, out, info.url, keep=keep, began=began, clock=clock)
    finally:
        if not keep and info is not None:
            local.stop(directory)
        shutil.rmtree(work, ignore_errors=True)


def _story(settings: Any, out: Any, url: str, *, keep: bool, began: float, clock: Callable[[], float]) -> int:
    from flowwatch import engine, local
    from flowwatch.actions import simulate
    from flowwatch.config import parse_config
    from flowwatch.context import build_context
    from flowwatch.settings import Settings

    config = parse_config({"stack": STACK, "alerts": {"email": EMAIL}}, source="demo config")
    ctx = build_context(Settings(stack=STACK, endpoint_url=url, local=True, output=settings.output,
                                 verbosity=settings.verbosity, debug=settings.debug), config=config, out=out)

    _stage(out, 2, f"flowwatch up: the stack {STACK!r} (VPC, subnet, flow logs to CloudWatch Logs and S3, NACL "
                   "rule denying ICMP egress, SNS topic, metric filter, alarm, Athena table)")
    engine.up(ctx)

    _stage(out, 3, "flowwatch simulate-reject: a host of the subnet pings 8.8.8.8; the network ACL rejects it "
                   "and the flow logs record REJECT")
    injected = clock()
    if simulate.simulate(ctx, mode="inject", wait=True, timeout=simulate.LOCAL_TIMEOUT, count=10) != 0:
        raise FlowwatchError("demo: the alarm did not fire", hint="run `flowwatch demo -vv` and see the server log")
    latency = clock() - injected

    _stage(out, 4, f"The notification: what AWS would have e-mailed to {EMAIL}")
    topic = ctx.aws.sns.create_topic(Name=ctx.names.of("topic"))["TopicArn"]   # idempotent: the ARN by name
    fired = [m for m in local.LocalApi(url).inbox() if m["topic_arn"] == topic
             and str(m.get("subject", "")).startswith("ALARM")]
    if fired:
        out.notification(fired[-1])
    else:
        out.warn("no ALARM notification in the local inbox")

    _stage(out, 5, "flowwatch query rejects: the rejected traffic, read back from the flow-log files in S3")
    query_rejects(ctx, settings.output)

    if keep:
        out.info("")
        out.info(f"[bold]Left running[/bold] on {url}: try `flowwatch --local --stack {STACK} status`, "
                 f"`flowwatch --local --stack {STACK} query rejects`, `flowwatch --local local inbox`; "
                 f"then `flowwatch --local --stack {STACK} down --yes` and `flowwatch local stop`.")
    else:
        _stage(out, 6, "flowwatch down: remove everything the stack owns, then stop the local AWS")
        engine.down(ctx)
    out.info("")
    out.info(f"[green]✓[/green] demo finished in {clock() - began:.1f} s; the alarm was in ALARM {latency:.1f} s "
             "after the rejected traffic was injected. On AWS: `flowwatch up`, then `flowwatch simulate-reject` "
             "(flow-log delivery takes 5-10 minutes there).")
    return 0


def _stage(out: Any, number: int, text: str) -> None:
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
