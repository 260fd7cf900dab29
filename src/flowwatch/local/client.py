"""The client of a local server's own routes (``/_flowwatch/...``): health, traffic, inbox, alarms,
evaluate, clock.

Product code sees it only through ``Context.local_api`` (the ``flowwatch.model.LocalAws`` protocol:
``traffic`` and ``inbox``); ``cli/`` builds it for ``--local``. Standard library only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from flowwatch.errors import FlowwatchError


class LocalError(FlowwatchError):
    """The local AWS could not be started, reached or stopped (exit 1)."""


class LocalApi:
    """Client of the ``/_flowwatch/`` routes of a local server."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LocalApi({self.url!r})"

    def _call(self, method: str, route: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        req = urllib.request.Request(f"{self.url}/_flowwatch/{route}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise LocalError(f"local AWS: {method} /_flowwatch/{route} failed: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise LocalError(f"local AWS at {self.url} is not reachable: {getattr(exc, 'reason', exc)}",
                             hint="start it with `flowwatch local start`, or use --local") from None

    def health(self) -> dict[str, Any] | None:
        """The server's health document, or None if nothing (or not our server) answers."""
        try:
            req = urllib.request.Request(f"{self.url}/_flowwatch/health")
            with urllib.request.urlopen(req, timeout=2) as resp:
                data = json.loads(resp.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("service") == "flowwatch-local" else None

    def traffic(self, *, region: str, fields: Sequence[str], lines: list[str], eni: str | None = None,
                vpc_id: str | None = None, subnet_id: str | None = None) -> dict[str, Any]:
        """Hand flow-log records to the local flow-log service, which delivers them now."""
        return self._call("POST", "traffic", {"region": region, "fields": list(fields), "lines": lines, "eni": eni,
                                              "vpc_id": vpc_id, "subnet_id": subnet_id})

    def inbox(self) -> list[dict[str, Any]]:
        return self._call("GET", "inbox")["messages"]

    def alarms(self) -> dict[str, Any]:
        return self._call("GET", "alarms")

    def evaluate(self) -> list[dict[str, Any]]:
        return self._call("POST", "evaluate", {})["changes"]

    def advance(self, seconds: float) -> float:
        return self._call("POST", "clock", {"advance": seconds})["offset"]
