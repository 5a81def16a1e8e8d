"""prepare_payload: what jet queues for a scrape, in each pair of formats."""

from __future__ import annotations

import hashlib

import pytest
from google.protobuf import json_format
from trakr.codec import KnownSubjects, ScrapeRejected, decode_university, encode_university
from trakr.jet.scrape import prepare_payload
from trakr.pb.trakr_pb2 import Section, Semester, University
from trakr.scrapers.sim import simulate
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


def test_known_subjects_change_no_payload_and_no_rejection() -> None:
    """jet's KnownSubjects across scrapes of one catalogue: the same payloads and rejections."""
    known = KnownSubjects()
    bad = simulate(sections=300, tick=5)
    bad.subjects[2].courses[1].sections.add().CopyFrom(bad.subjects[2].courses[1].sections[0])
    bare = simulate(sections=300, tick=6)
    bare.subjects[0].topic_name = ""
    scrapes = [simulate(sections=300, tick=t) for t in (1, 3, 3)] + [bad, bare]
    scrapes.append(simulate(sections=300, tick=7))
    for university in scrapes:
        raw = university.SerializeToString()
        results = []
        for memo in (known, None):
            try:
                results.append(
                    prepare_payload(
                        raw,
                        input_format="protobuf",
                        output_format="protobuf",
                        max_output_bytes=CAP,
                        known=memo,
                    )
                )
            except ScrapeRejected as exc:
                results.append((exc.reason, str(exc)))  # type: ignore[arg-type]
        assert results[0] == results[1]
    assert results[0].data == raw  # type: ignore[union-attr]
