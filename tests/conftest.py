"""Shared fixtures: a real PostgreSQL database and a real Redis namespace per test.

A once-per-run template database gets every migration; each test clones it
(`CREATE DATABASE … TEMPLATE`), which is fast and fully isolated. Redis keys live under a
per-test namespace that is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

# Tests must never pick up an operator's configuration (procrastinate does the same).
for _name in [
    name for name in os.environ if name.startswith("TRAKR_") and not name.startswith("TRAKR_TEST_")
]:
    del os.environ[_name]
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)

import pytest  # noqa: E402
import redis as sync_redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from support import REDIS_URL, SERVER_DSN, create_database, drop_database  # noqa: E402
from trakr.db import with_database  # noqa: E402
from trakr.migrate import migrate  # noqa: E402
from trakr.settings import Settings  # noqa: E402


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A migrated database used only as a template; its name, dropped after the run."""
    dsn = with_database(SERVER_DSN, f"trakr_template_{uuid.uuid4().hex[:12]}")
    migrate(dsn)
    yield dsn.rsplit("/", 1)[1]
    drop_database(dsn)


@pytest.fixture
def database_dsn(template_database: str) -> Iterator[str]:
    """DSN of a fresh, fully migrated database of this test's own."""
    dsn = create_database(template_database)
    yield dsn
    drop_database(dsn)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    ns = f"trakrtest-{uuid.uuid4().hex[:12]}"
    yield ns
    client = sync_redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{ns}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(database_dsn: str, namespace: str) -> Settings:
    """Settings pointing at this test's database and Redis namespace, metrics off."""
    return Settings(
        postgres_dsn=database_dsn, redis_url=REDIS_URL, namespace=namespace, metrics_port=0
    )


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def subprocess_env(settings: Settings) -> dict[str, str]:
    """Environment for a trakr process started by a test: this test's database and namespace."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    env.update(
        TRAKR_POSTGRES_DSN=settings.postgres_dsn,
        TRAKR_REDIS_URL=settings.redis_url,
        TRAKR_NAMESPACE=settings.namespace,
        TRAKR_METRICS_PORT="0",
    )
    return env
