"""An alert rule's ``match`` (``{field: value}``) as CloudWatch sees it: pure, no AWS, no I/O.

One ``match`` feeds two AWS languages, so both always select the same records:

* a space-delimited **metric-filter pattern** condition per field (threshold and anomaly rules), through
  :meth:`flowwatch.records.RecordFormat.filter_pattern`;
* **Contributor Insights filters** (contributors rules), through :func:`insight_filters`.

Values (``field: value``):

* ``1``, ``"REJECT"``, ``"10.0.0.5"``: equal to it. A string may start with an operator (``!=``, ``>=``,
  ``<=``, ``>``, ``<``, ``=``; relational ones need a number) and may hold ``*`` at its start or end
  (wildcard: ``10.0.*`` begins with ``10.0.``).
* ``[22, 3389]``: any of them (1-10 values, no operators).
* a CIDR block on an address field (``srcaddr``, ``dstaddr``, ``pkt-srcaddr``, ``pkt-dstaddr``):
  ``"10.0.0.0/24"`` inside it, ``"!=10.0.0.0/24"`` outside it; ``vpc`` / ``"!=vpc"``: the stack VPC's CIDR
  (known at plan time: the configured ``network.vpc_cidr``, or the adopted VPC's).

Neither language has CIDR matching, so a block becomes the address prefixes it covers, as wildcards
(``10.0.0.0/24`` -> ``10.0.0.*``; ``10.0.0.0/20`` -> ``10.0.0.*`` ... ``10.0.15.*``; ``10.0.0.0/28`` -> the 16
addresses). Blocks needing more than :data:`MAX_ALTERNATIVES` prefixes (``/17``-``/19``, ``/25``-``/27``, ...)
are refused, since a pattern is at most 1024 characters.

Sources: Amazon CloudWatch Logs User Guide, "Filter pattern syntax for metric filters" (space-delimited
events: ``=``/``!=`` with ``*`` at either end, ``&&``/``||`` over one field); Amazon CloudWatch User
Guide, "Contributor Insights rule syntax" (Filters: at most 4, ANDed; operators ``In``, ``NotIn``,
``StartsWith`` with at most 10 strings, ``GreaterThan``, ``LessThan``, ``EqualTo``, ``NotEqualTo`` with one
number, ``IsPresent``), https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/ContributorInsights-RuleSyntax.html
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ADDRESS_FIELDS = frozenset({"srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr"})
VPC = "vpc"
MAX_ALTERNATIVES = 16        # prefixes one CIDR may become in a filter pattern
MAX_LIST = 10                # values of one list (Contributor Insights: In/NotIn/StartsWith take at most 10)
MAX_INSIGHT_FILTERS = 4      # Contributor Insights: "an array of as many as four Filters"
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CIDR = re.compile(r"[0-9.]+/\d{1,2}")

Scalar = str | int
MatchValue = Scalar | list[Scalar]


class MatchError(ValueError):
    """A ``match`` value neither language can say; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Condition:
    """One field's condition: ``op`` over ``values`` (``=``: any of them; ``!=``: none of them; a relational
    operator: one number). ``wild``: some value has a ``*``."""

    field: str
    op: str
    values: tuple[str, ...]

    @property
    def wild(self) -> bool:
        return any("*" in v for v in self.values)


def condition(field: str, value: Any, *, is_int: bool, vpc_cidr: str | None = None) -> Condition:
    """``value`` of ``match`` for ``field`` (an AWS field name) as a :class:`Condition`.

    ``vpc_cidr``: what ``vpc`` stands for; None = the value ``vpc`` is refused (no VPC known yet)."""
    if isinstance(value, list):
        if not 1 <= len(value) <= MAX_LIST:
            raise MatchError(f"'{field}': a list of 1-{MAX_LIST} values is allowed, got {len(value)}")
        values: list[str] = []
        for item in value:
            part = condition(field, item, is_int=is_int, vpc_cidr=vpc_cidr)
            if part.op != "=":
                raise MatchError(f"'{field}': list values are matched with '=' (any of them); "
                                 f"{part.op} is not allowed inside a list")
            values += part.values
        return Condition(field, "=", _unique(values))
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MatchError(f"'{field}': a value is a string, an integer or a list of them, got {value!r}")
    if isinstance(value, int):
        return Condition(field, "=", (str(value),))
    op, operand = "=", value.strip()
    for candidate in OPERATORS:
        if operand.startswith(candidate):
            op, operand = candidate, operand[len(candidate):].strip()
            break
    if not operand:
        raise MatchError(f"'{field}': empty value")
    if '"' in operand or "\n" in operand or "\\" in operand:
        raise MatchError(f"'{field}': a value may not contain quotes, backslashes or newlines")
    numeric = bool(_NUMBER.fullmatch(operand))
    if op not in ("=", "!=") and not numeric:
        raise MatchError(f"'{field}{op}{operand}': {op} needs a number")
    if operand == VPC or _CIDR.fullmatch(operand):
        if field not in ADDRESS_FIELDS:
            raise MatchError(f"'{field}': a CIDR block (or vpc) matches address fields only "
                             f"({', '.join(sorted(ADDRESS_FIELDS))})")
        if operand == VPC:
            if vpc_cidr is None:
                raise MatchError(f"'{field}': vpc is not known here")
            operand = vpc_cidr
        return Condition(field, op, cidr_prefixes(operand, field))
    if is_int and not numeric and operand not in ("*", "-"):
        raise MatchError(f"'{field}': {operand!r} is not a number (the field holds integers)")
    if "*" in operand.strip("*"):
        raise MatchError(f"'{field}': '*' is a wildcard at the start or end of a value only, got {operand!r}")
    return Condition(field, op, (operand,))


def cidr_prefixes(block: str, field: str = "address") -> tuple[str, ...]:
    """The wildcard prefixes (or addresses) that together cover an IPv4 CIDR block, in order."""
    try:
        net = ipaddress.IPv4Network(block, strict=True)
    except ValueError as exc:
        raise MatchError(f"'{field}': {block!r} is not an IPv4 CIDR block ({exc})") from None
    octets = str(net.network_address).split(".")
    full, rest = divmod(net.prefixlen, 8)
    if full == 4:
        return (str(net.network_address),)
    if rest == 0:
        return (".".join(octets[:full] + ["*"]),)
    count = 2 ** (8 - rest)
    if count > MAX_ALTERNATIVES:
        raise MatchError(f"'{field}': {block} would take {count} address prefixes in a filter pattern (at most "
                         f"{MAX_ALTERNATIVES}); use a block whose length is a multiple of 8 or 4-7 more "
                         "(/8, /12-/16, /20-/24, /28-/32)")
    first = int(octets[full])
    head = octets[:full]
    if full == 3:
        return tuple(".".join(head + [str(first + i)]) for i in range(count))
    return tuple(".".join(head + [str(first + i), "*"]) for i in range(count))


def conditions(fields: Mapping[str, bool], match: Mapping[str, Any], *,
               vpc_cidr: str | None = None) -> list[Condition]:
    """Every condition of ``match``; ``fields``: AWS name -> holds integers, for the keys as resolved by the
    caller (record format)."""
    return [condition(name, value, is_int=fields[name], vpc_cidr=vpc_cidr) for name, value in match.items()]


def pattern_term(column: str, cond: Condition) -> str:
    """The space-delimited pattern term of one field: ``action=REJECT``, ``dstport=22 || dstport=3389``,
    ``dstaddr!=10.0.0.* && dstaddr!=10.0.1.*``, ``bytes>1000``."""
    joiner = " && " if cond.op == "!=" else " || "
    return joiner.join(f"{column}{cond.op}{_pattern_value(v)}" for v in cond.values)


def _pattern_value(value: str) -> str:
    return value if re.fullmatch(r"[A-Za-z0-9._*]+", value) else f'"{value}"'


def insight_filters(conds: Sequence[Condition], alias: Mapping[str, str]) -> list[dict[str, Any]]:
    """Contributor Insights ``Filters`` for the conditions (``alias``: AWS field name -> the rule's field
    alias). MatchError when Contributor Insights cannot say one: it has no "does not start with" (so no
    ``!=`` CIDR or wildcard), no "ends with", and ``>=``/``<=`` are written with integers only."""
    out: list[dict[str, Any]] = []
    for cond in conds:
        name = alias[cond.field]
        if cond.op in (">", "<", ">=", "<="):
            number = float(cond.values[0])
            if cond.op in (">=", "<="):
                if not number.is_integer():
                    raise MatchError(f"'{cond.field}{cond.op}{cond.values[0]}': Contributor Insights compares "
                                     "with > and < only; use an integer")
                number += -1 if cond.op == ">=" else 1
            key = "GreaterThan" if cond.op.startswith(">") else "LessThan"
            out.append({"Match": name, key: _number(number)})
            continue
        if any(v.startswith("*") for v in cond.values):
            raise MatchError(f"'{cond.field}': Contributor Insights has no 'ends with' or 'contains' filter; "
                             "a value may end with '*' (starts with), not begin with it")
        prefixes = [v for v in cond.values if v.endswith("*")]
        if cond.op == "!=":
            if prefixes:
                raise MatchError(f"'{cond.field}': Contributor Insights has no 'does not start with' filter, so a "
                                 "contributors rule cannot match addresses outside a block or '!=' a wildcard")
            out.append({"Match": name, "NotIn": list(cond.values)})
        elif prefixes and len(prefixes) != len(cond.values):
            raise MatchError(f"'{cond.field}': mix of exact values and prefixes; Contributor Insights ANDs its "
                             "filters, so one field takes either exact values or prefixes")
        elif prefixes:
            if len(prefixes) > MAX_LIST:
                raise MatchError(f"'{cond.field}': {len(prefixes)} prefixes; Contributor Insights' StartsWith "
                                 f"takes at most {MAX_LIST}")
            out.append({"Match": name, "StartsWith": [p[:-1] for p in prefixes]})
        elif len(cond.values) == 1 and _NUMBER.fullmatch(cond.values[0]):
            out.append({"Match": name, "EqualTo": _number(float(cond.values[0]))})
        else:
            out.append({"Match": name, "In": list(cond.values)})
    if len(out) > MAX_INSIGHT_FILTERS:
        raise MatchError(f"{len(out)} fields in match; a contributors rule may filter on at most "
                         f"{MAX_INSIGHT_FILTERS} (Contributor Insights' limit)")
    return out


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def _unique(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
