"""What every test tier shares: where the servers and the real data are, and database helpers.

`tests/` is on the import path (pytest `pythonpath`), so any test or helper can
`from support import …`; the fixtures built on these live in tests/conftest.py.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from trakr.db import with_database

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


def new_database_dsn() -> str:
    """The DSN of a uniquely named database that does not exist yet."""
    return with_database(SERVER_DSN, f"trakr_test_{uuid.uuid4().hex[:12]}")


def create_database(template: str | None = None) -> str:
    """Create a uniquely named database (a clone of `template` if given); its DSN."""
    dsn = new_database_dsn()
    name = sql.Identifier(dsn.rsplit("/", 1)[1])
    query = sql.SQL("CREATE DATABASE {}").format(name)
    if template:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(name, sql.Identifier(template))
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(query)
    return dsn


def drop_database(dsn: str) -> None:
    """Drop the DSN's database, disconnecting whoever is still connected."""
    name = sql.Identifier(dsn.rsplit("/", 1)[1])
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
