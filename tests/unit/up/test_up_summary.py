"""The demo's bookkeeping and the status screen (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trakr.up.status import ProcessHealth, StatusReport, StreamBacklog, render
from trakr.up.summary import (
    Notification,
    ScrapeTimes,
    outcome,
    percentile,
    push_notification_id,
    render_summary,
)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (
        percentile(values, 50) == 50
        and percentile(values, 99) == 99
        and percentile(values, 100) == 100
    )
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None


def test_a_change_is_attributed_to_the_scrape_before_it() -> None:
    times = ScrapeTimes()
    for moment in (10.0, 20.0, 30.0):
        times.add("sim", moment)
    times.add("rutgers-nb", 25.0)
    assert times.scrape_before("sim", 29.9) == 20.0
    assert times.scrape_before("sim", 30.0) == 30.0
    assert times.scrape_before("sim", 5.0) is None
    assert times.scrape_before("other", 50.0) is None
    assert times.count == 4


def test_push_ids_come_from_the_data_payload() -> None:
    assert push_notification_id({"data": {"notification_id": "42"}}) == 42
    assert push_notification_id({"data": {}}) is None
    assert push_notification_id({"data": {"notification_id": "x"}}) is None


def test_outcome_needs_every_forwarded_change_pushed() -> None:
    times = ScrapeTimes()
    times.add("sim", 100.0)
    rows = [
        Notification(id=1, university="sim", state="sent", created_at=101.0),
        Notification(id=2, university="sim", state="collapsed", created_at=101.5),
        Notification(id=3, university="sim", state="sent", created_at=102.0),
    ]
    complete = outcome(
        notifications=rows,
        delivery_states={1: "sent", 3: "sent"},
        pushes={1: 101.5, 3: 104.0},
        push_count=2,
        scrape_times=times,
        scrape_results={"queued": 1.0},
    )
    assert complete.ok and complete.collapsed == 1 and complete.forwarded == 2
    assert sorted(complete.latencies_seconds) == [1.5, 4.0]
    text = render_summary(complete, duration_seconds=60)
    assert "OK: all 2 non-collapsed changes reached the emulator" in text
    assert "p50 1.50s, p99 4.00s" in text

    missing = outcome(
        notifications=[
            *rows,
            Notification(id=4, university="sim", state="queued", created_at=103.0),
        ],
        delivery_states={1: "sent", 3: "sent"},
        pushes={1: 101.5, 3: 104.0},
        push_count=2,
        scrape_times=times,
        scrape_results={},
    )
    assert not missing.ok and missing.missing_ids == [4] and missing.undecided == 1
    assert "FAILED: 1 changes never reached the emulator (ids 4)" in render_summary(
        missing, duration_seconds=60
    )


def test_status_screen_flags_what_is_unhealthy() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    report = StatusReport(namespace="trakr", database="postgresql://…/trakr", up_running=True)
    report.processes = [
        ProcessHealth("ein", 10, "running", 0, False, True, True, "http://127.0.0.1:9102/metrics"),
        ProcessHealth(
            "hermes", None, "backoff", 4, True, False, False, "http://127.0.0.1:9104/metrics"
        ),
    ]
    report.streams = [StreamBacklog("trakr:scrapes", 3, "ein", 1, 2)]
    report.universities = [("sim", "Simulated University", now - timedelta(seconds=30), 300)]
    report.deliveries_last_hour = {"sent": 12, "failed": 1}
    report.fcm_errors_last_hour = [("INVALID_ARGUMENT", 1)]
    report.outbox = {"sent": 12, "collapsed": 3}
    text = render(report, now=now)
    assert "crash-looping" in text and "! unhealthy: hermes" in text
    assert "trakr:scrapes" in text and "pending 1" in text and "lag 2" in text
    assert "30s ago" in text and "12 sent, 1 failed" in text and "INVALID_ARGUMENT: 1" in text
    assert "collapsed 3, sent 12" in text
    assert not report.healthy
    report.processes.pop()
    assert report.healthy
