"""Athena named queries as AWS keeps them (moto: BatchGetNamedQuery and DeleteNamedQuery not
implemented, GetNamedQuery of an unknown id a 500, DeleteWorkGroup ignores RecursiveDeleteOption).

moto cannot delete a named query, so the local AWS hides the deleted ones: it keeps the ids deleted
per region and leaves them out of every answer (ListNamedQueries, GetNamedQuery,
BatchGetNamedQuery). What AWS does, per the Athena API reference:

* DeleteNamedQuery: the query is gone (an unknown id: InvalidRequestException);
* DeleteWorkGroup with ``RecursiveDeleteOption``: the work group's named queries go with it (else
  each local up/down cycle would orphan them, and a new work group of that name adopt them);
  without it, a work group that still holds named queries is not deleted (InvalidRequestException);
* BatchGetNamedQuery: ``NamedQueries`` for the ids found, ``UnprocessedNamedQueryIds`` for the
  others, 1 to 50 ids.

moto's own answers are read through :attr:`DataPlane.moto_clients` (requests the server hands to
moto unchanged), so serving an operation can still ask moto for it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flowwatch.local.api import ServiceError, required
from flowwatch.local.loopback import Clients

BATCH = 50


class NamedQueries:
    """The deleted named-query ids, and the operations that must not show them."""

    def __init__(self, moto: Clients) -> None:
        self.moto = moto
        self._deleted: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def _hidden(self, region: str, query_id: str) -> bool:
        with self._lock:
            return (region, query_id) in self._deleted

    def _ids(self, region: str, workgroup: str | None = None) -> list[str]:
        """The visible named-query ids of ``workgroup`` (None: of every work group)."""
        athena = self.moto.client("athena", region)
        groups = [workgroup] if workgroup else self._work_groups(region)
        return [i for group in groups for page in athena.get_paginator("list_named_queries").paginate(WorkGroup=group)
                for i in page["NamedQueryIds"] if not self._hidden(region, i)]

    def _work_groups(self, region: str) -> list[str]:
        athena, names, token = self.moto.client("athena", region), [], None
        while True:   # ListWorkGroups has no paginator in botocore
            page = athena.list_work_groups(**({"NextToken": token} if token else {}))
            names += [g["Name"] for g in page["WorkGroups"]]
            token = page.get("NextToken")
            if not token:
                return names

    def _get(self, region: str, query_id: str) -> dict[str, Any] | None:
        if query_id not in self._ids(region):   # moto answers 500 for an unknown id
            return None
        query: dict[str, Any] = self.moto.client("athena", region).get_named_query(NamedQueryId=query_id)["NamedQuery"]
        return query

    # ---- served ----------------------------------------------------------------------------
    def get_named_query(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        query_id = str(required(request, "NamedQueryId"))
        query = self._get(region, query_id)
        if query is None:
            raise ServiceError("InvalidRequestException", f"NamedQuery {query_id} was not found")
        return {"NamedQuery": query}

    def batch_get_named_query(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        ids = required(request, "NamedQueryIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= BATCH:
            raise ServiceError("InvalidRequestException", "1 validation error detected: Value at 'namedQueryIds' "
                               f"failed to satisfy constraint: Member must have length between 1 and {BATCH}")
        known = set(self._ids(region))
        athena = self.moto.client("athena", region)
        found, missing = [], []
        for query_id in dict.fromkeys(str(i) for i in ids):
            if query_id in known:
                found.append(athena.get_named_query(NamedQueryId=query_id)["NamedQuery"])
            else:
                missing.append({"NamedQueryId": query_id, "ErrorCode": "INVALID_INPUT",
                                "ErrorMessage": f"NamedQuery {query_id} was not found"})
        return {"NamedQueries": found, "UnprocessedNamedQueryIds": missing}

    def delete_named_query(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        query_id = str(required(request, "NamedQueryId"))
        if query_id not in self._ids(region):
            raise ServiceError("InvalidRequestException", f"NamedQuery {query_id} was not found")
        with self._lock:
            self._deleted.add((region, query_id))
        return {}

    def delete_work_group(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        name = str(required(request, "WorkGroup"))
        athena = self.moto.client("athena", region)
        queries = self._ids(region, name) if name in self._work_groups(region) else []
        if queries and not request.get("RecursiveDeleteOption"):
            raise ServiceError("InvalidRequestException", f"WorkGroup {name} is not empty")
        with self._lock:
            self._deleted.update((region, i) for i in queries)
        athena.delete_work_group(WorkGroup=name, RecursiveDeleteOption=bool(request.get("RecursiveDeleteOption")))
        return {}

    # ---- completed ----------------------------------------------------------------------------
    def after_list_named_queries(self, region: str, request: Any, body: bytes) -> bytes:
        answer = json.loads(body)
        answer["NamedQueryIds"] = [i for i in answer.get("NamedQueryIds") or () if not self._hidden(region, i)]
        return json.dumps(answer).encode("utf-8")
