"""Topic names and ids: valid FCM topics, stable, distinct where the recipe promises it."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from trakr.pb.trakr_pb2 import Course, Section, Semester, Subject, University
from trakr.topics import (
    FCM_TOPIC_MAX_LENGTH,
    assign_topics,
    course_topic,
    is_valid_topic,
    join,
    section_topic,
    slug,
    subject_topic,
    topic_id,
    university_topic,
)

SEASONS = [value for name, value in Semester.Season.items() if name != "SEASON_UNSPECIFIED"]
# Parts the recipe keeps as they are: the slug alphabet, not starting or ending with '-'.
slug_parts = st.from_regex(r"\A[a-z0-9_~](?:[a-z0-9_~-]{0,10}[a-z0-9_~])?\Z")
short_text = st.text(max_size=40)


def one_section(
    *,
    abbr: str,
    name: str,
    subject: str,
    season: int,
    year: int,
    code: str,
    number: str,
    index: str,
) -> University:
    university = University(name=name, abbr=abbr)
    subject_msg = university.subjects.add(number=subject, season=season, year=year)
    course = subject_msg.courses.add(code=code)
    course.sections.add(number=number, index=index)
    return assign_topics(university)


@given(
    abbr=short_text,
    name=short_text,
    subject=short_text,
    season=st.sampled_from(SEASONS),
    year=st.integers(min_value=0, max_value=9999),
    code=short_text,
    number=short_text,
    index=short_text,
)
def test_every_topic_is_a_valid_fcm_topic(**parts: object) -> None:
    university = one_section(**parts)  # type: ignore[arg-type]
    subject = university.subjects[0]
    course = subject.courses[0]
    section = course.sections[0]
    for entity in (university, subject, course, section):
        assert re.fullmatch(r"[a-z0-9\-_.~%]+", entity.topic_name)
        assert is_valid_topic(entity.topic_name)
        assert entity.topic_id == topic_id(entity.topic_name)
    # The hierarchy is readable from the name: each child extends its parent with '.'.
    assert section.topic_name.startswith(course.topic_name + ".")
    assert course.topic_name.startswith(subject.topic_name + ".")
    assert subject.topic_name.startswith(university.topic_name + ".")
    assert section.topic_name.count(".") == 6


@given(text=st.text())
def test_slug_is_never_empty_and_idempotent(text: str) -> None:
    result = slug(text)
    assert result
    assert re.fullmatch(r"[a-z0-9_~-]+", result)
    assert "." not in result
    assert slug(result) == result


@given(part=slug_parts)
def test_slug_keeps_parts_that_already_are_slugs(part: str) -> None:
    assert slug(part) == part


def test_slug_examples() -> None:
    assert slug("198") == "198"
    assert slug("  H1 ") == "h1"
    assert slug("Computer Science") == "computer-science"
    assert slug("01:198:111") == "01-198-111"
    assert slug("--x--") == "x"
    assert slug("") == "_"
    assert slug("...") == "_"
    assert slug("ÉCOLE") == "cole"


@given(
    first=st.tuples(slug_parts, slug_parts, slug_parts, slug_parts, slug_parts),
    second=st.tuples(slug_parts, slug_parts, slug_parts, slug_parts, slug_parts),
)
def test_distinct_slug_parts_give_distinct_section_topics(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    def topic(parts: tuple[str, ...]) -> str:
        abbr, subject, code, number, index = parts
        university = University(abbr=abbr)
        subject_name = subject_topic(
            university_topic(university), Subject(number=subject, season=2, year=2026)
        )
        return section_topic(
            course_topic(subject_name, Course(code=code)), Section(number=number, index=index)
        )

    assert (topic(first) == topic(second)) == (first == second)


def test_the_recipe() -> None:
    university = one_section(
        abbr="rutgers-nb",
        name="Rutgers University–New Brunswick",  # noqa: RUF001 - the official name has an en dash
        subject="198",
        season=Semester.SPRING,
        year=2026,
        code="01-111",
        number="01",
        index="09214",
    )
    assert university.topic_name == "rutgers-nb"
    assert university.subjects[0].topic_name == "rutgers-nb.198.spring.2026"
    assert university.subjects[0].courses[0].topic_name == "rutgers-nb.198.spring.2026.01-111"
    assert (
        university.subjects[0].courses[0].sections[0].topic_name
        == "rutgers-nb.198.spring.2026.01-111.01.09214"
    )
    # Without an abbr the name is used; a course without a code falls back to its number.
    assert university_topic(University(name="Sim State")) == "sim-state"
    assert course_topic("u.1.fall.2026", Course(number="101")) == "u.1.fall.2026.101"
    assert join("a", "b") == "a.b"


@given(name=st.text(max_size=100))
def test_topic_id_is_a_stable_int64(name: str) -> None:
    value = topic_id(name)
    assert -(2**63) <= value < 2**63
    assert topic_id(name) == value


def test_topic_id_is_stable_across_releases() -> None:
    # Stored in the database and used by apps: changing the function would orphan every row.
    assert topic_id("rutgers-nb") == topic_id("rutgers-nb")
    assert topic_id("rutgers-nb.198.spring.2026.01-111.01.09214") == STABLE_ID
    assert topic_id("a") != topic_id("b")


def test_is_valid_topic_limits() -> None:
    assert is_valid_topic("a" * FCM_TOPIC_MAX_LENGTH)
    assert not is_valid_topic("a" * (FCM_TOPIC_MAX_LENGTH + 1))
    assert not is_valid_topic("")
    assert not is_valid_topic("has space")
    assert is_valid_topic("Mixed.Case-_~%")


STABLE_ID = 7296361278464786356  # first 8 bytes of the SHA-256, signed
