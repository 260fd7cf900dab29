"""What sqlglot says about a local query, remembered on disk, so that a repeat query runs without sqlglot.

Importing sqlglot costs about 0.37 s of start-up, more than DuckDB answers a repeat query from the
columnar cache in. Every sqlglot result the local engine needs for one request is a pure function
of the request and of the code: the Athena SQL composed from the preset (or the user's statement,
checked), the window and the limit; that statement named like Athena's result columns; its DuckDB
transpilation; whether it reads ``dt`` or ``"$path"``; which result columns hold record times. So
they are computed once (:func:`analyse`) and kept as one small JSON file under the cache root
(``analysis/<key>.json``), keyed by a hash of

* the request as it reaches the engine: preset or SQL text, address, the window's bounds and
  partitions (already resolved: ``--since 1h`` gives new bounds, hence a new key, at every run),
  the limit, the table's names, the record format's fields and the ``dt`` layout;
* the code that computes them: the versions of flowwatch and sqlglot (read from sqlglot's
  ``_version.py`` on ``sys.path``: ``importlib.metadata`` alone costs 75 ms) and the size and
  modification time of flowwatch's own modules that compose and transpile SQL (so an edited
  preset in a development tree is never answered from an old entry).

Only statements that passed every check are stored: an error is raised again on every run. An
unreadable or foreign entry is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Bumped when the stored fields or their meaning change.
FORMAT = 1
#: flowwatch's modules whose code decides the analysis (their stat is part of the key).
_MODULES = ("query/__init__.py", "query/presets.py", "query/statement.py", "query/local_engine.py",
            "query/analysis_cache.py", "records.py", "timewindow.py", "s3layout.py")


@dataclass(frozen=True)
class Analysis:
    """sqlglot's results for one local query."""

    athena_sql: str                  #: the statement as composed (what Athena would run)
    local_sql: str                   #: the same, each unnamed result column named as Athena names it
    duckdb_sql: str                  #: ``local_sql`` transpiled to DuckDB
    reads_partition: bool            #: it reads ``dt`` (by name or through ``*``)
    reads_path: bool                 #: it reads ``"$path"``
    time_columns: tuple[str, ...]    #: result columns that hold record times


def analyse(athena_sql: str) -> Analysis:
    """Compute the analysis of a composed statement (imports sqlglot)."""
    from flowwatch.query import local_engine
    from flowwatch.query.statement import name_like_athena, time_columns

    local_sql = name_like_athena(athena_sql)
    return Analysis(athena_sql=athena_sql, local_sql=local_sql, duckdb_sql=local_engine.to_duckdb(local_sql),
                    reads_partition=local_engine.reads_partition(local_sql),
                    reads_path=local_engine.reads_path(local_sql),
                    time_columns=tuple(sorted(time_columns(local_sql))))


def key(request: dict[str, Any]) -> str:
    """The entry's name for ``request`` (JSON-able) computed by this very code."""
    payload = json.dumps({"format": FORMAT, "request": request, "code": _code_stamp()}, sort_keys=True,
                         default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def load(root: Path, name: str) -> Analysis | None:
    try:
        data = json.loads((root / "analysis" / f"{name}.json").read_text())
        data["time_columns"] = tuple(data["time_columns"])
        return Analysis(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def store(root: Path, name: str, analysis: Analysis) -> None:
    """Write the entry (atomically, private); a cache that cannot be written is only slower."""
    from flowwatch.private import private_dir, write_private_text

    folder = root / "analysis"
    with contextlib.suppress(OSError):
        private_dir(folder, within=root)
        partial = folder / f"{name}.json.{os.getpid()}.part"
        write_private_text(partial, json.dumps(asdict(analysis)))
        partial.replace(folder / f"{name}.json")


def _code_stamp() -> list[Any]:
    import flowwatch

    package = Path(flowwatch.__file__).parent
    stamp: list[Any] = [flowwatch.__version__, _sqlglot_version()]
    for module in _MODULES:
        try:
            st = (package / module).stat()
            stamp.append([module, st.st_size, st.st_mtime_ns])
        except OSError:
            stamp.append([module, None])
    return stamp


def _sqlglot_version() -> str | None:
    """sqlglot's version as its ``_version.py`` says, found on ``sys.path`` without importing it."""
    for entry in sys.path:
        candidate = Path(entry or ".") / "sqlglot" / "_version.py"
        try:
            text = candidate.read_text()
        except OSError:
            continue
        return hashlib.sha256(text.encode()).hexdigest()[:16]
    return None
