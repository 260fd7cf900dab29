"""AWS's Service Authorization Reference (SAR), as far as flowwatch's caller policy uses it.

``tests/support/data/sar_extract.json`` is a committed extract: for each IAM action the policy grants, the
resource types it can be scoped to (with the condition keys each adds) and its own condition keys; for each
such resource type, its ARN template and condition keys. It was made from the SAR pages
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_<service>.html) as kept by
salesforce/policy_sentry in ``policy_sentry/shared/data/docs/`` (commit recorded in the file):

    python -m tests.support.sar PATH/TO/policy_sentry/shared/data/docs > tests/support/data/sar_extract.json

``check(policy)`` lists what a policy document asks of AWS that the SAR says it cannot do: an action scoped to
an ARN of a resource type it lacks (or to a specific ARN when it has no resource type, which never matches),
and a condition key neither the action, its resource types nor the global keys support.
"""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

EXTRACT = Path(__file__).resolve().parent / "data" / "sar_extract.json"

PAGES = {"ec2": "amazonec2", "iam": "awsidentityandaccessmanagementiam", "s3": "amazons3", "sns": "amazonsns",
         "cloudwatch": "amazoncloudwatch", "logs": "amazoncloudwatchlogs", "glue": "awsglue", "athena": "amazonathena",
         "ssm": "awssystemsmanager", "tag": "amazonresourcegrouptaggingapi", "sts": "awssecuritytokenservice"}

# Global condition keys (IAM User Guide, "AWS global condition context keys"): valid with every action.
GLOBAL_KEYS = ("aws:SourceAccount", "aws:SourceArn", "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalOrgID",
               "aws:PrincipalTag/", "aws:RequestedRegion", "aws:SecureTransport", "aws:SourceIp", "aws:SourceVpc",
               "aws:CalledVia", "aws:ViaAWSService", "aws:CurrentTime", "aws:MultiFactorAuthPresent", "aws:userid",
               "aws:username", "aws:ResourceAccount", "aws:ResourceOrgID")


class _Tables(HTMLParser):
    """Every <table> of a page as rows of (text, rowspan) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, int]]]] = []
        self._row: list[tuple[str, int]] | None = None
        self._cell: list[str] | None = None
        self._span = 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell, self._span = [], int(dict(attrs).get("rowspan") or 1)
        elif tag == "p" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(("".join(self._cell), self._span))
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _items(text: str) -> list[str]:
    return [item for item in (re.sub(r"\s+", "", part) for part in text.split("\n")) if item]


def parse_page(html: str) -> dict[str, Any]:
    """{"actions": {name: {"resource_types": {type: [keys]}, "required": [types], "condition_keys": [keys]}},
    "resource_types": {type: {"arn": template, "condition_keys": [keys]}}} of one SAR page."""
    parser = _Tables()
    parser.feed(html)
    actions_table = parser.tables[0]
    types_table = parser.tables[1] if len(parser.tables) > 1 and len(parser.tables[1][0]) == 3 else []
    actions: dict[str, Any] = {}
    current: dict[str, Any] | None = None
    for row in actions_table[1:]:
        cells = [text for text, _ in row]
        if len(cells) == 6:
            name = re.sub(r"\s+", "", cells[0]).removesuffix("[permissiononly]")
            current = actions.setdefault(name, {"resource_types": {}, "required": [], "condition_keys": []})
            cells = cells[3:]
        if current is None or len(cells) != 3:
            continue
        types, keys = _items(cells[0]), _items(cells[1])
        if types:
            for rtype in types:
                bare = rtype.rstrip("*")
                current["resource_types"].setdefault(bare, []).extend(keys)
                if rtype.endswith("*"):
                    current["required"].append(bare)
        else:
            current["condition_keys"].extend(keys)
    resource_types = {}
    for row in types_table[1:]:
        cells = [text for text, _ in row]
        if len(cells) == 3:
            resource_types[re.sub(r"\s+", "", cells[0])] = {"arn": re.sub(r"\s+", "", cells[1]),
                                                            "condition_keys": _items(cells[2])}
    return {"actions": actions, "resource_types": resource_types}


def extract(docs: Path, actions: set[str], source: str) -> dict[str, Any]:
    """The part of the SAR pages under ``docs`` that ``actions`` (``prefix:Action``) need."""
    out: dict[str, Any] = {"source": source, "actions": {}, "resource_types": {}}
    pages: dict[str, Any] = {}
    for action in sorted(actions):
        prefix, name = action.split(":")
        if prefix not in pages:
            pages[prefix] = parse_page((docs / f"list_{PAGES[prefix]}.html").read_text(encoding="utf-8"))
        entry = pages[prefix]["actions"][name]          # KeyError: the SAR has no such action
        out["actions"][action] = entry
        for rtype in entry["resource_types"]:
            out["resource_types"][f"{prefix}:{rtype}"] = pages[prefix]["resource_types"][rtype]
    return out


def load() -> dict[str, Any]:
    return json.loads(EXTRACT.read_text(encoding="utf-8"))


def _arn_regex(template: str) -> re.Pattern[str]:
    """An ARN template (``arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}``) as a regex; a variable
    matches any run of characters, the policy's own ``*`` included, and the empty account of AWS-owned
    resources (``arn:aws:ec2:us-east-1::image/...``)."""
    parts = re.split(r"\$\{[^}]+\}", template)
    return re.compile("^" + "(.*)".join(re.escape(p) for p in parts) + "$")   # "::" of AWS-owned ARNs too


def resource_types_of(arn: str, action: str, sar: dict[str, Any]) -> list[str]:
    """The resource types of ``action`` whose ARN template ``arn`` (a policy Resource) has the shape of."""
    prefix = action.split(":")[0]
    found = []
    for rtype in sar["actions"][action]["resource_types"]:
        template = sar["resource_types"][f"{prefix}:{rtype}"]["arn"]
        if _arn_regex(template).match(arn):
            found.append(rtype)
    return found


def _key_supported(key: str, allowed: list[str]) -> bool:
    for supported in allowed:
        if key == supported:
            return True
        if "${" in supported and key.startswith(supported.split("${")[0]) and key != supported.split("${")[0]:
            return True
    return False


def check(policy: dict[str, Any], sar: dict[str, Any] | None = None) -> list[str]:
    """Everything in ``policy`` the SAR says does not apply (an empty list: every grant can match)."""
    sar = sar or load()
    problems = []
    for st in policy["Statement"]:
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        keys = [key for block in (st.get("Condition") or {}).values() for key in block]
        for action in st["Action"]:
            entry = sar["actions"].get(action)
            if entry is None:
                problems.append(f"{st['Sid']}: {action} is not an action of the SAR extract")
                continue
            prefix = action.split(":")[0]
            matched: list[str] = []
            for resource in resources:
                if resource == "*":           # matches every resource type, and actions without one
                    continue
                types = resource_types_of(resource, action, sar)
                if not types:
                    kinds = ", ".join(entry["resource_types"]) or "none: only '*' matches"
                    problems.append(f"{st['Sid']}: {action} scoped to {resource}, a resource type it lacks "
                                    f"(its resource types: {kinds})")
                matched.extend(types)
            allowed = list(entry["condition_keys"]) + list(GLOBAL_KEYS)
            for rtype in matched or (entry["resource_types"] if "*" in resources else []):
                allowed += entry["resource_types"].get(rtype, [])
                allowed += sar["resource_types"][f"{prefix}:{rtype}"]["condition_keys"]
            for key in keys:
                if not _key_supported(key, allowed):
                    problems.append(f"{st['Sid']}: {action} does not support condition key {key}")
    return problems


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from flowwatch import iam_policy

    docs = Path(argv[0])
    source = argv[1] if len(argv) > 1 else f"salesforce/policy_sentry {docs}"
    actions = {a for st in iam_policy.policy()["Statement"] for a in st["Action"]}
    actions |= {a for st in iam_policy.boundary_policy()["Statement"] for a in st["Action"]}
    actions |= {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"}
    sys.stdout.write(json.dumps(extract(docs, actions, source), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
