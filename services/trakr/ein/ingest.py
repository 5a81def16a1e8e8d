"""One scrape into PostgreSQL: one transaction that writes only what changed.

Library API (spike's tests, the benchmarks and the end-to-end suite use it):
`ingest_university(conn, university, …)` and `ingest_payload(conn, payload, fmt, …)`.

The transaction: lock the university row (serialises ein replicas on one university), take the
stored hashes (from the in-memory cache when its generation still matches the row, else from
the database), diff (`trakr.ein.diff`), then
  DELETE vanished rows · COPY changed rows into temp tables and UPDATE … FROM them, one
  statement per table (the section statement fires the outbox trigger once) · COPY new rows
  straight into the tables with ids taken from the sequences · rewrite the meetings and
  instructors of every written section · stamp the university with the snapshot hash and a
  new generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from trakr.codec import decode_university, validate_university
from trakr.db import load_queries
from trakr.ein import diff
from trakr.ein.pipeline import copy_tables
from trakr.pb.trakr_pb2 import Section, University
from trakr.topics import topic_id, university_topic

logger = logging.getLogger(__name__)

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))

# Stored hashes per university topic, valid only while the row's ein_generation matches.
_CACHE: dict[str, diff.StoredUniversity] = {}
# Connections whose session already has ein's temp tables (they live as long as the session).
_TEMP_READY: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


@dataclass
class IngestResult:
    """What one ingest did: rows per table and kind, or skipped (identical or stale snapshot)."""

    university: str  # topic name ("" when skipped before decoding)
    snapshot_sha256: bytes
    mode: str  # "diff" | "insert_all"
    skipped: bool = False
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(diff.KINDS, 0) for t in diff.TABLES}
    )
    status_changes: int = 0
    duration_seconds: float = 0.0
    # Why it was skipped: "identical" (snapshot already ingested) or "stale" (scraped before
    # the snapshot already stored; stored_scraped_at says when that one was scraped).
    skip_reason: str = ""
    stored_scraped_at: datetime | None = None

    @property
    def changed(self) -> bool:
        """True when any catalogue row was inserted, updated or deleted."""
        return any(
            self.counts[t][k] for t in diff.TABLES for k in ("inserted", "updated", "deleted")
        )

    def written(self, table: str) -> int:
        kinds = self.counts[table]
        return kinds["inserted"] + kinds["updated"] + kinds["deleted"]

    def summary(self) -> str:
        """One line for logs and `trakr-ein ingest`."""
        if self.skip_reason == "stale":
            return f"{self.university}: skipped (older than the stored snapshot)"
        if self.skipped:
            return f"{self.university or '?'}: skipped (snapshot already ingested)"
        parts = []
        for table in ("subject", "course", "section", "meeting", "instructor"):
            k = self.counts[table]
            parts.append(
                f"{table} +{k['inserted']} ~{k['updated']} -{k['deleted']} ={k['unchanged']}"
            )
        return (
            f"{self.university}: {self.mode} in {self.duration_seconds * 1000:.1f} ms; "
            + "; ".join(parts)
            + f"; status changes {self.status_changes}"
        )


async def ingest_payload(
    conn: asyncpg.Connection,
    payload: bytes,
    fmt: str,
    *,
    snapshot_sha256: bytes | None = None,
    insert_all: bool = False,
    max_delete_share: float = 0.5,
    scraped_at: datetime | None = None,
    pause_before_commit_seconds: float = 0.0,
) -> IngestResult:
    """Decode a scrape and ingest it; an already-ingested payload is skipped before decoding.

    Raises ScrapeRejected for a payload that is not a valid University.
    """
    started = time.perf_counter()

    def source() -> diff.Source:
        split = diff.PayloadSource.split(payload) if fmt == "protobuf" else None
        if split is not None:
            return split
        # JSON, or framing we cannot walk: decode it whole (raises if invalid)
        return diff.MessageSource(decode_university(payload, fmt))  # type: ignore[arg-type]

    return await _ingest_snapshot(
        conn,
        snapshot_sha256 or diff.snapshot_sha256(payload),
        source,
        started=started,
        insert_all=insert_all,
        max_delete_share=max_delete_share,
        scraped_at=scraped_at,
        pause_before_commit_seconds=pause_before_commit_seconds,
    )


async def ingest_university(
    conn: asyncpg.Connection,
    university: University,
    *,
    snapshot_sha256: bytes | None = None,
    insert_all: bool = False,
    max_delete_share: float = 0.5,
    scraped_at: datetime | None = None,
    pause_before_commit_seconds: float = 0.0,
) -> IngestResult:
    """Validate and ingest one University in one transaction; returns what was written.

    Without `snapshot_sha256` the hash of its deterministic protobuf encoding is used. Raises
    ScrapeRejected (nothing written) for an invalid scrape or one deleting too many sections.
    """
    started = time.perf_counter()
    return await _ingest_snapshot(
        conn,
        snapshot_sha256 or diff.snapshot_sha256(university.SerializeToString(deterministic=True)),
        lambda: diff.MessageSource(university),
        started=started,
        insert_all=insert_all,
        max_delete_share=max_delete_share,
        scraped_at=scraped_at,
        pause_before_commit_seconds=pause_before_commit_seconds,
    )


async def _ingest_snapshot(
    conn: asyncpg.Connection,
    sha: bytes,
    make_source: Callable[[], diff.Source],
    *,
    started: float,
    insert_all: bool,
    max_delete_share: float,
    scraped_at: datetime | None,
    pause_before_commit_seconds: float,
) -> IngestResult:
    """Skip a snapshot already ingested (diff mode), else build its source and ingest it."""
    mode = "insert_all" if insert_all else "diff"
    if not insert_all:
        skipped = await _skip_if_ingested(conn, sha, scraped_at or datetime.now(UTC), mode)
        if skipped is not None:
            skipped.duration_seconds = time.perf_counter() - started
            return skipped
    with _no_cyclic_gc():
        result = await _ingest(
            conn,
            make_source(),
            sha,
            insert_all=insert_all,
            max_delete_share=max_delete_share,
            scraped_at=scraped_at,
            pause_before_commit_seconds=pause_before_commit_seconds,
        )
    result.duration_seconds = time.perf_counter() - started
    return result


async def _skip_if_ingested(
    conn: asyncpg.Connection, sha: bytes, scraped_at: datetime, mode: str
) -> IngestResult | None:
    row = await conn.fetchrow(QUERIES["find_snapshot"], sha)
    if row is None:
        return None
    # Not a catalogue write: only a newer scrape time moves scraped_at forward.
    await conn.execute(QUERIES["touch_scraped_at"], row["id"], scraped_at)
    return IngestResult(
        university=row["topic_name"],
        snapshot_sha256=sha,
        mode=mode,
        skipped=True,
        skip_reason="identical",
    )


async def _ingest(
    conn: asyncpg.Connection,
    source: diff.Source,
    sha: bytes,
    *,
    insert_all: bool,
    max_delete_share: float,
    scraped_at: datetime | None,
    pause_before_commit_seconds: float,
) -> IngestResult:
    """The ingest transaction. `scraped_at` None (a file, no scrape time) is never stale."""
    shell = source.shell
    if not shell.name.strip() or not source.subjects_count():
        validate_university(
            University(name=shell.name, abbr=shell.abbr)
        )  # codec's no_name / no_subjects
    utopic = university_topic(shell)
    cache_updated = False
    try:
        async with conn.transaction():
            locked = await _lock_and_load(conn, shell, utopic, scraped_at)
            if isinstance(locked, IngestResult):
                locked.snapshot_sha256 = sha
                locked.mode = "insert_all" if insert_all else "diff"
                return locked  # stale: nothing written, the transaction ends empty
            university_id, stored = locked
            plan = diff.prepare(source, stored, insert_all=insert_all)
            diff.check_delete_share(plan, max_delete_share)
            result = IngestResult(
                university=plan.university_topic,
                snapshot_sha256=sha,
                mode="insert_all" if insert_all else "diff",
                counts=plan.counts,
            )
            generation = uuid.uuid4()
            # The university row first: it is the only write that needs the decoded University
            # itself, which update_cache lets go of.
            await _finish_university(
                conn,
                plan,
                university_id,
                sha=sha,
                scraped_at=scraped_at or datetime.now(UTC),
                generation=generation,
            )

            def update_cache(ids: dict[str, list[int]]) -> None:
                """Called once every row is built, while the server writes the last ones.

                Frees the decoded scrape, then brings the cache to the state this transaction
                commits. Before COMMIT is safe: the cache carries the new generation, which the
                database has only if the commit happens.
                """
                nonlocal cache_updated
                cache_updated = True
                plan.forget_messages()
                try:
                    _CACHE[utopic] = diff.apply_plan(
                        stored, plan, university_id=university_id, generation=generation, **ids
                    )
                except Exception:  # a cache bug must never fail an ingest: re-read next time
                    logger.exception(
                        "could not update the hash cache", extra={"event": "cache_error"}
                    )
                    _CACHE.pop(utopic, None)

            await _write(conn, plan, university_id, stored, result, when_built=update_cache)
            if pause_before_commit_seconds:
                # Test hook (TRAKR_TEST_EIN_PAUSE_BEFORE_COMMIT_SECONDS): widen the window in
                # which a kill must leave the previous snapshot intact.
                logger.warning(
                    "pausing %.1fs before COMMIT",
                    pause_before_commit_seconds,
                    extra={"event": "test_pause"},
                )
                await asyncio.sleep(pause_before_commit_seconds)
    except BaseException:
        if cache_updated:  # not committed (or not known to be): the stored hashes are the truth
            _CACHE.pop(utopic, None)
        raise
    return result


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector off for one ingest (reference counting still frees).

    An ingest allocates row tuples and cache entries by the ten thousand and makes no garbage
    cycles, so the collector only walks live objects: a first NB ingest triggered a full
    collection, ~15 ms, and the cost grows with the cache. Cycles made meanwhile (say, an
    exception's traceback) are collected once it is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _lock_and_load(
    conn: asyncpg.Connection, university: University, utopic: str, scraped_at: datetime | None
) -> tuple[int, diff.StoredUniversity | None] | IngestResult:
    """Lock (or create) the university row; return its id and the stored hashes (None: new).

    Returns a skipped IngestResult instead when this scrape is older than the stored snapshot.
    The comparison is made under the row lock, so two ein consumers cannot both pass it and
    then apply their snapshots in the wrong order.
    """
    row = await conn.fetchrow(QUERIES["lock_university"], utopic)
    if row is None:
        university_id = await conn.fetchval(
            QUERIES["insert_university"], utopic, topic_id(utopic), university.name, university.abbr
        )
        if university_id is not None:
            _CACHE.pop(utopic, None)
            return university_id, None
        row = await conn.fetchrow(QUERIES["lock_university"], utopic)  # a replica created it first
    university_id = row["id"]
    stored_at = row["scraped_at"]
    if scraped_at is not None and stored_at is not None and scraped_at < stored_at:
        return IngestResult(
            university=utopic,
            snapshot_sha256=b"",
            mode="diff",
            skipped=True,
            skip_reason="stale",
            stored_scraped_at=stored_at,
        )
    generation = row["ein_generation"]
    cached = _CACHE.get(utopic)
    if (
        cached is not None
        and generation is not None
        and cached.generation == generation
        and cached.id == university_id
    ):
        return university_id, cached
    subjects = await conn.fetch(QUERIES["stored_subjects"], university_id)
    courses = await conn.fetch(QUERIES["stored_courses"], university_id)
    sections = await conn.fetch(QUERIES["stored_sections"], university_id)
    stored = diff.StoredUniversity.from_rows(
        university_id=university_id,
        topic_name=utopic,
        content_hash=row["content_hash"],
        generation=generation,
        subjects=subjects,
        courses=courses,
        sections=sections,
    )
    logger.info(
        "read %d stored section hashes of %s",
        len(sections),
        utopic,
        extra={"event": "hashes_loaded", "university": utopic, "sections": len(sections)},
    )
    return university_id, stored


async def _write(
    conn: asyncpg.Connection,
    plan: diff.Plan,
    university_id: int,
    stored: diff.StoredUniversity | None,
    result: IngestResult,
    *,
    when_built: Callable[[dict[str, list[int]]], None],
) -> None:
    """Execute the plan's row writes. Once every row is built, `when_built` gets the ids given
    to inserted subjects, courses and sections (while the server still writes the last rows)."""
    q = QUERIES
    counts = result.counts
    subject_ids: list[int] = []
    course_ids: list[int] = []
    section_ids: list[int] = []
    if plan.subject_inserts or plan.course_inserts or plan.section_inserts:
        row = await conn.fetchrow(
            q["allocate_ids"],
            len(plan.subject_inserts),
            len(plan.course_inserts),
            len(plan.section_inserts),
        )
        subject_ids, course_ids, section_ids = (
            row["subject_ids"],
            row["course_ids"],
            row["section_ids"],
        )

    # Deletes first: vanished rows (children cascade).
    if plan.section_deletes:
        await conn.execute(q["delete_sections"], plan.section_deletes)
    if plan.course_deletes:
        await conn.execute(q["delete_courses"], plan.course_deletes)
    if plan.subject_deletes:
        await conn.execute(q["delete_subjects"], plan.subject_deletes)

    stored_subjects = stored.subjects if stored is not None else {}
    new_subject_ids = {
        topic: i for (_, _, topic), i in zip(plan.subject_inserts, subject_ids, strict=True)
    }
    new_course_ids = {
        topic: i for (_, _, _, topic), i in zip(plan.course_inserts, course_ids, strict=True)
    }

    def subject_id(topic: str) -> int:
        found = new_subject_ids.get(topic)
        return found if found is not None else stored_subjects[topic].id

    def course_id(topic: str) -> int:
        found = new_course_ids.get(topic)
        if found is not None:
            return found
        return stored_subjects[topic.rsplit(".", 1)[0]].courses[topic].id

    if (
        plan.subject_updates or plan.course_updates or plan.section_updates
    ) and conn not in _TEMP_READY:
        await conn.execute(q["create_temp_tables"])
        _TEMP_READY.add(conn)

    # Changed rows: staged, then one UPDATE … FROM per table. Rows are built while the server
    # writes those before them (trakr.ein.pipeline), never all held at once.
    async def stage(table: str, rows: Iterable[tuple[object, ...]], columns: Sequence[str]) -> None:
        await copy_tables(conn, [(table, rows, columns)])

    if plan.subject_updates:
        subjects = (diff.subject_record(i, university_id, s) for i, s, _, _ in plan.subject_updates)
        await stage("ein_subject", subjects, diff.SUBJECT_COLUMNS)
        await conn.execute(q["apply_subjects"])
    if plan.course_updates:
        # Same topic means same parent, so the stored subject_id is right (not updated).
        courses = (diff.course_record(i, 0, c) for i, c, _, _ in plan.course_updates)
        await stage("ein_course", courses, diff.COURSE_COLUMNS)
        await conn.execute(q["apply_courses"])
    if plan.section_updates:
        sections = (
            diff.section_record(i, 0, university_id, s, h) for i, s, h, _ in plan.section_updates
        )
        await stage("ein_section", sections, diff.SECTION_COLUMNS)
        result.status_changes = await conn.fetchval(q["apply_sections"])
        rewritten = [i for i, _, _, _ in plan.section_updates]
        gone = await conn.fetchrow(q["delete_children"], rewritten)
        counts["meeting"]["deleted"] += gone["meetings"]
        counts["instructor"]["deleted"] += gone["instructors"]

    # New rows, parents first, then the meetings and instructors of every written section.
    def new_section(i: int, entry: tuple[Section, None, str, str]) -> tuple[object, ...]:
        section, _, parent, _ = entry
        return diff.section_record(
            i, course_id(parent), university_id, section, diff.section_hash(section)
        )

    def written() -> Iterator[tuple[int, Section]]:
        """(id, message) of every updated and inserted section (no 100k-item list)."""
        for i, s, _, _ in plan.section_updates:
            yield i, s
        for (s, _, _, _), i in zip(plan.section_inserts, section_ids, strict=True):
            yield i, s

    copied = await copy_tables(
        conn,
        [
            (
                "subject",
                diff.insert_rows(
                    plan.subject_inserts,
                    subject_ids,
                    lambda i, entry: diff.subject_record(i, university_id, entry[0]),
                ),
                diff.SUBJECT_COLUMNS,
            ),
            (
                "course",
                diff.insert_rows(
                    plan.course_inserts,
                    course_ids,
                    lambda i, entry: diff.course_record(i, subject_id(entry[2]), entry[0]),
                ),
                diff.COURSE_COLUMNS,
            ),
            (
                "section",
                diff.insert_rows(plan.section_inserts, section_ids, new_section),
                diff.SECTION_COLUMNS,
            ),
            (
                "meeting",
                (row for i, s in written() for row in diff.meeting_records(i, s)),
                diff.MEETING_COLUMNS,
            ),
            (
                "instructor",
                (row for i, s in written() for row in diff.instructor_records(i, s)),
                diff.INSTRUCTOR_COLUMNS,
            ),
        ],
        when_built=lambda: when_built(
            {"subject_ids": subject_ids, "course_ids": course_ids, "section_ids": section_ids}
        ),
    )
    counts["meeting"]["inserted"] += copied["meeting"]
    counts["instructor"]["inserted"] += copied["instructor"]


async def _finish_university(
    conn: asyncpg.Connection,
    plan: diff.Plan,
    university_id: int,
    *,
    sha: bytes,
    scraped_at: datetime,
    generation: uuid.UUID,
) -> None:
    u = plan.university
    assert u is not None, "called before forget_messages"
    if not plan.university_changed:
        await conn.execute(QUERIES["finish_university"], university_id, sha, scraped_at, generation)
        return
    await conn.execute(
        QUERIES["update_university"],
        university_id,
        u.name,
        u.abbr,
        u.home_page,
        u.registration_page,
        diff.metadata_json(u.metadata),
        plan.university_hash,
        sha,
        scraped_at,
        generation,
    )
    await conn.execute(QUERIES["delete_semesters"], university_id)
    await conn.execute(QUERIES["delete_registrations"], university_id)
    semesters = {
        (university_id, diff.SEASON_NAMES.get(s.season, ""), s.year) for s in u.available_semesters
    }
    if semesters:
        await conn.copy_records_to_table(
            "semester", records=sorted(semesters), columns=("university_id", "season", "year")
        )
    registrations = {}
    for r in u.registrations:
        registrations[r.period] = (
            r.period_date.ToDatetime(tzinfo=UTC) if r.HasField("period_date") else None
        )
    if registrations:
        await conn.copy_records_to_table(
            "registration",
            records=[(university_id, period, when) for period, when in registrations.items()],
            columns=("university_id", "period", "period_date"),
        )
