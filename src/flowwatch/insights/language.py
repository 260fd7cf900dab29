"""The Logs Insights query language, the part flow-log users write: a parser and an evaluator.

Pure (no AWS, no I/O). :func:`compile_query` turns a query string into a :class:`Query` or raises
:class:`QueryError` (the local AWS answers it as ``MalformedQueryException`` with its
``queryCompileError``: message and character offsets); :meth:`Query.run` evaluates it over events.

Supported (from "CloudWatch Logs Insights language query syntax", CloudWatch Logs User Guide):

* commands, piped with ``|``, comments from ``#`` to the end of the line:
  ``fields`` (expressions, ``as`` aliases), ``display``, ``filter``, ``parse`` (glob form
  ``parse @message "* * *" as a, b, c``, regex form with named groups ``(?<name>...)``), ``stats``
  (``count(*)``, ``count(x)``, ``count_distinct``, ``sum``, ``avg``, ``min``, ``max``, ``earliest``,
  ``latest``, inside arithmetic too; ``by`` fields or expressions, ``bin(5m)``; at most two ``stats``, the
  second over the rows of the first), ``sort`` (``asc``/``desc``, several keys), ``limit N``, ``dedup``;
* expressions: ``= != < <= > >=``, ``like "text"`` (contains), ``like /regex/`` and ``=~ /regex/``,
  ``not like``, ``in [...]``, ``not in``, ``not``, ``and``, ``or``, parentheses, ``+ - * / % ^``, unary
  minus, strings in ``"`` or ``'``, numbers, field names (``a.b``, ``@timestamp``, ```odd name```),
  functions ``abs ceil floor strlen toupper tolower trim ltrim rtrim concat substr replace strcontains
  ispresent isempty isblank coalesce bin datefloor dateceil fromMillis toMillis``.

Anything else (another command such as ``unnest`` or ``pattern``, another function such as ``pct``)
is a QueryError naming it: never silently dropped.

Values are as AWS treats them: a discovered or parsed field is text; a comparison is numeric when both
sides are numbers (``dstPort = 22`` and ``dstPort = "22"`` both match "22"), textual otherwise; arithmetic
on a non-number is null. Results are text (:func:`render`): ``@timestamp`` as ``2024-05-01 12:00:00.000``,
integers as integers (``count`` always), ``avg`` and other non-integral results as a float.

Bounds: a query is at most :data:`MAX_QUERY_LENGTH` characters (StartQuery's limit), expressions nest at
most :data:`MAX_NESTING` deep, at most :data:`MAX_REGEXES` regexes, each on RE2 (linear time, a memory
budget and a program-size cap as ``flowwatch.patterns`` bounds its own), at most :data:`MAX_GROUPS`
``stats`` groups and :data:`MAX_LIMIT` result rows.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field as _field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from flowwatch.insights.fields import Record

MAX_QUERY_LENGTH = 10_000
MAX_NESTING = 32
MAX_REGEXES = 20
MAX_REGEX_PROGRAM = 2_000
MAX_REGEX_MEMORY = 8 << 20
MAX_LIMIT = 10_000
MAX_GROUPS = 100_000
MAX_STATS = 2

COMMANDS = ("fields", "display", "filter", "parse", "stats", "sort", "limit", "dedup")
#: Commands of the AWS language the local evaluator does not run: named in the error.
KNOWN_UNSUPPORTED = ("unnest", "lookup", "pattern", "diff", "anomaly", "filterindex", "source", "unmask",
                     "head", "tail", "order", "search", "join", "subquery")

Value = Any
Fn = Callable[[Mapping[str, Any]], Any]


class QueryError(Exception):
    """A query Logs Insights rejects: ``message`` and the offending characters ``[start, end]``."""

    def __init__(self, message: str, start: int = 0, end: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.start = start
        self.end = start if end is None else end


class Timestamp(int):
    """Milliseconds since the epoch, shown as Logs Insights shows ``@timestamp``."""

    __slots__ = ()

    def __str__(self) -> str:
        return datetime.fromtimestamp(int(self) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def number(value: Value) -> int | float | None:
    """``value`` as a number, or None (text that is not a number, null)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    if text.isdigit() and text.isascii():          # the common case: a port, a byte count
        return int(text)
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def render(value: Value) -> str | None:
    """A value as GetQueryResults gives it: text (None: the field is left out of the row)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return repr(value)
    return str(value)


def _equal(a: Value, b: Value) -> bool:
    if a is None or b is None:
        return False
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return x == y
    return str(a) == str(b)


def _order(a: Value, b: Value) -> int | None:
    """-1, 0, 1; None when either is null."""
    if a is None or b is None:
        return None
    x, y = number(a), number(b)
    if x is not None and y is not None:
        return (x > y) - (x < y)
    if x is not None or y is not None:      # a number and text ("-" of a NODATA record): neither is less
        return None
    s, t = str(a), str(b)
    return (s > t) - (s < t)


_CHUNK = re.compile(r"\d+|\D+")


def natural_key(value: Value) -> tuple[Any, ...]:
    """Logs Insights' ascending order ("sort"): non-numbers before numbers; numbers by value; text in
    chunks, runs of digits by length then value, other runs by Unicode."""
    n = number(value)
    if n is not None:
        return (1, float(n))
    chunks = tuple((0x30, len(c), int(c)) if c[0].isdigit() else (ord(c[0]), c) for c in _CHUNK.findall(str(value)))
    return (0, chunks)


# --------------------------------------------------------------------------------------------
# the scanner
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str          # name, string, number, duration, regex, op, eof
    text: str          # the value (a name, a string's content, an operator)
    start: int
    end: int           # exclusive

    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else ""


_NAME = re.compile(r"[@A-Za-z_$][A-Za-z0-9_.@$\-]*(?<![.\-])")
_DIGITS = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?([A-Za-z]+)?")
_OPS = ("!=", "<=", ">=", "=~", "==", "|", ",", "(", ")", "[", "]", "=", "<", ">", "+", "-", "*", "/", "%", "^", "!")

_UNITS = {"ms": 1, "msec": 1, "millisecond": 1, "s": 1000, "sec": 1000, "second": 1000, "m": 60_000,
          "min": 60_000, "minute": 60_000, "h": 3_600_000, "hr": 3_600_000, "hour": 3_600_000,
          "d": 86_400_000, "day": 86_400_000, "w": 604_800_000, "week": 604_800_000,
          "mo": -1, "mon": -1, "month": -1, "q": -3, "qtr": -3, "quarter": -3, "y": -12, "yr": -12, "year": -12}


def _unit(word: str) -> int | None:
    """Milliseconds of a bin() unit, or minus the months of a calendar unit; None if unknown."""
    if word in _UNITS:
        return _UNITS[word]
    if word.endswith("s") and word[:-1] in _UNITS and len(word) > 2:
        return _UNITS[word[:-1]]
    return None


class Scanner:
    """Tokens on demand: ``/`` starts a regex where an operand is expected and divides elsewhere."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip(self, pos: int) -> int:
        text, n = self.text, len(self.text)
        while pos < n:
            ch = text[pos]
            if ch in " \t\r\n":
                pos += 1
            elif ch == "#":
                end = text.find("\n", pos)
                pos = n if end < 0 else end + 1
            else:
                break
        return pos

    def peek(self, operand: bool = False) -> Token:
        return self._token(self._skip(self.pos), operand)

    def take(self, operand: bool = False) -> Token:
        token = self.peek(operand)
        self.pos = token.end
        return token

    def _token(self, pos: int, operand: bool) -> Token:
        text = self.text
        if pos >= len(text):
            return Token("eof", "", len(text), len(text))
        ch = text[pos]
        if ch in "\"'":
            return self._string(pos, ch)
        if ch == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise QueryError("unterminated `quoted` field name", pos, len(text) - 1)
            return Token("name", text[pos + 1:end], pos, end + 1)
        if ch == "/" and operand:
            return self._regex(pos)
        if ch.isdigit() or (ch == "." and text[pos + 1:pos + 2].isdigit()):
            match = _DIGITS.match(text, pos)
            if match is None:
                raise QueryError(f"token recognition error at: '{ch}'", pos)
            kind = "duration" if match.group(1) else "number"
            return Token(kind, match.group(0), pos, match.end())
        match = _NAME.match(text, pos)
        if match:
            return Token("name", match.group(0), pos, match.end())
        for op in _OPS:
            if text.startswith(op, pos):
                return Token("op", op, pos, pos + len(op))
        raise QueryError(f"token recognition error at: '{ch}'", pos)

    def _string(self, pos: int, quote: str) -> Token:
        text, out, i = self.text, [], pos + 1
        escapes = {"n": "\n", "t": "\t", "r": "\r"}
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(escapes.get(text[i + 1], text[i + 1]))
                i += 2
            elif ch == quote:
                return Token("string", "".join(out), pos, i + 1)
            else:
                out.append(ch)
                i += 1
        raise QueryError("unterminated string literal", pos, len(text) - 1)

    def _regex(self, pos: int) -> Token:
        text, i = self.text, pos + 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == "/":
                return Token("regex", text[pos + 1:i], pos, i + 1)
            i += 1
        raise QueryError("unterminated regular expression", pos, len(text) - 1)


# --------------------------------------------------------------------------------------------
# expressions
# --------------------------------------------------------------------------------------------


@dataclass
class Agg:
    """One aggregate call of a ``stats``: its state per group is ``init()``, fed by ``add``, read by ``result``."""

    key: str
    init: Callable[[], Any]
    add: Callable[[Any, Mapping[str, Any]], Any]
    result: Callable[[Any], Any]


@dataclass
class Expr:
    fn: Fn
    text: str
    field: str | None = None           # a bare field reference
    literal: bool = False
    value: Any = None
    aggs: list[Agg] = _field(default_factory=list)
    duration: int | None = None        # a duration literal (bin, datefloor)
    #: (field, text): the expression is true only if the field's value contains the text (see _prefilter)
    needs: tuple[tuple[str, str], ...] = ()


def _const(value: Any, text: str) -> Expr:
    return Expr(lambda r: value, text, literal=True, value=value)


def _arith(op: str, a: Expr, b: Expr) -> Fn:
    fa, fb = a.fn, b.fn

    def calc(x: Any, y: Any) -> Any:
        if op == "+":
            return x + y
        if op == "-":
            return x - y
        if op == "*":
            return x * y
        if op == "/":
            return x / y
        if op == "%":
            return math.fmod(x, y) if isinstance(x, float) or isinstance(y, float) else x % y
        return x ** y

    def fn(r: Mapping[str, Any]) -> Any:
        x, y = number(fa(r)), number(fb(r))
        if x is None or y is None:
            return None
        try:
            result = calc(int(x) if isinstance(x, Timestamp) else x, int(y) if isinstance(y, Timestamp) else y)
        except (ZeroDivisionError, OverflowError, ValueError):
            return None
        if isinstance(result, complex):
            return None
        return result

    return fn


def _comparison(op: str, a: Expr, b: Expr) -> Fn:
    fa, fb = a.fn, b.fn
    if op in ("=", "==", "!=") and b.literal:
        lit, negate = b.value, op == "!="
        n = number(lit)
        if n is None:                            # text: the common `action = "REJECT"`
            text = str(lit)

            def text_eq(r: Mapping[str, Any]) -> bool:
                v = fa(r)
                return v is not None and ((v == text or str(v) == text) != negate)
            return text_eq

        def num_eq(r: Mapping[str, Any]) -> bool:
            v = fa(r)
            if v is None:
                return False
            x = number(v)
            return ((x == n) if x is not None else str(v) == str(lit)) != negate
        return num_eq
    if op in ("=", "=="):
        return lambda r: _equal(fa(r), fb(r))
    if op == "!=":
        return lambda r: fa(r) is not None and fb(r) is not None and not _equal(fa(r), fb(r))
    test = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}[op]

    def ordered(r: Mapping[str, Any]) -> bool:
        c = _order(fa(r), fb(r))
        return c is not None and test(c)
    return ordered


def _either(fa: Fn, fb: Fn) -> Fn:
    return lambda r: _truth(fa(r)) or _truth(fb(r))


def _both(fa: Fn, fb: Fn) -> Fn:
    return lambda r: _truth(fa(r)) and _truth(fb(r))


def _truth(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value != ""
    return bool(value)


def _compile_regex(pattern: str, at: int, end: int, *, captures: bool) -> Any:
    import re2  # google-re2

    options = re2.Options()
    options.max_mem = MAX_REGEX_MEMORY
    options.log_errors = False
    options.never_capture = not captures
    translated = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)
    try:
        regexp = re2.compile(translated, options)
    except Exception as exc:  # re2.error: the message RE2 gives
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise QueryError(f"invalid regular expression /{pattern}/: {reason}", at, end) from None
    if regexp.programsize > MAX_REGEX_PROGRAM:
        raise QueryError(f"regular expression too complex: {regexp.programsize} RE2 instructions, at most "
                         f"{MAX_REGEX_PROGRAM}", at, end)
    return regexp


def _bin_floor(ms: int, step: int) -> int:
    """The start of the bin of ``ms``: ``step`` milliseconds, or minus a number of calendar months."""
    if step > 0:
        return ms - ms % step
    months = -step
    when = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    index = (when.year * 12 + when.month - 1) // months * months
    start = datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp() * 1000)


def _bin_ceil(ms: int, step: int) -> int:
    floor = _bin_floor(ms, step)
    if floor == ms:
        return ms
    if step > 0:
        return floor + step
    when = datetime.fromtimestamp(floor / 1000, tz=timezone.utc)
    index = when.year * 12 + when.month - 1 - step
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


def _text_fn(f: Callable[[str], Any]) -> Callable[..., Any]:
    return lambda v: None if v is None else f(str(v))


def _num_fn(f: Callable[[Any], Any]) -> Callable[..., Any]:
    def apply(v: Any) -> Any:
        n = number(v)
        return None if n is None else f(n)
    return apply


def _substr(s: Any, start: Any, length: Any = None) -> Any:
    i, n = number(start), number(length) if length is not None else None
    if s is None or i is None:
        return None
    text = str(s)
    return text[int(i):] if n is None else text[int(i):int(i) + int(n)]


def _timestamp(v: Any) -> Any:
    n = number(v)
    return None if n is None else Timestamp(int(n))


#: Scalar functions: name -> (fewest, most arguments, fn of the argument values).
FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "abs": (1, 1, _num_fn(abs)),
    "ceil": (1, 1, _num_fn(math.ceil)),
    "floor": (1, 1, _num_fn(math.floor)),
    "strlen": (1, 1, _text_fn(len)),
    "toupper": (1, 1, _text_fn(str.upper)),
    "tolower": (1, 1, _text_fn(str.lower)),
    "trim": (1, 1, _text_fn(str.strip)),
    "ltrim": (1, 1, _text_fn(str.lstrip)),
    "rtrim": (1, 1, _text_fn(str.rstrip)),
    "concat": (1, 64, lambda *vs: "".join("" if v is None else render(v) or "" for v in vs)),
    "substr": (2, 3, _substr),
    "replace": (3, 3, lambda s, a, b: None if s is None else str(s).replace(str(a or ""), str(b or ""))),
    "strcontains": (2, 2, lambda s, sub: None if s is None else int(str(sub or "") in str(s))),
    "ispresent": (1, 1, lambda v: v is not None),
    "isempty": (1, 1, lambda v: v is None or str(v) == ""),
    "isblank": (1, 1, lambda v: v is None or str(v).strip() == ""),
    "coalesce": (1, 64, lambda *vs: next((v for v in vs if v is not None), None)),
    "frommillis": (1, 1, _timestamp),
    "tomillis": (1, 1, lambda v: None if number(v) is None else int(number(v) or 0)),
}

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max", "earliest", "latest")
#: Functions of the AWS language the local evaluator does not have: named in the error.
KNOWN_UNSUPPORTED_FUNCTIONS = ("pct", "stddev", "sortsfirst", "sortslast", "isvalidip", "isvalidipv4",
                               "isvalidipv6", "isipinsubnet", "isipv4insubnet", "isipv6insubnet",
                               "jsonparse", "parse_json", "datediff", "dateadd", "unmask", "greatest", "least",
                               "log", "sqrt", "exp", "regexmatch")


class _Parser:
    """Recursive descent over one query; a method per command, expressions by precedence."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.scan = Scanner(text)
        self.depth = 0
        self.regexes = 0
        self.in_stats = False
        self.aggs: list[Agg] = []

    # ---- helpers ----
    def fail(self, message: str, token: Token | None = None) -> QueryError:
        token = token or self.scan.peek()
        return QueryError(message, token.start, max(token.start, token.end - 1))

    def mismatched(self, expecting: str, token: Token | None = None) -> QueryError:
        token = token or self.scan.peek()
        shown = "<EOF>" if token.kind == "eof" else self.text[token.start:token.end]
        return self.fail(f"mismatched input '{shown}' expecting {expecting}", token)

    def accept_op(self, op: str) -> bool:
        token = self.scan.peek()
        if token.kind == "op" and token.text == op:
            self.scan.take()
            return True
        return False

    def accept_word(self, word: str) -> bool:
        if self.scan.peek().word() == word:
            self.scan.take()
            return True
        return False

    def expect_op(self, op: str) -> Token:
        token = self.scan.peek()
        if token.kind != "op" or token.text != op:
            raise self.mismatched(f"'{op}'", token)
        return self.scan.take()

    def at_end_of_command(self) -> bool:
        token = self.scan.peek()
        return token.kind == "eof" or (token.kind == "op" and token.text == "|")

    def name(self) -> Token:
        token = self.scan.peek()
        if token.kind != "name":
            raise self.mismatched("a field name", token)
        return self.scan.take()

    def names(self) -> list[Token]:
        found = [self.name()]
        while self.accept_op(","):
            found.append(self.name())
        return found

    # ---- expressions, loosest first ----
    def expression(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"the expression nests too deep: at most {MAX_NESTING} levels")
        try:
            return self.disjunction()
        finally:
            self.depth -= 1

    def disjunction(self) -> Expr:
        return self._logical("or", self.conjunction)

    def conjunction(self) -> Expr:
        return self._logical("and", self.negation)

    def _logical(self, word: str, operand: Callable[[], Expr]) -> Expr:
        """``operand (word operand)*``; an ``and`` keeps the prefilter texts of both sides, an ``or`` none."""
        start = self._here()
        left = operand()
        while self.scan.peek().word() == word:
            self.scan.take()
            right = operand()
            joined = self._join(start, left, right, (_both if word == "and" else _either)(left.fn, right.fn))
            joined.needs = left.needs + right.needs if word == "and" else ()
            left = joined
        return left

    def negation(self) -> Expr:
        token = self.scan.peek()
        if token.word() == "not" or (token.kind == "op" and token.text == "!"):
            self.scan.take()
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"the expression nests too deep: at most {MAX_NESTING} levels")
            inner = self.negation()
            self.depth -= 1
            fn = inner.fn
            return Expr(lambda r: not _truth(fn(r)), self.text[token.start:self.scan.pos].strip(), aggs=inner.aggs)
        return self.comparison()

    def comparison(self) -> Expr:
        start = self._here()
        left = self.additive()
        token = self.scan.peek()
        word = token.word()
        negate = False
        if word == "not":
            after = Scanner(self.text)
            after.pos = token.end
            if after.peek().word() in ("like", "in"):
                self.scan.take()
                negate, token, word = True, self.scan.peek(), self.scan.peek().word()
        needs: tuple[tuple[str, str], ...] = ()
        if word == "like" or (token.kind == "op" and token.text == "=~"):
            self.scan.take()
            if self.scan.peek(operand=True).kind == "string" and left.field and not negate:
                needs = ((left.field, self.scan.peek(operand=True).text),)
            fn = self.like(left, regex_only=token.text == "=~")
        elif word == "in":
            self.scan.take()
            fn = self.membership(left)
        elif token.kind == "op" and token.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            self.scan.take()
            right = self.additive()
            joined = self._join(start, left, right, _comparison(token.text, left, right))
            if token.text in ("=", "==") and left.field and right.literal and isinstance(right.value, str) \
                    and number(right.value) is None:
                joined.needs = ((left.field, right.value),)
            return joined
        else:
            if negate:
                raise self.mismatched("'like' or 'in'")
            return left
        if negate:
            inner = fn
            fn = lambda r: not inner(r)  # noqa: E731
        return Expr(fn, self.text[start:self.scan.pos].strip(), aggs=left.aggs, needs=needs)

    def like(self, left: Expr, *, regex_only: bool) -> Fn:
        token = self.scan.take(operand=True)
        fa = left.fn
        if token.kind == "regex":
            search = self.regex(token, captures=False).search
            return lambda r: (v := fa(r)) is not None and search(v if isinstance(v, str) else str(v)) is not None
        if token.kind == "string" and not regex_only:
            text = token.text
            return lambda r: (v := fa(r)) is not None and text in (v if isinstance(v, str) else str(v))
        raise self.mismatched("a /regular expression/" if regex_only else "a string or a /regular expression/", token)

    def regex(self, token: Token, *, captures: bool) -> Any:
        self.regexes += 1
        if self.regexes > MAX_REGEXES:
            raise self.fail(f"a query may contain at most {MAX_REGEXES} regular expressions", token)
        return _compile_regex(token.text, token.start, token.end - 1, captures=captures)

    def membership(self, left: Expr) -> Fn:
        self.expect_op("[")
        values: list[Any] = []
        if not self.accept_op("]"):
            while True:
                item = self.additive()
                if not item.literal:
                    raise self.fail("a list after 'in' holds literals only")
                values.append(item.value)
                if self.accept_op("]"):
                    break
                self.expect_op(",")
        texts = {str(v) for v in values if v is not None}
        numbers = {n for n in (number(v) for v in values) if n is not None}
        fa = left.fn

        def member(r: Mapping[str, Any]) -> bool:
            v = fa(r)
            if v is None:
                return False
            if (v if isinstance(v, str) else str(v)) in texts:
                return True
            n = number(v) if numbers else None
            return n is not None and n in numbers
        return member

    def additive(self) -> Expr:
        return self._binary(("+", "-"), self.multiplicative)

    def multiplicative(self) -> Expr:
        return self._binary(("*", "/", "%"), self.power)

    def _binary(self, ops: tuple[str, ...], operand: Callable[[], Expr]) -> Expr:
        """``operand (op operand)*``, left to right, for the operators ``ops`` of one precedence."""
        start = self._here()
        left = operand()
        while True:
            token = self.scan.peek()
            if token.kind != "op" or token.text not in ops:
                return left
            self.scan.take()
            right = operand()
            left = self._join(start, left, right, _arith(token.text, left, right))

    def power(self) -> Expr:
        start = self._here()
        base = self.unary()
        if self.accept_op("^"):
            exponent = self.power()
            return self._join(start, base, exponent, _arith("^", base, exponent))
        return base

    def unary(self) -> Expr:
        token = self.scan.peek(operand=True)
        if token.kind == "op" and token.text == "-":
            self.scan.take(operand=True)
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self.fail(f"the expression nests too deep: at most {MAX_NESTING} levels")
            inner = self.unary()
            self.depth -= 1
            if inner.literal and isinstance(inner.value, (int, float)):
                return _const(-inner.value, "-" + inner.text)
            fn = inner.fn
            return Expr(lambda r: None if (n := number(fn(r))) is None else -n, "-" + inner.text, aggs=inner.aggs)
        return self.primary()

    def _join(self, start: int, left: Expr, right: Expr, fn: Fn) -> Expr:
        return Expr(fn, self.text[start:self.scan.pos].strip(), aggs=left.aggs + right.aggs)

    def _here(self) -> int:
        return self.scan.peek(operand=True).start

    def primary(self) -> Expr:
        token = self.scan.peek(operand=True)
        if token.kind == "op" and token.text == "(":
            self.scan.take(operand=True)
            inner = self.expression()
            self.expect_op(")")
            return Expr(inner.fn, self.text[token.start:self.scan.pos], inner.field, inner.literal, inner.value,
                        inner.aggs, needs=inner.needs)
        if token.kind == "string":
            self.scan.take(operand=True)
            return _const(token.text, self.text[token.start:token.end])
        if token.kind == "number":
            self.scan.take(operand=True)
            value = number(token.text)
            return _const(value, token.text)
        if token.kind == "duration":
            self.scan.take(operand=True)
            return self.duration(token)
        if token.kind == "regex":
            raise self.fail("a regular expression goes after 'like' or '=~'", token)
        if token.kind == "name":
            self.scan.take(operand=True)
            after = self.scan.peek()
            if after.kind == "op" and after.text == "(" and after.start == token.end:
                return self.call(token)
            name = token.text
            return Expr(lambda r: r[name], name, field=name)
        raise self.mismatched("an expression", token)

    def duration(self, token: Token) -> Expr:
        match = re.fullmatch(r"(\d+)([A-Za-z]+)", token.text)
        unit = _unit(match.group(2).lower()) if match else None
        if match is None or unit is None or int(match.group(1)) == 0:
            raise self.fail(f"'{token.text}' is not a time period (e.g. 30s, 5m, 1h, 1d)", token)
        count = int(match.group(1))
        expr = _const(token.text, token.text)
        expr.duration = count * unit
        return expr

    def call(self, token: Token) -> Expr:
        name = token.text.lower()
        self.expect_op("(")
        if name in AGGREGATES:
            return self.aggregate(token, name)
        args: list[Expr] = []
        if not self.accept_op(")"):
            while True:
                args.append(self.expression())
                if self.accept_op(")"):
                    break
                self.expect_op(",")
        text = self.text[token.start:self.scan.pos]
        aggs = [a for arg in args for a in arg.aggs]
        if name in ("bin", "datefloor", "dateceil"):
            return self.time_bucket(token, name, args, text, aggs)
        if name not in FUNCTIONS:
            if name in KNOWN_UNSUPPORTED_FUNCTIONS:
                raise self.fail(f"the function {token.text}() is not supported by the local Logs Insights", token)
            raise self.fail(f"unknown function: {token.text}", token)
        fewest, most, fn = FUNCTIONS[name]
        if not fewest <= len(args) <= most:
            raise self.fail(f"{token.text}() takes {fewest}" + (f" to {most}" if most != fewest else "")
                            + f" argument{'s' if most > 1 else ''}, not {len(args)}", token)
        fns = [a.fn for a in args]
        if len(fns) == 1:
            (f0,) = fns
            return Expr(lambda r: fn(f0(r)), text, aggs=aggs)
        return Expr(lambda r: fn(*(f(r) for f in fns)), text, aggs=aggs)

    def time_bucket(self, token: Token, name: str, args: list[Expr], text: str, aggs: list[Agg]) -> Expr:
        if name == "bin":
            if len(args) != 1 or args[0].duration is None:
                raise self.fail("bin() takes one time period, e.g. bin(5m)", token)
            source: Fn = lambda r: r["@timestamp"]  # noqa: E731
            step = args[0].duration
        else:
            if len(args) != 2 or args[1].duration is None:
                raise self.fail(f"{token.text}() takes a timestamp and a time period, e.g. {name}(@timestamp, 1h)",
                                token)
            source, step = args[0].fn, args[1].duration
        bucket = _bin_ceil if name == "dateceil" else _bin_floor

        def fn(r: Mapping[str, Any]) -> Any:
            n = number(source(r))
            return None if n is None else Timestamp(bucket(int(n), step))
        return Expr(fn, text, aggs=aggs)

    def aggregate(self, token: Token, name: str) -> Expr:
        if not self.in_stats:
            raise self.fail(f"the aggregate function {token.text}() is only allowed in stats", token)
        star = False
        arg: Expr | None = None
        if name == "count" and self.accept_op("*"):
            star = True
        elif name == "count" and self.scan.peek().kind == "op" and self.scan.peek().text == ")":
            star = True
        else:
            outer, self.in_stats = self.in_stats, False     # no aggregate inside an aggregate
            try:
                arg = self.expression()
            finally:
                self.in_stats = outer
        self.expect_op(")")
        text = self.text[token.start:self.scan.pos]
        key = f"#{len(self.aggs)}"
        agg = _make_agg(name, key, None if star else arg)
        self.aggs.append(agg)
        return Expr(lambda r: r[key], text, aggs=[agg])


def _make_agg(name: str, key: str, arg: Expr | None) -> Agg:
    f: Fn = arg.fn if arg is not None else (lambda r: 1)

    def timed(r: Mapping[str, Any]) -> int:
        n = number(r["@timestamp"])
        return 0 if n is None else int(n)

    if name == "count":
        def count_add(s: list[int], r: Mapping[str, Any]) -> None:
            if f(r) is not None:
                s[0] += 1

        def count_all(s: list[int], r: Mapping[str, Any]) -> None:
            s[0] += 1
        return Agg(key, lambda: [0], count_all if arg is None else count_add, lambda s: s[0])
    if name == "count_distinct":
        def distinct_add(s: set[Any], r: Mapping[str, Any]) -> None:
            v = f(r)
            if v is not None:
                s.add(v if isinstance(v, str) else render(v))
        return Agg(key, set, distinct_add, len)
    if name in ("sum", "avg"):
        def sum_add(s: list[Any], r: Mapping[str, Any]) -> None:
            v = f(r)
            n = int(v) if type(v) is str and v.isdigit() and v.isascii() else number(v)
            if n is not None:
                s[0] += n
                s[1] += 1
        if name == "sum":
            return Agg(key, lambda: [0, 0], sum_add, lambda s: s[0] if s[1] else None)
        return Agg(key, lambda: [0, 0], sum_add, lambda s: s[0] / s[1] if s[1] else None)
    if name in ("min", "max"):
        better = (lambda a, b: a < b) if name == "min" else (lambda a, b: a > b)

        def extreme_add(s: list[Any], r: Mapping[str, Any]) -> None:
            v = f(r)
            n = number(v)
            if n is not None and (s[0] is None or better(n, s[0])):
                s[0], s[1] = n, v
        return Agg(key, lambda: [None, None], extreme_add, lambda s: s[0])
    later = name == "latest"

    def time_add(s: list[Any], r: Mapping[str, Any]) -> None:
        v = f(r)
        if v is None:
            return
        t = timed(r)
        if s[0] is None or (t >= s[0] if later else t < s[0]):
            s[0], s[1] = t, v
    return Agg(key, lambda: [None, None], time_add, lambda s: s[1])


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


@dataclass
class Command:
    kind: str
    start: int
    items: list[tuple[str, Expr]] = _field(default_factory=list)       # fields, stats items, stats by
    by: list[tuple[str, Expr]] = _field(default_factory=list)
    keys: list[tuple[Expr, bool]] = _field(default_factory=list)       # sort: (expr, descending)
    names: list[str] = _field(default_factory=list)                    # display, dedup, parse targets
    predicate: Fn | None = None
    count: int = 0
    source: Expr | None = None
    regex: Any = None
    aggs: list[Agg] = _field(default_factory=list)
    needs: tuple[tuple[str, str], ...] = ()


class _CommandParser(_Parser):
    def query(self) -> list[Command]:
        commands: list[Command] = []
        while True:
            token = self.scan.peek()
            if token.kind == "eof":
                if not commands:
                    raise QueryError("the query is empty", 0, 0)
                raise self.mismatched("a command after '|'", token)
            commands.append(self.command())
            after = self.scan.peek()
            if after.kind == "eof":
                return commands
            if not (after.kind == "op" and after.text == "|"):
                raise self.mismatched("'|'", after)
            self.scan.take()

    def command(self) -> Command:
        token = self.scan.peek()
        word = token.word()
        if word not in COMMANDS:
            if word in KNOWN_UNSUPPORTED:
                raise self.fail(f"the {token.text} command is not supported by the local Logs Insights", token)
            expecting = "{" + ", ".join(f"K_{c.upper()}" for c in COMMANDS) + "}"
            raise self.mismatched(expecting, token)
        self.scan.take()
        command = getattr(self, f"cmd_{word}")(token.start)
        if not self.at_end_of_command():
            raise self.mismatched("'|' or the end of the query")
        return command

    def aliased(self) -> list[tuple[str, Expr]]:
        items: list[tuple[str, Expr]] = []
        while True:
            expr = self.expression()
            name = expr.field or expr.text
            if self.accept_word("as"):
                name = self.name().text
            items.append((name, expr))
            if not self.accept_op(","):
                return items

    def cmd_fields(self, start: int) -> Command:
        return Command("fields", start, items=self.aliased())

    def cmd_display(self, start: int) -> Command:
        return Command("display", start, names=[t.text for t in self.names()])

    def cmd_dedup(self, start: int) -> Command:
        return Command("dedup", start, names=[t.text for t in self.names()])

    def cmd_filter(self, start: int) -> Command:
        expr = self.expression()
        return Command("filter", start, predicate=expr.fn, needs=expr.needs)

    def cmd_limit(self, start: int) -> Command:
        token = self.scan.take(operand=True)
        if token.kind != "number" or not token.text.isdigit():
            raise self.mismatched("a number", token)
        count = int(token.text)
        if not 1 <= count <= MAX_LIMIT:
            raise self.fail(f"limit must be between 1 and {MAX_LIMIT}, not {count}", token)
        return Command("limit", start, count=count)

    def cmd_sort(self, start: int) -> Command:
        keys: list[tuple[Expr, bool]] = []
        self.accept_word("by")
        while True:
            expr = self.expression()
            descending = False
            if self.accept_word("desc"):
                descending = True
            else:
                self.accept_word("asc")
            keys.append((expr, descending))
            if not self.accept_op(","):
                return Command("sort", start, keys=keys)

    def cmd_parse(self, start: int) -> Command:
        token = self.scan.peek(operand=True)
        source: Expr
        if token.kind in ("string", "regex"):
            source = Expr(lambda r: r["@message"], "@message", field="@message")
        else:
            name = self.name().text
            source = Expr(lambda r: r[name], name, field=name)
        token = self.scan.take(operand=True)
        if token.kind == "string":
            if "*" not in token.text:
                raise self.fail("a parse pattern needs at least one '*'", token)
            if self.scan.peek().word() != "as":
                raise self.mismatched("'as'")
            self.scan.take()
            names = [t.text for t in self.names()]
            parts = token.text.split("*")
            if len(names) != len(parts) - 1:
                raise self.fail(f"the pattern has {len(parts) - 1} '*' but {len(names)} field names follow 'as'",
                                token)
            groups = ["(.*?)"] * (len(parts) - 1)
            if parts[-1] == "":
                groups[-1] = "(.*)"
            body = re.escape(parts[0]) + "".join(g + re.escape(p) for g, p in zip(groups, parts[1:]))
            regex = self.regex(Token("regex", body, token.start, token.end), captures=True)
        elif token.kind == "regex":
            regex = self.regex(token, captures=True)
            names = list(regex.groupindex)
            if not names:
                raise self.fail("a parse regular expression needs named groups: (?<name>...)", token)
            if self.scan.peek().word() == "as":
                raise self.fail("a parse regular expression names its fields in its groups, not after 'as'",
                                self.scan.peek())
        else:
            raise self.mismatched("a \"glob * pattern\" or a /regular expression/", token)
        return Command("parse", start, names=names, source=source, regex=regex)

    def cmd_stats(self, start: int) -> Command:
        self.in_stats, self.aggs = True, []
        try:
            items = self.aliased()
        finally:
            self.in_stats = False
        aggs = self.aggs
        for name, expr in items:
            if not expr.aggs:
                raise self.fail(f"'{expr.text}' in stats is not an aggregate function (count, sum, avg, ...)")
        by: list[tuple[str, Expr]] = []
        if self.accept_word("by"):
            self.in_stats = True          # an aggregate here gets the message below, not "only in stats"
            try:
                by = self.aliased()
            finally:
                self.in_stats = False
            for _, expr in by:
                if expr.aggs:
                    raise self.fail("stats cannot group by an aggregate")
        return Command("stats", start, items=items, by=by, aggs=aggs)


def compile_query(text: str) -> "Query":
    """Parse ``text``; QueryError (MalformedQueryException) when Logs Insights would refuse it."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is {len(text):,} characters long; at most {MAX_QUERY_LENGTH:,}",
                         MAX_QUERY_LENGTH, len(text) - 1)
    if not text.strip():
        raise QueryError("the query is empty", 0, 0)
    commands = _CommandParser(text).query()
    stats = [c for c in commands if c.kind == "stats"]
    if len(stats) > MAX_STATS:
        raise QueryError(f"a query may contain at most {MAX_STATS} stats commands", stats[MAX_STATS].start,
                         stats[MAX_STATS].start + 4)
    return Query(text, commands)


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


class Source(NamedTuple):
    """One log event as a query reads it (``ptr``: its ``@ptr``, may be empty for a stats query)."""

    timestamp: int
    ingestion_time: int
    stream: str
    log: str                   # "<account>:<group>"
    message: str
    ptr: str


@dataclass
class Result:
    rows: list[list[tuple[str, str]]]        # each row: (field, value) pairs, fields without a value left out
    records_matched: int
    records_scanned: int
    bytes_scanned: int


_STREAMING = ("fields", "parse", "filter", "display")


@dataclass
class Query:
    text: str
    commands: list[Command]

    @property
    def is_stats(self) -> bool:
        return any(c.kind == "stats" for c in self.commands)

    @property
    def wants_newest_first(self) -> bool:
        """True when the events must come newest first (a ``limit`` or ``dedup`` before any sort or stats);
        otherwise any order gives the same result, and :meth:`run` takes them oldest first."""
        for command in self.commands:
            if command.kind in ("limit", "dedup"):
                return True
            if command.kind in ("sort", "stats"):
                return False
        return False

    def run(self, events: Iterable[Any], *, newest_first: bool, limit: int = MAX_LIMIT,
            wrap: Callable[[Any], Source] | None = None) -> Result:
        """Evaluate over ``events`` (in time order, newest first when ``newest_first``); at most ``limit`` rows.
        ``events`` are Sources, or anything with a ``message`` that ``wrap`` makes a Source of (only the
        events past the prefilter are wrapped)."""
        counter = [0, 0, 0]         # scanned, bytes, matched
        source = _records(events, counter, wrap, *self._prefilter())
        rows: Iterator[Any] = source
        lead = 0
        while lead < len(self.commands) and self.commands[lead].kind in _STREAMING:
            lead += 1
        rows = _pipeline(self.commands[:lead], rows)
        rows = _counted(rows, counter)
        rest = self.commands[lead:]
        sorted_later = any(c.kind in ("sort", "stats") for c in rest)
        i = 0
        while i < len(rest):
            command = rest[i]
            if command.kind == "stats":
                rows = iter(_stats(command, rows))
            elif command.kind == "sort":
                following = rest[i + 1] if i + 1 < len(rest) else None
                bound = following.count if following is not None and following.kind == "limit" else None
                if following is None:
                    bound = limit
                rows = iter(_sort(command.keys, rows, bound))
            elif command.kind == "limit":
                rows = itertools.islice(rows, command.count)
            elif command.kind == "dedup":
                rows = _dedup(command.names, rows)
            else:
                rows = _pipeline([command], rows)
            i += 1
        if self.is_stats or sorted_later or newest_first:
            final = list(itertools.islice(rows, limit))
        else:                       # oldest first, no sort: the newest `limit`, newest first
            final = list(deque(rows, maxlen=limit))
            final.reverse()
        source.close()              # a limit may have stopped early: the scan counts are final now
        shown = self._shown()
        out = [_row(r, shown, ptr=not self.is_stats) for r in final]
        return Result(out, counter[2], counter[0], counter[1])

    def _prefilter(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Texts every matching event's message contains, from the leading filters: (for ``@message``, for
        flow-log fields). A default-format record's field is one of its words and ``@message`` the message
        itself, so an event without the text cannot match; a JSON event's values may be escaped, so the
        flow-log texts do not apply to one (its message starts with ``{``). A field set by an earlier
        ``fields`` or ``parse`` is not the discovered one and gives no text."""
        from flowwatch.insights.fields import VPC_FIELDS

        assigned: set[str] = set()
        message: list[str] = []
        vpc: list[str] = []
        for command in self.commands:
            if command.kind not in _STREAMING:
                break
            if command.kind == "fields":
                assigned.update(name for name, expr in command.items if expr.field != name)
            elif command.kind == "parse":
                assigned.update(command.names)
            elif command.kind == "filter":
                for name, text in command.needs:
                    if name in assigned:
                        continue
                    if name == "@message":
                        message.append(text)
                    elif name in VPC_FIELDS:
                        vpc.append(text)
        return tuple(message), tuple(vpc)

    def _shown(self) -> list[str] | None:
        """The fields a result row has, in order (None: every field of the event)."""
        last_stats = max((i for i, c in enumerate(self.commands) if c.kind == "stats"), default=-1)
        names: list[str] = []
        display: list[str] | None = None
        if last_stats >= 0:
            stats = self.commands[last_stats]
            names = [n for n, _ in stats.by] + [n for n, _ in stats.items]
        explicit = last_stats >= 0
        for command in self.commands[last_stats + 1:]:
            if command.kind == "display":
                display = list(command.names)
            elif command.kind in ("fields", "parse"):
                explicit = explicit or command.kind == "fields"
                names += [n for n, _ in command.items] if command.kind == "fields" else command.names
        if display is not None:
            return display
        return list(dict.fromkeys(names)) if explicit else None


def _records(events: Iterable[Any], counter: list[int], wrap: Callable[[Any], Source] | None = None,
             in_message: tuple[str, ...] = (), in_fields: tuple[str, ...] = ()) -> Generator[Record, None, None]:
    """The events as Records, counted; those whose message lacks a text of the prefilter (Query._prefilter)
    are counted and skipped."""
    scanned = size = 0
    first = in_fields[0] if len(in_fields) == 1 and not in_message else None
    try:
        if first is not None:                  # the usual `filter action = "REJECT"`: one text, inline
            for event in events:
                scanned += 1
                message = event.message
                size += len(message)
                if first in message or message[:1] == "{":
                    yield Record(event if wrap is None else wrap(event))
            return
        for event in events:
            scanned += 1
            message = event.message
            size += len(message)
            if in_message and not all(t in message for t in in_message):
                continue
            if in_fields and message[:1] != "{" and not all(t in message for t in in_fields):
                continue
            yield Record(event if wrap is None else wrap(event))
    finally:
        counter[0] += scanned
        counter[1] += size


def _counted(rows: Iterator[Any], counter: list[int]) -> Iterator[Any]:
    for row in rows:
        counter[2] += 1
        yield row


def _pipeline(commands: list[Command], rows: Iterator[Any]) -> Iterator[Any]:
    """The per-event commands (fields, parse, filter; display only chooses the fields shown)."""
    steps: list[Callable[[Any], bool]] = []
    for command in commands:
        if command.kind == "filter":
            predicate = command.predicate
            assert predicate is not None
            steps.append(_holds(predicate))
        elif command.kind == "fields":
            for name, expr in command.items:
                if expr.field != name:
                    steps.append(_setter(name, expr.fn))
        elif command.kind == "parse":
            assert command.source is not None
            steps.append(_parse_step(command.source.fn, command.regex, command.names))
    if not steps:
        return rows
    if len(steps) == 1:
        (only,) = steps
        return (r for r in rows if only(r))
    return (r for r in rows if all(step(r) for step in steps))


def _holds(predicate: Fn) -> Callable[[Any], bool]:
    return lambda r: _truth(predicate(r))


def _setter(name: str, fn: Fn) -> Callable[[Any], bool]:
    def assign(r: Any) -> bool:
        r[name] = fn(r)
        return True
    return assign


def _parse_step(source: Fn, regex: Any, names: list[str]) -> Callable[[Any], bool]:
    search = regex.search

    def step(r: Any) -> bool:
        v = source(r)
        if v is None:
            return True
        match = search(v if isinstance(v, str) else str(v))
        if match is not None:
            for name, value in zip(names, match.groups()):
                if value is not None:
                    r[name] = value
        return True
    return step


def _stats(command: Command, rows: Iterator[Any]) -> list["_Row"]:
    aggs = command.aggs
    by = [e.fn for _, e in command.by]
    groups: dict[tuple[Any, ...], list[Any]] = {}
    inits = [a.init for a in aggs]
    adds = [a.add for a in aggs]
    def one(r: Any, f: Fn = by[0] if by else (lambda r: None)) -> tuple[Any, ...]:
        v = f(r)
        return (v if v is None or type(v) is str else _group_value(v),)

    key_of = one if len(by) == 1 else (lambda r: tuple(_group_value(f(r)) for f in by))
    for r in rows:
        key = key_of(r)
        states = groups.get(key)
        if states is None:
            if len(groups) >= MAX_GROUPS:
                raise QueryError(f"stats produced more than {MAX_GROUPS:,} groups; group by fewer values")
            states = groups[key] = [init() for init in inits]
        for add, state in zip(adds, states):
            add(state, r)
    if not by and not groups:
        groups[()] = [init() for init in inits]       # stats without by: one row, even over nothing
    out: list[_Row] = []
    for key, states in groups.items():
        values = {a.key: a.result(s) for a, s in zip(aggs, states)}
        row = _Row((name, v) for (name, _), v in zip(command.by, key))
        for name, expr in command.items:
            row[name] = expr.fn(values)
        out.append(row)
    return out


class _Row(dict[str, Any]):
    """A row of stats results: a field it lacks is null."""

    def __missing__(self, key: str) -> Any:
        return None


def _group_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, Timestamp)) else render(value)


def _sort(keys: list[tuple[Expr, bool]], rows: Iterator[Any], bound: int | None) -> list[Any]:
    def key_of(expr: Expr, descending: bool) -> Callable[[Any], tuple[Any, ...]]:
        f = expr.fn
        present, missing = (1, 0) if descending else (0, 1)

        def key(r: Any) -> tuple[Any, ...]:
            v = f(r)
            return (missing,) if v is None else (present, natural_key(v))
        return key

    directions = {d for _, d in keys}
    if len(directions) == 1:
        descending = directions.pop()
        parts = [key_of(e, descending) for e, _ in keys]
        key = parts[0] if len(parts) == 1 else (lambda r: tuple(p(r) for p in parts))
        if bound is not None:
            return heapq.nlargest(bound, rows, key=key) if descending else heapq.nsmallest(bound, rows, key=key)
        return sorted(rows, key=key, reverse=descending)
    result = list(rows)
    for expr, descending in reversed(keys):      # stable sorts, last key first
        result.sort(key=key_of(expr, descending), reverse=descending)
    return result[:bound] if bound is not None else result


def _dedup(names: list[str], rows: Iterator[Any]) -> Iterator[Any]:
    seen: set[tuple[Any, ...]] = set()
    for r in rows:
        values = tuple(r[n] for n in names)
        if any(v is None for v in values):
            yield r
            continue
        key = tuple(render(v) for v in values)
        if key not in seen:
            seen.add(key)
            yield r


def _row(r: Any, shown: list[str] | None, *, ptr: bool) -> list[tuple[str, str]]:
    if shown is None:
        fields = r.every() if isinstance(r, Record) else dict(r)
        pairs = [(k, render(v)) for k, v in fields.items() if k != "@ptr"]
    else:
        pairs = [(k, render(r[k] if isinstance(r, Record) else r.get(k))) for k in shown if k != "@ptr"]
    if ptr and isinstance(r, Record):
        pairs.append(("@ptr", r["@ptr"]))
    return [(k, v) for k, v in pairs if v is not None]
