"""julia test helpers: a small catalogue in the test database, status flips, julia in-process.

A plain module (not conftest) so tests can import it; the fixtures live in conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from trakr import streams
from trakr.julia.collapse import parse_collapse
from trakr.julia.service import Julia
from trakr.settings import Settings


@dataclass
class Catalogue:
    """Sections of one test database, grouped by university topic name."""

    dsn: str
    sections: dict[str, list[int]]

    async def add_university(
        self, topic: str, sections: int, *, status: str = "CLOSED"
    ) -> list[int]:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            base = (len(self.sections) + 1) * 1_000_000
            cur = await conn.execute(
                "INSERT INTO university (topic_name, topic_id, name, abbr) VALUES (%s, %s, %s, %s) RETURNING id",
                (topic, base, f"University {topic}", topic.upper()),
            )
            (university_id,) = await cur.fetchone()  # type: ignore[misc]
            cur = await conn.execute(
                "INSERT INTO subject (university_id, topic_name, topic_id, number, name, season, year, content_hash)"
                " VALUES (%s, %s, %s, '198', 'Computer Science', 'spring', 2026, '\\x00') RETURNING id",
                (university_id, f"{topic}.198", base + 1),
            )
            (subject_id,) = await cur.fetchone()  # type: ignore[misc]
            cur = await conn.execute(
                "INSERT INTO course (subject_id, topic_name, topic_id, code, number, name, content_hash)"
                " VALUES (%s, %s, %s, '01:198:111', '111', 'Intro to Computer Science', '\\x00') RETURNING id",
                (subject_id, f"{topic}.198.spring.2026.111", base + 2),
            )
            (course_id,) = await cur.fetchone()  # type: ignore[misc]
            cur = await conn.execute(
                "INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number, status,"
                " content_hash)"
                " SELECT %(course)s, %(university)s, %(topic)s || '.198.spring.2026.111.' || lpad(i::text, 2, '0')"
                "  || '.' || (10000 + i), %(base)s + 10 + i, (10000 + i)::text, lpad(i::text, 2, '0'), %(status)s,"
                "  '\\x00'"
                " FROM generate_series(1, %(n)s) AS i ORDER BY i RETURNING id",
                {
                    "course": course_id,
                    "university": university_id,
                    "topic": topic,
                    "base": base,
                    "status": status,
                    "n": sections,
                },
            )
            ids = [row[0] for row in await cur.fetchall()]
        self.sections[topic] = ids
        return ids

    async def set_status(self, section_ids: list[int], status: str) -> None:
        """One UPDATE (one transaction) setting `status` on every given section."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(
                "UPDATE section SET status = %s WHERE id = ANY(%s)", (status, section_ids)
            )

    async def flip(
        self, section_ids: list[int], statuses: list[str], *, pause_seconds: float = 0.0
    ) -> None:
        """One transaction per status in turn, on one connection."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            for status in statuses:
                await conn.execute(
                    "UPDATE section SET status = %s WHERE id = ANY(%s)", (status, section_ids)
                )
                if pause_seconds:
                    await asyncio.sleep(pause_seconds)

    async def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def states(self) -> dict[str, int]:
        rows = await self.query("SELECT state, count(*) FROM notification GROUP BY state")
        return {state: count for state, count in rows}


@contextlib.asynccontextmanager
async def running_julia(settings: Settings, **kwargs: Any) -> AsyncIterator[Julia]:
    """julia in this event loop until the block ends (then a clean stop, exit code 0 checked)."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    julia = Julia(settings, parse_collapse(settings.collapse), redis=redis, **kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(julia.run(stop))
    try:
        yield julia
    finally:
        stop.set()
        code = await asyncio.wait_for(task, timeout=15)
        await redis.aclose()
    assert code == 0


async def stream_entries(redis: aioredis.Redis, settings: Settings) -> list[dict[str, str]]:
    """Every entry of the notifications stream, decoded, oldest first."""
    raw = await redis.xrange(settings.key(streams.NOTIFICATIONS))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in raw]


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout_seconds: float = 30.0,
    what: str = "condition",
) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def payload(entry: dict[str, str]) -> dict[str, Any]:
    return json.loads(entry["payload"])  # type: ignore[no-any-return]
