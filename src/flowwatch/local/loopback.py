"""boto3 clients of the local server against itself: how every part of the data plane reads and
writes what moto stores (never moto's internals).

The data plane stands for the AWS services of every region the server has seen, so it cannot use
``flowwatch.aws.Aws`` (one region): :class:`LoopbackClients` makes one client per (service, region),
all on one boto3 session (service models load once) and one endpoint, the server's own URL.

The parts take a :class:`Clients` (this protocol), so their unit tests pass clients of moto
in-process instead.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol


class Clients(Protocol):
    """What a data-plane part needs to reach AWS: a client per (service, region), the account id."""

    def client(self, service: str, region: str) -> Any: ...

    def account(self, region: str) -> str: ...


class LoopbackClients:
    """Clients of ``endpoint`` (the server itself), made on first use and kept."""

    def __init__(self, endpoint: str = "", key: str = "flowwatch-local") -> None:
        self.endpoint = endpoint          # set by the server once it listens, before any call
        self.key = key                    # the access key its requests are signed with
        self._clients: dict[tuple[str, str], Any] = {}
        self._session: Any = None
        self._accounts: dict[str, str] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                import boto3

                from flowwatch.aws import retry_config

                if self._session is None:   # one session for every region: service models load once
                    self._session = boto3.session.Session()
                self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint, config=retry_config(self.endpoint),
                    aws_access_key_id=self.key, aws_secret_access_key=self.key)
            return self._clients[key]

    def account(self, region: str) -> str:
        if region not in self._accounts:
            self._accounts[region] = self.client("sts", region).get_caller_identity()["Account"]
        return self._accounts[region]
