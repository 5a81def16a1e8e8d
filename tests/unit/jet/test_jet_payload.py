"""prepare_payload: what jet queues for a scrape, in each pair of formats."""

from __future__ import annotations

import hashlib

import pytest
from google.protobuf import json_format
from trakr.codec import ScrapeRejected, decode_university, encode_university
from trakr.jet.scrape import prepare_payload
from trakr.pb.trakr_pb2 import Section, Semester, University
from trakr.topics import assign_topics

CAP = 1 << 20


def university(*, with_topics: bool) -> University:
    u = University(name="Sim State", abbr="sim")
    subject = u.subjects.add(number="198", season=Semester.SPRING, year=2026)
    course = subject.courses.add(code="01-111", name="Intro")
    course.sections.add(number="01", index="09214", status=Section.Status.OPEN)
    course.sections.add(number="02", index="09215", status=Section.Status.CLOSED)
    return assign_topics(u) if with_topics else u


def test_protobuf_with_topics_is_queued_as_the_scraper_wrote_it() -> None:
    raw = university(with_topics=True).SerializeToString()
    payload = prepare_payload(
        raw, input_format="protobuf", output_format="protobuf", max_output_bytes=CAP
    )
    assert payload.data == raw
    assert payload.sha256 == hashlib.sha256(raw).hexdigest()
    assert payload.university == "sim" and payload.sections == 2


def test_protobuf_without_topics_is_re_encoded_with_them() -> None:
    raw = university(with_topics=False).SerializeToString()
    payload = prepare_payload(
        raw, input_format="protobuf", output_format="protobuf", max_output_bytes=CAP
    )
    assert payload.data != raw
    assert payload.data == university(with_topics=True).SerializeToString(deterministic=True)
    decoded = decode_university(payload.data, "protobuf")
    section = decoded.subjects[0].courses[0].sections[1]
    assert section.topic_name == "sim.198.spring.2026.01-111.02.09215" and section.topic_id != 0
    assert payload.sha256 == hashlib.sha256(payload.data).hexdigest()


def test_a_wrong_topic_is_corrected_not_passed_through() -> None:
    u = university(with_topics=True)
    u.subjects[0].courses[0].sections[0].topic_id += 1
    raw = u.SerializeToString()
    payload = prepare_payload(
        raw, input_format="protobuf", output_format="protobuf", max_output_bytes=CAP
    )
    assert payload.data == university(with_topics=True).SerializeToString(deterministic=True)


@pytest.mark.parametrize("input_format", ["json", "protobuf"])
def test_json_output_is_the_standard_mapping(input_format: str) -> None:
    raw = encode_university(university(with_topics=False), input_format)  # type: ignore[arg-type]
    payload = prepare_payload(
        raw, input_format=input_format, output_format="json", max_output_bytes=CAP
    )  # type: ignore[arg-type]
    expected = json_format.MessageToJson(
        university(with_topics=True), indent=None, ensure_ascii=False
    )
    assert payload.data == expected.encode()


def test_a_duplicate_section_is_rejected() -> None:
    u = university(with_topics=True)
    u.subjects[0].courses[0].sections.add(number="01", index="09214", status=Section.Status.OPEN)
    with pytest.raises(ScrapeRejected) as caught:
        prepare_payload(
            u.SerializeToString(),
            input_format="protobuf",
            output_format="protobuf",
            max_output_bytes=CAP,
        )
    assert caught.value.reason == "duplicate_section"
