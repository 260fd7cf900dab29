"""The reading of flow-log text files: each kind of bad file alone is skipped with one warning
naming it and why, and the query answers from the others; header lines anywhere are not records;
whitespace is read as RecordParser reads it; ``"$path"`` is the object's URI."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from flowwatch.console import Output
from flowwatch.query import local_engine as local
from flowwatch.query.reader import check_text
from flowwatch.records import MAX_LINE_BYTES, PRESETS, TGW_FIELDS, RecordFormat

from tests.query.test_local import query

V2 = RecordFormat.parse("v2")
V2_HEADER = " ".join(PRESETS["v2"])
GOOD = [
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK",
]
BAD_RECORD = "2 123456789010 eni-1235b8ca123456789 198.51.100.7 172.31.9.12 49761 3389 6 20 999 1418530020 1418530080 REJECT OK"
KEY = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2014/12/14/123456789010_vpcflowlogs_us-east-1_fl-1_{}Z_0.log.gz"


def write(root: Path, stamp: str, data: bytes, *, compress: bool = True) -> Path:
    path = root / KEY.format(stamp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def text(*lines: str, end: str = "\n") -> bytes:
    return "".join(line + end for line in lines).encode()


def good_tree(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    write(root, "20141214T0400", text(V2_HEADER, *GOOD))
    return root


def rejected_sources(root: Path) -> tuple[list[str], str]:
    rows, err = query("rejects", source=root)
    return [r["srcaddr"] for r in rows], err


BAD_FILES = {
    "truncated gzip": lambda: gzip.compress(text(V2_HEADER, BAD_RECORD) * 50, mtime=0)[:-40],
    "not valid gzip": lambda: b"\x1f\x8b\x08\x00" + b"\x00" * 40,
    "not UTF-8 text": lambda: gzip.compress(text(V2_HEADER, BAD_RECORD) + "2 é\n".encode("latin-1"), mtime=0),
    "mixed line endings": lambda: gzip.compress(text(V2_HEADER, BAD_RECORD) + text(BAD_RECORD, end="\r\n"),
                                                mtime=0),
    "carriage return inside": lambda: gzip.compress(text(V2_HEADER, BAD_RECORD.replace(" OK", "\rOK")), mtime=0),
    "longer than 64 KiB": lambda: gzip.compress(text(V2_HEADER, BAD_RECORD, "x" * (MAX_LINE_BYTES + 1)), mtime=0),
    "header line of another format": lambda: gzip.compress(
        text(V2_HEADER, BAD_RECORD, "version srcaddr dstaddr", "2 10.0.0.1 10.0.0.2"), mtime=0),
    "not a documented flow-log field": lambda: gzip.compress(text(V2_HEADER + " colour", BAD_RECORD + " red"),
                                                             mtime=0),
}


@pytest.mark.parametrize("why", list(BAD_FILES))
def test_a_bad_file_alone_is_skipped_with_one_warning_and_the_others_answer(tmp_path, why):
    root = good_tree(tmp_path)
    bad = write(root, "20141214T0410", BAD_FILES[why](), compress=False)
    sources, err = rejected_sources(root)
    assert sources == ["172.31.9.69"]                       # the good file's answer, nothing of the bad one
    warnings = err.splitlines()
    assert len(warnings) == 2, err
    assert warnings[0].startswith(f"warning: skipped {bad}: ") and why in warnings[0]
    assert warnings[1].startswith("warning: skipped 1 of 2 flow-log files")
    assert warnings[1].endswith("the answer is from the other 1")


def test_a_skipped_file_says_how_many_records_it_held_when_it_got_that_far(tmp_path):
    root = good_tree(tmp_path)
    many = text(V2_HEADER, *[BAD_RECORD] * 40_000) + "2 é\n".encode("latin-1")   # the bad byte after 1 MiB
    write(root, "20141214T0410", many)
    _, err = rejected_sources(root)
    held = re.search(r"skipped 1 of 2 flow-log files, holding at least (\d+) records", err)
    assert held and 30_000 < int(held.group(1)) <= 40_000, err   # the lines read before the bad one


def test_repeated_header_lines_are_not_records_nor_malformed(tmp_path):
    root = tmp_path / "logs"
    concatenated = gzip.compress(text(V2_HEADER, GOOD[0]), mtime=0) + gzip.compress(text(V2_HEADER, GOOD[1]), mtime=0)
    write(root, "20141214T0400", concatenated, compress=False)
    write(root, "20141214T0410", text(V2_HEADER, GOOD[1], V2_HEADER, BAD_RECORD, V2_HEADER))
    rows, err = query(None, sql="SELECT srcaddr, count(*) AS n FROM flow_logs GROUP BY 1 ORDER BY 1", source=root)
    assert rows == [{"srcaddr": "172.31.16.139", "n": 1}, {"srcaddr": "172.31.9.69", "n": 2},
                    {"srcaddr": "198.51.100.7", "n": 1}]
    assert "malformed" not in err and "warning" not in err


def test_malformed_counts_are_records_only(tmp_path):
    root = tmp_path / "logs"
    write(root, "20141214T0400", text(V2_HEADER, GOOD[0], "2 cut short", V2_HEADER, GOOD[1]))
    write(root, "20141214T0410", text(" ".join(TGW_FIELDS), "3 - 1 tgw-1 tgw-attach-1 too few"))
    rows, err = query("top-talkers", source=root)
    assert [r["srcaddr"] for r in rows] == ["172.31.16.139", "172.31.9.69"]
    assert "skipped 2 malformed lines" in err


@pytest.mark.parametrize("line", [
    GOOD[1].replace(" 22 ", "  22 ").replace("3389 6", "3389  6"),   # double spaces
    GOOD[1].replace(" ", "\t", 3),                                   # tabs
    "  " + GOOD[1] + " ",                                            # spaces at both ends
    GOOD[1].replace(" ", "   "),
])
def test_whitespace_between_fields_is_read_as_the_record_parser_reads_it(tmp_path, line):
    root = tmp_path / "logs"
    write(root, "20141214T0400", text(V2_HEADER, GOOD[0], line))
    assert V2.parser().parse_line(line) is not None
    rows, err = query("rejects", source=root)
    assert [(r["srcaddr"], r["protocol"]) for r in rows] == [("172.31.9.69", 6)]
    assert "warning" not in err


def test_an_all_crlf_file_is_read(tmp_path):
    root = tmp_path / "logs"
    write(root, "20141214T0400", text(V2_HEADER, *GOOD, end="\r\n"))
    assert rejected_sources(root) == (["172.31.9.69"], "")


def test_path_is_the_file_for_source_and_the_s3_uri_for_objects(tmp_path):
    root = good_tree(tmp_path)
    rows, _ = query(None, sql='SELECT DISTINCT "$path" AS p FROM flow_logs', source=root)
    assert rows == [{"p": str(root / KEY.format("20141214T0400"))}]
    rows, _ = query(None, sql='SELECT * FROM flow_logs LIMIT 1', source=root)
    assert "$path" not in rows[0]                                    # as on Athena: not part of *

    engine = local.LocalEngine(V2, table="flow_logs", database="db", out=Output(color=False), readable=[root])
    try:
        path = root / KEY.format("20141214T0400")
        engine.load([local.SourceFile(path, "2014/12/14", False, uri="s3://bucket/" + KEY.format("20141214T0400"))],
                    partition=False, path=True)
        assert engine.fetch('SELECT DISTINCT "$path" FROM flow_logs')[1] == [("s3://bucket/" + KEY.format("20141214T0400"),)]
    finally:
        engine.close()


def test_the_check_reads_every_gzip_member_and_counts_lines(tmp_path):
    path = tmp_path / "two.log.gz"
    path.write_bytes(gzip.compress(text(V2_HEADER, GOOD[0]), mtime=0) + gzip.compress(text(GOOD[1]), mtime=0))
    check = check_text(path, PRESETS["v2"])
    assert (check.problem, check.fields, check.records, check.headers) == (None, PRESETS["v2"], 2, 0)


def test_a_check_is_remembered_while_the_file_is_unchanged(tmp_path, monkeypatch):
    import flowwatch.query.reader as reader

    root = good_tree(tmp_path)
    calls: list[Path] = []
    real = reader.check_text
    monkeypatch.setattr(reader, "check_text", lambda path, default: calls.append(path) or real(path, default))
    import flowwatch.query.columnar as columnar   # the check made in the same pass as the columnar copy

    both = columnar.check_and_convert
    monkeypatch.setattr(columnar, "check_and_convert",
                        lambda path, default, target: calls.append(path) or both(path, default, target))
    assert rejected_sources(root)[0] == ["172.31.9.69"]
    assert rejected_sources(root)[0] == ["172.31.9.69"]
    assert len(calls) == 1                                            # the second query trusts the first check
    path = root / KEY.format("20141214T0400")
    path.write_bytes(gzip.compress(text(V2_HEADER, GOOD[1]), mtime=0)[:-20])   # changed: now truncated
    sources, err = rejected_sources(root)
    assert sources == [] and len(calls) == 2 and "truncated gzip" in err


def test_many_files_are_checked_in_worker_processes_with_the_same_findings(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "_PROCESSES_FROM", 0)                  # any size: worker processes
    root = good_tree(tmp_path)
    bad = write(root, "20141214T0410", BAD_FILES["truncated gzip"](), compress=False)
    write(root, "20141214T0420", text(V2_HEADER, GOOD[1].replace(" 22 ", "  22 ")))
    sources, err = rejected_sources(root)
    assert sources == ["172.31.9.69", "172.31.9.69"]
    assert f"skipped {bad}: cannot read it: truncated gzip" in err and "skipped 1 of 3 flow-log files" in err


def test_worker_processes_after_polars_has_run_here_do_not_hang(tmp_path):
    """polars' thread pool, once used in a process, does not survive a fork: the workers of a later check
    in that process must come from a clean start, or the query waits forever. Run in a child process, so
    that the old behaviour fails in two minutes instead of hanging the suite."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("polars")
    repo = Path(__file__).resolve().parents[2]
    script = f"""
import polars
polars.DataFrame({{"a": list(range(1000))}}).lazy().group_by("a").len().collect()   # its pool runs
from pathlib import Path
from flowwatch.query import local_engine as local
from tests.query import test_reader as t
local._PROCESSES_FROM = 0
sources, _ = t.rejected_sources(t.good_tree(Path({str(tmp_path)!r})))
print(sources)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)]),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    import signal

    child = subprocess.Popen([sys.executable, "-c", script], cwd=repo, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)        # the child and the workers it forked
        child.communicate()
        pytest.fail("the check's worker processes hang after polars has run in the parent")
    assert child.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == "['172.31.9.69']"
