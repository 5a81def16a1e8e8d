"""Helpers for spike's integration tests: a small SQL-seeded catalogue, the app in-process, polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI
from support import (  # noqa: F401  (re-exported for the spike tests)
    NB_COURSES,
    OPEN_SECTIONS_1,
    OPEN_SECTIONS_2,
    REDIS_URL,
    create_database,
    drop_database,
)
from trakr.db import with_database
from trakr.settings import Settings
from trakr.spike.app import SpikeMiddleware, create_app

UNIVERSITY = "testu"
SUBJECT = "testu.198.spring.2026"
OTHER_SUBJECT = "testu.640.spring.2026"
COURSE = "testu.198.spring.2026.01-198-111"
EMPTY_COURSE = "testu.640.spring.2026.01-640-151"
SECTION_NUMBERS = ["01", "02", "03", "04", "05"]


def section_topic(number: str) -> str:
    return f"{COURSE}.{number}.1000{number[-1]}"


async def seed(dsn: str) -> None:
    """Insert a small catalogue: one university, two subjects, a course with five sections."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            university_id = await conn.fetchval(
                """INSERT INTO university (topic_name, topic_id, name, abbr, home_page, metadata)
                   VALUES ($1, 1, 'Test University', 'testu', 'https://testu.example',
                           '[{"title": "campus", "content": "main"}]') RETURNING id""",
                UNIVERSITY,
            )
            await conn.execute(
                "INSERT INTO semester VALUES ($1, 'spring', 2026), ($1, 'fall', 2025)",
                university_id,
            )
            await conn.execute(
                "INSERT INTO registration VALUES ($1, 'open', '2025-11-01T00:00:00Z'), ($1, 'tbd', NULL)",
                university_id,
            )
            subject_id = await conn.fetchval(
                """INSERT INTO subject (university_id, topic_name, topic_id, number, name, season, year,
                                        content_hash)
                   VALUES ($1, $2, 2, '198', 'Computer Science', 'spring', 2026, '\\x00') RETURNING id""",
                university_id,
                SUBJECT,
            )
            other_subject_id = await conn.fetchval(
                """INSERT INTO subject (university_id, topic_name, topic_id, number, name, season, year,
                                        content_hash)
                   VALUES ($1, $2, 3, '640', 'Mathematics', 'spring', 2026, '\\x00') RETURNING id""",
                university_id,
                OTHER_SUBJECT,
            )
            course_id = await conn.fetchval(
                """INSERT INTO course (subject_id, topic_name, topic_id, code, number, name, credits,
                                       content_hash)
                   VALUES ($1, $2, 4, '01-198-111', '111', 'Intro to Computer Science', '4', '\\x00')
                   RETURNING id""",
                subject_id,
                COURSE,
            )
            await conn.execute(
                """INSERT INTO course (subject_id, topic_name, topic_id, code, number, name, content_hash)
                   VALUES ($1, $2, 5, '01-640-151', '151', 'Calculus I', '\\x00')""",
                other_subject_id,
                EMPTY_COURSE,
            )
            for position, number in enumerate(SECTION_NUMBERS):
                section_id = await conn.fetchval(
                    """INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number,
                                            status, books, content_hash)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '\\x00') RETURNING id""",
                    course_id,
                    university_id,
                    section_topic(number),
                    100 + position,
                    f"1000{number[-1]}",
                    number,
                    "OPEN" if position % 2 == 0 else "CLOSED",
                    json.dumps([{"title": "SICP", "url": "https://example.org/sicp"}])
                    if position == 0
                    else "[]",
                )
                await conn.execute(
                    """INSERT INTO meeting (section_id, ordinal, day, start_time, end_time, room, building,
                                            campus, class_type)
                       VALUES ($1, 0, 'Monday', '09:00', '10:20', '101', 'HLL', 'BUSCH', 'LEC'),
                              ($1, 1, 'Wednesday', '09:00', '10:20', '101', 'HLL', 'BUSCH', 'LEC')""",
                    section_id,
                )
                await conn.execute(
                    "INSERT INTO instructor VALUES ($1, 0, 'TURING, ALAN'), ($1, 1, 'HOPPER, GRACE')",
                    section_id,
                )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app with its lifespan running, and a client talking to it in-process."""
    app = create_app(settings)
    assert isinstance(app, SpikeMiddleware)
    api = app.app
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://spike") as client:
            yield client, api


async def wait_for(predicate, *, timeout_seconds: float = 5.0, interval_seconds: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns something truthy; fail after the timeout."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_seconds)


def closed_port_dsn(dsn: str) -> str:
    return with_database(dsn, "nothing").replace("127.0.0.1:5432", "127.0.0.1:1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SpikeProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def spike_process(env: dict[str, str], *extra_args: str) -> Iterator[SpikeProcess]:
    """`trakr-spike` as a subprocess on a free port, ready (healthz 200); SIGTERMed on exit if alive.

    Its output goes to a file, not a pipe: nobody reads a pipe while it runs, and a full pipe
    would block the server.
    """
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "spike.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("trakr-spike")), "-p", str(port), *extra_args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        spike = SpikeProcess(process, f"http://127.0.0.1:{port}", log_path)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{spike.base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"trakr-spike did not start (rc {process.returncode}):\n{spike.output()}"
                    )
                time.sleep(0.1)
            yield spike
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
