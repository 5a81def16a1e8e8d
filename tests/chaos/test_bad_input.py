"""Bad input across the boundary: every kind is rejected (with a reason) or stored and served intact.

Runs against the shared PostgreSQL/Redis with this test's own database and namespace (the
fixtures of tests/conftest.py). jet runs once per case (as an operator would run it by hand);
ein and spike run as daemons and must still be alive, and still working, afterwards.
Each test prints what every case got (pytest -s, or `make chaos`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from harness.pipeline import script, wait_until
from harness.processes import ManagedProcess
from harness.servers import free_port, wait_for_port
from harness.table import render
from trakr.codec import encode_university
from trakr.pb.trakr_pb2 import University
from trakr.scrapers.sim import simulate

pytestmark = [pytest.mark.chaos]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scrapers"
REDIS_URL = "redis://127.0.0.1:6379/0"

# --- helpers ----------------------------------------------------------------------------------


def run_jet(
    env: dict[str, str], command: list[str], *, args: tuple[str, ...] = ()
) -> tuple[int, str]:
    """trakr-jet once; (exit code, the reason it gave or 'queued')."""
    result = subprocess.run(
        [script("trakr-jet"), "--scraper-name", "bad", "--timeout", "30s", *args, "--", *command],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    text = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    reason = "queued" if result.returncode == 0 else "?"
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") in ("scrape_rejected", "scrape_done"):
            reason = record.get("result", reason)
    return result.returncode, reason


def json_scraper(tmp_path: Path, name: str, document: object) -> list[str]:
    """A scraper that prints `document` (a file and `cat`: any executable is a scraper)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document, ensure_ascii=False))
    return ["cat", str(path)]


def university(sections: list[dict], **fields: object) -> dict:
    doc = {
        "name": "Test University",
        "abbr": "test-u",
        "subjects": [
            {"number": "198", "name": "Computer Science", "season": "SPRING", "year": 2026,
             "courses": [{"code": "01-111", "number": "111", "name": "Intro", "sections": sections}]}
        ],
    }  # fmt: skip
    doc.update(fields)
    return doc


def start(name: str, argv: list[str], env: dict[str, str], tmp_path: Path) -> ManagedProcess:
    process = ManagedProcess(name=name, argv=argv, env=env, log_path=tmp_path / f"{name}.log")
    process.start()
    return process


@pytest.fixture
def ein(subprocess_env: dict[str, str], tmp_path: Path):
    port = free_port()
    env = {**subprocess_env, "TRAKR_METRICS_PORT": str(port)}
    process = start("ein", [script("trakr-ein")], env, tmp_path)
    wait_for_port(port, timeout_seconds=60, proc=process.proc)
    process.metrics_port = port  # type: ignore[attr-defined]
    yield process
    code = process.stop()
    assert code == 0, f"ein did not stop cleanly ({code}):\n{process.tail()}"


@pytest.fixture
def spike(subprocess_env: dict[str, str], tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in subprocess_env.items() if k != "TRAKR_METRICS_PORT"}
    env["TRAKR_SPIKE_PORT"] = str(port)
    process = start("spike", [script("trakr-spike"), "-p", str(port)], env, tmp_path)
    wait_for_port(port, timeout_seconds=60, proc=process.proc)
    process.base_url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield process
    code = process.stop()
    assert code == 0, f"spike did not stop cleanly ({code}):\n{process.tail()}"


def ein_idle(namespace: str) -> bool:
    """Everything in the scrapes stream has been read and acknowledged by group ein."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for group in client.xinfo_groups(f"{namespace}:scrapes"):
            if group["name"] in (b"ein", "ein"):
                return int(group["pending"]) == 0 and int(group.get("lag") or 0) == 0
        return False
    except redis.ResponseError:
        return False
    finally:
        client.close()


def dead_letters(namespace: str) -> dict[str, str]:
    """entry id of the rejected scrape -> reason, from <ns>:scrapes:dead."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {
            fields[b"entry_id"].decode(): fields[b"reason"].decode()
            for _, fields in client.xrange(f"{namespace}:scrapes:dead")
        }
    finally:
        client.close()


def strings_in(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return set()


def report(title: str, rows: list[tuple]) -> None:
    sys.stdout.write("\n" + render(["case", "expected", "got"], rows, title=title) + "\n")


# --- at jet: never queued ---------------------------------------------------------------------


def test_jet_rejects_unusable_output(subprocess_env, namespace, tmp_path) -> None:
    env = {**subprocess_env, "TRAKR_JET_MAX_OUTPUT_BYTES": str(16 * 1024 * 1024)}
    py = sys.executable
    long_number = "9" * 10_000  # a 10 kB subject number: its topic would pass FCM's 900 chars
    cases = [
        ("garbage (HTML error page)", [py, str(FIXTURES / "garbage.py")], {"parse_error"}),
        ("truncated JSON", [py, str(FIXTURES / "truncated.py")], {"parse_error"}),
        ("empty output", [py, str(FIXTURES / "nothing.py")], {"empty"}),
        ("200 MB output (cap 16 MB)", [py, str(FIXTURES / "huge.py")], {"too_large"}),
        ("scraper exits 1", [py, str(FIXTURES / "exit1.py")], {"exit_status"}),
        ("JSON, not a University", json_scraper(tmp_path, "array", [1, 2, 3]), {"parse_error"}),
        ("unknown field", json_scraper(tmp_path, "unknown", {"name": "U", "colour": "red"}), {"parse_error"}),
        ("no subjects", json_scraper(tmp_path, "nosubj", {"name": "U", "abbr": "u"}), {"no_subjects"}),
        ("status 'BOGUS'", json_scraper(tmp_path, "bogus", university(
            [{"index": "1", "number": "01", "status": "BOGUS"}])), {"parse_error", "bad_status"}),
        ("no status", json_scraper(tmp_path, "nostatus", university(
            [{"index": "1", "number": "01"}])), {"bad_status"}),
        ("indices that slug alike ('A/B', 'a#b')", json_scraper(tmp_path, "slugs", university(
            [{"index": "A/B", "number": "01", "status": "OPEN"},
             {"index": "a#b", "number": "01", "status": "OPEN"}])), {"duplicate_section"}),
        ("10 kB subject number (topic > 900 chars)", json_scraper(tmp_path, "longtopic", {
            **university([{"index": "1", "number": "01", "status": "OPEN"}]),
            "subjects": [{"number": long_number, "name": "Long", "season": "SPRING", "year": 2026,
                          "courses": [{"code": "1", "name": "C", "sections": [
                              {"index": "1", "number": "01", "status": "OPEN"}]}]}]}),
         {"invalid_topic"}),
    ]  # fmt: skip
    rows = []
    for label, command, expected in cases:
        code, reason = run_jet(env, command)
        rows.append((label, "/".join(sorted(expected)), f"exit {code}, {reason}"))
        assert code != 0 and reason in expected, rows[-1]
    report("bad output at jet: rejected, never queued", rows)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert (
            client.exists(f"{namespace}:scrapes") == 0 or client.xlen(f"{namespace}:scrapes") == 0
        )
    finally:
        client.close()


# --- at ein: what jet did not check (anyone can XADD) -----------------------------------------


def test_ein_dead_letters_bad_entries(ein, subprocess_env, namespace, database_dsn) -> None:
    good = simulate(sections=30, tick=1, abbr="deadletter")
    good_bytes = encode_university(good, "protobuf")
    nul = simulate(sections=30, tick=1, abbr="nul")
    nul.subjects[0].courses[0].name = "bad\x00name"  # PostgreSQL text cannot hold NUL
    no_subjects = University(name="Empty", abbr="empty")
    base = {
        "university": "x",
        "scraper": "hand",
        "format": "protobuf",
        "scraped_at": repr(time.time()),
    }
    cases = [
        ("garbage bytes", {**base, "payload": b"\xff\x00garbage" * 50}, {"parse_error"}),
        ("truncated protobuf", {**base, "payload": good_bytes[: len(good_bytes) // 2]}, {"parse_error"}),
        ("no subjects", {**base, "payload": encode_university(no_subjects, "protobuf")}, {"no_subjects"}),
        ("NUL in a course name", {**base, "payload": encode_university(nul, "protobuf")},
         {"database_rejected", "parse_error", "invalid_text", "invalid_string"}),
        ("JSON labelled protobuf", {**base, "payload": b'{"name": "U"}'}, {"parse_error"}),
        ("unknown format", {**base, "format": "xml", "payload": good_bytes}, {"bad_format", "parse_error", "unknown_format"}),
        ("no payload field", {k: v for k, v in base.items()}, {"empty_payload", "no_payload", "missing_payload"}),
    ]  # fmt: skip
    client = redis.Redis.from_url(REDIS_URL)
    ids = {}
    try:
        for label, fields, _ in cases:
            ids[label] = client.xadd(f"{namespace}:scrapes", fields).decode()
        valid_id = client.xadd(f"{namespace}:scrapes", {**base, "payload": good_bytes}).decode()
    finally:
        client.close()
    assert wait_until(lambda: ein_idle(namespace), timeout_seconds=60), ein.tail()
    letters = dead_letters(namespace)
    rows = []
    for label, _, expected in cases:
        got = letters.get(ids[label], "not dead-lettered")
        rows.append((label, "/".join(sorted(expected)), got))
    rows.append(
        ("valid scrape after them", "stored", "dead-lettered" if valid_id in letters else "stored?")
    )
    with psycopg.connect(database_dsn) as conn:
        stored = conn.execute(
            "SELECT u.topic_name, count(s.id) FROM university u LEFT JOIN section s"
            " ON s.university_id = u.id GROUP BY u.topic_name"
        ).fetchall()
    rows[-1] = (rows[-1][0], "stored", f"stored: {dict(stored)}")
    report("bad stream entries at ein: dead-lettered, ein keeps going", rows)
    assert ein.alive(), ein.tail()
    for label, _, expected in cases:
        assert letters.get(ids[label]) in expected, (
            f"{label}: {letters.get(ids[label])}\n{ein.tail()}"
        )
    assert dict(stored) == {"deadletter": 30}, stored


# --- stored and served intact -----------------------------------------------------------------

HOSTILE = {
    "unicode": "Ünïcödé 学生 👩‍🎓 مرحبا Ω≈ç√ ‮reversed‬ a\u0301",
    "sql": "Robert'); DROP TABLE section; -- \" \\ %s $1 :name ' OR '1'='1",
    "long": "L" * 10_240,
    "topic": "A/B #1 ?x=1&y 💥 ..",
}


def test_hostile_strings_are_stored_and_served(
    ein, spike, subprocess_env, database_dsn, tmp_path
) -> None:
    doc = {
        "name": HOSTILE["unicode"],
        "abbr": "hostile-u",
        "homePage": HOSTILE["sql"],
        "subjects": [{
            "number": HOSTILE["topic"], "name": HOSTILE["sql"], "season": "SPRING", "year": 2026,
            "courses": [{
                "code": HOSTILE["topic"], "number": "101", "name": HOSTILE["long"],
                "synopsis": HOSTILE["unicode"],
                "sections": [
                    {"index": HOSTILE["topic"], "number": "01", "status": "OPEN",
                     "instructors": [{"name": HOSTILE["sql"]}, {"name": HOSTILE["unicode"]}],
                     "meetings": [{"day": "Monday", "room": HOSTILE["sql"], "building": HOSTILE["unicode"]}]},
                    {"index": "2", "number": HOSTILE["unicode"][:20], "status": "CLOSED"},
                ],
            }],
        }],
    }  # fmt: skip
    code, reason = run_jet(subprocess_env, json_scraper(tmp_path, "hostile", doc))
    assert code == 0, reason
    namespace = subprocess_env["TRAKR_NAMESPACE"]
    assert wait_until(lambda: ein_idle(namespace), timeout_seconds=60), ein.tail()
    assert not dead_letters(namespace), dead_letters(namespace)
    with psycopg.connect(database_dsn) as conn:
        course_topic, course_name = conn.execute("SELECT topic_name, name FROM course").fetchone()
        tables = conn.execute("SELECT count(*) FROM section").fetchone()[0]
    rows = [
        (
            "course name (10 kB) in the database",
            "identical",
            "identical" if course_name == HOSTILE["long"] else "DIFFERENT",
        )
    ]
    rows.append(("section table after the SQL string", "2 rows", f"{tables} rows"))
    with httpx.Client(base_url=spike.base_url, timeout=10) as client:
        response = client.get(f"/v1/courses/{course_topic}")
        served = strings_in(response.json())
        for key, text in HOSTILE.items():
            ok = text in served
            rows.append(
                (
                    f"{key} string served back by spike",
                    "identical",
                    "identical" if ok else "MISSING",
                )
            )
        protobuf = client.get(
            f"/v1/courses/{course_topic}", headers={"Accept": "application/x-protobuf"}
        )
        rows.append(("course as protobuf", "200", str(protobuf.status_code)))
        probes = ["/v1/courses/x'%3B%20DROP%20TABLE%20section%3B--", "/v1/courses/" + "%F0%9F%92%A5" * 50,
                  "/v1/sections/" + "a" * 5000, "/v1/universities/%00", "/v1/universities/hostile-u/subjects?season=%27&year=x"]  # fmt: skip
        probe_codes = [client.get(p).status_code for p in probes]
        rows.append(
            (
                "hostile paths (quote, emoji, 5 kB, NUL, bad params)",
                "4xx",
                ", ".join(map(str, probe_codes)),
            )
        )
    report("hostile strings: stored and served intact", rows)
    assert response.status_code == 200, response.text[:500]
    assert course_name == HOSTILE["long"] and tables == 2
    assert all(text in served for text in HOSTILE.values()), served
    assert protobuf.status_code == 200
    assert all(400 <= c < 500 for c in probe_codes), probe_codes
    assert ein.alive() and spike.alive()


def test_half_missing_and_big_snapshots(ein, spike, subprocess_env, database_dsn, tmp_path) -> None:
    namespace = subprocess_env["TRAKR_NAMESPACE"]
    full = simulate(sections=600, tick=1, abbr="halfsim")
    (tmp_path / "full.pb").write_bytes(encode_university(full, "protobuf"))

    def without_subjects(share: float, name: str) -> int:
        """Write a copy of `full` whose registrar "forgot" that share of the subjects; sections kept."""
        part = University()
        part.CopyFrom(full)
        del part.subjects[round(len(part.subjects) * (1 - share)) :]
        (tmp_path / name).write_bytes(encode_university(part, "protobuf"))
        return sum(len(c.sections) for s in part.subjects for c in s.courses)

    kept_most = without_subjects(0.6, "sixty.pb")
    kept = without_subjects(0.5, "half.pb")
    removed_course = full.subjects[-1].courses[0].topic_name
    big_sections = 20_000
    big = encode_university(simulate(sections=big_sections, tick=1, abbr="bigsim"), "protobuf")
    (tmp_path / "big.pb").write_bytes(big)
    pb = ("--input-format", "protobuf")
    rows = []

    def sections_of(topic: str) -> int:
        with psycopg.connect(database_dsn) as conn:
            row = conn.execute(
                "SELECT count(s.id) FROM section s JOIN university u ON u.id = s.university_id"
                " WHERE u.topic_name = %s", (topic,)).fetchone()  # fmt: skip
        return int(row[0])

    assert run_jet(subprocess_env, ["cat", str(tmp_path / "full.pb")], args=pb)[0] == 0
    assert wait_until(lambda: ein_idle(namespace), timeout_seconds=60), ein.tail()
    assert sections_of("halfsim") == 600
    code60, reason60 = run_jet(subprocess_env, ["cat", str(tmp_path / "sixty.pb")], args=pb)
    assert wait_until(lambda: ein_idle(namespace), timeout_seconds=60), ein.tail()
    letters60 = dead_letters(namespace)
    stored_after60 = sections_of("halfsim")
    rows.append((f"snapshot missing 60% of its subjects ({kept_most}/600 sections)",
                 "ein: too_many_deletes, 600 kept", f"jet {reason60}; ein {'/'.join(letters60.values()) or 'stored'}; {stored_after60} sections kept"))  # fmt: skip
    code, reason = run_jet(subprocess_env, ["cat", str(tmp_path / "half.pb")], args=pb)
    assert wait_until(lambda: ein_idle(namespace), timeout_seconds=60), ein.tail()
    letters = {k: v for k, v in dead_letters(namespace).items() if k not in letters60}
    stored_after = sections_of("halfsim")
    with httpx.Client(base_url=spike.base_url, timeout=10) as client:
        served = client.get(f"/v1/courses/{removed_course}").status_code
    outcome = f"jet {reason}; ein {'/'.join(letters.values()) or 'stored'}; {stored_after} sections kept; removed course → {served}"
    rows.append(
        (
            f"snapshot missing half its subjects ({kept}/600 sections)",
            "rejected, or stored whole",
            outcome,
        )
    )

    started = time.monotonic()
    code, reason = run_jet(subprocess_env, ["cat", str(tmp_path / "big.pb")], args=pb)
    assert wait_until(lambda: ein_idle(namespace), timeout_seconds=120), ein.tail()
    big_stored = sections_of("bigsim")
    rows.append((f"big valid snapshot ({big_sections} sections, {len(big) >> 20} MB)", "stored",
                 f"jet {reason}; {big_stored} sections stored in {time.monotonic() - started:.1f}s"))  # fmt: skip
    report("partial and big snapshots", rows)
    assert code60 == 0 and reason60 == "queued"
    assert list(letters60.values()) == ["too_many_deletes"] and stored_after60 == 600
    assert code == 0 and reason == "queued"
    # Exactly half is at the guard's limit. Either answer is safe, and each must be whole: ein's delete-share guard
    # (TRAKR_EIN_MAX_DELETE_SHARE, deleting more than half is refused) dead-letters the scrape and
    # the old catalogue stays served, or the scrape is a legitimate update and the removed
    # courses are gone from the database and the API alike.
    if letters:
        assert stored_after == 600 and served == 200, (letters, stored_after, served)
    else:
        assert stored_after == kept and served == 404, (stored_after, served)
    assert big_stored == big_sections
    assert ein.alive() and spike.alive()
