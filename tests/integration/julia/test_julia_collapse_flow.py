"""Flap collapsing end to end: short windows (1-1.5 s), real outbox rows, real stream."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from julia_helpers import Catalogue, metric, payload, running_julia, stream_entries, wait_until
from trakr.settings import Settings

WINDOW_SECONDS = 1.5


def with_collapse(settings: Settings, collapse: str) -> Settings:
    return settings.model_copy(update={"collapse": collapse})


async def settled(catalogue: Catalogue) -> bool:
    """No row left new or held."""
    states = await catalogue.states()
    return states.get("new", 0) == 0 and states.get("held", 0) == 0


async def test_open_closed_open_inside_the_window_is_one_message(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    settings = with_collapse(julia_settings, f"uni-a={WINDOW_SECONDS}s")
    (section,) = await catalogue.add_university("uni-a", 1)
    collapsed = metric("trakr_julia_flaps_collapsed_total")
    async with running_julia(settings):
        await catalogue.flip([section], ["OPEN", "CLOSED", "OPEN"], pause_seconds=0.1)
        await wait_until(lambda: _held(catalogue, 2), what="two held rows")
        await wait_until(lambda: settled(catalogue), what="window resolved")
    entries = await stream_entries(redis_client, settings)
    assert [e["status"] for e in entries] == ["OPEN"]
    rows = await catalogue.query(
        "SELECT id, new_status, state, collapsed_into FROM notification ORDER BY id"
    )
    first = rows[0][0]
    assert rows == [
        (first, "OPEN", "queued", None),
        (first + 1, "CLOSED", "collapsed", first),
        (first + 2, "OPEN", "collapsed", first),
    ]
    assert metric("trakr_julia_flaps_collapsed_total") - collapsed == 2


async def test_open_closed_inside_the_window_is_two_messages(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    settings = with_collapse(julia_settings, f"uni-a={WINDOW_SECONDS}s")
    (section,) = await catalogue.add_university("uni-a", 1)
    async with running_julia(settings):
        await catalogue.flip([section], ["OPEN", "CLOSED"], pause_seconds=0.1)
        await wait_until(lambda: _stream_len(redis_client, settings, 2), what="second message")
        assert await settled(catalogue)
    entries = await stream_entries(redis_client, settings)
    assert [e["status"] for e in entries] == ["OPEN", "CLOSED"]
    assert payload(entries[1])["old_status"] == "OPEN"
    # The second went out when the window opened by the first closed, not before.
    rows = await catalogue.query(
        "SELECT state, created_at, queued_at FROM notification ORDER BY id"
    )
    assert [state for state, _, _ in rows] == ["queued", "queued"]
    assert (rows[1][2] - rows[0][1]).total_seconds() >= WINDOW_SECONDS


async def test_universities_have_their_own_windows(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    # uni-a flaps are folded (1.5 s window, matched by prefix uni-a-nb), uni-b's go out at once
    # (default 0 s), uni-c has a 1 s window of its own.
    settings = with_collapse(julia_settings, f"uni-a={WINDOW_SECONDS}s,uni-c=1s,default=0")
    (a,) = await catalogue.add_university("uni-a-nb", 1)
    (b,) = await catalogue.add_university("uni-b", 1)
    (c,) = await catalogue.add_university("uni-c", 1)
    async with running_julia(settings):
        started = time.monotonic()
        await catalogue.flip([a, b, c], ["OPEN", "CLOSED", "OPEN", "CLOSED"], pause_seconds=0.05)
        await wait_until(
            lambda: _stream_len(redis_client, settings, 4 + 2 + 2), what="all messages"
        )
        await wait_until(lambda: settled(catalogue), what="windows resolved")
        elapsed = time.monotonic() - started
    by_university: dict[str, list[str]] = {}
    for entry in await stream_entries(redis_client, settings):
        by_university.setdefault(entry["university"], []).append(entry["status"])
    assert by_university == {
        "uni-a-nb": ["OPEN", "CLOSED"],
        "uni-b": ["OPEN", "CLOSED", "OPEN", "CLOSED"],
        "uni-c": ["OPEN", "CLOSED"],
    }
    assert elapsed >= WINDOW_SECONDS - 0.2


async def test_held_rows_survive_a_restart(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    settings = with_collapse(julia_settings, "default=2s")
    (section,) = await catalogue.add_university("uni-a", 1)
    async with running_julia(settings):
        await catalogue.flip([section], ["OPEN", "CLOSED"])
        await wait_until(lambda: _held(catalogue, 1), what="a held row")
        await wait_until(
            lambda: _gauge("trakr_julia_held_notifications", 1.0), what="held gauge at 1"
        )
    # julia is gone; the held state is in the row, with the time its window closes.
    rows = await catalogue.query(
        "SELECT state, window_ends_at > now() FROM notification ORDER BY id"
    )
    assert rows == [("queued", True), ("held", True)]
    assert len(await stream_entries(redis_client, settings)) == 1

    # A new julia (window still open) must wake up when it closes, without any new event.
    async with running_julia(settings.model_copy(update={"julia_poll_seconds": 30.0})):
        await wait_until(
            lambda: _stream_len(redis_client, settings, 2), timeout_seconds=10, what="held row sent"
        )
    assert [e["status"] for e in await stream_entries(redis_client, settings)] == ["OPEN", "CLOSED"]
    assert await settled(catalogue)


async def test_held_rows_whose_window_closed_while_down_are_resolved_on_start(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    settings = with_collapse(julia_settings, "default=1s")
    (section,) = await catalogue.add_university("uni-a", 1)
    async with running_julia(settings):
        await catalogue.flip([section], ["OPEN", "CLOSED", "OPEN"])
        await wait_until(lambda: _held(catalogue, 2), what="held rows")
    await asyncio.sleep(1.2)
    async with running_julia(settings):
        await wait_until(lambda: settled(catalogue), what="held rows resolved")
    assert [e["status"] for e in await stream_entries(redis_client, settings)] == ["OPEN"]
    states = await catalogue.query("SELECT state FROM notification ORDER BY id")
    assert [s for (s,) in states] == ["queued", "collapsed", "collapsed"]


async def _gauge(name: str, value: float) -> bool:
    return metric(name) == value


async def _held(catalogue: Catalogue, count: int) -> bool:
    return (await catalogue.states()).get("held", 0) == count


async def _stream_len(redis: aioredis.Redis, settings: Settings, count: int) -> bool:
    return len(await stream_entries(redis, settings)) >= count
