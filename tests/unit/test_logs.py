"""JSON log lines, and the runtime helpers every service shares (Backoff, sleep_or_stop)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from trakr.logs import JsonFormatter, configure_logging
from trakr.runtime import Backoff, sleep_or_stop


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("trakr.test", logging.WARNING, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_one_json_object_with_extras() -> None:
    line = JsonFormatter("jet").format(
        record("scraped %d sections", 5, event="scraped", university="sim")
    )
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["service"] == "jet"
    assert entry["logger"] == "trakr.test"
    assert entry["msg"] == "scraped 5 sections"
    assert entry["event"] == "scraped"
    assert entry["university"] == "sim"
    assert entry["ts"].endswith("+00:00")
    assert "\n" not in line
    assert "args" not in entry and "levelno" not in entry  # only extras, not LogRecord internals


def test_unserialisable_extras_and_exceptions_stay_one_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        rec = record("failed", event="x", path=object())
        rec.exc_info = sys.exc_info()
    line = JsonFormatter("ein").format(rec)
    assert "\n" not in line
    entry = json.loads(line)
    assert "ValueError: boom" in entry["exc"]
    assert entry["path"].startswith("<object object")


def test_non_ascii_is_kept() -> None:
    entry = json.loads(JsonFormatter("spike").format(record("Rutgers University\u2013Camden")))
    assert entry["msg"] == "Rutgers University\u2013Camden"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_writes_json_to_stdout(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("hermes", "INFO")
    logging.getLogger("trakr.hermes").info("sent %d", 3, extra={"event": "sent"})
    logging.getLogger("trakr.hermes").debug("hidden")
    logging.getLogger("httpx").info("library chatter")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["sent 3"]
    assert json.loads(lines[0])["event"] == "sent"


def test_backoff_grows_to_the_cap_and_resets() -> None:
    backoff = Backoff(base_seconds=0.1, max_seconds=2.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert 0.05 <= delays[0] <= 0.1
    assert 0.1 <= delays[1] <= 0.2
    assert all(0 < d <= 2.0 for d in delays)
    assert all(d >= 1.0 for d in delays[6:])  # capped ceiling 2.0, jitter keeps at least half
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_backoff_survives_a_very_long_outage() -> None:
    backoff = Backoff(base_seconds=0.1, max_seconds=10.0)
    backoff.attempt = 5000  # 2**5000 does not fit in a float
    assert 5.0 <= backoff.next_delay() <= 10.0


async def test_sleep_or_stop() -> None:
    stop = asyncio.Event()
    assert await sleep_or_stop(0.01, stop) is True
    assert await sleep_or_stop(0.01, None) is True
    stop.set()
    assert await asyncio.wait_for(sleep_or_stop(60, stop), timeout=5) is False


async def test_backoff_wait_returns_early_on_stop() -> None:
    stop = asyncio.Event()
    stop.set()
    backoff = Backoff(base_seconds=30, max_seconds=60)
    assert await asyncio.wait_for(backoff.wait(stop, what="connect"), timeout=5) is False
    assert backoff.attempt == 1
