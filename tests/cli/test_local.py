"""The same CLI commands on the embedded local AWS (--local): up, simulate-reject, status (alarm in
ALARM, the notification in the inbox), query rejects, down, local stop. One server, on 127.0.0.1,
started and stopped by this module."""

from __future__ import annotations

import json

import pytest

from flowwatch.local import process

from tests.support.cli import run_cli

pytestmark = pytest.mark.slow   # the lab story on a real local server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("local-cli")
    info, _ = process.start(0, directory / "flowwatch")
    try:
        yield directory
    finally:
        process.stop(directory / "flowwatch")
    assert not process.pid_alive(info.pid)


def test_the_lab_story_on_the_local_aws(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(server))        # where `--local` finds the running server
    (tmp_path / "flowwatch.yaml").write_text("stack: local-cli\nalerts:\n  email: ops@example.com\n")
    monkeypatch.chdir(tmp_path)

    up = run_cli(capsys, monkeypatch, "--local", "up")
    assert up.code == 0, up.err
    assert "Errors: 0" in up.err
    url = process.running(server / "flowwatch").url
    board = "flowwatch-local-cli-us-east-1"
    read_it = f"aws --endpoint-url {url} --region us-east-1 cloudwatch get-dashboard --dashboard-name {board}"
    assert up.err.splitlines()[-1] == (f"Dashboard: {board} (the local AWS has no console; read it with "
                                       f"`{read_it}`)")
    again = run_cli(capsys, monkeypatch, "--local", "--output", "json", "up")   # the dashboard's tags were kept
    assert again.code == 0 and json.loads(again.out)["counts"]["changes"] == 0, again.err
    assert json.loads(again.out)["dashboard"] == {"name": board, "url": None, "command": read_it}

    reject = run_cli(capsys, monkeypatch, "--local", "simulate-reject", "--timeout", "60")
    assert reject.code == 0, reject.err
    assert "ALARM" in reject.err

    status = run_cli(capsys, monkeypatch, "--local", "--output", "json", "status")
    assert status.code == 0, status.err
    steps = {s["step"]: s for s in json.loads(status.out)["steps"]}
    assert {a["name"]: a["state"] for a in steps["alarm"]["alarms"]}["flowwatch-local-cli-ping-deny"] == "ALARM"
    assert steps["metric Ping-Deny"]["state"] == "found"
    assert steps["inbox (local)"]["notifications"] >= 1

    rows = run_cli(capsys, monkeypatch, "--local", "query", "rejects", "--output", "json")
    assert rows.code == 0, rows.err
    records = json.loads(rows.out)
    assert records and all(r["action"] == "REJECT" and r["protocol"] == 1 for r in records)

    inbox = run_cli(capsys, monkeypatch, "--output", "json", "local", "inbox")
    messages = json.loads(inbox.out)
    assert any(m["subject"].startswith("ALARM") and "ops@example.com" in m["recipients"] for m in messages)
    as_csv = run_cli(capsys, monkeypatch, "--output", "csv", "local", "inbox").out
    assert as_csv.splitlines()[0] == "time,topic_arn,subject,recipients,body"
    assert json.loads(run_cli(capsys, monkeypatch, "--output", "json", "local", "status").out)["messages"] >= 1

    down = run_cli(capsys, monkeypatch, "--local", "down", "--yes")
    assert down.code == 0, down.err
    again = run_cli(capsys, monkeypatch, "--local", "down", "--yes")
    assert "Nothing to remove" in again.err


def test_the_detections_up_twice_and_down_on_the_local_aws(server, tmp_path, capsys, monkeypatch):
    """The local AWS stores anomaly detectors (moto has none) and insight rules: a second up changes nothing,
    down removes them all (the band model and Contributor Insights evaluation are the data plane's, elsewhere)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(server))
    (tmp_path / "flowwatch.yaml").write_text("stack: local-det\nalerts:\n  detections: [rejected-spike, "
                                             "top-rejected-sources, ssh-rdp-probe, egress-spike]\n")
    monkeypatch.chdir(tmp_path)
    first = run_cli(capsys, monkeypatch, "--local", "--output", "json", "up")
    assert first.code == 0, first.err
    made = {(c["step"], c["action"]) for c in json.loads(first.out)["changes"]}
    assert {("anomaly_detector", "create"), ("insight_rule", "create")} <= made
    second = run_cli(capsys, monkeypatch, "--local", "--output", "json", "up")
    assert second.code == 0, second.err
    assert json.loads(second.out)["counts"]["changes"] == 0
    down = run_cli(capsys, monkeypatch, "--local", "--output", "json", "down", "--yes")
    assert down.code == 0, down.err
    assert {("anomaly_detector", "delete"), ("insight_rule", "delete")} <= {
        (c["step"], c["action"]) for c in json.loads(down.out)["changes"]}
    again = run_cli(capsys, monkeypatch, "--local", "--output", "json", "down", "--yes")
    assert again.code == 0 and json.loads(again.out)["counts"]["changes"] == 0
