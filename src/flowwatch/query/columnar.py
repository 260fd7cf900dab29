"""The first query's one pass over a text file: inflate once, check, and write its columnar (Parquet) copy.

The local engine keeps a Parquet copy of every text file in the cache (on by default; a repeat
query reads only those). Made by DuckDB (``COPY (read_csv ...) TO parquet``), a copy costs about
0.75 CPU-seconds per file of 250k records, 10x the file's inflate, and the file is inflated
twice (once by the check of flowwatch.query.reader, once by DuckDB). Here, in the check's worker
process, the file is inflated once with ISA-L into memory, checked with the reader's own byte
scan (:class:`flowwatch.query.reader._Scan`), and when the check is clean the same bytes are
parsed by polars (typed columns) and written as the Parquet copy: about 0.31 CPU-seconds per file
(inflate 0.04, check 0.05, parse 0.13, write 0.09), 2.4x less than DuckDB's conversion.

A file takes this path only when polars reads it exactly as DuckDB's ``read_csv`` + TRY_CAST
would, else DuckDB converts it as before (same answer, slower): polars is installed; the file
is clean for the check and needs no rewrite; it has LF line ends; every line has exactly the
format's number of fields (the spaces add up and polars finds no longer line), so no line is
malformed; and in every number column each non-``-`` value is a plain integer of the column's
type (a value polars' cast leaves NULL while it was not ``-`` sends the file to DuckDB).

Measured (2 cores, top-talkers, whole command; see benchmarks/bench_query.py) - DuckDB's
conversion per file, 8 files: from gzip, snappy 3.13 s; from inflated text in /dev/shm, zstd
3.06 s; one COPY with PARTITION_BY file: 5.7-9.9 s. pyarrow.csv + pyarrow.parquet: 0.20 + 0.18 s
a file (1 thread), slower than polars' 0.13 + 0.09 s. A/B, 2M records, first query (cache empty),
load average 6-7 on the 2 cores: this pass 10.0-10.3 s wall, 4.4-4.5 CPU-s; DuckDB's conversion
16.2-17.3 s, 6.8-7.0 CPU-s. Repeat (columnar copies, analysis remembered, no sqlglot): 2M 0.42 s
quiet (was 1.26 s), 0.58-0.78 CPU-s under that load. Unsorted copies (this pass) make a 10M
top-talkers repeat's DuckDB part ~0.3 s slower than DuckDB's address-sorted ones (sorting in
polars: +0.18 s a file, not taken).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flowwatch.records import FIELDS, MAX_LINE_BYTES

if TYPE_CHECKING:
    from flowwatch.query.reader import TextCheck, _Scan

_INT_TYPES = {"bigint": "Int64", "int": "Int32"}
#: The most text one file is inflated to in memory (AWS writes files of at most about 150 MB of text).
MAX_TEXT_BYTES = 256 << 20


@dataclass(frozen=True)
class Converted:
    """What one worker did with one file: its check, and whether it wrote the Parquet copy."""

    check: "TextCheck"
    wrote: bool = False
    why_not: str | None = None #: why the copy is left to DuckDB (for -vv)


def available() -> bool:
    """Whether polars can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("polars") is not None


def check_and_convert(path: Path, default: tuple[str, ...], target: Path | None) -> Converted:
    """Check ``path`` (as flowwatch.query.reader.check_text does) from one in-memory inflate, and
    when ``target`` is given and the file qualifies (module doc), write its Parquet copy there
    (through ``target.part``; the caller stamps it)."""
    from flowwatch.query.reader import TextCheck, _inflate_errors, _Scan, _why, check_text

    gz = path.name.endswith(".gz")
    try:
        data = _inflate_all(path, MAX_TEXT_BYTES) if gz else _read_at_most(path, MAX_TEXT_BYTES)
    except _inflate_errors() as exc:
        return Converted(TextCheck(path, problem=_why(exc, gz)))
    if data is None:  # far larger than AWS's files: the streaming check, and DuckDB's conversion
        return Converted(check_text(path, default), why_not="larger than the in-memory pass takes")
    if not data.endswith(b"\n") and data:
        data += b"\n"
    if len(data) > 0 and b"\n" not in data[: MAX_LINE_BYTES + 2]:
        return Converted(check_text(path, default))   # one long first line: the streaming check words it
    scan = _Scan(path, default, MAX_LINE_BYTES)
    problem = _feed(scan, data)
    if problem is None and scan.first:
        return Converted(TextCheck(path, empty=True))
    check = TextCheck(path, scan.fields, problem, scan.lines, scan.headers, scan.loose)
    if target is None or problem is not None or check.needs_rewrite:
        return Converted(check)
    fields = scan.fields or default
    if scan.crlf:
        return Converted(check, why_not="CRLF line ends")
    if data.count(b" ") != scan.lines * (len(fields) - 1):
        return Converted(check, why_not="a line with another number of fields")
    if not available():
        return Converted(check, why_not="polars is not installed")
    why_not = _write(data, fields, header=scan.fields is not None, target=target)
    return Converted(check, wrote=why_not is None, why_not=why_not)


def _feed(scan: "_Scan", data: bytes) -> str | None:
    """The check's blocks as check_text feeds them (line-aligned, about CHUNK bytes: a problem's line
    number and the records counted before it come out the same)."""
    from flowwatch.query.reader import CHUNK

    view = memoryview(data)
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + CHUNK) + 1
        if end <= start:
            end = data.find(b"\n", start + CHUNK) + 1 or len(data)
        problem = scan.feed(bytes(view[start:end]) if (start, end) != (0, len(data)) else data)
        if problem:
            return problem
        start = end
    return None


def _inflate_all(path: Path, limit: int) -> bytes | None:
    """Every gzip member of the file, inflated (CRCs checked); EOFError when it ends inside one;
    None when it inflates to more than ``limit`` bytes (a gzip bomb is never held in memory)."""
    try:
        from isal import isal_zlib as zlib_impl
    except ImportError:  # pragma: no cover
        import zlib as zlib_impl  # type: ignore[no-redef]
    compressed = path.read_bytes()
    parts = []
    size = 0
    while compressed:
        member = zlib_impl.decompressobj(wbits=31)
        part = member.decompress(compressed, limit - size + 1)
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
        if not member.eof:
            raise EOFError("truncated gzip")
        compressed = member.unused_data
    return b"".join(parts)


def _read_at_most(path: Path, limit: int) -> bytes | None:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _write(data: bytes, fields: tuple[str, ...], *, header: bool, target: Path) -> str | None:
    """Parse ``data`` with polars and write the Parquet copy; why not, when polars would read it otherwise."""
    os.environ.setdefault("POLARS_MAX_THREADS", "1")   # one worker process per core already
    import polars as pl

    columns = [FIELDS[name].column for name in fields]
    try:   # every column as text: '-' stays '-' in string columns, as AWS's table reads it
        frame = pl.read_csv(data, separator=" ", has_header=header, new_columns=columns,
                            schema={c: pl.String for c in columns}, quote_char=None)
    except Exception as exc:  # noqa: BLE001 - polars' errors: DuckDB reads the file instead
        return f"polars cannot read it ({type(exc).__name__})"
    if frame.height != data.count(b"\n") - header:
        return "polars read another number of lines"
    numbers = [column for name, column in zip(fields, columns, strict=True)
               if _INT_TYPES.get(FIELDS[name].athena_type.lower()) is not None]
    dashed = frame.with_columns([pl.when(pl.col(c) == "-").then(None).otherwise(pl.col(c)).alias(c)
                                 for c in numbers])      # '-' (missing) is NULL in a number column only
    typed = dashed.with_columns([pl.col(c).cast(getattr(pl, _INT_TYPES[FIELDS[n].athena_type.lower()]),
                                                strict=False)
                                 for n, c in zip(fields, columns, strict=True) if c in numbers])
    for name in numbers:
        if typed[name].null_count() != dashed[name].null_count():
            return f"a value of {name} is not a plain integer"
    partial = target.with_name(target.name + ".part")
    typed.write_parquet(partial, compression="zstd", compression_level=1, statistics=True)
    return None
