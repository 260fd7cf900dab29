"""The local engine of `flowwatch query`: DuckDB over flow-log files, no Athena.

Files come from S3 (the objects of the time window's partitions, downloaded once into a cache
and reused while their ETag is unchanged) or from disk (``--source PATH``: an ``AWSLogs/...``
tree or a flat folder of ``.log.gz``/``.parquet`` files). DuckDB reads them in place: gzip text
with ``read_csv`` (header line skipped, space-delimited, every field read as text and typed as the
Glue column with TRY_CAST, so ``-`` stays the string ``'-'`` in a string column and is NULL in a
number column, as on Athena's table; lines with the wrong number of fields skipped and counted
through ``store_rejects``) and Parquet with ``read_parquet``. A view named like the Glue table,
whose partition columns ``aws_account_id``, ``aws_region`` and ``dt`` come from each file's key path
(``AWSLogs/<account>/vpcflowlogs/<region>/<date path>/``, plain or Hive-style) or its AWS file name
(``<account>_vpcflowlogs_<region>_..._<time>Z_...``), lets the preset's Athena SQL, transpiled to
DuckDB by sqlglot, run unchanged: files of several accounts and regions are one table. With ``--parquet-cache``
each text file is also converted once to Parquet in the cache (sorted by address), and later
queries read that copy.

Only what the DuckDB wheel ships is used (no extension downloads); 2 threads and a memory
limit keep the whole process under 256 MiB.

The user's SQL runs on a locked connection: once the view exists, DuckDB may read only the cache
and the ``--source`` paths (``allowed_directories``), nothing else of the file system or the network
(``enable_external_access = false``), and no setting can change again (``lock_configuration``).
Before DuckDB reads a text file, flowwatch.query.reader checks it (one ISA-L inflate, byte
searches; the result remembered in the cache while the file is unchanged), because DuckDB fails
the whole scan on one bad file: a file cut short, not UTF-8, with mixed line endings, a line longer
than ``records.MAX_LINE_BYTES`` or a second format's header is skipped with one warning naming it
and why, and the load says how many files (and records, as far as read) it left out. A file with
repeated header lines (objects concatenated) or loose whitespace is read through a rewritten
scratch copy. ``"$path"`` is Athena's pseudo-column: the object's s3:// URI, or the file's path
for ``--source``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowwatch.console import plural
from flowwatch.errors import AwsError, FlowwatchError, SqlError, UsageError
from flowwatch.private import make_private, private_dir, write_private_text
from flowwatch.records import ACCOUNT_KEY, FIELDS, MAX_LINE_BYTES, PARTITION_KEY, PARTITION_KEYS, REGION_KEY, RecordFormat

if TYPE_CHECKING:
    from flowwatch.query.reader import TextCheck
    from flowwatch.s3layout import S3Layout

THREADS = 2
MEMORY_LIMIT = "128MB"  # DuckDB's buffer pool; the whole process then peaks around 235 MiB
# read_csv's buffer (default 32 MiB, several in flight per thread): smaller buffers leave the
# memory limit to the aggregates and sorts, which then spill instead of running out of memory.
CSV_BUFFER = 4 * 1024 * 1024
_FILES_TABLE = "__flowwatch_files"
#: Athena's pseudo-column: the S3 URI of the object a row comes from.
PATH_COLUMN = "$path"
_TEXT_SUFFIXES = (".gz", ".log")
_PARQUET_SUFFIX = ".parquet"
_NAME_STAMP = re.compile(r"_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_")
_NAME_SOURCE = re.compile(r"^(\d{12})_vpcflowlogs_([a-z0-9-]+)_")
_PATH_SOURCE = re.compile(r"(?:^|/)AWSLogs/(?:(\d{12})/vpcflowlogs/([a-z0-9-]+)"
                          r"|aws-account-id=(\d{12})/aws-service=vpcflowlogs/aws-region=([a-z0-9-]+))/")
_DATE_PATH = re.compile(r"(?:^|/)(?:year=)?(\d{4})/(?:month=)?(\d{2})/(?:day=)?(\d{2})(?:/(?:hour=)?(\d{2}))?/[^/]*$")
_CHUNK = 1 << 20
# Parquet copies are sorted by address: aggregates by address run several times faster on them
# (and traffic-from/-to skip row groups through the min/max statistics).
CACHE_ORDER = ("srcaddr", "dstaddr", "start")


@dataclass(frozen=True)
class SourceFile:
    """One flow-log file as DuckDB will read it, with the partition values Athena would give it."""

    path: Path
    dt: str | None
    parquet: bool
    uri: str | None = None  #: Athena's ``"$path"``: the object's s3:// URI (None: the file's path)
    account: str | None = None  #: ``aws_account_id``
    region: str | None = None   #: ``aws_region``

    @property
    def where(self) -> str:
        return self.uri or str(self.path)


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/flowwatch``, else ``~/.cache/flowwatch``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowwatch"


def to_duckdb(athena_sql: str) -> str:
    """The same statement in DuckDB's dialect (sqlglot)."""
    import sqlglot

    from flowwatch.query.presets import nesting_guard

    with nesting_guard():
        return sqlglot.transpile(athena_sql, read="athena", write="duckdb")[0]


def reads_partition(athena_sql: str) -> bool:
    """Whether the statement reads a partition column (``aws_account_id``, ``aws_region``, ``dt``: by name,
    or through a ``*``)."""
    import sqlglot
    from sqlglot import exp

    from flowwatch.query.presets import nesting_guard

    with nesting_guard():
        tree = sqlglot.parse_one(athena_sql, read="athena")
    stars = (s for s in tree.find_all(exp.Star) if isinstance(s.parent, (exp.Select, exp.Column)))  # not count(*)
    return any(c.name in PARTITION_KEYS for c in tree.find_all(exp.Column)) or any(stars)


def reads_path(athena_sql: str) -> bool:
    """Whether the statement reads Athena's ``"$path"`` pseudo-column (never part of ``*``)."""
    import sqlglot
    from sqlglot import exp

    from flowwatch.query.presets import nesting_guard

    with nesting_guard():
        tree = sqlglot.parse_one(athena_sql, read="athena")
    return any(c.name == PATH_COLUMN for c in tree.find_all(exp.Column))


# ---- which files -------------------------------------------------------------------------------

def is_flow_file(name: str) -> bool:
    return name.endswith(_TEXT_SUFFIXES + (_PARQUET_SUFFIX,)) and not name.startswith(".")


def discover(root: Path, layout: "S3Layout") -> list[SourceFile]:
    """The flow-log files under ``root`` (or ``root`` itself), each with its ``dt`` in ``layout``'s format
    and its account and region (see :func:`local_source`)."""
    if root.is_file():
        paths = [root]
    else:
        paths = sorted(p for p in root.rglob("*") if p.is_file() and is_flow_file(p.name))
    files = []
    for p in paths:
        account, region = local_source(p.as_posix())
        files.append(SourceFile(p, local_dt(p.as_posix(), layout), p.name.endswith(_PARQUET_SUFFIX),
                                account=account, region=region))
    return files


def local_source(path: str) -> tuple[str | None, str | None]:
    """``aws_account_id`` and ``aws_region`` of a file on disk: from its folders
    (``AWSLogs/<account>/vpcflowlogs/<region>/`` or ``aws-account-id=.../aws-service=vpcflowlogs/aws-region=.../``),
    else from its AWS file name (``<account>_vpcflowlogs_<region>_...``); None when neither says."""
    from flowwatch.s3layout import is_region

    found = [m for m in _PATH_SOURCE.finditer(path)]
    if found:
        groups = found[-1].groups()
        account, region = groups[0] or groups[2], groups[1] or groups[3]
        if is_region(region):
            return account, region
    match = _NAME_SOURCE.match(path.rsplit("/", 1)[-1])
    if match is not None and is_region(match.group(2)):
        return match.group(1), match.group(2)
    return None, None


def local_dt(path: str, layout: "S3Layout") -> str | None:
    """``dt`` of a file on disk: from its AWS file name's time, else from its date folders."""
    match = _NAME_STAMP.search(path.rsplit("/", 1)[-1]) or _DATE_PATH.search(path)
    if match is None:
        return None
    parts = [int(g) for g in match.groups() if g is not None]
    try:
        hour = parts[3] if len(parts) >= 4 else 0
        when = datetime(parts[0], parts[1], parts[2], hour, tzinfo=timezone.utc)
    except ValueError:
        return None
    return layout.dt_value(when)


def in_partitions(files: Iterable[SourceFile], partitions: tuple[str, str] | None) -> list[SourceFile]:
    """Partition pruning: the files whose ``dt`` is in ``[lo, hi]`` (files without a ``dt`` stay)."""
    if partitions is None:
        return list(files)
    lo, hi = partitions
    return [f for f in files if f.dt is None or lo <= f.dt <= hi]


# ---- S3 and the download cache -----------------------------------------------------------------

class FileCache:
    """Downloaded objects and Parquet copies under one directory, each with a validity stamp."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def s3_path(self, bucket: str, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if any(p in (".", "..") for p in parts) or not parts:
            raise FlowwatchError(f"query: refusing S3 key {key!r} (not a plain path)")
        return self.root.joinpath("s3", bucket, *parts)

    def download(self, s3: Any, bucket: str, obj: dict[str, Any], owner: str | None = None) -> tuple[Path, bool]:
        """The local copy of ``obj`` (a ListObjectsV2 entry) and whether it was downloaded now
        (from a bucket of account ``owner``: ExpectedBucketOwner)."""
        from botocore.exceptions import ClientError

        target = self.s3_path(bucket, obj["Key"])
        etag = str(obj.get("ETag", "")).strip('"')
        if target.is_file() and _read(_stamp(target)) == etag:
            return target, False
        private_dir(target.parent, within=self.root)
        partial = target.with_name(target.name + ".part")
        try:
            s3.download_file(bucket, obj["Key"], str(partial),
                             ExtraArgs={"ExpectedBucketOwner": owner} if owner else None)
        except ClientError as exc:
            raise AwsError.from_client_error(exc, step="query", operation="GetObject") from None
        make_private(partial)
        partial.replace(target)
        write_private_text(_stamp(target), etag)
        return target, True

    def parquet_path(self, source: Path) -> Path:
        digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:24]
        return self.root / "parquet" / f"{digest}.parquet"

    def parquet_copy(self, source: Path) -> tuple[Path, int] | None:
        """The fresh Parquet copy of ``source`` and the malformed lines it dropped, if any."""
        target = self.parquet_path(source)
        meta = _read(_stamp(target))
        if not target.is_file() or meta is None:
            return None
        data = json.loads(meta)
        return (target, int(data["malformed"])) if data.get("source") == _file_stamp(source) else None

    def parquet_done(self, source: Path, target: Path, malformed: int) -> None:
        write_private_text(_stamp(target), json.dumps({"source": _file_stamp(source), "malformed": malformed}))

    # -- what the check of a text file found (flowwatch.query.reader), while the file is unchanged --
    def check_path(self, source: Path) -> Path:
        digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:24]
        return self.root / "checked" / f"{digest}.json"

    def known_check(self, source: Path) -> dict[str, Any] | None:
        text = _read(self.check_path(source))
        if text is None:
            return None
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(text)
            if isinstance(data, dict) and data.get("source") == _file_stamp(source):
                return data
        return None

    def remember_check(self, source: Path, found: dict[str, Any]) -> None:
        target = self.check_path(source)
        private_dir(target.parent, within=self.root)
        write_private_text(target, json.dumps({**found, "source": _file_stamp(source)}))

    # -- removal (`down`, `flowwatch cache clear`) ---------------------------------------------------
    # Only the entries this class and LocalEngine write: the cache root itself may hold anything else.
    ENTRIES = ("s3", "parquet", "checked", "duckdb-tmp")

    def usage(self) -> tuple[int, int]:
        """(files, bytes) of what flowwatch keeps here: downloads, stamps, Parquet copies, spill."""
        files = size = 0
        for entry in self.ENTRIES:
            for path in _files_under(self.root / entry):
                files += 1
                size += path.lstat().st_size
        return files, size

    def forget_bucket(self, bucket: str) -> int:
        """Remove the downloads of ``bucket`` and their Parquet copies; the bytes freed (0: none cached)."""
        if not bucket or "/" in bucket or bucket in (".", ".."):
            raise FlowwatchError(f"cache: refusing bucket name {bucket!r} (not a plain name)")
        folder = self.root / "s3" / bucket
        freed = 0
        for path in _files_under(folder):
            if not path.name.endswith((".stamp", ".part")):
                copy = self.parquet_path(path)
                freed += _remove(copy) + _remove(_stamp(copy)) + _remove(self.check_path(path))
        freed += sum(p.lstat().st_size for p in _files_under(folder))
        _remove_tree(folder)
        return freed

    def clear(self) -> int:
        """Remove everything flowwatch cached here; the bytes freed. The root goes too if left empty."""
        _, size = self.usage()
        for entry in self.ENTRIES:
            _remove_tree(self.root / entry)
        with contextlib.suppress(OSError):
            self.root.rmdir()
        return size


def list_objects(s3: Any, bucket: str, prefixes: list[str], owner: str | None = None) -> list[dict[str, Any]]:
    """Every flow-log object under the prefixes (ListObjectsV2, paginated; ExpectedBucketOwner ``owner``)."""
    from botocore.exceptions import ClientError

    objects: list[dict[str, Any]] = []
    paginator = s3.get_paginator("list_objects_v2")
    try:
        for prefix in prefixes:
            expected = {"ExpectedBucketOwner": owner} if owner else {}
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix, **expected):
                objects += [o for o in page.get("Contents", []) if is_flow_file(o["Key"].rsplit("/", 1)[-1])]
    except ClientError as exc:
        err = AwsError.from_client_error(exc, step="query", operation="ListObjectsV2")
        if err.code == "NoSuchBucket":
            err.hint = "the stack's bucket does not exist: run `flowwatch up` first"
        raise err from None
    return objects


def check_stack_bucket(s3: Any, bucket: str, account: str, stack: str) -> None:
    """Before reading anything: the bucket is the caller account's (ExpectedBucketOwner) and carries
    the stack's tag, as `up` checks before adopting it; OwnershipError otherwise (exit 1)."""
    from flowwatch.errors import OwnershipError
    from flowwatch.naming import STACK_TAG
    from flowwatch.steps.bucket import owned

    ours = owned(s3, bucket, account, stack)
    if ours is None:
        raise AwsError(f"query: bucket {bucket} does not exist", code="NoSuchBucket",
                       hint="the stack's bucket does not exist: run `flowwatch up` first")
    if not ours:
        raise OwnershipError(f"query: bucket {bucket} is not tagged {STACK_TAG}={stack}: it is not this stack's "
                             "bucket, so its objects are not read",
                             hint="bucket names are global: set names.bucket to a name of your own and run "
                                  "`flowwatch up`")


def fetch_s3(s3: Any, bucket: str, layout: "S3Layout", prefixes: list[str], cache: FileCache,
             out: Any, owner: str | None = None) -> list[SourceFile]:
    """List the objects of the window, download the ones not cached, and describe them for DuckDB
    (every call with ExpectedBucketOwner ``owner``)."""
    files: list[SourceFile] = []
    fresh = 0
    objects = list_objects(s3, bucket, prefixes, owner)
    with out.working(f"Downloading {plural(len(objects), 'flow-log object')} from s3://{bucket}"):
        for obj in objects:
            path, downloaded = cache.download(s3, bucket, obj, owner)
            fresh += downloaded
            part = layout.partition_from_key(obj["Key"])
            files.append(SourceFile(path, part.dt if part else None, obj["Key"].endswith(_PARQUET_SUFFIX),
                                    uri=f"s3://{bucket}/{obj['Key']}", account=part.account if part else None,
                                    region=part.region if part else None))
    out.detail(f"s3://{bucket}: {plural(len(objects), 'object')}, {fresh} downloaded, "
               f"{len(objects) - fresh} from the cache ({cache.root})")
    return files


# ---- DuckDB --------------------------------------------------------------------------------------

class LocalEngine:
    """One DuckDB connection with a view named like the Glue table over the given files."""

    def __init__(self, fmt: RecordFormat, *, table: str, database: str, out: Any,
                 cache: FileCache | None = None, threads: int = THREADS,
                 memory_limit: str = MEMORY_LIMIT, readable: Iterable[Path] = ()) -> None:
        """``readable``: the paths the user's SQL may read besides the cache (the ``--source`` path)."""
        import duckdb

        self.format = fmt
        self.table = table
        self.database = database
        self.out = out
        self.cache = cache
        self.columns: list[str] = list(fmt.columns)
        self.threads = threads
        self.path_column = False
        self.cached_malformed = 0
        self.skipped: list[tuple[SourceFile, str, int]] = []  # (file, why, records seen in it)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._exports: list[Generator[bytes, None, None]] = []
        self.readable = [*([cache.root] if cache else []), *readable]
        self.locked = False
        spill = (cache.root if cache else Path(tempfile.gettempdir()) / "flowwatch") / "duckdb-tmp"
        private_dir(spill, within=spill.parent)  # DuckDB makes only the last level, when it first spills
        self.spill = spill
        self.con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit,
                                          "temp_directory": str(spill), "preserve_insertion_order": False,
                                          "autoinstall_known_extensions": False,
                                          "autoload_known_extensions": False})
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB's type_pushdown turns the view's TRY_CAST into a strict read_csv conversion, and
        # ignore_errors then drops the whole line instead of reading NULL (see _typed).
        self.con.execute("SET disabled_optimizers = 'type_pushdown'")

    # -- the view ----------------------------------------------------------------------------------
    def load(self, files: list[SourceFile], *, parquet_cache: bool = False, partition: bool = True,
             path: bool = False) -> None:
        """Create the table's view over ``files``; unreadable files are skipped with a warning.

        ``partition=False`` leaves the ``dt`` column out (a query that does not read it saves
        joining every row to its file); ``path=True`` adds Athena's ``"$path"``.
        """
        texts, rewritten, parquets = self._classify(files, convert=parquet_cache and self.cache is not None)
        if parquet_cache and self.cache is not None:
            texts, converted = self._to_parquet(texts)
            parquets += converted
        for key, group in rewritten.items():  # scratch copies: read as text every time
            texts.setdefault(key, []).extend(group)
        self._extend_columns(texts, parquets)
        self.con.execute(f"CREATE TEMP TABLE {_FILES_TABLE} (path VARCHAR, dt VARCHAR, uri VARCHAR, "
                         "account VARCHAR, region VARCHAR)")
        rows = [(str(f.path), f.dt, f.where, f.account, f.region)
                for f in [*(f for group in texts.values() for f in group), *parquets]]
        if rows:
            self.con.executemany(f"INSERT INTO {_FILES_TABLE} VALUES (?, ?, ?, ?, ?)", rows)
        self.path_column = path
        body = self._view_body(texts, parquets, partition or path)
        db, table = _ident(self.database), _ident(self.table)
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {db}")
        self.con.execute(f"CREATE VIEW {db}.{table} AS {body}")
        self.con.execute(f"CREATE VIEW main.{table} AS SELECT * FROM {db}.{table}")

    def _classify(self, files: list[SourceFile], *, convert: bool = False) -> tuple[dict[tuple[tuple[str, ...], bool], list[SourceFile]],
                                                          dict[tuple[tuple[str, ...], bool], list[SourceFile]],
                                                          list[SourceFile]]:
        """Text files grouped by (format in their header line, has a header), the ones rewritten
        into scratch copies grouped the same way, and the Parquet files.

        Every text file is checked first (flowwatch.query.reader, 2 threads): a file DuckDB could
        not read is skipped with one warning naming it and why, and the load says how much it left out.
        With ``convert``, a file checked now also gets its Parquet copy in the same pass where it can
        (flowwatch.query.columnar: one inflate; the others are converted by DuckDB in _to_parquet).
        """
        import time

        from flowwatch.query.reader import check_text

        texts: dict[tuple[tuple[str, ...], bool], list[SourceFile]] = {}
        rewritten: dict[tuple[tuple[str, ...], bool], list[SourceFile]] = {}
        parquets = [f for f in files if f.parquet]
        plain = [f for f in files if not f.parquet]
        started = time.perf_counter()
        known = {f.path: self._known(f) for f in plain}
        todo = [f for f in plain if known[f.path] is None]
        if convert:
            found = self._check_and_convert(todo)
        else:
            with _check_pool(self.threads, todo) as pool:
                found = dict(zip((f.path for f in todo), pool.map(check_text, [f.path for f in todo],
                                                                  [self.format.fields] * len(todo)), strict=True))
        for f in todo:
            self._remember(f, found[f.path])
        checks = [known[f.path] or found[f.path] for f in plain]
        if plain:
            self.out.detail(f"checked {plural(len(plain), 'text file')} in {time.perf_counter() - started:.2f} s")
        for f, check in zip(plain, checks, strict=True):
            if check.empty:
                continue
            if check.problem is not None:
                self.out.warn(f"skipped {f.where}: {check.problem}")
                self.skipped.append((f, check.problem, check.records))
                continue
            key = (check.fields or self.format.fields, check.fields is not None)
            if check.needs_rewrite:
                rewritten.setdefault(key, []).append(self._rewrite(f, check))
            else:
                texts.setdefault(key, []).append(f)
        if self.skipped:
            seen = sum(records for _, _, records in self.skipped)
            held = f", holding at least {plural(seen, 'record')}" if seen else ""
            self.out.warn(f"skipped {len(self.skipped)} of {plural(len(files), 'flow-log file')}{held}: "
                          f"the answer is from the other {len(files) - len(self.skipped)}")
        return texts, rewritten, parquets

    def _check_and_convert(self, todo: list[SourceFile]) -> dict[Path, "TextCheck"]:
        """Each file's check and, where flowwatch.query.columnar can, its Parquet copy (stamped here)."""
        from flowwatch.query import columnar

        cache = self.cache
        assert cache is not None
        targets: list[Path | None] = []
        for f in todo:
            stale = cache.parquet_copy(f.path) is None
            target = cache.parquet_path(f.path) if stale else None
            if target is not None:
                private_dir(target.parent, within=cache.root)
            targets.append(target)
        with _check_pool(self.threads, todo) as pool:
            done = list(pool.map(columnar.check_and_convert, [f.path for f in todo],
                                 [self.format.fields] * len(todo), targets))
        found: dict[Path, TextCheck] = {}
        wrote = 0
        for f, target, result in zip(todo, targets, done, strict=True):
            found[f.path] = result.check
            if result.wrote and target is not None:
                partial = target.with_name(target.name + ".part")
                make_private(partial)
                partial.replace(target)
                cache.parquet_done(f.path, target, 0)
                wrote += 1
            elif result.why_not:
                self.out.debug_line(f"{f.where}: Parquet copy by DuckDB ({result.why_not})")
        if wrote:
            self.out.detail(f"wrote {wrote} Parquet copies into {cache.root} while checking")
        return found

    def _known(self, f: SourceFile) -> "TextCheck | None":
        """The file's check as remembered in the cache while the file is unchanged (size, mtime)."""
        from flowwatch.query.reader import TextCheck

        known = self.cache.known_check(f.path) if self.cache is not None else None
        if known is None or known.pop("default", None) != list(self.format.fields):
            return None
        known.pop("source")
        fields = known.pop("fields")
        return TextCheck(f.path, tuple(fields) if fields is not None else None,
                         **{k: v for k, v in known.items() if k != "path"})

    def _remember(self, f: SourceFile, check: "TextCheck") -> None:
        from dataclasses import asdict

        if self.cache is None or check.problem is not None:  # a bad file is checked again: it may be fixed
            return
        found = asdict(check)
        found["path"] = str(check.path)
        found["default"] = list(self.format.fields)  # a file without a header is read with it
        self.cache.remember_check(f.path, found)

    def _rewrite(self, f: SourceFile, check: "TextCheck") -> SourceFile:
        """A scratch copy of ``f`` that DuckDB reads like the others (one space between fields,
        no repeated header line), removed with the engine."""
        from flowwatch.query.reader import normalise

        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="rewritten-", dir=self.spill.parent)
            self.readable.append(Path(self._scratch.name))
        target = Path(self._scratch.name) / f"{len(os.listdir(self._scratch.name))}.log"
        normalise(check, target)
        repeated = f"{plural(check.headers, 'repeated header line')}" if check.headers else ""
        spaced = "whitespace other than one space between fields" if check.loose else ""
        self.out.detail(f"{f.where}: read through a rewritten copy ({'; '.join(x for x in (repeated, spaced) if x)})")
        return replace(f, path=target, parquet=False, uri=f.where)

    def _to_parquet(self, texts: dict[tuple[tuple[str, ...], bool], list[SourceFile]]
                    ) -> tuple[dict[tuple[tuple[str, ...], bool], list[SourceFile]], list[SourceFile]]:
        """Each text file's Parquet copy in the cache, made now when missing or stale.

        One file at a time: each copy is sorted, and two sorts at once do not fit the memory limit.
        """
        cache = self.cache
        assert cache is not None
        jobs = [(f, fields, header) for (fields, header), group in texts.items() for f in group]
        stale = [(f, fields, header) for f, fields, header in jobs if cache.parquet_copy(f.path) is None]
        if stale:
            with self.out.working(f"Writing {len(stale)} Parquet copies into the cache"):
                for f, fields, header in stale:
                    self._convert(f.path, fields, header)
            self.out.detail(f"wrote {len(stale)} Parquet copies into {cache.root}")
        converted = []
        for f, _, _ in jobs:
            hit = cache.parquet_copy(f.path)
            if hit is None:
                raise FlowwatchError(f"query: {f.path} changed while it was being cached; run the query again")
            self.cached_malformed += hit[1]
            converted.append(replace(f, path=hit[0], parquet=True, uri=f.where))
        return {}, converted

    def _convert(self, source: Path, fields: tuple[str, ...], header: bool) -> None:
        """One gzip text file -> its Parquet copy, sorted by address (see CACHE_ORDER)."""
        assert self.cache is not None
        target = self.cache.parquet_path(source)
        private_dir(target.parent, within=self.cache.root)
        partial = target.with_name(target.name + ".part")
        select = self._csv_select([SourceFile(source, None, False)], fields, header, columns=_columns(fields),
                                  with_filename=False)
        order = ", ".join(_ident(c) for c in CACHE_ORDER if c in _columns(fields)) or "ALL"
        self._run(f"COPY ({select} ORDER BY {order}) TO {_lit(str(partial))} (FORMAT parquet, COMPRESSION zstd)")
        malformed = self.take_malformed_lines()
        make_private(partial)
        partial.replace(target)
        self.cache.parquet_done(source, target, malformed)

    def _extend_columns(self, texts: dict[tuple[tuple[str, ...], bool], list[SourceFile]],
                        parquets: list[SourceFile]) -> None:
        """The configured format's columns, then any other field the files hold (in AWS order)."""
        seen = {FIELDS[name].column for fields, _ in texts for name in fields}
        if parquets:
            seen |= set(self._parquet_schema(parquets))
        extra = [spec.column for spec in FIELDS.values() if spec.column in seen and spec.column not in self.columns]
        self.columns += extra

    def _view_body(self, texts: dict[tuple[tuple[str, ...], bool], list[SourceFile]],
                   parquets: list[SourceFile], partition: bool) -> str:
        parts = [self._csv_select(group, fields, header, with_filename=partition)
                 for (fields, header), group in texts.items()]
        if parquets:
            parts.append(self._parquet_select(parquets, with_filename=partition))
        if not parts:
            nulls = ", ".join(f"CAST(NULL AS {_duck_type(c)}) AS {_ident(c)}" for c in self.columns)
            keys = ", ".join(f"CAST(NULL AS VARCHAR) AS {key}" for key in PARTITION_KEYS)
            return f"SELECT {nulls}, {keys} WHERE false"
        union = " UNION ALL ".join(parts)
        if not partition:
            return union
        cols = ", ".join(f"r.{_ident(c)}" for c in self.columns)
        cols += f", f.account AS {ACCOUNT_KEY}, f.region AS {REGION_KEY}, f.dt AS {PARTITION_KEY}"
        if self.path_column:
            cols += f", f.uri AS {_ident(PATH_COLUMN)}"
        return (f"SELECT {cols} FROM ({union}) AS r "
                f"JOIN {_FILES_TABLE} AS f ON r.filename = f.path")

    def _csv_select(self, group: list[SourceFile], fields: tuple[str, ...], header: bool,
                    columns: list[str] | None = None, with_filename: bool = True) -> str:
        """The view's columns (or ``columns``) from text files of one format: absent ones NULL."""
        present = set(_columns(fields))
        types = "{" + ", ".join(f"{_lit(FIELDS[n].column)}: 'VARCHAR'" for n in fields) + "}"
        paths = "[" + ", ".join(_lit(str(f.path)) for f in group) + "]"
        reader = (f"read_csv({paths}, columns = {types}, delim = ' ', header = {str(header).lower()}, "
                  f"quote = '', escape = '', auto_detect = false, ignore_errors = true, "
                  f"store_rejects = true, max_line_size = {MAX_LINE_BYTES}, buffer_size = {CSV_BUFFER}, filename = {str(with_filename).lower()})")
        cols = [_typed(c) if c in present else f"CAST(NULL AS {_duck_type(c)}) AS {_ident(c)}"
                for c in (columns or self.columns)]
        return f"SELECT {', '.join(cols)}{', filename' if with_filename else ''} FROM {reader}"

    def _parquet_select(self, group: list[SourceFile], with_filename: bool = True) -> str:
        schema = self._parquet_schema(group)
        cols = []
        for column in self.columns:
            name = schema.get(column)
            source = _ident(name) if name else "NULL"
            cols.append(f"CAST({source} AS {_duck_type(column)}) AS {_ident(column)}")
        paths = "[" + ", ".join(_lit(str(f.path)) for f in group) + "]"
        reader = f"read_parquet({paths}, union_by_name = true, filename = {str(with_filename).lower()})"
        return f"SELECT {', '.join(cols)}{', filename' if with_filename else ''} FROM {reader}"

    def _parquet_schema(self, group: list[SourceFile]) -> dict[str, str]:
        """Glue column -> the name the Parquet files use for it (AWS writes ``account_id`` or ``account-id``)."""
        paths = "[" + ", ".join(_lit(str(f.path)) for f in group) + "]"
        names = [row[0] for row in self._run(f"DESCRIBE SELECT * FROM read_parquet({paths}, union_by_name = true)")
                 .fetchall()]
        return {name.replace("-", "_"): name for name in names if name.replace("-", "_") in _COLUMNS}

    # -- running -------------------------------------------------------------------------------------
    def fetch(self, athena_sql: str, max_rows: int | None = None, *,
              duckdb_sql: str | None = None) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        """Columns, up to ``max_rows`` rows, and whether more rows were left out (``duckdb_sql``: the
        statement already transpiled, e.g. remembered by flowwatch.query.analysis_cache)."""
        sql = duckdb_sql or to_duckdb(athena_sql)
        self.lock()
        cursor = self._run(sql)
        columns = [d[0] for d in cursor.description]
        if max_rows is None:
            return columns, cursor.fetchall(), False
        rows = cursor.fetchmany(max_rows + 1)
        return columns, rows[:max_rows], len(rows) > max_rows

    def export(self, athena_sql: str, fmt: str, *, duckdb_sql: str | None = None) -> Iterator[bytes]:
        """The result as JSON (a list of objects) or CSV (with a header), written by DuckDB, in chunks.

        DuckDB's COPY writes into a pipe (from a thread; DuckDB releases the GIL while it runs)
        and the chunks are read from the other end as they come, instead of going through a
        temporary file on disk (the ``rejects`` preset over 10M records writes ~150 MB of JSON).
        Without ``/dev/fd`` (not Linux/macOS), the temporary file. ``close()`` stops an export
        left unfinished (e.g. stdout closed early) before closing the connection.
        """
        query = duckdb_sql or to_duckdb(athena_sql)
        chunks = self._export_piped(query, fmt) if os.path.isdir("/dev/fd") else self._export_file(query, fmt)
        self._exports.append(chunks)
        return chunks

    def _export_piped(self, query: str, fmt: str) -> Generator[bytes, None, None]:
        import threading

        read_fd, write_fd = os.pipe()
        _widen_pipe(write_fd)
        failure: list[BaseException] = []
        target = f"/dev/fd/{write_fd}"
        try:
            self.lock(writable=[target])
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise

        def copy() -> None:
            try:
                self._run(_copy_to(query, target, fmt))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
                failure.append(exc)
            finally:
                os.close(write_fd)

        writer = threading.Thread(target=copy, name="flowwatch-copy", daemon=True)
        writer.start()
        try:
            with open(read_fd, "rb", buffering=0) as result:
                while chunk := result.read(_CHUNK):
                    yield chunk
        except BaseException:  # closed early, Ctrl-C, stdout gone: stop DuckDB rather than wait for it
            self.con.interrupt()
            raise
        finally:
            writer.join()
        if failure:
            raise failure[0]

    def _export_file(self, query: str, fmt: str) -> Generator[bytes, None, None]:
        handle, name = tempfile.mkstemp(prefix="flowwatch-query-", suffix=f".{fmt}")
        os.close(handle)
        try:
            self.lock(writable=[name])
            self._run(_copy_to(query, name, fmt))
            with open(name, "rb") as result:
                while chunk := result.read(_CHUNK):
                    yield chunk
        finally:
            os.unlink(name)

    def take_malformed_lines(self) -> int:
        """Lines the CSV scans skipped since the last call (a wrong number of fields).

        DuckDB's ``store_rejects`` keeps them in the temporary table ``reject_errors`` (one row
        per error, so several for one line), which accumulates over statements: emptied here.
        """
        import duckdb

        try:
            row = self.con.execute("SELECT count(DISTINCT (scan_id, file_id, line)) FROM reject_errors").fetchone()
        except duckdb.CatalogException:  # no CSV scan ran yet: the table does not exist
            return 0
        self.con.execute("DELETE FROM reject_errors")
        return int(row[0]) if row else 0

    def lock(self, *, writable: Iterable[str] = ()) -> None:
        """Before the user's SQL: DuckDB may read only ``readable`` (and write only ``writable``),
        no extension, no other file, no network; and no setting can be changed back."""
        writable = list(writable)
        if self.locked:
            if writable:
                raise FlowwatchError("query: the local engine runs one export per connection")
            return
        dirs = [os.path.abspath(p) for p in self.readable if Path(p).is_dir()]
        files = [os.path.abspath(p) for p in self.readable if not Path(p).is_dir()] + writable
        self.con.execute(f"SET allowed_directories = {_list(dirs)}")
        self.con.execute(f"SET allowed_paths = {_list(files)}")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")
        self.locked = True

    def _run(self, sql: str) -> Any:
        import duckdb

        try:
            return self.con.execute(sql)
        except duckdb.PermissionException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "permission error"
            raise UsageError(f"query: refused: {first}",
                             hint="the local engine reads only the stack's flow-log files (the cache and "
                                  "--source), and changes no setting") from None
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.ConversionException,
                duckdb.OutOfRangeException) as exc:
            raise SqlError.from_duckdb(str(exc), sql,
                                       hint="`flowwatch query list` shows the presets; columns are the Glue "
                                            "table's; --show-sql prints the DuckDB SQL") from None
        except duckdb.Error as exc:
            raise FlowwatchError(f"query: the local engine failed: {_one_line(exc)}") from None

    def close(self) -> None:
        for chunks in self._exports:
            chunks.close()  # closes the pipe's read end: DuckDB's COPY fails, and its thread ends
        self._exports.clear()
        self.con.close()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


_COLUMNS = frozenset(spec.column for spec in FIELDS.values())
# Above this much gzip to check, the checks run in worker processes: the byte searches hold the GIL,
# so threads check about one file at a time (8 files of 250k records: 0.53-0.71 s in 2 threads,
# 0.37 s in 2 forked processes, 0.48-0.58 s from a forkserver). Forked on Linux only: the children
# run check_text alone (pure Python and ISA-L), never DuckDB, whose threads are idle then.
_PROCESSES_FROM = 16 * 1024 * 1024
_START = "fork" if sys.platform.startswith("linux") else "forkserver"


def _check_pool(workers: int, files: list[SourceFile]) -> Any:
    """Where the checks run: ``workers`` processes for much data (Linux/macOS), else threads."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    size = 0
    with contextlib.suppress(OSError):
        size = sum(f.path.stat().st_size for f in files)
    # polars' thread pool does not survive a fork once it has run in this process (a forked worker waits on
    # its locks forever): then the workers come from a fork server, started clean
    start = "forkserver" if _START == "fork" and "polars" in sys.modules else _START
    if size >= _PROCESSES_FROM and workers > 1 and start in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context(start)
        if start == "forkserver":
            context.set_forkserver_preload(["flowwatch.query.reader"])
        return ProcessPoolExecutor(min(workers, len(files)), mp_context=context)
    return ThreadPoolExecutor(max(1, min(workers, len(files) or 1)))


def _columns(fields: tuple[str, ...]) -> list[str]:
    return [FIELDS[name].column for name in fields]


def _typed(column: str) -> str:
    """A text column as its Glue type. Like Athena, a value that is not a number (``-``) reads as NULL in a
    number column; a string column keeps it (``action = '-'`` on NODATA rows, as AWS's table reads it).

    (Every field is read as text: DuckDB converts only the columns a query reads, so converting
    in read_csv would drop a line with a bad ``bytes`` from ``sum(bytes)`` and keep it for
    ``count(*)``. TRY_CAST costs the same and gives one answer.)
    """
    kind, name = _duck_type(column), _ident(column)
    return name if kind in ("TEXT", "VARCHAR") else f"TRY_CAST({name} AS {kind}) AS {name}"


# The Glue (Athena) types of the flow-log fields as DuckDB names them (sqlglot's transpilation, spelled
# out so that building the view needs no sqlglot; a test checks the two agree).
_DUCK_TYPES = {"bigint": "BIGINT", "int": "INT", "string": "TEXT"}


def _duck_type(column: str) -> str:
    spec = next(s for s in FIELDS.values() if s.column == column)
    return _DUCK_TYPES[spec.athena_type.lower()]


def _ident(name: str) -> str:
    """A quoted DuckDB identifier (as sqlglot writes one)."""
    return '"' + name.replace('"', '""') + '"'


def _copy_to(query: str, target: str, fmt: str) -> str:
    """COPY of the query's result to ``target`` (joined, never formatted: the query may hold braces)."""
    options = "FORMAT json, ARRAY true" if fmt == "json" else "FORMAT csv, HEADER true"
    return "COPY (" + query + ") TO " + _lit(target) + " (" + options + ")"


def _list(items: list[str]) -> str:
    return "[" + ", ".join(_lit(item) for item in items) + "]"


def _lit(text: str) -> str:
    """A DuckDB string literal (as sqlglot writes one: quotes doubled, nothing else escaped)."""
    return "'" + text.replace("'", "''") + "'"


def _widen_pipe(fd: int) -> None:
    """A 1 MiB pipe buffer (Linux; the default 64 KiB means many more, smaller reads and writes)."""
    import fcntl

    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _CHUNK)
    except OSError:
        pass


def _files_under(folder: Path) -> Iterator[Path]:
    """Every file (or symlink, never followed) below ``folder``; nothing if it does not exist."""
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        yield from (base / n for n in filenames)
        yield from (base / n for n in dirnames if (base / n).is_symlink())


def _remove(path: Path) -> int:
    """Unlink one file; its size, 0 if it was not there."""
    try:
        size = path.lstat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _remove_tree(folder: Path) -> None:
    import shutil

    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".stamp")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _file_stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
