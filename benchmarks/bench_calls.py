"""Count the AWS calls of a first `up`, a second `up` and a `down` against moto (in-process).

Usage: python benchmarks/bench_calls.py [--json]

Every call is recorded with botocore's before-call event hook; "mutating" means an operation whose
name does not start with a read-only prefix (flowwatch.aws.READ_ONLY_PREFIXES). No network: moto only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections import Counter



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    for var, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[var] = value

    import boto3
    from moto import mock_aws

    from flowwatch import engine
    from flowwatch.aws import Aws, is_mutating
    from flowwatch.config import parse_config
    from flowwatch.console import Output
    from flowwatch.model import Context, Stack, default_poll
    from flowwatch.naming import Names

    rows = []
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        seen: list[tuple[str, str]] = []
        session.events.register("before-call.*.*",
                                lambda event_name, model, **_: seen.append((event_name.split(".")[1], model.name)))
        config = parse_config({"stack": "bench", "alerts": {"email": "ops@example.com"}})

        def context() -> Context:
            return Context(config=config, aws=Aws(session), out=Output(stderr=io.StringIO(), stdout=io.StringIO()),
                           names=Names.from_config(config), stack=Stack(config.stack),
                           poll=default_poll().with_(sleep=lambda _: None))

        for label, run in (("first up", lambda: engine.up(context())), ("second up", lambda: engine.up(context())),
                           ("down", lambda: engine.down(context())), ("second down", lambda: engine.down(context()))):
            seen.clear()
            started = time.perf_counter()
            report = run()
            elapsed = time.perf_counter() - started
            mutating = [c for c in seen if is_mutating(c[1])]
            per_service = Counter(service for service, _ in seen)
            rows.append({"run": label, "calls": len(seen), "reads": len(seen) - len(mutating),
                         "mutating": len(mutating), "changes": report.changed, "seconds": round(elapsed, 2),
                         "by_service": dict(sorted(per_service.items()))})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'run':<12} {'calls':>6} {'reads':>6} {'mutating':>9} {'changes':>8} {'seconds':>8}  by service")
    for r in rows:
        services = " ".join(f"{k}={v}" for k, v in r["by_service"].items())
        print(f"{r['run']:<12} {r['calls']:>6} {r['reads']:>6} {r['mutating']:>9} {r['changes']:>8} "
              f"{r['seconds']:>8}  {services}")


if __name__ == "__main__":
    main()
