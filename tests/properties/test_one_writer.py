"""One writer per stack, on the real local AWS with real `flowwatch` processes: two `up` at once (started
together, and 0.3 s apart) leave exactly one stack, which `down --yes` removes whole; a holder killed with
SIGKILL leaves its lock, the next `up` waits and exits 1 naming it, and `unlock ID --yes` lets `up` run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import boto3
import pytest

from flowwatch.lock import parameter_name
from flowwatch.local import process
from flowwatch.naming import STACK_TAG
from flowwatch.polling import Poll
from tests.support.inventory import empty, inventory

pytestmark = pytest.mark.slow   # a real local server and whole up/down cycles


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("one-writer")
    info, _ = process.start(0, directory / "flowwatch")
    try:
        yield directory, info
    finally:
        process.stop(directory / "flowwatch")


def client(info, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=info.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def flowwatch(server, stack, *args, **popen):
    directory, _ = server
    env = {**os.environ, "XDG_STATE_HOME": str(directory), "FLOWWATCH_STACK": stack}
    return subprocess.Popen([sys.executable, "-m", "flowwatch", "--local", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def tagged(info, stack):
    """What the stack has in EC2: VPCs, subnets, flow logs, and egress rule 90 on the subnets' NACLs."""
    ec2 = client(info, "ec2")
    tag = [{"Name": f"tag:{STACK_TAG}", "Values": [stack]}]
    vpcs = [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]]
    flow_logs = [f["FlowLogId"] for f in ec2.describe_flow_logs(Filters=tag)["FlowLogs"]]
    rules = 0
    if vpcs:
        for acl in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": vpcs}])["NetworkAcls"]:
            rules += sum(1 for e in acl["Entries"] if e["RuleNumber"] == 90 and e["Egress"])
    return {"vpcs": len(vpcs), "subnets": len(subnets), "flow_logs": len(flow_logs), "nacl_rules": rules}


def left(info, stack):
    """Whatever is still tagged for or named like the stack (the suite's inventory, through boto3)."""
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    real = session.client

    def at_server(service, **kw):
        return real(service, endpoint_url=info.url, **kw)

    session.client = at_server        # type: ignore[method-assign]
    return empty(inventory(session, stack))


@pytest.mark.parametrize("apart", [0.0, 0.3])
def test_two_ups_at_once_make_one_stack_and_down_removes_it(server, apart):
    _, info = server
    stack = f"race{int(apart * 10)}"
    first = flowwatch(server, stack, "up", "--lock-timeout", "3m")
    time.sleep(apart)
    second = flowwatch(server, stack, "up", "--lock-timeout", "3m")
    results = [finish(first), finish(second)]
    for code, _, err in results:
        assert code == 0 or (code == 1 and "is locked by" in err and "unlock" in err), err
    assert tagged(info, stack) == {"vpcs": 1, "subnets": 1, "flow_logs": 2, "nacl_rules": 1}
    made_vpc = [err for _, _, err in results if "+ vpc" in err]
    assert len(made_vpc) == 1, [err for _, _, err in results]       # one run created it, the other found it
    code, _, err = finish(flowwatch(server, stack, "down", "--yes"))
    assert code == 0, err
    assert left(info, stack) == {}
    assert "ParameterNotFound" not in err
    with pytest.raises(client(info, "ssm").exceptions.ParameterNotFound):
        client(info, "ssm").get_parameter(Name=parameter_name(stack))


def test_a_killed_holder_leaves_its_lock_until_unlock(server):
    _, info = server
    stack = "killed"
    ssm = client(info, "ssm")
    holder = flowwatch(server, stack, "up")
    value = None
    for _ in Poll(timeout=120, interval=0.02).ticks():
        try:
            value = json.loads(ssm.get_parameter(Name=parameter_name(stack))["Parameter"]["Value"])
            break
        except ssm.exceptions.ParameterNotFound:
            assert holder.poll() is None, holder.communicate()
    assert value is not None and value["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.communicate()

    code, _, err = finish(flowwatch(server, stack, "up", "--lock-timeout", "2s"))
    assert code == 1
    assert f"(pid {holder.pid}, `flowwatch --local up`" in err and value["id"] in err
    assert "waiting for the lock of stack 'killed'" in err
    assert f"unlock {value['id']}`" in err

    code, _, err = finish(flowwatch(server, stack, "unlock", value["id"], "--yes"))
    assert code == 0 and "broken" in err, err
    code, _, err = finish(flowwatch(server, stack, "up", "--lock-timeout", "0s"))
    assert code == 0, err
    assert tagged(info, stack) == {"vpcs": 1, "subnets": 1, "flow_logs": 2, "nacl_rules": 1}
    code, _, err = finish(flowwatch(server, stack, "down", "--yes"))
    assert code == 0, err
    assert left(info, stack) == {}
