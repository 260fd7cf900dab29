"""The fast paths of the local engine: the columnar cache on by default (invalidated when a file
changes: size/mtime on disk, ETag on S3), the SQL analysis remembered (same answer, another SQL is
another entry) and a repeat query that never imports sqlglot."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

from flowwatch.query import analysis_cache
from flowwatch.query import local_engine as local

from tests.query.test_reader import GOOD, KEY, V2_HEADER, text, write
from tests.query.test_local import query


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    write(root, "20141214T0400", text(V2_HEADER, *GOOD))
    return root


def _copies() -> list[Path]:
    return sorted((local.cache_root() / "parquet").glob("*.parquet"))


def test_the_columnar_cache_is_on_by_default_and_follows_a_changed_file(tmp_path):
    root = _tree(tmp_path)
    rows, _ = query("rejects", source=root)
    assert [r["srcaddr"] for r in rows] == ["172.31.9.69"]
    assert len(_copies()) == 1                                        # no --parquet-cache given
    path = root / KEY.format("20141214T0400")
    changed = GOOD[1].replace("172.31.9.69", "172.31.9.70")
    path.write_bytes(gzip.compress(text(V2_HEADER, GOOD[0], changed), mtime=0))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))   # same size, later mtime
    rows, _ = query("rejects", source=root)
    assert [r["srcaddr"] for r in rows] == ["172.31.9.70"]
    rows, _ = query("rejects", source=root, parquet_cache=True)          # the flag is still accepted
    assert [r["srcaddr"] for r in rows] == ["172.31.9.70"]


class _S3:
    """download_file of one object whose body (and ETag) the test changes."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.downloads = 0

    def download_file(self, bucket: str, key: str, filename: str, ExtraArgs: object = None) -> None:
        Path(filename).write_bytes(self.body)
        self.downloads += 1


def test_an_s3_object_with_a_new_etag_replaces_its_download_and_its_columnar_copy(tmp_path):
    cache = local.FileCache(tmp_path / "cache")
    s3 = _S3(b"one")
    obj = {"Key": "AWSLogs/1/vpcflowlogs/us-east-1/2014/12/14/x.log.gz", "ETag": '"e1"'}
    path, fresh = cache.download(s3, "b", obj)
    assert fresh
    copy = cache.parquet_path(path)
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(b"PAR1")
    cache.parquet_done(path, copy, 0)
    assert cache.parquet_copy(path) is not None
    assert cache.download(s3, "b", obj) == (path, False) and s3.downloads == 1   # same ETag: the cached copy
    s3.body = b"two, longer"
    path, fresh = cache.download(s3, "b", {**obj, "ETag": '"e2"'})
    assert fresh and s3.downloads == 2 and path.read_bytes() == b"two, longer"
    assert cache.parquet_copy(path) is None                            # the columnar copy is stale now


def test_the_analysis_is_remembered_gives_the_same_answer_and_another_sql_is_another_entry(tmp_path):
    root = _tree(tmp_path)
    entries = local.cache_root() / "analysis"
    first, _ = query(sql="SELECT srcaddr FROM flow_logs WHERE action = 'REJECT'", source=root)
    assert len(list(entries.glob("*.json"))) == 1
    again, _ = query(sql="SELECT srcaddr FROM flow_logs WHERE action = 'REJECT'", source=root)
    assert again == first == [{"srcaddr": "172.31.9.69"}]
    other, _ = query(sql="SELECT srcaddr FROM flow_logs WHERE action = 'ACCEPT'", source=root)
    assert other == [{"srcaddr": "172.31.16.139"}]
    assert len(list(entries.glob("*.json"))) == 2
    assert analysis_cache.key({"sql": "a"}) != analysis_cache.key({"sql": "b"})


def test_an_analysis_entry_answers_in_place_of_sqlglot(tmp_path):
    """The entry is what runs: a hand-changed one (as a stale one would be) is used as it is."""
    root = _tree(tmp_path)
    query("rejects", source=root)
    [entry] = (local.cache_root() / "analysis").glob("*.json")
    known = analysis_cache.load(local.cache_root(), entry.stem)
    assert known is not None and "REJECT" in known.duckdb_sql
    entry.write_text(entry.read_text().replace("'REJECT'", "'ACCEPT'"))
    rows, _ = query("rejects", source=root)
    assert [r["srcaddr"] for r in rows] == ["172.31.16.139"]


_REPEAT = """
import io, json, sys
from pathlib import Path
from flowwatch.cli.app import App
from flowwatch.cli.query import run_query
from flowwatch.console import Output
from flowwatch.query import QueryRequest
from flowwatch.settings import Settings
out = io.StringIO()
app = App(Settings(), output=Output(stderr=io.StringIO(), stdout=out, color=False))
run_query(app, QueryRequest(preset=sys.argv[2], source=Path(sys.argv[1]), output="json"))
print(json.dumps({"rows": json.loads(out.getvalue()), "sqlglot": any(m.split(".")[0] == "sqlglot" for m in sys.modules)}))
"""


def test_a_repeat_query_does_not_import_sqlglot(tmp_path):
    import json

    root = _tree(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(local.__file__).parents[2]), os.getcwd()])}

    def run(preset: str) -> dict[str, object]:
        done = subprocess.run([sys.executable, "-c", _REPEAT, str(root), preset], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    first = run("rejects")
    assert first["sqlglot"] is True
    repeat = run("rejects")
    assert repeat == {"rows": first["rows"], "sqlglot": False}
    assert run("top-talkers")["sqlglot"] is True                      # another query: analysed again


def test_the_duckdb_spellings_agree_with_sqlglot():
    from sqlglot import exp

    from flowwatch.records import FIELDS

    for spec in FIELDS.values():
        assert local._duck_type(spec.column) == exp.DataType.build(spec.athena_type, dialect="athena").sql(
            dialect="duckdb")
    for word in ["a", "it's", "back\\slash", "new\nline", "$path", 'q"uote', "é"]:
        assert local._lit(word) == exp.Literal.string(word).sql(dialect="duckdb")
        assert local._ident(word) == exp.to_identifier(word, quoted=True).sql(dialect="duckdb")
