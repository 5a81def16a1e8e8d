"""`trakr migrate`: create the database if missing and apply the new numbered migrations.

Safe to run twice and concurrently: a session advisory lock serialises migrators, and each
migration is applied and recorded in one transaction.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import psycopg
from psycopg import sql

from trakr.db import database_name, psycopg_connect, redact, with_database
from trakr.errors import TrakrError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "sql" / "migrations"
_MIGRATION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x7472616B72  # "trakr"


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    """(version, path) of every migration file, in order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files are named NNNN_short_description.sql")
        found.append((match.group(1), path))
    return found


def ensure_database(dsn: str) -> bool:
    """Create the DSN's database if it does not exist; True when it was created now."""
    name = database_name(dsn)
    with psycopg_connect(with_database(dsn, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False  # a concurrent migrator created it first
        except psycopg.errors.UniqueViolation:
            return False  # the same race, reported through pg_database's unique index
    logger.info("created database %s", name, extra={"event": "database_created"})
    return True


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet recorded; return the versions applied now."""
    ensure_database(dsn)
    applied_now: list[str] = []
    with psycopg_connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migration (
                       version    text PRIMARY KEY,
                       name       text NOT NULL,
                       sha256     text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                row[0]: row[1]
                for row in conn.execute("SELECT version, sha256 FROM schema_migration")
            }
            for version, path in migration_files(directory):
                text = path.read_text()
                digest = hashlib.sha256(text.encode()).hexdigest()
                if version in done:
                    if done[version] != digest:
                        logger.warning(
                            "migration %s changed after it was applied",
                            path.name,
                            extra={"event": "migration_drift"},
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(text)
                        conn.execute(
                            "INSERT INTO schema_migration (version, name, sha256) VALUES (%s, %s, %s)",
                            (version, path.name, digest),
                        )
                except psycopg.Error as exc:
                    # A broken migration is an operator's problem: one readable line, not a traceback
                    # (`trakr migrate` turns TrakrError into `error: …`). Nothing of it was applied.
                    problem = (
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    )
                    raise TrakrError(
                        f"migration {path.name} failed and was rolled back: {problem}"
                    ) from exc
                applied_now.append(version)
                logger.info(
                    "applied %s",
                    path.name,
                    extra={"event": "migration_applied", "version": version},
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    logger.info(
        "database %s is up to date (%d applied now)",
        redact(dsn),
        len(applied_now),
        extra={"event": "migrated", "applied": applied_now},
    )
    return applied_now
