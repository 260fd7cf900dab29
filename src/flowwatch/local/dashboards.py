"""CloudWatch dashboard tags, which moto 5.2.5 does not keep.

moto drops PutDashboard's ``Tags`` and answers TagResource / ListTagsForResource on a dashboard ARN with
ResourceNotFoundException / no tags. AWS applies ``Tags`` when PutDashboard CREATES the dashboard (on an update
they are ignored: CloudWatch API Reference, PutDashboard), lets TagResource / UntagResource / ListTagsForResource
name it by ``arn:<partition>:cloudwatch::<account>:dashboard/<name>`` (no region: dashboards are global), and
forgets the tags with the dashboard. :class:`DashboardTags` does that:

* ``after_put_dashboard`` / ``after_delete_dashboards`` (taps, after moto's successful answer): remember the
  tags of a dashboard the call created, forget those of the deleted ones;
* ``tag_resource`` / ``untag_resource`` / ``list_tags_for_resource`` (served): a dashboard ARN is answered
  here; any other ARN (alarms, Contributor Insights rules) is handed to moto unchanged through
  :attr:`flowwatch.local.dataplane.DataPlane.moto_clients`, and moto's answer (or error) returned as it is.

Whether a PutDashboard creates is known from the dashboards this server has seen (moto's state lives only as
long as this server, and every PutDashboard passes here), so no extra call is made before it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flowwatch.local.api import ServiceError, required
from flowwatch.local.loopback import Clients


def dashboard_of(arn: str) -> tuple[str, str] | None:
    """(account, name) of a dashboard ARN, else None."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "cloudwatch" and parts[3] == "" and parts[5].startswith("dashboard/"):
        return parts[4], parts[5].removeprefix("dashboard/")
    return None


class DashboardTags:
    """The tags of every dashboard, by (account, name)."""

    def __init__(self, clients: Clients, moto: Clients) -> None:
        self.clients = clients          # to learn the account of a request's region
        self.moto = moto                # moto's own answers, for ARNs that are not dashboards
        self._tags: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    def tags(self, account: str, name: str) -> dict[str, str] | None:
        with self._lock:
            found = self._tags.get((account, name))
            return dict(found) if found is not None else None

    # ---- taps ----
    def after_put_dashboard(self, region: str, request: dict[str, Any], body: bytes) -> None:
        name = request.get("DashboardName")
        if not name:
            return
        key = (self.clients.account(region), str(name))
        sent = {str(t["Key"]): str(t.get("Value", "")) for t in request.get("Tags") or () if "Key" in t}
        with self._lock:
            if key not in self._tags:            # created by this call: its tags apply (an update ignores them)
                self._tags[key] = sent

    def after_delete_dashboards(self, region: str, request: dict[str, Any], body: bytes) -> None:
        account = self.clients.account(region)
        with self._lock:
            for name in request.get("DashboardNames") or ():
                self._tags.pop((account, str(name)), None)

    # ---- served ----
    def tag_resource(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        arn = str(required(request, "ResourceARN"))
        key = dashboard_of(arn)
        if key is None:
            return self._moto(region, "tag_resource", ResourceARN=arn, Tags=request.get("Tags") or [])
        new = {str(t["Key"]): str(t.get("Value", "")) for t in request.get("Tags") or ()}
        with self._lock:
            self._known(key, arn)[key].update(new)
        return {}

    def untag_resource(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        arn = str(required(request, "ResourceARN"))
        key = dashboard_of(arn)
        if key is None:
            return self._moto(region, "untag_resource", ResourceARN=arn, TagKeys=request.get("TagKeys") or [])
        with self._lock:
            tags = self._known(key, arn)[key]
            for k in request.get("TagKeys") or ():
                tags.pop(str(k), None)
        return {}

    def list_tags_for_resource(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        arn = str(required(request, "ResourceARN"))
        key = dashboard_of(arn)
        if key is None:
            return self._moto(region, "list_tags_for_resource", ResourceARN=arn)
        with self._lock:
            tags = self._known(key, arn)[key]
            return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}

    def _known(self, key: tuple[str, str], arn: str) -> dict[tuple[str, str], dict[str, str]]:
        """The store, once ``key`` is a dashboard this server has (with the lock held)."""
        if key not in self._tags:
            raise ServiceError("ResourceNotFoundException", f"The resource {arn} does not exist.", 404)
        return self._tags

    def _moto(self, region: str, operation: str, **args: Any) -> dict[str, Any]:
        """moto's answer to the same call (an alarm's or a Contributor Insights rule's tags)."""
        call: Callable[..., Any] = getattr(self.moto.client("cloudwatch", region), operation)
        try:
            answer = call(**args)
        except Exception as exc:
            response = getattr(exc, "response", None)
            if not isinstance(response, dict):
                raise
            error = response.get("Error", {})
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            raise ServiceError(str(error.get("Code") or "InternalFailure"), str(error.get("Message") or ""),
                               status) from None
        answer.pop("ResponseMetadata", None)
        return dict(answer)

