"""`trakr migrate`: creates the database, is safe to run twice and concurrently, gives the schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support import drop_database, new_database_dsn
from trakr.errors import TrakrError
from trakr.migrate import MIGRATIONS_DIR, migrate, migration_files

# The schema of 0001_schema.sql, column by column (in order): a change to that file shows here.
SCHEMA_0001 = {
    "course": ("id", "subject_id", "topic_name", "topic_id", "code", "number", "name", "synopsis",
               "credits", "metadata", "content_hash", "updated_at"),
    "delivery": ("notification_id", "state", "fcm_message_id", "error_code", "attempts", "sent_at"),
    "instructor": ("section_id", "ordinal", "name"),
    "meeting": ("section_id", "ordinal", "day", "start_time", "end_time", "room", "building", "campus",
                "class_type", "metadata"),
    "notification": ("id", "topic_name", "topic_id", "university", "section_id", "old_status", "new_status",
                     "created_at", "state", "collapsed_into", "queued_at"),
    "registration": ("university_id", "period", "period_date"),
    "schema_migration": ("version", "name", "sha256", "applied_at"),
    "section": ("id", "course_id", "university_id", "topic_name", "topic_id", "index", "number", "status",
                "credits", "books", "metadata", "content_hash", "updated_at"),
    "semester": ("university_id", "season", "year"),
    "subject": ("id", "university_id", "topic_name", "topic_id", "number", "name", "season", "year", "metadata",
                "content_hash", "updated_at"),
    "subscription": ("device_id", "topic_name", "is_subscribed", "created_at", "updated_at"),
    "university": ("id", "topic_name", "topic_id", "name", "abbr", "home_page", "registration_page", "metadata",
                   "content_hash", "snapshot_sha256", "scraped_at", "created_at", "updated_at"),
}  # fmt: skip


@pytest.fixture
def fresh_dsn() -> Iterator[str]:
    """A DSN whose database does not exist yet (migrate must create it); dropped afterwards."""
    dsn = new_database_dsn()
    yield dsn
    drop_database(dsn)


def columns(dsn: str) -> dict[str, tuple[str, ...]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"""
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return {table: tuple(cols) for table, cols in found.items()}


def applied(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT version, applied_at::text FROM schema_migration ORDER BY version"
        ).fetchall()


def run_migrate(dsn: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "trakr", "migrate", "--dsn", dsn],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_migrate_twice(fresh_dsn: str) -> None:
    first = run_migrate(fresh_dsn)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert b"migrated" in err
    assert b'"event": "migrated"' in out  # the JSON log line
    versions = applied(fresh_dsn)
    assert [v for v, _ in versions] == [v for v, _ in migration_files()]
    second = run_migrate(fresh_dsn)
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert applied(fresh_dsn) == versions  # nothing re-applied
    assert migrate(fresh_dsn) == []


def test_concurrent_processes_on_a_fresh_database(fresh_dsn: str) -> None:
    processes = [run_migrate(fresh_dsn) for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert [v for v, _ in applied(fresh_dsn)] == [v for v, _ in migration_files()]


def test_concurrent_threads_on_a_fresh_database(fresh_dsn: str) -> None:
    barrier = threading.Barrier(4)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(migrate(fresh_dsn))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # Exactly one migrator applied each version; the others found it done.
    applied_now = sorted(v for result in results for v in result)
    assert applied_now == [v for v, _ in migration_files()]


def test_schema_of_the_first_migration(fresh_dsn: str, tmp_path: Path) -> None:
    shutil.copy(MIGRATIONS_DIR / "0001_schema.sql", tmp_path)
    assert migrate(fresh_dsn, tmp_path) == ["0001"]
    assert columns(fresh_dsn) == SCHEMA_0001
    with psycopg.connect(fresh_dsn) as conn:
        triggers = conn.execute(
            """SELECT tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) FROM pg_trigger
               WHERE NOT tgisinternal"""
        ).fetchall()
    assert [(name, table) for name, table, _ in triggers] == [("section_status_change", "section")]
    definition = triggers[0][2]
    assert "AFTER UPDATE ON public.section" in definition
    assert "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows" in definition
    assert "FOR EACH STATEMENT EXECUTE FUNCTION section_status_outbox()" in definition


def test_every_migration_keeps_the_first_schema(database_dsn: str) -> None:
    # Later migrations may add, never drop: each 0001 column is still there.
    found = columns(database_dsn)
    for table, expected in SCHEMA_0001.items():
        assert set(expected) <= set(found[table]), table


def test_migration_files_are_numbered() -> None:
    versions = [v for v, _ in migration_files()]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert versions[0] == "0001"


def test_bad_migration_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_oops.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_short_description"):
        migration_files(tmp_path)


def test_unreachable_server_is_a_readable_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trakr",
            "migrate",
            "--dsn",
            "postgresql://postgres@127.0.0.1:1/trakr",
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.decode().startswith("error: ")
    assert "Traceback" not in result.stderr.decode()


def test_a_broken_migration_is_rolled_back_with_a_readable_error(
    fresh_dsn: str, tmp_path: Path
) -> None:
    shutil.copy(MIGRATIONS_DIR / "0001_schema.sql", tmp_path)
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELEC 1;\n")
    with pytest.raises(
        TrakrError, match=r"0002_broken\.sql failed and was rolled back: syntax error"
    ):
        migrate(fresh_dsn, tmp_path)
    assert [v for v, _ in applied(fresh_dsn)] == ["0001"]
    assert "half_done" not in columns(fresh_dsn)
