"""codec: both wire formats round-trip, and every rejection reason is reachable."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from trakr.codec import ScrapeRejected, decode_university, encode_university, validate_university
from trakr.pb.trakr_pb2 import Section, Semester, University
from trakr.scrapers.sim import simulate


def small() -> University:
    university = University(name="Tiny U", abbr="tiny")
    subject = university.subjects.add(number="198", name="CS", season=Semester.SPRING, year=2026)
    course = subject.courses.add(code="01-111", number="111", name="Intro", credits="4")
    course.sections.add(index="09214", number="01", status=Section.OPEN)
    course.sections.add(index="09215", number="02", status=Section.CLOSED)
    return university


@pytest.mark.parametrize("fmt", ["json", "protobuf"])
def test_round_trip(fmt: str) -> None:
    university = simulate(sections=200, tick=3, seed=1, flapping=2)
    payload = encode_university(university, fmt)  # type: ignore[arg-type]
    decoded = decode_university(payload, fmt)  # type: ignore[arg-type]
    assert decoded == university
    assert encode_university(decoded, fmt) == payload  # type: ignore[arg-type]


def test_json_is_the_protobuf_json_mapping() -> None:
    payload = encode_university(small(), "json")
    assert b'"subjects": [{"number": "198"' in payload
    assert b'"status": "OPEN"' in payload
    assert json_format.Parse(payload, University()) == small()


def test_binary_is_deterministic() -> None:
    assert encode_university(small(), "protobuf") == encode_university(small(), "protobuf")


def test_validate_counts_and_fills_topics() -> None:
    university = small()
    counts = validate_university(university)
    assert (counts.subjects, counts.courses, counts.sections) == (1, 1, 2)
    assert (
        university.subjects[0].courses[0].sections[0].topic_name
        == "tiny.198.spring.2026.01-111.01.09214"
    )
    assert university.topic_id != 0


@pytest.mark.parametrize(
    "payload", [b"garbage", b"[1, 2]", b'{"name": 5}', b'{"nope": 1}', b"\xff\xfe"]
)
def test_parse_error_json(payload: bytes) -> None:
    with pytest.raises(ScrapeRejected) as caught:
        decode_university(payload, "json")
    assert caught.value.reason == "parse_error"
    assert "json" in str(caught.value)


def test_parse_error_protobuf() -> None:
    with pytest.raises(ScrapeRejected) as caught:
        decode_university(b"\xff\xff\xff\xff garbage", "protobuf")
    assert caught.value.reason == "parse_error"


def rejected(university: University) -> str:
    with pytest.raises(ScrapeRejected) as caught:
        validate_university(university)
    return caught.value.reason


def test_no_name() -> None:
    university = small()
    university.name = "   "
    assert rejected(university) == "no_name"


def test_empty_protobuf_payload_is_a_university_without_a_name() -> None:
    assert rejected(decode_university(b"", "protobuf")) == "no_name"


def test_no_subjects() -> None:
    assert rejected(University(name="Empty U", abbr="empty")) == "no_subjects"


def test_duplicate_subject() -> None:
    university = small()
    university.subjects.add(number="198", name="CS again", season=Semester.SPRING, year=2026)
    assert rejected(university) == "duplicate_subject"


def test_duplicate_course() -> None:
    university = small()
    university.subjects[0].courses.add(code="01-111", number="111")
    assert rejected(university) == "duplicate_course"


def test_duplicate_section() -> None:
    university = small()
    university.subjects[0].courses[0].sections.add(index="09214", number="01", status=Section.OPEN)
    assert rejected(university) == "duplicate_section"


def test_bad_status() -> None:
    university = small()
    university.subjects[0].courses[0].sections[1].status = Section.STATUS_UNSPECIFIED
    assert rejected(university) == "bad_status"


def test_invalid_topic() -> None:
    university = small()
    university.subjects[0].courses[0].sections[0].index = "9" * 1000  # longer than FCM allows
    assert rejected(university) == "invalid_topic"


def test_reason_is_a_short_label() -> None:
    error = ScrapeRejected("no_name", "the University has no name")
    assert error.reason == "no_name"
    assert str(error) == "the University has no name"
