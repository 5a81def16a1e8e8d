"""julia against real PostgreSQL and Redis: every change forwarded exactly once, through faults."""

from __future__ import annotations

import asyncio
from collections import Counter

import psycopg
import redis.asyncio as aioredis
from julia_helpers import Catalogue, metric, payload, running_julia, stream_entries, wait_until
from trakr.settings import Settings


async def assert_each_row_forwarded_once(
    catalogue: Catalogue, redis: aioredis.Redis, settings: Settings, *, expected: int
) -> list[dict[str, str]]:
    """Wait until `expected` rows are queued; the stream then holds exactly those ids, once each."""

    async def all_queued() -> bool:
        return (await catalogue.states()).get("queued", 0) >= expected

    await wait_until(all_queued, what=f"{expected} queued rows")
    entries = await stream_entries(redis, settings)
    ids = Counter(int(e["notification_id"]) for e in entries)
    assert [i for i, n in ids.items() if n > 1] == [], "a notification was forwarded twice"
    rows = await catalogue.query("SELECT id, state FROM notification ORDER BY id")
    assert len(rows) == expected
    assert {state for _, state in rows} == {"queued"}
    assert set(ids) == {row_id for row_id, _ in rows}
    return entries


async def test_thousand_changes_forwarded_exactly_once(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    sections = await catalogue.add_university("uni-a", 100)
    events = metric("trakr_julia_events_received_total")
    forwarded = metric("trakr_julia_notifications_forwarded_total", reason="immediate")
    async with running_julia(julia_settings):
        # 10 rounds over 100 sections: 1,000 changes in transactions of 10 to 100 rows.
        for round_ in range(10):
            status = "OPEN" if round_ % 2 == 0 else "CLOSED"
            if round_ % 3 == 0:
                await catalogue.set_status(sections, status)
            else:
                for start in range(0, 100, 10):
                    await catalogue.set_status(sections[start : start + 10], status)
        entries = await assert_each_row_forwarded_once(
            catalogue, redis_client, julia_settings, expected=1000
        )
    # One NOTIFY per outbox row woke julia; each row counted once as forwarded.
    assert metric("trakr_julia_events_received_total") - events == 1000
    assert (
        metric("trakr_julia_notifications_forwarded_total", reason="immediate") - forwarded == 1000
    )

    # The message carries what hermes needs, names joined from the catalogue.
    first = entries[0]
    assert set(first) == {
        "notification_id",
        "topic_name",
        "status",
        "university",
        "payload",
        "created_at",
    }
    body = payload(first)
    assert body["notification_id"] == int(first["notification_id"])
    assert body["university"] == "uni-a" == first["university"]
    assert body["status"] == "OPEN" and body["old_status"] == "CLOSED"
    assert body["course_name"] == "Intro to Computer Science"
    assert body["subject_name"] == "Computer Science"
    assert body["section_number"] and body["section_index"]
    assert float(first["created_at"]) > 0
    # Per topic, the stream order is the change order.
    per_topic: dict[str, list[int]] = {}
    for entry in entries:
        per_topic.setdefault(entry["topic_name"], []).append(int(entry["notification_id"]))
    assert all(ids == sorted(ids) for ids in per_topic.values())


async def test_backlog_made_while_stopped_is_caught_up(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    sections = await catalogue.add_university("uni-a", 100)
    async with running_julia(julia_settings):
        pass
    before = metric("trakr_julia_catchup_rows_total")
    for status in ("OPEN", "CLOSED", "OPEN", "CLOSED", "OPEN"):
        await catalogue.set_status(sections, status)
    assert (await catalogue.states()) == {"new": 500}
    async with running_julia(julia_settings):
        await assert_each_row_forwarded_once(catalogue, redis_client, julia_settings, expected=500)
    assert metric("trakr_julia_catchup_rows_total") - before >= 500


async def test_connections_terminated_mid_stream_lose_nothing(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    sections = await catalogue.add_university("uni-a", 50)
    reconnects = metric("trakr_julia_listener_reconnects_total")

    async def kill_julia_connections() -> int:
        rows = await catalogue.query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'trakr-julia-%%'"
        )
        return int(rows[0][0])

    async with running_julia(julia_settings):
        await wait_until(lambda: _listening(catalogue), what="julia listening")
        for round_ in range(20):
            await catalogue.set_status(sections, "OPEN" if round_ % 2 == 0 else "CLOSED")
            if round_ in (5, 12):
                assert await kill_julia_connections() >= 1
            await asyncio.sleep(0.02)
        await assert_each_row_forwarded_once(catalogue, redis_client, julia_settings, expected=1000)
        await wait_until(lambda: _listening(catalogue), what="julia listening again")
    assert metric("trakr_julia_listener_reconnects_total") - reconnects >= 2


async def _listening(catalogue: Catalogue) -> bool:
    rows = await catalogue.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'trakr-julia-listen'"
    )
    return bool(rows)


async def test_two_julias_never_forward_a_row_twice(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    # Few sections, many changes each: both julias fight over the same topics. A julia that
    # took a later row of a topic while the other still held an earlier one would see a stale
    # "last sent" status equal to its row's and collapse it; so every row must end queued.
    sections = await catalogue.add_university("uni-a", 20)
    small_batches = julia_settings.model_copy(update={"julia_batch_size": 3})
    async with running_julia(small_batches), running_julia(small_batches):
        writers = [
            catalogue.flip(sections[i : i + 5], ["OPEN", "CLOSED"] * 10) for i in range(0, 20, 5)
        ]
        await asyncio.gather(*writers)
        await assert_each_row_forwarded_once(catalogue, redis_client, julia_settings, expected=400)


async def test_crash_between_xadd_and_commit_neither_loses_nor_duplicates(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    sections = await catalogue.add_university("uni-a", 30)
    crashes: list[list[int]] = []

    def crash_once(ids: list[int]) -> None:
        if not crashes:
            crashes.append(ids)
            raise RuntimeError("simulated crash after XADD, before COMMIT")

    suppressed = metric("trakr_julia_duplicates_suppressed_total")
    await catalogue.set_status(sections, "OPEN")
    async with running_julia(julia_settings, after_xadd=crash_once):
        await assert_each_row_forwarded_once(catalogue, redis_client, julia_settings, expected=30)
    assert len(crashes[0]) == 30
    assert metric("trakr_julia_duplicates_suppressed_total") - suppressed == 30
    assert metric("trakr_julia_batch_errors_total", kind="other") >= 1


async def test_section_gone_from_the_catalogue_is_still_forwarded(
    catalogue: Catalogue, julia_settings: Settings, redis_client: aioredis.Redis
) -> None:
    sections = await catalogue.add_university("uni-a", 2)
    async with await psycopg.AsyncConnection.connect(catalogue.dsn) as conn:
        await conn.execute("UPDATE section SET status = 'OPEN' WHERE id = ANY(%s)", (sections,))
        await conn.execute("DELETE FROM section WHERE id = %s", (sections[0],))
    async with running_julia(julia_settings):
        entries = await assert_each_row_forwarded_once(
            catalogue, redis_client, julia_settings, expected=2
        )
    bodies = {payload(e)["section_index"]: payload(e) for e in entries}
    assert (
        None in bodies and bodies[None]["course_name"] is None and bodies[None]["status"] == "OPEN"
    )
    assert len(bodies) == 2
