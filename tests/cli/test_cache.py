"""The query cache: `flowwatch cache info | clear`, FileCache's removal helpers, and `down` forgetting
the copies of the bucket it deleted."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from flowwatch.model import Change
from flowwatch.query.local_engine import FileCache, cache_root

from tests.support.cli import run_cli

BUCKET = "flowwatch-test-123456789012-us-east-1"   # the stack `test` on moto's account


def seed(cache: FileCache, bucket: str, n: int = 2) -> list[Path]:
    """Downloads of ``bucket`` with their stamps, and a Parquet copy (+ stamp) of each."""
    paths = []
    for i in range(n):
        path = cache.s3_path(bucket, f"AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/01/f{i}.log.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
        path.with_name(path.name + ".stamp").write_text("etag")
        copy = cache.parquet_path(path)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(b"p" * 50)
        copy.with_name(copy.name + ".stamp").write_text("{}")
        paths.append(path)
    return paths


def test_forget_bucket_removes_its_downloads_and_parquet_copies_only(tmp_path):
    cache = FileCache(tmp_path / "cache")
    gone = seed(cache, BUCKET)
    kept = seed(cache, "other-bucket", 1)
    freed = cache.forget_bucket(BUCKET)
    assert freed == 2 * (100 + 4 + 50 + 2)
    assert not (cache.root / "s3" / BUCKET).exists()
    assert not any(cache.parquet_path(p).exists() for p in gone)
    assert kept[0].exists() and cache.parquet_path(kept[0]).exists()
    assert cache.forget_bucket(BUCKET) == 0                              # nothing left: a no-op
    with pytest.raises(Exception, match="not a plain name"):
        cache.forget_bucket("../etc")


def test_clear_removes_only_flowwatch_entries(tmp_path):
    cache = FileCache(tmp_path / "cache")
    seed(cache, BUCKET)
    (cache.root / "duckdb-tmp").mkdir()
    (cache.root / "duckdb-tmp" / "spill.tmp").write_bytes(b"s" * 10)
    files, size = cache.usage()
    assert (files, size) == (9, 2 * (100 + 4 + 50 + 2) + 10)
    assert cache.clear() == size
    assert not cache.root.exists() and cache.usage() == (0, 0)
    cache.root.mkdir()
    (cache.root / "README").write_text("not ours")
    seed(cache, BUCKET, 1)
    cache.clear()
    assert [p.name for p in cache.root.iterdir()] == ["README"]


def test_cache_info_and_clear_commands(capsys, monkeypatch):
    seed(FileCache(cache_root()), BUCKET)
    info = run_cli(capsys, monkeypatch, "--output", "json", "cache", "info")
    assert info.code == 0, info.err
    assert json.loads(info.out) == {"path": str(cache_root()), "files": 8, "bytes": 2 * (100 + 4 + 50 + 2)}
    table = run_cli(capsys, monkeypatch, "cache", "info")
    assert table.code == 0 and "312 B" in table.out
    cleared = run_cli(capsys, monkeypatch, "cache", "clear")
    assert cleared.code == 0 and "312 B freed" in cleared.err and cleared.out == ""
    assert not (cache_root() / "s3").exists()
    again = run_cli(capsys, monkeypatch, "cache", "clear")
    assert again.code == 0 and "already empty" in again.err


def test_down_forgets_only_the_buckets_it_deleted():
    from flowwatch.cli.stack import forget_query_cache

    cache = FileCache(cache_root())
    seed(cache, BUCKET)
    seed(cache, "kept-bucket", 1)
    lines: list[str] = []
    ctx = SimpleNamespace(out=SimpleNamespace(detail=lines.append))
    others = [Change("bucket", "update", "S3 bucket kept-bucket", "policy", {"kind": "policy", "name": "kept-bucket"}),
              Change("log_group", "delete", "log group", "down", {"name": BUCKET})]
    forget_query_cache(ctx, others)
    assert (cache.root / "s3" / BUCKET).exists() and lines == []
    forget_query_cache(ctx, [Change("bucket", "delete", f"S3 bucket {BUCKET}", "down",
                                    {"kind": "bucket", "name": BUCKET})])
    assert not (cache.root / "s3" / BUCKET).exists() and (cache.root / "s3" / "kept-bucket").exists()
    assert lines == [f"removed the query cache of s3://{BUCKET} (312 B)"]


def test_down_warns_when_the_cache_cannot_be_removed(monkeypatch):
    from flowwatch.cli.stack import forget_query_cache

    def denied(self, bucket):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(FileCache, "forget_bucket", denied)
    warnings: list[str] = []
    ctx = SimpleNamespace(out=SimpleNamespace(detail=warnings.append, warn=warnings.append))
    forget_query_cache(ctx, [Change("bucket", "delete", "S3 bucket b", "down", {"kind": "bucket", "name": "b"})])
    assert len(warnings) == 1 and "Permission denied" in warnings[0] and "cache clear" in warnings[0]


@pytest.mark.slow
def test_down_removes_the_deleted_buckets_cache(tmp_path, capsys, monkeypatch):
    from moto import mock_aws

    from tests.support.aws_faults import moto_fixes

    (tmp_path / "flowwatch.yaml").write_text("stack: test\n")
    monkeypatch.chdir(tmp_path)
    cache = FileCache(cache_root())
    with mock_aws(), moto_fixes():
        assert run_cli(capsys, monkeypatch, "up").code == 0
        seed(cache, BUCKET)
        for kept in (("--dry-run",), ("--keep-data",)):                 # the bucket stays: so does its cache
            result = run_cli(capsys, monkeypatch, "down", "--yes", *kept)
            assert result.code == 0, result.err
            assert (cache.root / "s3" / BUCKET).exists(), kept
        result = run_cli(capsys, monkeypatch, "-v", "down", "--yes")
        assert result.code == 0, result.err
    assert not (cache.root / "s3" / BUCKET).exists()
    assert cache.usage() == (0, 0)
