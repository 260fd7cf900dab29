"""EC2 DescribeFlowLogs with the ``destinationOptions`` of every S3 flow log (moto drops them).

AWS returns DestinationOptions for each flow log that delivers to S3, the defaults included
(``plain-text``, not Hive-compatible, not per hour); the EC2 model (botocore ``FlowLog``:
``destinationOptions`` of shape ``DestinationOptionsResponse``: ``fileFormat``,
``hiveCompatiblePartitions``, ``perHourPartition``) names the XML elements. The values are the
copy :class:`~flowwatch.local.flow_logs.FlowLogService` keeps from CreateFlowLogs
(``destination_options``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

DEFAULTS = {"FileFormat": "plain-text", "HiveCompatiblePartitions": False, "PerHourPartition": False}
ELEMENTS = (("FileFormat", "fileFormat"), ("HiveCompatiblePartitions", "hiveCompatiblePartitions"),
            ("PerHourPartition", "perHourPartition"))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def complete_describe_flow_logs(body: bytes, options: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> bytes:
    """moto's DescribeFlowLogs answer with ``destinationOptions`` added to each S3 flow log that lacks
    them; ``options(flow_log)``: DestinationOptions of a describe-shaped flow log (FlowLogId, Tags)."""
    root = ET.fromstring(body)
    ns = root.tag[:-len(_local(root.tag))]
    if ns:
        ET.register_namespace("", ns[1:-1])
    changed = False
    for flow_set in (el for el in root if _local(el.tag) == "flowLogSet"):
        for item in flow_set:
            fields = {_local(child.tag): child for child in item}
            kind = fields.get("logDestinationType")
            if kind is None or kind.text != "s3" or "destinationOptions" in fields or "flowLogId" not in fields:
                continue
            tags = [{"Key": t.findtext(f"{ns}key") or "", "Value": t.findtext(f"{ns}value") or ""}
                    for t in (fields["tagSet"] if "tagSet" in fields else ())]
            chosen = {**DEFAULTS, **options({"FlowLogId": fields["flowLogId"].text, "Tags": tags})}
            element = ET.SubElement(item, f"{ns}destinationOptions")
            for name, xml_name in ELEMENTS:
                value = chosen[name]
                ET.SubElement(element, f"{ns}{xml_name}").text = str(value).lower() if isinstance(value, bool) else str(value)
            changed = True
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) if changed else body
