"""Benchmark ein: diff ingest vs --insert-all vs a row-by-row upsert vs a binary COPY floor.

Run with `make bench` (or `.venv/bin/python bench/ingest.py`). Creates and drops its own
databases on TRAKR_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres) and
prints one table; every figure is measured in this run. Times are end to end through the
library call ein uses (`ingest_payload`: sha256 + decode + diff + one committed transaction),
the median of several repetitions where cheap enough (the `n` column).

Scenarios
  NB           the real Rutgers New Brunswick Spring 2026 snapshot (11,680 sections) from
               ../shared/realdata, via trakr.scrapers.rutgers.load_university
  real delta   the difference between the two real openSections files (5 NB sections),
               alternating between the two snapshots so every run is a real change
  1% changed   1% of the sections' statuses flipped (deterministic), alternating likewise
  sim 100k     trakr.scrapers.sim.simulate(sections=100_000, tick=t, changes=1000)
  process      `trakr-ein ingest` as its own process, for its peak RSS: the 100k first ingest
               then 1% changed; then a new process on that database (a restarted ein: cold
               cache, the stored hashes are read back and every subtree is diffed) with 1% changed
Columns
  diff         ein's normal mode;  insert-all  `-a` (every row written, set-based)
  row-by-row   one INSERT … ON CONFLICT per row (+ children), the original system's way
  COPY floor   binary COPY of the same rows into empty tables (rows pre-built; DB time only);
               on the first-ingest rows also without the per-row FK triggers, and the Python time
               to build the rows (decode + tuples), which the floor does not include
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import psycopg
from psycopg import sql
from trakr.codec import encode_university, validate_university
from trakr.db import with_database
from trakr.ein import diff
from trakr.ein import ingest as ein_ingest
from trakr.ein.ingest import ingest_payload
from trakr.migrate import migrate
from trakr.pb.trakr_pb2 import Section, University

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("TRAKR_TEST_REALDATA", REPO.parent / "shared" / "realdata"))
NB_COURSES = REALDATA / "rutgers_2026spring_NB_courses_2025-11-15T200031Z.json.gz"
OPEN_1 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T200031Z.json"
OPEN_2 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T202526Z.json"
SERVER = os.environ.get("TRAKR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# Defaults; `--sim-sections`, `--reps` and `--first-reps` override them (see --help).
SIM_SECTIONS = int(os.environ.get("TRAKR_BENCH_SIM_SECTIONS", "100000"))
REPS = int(os.environ.get("TRAKR_BENCH_REPS", "5"))
FIRST_REPS = int(
    os.environ.get("TRAKR_BENCH_FIRST_REPS", "3")
)  # median of 3: one slow run (a checkpoint) does not decide


# --- databases --------------------------------------------------------------------------------


class Databases:
    """Fresh migrated databases, all dropped at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new(self) -> str:
        name = f"ein_bench_{uuid.uuid4().hex[:10]}"
        self.created.append(name)
        dsn = with_database(SERVER, name)
        migrate(dsn)
        return dsn

    def drop_all(self) -> None:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            for name in self.created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def alternate(
    conn: asyncpg.Connection, a: bytes, b: bytes, reps: int, *, insert_all: bool
) -> list[float]:
    """Time ingests alternating b, a, b, …: each one a real change of the same size."""
    times = []
    for i in range(reps):
        payload = b if i % 2 == 0 else a
        times.append(
            await timed(
                lambda p=payload: ingest_payload(conn, p, "protobuf", insert_all=insert_all)
            )
        )
    return times


# --- references -------------------------------------------------------------------------------

UPSERT_UNIVERSITY = """INSERT INTO university (topic_name, topic_id, name, abbr) VALUES ($1, $2, $3, $4)
ON CONFLICT (topic_name) DO UPDATE SET name = EXCLUDED.name RETURNING id"""
UPSERT_SUBJECT = """INSERT INTO subject (university_id, topic_name, topic_id, number, name, season, year,
    metadata, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)
ON CONFLICT (topic_name) DO UPDATE SET number = EXCLUDED.number, name = EXCLUDED.name,
    metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash, updated_at = now() RETURNING id"""
UPSERT_COURSE = """INSERT INTO course (subject_id, topic_name, topic_id, code, number, name, synopsis, credits,
    metadata, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)
ON CONFLICT (topic_name) DO UPDATE SET code = EXCLUDED.code, number = EXCLUDED.number, name = EXCLUDED.name,
    synopsis = EXCLUDED.synopsis, credits = EXCLUDED.credits, metadata = EXCLUDED.metadata,
    content_hash = EXCLUDED.content_hash, updated_at = now() RETURNING id"""
UPSERT_SECTION = """INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number, status,
    credits, books, metadata, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11)
ON CONFLICT (topic_name) DO UPDATE SET index = EXCLUDED.index, number = EXCLUDED.number,
    status = EXCLUDED.status, credits = EXCLUDED.credits, books = EXCLUDED.books,
    metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash, updated_at = now() RETURNING id"""
INSERT_MEETING = """INSERT INTO meeting (section_id, ordinal, day, start_time, end_time, room, building, campus,
    class_type, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)"""
INSERT_INSTRUCTOR = "INSERT INTO instructor (section_id, ordinal, name) VALUES ($1, $2, $3)"


async def row_by_row(conn: asyncpg.Connection, payload: bytes) -> None:
    """Every row upserted by its own statement (children deleted and re-inserted), one transaction."""
    university = University.FromString(payload)
    validate_university(university)
    async with conn.transaction():
        uid = await conn.fetchval(
            UPSERT_UNIVERSITY,
            university.topic_name,
            university.topic_id,
            university.name,
            university.abbr,
        )
        for s in university.subjects:
            rec = diff.subject_record(0, uid, s)
            sid = await conn.fetchval(UPSERT_SUBJECT, *rec[1:])
            for c in s.courses:
                rec = diff.course_record(0, sid, c)
                cid = await conn.fetchval(UPSERT_COURSE, *rec[1:])
                for x in c.sections:
                    rec = diff.section_record(0, cid, uid, x, diff.section_hash(x))
                    xid = await conn.fetchval(UPSERT_SECTION, *rec[1:])
                    meetings: list[tuple[object, ...]] = []
                    instructors: list[tuple[object, ...]] = []
                    diff.add_children(xid, x, meetings, instructors)
                    await conn.execute("DELETE FROM meeting WHERE section_id = $1", xid)
                    for m in meetings:
                        await conn.execute(INSERT_MEETING, *m)
                    await conn.execute("DELETE FROM instructor WHERE section_id = $1", xid)
                    for i in instructors:
                        await conn.execute(INSERT_INSTRUCTOR, *i)


def all_records(payload: bytes) -> list[tuple[str, list[tuple[object, ...]], tuple[str, ...]]]:
    university = University.FromString(payload)
    validate_university(university)
    subjects, courses, sections, meetings, instructors = [], [], [], [], []
    ids = iter(range(1, 10**9))
    for s in university.subjects:
        sid = next(ids)
        subjects.append(diff.subject_record(sid, 1, s))
        for c in s.courses:
            cid = next(ids)
            courses.append(diff.course_record(cid, sid, c))
            for x in c.sections:
                xid = next(ids)
                sections.append(diff.section_record(xid, cid, 1, x, diff.section_hash(x)))
                diff.add_children(xid, x, meetings, instructors)
    return [
        ("subject", subjects, diff.SUBJECT_COLUMNS),
        ("course", courses, diff.COURSE_COLUMNS),
        ("section", sections, diff.SECTION_COLUMNS),
        ("meeting", meetings, diff.MEETING_COLUMNS),
        ("instructor", instructors, diff.INSTRUCTOR_COLUMNS),
    ]


async def copy_floor(dsn: str, payload: bytes, *, fk_checks: bool = True) -> float:
    """Binary COPY of every row into the empty tables, one transaction: DB time only (the rows
    are built beforehand, see `build_seconds`). With fk_checks=False the per-row foreign-key
    triggers are switched off (session_replication_role = replica, superuser only) to show what
    they cost; everything else (indexes, unique checks) is the same as ein pays."""
    tables = all_records(payload)
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            if not fk_checks:
                await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                "INSERT INTO university (id, topic_name, topic_id, name, abbr) VALUES (1, 'u', 1, 'u', 'u')"
            )
            for table, records, columns in tables:
                await conn.copy_records_to_table(table, records=records, columns=columns)
        return time.perf_counter() - started
    finally:
        await conn.close()


def build_seconds(payload: bytes) -> float:
    """Python time to decode the snapshot and build every COPY row tuple (not in the floor)."""
    started = time.perf_counter()
    all_records(payload)
    return time.perf_counter() - started


def flip_share(payload: bytes, share: float, seed: int = 1) -> bytes:
    """The snapshot with `share` of its sections' statuses flipped (a deterministic choice)."""
    university = University.FromString(payload)
    sections = [x for s in university.subjects for c in s.courses for x in c.sections]
    for x in random.Random(seed).sample(sections, round(len(sections) * share)):
        x.status = Section.OPEN if x.status != Section.OPEN else Section.CLOSED
    return encode_university(university, "protobuf")


def count_sections(payload: bytes) -> int:
    university = University.FromString(payload)
    return sum(len(c.sections) for s in university.subjects for c in s.courses)


# --- scenarios --------------------------------------------------------------------------------

Row = list[str]


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "—"


async def dataset(
    dbs: Databases,
    label: str,
    base: bytes,
    *,
    real_delta: bytes | None,
    one_percent: bytes,
    row_by_row_ref: bool,
) -> list[Row]:
    n = count_sections(base)
    rows: list[Row] = []
    floor = await copy_floor(dbs.new(), base)
    try:
        floor_no_fk: float | None = await copy_floor(dbs.new(), base, fk_checks=False)
    except asyncpg.InsufficientPrivilegeError:
        floor_no_fk = None
    build = build_seconds(base)

    # First ingests: fresh databases, diff and insert-all interleaved (so neither pays alone for
    # a checkpoint or a cold cache), median of FIRST_REPS each; the last pair stays in use.
    firsts: dict[str, list[float]] = {"diff": [], "ia": []}
    conns: dict[str, asyncpg.Connection] = {}
    for rep in range(FIRST_REPS):
        for mode in ("ia", "diff") if rep % 2 else ("diff", "ia"):
            if mode in conns:
                await conns.pop(mode).close()
            conn = conns[mode] = await asyncpg.connect(dbs.new())
            ein_ingest._CACHE.clear()
            firsts[mode].append(
                await timed(
                    lambda c=conn, m=mode: ingest_payload(c, base, "protobuf", insert_all=m == "ia")
                )
            )
    diff_conn, ia_conn = conns["diff"], conns["ia"]
    first, first_ia = statistics.median(firsts["diff"]), statistics.median(firsts["ia"])
    try:
        rows.append(
            [f"{label} first ingest (empty DB)", f"{n:,}", str(FIRST_REPS), f"{fmt_time(first)} ({n / first:,.0f}/s)",
             f"{fmt_time(first_ia)} ({n / first_ia:,.0f}/s)", fmt_ratio(first_ia, first), "—",
             f"{fmt_time(floor)} (no FK checks {fmt_time(floor_no_fk)}; + rows built {fmt_time(build)})"]
        )  # fmt: skip
        ident = [
            await timed(lambda: ingest_payload(diff_conn, base, "protobuf")) for _ in range(REPS)
        ]
        ia_reps = max(1, REPS // 2 if n < 50_000 else 1)
        ident_ia = [
            await timed(lambda: ingest_payload(ia_conn, base, "protobuf", insert_all=True))
            for _ in range(ia_reps)
        ]
        rows.append(
            [f"{label} identical re-ingest", f"{n:,}", str(REPS), fmt_time(statistics.median(ident)),
             fmt_time(statistics.median(ident_ia)), fmt_ratio(statistics.median(ident_ia), statistics.median(ident)),
             "—", fmt_time(floor)]
        )  # fmt: skip
        changes = [("real delta", real_delta)] if real_delta is not None else []
        changes.append(("1% changed", one_percent))
        for name, other in changes:
            changed = sum(
                1 for a, b in zip(_statuses(base), _statuses(other), strict=True) if a != b
            )
            d = statistics.median(await alternate(diff_conn, base, other, REPS, insert_all=False))
            ia = statistics.median(await alternate(ia_conn, base, other, ia_reps, insert_all=True))
            rbr = None
            if row_by_row_ref and name == "real delta":
                rbr_dsn = dbs.new()
                rbr_conn = await asyncpg.connect(rbr_dsn)
                try:
                    await row_by_row(rbr_conn, base)
                    rbr = await timed(lambda o=other, c=rbr_conn: row_by_row(c, o))
                finally:
                    await rbr_conn.close()
            # Back to the base snapshot so the next scenario starts from it.
            await ingest_payload(diff_conn, base, "protobuf")
            await ingest_payload(ia_conn, base, "protobuf", insert_all=True)
            rows.append(
                [f"{label} {name} ({changed:,} sections)", f"{n:,}", str(REPS), fmt_time(d), fmt_time(ia),
                 fmt_ratio(ia, d), fmt_time(rbr), fmt_time(floor)]
            )  # fmt: skip
    finally:
        await diff_conn.close()
        await ia_conn.close()
    return rows


def _statuses(payload: bytes) -> list[int]:
    university = University.FromString(payload)
    return [x.status for s in university.subjects for c in s.courses for x in c.sections]


def process_rss(dsn: str, files: list[Path]) -> tuple[float, list[str]]:
    """Run `trakr-ein ingest FILES…` as its own process; its peak RSS (MB) and summary lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    env.update(
        TRAKR_POSTGRES_DSN=dsn,
        TRAKR_NAMESPACE=f"ein-bench-{uuid.uuid4().hex[:8]}",
        TRAKR_LOG_LEVEL="WARNING",
    )
    # Through a small launcher: Linux charges a child the RSS it had before exec (a vfork of
    # this big process), so ru_maxrss of a direct child would report the bench, not ein.
    launcher = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:])\n"
        "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stderr.write(f'RSS_KB={kb}\\n')\n"
        "sys.exit(done.returncode)\n"
    )
    cmd = [sys.executable, "-m", "trakr.ein", "ingest", "-f", "protobuf", *map(str, files)]
    done = subprocess.run(
        [sys.executable, "-c", launcher, *cmd], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"trakr-ein ingest failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    rss_kb = int(done.stderr.rsplit("RSS_KB=", 1)[1].split()[0])
    return rss_kb / 1024, [line for line in done.stdout.splitlines() if "ms;" in line]


async def main() -> None:
    from trakr.scrapers import sim
    from trakr.scrapers.rutgers import load_university

    dbs = Databases()
    started = time.perf_counter()
    try:
        nb_a = encode_university(load_university(NB_COURSES, OPEN_1), "protobuf")
        nb_b = encode_university(load_university(NB_COURSES, OPEN_2), "protobuf")
        rows = await dataset(
            dbs,
            "NB",
            nb_a,
            real_delta=nb_b,
            one_percent=flip_share(nb_a, 0.01),
            row_by_row_ref=True,
        )
        sim_a = encode_university(
            sim.simulate(sections=SIM_SECTIONS, tick=0, changes=SIM_SECTIONS // 100), "protobuf"
        )
        sim_b = encode_university(
            sim.simulate(sections=SIM_SECTIONS, tick=1, changes=SIM_SECTIONS // 100), "protobuf"
        )
        rows += await dataset(
            dbs,
            f"sim {SIM_SECTIONS // 1000}k",
            sim_a,
            real_delta=None,
            one_percent=sim_b,
            row_by_row_ref=False,
        )
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp) / "t0.pb", Path(tmp) / "t1.pb"
            a.write_bytes(sim_a)
            b.write_bytes(sim_b)
            dsn = dbs.new()
            rss, lines = process_rss(dsn, [a, b])
            # A restarted ein: a new process, the database already holds b, a differs by 1%.
            # Its cache is cold, so it reads the stored hashes and diffs every subtree.
            restart_rss, restart_lines = process_rss(dsn, [a])
        timings = [line.split(" in ", 1)[1].split(";", 1)[0] for line in lines]
        restart = restart_lines[0].split(" in ", 1)[1].split(";", 1)[0]
        rows.append(
            [f"trakr-ein ingest process, sim {SIM_SECTIONS // 1000}k first + 1%", f"{SIM_SECTIONS:,}", "1",
             " then ".join(timings), "—", "—", "—", f"peak RSS {rss:.0f} MB"]
        )  # fmt: skip
        rows.append(
            [f"trakr-ein ingest process after a restart, sim {SIM_SECTIONS // 1000}k 1%", f"{SIM_SECTIONS:,}",
             "1", restart, "—", "—", "—", f"peak RSS {restart_rss:.0f} MB"]
        )  # fmt: skip
    finally:
        dbs.drop_all()
    header = [
        "scenario",
        "sections",
        "n",
        "ein diff",
        "insert-all",
        "IA ÷ diff",
        "row-by-row",
        "COPY floor",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; bench process peak RSS {own_rss:.0f} MB; "
        f"total {time.perf_counter() - started:.0f} s. Times: median of n, end to end (sha256 + decode + diff + "
        "commit); COPY floor: DB time of a binary COPY of all rows into empty tables."
    )


def parse_args() -> None:
    """--help, and the three sizes (also settable as TRAKR_BENCH_* environment variables)."""
    global SIM_SECTIONS, REPS, FIRST_REPS
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sim-sections", type=int, default=SIM_SECTIONS,
        help="sections of the simulated university (TRAKR_BENCH_SIM_SECTIONS; default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--reps", type=int, default=REPS,
        help="repetitions of each re-ingest figure (TRAKR_BENCH_REPS; default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--first-reps", type=int, default=FIRST_REPS,
        help="repetitions of each first ingest (TRAKR_BENCH_FIRST_REPS; default %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()
    SIM_SECTIONS, REPS, FIRST_REPS = args.sim_sections, args.reps, args.first_reps


if __name__ == "__main__":
    parse_args()
    asyncio.run(main())
