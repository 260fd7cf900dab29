"""Files and directories flowwatch creates are the user's alone: directories 0700, files 0600, whatever the
umask (the query cache holds copies of flow logs; the local AWS's state dir its log and pid).

Modes are set at creation (``os.open``/``os.mkdir`` with the mode) and again with ``chmod``, because the
umask only ever removes bits and a file or directory made by an earlier version may be wider. A file some
library creates (a download, DuckDB's Parquet copy) is made private by ``make_private`` right after; it
sits in a private directory meanwhile. No heavy imports (the local server and the query engine use it).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600

_FLAGS = {"w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND}


def private_dir(path: str | os.PathLike[str], *, within: str | os.PathLike[str] | None = None) -> Path:
    """``mkdir -p path``, every level it makes 0700, and ``path`` itself made 0700 if it existed. ``within``
    (an ancestor of ``path``, flowwatch's own root): every level from it down to ``path`` is made 0700 too."""
    path = Path(path)
    missing = []
    level = path
    while not level.exists() and level != level.parent:
        missing.append(level)
        level = level.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):     # made meanwhile by another flowwatch: tightened below
            os.mkdir(directory, DIR_MODE)
    tighten = [path, *missing]
    if within is not None:
        root = Path(within)
        tighten += [p for p in (path, *path.parents) if p == root or root in p.parents]
    for directory in dict.fromkeys(tighten):
        _chmod(directory, DIR_MODE)
    return path


def open_private(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing ("w", "a", "wb", "ab"), the file 0600 (also one that existed)."""
    fd = os.open(path, _FLAGS[mode.replace("b", "")], FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_private_text(path: str | os.PathLike[str], text: str) -> None:
    with open_private(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def make_private(path: str | os.PathLike[str]) -> None:
    """A file another library created: 0600."""
    _chmod(Path(path), FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    with contextlib.suppress(PermissionError):     # not ours (a shared parent): leave it, ours below stay private
        os.chmod(path, mode)
