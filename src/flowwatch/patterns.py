"""Offline evaluator of CloudWatch Logs filter patterns and metric transformations.

CloudWatch Logs uses one filter-pattern language for metric filters, subscription filters,
``FilterLogEvents`` and Live Tail. moto stores patterns but evaluates none of them, so flowwatch
carries this evaluator: it follows the AWS documentation ("Filter pattern syntax for metric
filters, subscription filters, filter log events, and Live Tail", the MetricTransformation and
PutMetricFilter API references), summarised with sources in
``shared/conformance/FILTER_PATTERNS.md``. Where AWS is silent, the choices are written down in
``docs/PATTERNS.md``.

Pattern kinds (after trimming whitespace):

* empty, ``""`` or ``" "``: matches every event;
* ``%regex%``: an unanchored search with the documented regex subset;
* ``[f1, f2=..., ...]``: space-delimited fields, with conditions and one ``...``;
* ``{ $.path = ... && ... }``: JSON events;
* anything else: terms, quoted phrases, ``?`` optional terms and ``-`` exclusions.

Public API::

    pattern = compile_pattern("[..., action=REJECT, log_status]")   # PatternError if invalid
    pattern.matches(line)         # -> bool
    pattern.extract(line)         # -> {"action": "REJECT", ...} | None
    pattern.metric(line, {"metricValue": "1", "defaultValue": 0})   # -> {"value": 1.0, ...}
    pattern.extracted_values(line)              # -> {"$action": "REJECT", "$7": "..."} | None
    pattern.test_metric_filter([line, ...])     # -> TestMetricFilter's "matches":
        # [{"eventNumber": 1, "eventMessage": line, "extractedValues": {"$action": "REJECT", ...}}]
    PatternError.aws_message                    # AWS's InvalidParameterException text, e.g.
        # "Invalid character(s) in term ':'"; "Invalid filter pattern" when AWS names nothing

``extracted_values`` keys are TestMetricFilter's: ``$name`` for a named field, ``$N`` (1-based
position in the event) for an anonymous one, ``$1..$n`` for every field of ``[]``, ``{}`` for the
other kinds. Cases recorded against AWS itself are in ``tests/patterns/vectors/aws_recorded.json``.

Bounded: every pattern flowwatch accepts is evaluated in time linear in the event. Regexes run
on RE2 (google-re2: no backtracking), a pattern is at most ``MAX_PATTERN_LENGTH`` characters,
parentheses in a JSON pattern nest at most ``MAX_JSON_NESTING`` deep, and a regex or JSON
pattern looks at no more than the first ``MAX_EVENT_LENGTH`` characters of an event.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

__all__ = [
    "AWS_INVALID_PATTERN",
    "MAX_DIMENSIONS",
    "MAX_EVENT_LENGTH",
    "MAX_JSON_NESTING",
    "MAX_REPEAT",
    "MAX_PATTERN_LENGTH",
    "MAX_REGEXES",
    "MAX_REGEX_PROGRAM",
    "STANDARD_UNITS",
    "Pattern",
    "PatternError",
    "PatternKind",
    "compile_pattern",
]

MAX_PATTERN_LENGTH: Final = 1024
"""PutMetricFilter / MetricFilter: filterPattern is 0 to 1024 characters."""

MAX_EVENT_LENGTH: Final = 1024 * 1024
"""The largest event PutLogEvents accepts is 1 MB: a regex or JSON pattern reads no further."""

MAX_JSON_NESTING: Final = 32
"""Parentheses nest at most this deep in a JSON pattern (the parser and the evaluator recurse)."""

MAX_REPEAT: Final = 1000
"""The largest count in ``{m,n}`` (RE2's bound on a repetition)."""

MAX_REGEX_PROGRAM: Final = 200
"""The largest compiled regex (RE2 instructions). RE2's search is linear in the event, with a factor
up to the program's size when its DFA gives up (``a[ab]{20}c``-like regexes): this bounds that factor,
so that the worst accepted regex searches a 1 MiB event in about 2 s on this project's machine
(``benchmarks/bench_patterns.py --hostile``; 1000 instructions took 9 s). ``[0-9a-f]{64}`` is 132.
``\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}`` is 27 instructions."""

MAX_REGEXES: Final = 2
"""At most two regexes in one space-delimited or JSON pattern."""

MAX_DIMENSIONS: Final = 3
"""At most three dimensions per metric transformation."""

MAX_JSON_WILDCARDS: Final = 3
"""At most three selector wildcards in one JSON pattern (one per selector)."""

STANDARD_UNITS: Final = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds",
        "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
        "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
        "Percent", "Count",
        "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
        "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
        "Gigabits/Second", "Terabits/Second", "Count/Second",
        "None",
    }
)  # fmt: skip
"""CloudWatch ``StandardUnit`` values accepted by MetricTransformation.unit."""

PatternKind = Literal["all", "terms", "regex", "delimited", "json"]

_TRANSFORMATION_KEYS: Final = frozenset(
    {"metricName", "metricNamespace", "metricValue", "defaultValue", "dimensions", "unit"}
)

# A number as written in a pattern or found in a field: optional sign, integer or decimal,
# optional exponent. ASCII digits only (float() would also accept "1_000", "nan", "١").
_NUMBER_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

# One event field: a "quoted" field (backslash escapes the next character), a [bracketed]
# field, or a run of non-whitespace. Quotes and brackets group only at the start of a field.
_FIELD_RE: Final = re.compile(r'"((?:[^"\\]|\\.)*)"|\[([^\]]*)\]|(\S+)', re.DOTALL)

_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REGEX_SYMBOLS: Final = frozenset(":_#=@/;,- ")
_REGEX_OPERATORS: Final = frozenset("^$?[]{}|\\*+.")
_REGEX_ALLOWED: Final = _ALNUM | _REGEX_SYMBOLS | _REGEX_OPERATORS
_REGEX_CLASS_ESCAPES: Final = frozenset("dDsSwW")
# Characters that end an unquoted value in a space-delimited pattern, or may not appear in it.
_DELIMITED_VALUE_END: Final = frozenset(",]&|")
_DELIMITED_VALUE_BAD: Final = frozenset("\"[(){}=<>!%\\'`")
# Unquoted JSON values: alphanumerics plus the characters documented in examples.
_JSON_BARE_CHARS: Final = _ALNUM | frozenset("._*-+")


AWS_INVALID_PATTERN: Final = "Invalid filter pattern"
"""The message of AWS's InvalidParameterException for a pattern it cannot parse, when AWS gives
no more specific one."""


class PatternError(ValueError):
    """An invalid filter pattern (AWS answers InvalidParameterException).

    ``column`` is the 1-based position in the pattern text where the problem was found
    (None when the problem is the pattern as a whole); ``reason`` is the bare explanation in
    flowwatch's words; ``aws_message`` is the message AWS's InvalidParameterException carries
    for this pattern, as far as it is known (``"Invalid filter pattern"`` otherwise).
    """

    def __init__(self, reason: str, column: int | None = None, aws_message: str = AWS_INVALID_PATTERN) -> None:
        self.reason = reason
        self.column = column
        self.aws_message = aws_message
        super().__init__(f"column {column}: {reason}" if column is not None else reason)


def _invalid_term(term: str) -> str:
    """AWS's message for a term it refuses (an unquoted character it does not allow)."""
    return f"Invalid character(s) in term '{term}'"


def _to_number(text: str) -> float | None:
    """The value of a field written as a number, else None ("-", "n/a", "1_0", "nan")."""
    if text.isdigit() and text.isascii():
        return float(text)
    if _NUMBER_RE.match(text):
        return float(text)
    return None


def _split_fields(line: str) -> list[str]:
    """Split an event into space-delimited fields, as CloudWatch does.

    Any whitespace run separates fields; a field that starts with ``"`` runs to the next
    unescaped ``"`` and one that starts with ``[`` to the next ``]``; the quotes or brackets are
    not part of the value. An unterminated quote or bracket is an ordinary character.
    """
    if '"' not in line and "[" not in line:
        return line.split()
    return [quoted or bracketed or word for quoted, bracketed, word in _FIELD_RE.findall(line)]


# --------------------------------------------------------------------------------------------
# Scanning helpers shared by the parsers
# --------------------------------------------------------------------------------------------


class _Scanner:
    """A cursor over the pattern text; positions are indexes into the original text."""

    __slots__ = ("text", "pos", "end")

    def __init__(self, text: str, pos: int, end: int) -> None:
        self.text = text
        self.pos = pos
        self.end = end

    def error(self, reason: str, pos: int | None = None, aws_message: str = AWS_INVALID_PATTERN) -> PatternError:
        return PatternError(reason, (self.pos if pos is None else pos) + 1, aws_message)

    def skip_ws(self) -> None:
        text, end = self.text, self.end
        while self.pos < end and text[self.pos].isspace():
            self.pos += 1

    def peek(self, length: int = 1) -> str:
        return self.text[self.pos : min(self.pos + length, self.end)]

    def at_end(self) -> bool:
        return self.pos >= self.end

    def describe(self) -> str:
        """What the cursor points at, for messages: "'x'" or "the end of the pattern"."""
        if self.pos >= self.end:
            return "the end of the pattern"
        return repr(self.text[self.pos])

    def read_quoted(self) -> str:
        """Read a double-quoted string at the cursor; ``\\"`` and ``\\\\`` are escapes."""
        start = self.pos
        text, end = self.text, self.end
        out: list[str] = []
        i = start + 1
        while i < end:
            ch = text[i]
            if ch == "\\" and i + 1 < end and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            out.append(ch)
            i += 1
        raise self.error("unterminated quoted string", start)

    def read_regex(self) -> tuple[str, int]:
        """Read ``%body%`` at the cursor; returns the body and the index where it starts."""
        start = self.pos
        close = self.text.find("%", start + 1, self.end)
        if close == -1:
            raise self.error("unterminated regex: expected a closing '%'", start)
        self.pos = close + 1
        return self.text[start + 1 : close], start + 1


# --------------------------------------------------------------------------------------------
# Regular expressions: the documented subset, translated to Python's re
# --------------------------------------------------------------------------------------------


_Search = Callable[[str], bool]
"""A compiled regex: whether it occurs in a text (an unanchored search)."""


def _hex(ch: str) -> str:
    """A literal character in RE2 syntax: alphanumerics as is, anything else as ``\\xhh``."""
    return ch if ch in _ALNUM else f"\\x{ord(ch):02x}"


def _compile_regex(body: str, offset: int) -> _Search:
    """Validate a CloudWatch regex and compile the equivalent RE2 regex (linear-time search).

    ``offset`` is the index of the body's first character in the pattern text (for columns).
    Supported: literals from the documented character set, ``.``, ``^``, ``$``, ``?``, ``*``,
    ``+``, ``{m,n}`` (m or n may be omitted), ``[...]``/``[^...]`` with ranges, top-level ``|``,
    ``\\d \\D \\s \\S \\w \\W``, ``\\xhh`` and ``\\`` before a symbol. No groups.
    """

    def fail(reason: str, index: int) -> PatternError:
        return PatternError(reason, offset + index + 1)

    if not body:
        raise fail("empty regex", 0)
    for index, ch in enumerate(body):
        if ch in _REGEX_ALLOWED:
            continue
        if ord(ch) > 127:
            raise fail(f"multi-byte character {ch!r} is not supported in a regex", index)
        reason = f"{ch!r} is not allowed in a regex"
        if ch in "()":
            reason = f"{ch!r} is not supported in a regex (no groups); a literal is \\x28 / \\x29"
        raise PatternError(reason, offset + index + 1, _invalid_term(ch))

    out: list[str] = []
    i, n = 0, len(body)
    previous = "start"  # "atom" (may be repeated), "quantifier", "anchor" or "start"
    alternative_empty = True

    def check_repeatable(what: str, index: int) -> None:
        if previous == "quantifier":
            raise fail(f"{what!r} can't follow another quantifier", index)
        if previous != "atom":
            raise fail(f"{what!r} has nothing to repeat", index)

    def read_escape(i: int) -> tuple[str, int, str | None]:
        """Escape at body[i] == '\\': returns (RE2 text, next index, literal char or None)."""
        if i + 1 >= n:
            raise fail("a regex may not end with '\\'", i)
        ch = body[i + 1]
        if ch == "s":  # as in Java and Python: \v (\x0b) is whitespace too (not in RE2's \s)
            return "\\t\\n\\x0b\\f\\r\\x20", i + 2, None
        if ch in _REGEX_CLASS_ESCAPES:
            return "\\" + ch, i + 2, None
        if ch == "x":
            digits = body[i + 2 : i + 4]
            if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise fail("\\x must be followed by two hex digits", i)
            code = int(digits, 16)
            if code > 0x7F:
                raise fail(f"\\x{digits} is not an ASCII character", i)
            return f"\\x{code:02x}", i + 4, chr(code)
        if ch in _ALNUM:
            raise fail(f"unsupported escape '\\{ch}'", i)
        return _hex(ch), i + 2, ch

    while i < n:
        ch = body[i]
        if ch == "|":
            if alternative_empty:
                raise fail("empty alternative around '|'", i)
            out.append("|")
            i += 1
            previous, alternative_empty = "start", True
            continue
        alternative_empty = False
        if ch in "?*+":
            check_repeatable(ch, i)
            out.append(ch)
            i += 1
            previous = "quantifier"
        elif ch == "{":
            close = body.find("}", i)
            match = re.fullmatch(r"([0-9]*)(,?)([0-9]*)", body[i + 1 : close]) if close != -1 else None
            if match is None or (not match.group(1) and not match.group(3)):
                raise fail("expected {m}, {m,}, {,n} or {m,n}", i)
            check_repeatable("{", i)
            low = int(match.group(1) or 0)
            high = match.group(3) if match.group(2) else match.group(1)
            if low > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
                raise fail(f"{{{body[i + 1:close]}}}: a repeat count is at most {MAX_REPEAT}", i)
            if high and int(high) < low:
                raise fail(f"{{{body[i + 1:close]}}}: the minimum is larger than the maximum", i)
            out.append(f"{{{low},{high}}}")
            i = close + 1
            previous = "quantifier"
        elif ch in "}]":
            raise fail(f"unbalanced {ch!r}", i)
        elif ch == "^":
            out.append("^")
            i += 1
            previous = "anchor"
        elif ch == "$":
            out.append(r"\z")
            i += 1
            previous = "anchor"
        elif ch == ".":
            out.append(".")
            i += 1
            previous = "atom"
        elif ch == "\\":
            text, i, _ = read_escape(i)
            if body[i - 1] == "s":
                text = f"[{text}]"
            elif body[i - 1] == "S":
                text = "[^\\t\\n\\x0b\\f\\r\\x20]"
            out.append(text)
            previous = "atom"
        elif ch == "[":
            start = i
            i += 1
            parts = ["["]
            if i < n and body[i] == "^":
                parts.append("^")
                i += 1
            first = True
            while True:
                if i >= n:
                    raise fail("unterminated character class: expected ']'", start)
                ch = body[i]
                if ch == "]" and not first:
                    i += 1
                    break
                first = False
                if ch == "\\":
                    text, i, low_char = read_escape(i)
                else:
                    text, low_char = _hex(ch), ch
                    i += 1
                if i + 1 < n and body[i] == "-" and body[i + 1] != "]":
                    if low_char is None:
                        raise fail("a class escape cannot start a range", i)
                    if body[i + 1] == "\\":
                        high_text, next_i, high_char = read_escape(i + 1)
                    else:
                        high_text, next_i, high_char = _hex(body[i + 1]), i + 2, body[i + 1]
                    if high_char is None:
                        raise fail("a class escape cannot end a range", i + 1)
                    if high_char < low_char:
                        raise fail(f"bad range {low_char}-{high_char}", i)
                    text = f"{text}-{high_text}"
                    i = next_i
                parts.append(text)
            parts.append("]")
            out.append("".join(parts))
            previous = "atom"
        else:
            out.append(_hex(ch))
            i += 1
            previous = "atom"
    if alternative_empty:
        raise fail("empty alternative around '|'", n - 1)
    return _re2_search("".join(out), lambda reason: fail(f"invalid regex: {reason}", 0))


def _re2_search(translated: str, fail: Callable[[str], PatternError]) -> _Search:
    """Compile an RE2 regex (``.`` matches a newline too; ``\\d \\s \\w`` are ASCII) into a search.

    RE2 runs in time linear in the text whatever the regex. The search takes the compiled RE2
    object itself: ``re2.compile(...).search`` builds a match object per call, several times the
    cost of the search for a flow-log line.
    """
    import re2  # google-re2

    options = re2.Options()
    options.dot_nl = True
    options.never_capture = True
    options.log_errors = False
    regexp = re2._re2.RE2(translated.encode("ascii"), options)
    if not regexp.ok():  # e.g. more states than RE2's memory budget
        raise fail(regexp.error().decode("utf-8", "replace"))
    if regexp.ProgramSize() > MAX_REGEX_PROGRAM:
        raise fail(f"too complex: {regexp.ProgramSize()} RE2 instructions, at most {MAX_REGEX_PROGRAM} "
                   "(lower the repeat counts)")
    match = regexp.Match
    unanchored = re2._re2.RE2.Anchor.UNANCHORED
    limit = MAX_EVENT_LENGTH

    def search(text: str) -> bool:
        if len(text) > limit:
            text = text[:limit]
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a JSON "\\ud800" escape): searched as U+FFFD
            data = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
        return match(unanchored, data, 0, len(data))[0][0] >= 0

    return search


# --------------------------------------------------------------------------------------------
# Compiled pattern
# --------------------------------------------------------------------------------------------


_NO_MATCH: Final = object()


@dataclass(frozen=True)
class _MetricSpec:
    """A validated metric transformation."""

    value: float | None  # literal metric value
    value_ref: Any  # field name (delimited) or selector steps (JSON) when not literal
    default: float | None
    dimensions: tuple[tuple[str, str | None, Any], ...]  # (name, literal value, ref)
    unit: str


class Pattern:
    """A compiled CloudWatch Logs filter pattern.

    Attributes:
        text: the pattern as given to :func:`compile_pattern`.
        kind: ``"all"``, ``"terms"``, ``"regex"``, ``"delimited"`` or ``"json"``.
        matches: ``matches(message) -> bool``, whether the event matches (a precompiled
            function, so calling it costs no extra method dispatch).
    """

    text: str
    kind: PatternKind
    matches: Callable[[str], bool]

    def __init__(
        self,
        text: str,
        kind: PatternKind,
        matches: Callable[[str], bool],
        capture: Callable[[str], Any],
        field_names: tuple[str, ...] = (),
        field_index: Mapping[str, int] | None = None,
        selectors: frozenset[tuple[tuple[str, Any], ...]] = frozenset(),
        positions: tuple[int, ...] | None = (),
    ) -> None:
        self.text = text
        self.kind = kind
        self.matches = matches
        self._capture = capture  # message -> context (fields / JSON document / True) or _NO_MATCH
        self._field_names = field_names
        self._field_index: Mapping[str, int] = field_index or {}
        self._selectors = selectors
        self._positions = positions  # anonymous fields (negative: from the end); None: every field
        self._metric_cache: dict[Any, _MetricSpec] = {}

    def __repr__(self) -> str:
        return f"Pattern(kind={self.kind!r}, text={self.text!r})"

    def extract(self, message: str) -> dict[str, str] | None:
        """The named fields of a matching space-delimited pattern, ``{}`` for other kinds.

        Only fields the pattern names are returned (by bare name, quotes and brackets removed),
        never the ones an ellipsis covers. None when the event does not match.
        """
        context = self._capture(message)
        if context is _NO_MATCH:
            return None
        if self.kind != "delimited":
            return {}
        return {name: context[index] for name, index in self._field_index.items()}

    def extracted_values(self, message: str) -> dict[str, str] | None:
        """What TestMetricFilter reports as ``extractedValues`` for one event, None if it does
        not match: ``{"$name": value}`` for the named fields of a space-delimited pattern and
        ``{"$7": value}`` (the field's 1-based position in the event) for its anonymous fields,
        every field as ``$1..$n`` for ``[]``, and ``{}`` for the other kinds."""
        context = self._capture(message)
        if context is _NO_MATCH:
            return None
        if self.kind != "delimited":
            return {}
        values: list[str] = context
        if self._positions is None:
            return {f"${i + 1}": value for i, value in enumerate(values)}
        extracted = {f"${name}": values[index] for name, index in self._field_index.items()}
        for index in self._positions:
            extracted[f"${index % len(values) + 1}"] = values[index]
        return extracted

    def test_metric_filter(self, messages: Sequence[str]) -> list[dict[str, Any]]:
        """The ``matches`` of AWS's TestMetricFilter for these log event messages:
        ``[{"eventNumber": n, "eventMessage": message, "extractedValues": {...}}]``, one item
        per matching message, ``eventNumber`` counting every message from 1."""
        matches: list[dict[str, Any]] = []
        for number, message in enumerate(messages, start=1):
            extracted = self.extracted_values(message)
            if extracted is not None:
                matches.append({"eventNumber": number, "eventMessage": message, "extractedValues": extracted})
        return matches

    def metric(self, message: str, transformation: Mapping[str, Any]) -> dict[str, Any] | None:
        """What one event contributes to the metric of a metric filter.

        ``transformation`` is one item of PutMetricFilter's ``metricTransformations``. Returns
        ``{"value", "unit"[, "dimensions"]}`` on a match, ``{"value": default, "unit",
        "default": True}`` on no match when ``defaultValue`` is set, else None. None also when
        the referenced value is not a number or a dimension value is missing (CloudWatch
        publishes nothing for that event). Raises ValueError for an invalid transformation.
        """
        spec = self._metric_spec(transformation)
        context = self._capture(message)
        if context is _NO_MATCH:
            if spec.default is None:
                return None
            return {"value": spec.default, "unit": spec.unit, "default": True}
        if spec.value is not None:
            value: float | None = spec.value
        else:
            value = self._number_at(context, spec.value_ref)
        if value is None:
            return None
        result: dict[str, Any] = {"value": value, "unit": spec.unit}
        if spec.dimensions:
            dimensions: dict[str, str] = {}
            for name, literal, ref in spec.dimensions:
                found = literal if literal is not None else self._text_at(context, ref)
                if not found:
                    return None
                dimensions[name] = found
            result["dimensions"] = dimensions
        return result

    # -- metric helpers ----------------------------------------------------------------------

    def _number_at(self, context: Any, ref: Any) -> float | None:
        if self.kind == "delimited":
            number = _to_number(context[self._field_index[ref]])
        else:
            nodes = _resolve(context, ref)
            number = _json_number(nodes[0]) if len(nodes) == 1 else None
        return number if number is not None and math.isfinite(number) else None

    def _text_at(self, context: Any, ref: Any) -> str | None:
        if self.kind == "delimited":
            text: str | None = context[self._field_index[ref]]
            return text
        nodes = _resolve(context, ref)
        if len(nodes) != 1 or isinstance(nodes[0], (dict, list)):
            return None
        return _json_text(nodes[0])

    def _metric_spec(self, transformation: Mapping[str, Any]) -> _MetricSpec:
        if not isinstance(transformation, Mapping):
            raise ValueError("a metric transformation must be a mapping")
        dims_raw = transformation.get("dimensions")
        key = (
            transformation.get("metricValue"),
            transformation.get("defaultValue"),
            tuple(dims_raw.items()) if isinstance(dims_raw, Mapping) else dims_raw,
            transformation.get("unit"),
            transformation.get("metricName"),
            transformation.get("metricNamespace"),
            tuple(sorted(transformation)),
        )
        cache_key: tuple[Any, ...] | None = key
        try:
            cached = self._metric_cache.get(key)
        except TypeError:  # unhashable values: validate every time (and fail below)
            cached, cache_key = None, None
        if cached is not None:
            return cached
        spec = self._validate_transformation(transformation)
        if cache_key is not None and len(self._metric_cache) < 64:
            self._metric_cache[cache_key] = spec
        return spec

    def _validate_transformation(self, transformation: Mapping[str, Any]) -> _MetricSpec:
        unknown = sorted(set(transformation) - _TRANSFORMATION_KEYS)
        if unknown:
            raise ValueError(
                f"unknown metric transformation key(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(_TRANSFORMATION_KEYS))}"
            )
        for key in ("metricName", "metricNamespace"):
            name = transformation.get(key)
            if name is None:
                continue
            if not isinstance(name, str) or not 1 <= len(name) <= 255 or any(c in name for c in ":*$"):
                raise ValueError(f"{key} must be 1-255 characters without ':', '*' or '$', got {name!r}")

        raw_value = transformation.get("metricValue")
        if raw_value is None:
            raise ValueError("metricValue is required: a number such as 1, or a $field / $.path reference")
        if isinstance(raw_value, bool) or not isinstance(raw_value, (str, int, float)):
            raise ValueError(f"metricValue must be a string, got {type(raw_value).__name__}")
        value_text = str(raw_value).strip()
        if not value_text or len(value_text) > 100:
            raise ValueError("metricValue must be 1-100 characters")
        value: float | None = None
        value_ref: Any = None
        if value_text.startswith("$"):
            value_ref = self._reference(value_text, "metricValue", named_only=False)
        else:
            value = _to_number(value_text)
            if value is None or not math.isfinite(value):
                raise ValueError(
                    f"metricValue {value_text!r} is neither a number nor a $field / $.path reference"
                )

        default_raw = transformation.get("defaultValue")
        default: float | None = None
        if default_raw is not None:
            if isinstance(default_raw, bool) or not isinstance(default_raw, (int, float)):
                raise ValueError(f"defaultValue must be a number, got {default_raw!r}")
            default = float(default_raw)
            if not math.isfinite(default):
                raise ValueError(f"defaultValue must be a finite number, got {default_raw!r}")

        dims_raw = transformation.get("dimensions")
        dimensions: list[tuple[str, str | None, Any]] = []
        if dims_raw:
            if not isinstance(dims_raw, Mapping):
                raise ValueError("dimensions must be a mapping of dimension name to $field / $.path")
            if self.kind not in ("delimited", "json"):
                raise ValueError("dimensions are only available with JSON or space-delimited filter patterns")
            if len(dims_raw) > MAX_DIMENSIONS:
                raise ValueError(f"at most {MAX_DIMENSIONS} dimensions per filter, not {len(dims_raw)}")
            if default is not None:
                raise ValueError("defaultValue can't be combined with dimensions")
            for name, ref_text in dims_raw.items():
                if not isinstance(name, str) or not 1 <= len(name) <= 255:
                    raise ValueError(f"dimension name must be 1-255 characters, got {name!r}")
                if not isinstance(ref_text, str) or not 1 <= len(ref_text) <= 255:
                    raise ValueError(f"dimension {name!r}: value must be 1-255 characters, got {ref_text!r}")
                if ref_text.startswith("$"):
                    dimensions.append((name, None, self._reference(ref_text, f"dimension {name!r}")))
                else:
                    dimensions.append((name, ref_text, None))

        unit = transformation.get("unit")
        if unit is None:
            unit = "None"
        elif unit not in STANDARD_UNITS:
            units = ", ".join(sorted(STANDARD_UNITS))
            raise ValueError(f"unit {unit!r} is not a CloudWatch StandardUnit ({units})")
        return _MetricSpec(value, value_ref, default, tuple(dimensions), unit)

    def _reference(self, text: str, what: str, named_only: bool = True) -> Any:
        """Validate a ``$field`` or ``$.path`` reference against this pattern. A JSON metricValue
        (``named_only=False``) may name a selector the pattern does not: AWS accepts it."""
        if self.kind == "delimited":
            name = text[1:]
            if name.startswith(".") or not name or any(c not in _NAME_CHARS for c in name):
                raise ValueError(f"{what}: {text!r} is not a $field reference (space-delimited pattern)")
            if name not in self._field_index:
                named = ", ".join(self._field_names) or "none"
                raise ValueError(f"{what}: {text!r} is not a field the pattern names (it names: {named})")
            return name
        if self.kind == "json":
            if not text.startswith("$."):
                raise ValueError(f"{what}: {text!r} is not a $.path reference (JSON pattern)")
            scanner = _Scanner(text, 0, len(text))
            try:
                steps, wildcards = _parse_selector(scanner)
            except PatternError as exc:
                raise ValueError(f"{what}: invalid selector {text!r}: {exc}") from None
            if not scanner.at_end():
                raise ValueError(f"{what}: invalid selector {text!r}")
            if wildcards:
                raise ValueError(f"{what}: {text!r} may not contain a wildcard")
            if named_only and steps not in self._selectors:
                raise ValueError(f"{what}: {text!r} is not a property the pattern names")
            return steps
        raise ValueError(f"{what}: {text!r} needs a space-delimited or JSON filter pattern")


def compile_pattern(text: str) -> Pattern:
    """Compile a CloudWatch Logs filter pattern; raises :class:`PatternError` if AWS would reject it."""
    if not isinstance(text, str):
        raise TypeError(f"a filter pattern is a str, not {type(text).__name__}")
    return _compile_cached(text)


@lru_cache(maxsize=256)
def _compile_cached(text: str) -> Pattern:
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"a filter pattern is at most {MAX_PATTERN_LENGTH} characters, this one has {len(text)}",
            MAX_PATTERN_LENGTH + 1,
            f"1 validation error detected: Value '{text}' at 'filterPattern' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PATTERN_LENGTH}",
        )
    start, end = 0, len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        return _match_all(text)
    first, last = text[start], text[end - 1]
    if first == "{":
        if last != "}":
            message = "If a filter pattern starts with '{' it must end with '}'"
            raise PatternError(message, end, message)
        return _compile_json(text, start, end)
    if first == "[":
        if last != "]":
            raise PatternError("If a filter pattern starts with '[' it must end with ']'", end)
        return _compile_delimited(text, start, end)
    if first == "%":
        return _compile_standalone_regex(text, start, end)
    return _compile_terms(text, start, end)


def _match_all(text: str) -> Pattern:
    def matches(message: str) -> bool:
        return True

    def capture(message: str) -> Any:
        return True

    return Pattern(text, "all", matches, capture)


def _from_predicate(text: str, kind: PatternKind, matches: Callable[[str], bool]) -> Pattern:
    def capture(message: str) -> Any:
        return True if matches(message) else _NO_MATCH

    return Pattern(text, kind, matches, capture)


# --------------------------------------------------------------------------------------------
# Standalone regex and term patterns
# --------------------------------------------------------------------------------------------


def _compile_standalone_regex(text: str, start: int, end: int) -> Pattern:
    scanner = _Scanner(text, start, end)
    body, offset = scanner.read_regex()
    if not scanner.at_end():
        raise scanner.error("a regex filter pattern is one %regex%; nothing may follow it")
    matches = _compile_regex(body, offset)
    return _from_predicate(text, "regex", matches)


# Characters AWS refuses in an unquoted term ("Invalid character(s) in term"): the ones its answers
# name (docs/PATTERNS.md lists the evidence), with the closing bracket of each pair.
_TERM_REFUSED: Final = frozenset(":()[]@\\`,")
_REGEX_TERM: Final = re.compile(r"%\S*%(?=\s|\Z)")  # a %regex% token among terms


def _unexpected(ch: str) -> str:
    """AWS's message for an unexpected character: a refused one is named, others are not."""
    return _invalid_term(ch) if ch in _TERM_REFUSED else AWS_INVALID_PATTERN


def _read_unquoted_term(scanner: _Scanner) -> str:
    """Read an unquoted term at the cursor. It ends at whitespace, or at a ``-`` after its first
    character: AWS reads ``ORDER-ITEM-1`` as ``ORDER -ITEM -1`` (an exclusion follows)."""
    text, start = scanner.text, scanner.pos
    while not scanner.at_end():
        ch = text[scanner.pos]
        if ch.isspace() or ch == "-" and scanner.pos > start:
            break
        if ch in _TERM_REFUSED:
            raise scanner.error(f"{ch!r} must be inside a quoted term, e.g. \"a:b\"", aws_message=_invalid_term(ch))
        if ch == '"':
            raise scanner.error("a quote must enclose the whole term, e.g. \"a phrase\"")
        scanner.pos += 1
    return text[start : scanner.pos]


def _compile_terms(text: str, start: int, end: int) -> Pattern:
    """Terms are ANDed substrings; ``-term`` excludes; ``?term`` alone are ORed, and ignored
    when the pattern also has include or exclude terms."""
    includes: list[str] = []
    excludes: list[str] = []
    optionals: list[str] = []
    scanner = _Scanner(text, start, end)
    while True:
        scanner.skip_ws()
        if scanner.at_end():
            break
        target = includes
        prefix = scanner.peek()
        if prefix in "?-":
            target = optionals if prefix == "?" else excludes
            prefix_pos = scanner.pos
            scanner.pos += 1
            scanner.skip_ws()  # the archived guide writes `"ERROR" - "Exiting"`
            if scanner.at_end() or scanner.peek() in "?-" and scanner.pos > prefix_pos + 1:
                raise scanner.error(f"expected a term after {prefix!r}", prefix_pos)
        if scanner.peek() == '"':
            term = scanner.read_quoted()
            if not scanner.at_end() and not text[scanner.pos].isspace():
                raise scanner.error("expected whitespace after a quoted term")
            if not term.strip() and target is not excludes:
                term = ""  # AWS documents `" "` as "match everything": it occurs in every event
        else:
            if _REGEX_TERM.match(text, scanner.pos, end):
                raise scanner.error("a %regex% must be the whole filter pattern, not a term")
            term = _read_unquoted_term(scanner)
        target.append(term)

    if includes or excludes:
        required = tuple(t for t in includes if t)
        forbidden = tuple(excludes)
        if "" in forbidden:
            return _from_predicate(text, "terms", lambda message: False)
        if not forbidden:
            if not required:
                return _match_all(text)
            if len(required) == 1:
                term = required[0]

                def matches(message: str) -> bool:
                    return term in message

                return _from_predicate(text, "terms", matches)

        def matches_all(message: str) -> bool:
            for term in required:
                if term not in message:
                    return False
            for term in forbidden:
                if term in message:
                    return False
            return True

        return _from_predicate(text, "terms", matches_all)

    options = tuple(optionals)
    if "" in options:
        return _from_predicate(text, "terms", lambda message: True)

    def matches_any(message: str) -> bool:
        for term in options:
            if term in message:
                return True
        return False

    return _from_predicate(text, "terms", matches_any)


# --------------------------------------------------------------------------------------------
# Space-delimited patterns
# --------------------------------------------------------------------------------------------

_Check = Callable[[str], Any]  # field value -> truthy when the condition holds


@dataclass
class _Condition:
    check: _Check
    cost: int  # rough evaluation cost, cheapest first
    required: str | None  # a substring the field must contain for `check` to hold


@dataclass
class _Field:
    name: str | None  # None: an anonymous field (an empty element, e.g. a trailing comma)
    check: _Check | None
    cost: int
    required: tuple[str, ...]


def _string_condition(op: str, value: str) -> _Condition:
    """``=``/``!=`` against a string: exact, or ``*`` wildcard at the start and/or end."""
    negate = op == "!="
    starts = value.startswith("*")
    ends = len(value) > 1 and value.endswith("*")
    core = value[1 if starts else 0 : len(value) - 1 if ends else len(value)]
    check: _Check
    if value == "*":
        check = (lambda field: False) if negate else (lambda field: True)
        return _Condition(check, 0, None)
    if starts and ends:
        check = (lambda f: core not in f) if negate else (lambda f: core in f)
    elif starts:
        check = (lambda f: not f.endswith(core)) if negate else (lambda f: f.endswith(core))
    elif ends:
        check = (lambda f: not f.startswith(core)) if negate else (lambda f: f.startswith(core))
    else:
        check = core.__ne__ if negate else core.__eq__
        return _Condition(check, 0, None if negate or not core else core)
    return _Condition(check, 1, None if negate or not core else core)


def _numeric_condition(op: str, literal_text: str) -> _Condition:
    """A numeric comparison. For ``=``/``!=`` a field that is not a number is unequal."""
    literal = float(literal_text)
    to_number = _to_number
    if op in ("=", "!="):
        # Every decimal spelling of a number contains its first significant digit (up to float
        # rounding, which needs 16+ digits), so a field without it can't be equal: skip parsing.
        mantissa = literal_text.lower().split("e")[0]
        digit = next((d for d in mantissa if d in "123456789"), "0")

        def equal(field: str) -> bool:
            if field == literal_text:
                return True
            if digit not in field and len(field) < 16:
                return False
            number = to_number(field)
            return number is not None and number == literal

        if op == "=":
            return _Condition(equal, 2, None)
        return _Condition(lambda field: not equal(field), 2, None)

    # One closure per operator, parsing inline: this runs for every line that gets this far.
    number_match = _NUMBER_RE.match
    relation: Callable[[str], bool]
    if op == "<":

        def relation(field: str) -> bool:
            if (field.isdigit() and field.isascii()) or number_match(field):
                return float(field) < literal
            return False

    elif op == "<=":

        def relation(field: str) -> bool:
            if (field.isdigit() and field.isascii()) or number_match(field):
                return float(field) <= literal
            return False

    elif op == ">":

        def relation(field: str) -> bool:
            if (field.isdigit() and field.isascii()) or number_match(field):
                return float(field) > literal
            return False

    else:

        def relation(field: str) -> bool:
            if (field.isdigit() and field.isascii()) or number_match(field):
                return float(field) >= literal
            return False

    return _Condition(relation, 3, None)


def _regex_condition(op: str, search: _Search) -> _Condition:
    if op == "=":
        return _Condition(search, 5, None)
    return _Condition(lambda field: not search(field), 5, None)


def _combine(disjuncts: list[list[_Condition]]) -> _Condition:
    """``a && b || c``: && binds tighter than ||. One condition stays as it is."""
    if len(disjuncts) == 1 and len(disjuncts[0]) == 1:
        return disjuncts[0][0]
    conjunctions: list[tuple[_Check, ...]] = [
        tuple(c.check for c in sorted(conj, key=lambda c: c.cost)) for conj in disjuncts
    ]
    cost = sum(c.cost for conj in disjuncts for c in conj) + 1
    required = None
    if len(disjuncts) == 1:  # a pure conjunction: any of its required substrings will do
        required = max((c.required for c in disjuncts[0] if c.required), key=len, default=None)

    def check(field: str) -> bool:
        for conjunction in conjunctions:
            for condition in conjunction:
                if not condition(field):
                    break
            else:
                return True
        return False

    return _Condition(check, cost, required)


class _DelimitedParser:
    def __init__(self, text: str, start: int, end: int) -> None:
        self.scanner = _Scanner(text, start + 1, end - 1)  # inside the brackets
        self.close = end - 1
        self.regexes = 0

    def parse(self) -> tuple[list[_Field], int | None]:
        """Returns the fields and the index of the ellipsis among them (None if absent)."""
        s = self.scanner
        fields: list[_Field] = []
        ellipsis: int | None = None
        names: set[str] = set()
        s.skip_ws()
        if s.at_end():
            return fields, None  # `[]`
        while True:
            s.skip_ws()
            element_pos = s.pos
            if s.peek(3) == "...":
                if ellipsis is not None:
                    raise s.error("only one '...' is allowed in a space-delimited pattern")
                ellipsis = len(fields)
                s.pos += 3
                fields.append(_Field(None, None, 0, ()))
            elif s.at_end() or s.peek() == ",":
                fields.append(_Field(None, None, 0, ()))  # empty element: an anonymous field
            else:
                field = self.parse_field()
                assert field.name is not None
                if field.name in names:
                    raise s.error(f"field name {field.name!r} is used twice", element_pos)
                names.add(field.name)
                fields.append(field)
            s.skip_ws()
            if s.at_end():
                break
            if s.peek() == "]":
                raise s.error("unexpected ']' before the end of the pattern")
            if s.peek() != ",":
                raise s.error(f"expected ',' or ']', found {s.describe()}")
            s.pos += 1
        return fields, ellipsis

    def count_regex(self, pos: int) -> None:
        self.regexes += 1
        if self.regexes > MAX_REGEXES:
            raise self.scanner.error(f"a filter pattern may contain at most {MAX_REGEXES} regexes", pos)

    def parse_name(self) -> str:
        s = self.scanner
        start = s.pos
        while not s.at_end() and s.text[s.pos] in _NAME_CHARS:
            s.pos += 1
        if s.pos == start:
            raise s.error(f"expected a field name, '...' or ',', found {s.describe()}")
        return s.text[start : s.pos]

    def parse_operator(self) -> str | None:
        s = self.scanner
        two = s.peek(2)
        if two in ("!=", "<=", ">="):
            s.pos += 2
            return two
        if two[:1] in ("=", "<", ">"):
            s.pos += 1
            return two[:1]
        if two[:1] == "!":
            raise s.error("expected '!=' (there is no '!' operator)")
        return None

    def parse_field(self) -> _Field:
        s = self.scanner
        name = self.parse_name()
        s.skip_ws()
        operator = self.parse_operator()
        if operator is None:
            if s.peek(2) in ("&&", "||"):
                raise s.error(f"expected an operator (=, !=, <, <=, >, >=) after {name!r}")
            return _Field(name, None, 0, ())
        disjuncts: list[list[_Condition]] = [[self.parse_value(operator)]]
        while True:
            s.skip_ws()
            joiner = s.peek(2)
            if joiner not in ("&&", "||"):
                if s.peek() in ("&", "|"):
                    raise s.error("expected '&&' or '||'")
                break
            s.pos += 2
            s.skip_ws()
            other_pos = s.pos
            other = self.parse_name()
            if other != name:
                raise s.error(
                    f"'&&' and '||' may only combine conditions on the same field: {other!r} is not {name!r}",
                    other_pos,
                )
            s.skip_ws()
            operator = self.parse_operator()
            if operator is None:
                raise s.error(f"expected an operator (=, !=, <, <=, >, >=) after {name!r}")
            condition = self.parse_value(operator)
            if joiner == "&&":
                disjuncts[-1].append(condition)
            else:
                disjuncts.append([condition])
        combined = _combine(disjuncts)
        required = (combined.required,) if combined.required else ()
        return _Field(name, combined.check, combined.cost, required)

    def parse_value(self, operator: str) -> _Condition:
        kind, value = _read_value(self.scanner, operator, self.count_regex,
                                  ends=lambda ch: ch in _DELIMITED_VALUE_END, bad=lambda ch: ch in _DELIMITED_VALUE_BAD)
        makers: dict[str, Callable[[str, Any], _Condition]] = {
            "string": _string_condition, "regex": _regex_condition, "number": _numeric_condition}
        make = makers[kind]
        return make(operator, value)


def _read_value(s: _Scanner, operator: str, count_regex: Callable[[int], None], *,
                ends: Callable[[str], bool], bad: Callable[[str], bool]) -> tuple[str, Any]:
    """The value after a comparison operator, for space-delimited and JSON patterns alike:
    ``("string", text)`` (quoted or bare), ``("regex", compiled)`` or ``("number", text)``.
    ``ends(ch)`` stops a bare value, ``bad(ch)`` rejects a character in it."""
    s.skip_ws()
    value_pos = s.pos
    relational = operator not in ("=", "!=")
    first = s.peek()
    if first == '"':
        if relational:
            raise s.error(f"{operator!r} compares numbers; expected a number, not a quoted string")
        return "string", s.read_quoted()
    if first == "%":
        if relational:
            raise s.error(f"{operator!r} compares numbers; expected a number, not a regex")
        count_regex(value_pos)
        body, offset = s.read_regex()
        return "regex", _compile_regex(body, offset)
    while not s.at_end():
        ch = s.text[s.pos]
        if ch.isspace() or ends(ch):
            break
        if bad(ch):
            raise s.error(f"unexpected {ch!r} in a value; put the value in double quotes",
                          aws_message=_unexpected(ch))
        s.pos += 1
    value = s.text[value_pos : s.pos]
    if not value:
        raise s.error(f"expected a value after {operator!r}", value_pos)
    if _NUMBER_RE.match(value):
        return "number", value
    if relational:
        raise s.error(f"{operator!r} compares numbers; {value!r} is not a number", value_pos)
    return "string", value


def _compile_delimited(text: str, start: int, end: int) -> Pattern:
    fields, ellipsis = _DelimitedParser(text, start, end).parse()
    if not fields:
        return _every_field(text)
    if ellipsis is None:
        head, tail = fields, []
    else:
        head, tail = fields[:ellipsis], fields[ellipsis + 1 :]
    count = len(fields)
    minimum = len(head) + len(tail)

    # Positions: head fields by index from the start, tail fields from the end (negative).
    positioned = [(i, f) for i, f in enumerate(head)] + [(i - len(tail), f) for i, f in enumerate(tail)]
    field_index = {f.name: i for i, f in positioned if f.name is not None}
    checks = tuple(
        (i, f.check) for i, f in sorted(positioned, key=lambda item: item[1].cost) if f.check is not None
    )
    # Substrings every matching line contains (field values are slices of the line): a cheap
    # test that rejects most lines before they are split. The longest two are enough.
    substrings = {r for _, f in positioned for r in f.required if len(r) > 1}
    required = tuple(sorted(substrings, key=len, reverse=True)[:2])

    matches = _delimited_matcher(ellipsis is None, count, minimum, checks, required)
    split = _split_fields

    def capture(line: str) -> Any:
        for substring in required:
            if substring not in line:
                return _NO_MATCH
        values = split(line)
        if (len(values) != count) if ellipsis is None else (len(values) < minimum):
            return _NO_MATCH
        for index, check in checks:
            if not check(values[index]):
                return _NO_MATCH
        return values

    names = tuple(f.name for f in fields if f.name is not None)
    anonymous = tuple(i for i, f in positioned if f.name is None)
    return Pattern(text, "delimited", matches, capture, field_names=names, field_index=field_index,
                   positions=anonymous)


def _every_field(text: str) -> Pattern:
    """``[]``: AWS accepts it; it matches every event and extracts every field as ``$1..$n``."""

    def matches(line: str) -> bool:
        return True

    return Pattern(text, "delimited", matches, _split_fields, positions=None)


def _delimited_matcher(
    exact: bool,
    count: int,
    minimum: int,
    checks: tuple[tuple[int, _Check], ...],
    required: tuple[str, ...],
) -> Callable[[str], bool]:
    """Build ``matches`` for a space-delimited pattern, specialised for the common shapes.

    The hot path for VPC flow logs: a substring pre-test, ``str.split()`` when the line has no
    quote or bracket, a field-count test, then the per-field checks cheapest first.
    """
    split = _split_fields

    if exact and len(required) == 1 and len(checks) == 2:
        (needle,) = required
        (i1, c1), (i2, c2) = checks

        def matches_exact_1_2(line: str) -> bool:
            if needle not in line:
                return False
            if '"' in line or "[" in line:
                values = split(line)
            else:
                values = line.split()
            if len(values) != count or not c1(values[i1]):
                return False
            return True if c2(values[i2]) else False

        return matches_exact_1_2

    if exact:

        def matches_exact(line: str) -> bool:
            for substring in required:
                if substring not in line:
                    return False
            if '"' in line or "[" in line:
                values = split(line)
            else:
                values = line.split()
            if len(values) != count:
                return False
            for index, check in checks:
                if not check(values[index]):
                    return False
            return True

        return matches_exact

    def matches_ellipsis(line: str) -> bool:
        for substring in required:
            if substring not in line:
                return False
        if '"' in line or "[" in line:
            values = split(line)
        else:
            values = line.split()
        if len(values) < minimum:
            return False
        for index, check in checks:
            if not check(values[index]):
                return False
        return True

    return matches_ellipsis


# --------------------------------------------------------------------------------------------
# JSON patterns
# --------------------------------------------------------------------------------------------

_Steps = tuple[tuple[str, Any], ...]  # ("key", name) | ("index", n) | ("any", None)
_Expr = Callable[[Any], bool]


class _JsonFloat(float):
    """A JSON number with a fraction or exponent, remembering how it was written."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> _JsonFloat:
        self = super().__new__(cls, text)
        self.text = text
        return self


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json_object(message: str) -> dict[str, Any] | None:
    """The event as a JSON object, or None when the event is not (entirely) a JSON object."""
    stripped = message.lstrip()
    if not stripped.startswith("{") or len(stripped) > MAX_EVENT_LENGTH:
        return None
    try:
        document = json.loads(stripped, parse_float=_JsonFloat, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _json_text(node: Any) -> str | None:
    """The text of a value node as CloudWatch compares it (strings as is, numbers as written)."""
    if isinstance(node, str):
        return node
    if node is True:
        return "true"
    if node is False:
        return "false"
    if node is None:
        return "null"
    if isinstance(node, _JsonFloat):
        return node.text
    if isinstance(node, int):
        return str(node)
    return None  # arrays and objects are not value nodes


def _json_number(node: Any) -> float | None:
    if isinstance(node, bool):
        return None
    if isinstance(node, (int, float)):
        return float(node)
    if isinstance(node, str):
        return _to_number(node)
    return None


def _resolve(document: Any, steps: _Steps) -> list[Any]:
    """The nodes a selector reaches (several with a wildcard, none when a step is missing)."""
    nodes = [document]
    for kind, arg in steps:
        found: list[Any] = []
        for node in nodes:
            if kind == "key":
                if type(node) is dict and arg in node:
                    found.append(node[arg])
            elif kind == "index":
                if type(node) is list and arg < len(node):
                    found.append(node[arg])
            elif type(node) is dict:
                found.extend(node.values())
            elif type(node) is list:
                found.extend(node)
        if not found:
            return found
        nodes = found
    return nodes


def _parse_selector(s: _Scanner) -> tuple[_Steps, int]:
    """Parse ``$.a.b[0].*['c.d'][*]`` at the cursor; returns the steps and wildcard count."""
    start = s.pos
    if s.peek(2) != "$.":
        raise s.error(f"expected a selector starting with '$.', found {s.describe()}")
    s.pos += 1
    steps: list[tuple[str, Any]] = []
    wildcards = 0
    text = s.text
    while not s.at_end():
        ch = text[s.pos]
        if ch == ".":
            s.pos += 1
            if s.peek() == "*":
                s.pos += 1
                steps.append(("any", None))
                wildcards += 1
                continue
            if s.peek() == "[":
                continue  # `$.['a.b']`: the bracket step follows
            name_start = s.pos
            while not s.at_end() and text[s.pos] in _NAME_CHARS:
                s.pos += 1
            if s.pos == name_start:
                raise s.error(f"expected a property name after '.', found {s.describe()}",
                              aws_message=_invalid_term(text[start : s.pos + 1]))
            steps.append(("key", text[name_start : s.pos]))
        elif ch == "[":
            bracket = s.pos
            s.pos += 1
            inner = s.peek()
            if inner == "*":
                s.pos += 1
                steps.append(("any", None))
                wildcards += 1
            elif inner in ("'", '"'):
                close = text.find(inner, s.pos + 1, s.end)
                if close == -1:
                    raise s.error("unterminated quoted property name", s.pos)
                steps.append(("key", text[s.pos + 1 : close]))
                s.pos = close + 1
            else:
                digits_start = s.pos
                while not s.at_end() and text[s.pos] in "0123456789":
                    s.pos += 1
                if s.pos == digits_start:
                    raise s.error(f"expected an index, '*' or a quoted name after '[', found {s.describe()}")
                steps.append(("index", int(text[digits_start : s.pos])))
            if s.peek() != "]":
                raise s.error(f"expected ']' to close the '[' at column {bracket + 1}, found {s.describe()}")
            s.pos += 1
        else:
            break
    if not steps:
        raise s.error("expected a property after '$.'", start)
    if wildcards > 1:
        raise s.error("a selector may contain at most one wildcard", start)
    return tuple(steps), wildcards


def _any_node(steps: _Steps, test: Callable[[Any], bool]) -> _Expr:
    """True when the selector reaches a node for which ``test`` holds."""
    if len(steps) == 1 and steps[0][0] == "key":
        key = steps[0][1]

        def single(document: Any) -> bool:
            node = document.get(key, _NO_MATCH)
            return node is not _NO_MATCH and test(node)

        return single

    def check(document: Any) -> bool:
        for node in _resolve(document, steps):
            if test(node):
                return True
        return False

    return check


def _json_string_test(op: str, value: str) -> Callable[[Any], bool]:
    """``=``/``!=`` of a value node's text against a string with ``*`` wildcards at the ends."""
    if value == "*":
        matched: Callable[[str], bool] = lambda text: True  # noqa: E731
    else:
        starts = value.startswith("*")
        ends = len(value) > 1 and value.endswith("*")
        core = value[1 if starts else 0 : len(value) - 1 if ends else len(value)]
        if starts and ends:
            matched = lambda text: core in text  # noqa: E731
        elif starts:
            matched = lambda text: text.endswith(core)  # noqa: E731
        elif ends:
            matched = lambda text: text.startswith(core)  # noqa: E731
        else:
            matched = core.__eq__
    negate = op == "!="

    def test(node: Any) -> bool:
        text = _json_text(node)
        return text is not None and matched(text) != negate

    return test


def _json_number_test(op: str, literal_text: str) -> Callable[[Any], bool]:
    literal = float(literal_text)
    if op in ("=", "!="):
        negate = op == "!="

        def equal(node: Any) -> bool:
            if isinstance(node, (int, float)) and not isinstance(node, bool):
                return (float(node) == literal) != negate
            text = _json_text(node)
            return text is not None and (text == literal_text) != negate

        return equal
    compare: Callable[[float, float], bool] = {
        "<": float.__lt__,
        "<=": float.__le__,
        ">": float.__gt__,
        ">=": float.__ge__,
    }[op]

    def relation(node: Any) -> bool:
        return isinstance(node, (int, float)) and not isinstance(node, bool) and compare(float(node), literal)

    return relation


def _json_regex_test(op: str, search: _Search) -> Callable[[Any], bool]:
    negate = op == "!="

    def test(node: Any) -> bool:
        text = _json_text(node)
        return text is not None and search(text) != negate

    return test


class _JsonParser:
    def __init__(self, text: str, start: int, end: int) -> None:
        self.s = _Scanner(text, start + 1, end - 1)  # inside the braces
        self.regexes = 0
        self.wildcards = 0
        self.depth = 0  # open parentheses around the cursor
        self.selectors: set[_Steps] = set()

    def parse(self) -> _Expr:
        s = self.s
        s.skip_ws()
        if s.at_end():
            raise s.error("expected a condition such as $.field = value inside { }")
        expression = self.parse_or()
        s.skip_ws()
        if not s.at_end():
            raise s.error(f"expected '&&', '||' or '}}', found {s.describe()}", aws_message=_unexpected(s.peek()))
        return expression

    def count_regex(self, pos: int) -> None:
        self.regexes += 1
        if self.regexes > MAX_REGEXES:
            raise self.s.error(f"a filter pattern may contain at most {MAX_REGEXES} regexes", pos)

    def parse_or(self) -> _Expr:
        terms = [self.parse_and()]
        while self.take("||"):
            terms.append(self.parse_and())
        if len(terms) == 1:
            return terms[0]
        alternatives = tuple(terms)
        return lambda document: any(term(document) for term in alternatives)

    def parse_and(self) -> _Expr:
        terms = [self.parse_primary()]
        while self.take("&&"):
            terms.append(self.parse_primary())
        if len(terms) == 1:
            return terms[0]
        conjuncts = tuple(terms)
        return lambda document: all(term(document) for term in conjuncts)

    def take(self, token: str) -> bool:
        s = self.s
        s.skip_ws()
        if s.peek(2) == token:
            s.pos += 2
            return True
        if s.peek() in ("&", "|") and s.peek(2) not in ("&&", "||"):
            raise s.error("expected '&&' or '||'")
        return False

    def keyword(self) -> str:
        s = self.s
        start = s.pos
        while not s.at_end() and s.text[s.pos].isalpha():
            s.pos += 1
        return s.text[start : s.pos]

    def parse_primary(self) -> _Expr:
        s = self.s
        s.skip_ws()
        if s.peek() == "(":
            open_pos = s.pos
            if self.depth >= MAX_JSON_NESTING:
                raise s.error(f"parentheses nest more than {MAX_JSON_NESTING} deep; "
                              f"a JSON filter pattern allows at most {MAX_JSON_NESTING} levels")
            self.depth += 1
            s.pos += 1
            inner = self.parse_or()
            s.skip_ws()
            if s.peek() != ")":
                raise s.error(f"expected ')' to close the '(' at column {open_pos + 1}, found {s.describe()}")
            s.pos += 1
            self.depth -= 1
            return inner
        selector_pos = s.pos
        steps, wildcards = _parse_selector(s)
        self.wildcards += wildcards
        if self.wildcards > MAX_JSON_WILDCARDS:
            raise s.error(
                f"a JSON filter pattern may contain at most {MAX_JSON_WILDCARDS} selector wildcards",
                selector_pos,
            )
        self.selectors.add(steps)
        s.skip_ws()
        keyword_pos = s.pos
        word = self.keyword()
        if word == "IS":
            s.skip_ws()
            what_pos = s.pos
            what = self.keyword()
            if what == "NULL":
                return _any_node(steps, lambda node: node is None)
            if what == "TRUE":
                return _any_node(steps, lambda node: node is True)
            if what == "FALSE":
                return _any_node(steps, lambda node: node is False)
            if what == "NOT":
                raise s.error("IS NOT is not supported; use != or NOT EXISTS", keyword_pos)
            raise s.error("expected NULL, TRUE or FALSE after IS", what_pos)
        if word == "NOT":
            s.skip_ws()
            if self.keyword() != "EXISTS":
                raise s.error("expected EXISTS after NOT", keyword_pos)
            return lambda document: not _resolve(document, steps)
        if word == "EXISTS":
            raise s.error("EXISTS is not supported; use $.field = * or NOT EXISTS", keyword_pos)
        if word:
            raise s.error(f"expected an operator, IS or NOT EXISTS found {word!r}", keyword_pos)
        two = s.peek(2)
        if two in ("!=", "<=", ">="):
            operator = two
        elif two[:1] in ("=", "<", ">"):
            operator = two[:1]
        else:
            raise s.error(f"expected an operator (= != < <= > >=), IS or NOT EXISTS, found {s.describe()}")
        s.pos += len(operator)
        return _any_node(steps, self.parse_value(operator))

    def parse_value(self, operator: str) -> Callable[[Any], bool]:
        kind, value = _read_value(self.s, operator, self.count_regex,
                                  ends=lambda ch: ch in ")&|", bad=lambda ch: ch not in _JSON_BARE_CHARS)
        makers: dict[str, Callable[[str, Any], Callable[[Any], bool]]] = {
            "string": _json_string_test, "regex": _json_regex_test, "number": _json_number_test}
        make = makers[kind]
        return make(operator, value)


def _compile_json(text: str, start: int, end: int) -> Pattern:
    parser = _JsonParser(text, start, end)
    expression = parser.parse()
    load = _load_json_object

    def matches(message: str) -> bool:
        document = load(message)
        return document is not None and expression(document)

    def capture(message: str) -> Any:
        document = load(message)
        return document if document is not None and expression(document) else _NO_MATCH

    return Pattern(text, "json", matches, capture, selectors=frozenset(parser.selectors))
