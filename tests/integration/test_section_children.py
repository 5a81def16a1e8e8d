"""Meetings and instructors go with their section, however it is deleted (migration 0004).

They have no foreign key to section (its per-row check was half of a first ingest's COPY time);
a statement-level trigger deletes them instead. These tests pin every way a section can go.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

SECTIONS = 4


@pytest.fixture
def conn(database_dsn: str) -> Iterator[psycopg.Connection]:
    """Two universities, each with a subject, a course and SECTIONS sections, each section with
    two meetings and one instructor."""
    with psycopg.connect(database_dsn) as connection:
        for n in (1, 2):
            university = connection.execute(
                """INSERT INTO university (topic_name, topic_id, name, abbr)
                   VALUES (%s, %s, 'U', 'u') RETURNING id""",
                (f"u{n}", n),
            ).fetchone()[0]
            subject = connection.execute(
                """INSERT INTO subject (university_id, topic_name, topic_id, number, name, season,
                                        year, content_hash)
                   VALUES (%s, %s, %s, '198', 'CS', 'spring', 2026, '\\x00') RETURNING id""",
                (university, f"u{n}.198", 10 + n),
            ).fetchone()[0]
            course = connection.execute(
                """INSERT INTO course (subject_id, topic_name, topic_id, code, number, name,
                                       content_hash)
                   VALUES (%s, %s, %s, '01-111', '111', 'Intro', '\\x00') RETURNING id""",
                (subject, f"u{n}.198.111", 20 + n),
            ).fetchone()[0]
            connection.execute(
                """WITH s AS (
                       INSERT INTO section (course_id, university_id, topic_name, topic_id, index,
                                            number, status, content_hash)
                       SELECT %(course)s, %(university)s, %(prefix)s || i, %(base)s + i, i::text,
                              i::text, 'OPEN', '\\x00'
                       FROM generate_series(1, %(n)s) AS i
                       RETURNING id
                   ), m AS (
                       INSERT INTO meeting (section_id, ordinal, day)
                       SELECT id, o, 'Monday' FROM s, generate_series(0, 1) AS o
                   )
                   INSERT INTO instructor (section_id, ordinal, name) SELECT id, 0, 'X' FROM s""",
                {
                    "course": course,
                    "university": university,
                    "prefix": f"u{n}.198.111.",
                    "base": 100 * n,
                    "n": SECTIONS,
                },
            )
        connection.commit()
        yield connection


def children(conn: psycopg.Connection) -> tuple[int, int]:
    """(meetings, instructors) still in the database."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM meeting), (SELECT count(*) FROM instructor)"
    ).fetchone()


def orphans(conn: psycopg.Connection) -> int:
    """Meetings and instructors whose section does not exist."""
    return conn.execute(
        """SELECT (SELECT count(*) FROM meeting m WHERE NOT EXISTS
                       (SELECT 1 FROM section s WHERE s.id = m.section_id))
                + (SELECT count(*) FROM instructor i WHERE NOT EXISTS
                       (SELECT 1 FROM section s WHERE s.id = i.section_id))"""
    ).fetchone()[0]


def test_deleting_sections_deletes_their_children_only(conn: psycopg.Connection) -> None:
    assert children(conn) == (4 * SECTIONS, 2 * SECTIONS)
    conn.execute("DELETE FROM section WHERE topic_name IN ('u1.198.111.1', 'u1.198.111.2')")
    assert children(conn) == (4 * SECTIONS - 4, 2 * SECTIONS - 2)
    assert orphans(conn) == 0


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM course WHERE topic_name = 'u1.198.111'",
        "DELETE FROM subject WHERE topic_name = 'u1.198'",
        "DELETE FROM university WHERE topic_name = 'u1'",
    ],
)
def test_a_cascade_from_a_parent_deletes_the_children(
    conn: psycopg.Connection, statement: str
) -> None:
    conn.execute(statement)
    # The other university's catalogue is untouched.
    assert children(conn) == (2 * SECTIONS, SECTIONS)
    assert orphans(conn) == 0


def test_a_rolled_back_delete_keeps_the_children(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM section")
    assert children(conn) == (0, 0)
    conn.rollback()
    assert children(conn) == (4 * SECTIONS, 2 * SECTIONS)


def test_truncating_sections_truncates_their_children(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE section")
    assert children(conn) == (0, 0)
