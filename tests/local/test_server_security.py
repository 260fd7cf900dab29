"""The local server (flowwatch.local.server) serves the programs of this host, never a web page:
a foreign Host (DNS rebinding) or Origin is refused, no CORS, request bodies are capped as sent
and once decompressed, the log rotates, and a catastrophic metric-filter regex does not freeze it."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flowwatch.local.client import LocalApi
from flowwatch.local.server import LOG_BACKUPS, MAX_BODY, MAX_INFLATED
from flowwatch.polling import Poll
from tests.local.test_dataplane import REGION, aws, name, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

SIGNED = ("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/logs/aws4_request, "
          "SignedHeaders=host, Signature=0")


def request(url: str, method: str = "GET", path: str = "/_flowwatch/health", *, host: str | None = None,
            headers: dict[str, str] | None = None, body: bytes | None = None,
            send_body: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request with exactly the Host and headers given: (status, headers, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", parts.netloc if host is None else host)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None and "Content-Length" not in (headers or {}):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body is not None and send_body else None)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


# ---- Host ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:{other}", "localhost:{other}",
                                  "127.0.0.2:{port}", "[::1]:{port}", "127.0.0.1.evil.example:{port}", ""])
def test_a_foreign_host_is_refused(server, host):
    port = port_of(server.url)
    status, _, body = request(server.url, host=host.format(port=port, other=port + 1))
    assert status == 403
    assert b"refused" in body and b"pid" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}", "127.0.0.1",
                                  "localhost", "bucket.localhost:{port}"])
def test_the_loopback_host_is_served(server, host):
    status, _, body = request(server.url, host=host.format(port=port_of(server.url)))
    assert status == 200
    assert json.loads(body)["pid"] == server.proc.pid


def test_boto3_and_the_local_api_keep_working(server, aws):
    vpc = aws("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    assert aws("ec2").describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"] == "10.9.0.0/16"
    aws("ec2").delete_vpc(VpcId=vpc)
    assert LocalApi(server.url).health()["pid"] == server.proc.pid


def test_the_aws_cli_keeps_working(server, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds")}
    try:
        done = subprocess.run(["aws", "--endpoint-url", server.url, "logs", "describe-log-groups", "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=120)
    except FileNotFoundError:
        pytest.skip("the AWS CLI is not installed")
    if "command not found" in done.stderr or "No such file" in done.stderr:
        pytest.skip("the AWS CLI is not installed")
    assert done.returncode == 0, done.stderr
    assert "logGroups" in json.loads(done.stdout)


# ---- Origin and CORS -------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["http://evil.example", "https://evil.example:{port}", "null",
                                    "http://127.0.0.1:{other}", "http://localhost.evil.example:{port}"])
def test_a_foreign_origin_is_refused_and_never_reflected(server, origin):
    port = port_of(server.url)
    origin = origin.format(port=port, other=port + 1)
    status, headers, _ = request(server.url, "POST", "/", headers={
        "Origin": origin, "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
        "Content-Type": "application/x-amz-json-1.1", "Authorization": SIGNED}, body=b"{}")
    assert status == 403
    assert not [k for k in headers if k.startswith("access-control-")]


def test_a_cors_preflight_is_refused(server):
    status, headers, _ = request(server.url, "OPTIONS", "/", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-amz-target"})
    assert status == 403
    assert "access-control-allow-origin" not in headers and "access-control-allow-methods" not in headers


def test_responses_carry_no_cors_headers(server):
    """moto's flask-cors answers any Origin with Access-Control-Allow-Origin: that Origin."""
    own = f"http://127.0.0.1:{port_of(server.url)}"
    status, headers, body = request(server.url, "POST", "/", headers={
        "Origin": own, "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
        "Content-Type": "application/x-amz-json-1.1", "Authorization": SIGNED}, body=b"{}")
    assert status == 200 and "logGroups" in json.loads(body)
    assert not [k for k in headers if k.startswith("access-control-")]


# ---- body caps -------------------------------------------------------------------------------

def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def gzip_bomb(inflated_mib: int) -> bytes:
    """A gzip body of ``inflated_mib`` MiB of zeros, as concatenated members (about 1 KB per MiB)."""
    member = gzip.compress(b"\0" * (16 * 1024 * 1024), compresslevel=9)
    return member * (inflated_mib // 16)


def test_a_gzip_bomb_is_refused_413_and_memory_stays_bounded(server):
    bomb = gzip_bomb(320)
    assert len(bomb) < 512 * 1024
    pid = server.proc.pid
    before = vm_kib(pid, "VmRSS")
    status, _, body = request(server.url, "POST", "/", headers={
        "Content-Encoding": "gzip", "X-Amz-Target": "Logs_20140328.PutLogEvents",
        "Content-Type": "application/x-amz-json-1.1", "Authorization": SIGNED}, body=bomb)
    assert status == 413
    assert f"at most {MAX_INFLATED} bytes decompressed".encode() in body
    assert vm_kib(pid, "VmHWM") - before < 200 * 1024           # peak RSS: under +200 MB
    assert LocalApi(server.url).health()["pid"] == pid


def test_a_gzip_body_within_the_cap_is_served(server, aws):
    logs = aws("logs")
    group = f"/fw/{name()}"
    logs.create_log_group(logGroupName=group)
    body = gzip.compress(json.dumps({"logGroupNamePrefix": group}).encode())
    status, _, answer = request(server.url, "POST", "/", headers={
        "Content-Encoding": "gzip", "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
        "Content-Type": "application/x-amz-json-1.1", "Authorization": SIGNED}, body=body)
    assert status == 200
    assert [g["logGroupName"] for g in json.loads(answer)["logGroups"]] == [group]


def test_a_body_past_the_raw_cap_is_refused_before_it_is_read(server):
    status, _, body = request(server.url, "PUT", "/some-bucket/key", headers={
        "Content-Length": str(MAX_BODY + 1), "Authorization": SIGNED.replace("/logs/", "/s3/")},
        body=b"x", send_body=False)
    assert status == 413
    assert f"at most {MAX_BODY} bytes".encode() in body


# ---- a catastrophic metric-filter regex ------------------------------------------------------

def test_put_log_events_with_a_catastrophic_metric_filter_answers(server, aws):
    logs = aws("logs")
    group, stream = f"/fw/{name()}", "s"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    metric = f"Rejectx{name()}"
    logs.put_metric_filter(logGroupName=group, filterName="bomb", filterPattern="%.*.*.*.*.*.*.*.*REJECTX%",
                           metricTransformations=[{"metricName": metric, "metricNamespace": "FwTest",
                                                   "metricValue": "1"}])
    line = "2 123456789012 eni-0a1b2c3d4e5f60718 10.0.1.5 203.0.11.9 49152 443 6 10 840 1790000000 ACCEPT OK"
    now = int(LocalApi(server.url).health()["now"] * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now, "message": line}, {"timestamp": now, "message": line.replace("ACCEPT", "REJECTX")}])
    assert LocalApi(server.url).health()["pid"] == server.proc.pid
    found = aws("cloudwatch").list_metrics(Namespace="FwTest", MetricName=metric)["Metrics"]
    assert [m["MetricName"] for m in found] == [metric]          # the matching event was counted


# ---- the log rotates -------------------------------------------------------------------------

def test_the_server_log_rotates_by_size(tmp_path):
    log_file = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen([sys.executable, "-m", "flowwatch.local.server", "--port", "0", "--state-dir",
                             str(tmp_path), "--tick", "3600", "--log-file", str(log_file), "--log-max-bytes", "2000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        state = tmp_path / "server.json"
        for _ in Poll(timeout=30, interval=0.05).ticks():
            if state.exists() or proc.poll() is not None:
                break
        url = json.loads(state.read_text())["url"]
        for i in range(200):   # each refusal is one log line of ~150 bytes: 30 KB in all
            assert request(url, host=f"evil-{i}.example")[0] == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("server.log"))
    assert names == ["server.log", *(f"server.log.{n}" for n in range(1, LOG_BACKUPS + 1))]
    sizes = [(tmp_path / n).stat().st_size for n in names]
    assert max(sizes) <= 2000 and sum(sizes) <= 2000 * (LOG_BACKUPS + 1)
    assert "evil-199.example" in log_file.read_text()            # the newest lines are in server.log
    assert all((tmp_path / n).stat().st_mode & 0o077 == 0 for n in names)
