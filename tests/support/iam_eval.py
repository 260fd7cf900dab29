"""A small IAM-like evaluator of identity policies, enough for flowwatch's caller policy: Allow statements,
Action and Resource wildcards (``*`` and ``?``), policy variables (``${aws:PrincipalAccount}``), and the condition
operators StringEquals, StringLike, ArnEquals, ArnLike and their ``ForAllValues:`` forms.

As in IAM: a condition key missing from the request context makes a plain operator false (so the statement does
not match), and makes a ``ForAllValues:`` operator true; all operators of a statement must hold, and a key's
list of values holds when any value matches.
"""

from __future__ import annotations

import re
from typing import Any


def _like(value: str, pattern: str) -> bool:
    return re.fullmatch(_glob(pattern), value, re.S) is not None


def _glob(pattern: str) -> str:
    """IAM wildcards: ``*`` any run of characters, ``?`` one character; nothing else is special."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def _substitute(value: str, context: dict[str, Any]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: str(context.get(m.group(1), m.group(0))), value)


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _test(op: str, actual: str, wanted: str) -> bool:
    if op in ("StringEquals", "ArnEquals"):
        return actual == wanted
    if op in ("StringLike", "ArnLike"):
        return _like(actual, wanted)
    raise ValueError(f"operator {op} not known to this evaluator")


def _condition_holds(condition: dict[str, Any], context: dict[str, Any]) -> bool:
    for operator, block in condition.items():
        for key, wanted in block.items():
            wanted = [_substitute(w, context) for w in _values(wanted)]
            if operator.startswith("ForAllValues:"):
                op = operator.split(":", 1)[1]
                if key in context and not all(any(_test(op, a, w) for w in wanted) for a in _values(context[key])):
                    return False
                continue
            if key not in context:
                return False
            if not any(_test(operator, a, w) for a in _values(context[key]) for w in wanted):
                return False
    return True


def statement_allows(statement: dict[str, Any], action: str, resource: str, context: dict[str, Any]) -> bool:
    actions = _values(statement["Action"])
    resources = [_substitute(r, context) for r in _values(statement["Resource"])]
    return (statement["Effect"] == "Allow"
            and any(_like(action.lower(), a.lower()) for a in actions)
            and any(_like(resource, r) for r in resources)
            and _condition_holds(statement.get("Condition") or {}, context))


def allows(policy: dict[str, Any], action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    """Whether ``policy`` allows ``action`` on ``resource`` in the request ``context`` (condition keys)."""
    return any(statement_allows(st, action, resource, context or {}) for st in policy["Statement"])
