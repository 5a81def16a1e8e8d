"""spike fixtures: the seeded catalogue, the app with its lifespan, an HTTP client, the NB data.

Real-data tests (the Rutgers NB snapshot ingested by ein) use `nb_settings`: NB is loaded once
per session into a template database and every test clones it (CREATE DATABASE … TEMPLATE).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
from spike_helpers import (
    NB_COURSES,
    OPEN_SECTIONS_1,
    REDIS_URL,
    create_database,
    drop_database,
    running,
    seed,
)
from trakr.settings import Settings


@pytest.fixture(scope="session")
def seeded_database(template_database: str) -> Iterator[str]:
    """One seeded database shared by every read-only test (its DSN); cloning per test is slow."""
    dsn = create_database(template_database)
    asyncio.run(seed(dsn))
    yield dsn
    drop_database(dsn)


@pytest.fixture
def seeded_settings(seeded_database: str, namespace: str) -> Settings:
    """Settings for read-only tests: the shared seeded database, this test's Redis namespace."""
    return Settings(
        postgres_dsn=seeded_database, redis_url=REDIS_URL, namespace=namespace, metrics_port=0
    )


@pytest.fixture
async def writable_settings(settings: Settings) -> Settings:
    """Settings for tests that write: a seeded database of this test's own."""
    await seed(settings.postgres_dsn)
    return settings


@pytest.fixture
async def client(seeded_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(seeded_settings) as (http, _):
        yield http


# --- the real NB data, ingested once per session by ein ------------------------------------------


@pytest.fixture(scope="session")
def nb_template(template_database: str) -> Iterator[str]:
    """A database holding the NB snapshot as ein writes it; its name (used only as a template)."""
    ingest_mod = pytest.importorskip("trakr.ein.ingest")
    rutgers = pytest.importorskip("trakr.scrapers.rutgers")
    dsn = create_database(template_database)

    async def load() -> None:
        university = rutgers.load_university(
            NB_COURSES, OPEN_SECTIONS_1, campus="NB", season="spring", year=2026
        )
        conn = await asyncpg.connect(dsn)
        try:
            await ingest_mod.ingest_university(conn, university)
        finally:
            await conn.close()

    asyncio.run(load())
    yield dsn.rsplit("/", 1)[1]
    drop_database(dsn)


@pytest.fixture
def nb_settings(nb_template: str, settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh clone of the NB database."""
    dsn = create_database(nb_template)
    yield settings.model_copy(update={"postgres_dsn": dsn})
    drop_database(dsn)
