"""The local server serves SSM requests one at a time, so PutParameter(Overwrite=False), which moto implements as
check-then-insert, creates a parameter for exactly one of many concurrent callers (the stack lock relies on it)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from flowwatch.local.server import FlowwatchApp
from tests.local.test_dataplane import aws, server  # noqa: F401 (fixtures)

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/ssm/aws4_request, SignedHeaders=host, "
        "Signature=0")


class CheckThenInsert:
    """A WSGI backend with moto's shape of PutParameter: look, (be descheduled), insert."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.created = 0

    def __call__(self, environ, start_response):
        exists = "lock" in self.names
        time.sleep(0.01)                       # the window another request thread gets in
        if exists:
            start_response("400 Bad Request", [])
            return [b'{"__type":"ParameterAlreadyExists"}']
        self.names.add("lock")
        self.created += 1
        start_response("200 OK", [])
        return [b'{"Version":1}']


class Plane:
    def saw_region(self, region):
        pass


def test_ssm_requests_are_served_one_at_a_time():
    backend = CheckThenInsert()
    app = FlowwatchApp(backend, Plane(), {})   # type: ignore[arg-type]

    def put(_: int) -> bytes:
        environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": AUTH, "HTTP_HOST": "127.0.0.1",
                   "HTTP_X_AMZ_TARGET": "AmazonSSM.PutParameter", "CONTENT_TYPE": "application/x-amz-json-1.1"}
        return b"".join(app(environ, lambda status, headers, exc_info=None: None))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(put, range(8)))
    assert backend.created == 1
    assert sum(b"ParameterAlreadyExists" in a for a in answers) == 7


@pytest.mark.slow
def test_concurrent_put_parameter_without_overwrite_has_one_winner(aws):  # noqa: F811
    """On the real local server (moto behind flowwatch's middleware): 3 rounds of 8 racing creates."""
    clients = [aws("ssm") for _ in range(8)]
    for round_ in range(3):
        name = f"/flowwatch/race-{round_}-{time.time_ns()}/lock"
        barrier = threading.Barrier(len(clients))

        def put(client) -> bool:
            barrier.wait()
            try:
                client.put_parameter(Name=name, Value="x", Type="String", Overwrite=False)
                return True
            except client.exceptions.ParameterAlreadyExists:
                return False

        with ThreadPoolExecutor(len(clients)) as pool:
            won = list(pool.map(put, clients))
        assert won.count(True) == 1
