"""flowwatch watch: the frame drawn from data (pure), piped output (one plain frame, no ANSI), the live loop with
an injected sleep and frame count, the reads against moto (parts moto lacks say so in their place), the CLI."""

from __future__ import annotations

import io

import pytest

from flowwatch.actions import watch
from flowwatch.console import Output
from tests.support.context import make_config, make_ctx

T = 1_767_225_600.0   # 2026-01-01 00:00 UTC


def frame() -> watch.Frame:
    return watch.Frame(
        "lab", "us-east-1", T + 30,
        flows=[(T - 120, 12, 3), (T - 60, 10, 40), (T, 8, 0)],
        bands=[watch.BandView("rejected-spike", "flowwatch/lab/RejectedSpike", 300,
                              [(T - 300, 20.0, 0.0, 84.0), (T, 170.0, 0.0, 84.0)])],
        alarms=[("flowwatch-lab-ping-deny", "threshold", "OK"), ("flowwatch-lab-rejected-spike", "anomaly", "ALARM")],
        contributors=[watch.Contributors("top-rejected-sources", ["srcaddr"], 25, [("198.51.100.7", 25.0),
                                                                                  ("203.0.113.9", 2.0)])])


def text_of(renderable, *, color: bool = False) -> str:
    buf = io.StringIO()
    out = Output(stderr=io.StringIO(), stdout=buf, color=color)
    out.rich(renderable)
    return buf.getvalue()


def test_a_frame_shows_flows_band_alarms_and_contributors():
    text = text_of(watch.render(frame()))
    assert "flowwatch watch: stack lab (us-east-1)" in text
    assert "Flows per minute (last 15 min): accepted vs rejected" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line[:5].count(":") == 1 and line[:2].isdigit()}
    assert "40" in lines["23:59"] and "█" * watch.BAR in lines["23:59"]          # the peak gets the full bar
    assert "rejected-spike: flowwatch/lab/RejectedSpike per 300 s against its band" in text
    assert "[0 .. 84]" in text and "outside" in text
    assert "flowwatch-lab-rejected-spike" in text and "ALARM" in text
    assert "top-rejected-sources: top contributors this period (srcaddr; alarm at 25)" in text
    assert "198.51.100.7" in text
    assert "\x1b[" not in text                                                   # no ANSI when not a terminal


def test_missing_parts_say_why_in_their_place():
    empty = watch.Frame("lab", "us-east-1", T, flows_note="Logs Insights: AccessDenied: no",
                        bands=[watch.BandView("egress-spike", "ns/m", 300, [], "no band yet (training)")],
                        contributors=[watch.Contributors("ssh-rdp-probe", ["srcaddr"], 10, [],
                                                         "GetInsightRuleReport: NotImplemented")])
    text = text_of(watch.render(empty))
    assert "Logs Insights: AccessDenied" in text and "no band yet (training)" in text
    assert "GetInsightRuleReport: NotImplemented" in text


class FakeCollector:
    def __init__(self, *_a, **_k):
        self.calls = 0

    def frame(self, now):
        self.calls += 1
        return frame()


def test_piped_prints_one_frame_and_exits_0(monkeypatch):
    ctx = _offline_ctx(terminal=False)
    monkeypatch.setattr(watch, "Collector", FakeCollector)
    slept: list[float] = []
    assert watch.watch(ctx, sleep=slept.append) == 0
    assert slept == []
    assert ctx.out.out.file.getvalue().count("flowwatch watch: stack lab") == 1


def test_on_a_terminal_it_refreshes_every_interval(monkeypatch):
    ctx = _offline_ctx(terminal=True)
    monkeypatch.setattr(watch, "Collector", FakeCollector)
    slept: list[float] = []
    assert watch.watch(ctx, frames=4, sleep=slept.append) == 0
    assert slept == [watch.AWS_INTERVAL] * 3


def test_ctrl_c_goes_up_to_the_cli_boundary(monkeypatch):
    ctx = _offline_ctx(terminal=True)
    monkeypatch.setattr(watch, "Collector", FakeCollector)

    def interrupt(_):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        watch.watch(ctx, sleep=interrupt)


def _offline_ctx(*, terminal: bool):
    from flowwatch.model import Context, Stack
    from flowwatch.naming import Names

    config = make_config(stack="lab")
    out = Output(stderr=io.StringIO(), stdout=io.StringIO(), color=True if terminal else False)
    return Context(config=config, aws=None, out=out, names=Names.from_config(config), stack=Stack("lab"))  # type: ignore[arg-type]


def test_the_flow_query_is_the_dashboards_and_follows_a_custom_format():
    from flowwatch.records import RecordFormat

    assert watch.flow_query(RecordFormat.parse("v2")).startswith('fields strcontains(action, "ACCEPT")')
    custom = watch.flow_query(RecordFormat.parse(["srcaddr", "dstaddr", "action", "log-status"]))
    assert custom.startswith("parse @message")


def test_band_series_reads_both_bounds():
    from datetime import datetime, timezone

    at = [datetime.fromtimestamp(T, tz=timezone.utc)]
    lower, upper = watch._band_series([{"Id": "ad0", "Label": "x Upper", "Timestamps": at, "Values": [9.0]},
                                       {"Id": "ad0", "Label": "x Lower", "Timestamps": at, "Values": [1.0]}])
    assert (lower, upper) == ({T: 1.0}, {T: 9.0})
    lower, upper = watch._band_series([{"Id": "ad0", "Timestamps": at, "Values": [3.0]},
                                       {"Id": "ad0", "Timestamps": at, "Values": [7.0]}])
    assert (lower, upper) == ({T: 3.0}, {T: 7.0})


def test_collect_on_moto_reads_alarms_and_degrades_part_by_part(session):
    from flowwatch import engine

    config = make_config(alerts={"detections": ["rejected-spike", "top-rejected-sources"]})
    ctx = make_ctx(session, config)
    engine.up(ctx)
    got = watch.Collector(ctx, sleep=lambda _: None).frame(T)
    assert {name for name, _, _ in got.alarms} == {ctx.names.alarm(r.name) for r in config.alerts.rules}
    assert len(got.bands) == 1 and len(got.contributors) == 1
    text = text_of(watch.render(got))
    assert "Alarms" in text and "rejected-spike" in text


def test_cli_watch_has_no_options_but_help(capsys, monkeypatch):
    from tests.support.cli import run_cli

    result = run_cli(capsys, monkeypatch, "watch", "--help")
    assert result.code == 0 and "until Ctrl-C" in result.out
