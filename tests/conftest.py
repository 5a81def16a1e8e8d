"""Shared fixtures: a real PostgreSQL database and a real Redis namespace per test.

A once-per-run template database gets every migration; each test clones it
(`CREATE DATABASE … TEMPLATE`), which is fast and fully isolated. Redis keys live under a
per-test namespace that is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# Tests must never pick up an operator's configuration (procrastinate does the same).
for _name in [
    name for name in os.environ if name.startswith("TRAKR_") and not name.startswith("TRAKR_TEST_")
]:
    del os.environ[_name]
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)

import psycopg  # noqa: E402
import pytest  # noqa: E402
import redis as sync_redis  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from psycopg import sql  # noqa: E402
from trakr.db import with_database  # noqa: E402
from trakr.migrate import migrate  # noqa: E402
from trakr.settings import Settings  # noqa: E402

SERVER_DSN = os.environ.get(
    "TRAKR_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TRAKR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("TRAKR_TEST_REALDATA", REPO.parent / "shared" / "realdata"))
NB_COURSES = REALDATA / "rutgers_2026spring_NB_courses_2025-11-15T200031Z.json.gz"
NK_COURSES = REALDATA / "rutgers_2026spring_NK_courses_2025-11-15T200032Z.json.gz"
CM_COURSES = REALDATA / "rutgers_2026spring_CM_courses_2025-11-15T200032Z.json.gz"
OPEN_SECTIONS_1 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T200031Z.json"
OPEN_SECTIONS_2 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T202526Z.json"


def _admin() -> psycopg.Connection:
    return psycopg.connect(SERVER_DSN, autocommit=True)


def create_database(template: str | None = None) -> str:
    """Create a uniquely named database (from `template` if given) and return its DSN."""
    name = f"trakr_test_{uuid.uuid4().hex[:12]}"
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with _admin() as conn:
        conn.execute(query)
    return with_database(SERVER_DSN, name)


def drop_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1]
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


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
