"""ein's transaction against a real PostgreSQL: what is written, what is not, and the outbox."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from trakr.codec import ScrapeRejected, encode_university
from trakr.ein import ingest as ein_ingest
from trakr.ein.ingest import ingest_payload, ingest_university
from trakr.pb.trakr_pb2 import Section, Semester, University
from trakr.scrapers.sim import simulate

REALDATA = Path(
    os.environ.get(
        "TRAKR_TEST_REALDATA", Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
    )
)
NB_COURSES = "rutgers_2026spring_NB_courses_2025-11-15T200031Z.json.gz"
OPEN_SECTIONS_1 = "rutgers_2026spring_openSections_2025-11-15T200031Z.json"
OPEN_SECTIONS_2 = "rutgers_2026spring_openSections_2025-11-15T202526Z.json"
CATALOGUE = ("subject", "course", "section", "meeting", "instructor")


def sample(tick: int = 0, **kwargs: int) -> University:
    params = {"sections": 120, "changes": 4, "subjects": 4, **kwargs}
    return simulate(tick=tick, **params)


def flip(section: Section) -> None:
    section.status = Section.OPEN if section.status != Section.OPEN else Section.CLOSED


@pytest.fixture
async def conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_dsn)
    yield connection
    await connection.close()


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    ein_ingest._CACHE.clear()


async def row_versions(conn: asyncpg.Connection) -> dict[str, set[tuple[str, str]]]:
    """(ctid, xmin) of every catalogue row: any insert, update or delete changes this set."""
    versions = {}
    for table in CATALOGUE:
        rows = await conn.fetch(f"SELECT ctid::text, xmin::text FROM {table}")
        versions[table] = {tuple(row) for row in rows}
    return versions


async def notifications(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT topic_name, old_status, new_status FROM notification ORDER BY id"
    )


async def test_first_ingest_then_identical_snapshot_writes_nothing(
    conn: asyncpg.Connection,
) -> None:
    payload = encode_university(sample(), "protobuf")
    first = await ingest_payload(conn, payload, "protobuf")
    assert not first.skipped and first.counts["section"]["inserted"] == 120
    assert await conn.fetchval("SELECT count(*) FROM section") == 120
    assert (
        await conn.fetchval("SELECT count(*) FROM meeting")
        == first.counts["meeting"]["inserted"]
        > 0
    )
    before = await row_versions(conn)
    again = await ingest_payload(conn, payload, "protobuf")
    assert again.skipped and not again.changed
    assert await row_versions(conn) == before
    # The same content in another encoding is not skipped by hash, but still writes no row.
    as_json = await ingest_payload(conn, encode_university(sample(), "json"), "json")
    assert not as_json.skipped and not as_json.changed
    assert as_json.counts["section"]["unchanged"] == 120
    assert await row_versions(conn) == before
    assert await notifications(conn) == []


async def test_a_status_change_makes_exactly_one_outbox_row(conn: asyncpg.Connection) -> None:
    university = sample()
    await ingest_university(conn, university)
    changed = sample()
    section = changed.subjects[2].courses[3].sections[1]
    old = Section.Status.Name(section.status)
    flip(section)
    result = await ingest_university(conn, changed)
    assert result.status_changes == 1
    assert result.counts["section"]["updated"] == 1
    assert result.counts["section"]["unchanged"] == 119
    rows = await notifications(conn)
    assert [tuple(r) for r in rows] == [
        (section.topic_name, old, Section.Status.Name(section.status))
    ]
    stored = await conn.fetchval(
        "SELECT status FROM section WHERE topic_name = $1", section.topic_name
    )
    assert stored == Section.Status.Name(section.status)
    # Ingesting it again (as a redelivery would) changes nothing and fires nothing.
    again = await ingest_university(conn, changed)
    assert again.skipped
    assert len(await notifications(conn)) == 1


async def test_a_restarted_ein_diffs_against_the_database(conn: asyncpg.Connection) -> None:
    await ingest_university(conn, sample(tick=0))
    ein_ingest._CACHE.clear()  # a new process: only the database knows the hashes
    result = await ingest_university(conn, sample(tick=1))
    assert result.status_changes == 4
    assert result.counts["section"]["updated"] == 4
    assert len(await notifications(conn)) == 4


async def test_a_stale_cache_is_never_used(conn: asyncpg.Connection) -> None:
    await ingest_university(conn, sample(tick=0))
    # Someone else rewrites a section behind ein's back and invalidates the generation.
    topic = sample().subjects[0].courses[0].sections[0].topic_name
    await conn.execute(
        "UPDATE section SET number = 'XX', content_hash = '\\x00' WHERE topic_name = $1", topic
    )
    await conn.execute("UPDATE university SET ein_generation = NULL")
    result = await ingest_university(conn, sample(tick=0), snapshot_sha256=b"another scrape")
    assert result.counts["section"]["updated"] == 1
    assert await conn.fetchval("SELECT number FROM section WHERE topic_name = $1", topic) != "XX"


async def test_reordered_input_writes_nothing(conn: asyncpg.Connection) -> None:
    await ingest_university(conn, sample())
    before = await row_versions(conn)
    for restarted in (False, True):
        if restarted:
            ein_ingest._CACHE.clear()
        university = sample()
        subjects = list(university.subjects)[::-1]
        for subject in subjects:
            courses = list(subject.courses)[::-1]
            for course in courses:
                sections = list(course.sections)[::-1]
                del course.sections[:]
                course.sections.extend(sections)
            del subject.courses[:]
            subject.courses.extend(courses)
        del university.subjects[:]
        university.subjects.extend(subjects)
        result = await ingest_university(conn, university, snapshot_sha256=bytes([restarted]) * 32)
        assert not result.skipped and not result.changed, restarted
    assert await row_versions(conn) == before


async def test_a_section_moving_to_another_course(conn: asyncpg.Connection) -> None:
    await ingest_university(conn, sample())
    university = sample()
    course_a, course_b = university.subjects[1].courses[0], university.subjects[1].courses[1]
    moved = course_b.sections.add()
    moved.CopyFrom(course_a.sections[0])
    old_topic = course_a.sections[0].topic_name
    del course_a.sections[0]
    result = await ingest_university(conn, university)
    assert result.counts["section"] == {"inserted": 1, "updated": 0, "deleted": 1, "unchanged": 119}
    row = await conn.fetchrow(
        "SELECT s.topic_name, c.topic_name AS course FROM section s JOIN course c ON c.id = s.course_id "
        "WHERE s.index = $1",
        moved.index,
    )
    assert row["course"] == course_b.topic_name
    assert row["topic_name"].startswith(course_b.topic_name + ".")
    assert await conn.fetchval("SELECT count(*) FROM section WHERE topic_name = $1", old_topic) == 0
    meetings = await conn.fetchval(
        "SELECT count(*) FROM meeting m JOIN section s ON s.id = m.section_id WHERE s.index = $1",
        moved.index,
    )
    assert meetings == len(moved.meetings)


async def test_a_vanished_section_is_deleted_with_its_children(conn: asyncpg.Connection) -> None:
    await ingest_university(conn, sample())
    university = sample()
    gone = university.subjects[3].courses[5].sections[2]
    gone_id = await conn.fetchval("SELECT id FROM section WHERE topic_name = $1", gone.topic_name)
    del university.subjects[3].courses[5].sections[2]
    result = await ingest_university(conn, university)
    assert result.counts["section"]["deleted"] == 1
    assert await conn.fetchval("SELECT count(*) FROM section WHERE id = $1", gone_id) == 0
    assert await conn.fetchval("SELECT count(*) FROM meeting WHERE section_id = $1", gone_id) == 0
    assert await conn.fetchval("SELECT count(*) FROM section") == 119


async def test_rejected_scrapes_write_nothing(conn: asyncpg.Connection) -> None:
    await ingest_university(conn, sample())
    before = await row_versions(conn)
    snapshot = await conn.fetchval("SELECT snapshot_sha256 FROM university")

    half = sample()
    del half.subjects[1:]
    with pytest.raises(ScrapeRejected) as caught:
        await ingest_university(conn, half)
    assert caught.value.reason == "too_many_deletes"

    nameless = sample()
    nameless.name = ""
    with pytest.raises(ScrapeRejected) as caught:
        await ingest_payload(conn, encode_university(nameless, "protobuf"), "protobuf")
    assert caught.value.reason == "no_name"

    duplicated = sample()
    course = duplicated.subjects[0].courses[0]
    course.sections.add().CopyFrom(course.sections[0])
    with pytest.raises(ScrapeRejected) as caught:
        await ingest_payload(conn, encode_university(duplicated, "protobuf"), "protobuf")
    assert caught.value.reason == "duplicate_section"

    with pytest.raises(ScrapeRejected) as caught:
        await ingest_payload(conn, b"\x0a\xff\xff", "protobuf")
    assert caught.value.reason == "parse_error"

    # A season no Semester.Season names: the subject has no topic, whether the subject is read
    # for the cache short cut (protobuf, cache warm) or validated whole (JSON).
    seasonless = sample()
    seasonless.subjects[2].season = 7  # type: ignore[assignment]
    for fmt in ("protobuf", "json"):
        with pytest.raises(ScrapeRejected) as caught:
            await ingest_payload(conn, encode_university(seasonless, fmt), fmt)
        assert caught.value.reason == "invalid_topic"
        assert "season 7" in str(caught.value)

    assert await row_versions(conn) == before
    assert await conn.fetchval("SELECT snapshot_sha256 FROM university") == snapshot
    # A smaller delete is fine with a higher limit.
    result = await ingest_university(conn, half, max_delete_share=0.8)
    assert result.counts["section"]["deleted"] == 90


async def test_insert_all_writes_every_row_and_fires_once_per_change(
    conn: asyncpg.Connection,
) -> None:
    first = await ingest_university(conn, sample(tick=0), insert_all=True)
    assert first.mode == "insert_all" and first.counts["section"]["inserted"] == 120
    result = await ingest_university(conn, sample(tick=1), insert_all=True)
    assert result.counts["section"]["updated"] == 120
    assert result.counts["meeting"]["deleted"] == result.counts["meeting"]["inserted"] > 0
    assert result.status_changes == 4
    assert len(await notifications(conn)) == 4
    # The hashes it wrote are right: the diff then finds nothing to do.
    ein_ingest._CACHE.clear()
    again = await ingest_university(conn, sample(tick=1), snapshot_sha256=b"other")
    assert not again.changed


async def test_university_row_semesters_and_scraped_at(conn: asyncpg.Connection) -> None:
    university = sample()
    result = await ingest_university(conn, university)
    row = await conn.fetchrow("SELECT * FROM university")
    assert row["topic_name"] == result.university == "sim"
    assert row["snapshot_sha256"] == result.snapshot_sha256
    assert row["scraped_at"] is not None and row["ein_generation"] is not None
    semesters = {tuple(r) for r in await conn.fetch("SELECT season, year FROM semester")}
    expected = {
        (Semester.Season.Name(s.season).lower(), s.year) for s in university.available_semesters
    }
    assert semesters == expected and expected


@pytest.mark.slow
async def test_real_nb_delta(conn: asyncpg.Connection) -> None:
    """The two real openSections snapshots differ in 5 NB sections: 5 updates, 5 outbox rows."""
    from trakr.scrapers.rutgers import load_university

    before = load_university(REALDATA / NB_COURSES, REALDATA / OPEN_SECTIONS_1)
    after = load_university(REALDATA / NB_COURSES, REALDATA / OPEN_SECTIONS_2)
    first = await ingest_payload(conn, encode_university(before, "protobuf"), "protobuf")
    assert first.counts["section"]["inserted"] == 11680
    delta = await ingest_payload(conn, encode_university(after, "protobuf"), "protobuf")
    assert delta.counts["section"]["updated"] == delta.status_changes == 5
    assert delta.counts["section"]["unchanged"] == 11675
    assert sum(delta.written(t) for t in ("subject", "course")) == 0
    assert len(await notifications(conn)) == 5


async def test_an_older_scrape_is_never_applied_over_a_newer_one(conn: asyncpg.Connection) -> None:
    """Chaos suite: a restarted ein claimed a stale pending entry after newer ones and applied
    it, so statuses reverted (spurious notifications, lost changes). Compared by scraped_at."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    old, new = sample(0), sample(1)
    await ingest_university(conn, old, scraped_at=t0)
    applied = await ingest_university(conn, new, scraped_at=t0 + timedelta(seconds=60))
    assert applied.status_changes == 4
    before = await row_versions(conn)

    stale = await ingest_university(conn, old, scraped_at=t0 + timedelta(seconds=30))
    assert stale.skipped and stale.skip_reason == "stale" and not stale.changed
    assert stale.stored_scraped_at == t0 + timedelta(seconds=60)
    assert await row_versions(conn) == before
    assert len(await notifications(conn)) == 4
    stored_at = await conn.fetchval("SELECT scraped_at FROM university")
    assert stored_at == t0 + timedelta(seconds=60)

    # A stale scrape that would delete most sections is skipped, not dead-lettered.
    half = sample(0)
    del half.subjects[1:]
    assert (await ingest_university(conn, half, scraped_at=t0)).skip_reason == "stale"

    # A file ingest (no scrape time) always applies; so does a newer scrape.
    assert (await ingest_university(conn, old)).status_changes == 4
    newer = await ingest_university(conn, new, scraped_at=datetime.now(UTC) + timedelta(hours=1))
    assert not newer.skipped and newer.status_changes == 4
