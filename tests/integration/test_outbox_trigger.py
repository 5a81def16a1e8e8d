"""The section trigger: one outbox row and one NOTIFY per real status change, only on commit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

SECTIONS = 50


@pytest.fixture
def conn(database_dsn: str) -> Iterator[psycopg.Connection]:
    """A connection to a catalogue of one university, subject and course with SECTIONS sections."""
    with psycopg.connect(database_dsn) as connection:
        university = connection.execute(
            """INSERT INTO university (topic_name, topic_id, name, abbr)
               VALUES ('sim', 1, 'Simulated University', 'sim') RETURNING id"""
        ).fetchone()[0]
        subject = connection.execute(
            """INSERT INTO subject (university_id, topic_name, topic_id, number, name, season, year, content_hash)
               VALUES (%s, 'sim.198.spring.2026', 2, '198', 'CS', 'SPRING', 2026, '\\x00') RETURNING id""",
            (university,),
        ).fetchone()[0]
        course = connection.execute(
            """INSERT INTO course (subject_id, topic_name, topic_id, code, number, name, content_hash)
               VALUES (%s, 'sim.198.spring.2026.01-111', 3, '01-111', '111', 'Intro', '\\x00') RETURNING id""",
            (subject,),
        ).fetchone()[0]
        connection.execute(
            """INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number, status, content_hash)
               SELECT %s, %s, 'sim.198.spring.2026.01-111.' || lpad(i::text, 2, '0') || '.' || (10000 + i),
                      100 + i, (10000 + i)::text, lpad(i::text, 2, '0'), 'CLOSED', '\\x00'
               FROM generate_series(1, %s) AS i""",
            (course, university, SECTIONS),
        )
        connection.commit()
        yield connection


@pytest.fixture
def listener(database_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_dsn, autocommit=True) as connection:
        connection.execute("LISTEN status_change")
        yield connection


def received(listener: psycopg.Connection, *, timeout: float = 0.5) -> list[dict[str, object]]:
    """Every notification that arrives until `timeout` seconds pass without one."""
    return [
        json.loads(n.payload)
        for n in listener.notifies(timeout=timeout)
        if n.channel == "status_change"
    ]


def outbox(conn: psycopg.Connection) -> list[tuple[int, str, str, str | None, str, str]]:
    return conn.execute(
        "SELECT id, topic_name, university, old_status, new_status, state FROM notification ORDER BY id"
    ).fetchall()


def test_a_status_change_writes_one_row_and_one_notify(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    conn.execute("UPDATE section SET status = 'OPEN' WHERE index = '10007'")
    assert received(listener, timeout=0.3) == []  # nothing before the commit
    conn.commit()
    rows = outbox(conn)
    assert [row[1:] for row in rows] == [
        ("sim.198.spring.2026.01-111.07.10007", "sim", "CLOSED", "OPEN", "new")
    ]
    section_id = conn.execute("SELECT id FROM section WHERE index = '10007'").fetchone()[0]
    assert conn.execute("SELECT section_id, topic_id FROM notification").fetchone() == (
        section_id,
        107,
    )
    assert received(listener) == [
        {
            "notification_id": rows[0][0],
            "topic_name": "sim.198.spring.2026.01-111.07.10007",
            "status": "OPEN",
            "university": "sim",
        }
    ]


def test_an_update_without_a_status_change_writes_nothing(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    conn.execute("UPDATE section SET credits = '4', content_hash = '\\x01' WHERE index = '10001'")
    conn.execute("UPDATE section SET status = 'CLOSED' WHERE index = '10002'")  # same value
    conn.execute("UPDATE section SET status = status")
    conn.commit()
    assert outbox(conn) == []
    assert received(listener) == []


def test_a_rolled_back_change_writes_nothing(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    conn.execute("UPDATE section SET status = 'OPEN' WHERE index = '10003'")
    assert len(outbox(conn)) == 1  # visible inside the transaction
    conn.rollback()
    assert outbox(conn) == []
    assert received(listener) == []


def test_a_set_based_update_writes_one_row_and_notify_per_changed_section(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    # One statement over every section: 30 become OPEN, 20 are set to the status they already have.
    conn.execute(
        """UPDATE section SET status = CASE WHEN number::int <= 30 THEN 'OPEN' ELSE 'CLOSED' END,
                              updated_at = now()"""
    )
    conn.commit()
    rows = outbox(conn)
    assert len(rows) == 30
    assert {row[1] for row in rows} == {
        f"sim.198.spring.2026.01-111.{i:02d}.{10000 + i}" for i in range(1, 31)
    }
    assert {(row[3], row[4]) for row in rows} == {("CLOSED", "OPEN")}
    notes = received(listener)
    assert len(notes) == 30
    assert sorted((n["notification_id"], n["topic_name"]) for n in notes) == [
        (row[0], row[1]) for row in rows
    ]
    assert {n["status"] for n in notes} == {"OPEN"}


def test_each_transition_is_its_own_event(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    for status in ("OPEN", "WAITLIST", "CLOSED"):
        conn.execute("UPDATE section SET status = %s WHERE index = '10004'", (status,))
        conn.commit()
    transitions = [(row[3], row[4]) for row in outbox(conn)]
    assert transitions == [("CLOSED", "OPEN"), ("OPEN", "WAITLIST"), ("WAITLIST", "CLOSED")]
    assert [n["status"] for n in received(listener)] == ["OPEN", "WAITLIST", "CLOSED"]


def test_inserting_a_section_is_not_an_event(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    course, university = conn.execute(
        "SELECT course_id, university_id FROM section LIMIT 1"
    ).fetchone()
    conn.execute(
        """INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number, status, content_hash)
           VALUES (%s, %s, 'sim.198.spring.2026.01-111.99.19999', 999, '19999', '99', 'OPEN', '\\x00')""",
        (course, university),
    )
    conn.commit()
    assert outbox(conn) == []
    assert received(listener) == []


def test_an_upsert_fires_for_the_rows_it_updates(
    conn: psycopg.Connection, listener: psycopg.Connection
) -> None:
    # ein may write a scrape with INSERT … ON CONFLICT DO UPDATE: its updates are events too.
    course, university = conn.execute(
        "SELECT course_id, university_id FROM section LIMIT 1"
    ).fetchone()
    conn.execute(
        """INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number, status, content_hash)
           SELECT course_id, university_id, topic_name, topic_id, index, number,
                  CASE WHEN number IN ('01', '02') THEN 'OPEN' ELSE status END, content_hash
           FROM section
           UNION ALL
           SELECT %s, %s, 'sim.198.spring.2026.01-111.98.19998', 998, '19998', '98', 'OPEN', '\\x00'
           ON CONFLICT (topic_name) DO UPDATE SET status = EXCLUDED.status
           WHERE section.status IS DISTINCT FROM EXCLUDED.status""",
        (course, university),
    )
    conn.commit()
    assert sorted(row[1] for row in outbox(conn)) == [
        "sim.198.spring.2026.01-111.01.10001",
        "sim.198.spring.2026.01-111.02.10002",
    ]
    assert len(received(listener)) == 2
