"""The check of each flow-log text file before DuckDB reads it, and the rewrite of the few it cannot.

DuckDB's ``read_csv`` fails the whole scan on one bad file (a truncated gzip, bytes that are not
UTF-8, a line ending in CRLF after LF lines), reads a header line in the middle of a file as data
(objects concatenated: ``srcaddr = 'srcaddr'``) and rejects a record with two spaces between two
fields, which :class:`flowwatch.records.RecordParser` (``str.split``) accepts. So each text file
is inflated once first, in a thread pool (ISA-L's inflate when the ``isal`` package is there:
half zlib's time, so the check costs about a quarter of what DuckDB's own gzip read costs), and
looked at with byte searches only (no per-line Python on the common path):

* it inflates to its end (every gzip member, each CRC checked): else "truncated gzip", ...;
* it is UTF-8 (``bytes.isascii`` first, a decode only when not ASCII);
* its lines end all in LF or all in CRLF, and hold no other carriage return;
* no line is longer than :data:`flowwatch.records.MAX_LINE_BYTES` (every half-limit block of
  the text holds a newline, else the line around it is measured);
* header lines after the first (a line starting with the header's first field name or
  ``version``, made of field names only) repeat the first, else the file mixes two formats;
* whether any whitespace other than one space separates fields (two spaces, a tab, a space
  at either end of a line).

A file that fails is skipped with one warning naming it and why. A file with repeated headers or
loose whitespace is rewritten (:func:`normalise`, in Python, line by line: these are rare) into a
scratch copy with one space between fields and only its first header line, which DuckDB then
reads like any other file; its malformed records are still counted by DuckDB's rejects.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from flowwatch.records import FIELDS, MAX_LINE_BYTES, FormatError, RecordFormat

CHUNK = 4 << 20
_NAMES = frozenset(FIELDS)
_NAME = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class TextCheck:
    """What the check found in one text file."""

    path: Path
    fields: tuple[str, ...] | None = None  #: the fields of its header line; None: no header line
    problem: str | None = None  #: why it cannot be read (the file is skipped)
    lines: int = 0  #: lines seen (all of them, or those before the problem's block)
    headers: int = 0  #: header lines after the first one (concatenated objects)
    loose: bool = False  #: whitespace other than one space between fields somewhere
    empty: bool = False

    @property
    def records(self) -> int:
        """Lines that are not header lines (records, well-formed or not)."""
        return max(0, self.lines - self.headers - (self.fields is not None))

    @property
    def needs_rewrite(self) -> bool:
        return self.problem is None and (self.headers > 0 or self.loose)


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, inflated when it is gzip (ISA-L when installed, else zlib)."""
    if not path.name.endswith(".gz"):
        return open(path, "rb")
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps working without it
        return cast(IO[bytes], gzip.open(path, "rb"))
    return cast(IO[bytes], igzip.open(path, "rb"))


def inflated(path: Path) -> Iterator[bytes]:
    """The file's bytes in blocks, inflated when it is gzip: every member, each CRC checked;
    EOFError when the file ends inside one."""
    with open_binary(path) as handle:
        while block := handle.read(CHUNK):
            yield block


def _inflate_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError, zlib.error]
    with contextlib.suppress(ImportError):
        from isal import isal_zlib

        error = getattr(isal_zlib, "error", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    return tuple(errors)


def _why(exc: BaseException, gz: bool) -> str:
    if isinstance(exc, EOFError):
        return "cannot read it: truncated gzip (the file ends inside a compressed member)"
    if gz and not isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return f"cannot read it: not valid gzip ({exc})"
    return f"cannot read it ({exc})"


class _Scan:
    """The state of one file's check, fed with line-aligned blocks of bytes."""

    def __init__(self, path: Path, default: tuple[str, ...], limit: int) -> None:
        self.path = path
        self.default = default
        self.limit = limit
        self.first = True
        self.fields: tuple[str, ...] | None = None
        self.lines = 0  # newlines seen so far (line numbers in messages)
        self.crlf = 0
        self.headers = 0
        self.loose = False
        self.needles: tuple[bytes, ...] = (b"\nversion ",)

    def feed(self, body: bytes) -> str | None:
        """One block ending in a newline: the problem found in it, if any.

        Only C-speed byte operations over the whole block: ``in`` of one byte (memchr) where a
        presence is enough, ``count`` where a number is needed; the slower searches of two-byte
        patterns that start with a space run only when the counts say the block needs them.
        """
        start = 0
        if self.first:
            self.first = False
            problem = self._first_line(body)
            if problem:
                return problem
            start = body.index(b"\n") + 1
        problem = (self._encoding(body) or self._line_ends(body) or self._long_line(body)
                   or self._header_lines(body, start))
        if problem:
            return problem
        newlines = body.count(b"\n")
        if not self.loose:
            self.loose = self._loose(body, newlines)
        self.lines += newlines
        return None

    def _loose(self, body: bytes, lines: int) -> bool:
        """Whether any line has whitespace other than one space between fields."""
        if b"\t" in body or body[:1] == b" ":
            return True
        if body.count(b" ") == lines * (len(self.fields or self.default) - 1):
            return False  # the spaces of well-formed lines (and header lines): none doubled, none at an end
        return b"  " in body or b" \n" in body or b"\n " in body or b" \r\n" in body

    def _first_line(self, body: bytes) -> str | None:
        line = body[: body.index(b"\n")]
        if len(line.rstrip(b"\r")) > self.limit:
            return _too_long(1)
        tokens = line.decode("utf-8", "replace").split()
        if not tokens or tokens[0] not in _NAMES:
            return None  # a record: the file has no header line, it is read with the configured format
        unknown = [t for t in tokens if t not in _NAMES]
        if unknown and all(_NAME.fullmatch(t) for t in tokens):
            return f"its header line names '{unknown[0]}', which is not a documented flow-log field"
        if unknown:
            return None
        try:
            self.fields = RecordFormat.parse(tokens).fields
        except FormatError as exc:
            return f"its header line is not a flow-log format ({exc})"
        self.needles = tuple({b"\n" + tokens[0].encode() + b" ", b"\nversion "})
        return None

    def _encoding(self, body: bytes) -> str | None:
        if body.isascii():
            return None
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"line {self._line_at(body, exc.start)} is not UTF-8 text (byte 0x{body[exc.start]:02x})"
        return None

    def _line_ends(self, body: bytes) -> str | None:
        if b"\r" not in body and not self.crlf:
            return None
        cr = body.count(b"\r")
        crlf = body.count(b"\r\n")
        if crlf != cr:
            at = next(i for i in _finds(body, b"\r") if body[i + 1: i + 2] != b"\n")
            return f"line {self._line_at(body, at)} holds a carriage return inside it"
        self.crlf += crlf
        lf = self.lines + body.count(b"\n")
        if self.crlf != lf:
            return f"mixed line endings ({self.crlf} of its first {lf} lines end in CRLF, the others in LF)"
        return None

    def _line_at(self, body: bytes, at: int) -> int:
        """The file's line number of offset ``at`` of ``body``."""
        return self.lines + body.count(b"\n", 0, at) + 1

    def _long_line(self, body: bytes) -> str | None:
        half = max(1, self.limit // 2)  # every block of `half` bytes holds a newline: no line reaches 2 * half
        for i in range(0, len(body), half):
            if body.find(b"\n", i, i + half) >= 0:
                continue
            begin = body.rfind(b"\n", 0, i) + 1
            end = body.find(b"\n", i)
            if len(body[begin:end].rstrip(b"\r")) > self.limit:
                return _too_long(self._line_at(body, begin))
        return None

    def _header_lines(self, body: bytes, start: int) -> str | None:
        for needle in self.needles:
            if needle[1:2] not in body:  # memchr: most records hold no letter a header starts with
                continue
            at = body.find(needle, max(0, start - 1))
            while at >= 0:
                end = body.find(b"\n", at + 1)
                tokens = body[at + 1: end].decode("utf-8", "replace").split()
                if all(t in _NAMES for t in tokens):
                    if tuple(tokens) != (self.fields or self.default):
                        return (f"line {self._line_at(body, at + 1)} is the header line of another format "
                                "(objects of two formats concatenated)")
                    self.headers += 1
                at = body.find(needle, end)
        return None


def _finds(data: bytes, sub: bytes) -> Iterator[int]:
    at = data.find(sub)
    while at >= 0:
        yield at
        at = data.find(sub, at + 1)


def _too_long(line: int) -> str:
    return f"line {line} is longer than {MAX_LINE_BYTES // 1024} KiB (flow-log records are under 1 KB)"


def check_text(path: Path, default: tuple[str, ...], *, limit: int = MAX_LINE_BYTES) -> TextCheck:
    """Inflate and look at the whole file once (see the module doc); ``default``: the configured
    format's fields, which a file without a header line is read with."""
    scan = _Scan(path, default, limit)
    gz = path.name.endswith(".gz")
    problem: str | None = None
    try:
        tail = b""
        for chunk in inflated(path):
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data
                if len(tail) > limit + 2:
                    problem = _too_long(scan.lines + 1)
                    break
                continue
            tail = data[cut:]
            problem = scan.feed(data[:cut])
            if problem:
                break
        if problem is None and tail:
            problem = scan.feed(tail + b"\n")
    except _inflate_errors() as exc:
        problem = _why(exc, gz)
    if problem is None and scan.first:
        return TextCheck(path, empty=True)
    return TextCheck(path, scan.fields, problem, scan.lines, scan.headers, scan.loose)


def normalise(check: TextCheck, target: Path) -> None:
    """Rewrite the file: one space between fields, LF line ends, its first header line only."""
    header = [f.encode() for f in check.fields] if check.fields else None
    first = True
    with open_binary(check.path) as source, open(target, "wb") as out:
        for line in source:
            parts = line.split()
            if not parts:
                continue
            if parts == header and not first:
                continue
            first = False
            out.write(b" ".join(parts) + b"\n")
