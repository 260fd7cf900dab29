"""`flowwatch pattern test`: matching lines on stdout, exit 0/1/2, extracted fields with -v."""

from __future__ import annotations

from tests.support.cli import run_cli

LINES = ("2 123456789012 eni-1 10.0.0.5 8.8.8.8 0 0 1 4 336 1790000000 1790000060 REJECT OK\n"
         "2 123456789012 eni-1 10.0.0.5 1.1.1.1 44321 443 6 10 840 1790000000 1790000060 ACCEPT OK\n"
         "2 123456789012 eni-1 - - - - - - - 1790000000 1790000060 - NODATA\n")
LAB = ("[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, protocol=1, packets, bytes, "
       "start, end, action=REJECT, log_status]")


def test_matching_lines_go_to_stdout(tmp_path, capsys, monkeypatch):
    path = tmp_path / "records.log"
    path.write_text(LINES)
    result = run_cli(capsys, monkeypatch, "pattern", "test", LAB, str(path))
    assert result.code == 0
    assert result.out.splitlines() == [LINES.splitlines()[0]]
    assert "1 of 3 lines matched" in result.err


def test_verbose_shows_extracted_fields_from_stdin(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "-v", "pattern", "test", LAB, "-", stdin=LINES)
    assert result.code == 0
    assert "srcaddr=10.0.0.5" in result.out and "action=REJECT" in result.out


def test_no_match_is_exit_1(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "pattern", "test", '"DROP"', stdin=LINES)
    assert (result.code, result.out) == (1, "")


def test_invalid_pattern_is_exit_2_with_where(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "pattern", "test", "[version, action=", stdin=LINES)
    assert result.code == 2
    assert result.err.startswith("error: invalid filter pattern:")
    assert "Traceback" not in result.err


def test_reading_from_a_terminal_says_so(capsys, monkeypatch):
    """With no FILE and stdin a terminal, `pattern test` says where it reads from, instead of waiting silently."""
    import io
    import sys

    class Terminal(io.StringIO):
        name = "<stdin>"

        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("REJECT one\nACCEPT two\n"))
    result = run_cli(capsys, monkeypatch, "pattern", "test", "REJECT")
    assert result.code == 0 and result.out == "REJECT one\n"
    assert "reading lines from the terminal" in result.err and "Ctrl-D" in result.err


def test_reading_from_a_pipe_says_nothing_of_it(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "pattern", "test", "REJECT", stdin="REJECT one\n")
    assert result.code == 0 and "reading lines" not in result.err


def test_a_line_longer_than_a_log_event_is_exit_2_naming_it(tmp_path, capsys, monkeypatch):
    from flowwatch.patterns import MAX_EVENT_LENGTH

    path = tmp_path / "events.log"
    with path.open("w") as f:
        f.write(LINES)
        f.write("x" * (MAX_EVENT_LENGTH + 1) + "\n")
    result = run_cli(capsys, monkeypatch, "pattern", "test", LAB, str(path))
    assert result.code == 2, result.err
    line = LINES.count("\n") + 1
    assert f"line {line} is longer than a log event can be (1 MiB)" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_line_of_exactly_a_log_event_is_evaluated(tmp_path, capsys, monkeypatch):
    from flowwatch.patterns import MAX_EVENT_LENGTH

    path = tmp_path / "events.log"
    reject = LINES.splitlines()[0]
    path.write_text(reject + " " + "x" * (MAX_EVENT_LENGTH - len(reject) - 1) + "\n")
    result = run_cli(capsys, monkeypatch, "pattern", "test", "REJECT", str(path))
    assert result.code == 0, result.err
    assert "1 of 1 line matched" in result.err


def test_remote_5xx_is_one_line_without_a_retry_storm():
    """An endpoint answering TestMetricFilter with an HTML 500 page (moto): one clean error line, 2 tries."""
    from botocore.exceptions import ClientError

    from flowwatch.errors import AwsError

    html = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>"
    exc = ClientError({"Error": {"Code": "500", "Message": html},
                       "ResponseMetadata": {"HTTPStatusCode": 500}}, "TestMetricFilter")
    failure = AwsError.from_client_error(exc, step="pattern")
    assert failure.message == ("pattern: TestMetricFilter failed: 500: the endpoint answered HTTP 500 "
                               "without an AWS error")
    from flowwatch.actions import pattern_test

    assert pattern_test.REMOTE_ATTEMPTS == 2
