"""One scrape against a real Redis: every misbehaving scraper is rejected for its own reason."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from jet_spacing import jet_settings, scraper_command
from prometheus_client import REGISTRY
from trakr.codec import decode_university, encode_university
from trakr.jet.service import Jet
from trakr.scrapers.sim import simulate


def scrapes_total(result: str) -> float:
    return REGISTRY.get_sample_value("trakr_jet_scrapes_total", {"result": result}) or 0.0


@pytest.fixture
def stop() -> asyncio.Event:
    return asyncio.Event()


REJECTIONS = [
    (["garbage.py"], "parse_error"),
    (["truncated.py"], "parse_error"),
    (["exit1.py"], "exit_status"),
    (["sleeper.py"], "timeout"),
    (["huge.py"], "too_large"),
    (["nothing.py"], "empty"),
    (["university.py", "no_name"], "no_name"),
    (["university.py", "no_subjects"], "no_subjects"),
    (["university.py", "duplicate_section"], "duplicate_section"),
    (["university.py", "bad_status"], "bad_status"),
]


@pytest.mark.parametrize(
    ("scraper", "reason"), REJECTIONS, ids=[" ".join(s) for s, _ in REJECTIONS]
)
async def test_rejected_for_its_own_reason_then_jet_goes_on(
    scraper: list[str],
    reason: str,
    namespace: str,
    redis_client: aioredis.Redis,
    stop: asyncio.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = jet_settings(namespace)
    before = scrapes_total(reason)
    bad = Jet(settings, scraper_command(*scraper), redis_client, stop=stop)
    started = time.monotonic()
    outcome = await bad.scrape_once(redis_budget_seconds=1)
    assert outcome.result == reason, outcome
    assert not outcome.ok
    assert time.monotonic() - started < 10
    assert scrapes_total(reason) == before + 1
    rejected = [r for r in caplog.records if getattr(r, "event", None) == "scrape_rejected"]
    assert len(rejected) == 1
    assert rejected[0].levelno == logging.ERROR
    assert f"scrape rejected ({reason})" in rejected[0].getMessage()
    assert await redis_client.xlen(settings.key("scrapes")) == 0
    # The same process scrapes on afterwards.
    good = Jet(settings, scraper_command("university.py"), redis_client, stop=stop)
    assert (await good.scrape_once(redis_budget_seconds=1)).result == "queued"
    assert await redis_client.xlen(settings.key("scrapes")) == 1


async def test_stderr_is_relayed_line_by_line(
    namespace: str,
    redis_client: aioredis.Redis,
    stop: asyncio.Event,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    jet = Jet(jet_settings(namespace), scraper_command("exit1.py"), redis_client, stop=stop)
    await jet.scrape_once(redis_budget_seconds=1)
    relayed = [
        r.getMessage() for r in caplog.records if getattr(r, "event", None) == "scraper_stderr"
    ]
    assert relayed == ["fixture: upstream returned 500, giving up"]


async def test_accepted_scrape_is_queued_with_the_contract_fields(
    namespace: str, redis_client: aioredis.Redis, stop: asyncio.Event, tmp_path: Path
) -> None:
    settings = jet_settings(namespace, jet_daemon_dir=tmp_path / "out", jet_stream_maxlen=5)
    jet = Jet(settings, scraper_command("university.py"), redis_client, stop=stop)
    before = time.time()
    outcome = await jet.scrape_once(redis_budget_seconds=1)
    assert outcome.result == "queued"
    [(entry_id, fields)] = await redis_client.xrange(settings.key("scrapes"))
    assert entry_id.decode() == outcome.entry_id
    assert fields[b"university"] == b"test-u"
    assert fields[b"scraper"] == b"fixture"
    assert fields[b"format"] == b"protobuf"
    payload = fields[b"payload"]
    assert fields[b"sha256"].decode() == hashlib.sha256(payload).hexdigest()
    assert int(fields[b"bytes"]) == len(payload)
    started_at, scraped_at = float(fields[b"started_at"]), float(fields[b"scraped_at"])
    assert before <= started_at <= scraped_at <= time.time()
    university = decode_university(payload, "protobuf")
    sections = university.subjects[0].courses[0].sections
    # Re-encoded with topics filled, so ein gets them ready-made.
    assert [s.topic_name for s in sections] == [
        "test-u.198.spring.2026.01-111.01.09214",
        "test-u.198.spring.2026.01-111.02.09215",
    ]
    # --daemon-dir: the same bytes, written atomically (no temp file left behind).
    [written] = (tmp_path / "out").iterdir()
    assert written.name.startswith("test-u-") and written.name.endswith("Z.pb")
    assert written.read_bytes() == payload
    assert REGISTRY.get_sample_value("trakr_jet_last_success_timestamp_seconds") >= before


async def test_identical_output_is_skipped_only_when_configured(
    namespace: str, redis_client: aioredis.Redis, stop: asyncio.Event
) -> None:
    settings = jet_settings(namespace)
    jet = Jet(settings, scraper_command("university.py"), redis_client, stop=stop)
    assert (await jet.scrape_once(redis_budget_seconds=1)).result == "queued"
    # Another replica of the same scraper sees the same shared last hash.
    other = Jet(settings, scraper_command("university.py"), redis_client, stop=stop)
    assert (await other.scrape_once(redis_budget_seconds=1)).result == "unchanged"
    changed = Jet(settings, scraper_command("university.py", "changing"), redis_client, stop=stop)
    assert (await changed.scrape_once(redis_budget_seconds=1)).result == "queued"
    assert (
        await jet.scrape_once(redis_budget_seconds=1)
    ).result == "queued"  # A -> B -> A is a change
    assert await redis_client.xlen(settings.key("scrapes")) == 3
    always = Jet(
        jet_settings(namespace, jet_skip_unchanged=False), jet.command, redis_client, stop=stop
    )
    assert (await always.scrape_once(redis_budget_seconds=1)).result == "queued"
    assert await redis_client.xlen(settings.key("scrapes")) == 4


async def test_json_output_format(
    namespace: str, redis_client: aioredis.Redis, stop: asyncio.Event
) -> None:
    settings = jet_settings(namespace, jet_output_format="json")
    jet = Jet(settings, scraper_command("university.py"), redis_client, stop=stop)
    assert (await jet.scrape_once(redis_budget_seconds=1)).result == "queued"
    [(_, fields)] = await redis_client.xrange(settings.key("scrapes"))
    assert fields[b"format"] == b"json"
    assert decode_university(fields[b"payload"], "json").name == "Test University"


async def test_consecutive_protobuf_scrapes_are_queued_as_the_scraper_printed_them(
    namespace: str, redis_client: aioredis.Redis, stop: asyncio.Event
) -> None:
    """protobuf in and out, topics filled: the known-subjects short cut, through a real child."""
    settings = jet_settings(namespace, jet_input_format="protobuf")
    sim = [sys.executable, "-m", "trakr.scrapers.sim", "--sections", "300", "--format", "protobuf"]
    jet = Jet(settings, sim, redis_client, stop=stop)
    expected = []
    for tick, result in ((1, "queued"), (3, "queued"), (3, "unchanged"), (4, "queued")):
        jet.command = [*sim, "--tick", str(tick)]
        outcome = await jet.scrape_once(redis_budget_seconds=1)
        assert outcome.result == result, outcome
        if result == "queued":
            assert "300 sections" in outcome.message
            expected.append(encode_university(simulate(sections=300, tick=tick), "protobuf"))
    entries = await redis_client.xrange(settings.key("scrapes"))
    assert [fields[b"payload"] for _, fields in entries] == expected
    assert all(fields[b"university"] == b"sim" for _, fields in entries)


async def test_redis_down_counts_a_failed_scrape_and_does_not_raise(
    namespace: str, stop: asyncio.Event
) -> None:
    settings = jet_settings(namespace, redis_url="redis://127.0.0.1:1/0")
    dead = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=0.5)
    try:
        jet = Jet(settings, scraper_command("university.py"), dead, stop=stop)
        before = scrapes_total("redis_unavailable")
        started = time.monotonic()
        outcome = await jet.scrape_once(redis_budget_seconds=1.5)
        assert outcome.result == "redis_unavailable"
        assert time.monotonic() - started < 6
        assert scrapes_total("redis_unavailable") == before + 1
    finally:
        await dead.aclose()


async def test_timeout_kills_the_whole_process_group(
    namespace: str, redis_client: aioredis.Redis, stop: asyncio.Event, tmp_path: Path
) -> None:
    pidfile = tmp_path / "helper.pid"
    jet = Jet(
        jet_settings(namespace),
        scraper_command("sleeper.py", str(pidfile)),
        redis_client,
        stop=stop,
    )
    assert (await jet.scrape_once(redis_budget_seconds=1)).result == "timeout"
    assert not _alive(int(pidfile.read_text()))


async def test_shutdown_kills_the_scraper(
    namespace: str, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    pidfile = tmp_path / "helper.pid"
    settings = jet_settings(namespace, jet_timeout_seconds=60)
    jet = Jet(settings, scraper_command("sleeper.py", str(pidfile)), redis_client, stop=stop)
    task = asyncio.create_task(jet.scrape_once(redis_budget_seconds=1))
    # The pid file is written by another process: polling is the only way to see it.
    while not pidfile.exists() or not pidfile.read_text():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    stop.set()
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.result == "stopped"
    assert not _alive(int(pidfile.read_text()))


async def test_missing_executable_is_a_rejection(
    namespace: str, redis_client: aioredis.Redis, stop: asyncio.Event
) -> None:
    jet = Jet(jet_settings(namespace), ["/nonexistent/scraper"], redis_client, stop=stop)
    outcome = await jet.scrape_once(redis_budget_seconds=1)
    assert outcome.result == "exec_error"


def _alive(pid: int, *, wait_seconds: float = 2.0) -> bool:
    """True if the process still runs after `wait_seconds` (a zombie counts as dead: this
    container's init may not reap orphans)."""
    deadline = time.monotonic() + wait_seconds
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _running(pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
