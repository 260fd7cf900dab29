"""The stack lock, old vs new, on the real local AWS with real `flowwatch` processes.

Usage: python benchmarks/bench_lock.py --old PATH/TO/OLD/src [--new src] [--trials 5] [--runs 5] [--json]

For each tree (its own local server, started from that tree):
- ``race``: N trials of two `flowwatch --local up` started together on a fresh stack -> VPCs tagged for the
  stack after both ended (one is right), and the exit codes;
- ``no-change up``: a converged stack's `up -v`, median wall time of ``--runs`` runs and its AWS calls
  (total, SSM): a plan with nothing to do takes no lock;
- new tree only: ``acquire+release``: the lock's own calls and median ms (in-process, against the same server).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CALL = re.compile(r"^aws (\S+) (\S+) \d+ ms", re.M)


def start_server(src: Path, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    state = directory / "flowwatch"
    state.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "flowwatch.local.server", "--port", "0", "--state-dir", str(state)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if (state / "server.json").exists():
            return proc, json.loads((state / "server.json").read_text())["url"]
        time.sleep(0.05)
    raise SystemExit("the local server did not start")


def flowwatch(src: Path, directory: Path, stack: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_STATE_HOME": str(directory), "FLOWWATCH_STACK": stack}
    return subprocess.Popen([sys.executable, "-m", "flowwatch", "--local", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def vpcs(url: str, stack: str) -> int:
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=url, aws_access_key_id="x",
                       aws_secret_access_key="x")
    return len(ec2.describe_vpcs(Filters=[{"Name": "tag:flowwatch:stack", "Values": [stack]}])["Vpcs"])


def measure(name: str, src: Path, trials: int, runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"bench-lock-{name}-") as tmp:
        directory = Path(tmp)
        server, url = start_server(src, directory)
        try:
            race = []
            for trial in range(trials):
                stack = f"race{trial}"
                procs = [flowwatch(src, directory, stack, "up"), flowwatch(src, directory, stack, "up")]
                codes = [p.wait(timeout=600) for p in procs]
                for p in procs:
                    p.communicate()
                race.append({"vpcs": vpcs(url, stack), "exit": codes})
            stack = "steady"
            first = flowwatch(src, directory, stack, "up")
            first.communicate()
            walls, calls, ssm = [], [], []
            for _ in range(runs):
                began = time.perf_counter()
                proc = flowwatch(src, directory, stack, "-v", "up")
                _, err = proc.communicate()
                walls.append((time.perf_counter() - began) * 1000)
                made = CALL.findall(err)
                calls.append(len(made))
                ssm.append(sum(1 for service, _ in made if service == "ssm"))
            result: dict[str, object] = {
                "tree": name, "race_vpcs_per_trial": [r["vpcs"] for r in race],
                "race_exit_codes": [r["exit"] for r in race],
                "trials_with_one_vpc": sum(1 for r in race if r["vpcs"] == 1),
                "no_change_up_ms_median": round(statistics.median(walls)), "no_change_up_calls": calls[0],
                "no_change_up_ssm_calls": ssm[0]}
            if name == "new":
                result.update(lock_cost(src, url, runs * 4))
            return result
        finally:
            server.terminate()
            server.wait(timeout=30)


def lock_cost(src: Path, url: str, runs: int) -> dict[str, object]:
    """The lock's own price on this server: calls and median ms of one acquire + release."""
    sys.path.insert(0, str(src))
    import boto3

    from flowwatch.lock import LockRequest, StackLock

    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=url, aws_access_key_id="x",
                       aws_secret_access_key="x")
    seen: list[str] = []
    ssm.meta.events.register("before-call.ssm.*", lambda model, **_: seen.append(model.name))
    lock = StackLock(ssm, "cost")
    times = []
    for _ in range(runs):
        seen.clear()
        began = time.perf_counter()
        lock.release(lock.acquire(LockRequest("bench", 0.0)))
        times.append((time.perf_counter() - began) * 1000)
    return {"lock_calls": list(seen), "lock_ms_median": round(statistics.median(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, type=Path, help="src/ of the tree before the lock (e.g. 7a09859)")
    parser.add_argument("--new", default=Path(__file__).resolve().parent.parent / "src", type=Path)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for var in [v for v in os.environ if v.startswith(("AWS_", "FLOWWATCH_"))]:
        del os.environ[var]
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    rows = [measure("old", args.old.resolve(), args.trials, args.runs),
            measure("new", args.new.resolve(), args.trials, args.runs)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(f"{row['tree']}: VPCs per race trial {row['race_vpcs_per_trial']} "
              f"({row['trials_with_one_vpc']}/{len(row['race_vpcs_per_trial'])} right), exits {row['race_exit_codes']}")
        print(f"  no-change up: median {row['no_change_up_ms_median']} ms, {row['no_change_up_calls']} calls "
              f"({row['no_change_up_ssm_calls']} SSM)")
        if "lock_calls" in row:
            print(f"  acquire+release: {', '.join(row['lock_calls'])} "  # type: ignore[arg-type]
                  f"-> median {row['lock_ms_median']} ms")


if __name__ == "__main__":
    main()
