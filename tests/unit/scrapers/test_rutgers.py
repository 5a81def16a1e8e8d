"""trakr-scrape-rutgers on every real SOC file: counts, keys, status override, formats, bad input."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format
from trakr.codec import decode_university, encode_university
from trakr.pb.trakr_pb2 import Section, Semester, University
from trakr.scrapers import rutgers
from trakr.scrapers.pbjson import message_to_json

# The same paths as tests/conftest.py (which is not importable as a module: other directories
# have their own conftest.py).
REALDATA = Path(
    os.environ.get(
        "TRAKR_TEST_REALDATA", Path(__file__).resolve().parents[4] / "shared" / "realdata"
    )
)
NB_COURSES = REALDATA / "rutgers_2026spring_NB_courses_2025-11-15T200031Z.json.gz"
NK_COURSES = REALDATA / "rutgers_2026spring_NK_courses_2025-11-15T200032Z.json.gz"
CM_COURSES = REALDATA / "rutgers_2026spring_CM_courses_2025-11-15T200032Z.json.gz"
OPEN_SECTIONS_1 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T200031Z.json"
OPEN_SECTIONS_2 = REALDATA / "rutgers_2026spring_openSections_2025-11-15T202526Z.json"
EXPECTED = {  # campus: (courses, sections), from the realdata README
    "NB": (4608, 11680),
    "NK": (1210, 2397),
    "CM": (963, 1752),
}
COURSE_FILES = sorted(p for p in REALDATA.glob("*courses*.json*") if "metadata" not in p.name)


def campus_of(path: Path) -> str:
    return path.name.split("_")[2]


def sections_of(university: University) -> list[Section]:
    return [
        s for subject in university.subjects for course in subject.courses for s in course.sections
    ]


@functools.cache
def raw_courses(path: Path) -> list[dict]:
    return json.loads(gzip.decompress(path.read_bytes()))


@functools.cache
def loaded(path: Path, open_sections: Path | None = None) -> University:
    return rutgers.load_university(path, open_sections, campus=campus_of(path))


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "trakr.scrapers.rutgers", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_every_courses_file_is_present() -> None:
    assert {campus_of(p) for p in COURSE_FILES} >= set(EXPECTED)


@pytest.mark.parametrize("path", COURSE_FILES, ids=lambda p: p.name)
def test_every_courses_file_parses(path: Path) -> None:
    university = loaded(path)
    sections = sections_of(university)
    courses = [c for subject in university.subjects for c in subject.courses]
    assert (len(courses), len(sections)) == EXPECTED[campus_of(path)]
    # Unique keys: the section index, every topic name and topic id.
    assert len({s.index for s in sections}) == len(sections)
    topics = [university.topic_name]
    topics += [s.topic_name for s in university.subjects]
    topics += [c.topic_name for c in courses]
    topics += [s.topic_name for s in sections]
    assert len(set(topics)) == len(topics)
    assert len({s.topic_id for s in sections}) == len(sections)
    assert len({(s.number, s.topic_name.rsplit(".", 2)[0]) for s in sections}) == len(sections)
    # Statuses come from openStatus when no openSections file is given.
    raw = raw_courses(path)
    assert sum(s.status == Section.OPEN for s in sections) == sum(
        s["openStatus"] for c in raw for s in c["sections"]
    )
    assert all(s.status in (Section.OPEN, Section.CLOSED) for s in sections)
    assert university.available_semesters[0] == Semester(season=Semester.SPRING, year=2026)


def test_university_per_campus() -> None:
    assert loaded(NB_COURSES).name == "Rutgers University\u2013New Brunswick"
    assert loaded(NB_COURSES).abbr == "rutgers-nb"
    assert loaded(NK_COURSES).abbr == "rutgers-nk"
    assert loaded(CM_COURSES).name == "Rutgers University\u2013Camden"
    nb = loaded(NB_COURSES)
    assert (
        nb.registration_page
        == "https://sis.rutgers.edu/soc/#home?semester=12026&campus=NB&level=U,G"
    )
    assert nb.home_page.startswith("https://")


def test_course_string_repeats_get_distinct_codes() -> None:
    # The README's caveat: 13 courseStrings repeat in NB, differing only in supplementCode.
    raw = raw_courses(NB_COURSES)
    strings = [c["courseString"] for c in raw]
    repeated = {s for s in strings if strings.count(s) > 1}
    assert len(repeated) == 13
    physics = next(s for s in loaded(NB_COURSES).subjects if s.number == "750")
    codes = {c.code for c in physics.courses if c.number == "193"}
    assert codes == {"01-193", "01-193-LB"}
    # Off-campus offerings (campusCode OB) carry their campus in the code.
    assert any(c.code.endswith("-OB") for s in loaded(NB_COURSES).subjects for c in s.courses)


def test_mapping_of_one_course() -> None:
    cs = next(s for s in loaded(NB_COURSES).subjects if s.number == "198")
    assert cs.name == "Computer Science"
    assert cs.season == Semester.SPRING and cs.year == 2026
    course = next(c for c in cs.courses if c.code == "01-111")
    assert course.number == "111"
    assert course.name == "INTRO COMPUTER SCI"  # no expandedTitle: the short title is used
    assert course.credits == "4"
    assert course.synopsis == "http://www.cs.rutgers.edu/undergraduate/courses/"
    metadata = {m.title: m.content for m in course.metadata}
    assert metadata["Course string"] == "01:198:111"
    assert metadata["Prerequisites"].startswith("Any Course EQUAL or GREATER")
    assert metadata["School"] == "School of Arts and Sciences"
    assert all(m.content for m in course.metadata)
    section = next(s for s in course.sections if s.index == "11396")
    assert section.number == "01"
    assert section.credits == "4"
    assert [i.name for i in section.instructors] == ["GOEL, APOORVA"]
    meetings = [
        (m.day, m.start_time, m.end_time, m.building, m.room, m.campus, m.class_type)
        for m in section.meetings
    ]
    assert meetings == [
        ("Monday", "14:00", "15:20", "ABW", "2125", "COLLEGE AVENUE", "LEC"),
        ("Wednesday", "14:00", "15:20", "ABW", "2125", "COLLEGE AVENUE", "LEC"),
        ("Tuesday", "10:35", "11:30", "HLL", "252", "BUSCH", "RECIT"),
    ]
    assert {m.title: m.content for m in section.metadata}["Exam"] == "Computer Science"
    assert section.topic_name == "rutgers-nb.198.spring.2026.01-111.01.11396"


def test_expanded_title_wins_and_is_cleaned() -> None:
    names = {c.name for s in loaded(NB_COURSES).subjects for c in s.courses}
    assert "COMICS IN THE MIDDLE EAST" in names
    assert "ELEMENTARY HINDI II" in names  # trailing padding removed
    assert all(name == " ".join(name.split()) and name for name in names)


def test_credits_strings() -> None:
    credits = {c.credits for s in loaded(NB_COURSES).subjects for c in s.courses}
    assert {"3", "1.5", "0.5", ""} <= credits
    assert not any(c.endswith(".0") for c in credits)


def test_meetings_use_full_day_names_and_24h_times() -> None:
    meetings = [m for s in sections_of(loaded(NB_COURSES)) for m in s.meetings]
    assert {m.day for m in meetings} <= {
        "",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    }
    assert all(
        len(m.start_time) in (0, 5) and (not m.start_time or m.start_time[2] == ":")
        for m in meetings
    )
    assert "ONLINE" in {m.campus for m in meetings}
    assert not any(m.campus.startswith("**") for m in meetings)


def test_order_is_deterministic() -> None:
    raw = raw_courses(CM_COURSES)
    shuffled = list(reversed(raw))
    forward = rutgers.build_university(raw, None, campus="CM")
    backward = rutgers.build_university(shuffled, None, campus="CM")
    assert forward.SerializeToString(deterministic=True) == backward.SerializeToString(
        deterministic=True
    )
    numbers = [s.number for s in forward.subjects]
    assert numbers == sorted(numbers)


@pytest.mark.parametrize(
    "open_sections", [OPEN_SECTIONS_1, OPEN_SECTIONS_2], ids=["2000Z", "2025Z"]
)
def test_open_sections_override(open_sections: Path) -> None:
    listed = set(json.loads(open_sections.read_text()))
    university = loaded(NB_COURSES, open_sections)
    sections = sections_of(university)
    opened = {s.index for s in sections if s.status == Section.OPEN}
    assert opened == listed & {s.index for s in sections}
    assert len(opened) == {OPEN_SECTIONS_1: 10033, OPEN_SECTIONS_2: 10032}[open_sections]
    assert len(sections) - len(opened) == sum(s.status == Section.CLOSED for s in sections)


def test_empty_open_sections_closes_everything(tmp_path: Path) -> None:
    university = rutgers.build_university(raw_courses(CM_COURSES), set(), campus="CM")
    assert all(s.status == Section.CLOSED for s in sections_of(university))


def test_gzip_and_plain_give_the_same_university(tmp_path: Path) -> None:
    plain = tmp_path / "courses.json"
    plain.write_bytes(gzip.decompress(CM_COURSES.read_bytes()))
    assert rutgers.load_university(plain, campus="CM") == loaded(CM_COURSES)


def test_fast_json_equals_json_format() -> None:
    university = loaded(NK_COURSES, OPEN_SECTIONS_1)
    expected = json_format.MessageToJson(university, indent=None, ensure_ascii=False).encode()
    assert message_to_json(university) == expected
    assert message_to_json(university) == encode_university(university, "json")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_urls(http_root: str, tmp_path: Path) -> None:
    (tmp_path / "courses.json.gz").write_bytes(CM_COURSES.read_bytes())
    (tmp_path / "open.json").write_bytes(OPEN_SECTIONS_1.read_bytes())
    university = rutgers.load_university(
        f"{http_root}/courses.json.gz", f"{http_root}/open.json", campus="CM"
    )
    assert university == loaded(CM_COURSES, OPEN_SECTIONS_1)
    with pytest.raises(rutgers.RutgersDataError, match="cannot fetch"):
        rutgers.load_university(f"{http_root}/missing.json", campus="CM")


def test_cli_prints_the_nb_university() -> None:
    # The acceptance check: the whole NB file with the 20:00Z openSections.
    result = run_cli("--courses", str(NB_COURSES), "--open-sections", str(OPEN_SECTIONS_1))
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    university = decode_university(result.stdout, "json")
    assert university == loaded(NB_COURSES, OPEN_SECTIONS_1)
    assert len(sections_of(university)) == 11680


def test_cli_json_and_protobuf_carry_the_same_university() -> None:
    args = ("--courses", str(CM_COURSES), "--open-sections", str(OPEN_SECTIONS_2), "--campus", "CM")
    as_json = run_cli(*args)
    as_protobuf = run_cli(*args, "--format", "protobuf")
    assert as_json.returncode == as_protobuf.returncode == 0, as_json.stderr + as_protobuf.stderr
    from_json = decode_university(as_json.stdout, "json")
    assert from_json == decode_university(as_protobuf.stdout, "protobuf")
    assert from_json == loaded(CM_COURSES, OPEN_SECTIONS_2)
    assert as_protobuf.stdout == encode_university(from_json, "protobuf")


def test_cli_campus_flag() -> None:
    result = run_cli("--courses", str(CM_COURSES), "--campus", "cm", "--format", "protobuf")
    assert result.returncode == 0, result.stderr
    assert decode_university(result.stdout, "protobuf").abbr == "rutgers-cm"


BAD_COURSES = {
    "garbage": b"this is not json",
    "empty_file": b"",
    "whitespace": b"  \n",
    "empty_list": b"[]",
    "object": b'{"courses": []}',
    "numbers": b"[1, 2, 3]",
    "missing_fields": b'[{"subject": "198"}]',
    "sections_not_list": b'[{"subject": "198", "courseNumber": "111", "offeringUnitCode": "01", "sections": 5}]',
    "bad_gzip": b"\x1f\x8b\x08\x00garbage",
    "not_utf8": b"\xff\xfe\xfa",
}


@pytest.mark.parametrize("name", sorted(BAD_COURSES))
def test_cli_bad_courses(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.json"
    path.write_bytes(BAD_COURSES[name])
    assert_one_line_error(run_cli("--courses", str(path)))


def test_cli_missing_file(tmp_path: Path) -> None:
    result = run_cli("--courses", str(tmp_path / "nope.json"))
    assert_one_line_error(result)
    assert b"nope.json" in result.stderr


@pytest.mark.parametrize("content", [b"garbage", b'{"00053": true}', b"[1, 2]"])
def test_cli_bad_open_sections(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "open.json"
    path.write_bytes(content)
    assert_one_line_error(run_cli("--courses", str(CM_COURSES), "--open-sections", str(path)))


def assert_one_line_error(result: subprocess.CompletedProcess[bytes]) -> None:
    assert result.returncode != 0
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in lines[0]


def test_library_errors_are_invalid_scrape() -> None:
    with pytest.raises(rutgers.RutgersDataError, match="empty"):
        rutgers.build_university([], None)
    with pytest.raises(
        rutgers.RutgersDataError, match=r"course #0 \(01:198:111\): missing field 'sections'"
    ):
        rutgers.build_university(
            [
                {
                    "courseString": "01:198:111",
                    "subject": "198",
                    "courseNumber": "111",
                    "offeringUnitCode": "01",
                }
            ],
            None,
        )
