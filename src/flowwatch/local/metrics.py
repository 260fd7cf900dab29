"""CloudWatch ListMetrics, each metric once (moto lists a metric once per datum put).

A metric is its namespace, name and dimensions (the CloudWatch User Guide, "Metrics concepts"):
the local AWS reads moto's full answer (its filters applied: Namespace, MetricName, Dimensions,
RecentlyActive as moto honours it) through :attr:`DataPlane.moto_clients`, keeps the first
of each metric, and pages as AWS does, 500 metrics a page with a NextToken.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from flowwatch.local.api import ServiceError
from flowwatch.local.loopback import Clients

PAGE = 500
FILTERS = ("Namespace", "MetricName", "Dimensions", "RecentlyActive", "IncludeLinkedAccounts", "OwningAccount")


def list_metrics(moto: Clients, region: str, request: dict[str, Any]) -> dict[str, Any]:
    args = {k: request[k] for k in FILTERS if request.get(k) is not None}
    seen: set[tuple[Any, ...]] = set()
    metrics = []
    for page in moto.client("cloudwatch", region).get_paginator("list_metrics").paginate(**args):
        for metric in page.get("Metrics", ()):
            key = (metric.get("Namespace"), metric.get("MetricName"),
                   tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions") or ())))
            if key not in seen:
                seen.add(key)
                metrics.append(metric)
    query = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode()).hexdigest()[:16]
    offset = _offset(request.get("NextToken"), query, len(metrics))
    answer: dict[str, Any] = {"Metrics": metrics[offset:offset + PAGE]}
    if offset + PAGE < len(metrics):
        answer["NextToken"] = base64.urlsafe_b64encode(json.dumps({"q": query, "o": offset + PAGE}).encode()).decode()
    return answer


def _offset(token: Any, query: str, size: int) -> int:
    if token is None:
        return 0
    try:
        value = json.loads(base64.urlsafe_b64decode(str(token).encode("ascii")))
        offset = int(value["o"]) if value["q"] == query else -1
    except (ValueError, KeyError, TypeError):
        offset = -1
    if not 0 <= offset <= size:
        raise ServiceError("InvalidNextToken", "The service cannot process this request: the next token is invalid.")
    return offset
