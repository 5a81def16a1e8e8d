"""codec: both wire formats round-trip, and every rejection reason is reachable."""

from __future__ import annotations

import hypothesis
import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from trakr.codec import (
    KnownSubjects,
    ScrapeCounts,
    ScrapeRejected,
    decode_university,
    encode_university,
    validate_university,
)
from trakr.pb.trakr_pb2 import Section, Semester, University
from trakr.scrapers.sim import simulate
from trakr.topics import assign_topics, topic_id


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


def test_an_unknown_season_is_an_invalid_topic() -> None:
    university = small()
    university.subjects[0].season = 7  # type: ignore[assignment]  # open enum: any number parses
    payload = encode_university(university, "protobuf")
    with pytest.raises(ScrapeRejected) as caught:
        validate_university(decode_university(payload, "protobuf"))
    assert caught.value.reason == "invalid_topic"
    assert "season 7" in str(caught.value)


def test_reason_is_a_short_label() -> None:
    error = ScrapeRejected("no_name", "the University has no name")
    assert error.reason == "no_name"
    assert str(error) == "the University has no name"


# --- KnownSubjects: jet's short cut for consecutive protobuf scrapes --------------------------


def sim(tick: int, **kwargs: object) -> University:
    return simulate(sections=120, tick=tick, subjects=4, **kwargs)  # type: ignore[arg-type]


def test_known_subjects_accept_what_validation_accepts() -> None:
    known = KnownSubjects()
    for tick in (1, 2, 4, 4, 9):
        university = sim(tick)
        accepted = known.accept(university.SerializeToString())
        assert accepted is not None
        assert accepted.university == "sim"
        assert accepted.counts == validate_university(university)


def test_known_subjects_leave_anything_to_fill_or_name_to_the_full_check() -> None:
    known = KnownSubjects()
    assert known.accept(sim(1).SerializeToString()) is not None
    bare = sim(2)
    bare.subjects[1].courses[0].sections[0].topic_name = ""
    assert known.accept(bare.SerializeToString()) is None  # a topic to fill
    # Known subject bytes under another university topic name are not taken as known.
    assert known.accept(sim(2).SerializeToString()) is not None
    renamed = sim(2)
    renamed.abbr = "other"
    renamed.topic_name, renamed.topic_id = "other", topic_id("other")
    assert known.accept(renamed.SerializeToString()) is None
    assert known.accept(b"\xff\xff garbage") is None
    assert known.accept(b"") is None


def test_a_known_subject_twice_is_a_duplicate() -> None:
    known = KnownSubjects()
    university = sim(1)
    assert known.accept(university.SerializeToString()) is not None
    university.subjects.add().CopyFrom(university.subjects[0])  # byte-identical, already known
    assert known.accept(university.SerializeToString()) is None
    assert rejected(university) == "duplicate_subject"


def test_a_known_course_twice_is_a_duplicate() -> None:
    known = KnownSubjects()
    university = sim(1)
    assert known.accept(university.SerializeToString()) is not None
    # A change in subject 0: from now on its courses are known one by one.
    section = university.subjects[0].courses[1].sections[0]
    section.status = Section.OPEN if section.status != Section.OPEN else Section.CLOSED
    assert known.accept(university.SerializeToString()) is not None
    courses = university.subjects[0].courses
    courses.add().CopyFrom(courses[0])  # byte-identical to a known course
    assert known.accept(university.SerializeToString()) is None
    assert rejected(university) == "duplicate_course"
    del courses[-1]
    courses[0].sections.add().CopyFrom(courses[0].sections[0])
    assert known.accept(university.SerializeToString()) is None
    assert rejected(university) == "duplicate_section"


@pytest.mark.parametrize("changed_before", [False, True], ids=["new subject", "known courses"])
@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        ("subject_topic", None),
        ("slug_twin_course", "duplicate_course"),
        ("slug_twin_subject", "duplicate_subject"),
    ],
)
def test_known_subjects_hand_back_what_they_cannot_accept(
    changed_before: bool, mutation: str, reason: str | None
) -> None:
    """Each way a changed subject can fail, whether its courses are known one by one or not."""
    known = KnownSubjects()
    university = sim(1)
    assert known.accept(university.SerializeToString()) is not None
    subject = university.subjects[0]
    if changed_before:
        section = subject.courses[1].sections[0]
        section.status = Section.OPEN if section.status != Section.OPEN else Section.CLOSED
        assert known.accept(university.SerializeToString()) is not None
    if mutation == "subject_topic":
        subject.topic_name = ""
    elif mutation == "slug_twin_course":  # another code, the same topic segment
        twin = subject.courses.add()
        twin.CopyFrom(subject.courses[0])
        twin.code = twin.code.replace("-", ":")
    else:
        twin = university.subjects.add()
        twin.CopyFrom(subject)
        twin.number = f" {subject.number}"
    assert known.accept(university.SerializeToString()) is None
    if reason is None:
        assert validate_university(university).topics_written == 1
    else:
        assert rejected(university) == reason


def _mutate(university: University, mutation: str, where: int) -> bytes:
    subject = university.subjects[where % len(university.subjects)]
    course = subject.courses[where % len(subject.courses)]
    section = course.sections[where % len(course.sections)]
    if mutation == "duplicate_subject":
        university.subjects.add().CopyFrom(subject)
    elif mutation == "twin_subject":  # same courses, another number: no clash
        twin = university.subjects.add()
        twin.CopyFrom(subject)
        twin.number = "twin"
        assign_topics(university)
    elif mutation == "duplicate_course":
        subject.courses.add().CopyFrom(course)
    elif mutation == "moved_course":  # keeps the topic names of its old subject
        university.subjects[(where + 1) % len(university.subjects)].courses.add().CopyFrom(course)
    elif mutation == "slug_twin_course":  # another code, the same topic segment: a clash
        subject.courses.add().CopyFrom(course)
        subject.courses[-1].code = course.code.replace("-", ":")
    elif mutation == "slug_twin_subject":
        university.subjects.add().CopyFrom(subject)
        university.subjects[-1].number = f" {subject.number}"
    elif mutation == "twin_course":  # same sections, another code: no clash
        twin = subject.courses.add()
        twin.CopyFrom(course)
        twin.code = "twin"
        assign_topics(university)
    elif mutation == "duplicate_section":
        course.sections.add().CopyFrom(section)
    elif mutation == "bad_status":
        section.status = (0, 9)[where % 2]  # type: ignore[assignment]
    elif mutation == "long_index":
        section.index = "9" * 1000
        assign_topics(university)
    elif mutation == "no_topic":
        (university, subject, course, section)[where % 4].topic_name = ""
    elif mutation == "wrong_topic_id":
        section.topic_id += 1
    elif mutation == "unknown_season":
        subject.season = 7  # type: ignore[assignment]
    elif mutation == "no_name":
        university.name = " "
    elif mutation == "no_subjects":
        del university.subjects[:]
    elif mutation == "abbr":
        university.abbr = "sim2"
        assign_topics(university)
    payload = university.SerializeToString()
    if mutation == "unknown_group":  # field 99 as an (empty) group: parsers keep it as unknown
        payload += b"\x9b\x06\x9c\x06"
    elif mutation == "truncated":
        payload = payload[: len(payload) - 1 - where % 50]
    return payload


MUTATIONS = [
    "none", "none", "none", "duplicate_subject", "twin_subject", "duplicate_course",
    "moved_course", "twin_course", "slug_twin_course", "slug_twin_subject",
    "duplicate_section", "bad_status", "long_index", "no_topic", "wrong_topic_id",
    "unknown_season", "no_name", "no_subjects", "abbr", "unknown_group", "truncated",
]  # fmt: skip


def _full_check(payload: bytes) -> tuple[str, ScrapeCounts] | None:
    """What jet does without the short cut: (topic name, counts) if nothing needed filling."""
    try:
        university = decode_university(payload, "protobuf")
        counts = validate_university(university)
    except ScrapeRejected:
        return None
    return None if counts.topics_written else (university.topic_name, counts)


@hypothesis.settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from(MUTATIONS), st.integers(0, 1000)),
        min_size=1,
        max_size=8,
    )
)
def test_known_subjects_accept_only_what_the_full_check_accepts(
    steps: list[tuple[int, str, int]],
) -> None:
    """A sequence of scrapes, good and bad, through one KnownSubjects: whatever it accepts, the
    full decode and validation accepts too, as it is, with the same name and counts."""
    known = KnownSubjects()
    for tick, mutation, where in steps:
        payload = _mutate(sim(tick), mutation, where)
        accepted = known.accept(payload)
        full = _full_check(payload)
        if accepted is not None:
            assert full == (accepted.university, accepted.counts)
        elif mutation in ("none", "twin_subject", "twin_course", "abbr"):
            assert full is not None  # None only hands the decision back; not for a plain scrape
