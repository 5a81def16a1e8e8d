"""Every route against a real PostgreSQL (small SQL-seeded catalogue), JSON and protobuf."""

from __future__ import annotations

import json

import httpx
import pytest
from spike_helpers import COURSE, EMPTY_COURSE, SUBJECT, UNIVERSITY, section_topic
from trakr.pb.trakr_pb2 import Response, Section
from trakr.spike.encoding import PROTOBUF_TYPE, parse
from trakr.spike.models import (
    CourseResponse,
    CoursesResponse,
    ErrorResponse,
    SectionResponse,
    SubjectResponse,
    SubjectsResponse,
    UniversitiesResponse,
    UniversityResponse,
)

PROTOBUF = {"Accept": PROTOBUF_TYPE}

ROUTES = [
    ("/v1/universities", UniversitiesResponse),
    (f"/v1/universities/{UNIVERSITY}", UniversityResponse),
    (f"/v1/universities/{UNIVERSITY}/subjects?season=spring&year=2026", SubjectsResponse),
    (f"/v1/subjects/{SUBJECT}", SubjectResponse),
    (f"/v1/subjects/{SUBJECT}/courses", CoursesResponse),
    (f"/v1/courses/{COURSE}", CourseResponse),
    (f"/v1/sections/{section_topic('01')}", SectionResponse),
]


async def both(client: httpx.AsyncClient, url: str) -> tuple[Response, Response, dict[str, object]]:
    as_json = await client.get(url)
    as_protobuf = await client.get(url, headers=PROTOBUF)
    assert as_json.status_code == as_protobuf.status_code == 200, as_json.text
    assert as_json.headers["content-type"] == "application/json"
    assert as_protobuf.headers["content-type"] == PROTOBUF_TYPE
    return parse(as_json.content, "json"), parse(as_protobuf.content, "protobuf"), as_json.json()


@pytest.mark.parametrize(("url", "model"), ROUTES)
async def test_json_and_protobuf_carry_the_same_data(
    client: httpx.AsyncClient, url: str, model: type
) -> None:
    from_json, from_protobuf, document = await both(client, url)
    assert from_json == from_protobuf
    assert from_json.meta.code == 200
    model.model_validate(document)  # the OpenAPI model describes what is sent


async def test_universities(client: httpx.AsyncClient) -> None:
    response, _, document = await both(client, "/v1/universities")
    [university] = response.data.universities
    assert university.topic_name == UNIVERSITY and university.name == "Test University"
    assert not university.available_semesters  # the list is light
    assert document["data"]["universities"][0]["topicId"] == "1"
    assert document["data"]["universities"][0]["metadata"] == [
        {"title": "campus", "content": "main"}
    ]


async def test_university_with_semesters(client: httpx.AsyncClient) -> None:
    response, _, document = await both(client, f"/v1/universities/{UNIVERSITY}")
    university = response.data.university
    assert [(s.season, s.year) for s in university.available_semesters] == [(4, 2025), (2, 2026)]
    assert [r.period for r in university.registrations] == ["open", "tbd"]
    assert (
        document["data"]["university"]["registrations"][0]["periodDate"] == "2025-11-01T00:00:00Z"
    )


async def test_subjects_of_a_semester(client: httpx.AsyncClient) -> None:
    response, _, _ = await both(
        client, f"/v1/universities/{UNIVERSITY}/subjects?season=SPRING&year=2026"
    )
    assert [s.number for s in response.data.subjects] == ["198", "640"]
    _, _, document = await both(
        client, f"/v1/universities/{UNIVERSITY}/subjects?season=fall&year=2026"
    )
    assert document["data"] == {"subjects": []}


async def test_subject_and_courses(client: httpx.AsyncClient) -> None:
    response, _, _ = await both(client, f"/v1/subjects/{SUBJECT}")
    assert response.data.subject.name == "Computer Science"
    assert response.data.subject.season == 2  # SPRING
    courses, _, _ = await both(client, f"/v1/subjects/{SUBJECT}/courses")
    assert [c.topic_name for c in courses.data.courses] == [COURSE]


async def test_course_is_nested(client: httpx.AsyncClient) -> None:
    response, _, _ = await both(client, f"/v1/courses/{COURSE}")
    course = response.data.course
    assert course.name == "Intro to Computer Science" and course.credits == "4"
    assert [s.number for s in course.sections] == ["01", "02", "03", "04", "05"]
    first = course.sections[0]
    assert first.status == Section.OPEN and course.sections[1].status == Section.CLOSED
    assert [m.day for m in first.meetings] == ["Monday", "Wednesday"]
    assert first.meetings[0].class_type == "LEC"
    assert [i.name for i in first.instructors] == ["TURING, ALAN", "HOPPER, GRACE"]
    assert first.books[0].url == "https://example.org/sicp"


async def test_course_without_sections(client: httpx.AsyncClient) -> None:
    response, _, _ = await both(client, f"/v1/courses/{EMPTY_COURSE}")
    assert not response.data.course.sections


async def test_section(client: httpx.AsyncClient) -> None:
    response, _, _ = await both(client, f"/v1/sections/{section_topic('02')}")
    assert response.data.section.index == "10002"
    assert len(response.data.section.meetings) == 2


@pytest.mark.parametrize(
    "url",
    [
        "/v1/universities/nowhere",
        "/v1/universities/nowhere/subjects?season=spring&year=2026",
        "/v1/subjects/testu.999.spring.2026",
        "/v1/subjects/testu.999.spring.2026/courses",
        "/v1/courses/testu.198.spring.2026.nope",
        "/v1/courses/testu.198.spring.2026.nope/hotness",
        "/v1/sections/testu.nope",
        "/v1/sections/testu.nope/history",
    ],
)
async def test_unknown_topic_is_404_in_the_envelope(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)
    assert response.status_code == 404
    document = response.json()
    ErrorResponse.model_validate(document)
    assert (
        (document["meta"]["code"] == 404 and "nope" in document["meta"]["message"])
        or "nowhere" in (document["meta"]["message"])
        or "999" in document["meta"]["message"]
    )
    assert document["data"] == {}
    as_protobuf = await client.get(url, headers=PROTOBUF)
    assert as_protobuf.status_code == 404
    assert parse(as_protobuf.content, "protobuf").meta.code == 404


@pytest.mark.parametrize(
    "url",
    [
        f"/v1/universities/{UNIVERSITY}/subjects",
        f"/v1/universities/{UNIVERSITY}/subjects?season=monsoon&year=2026",
        f"/v1/universities/{UNIVERSITY}/subjects?season=spring&year=soon",
        f"/v1/universities/{UNIVERSITY}/subjects?season=spring&year=99999999999",
        "/v1/courses/UPPER.case",
        "/v1/courses/has%20space",
        "/v1/sections/a%00b",
        f"/v1/sections/{section_topic('01')}/history?days=0",
        f"/v1/sections/{section_topic('01')}/history?days=100000",
    ],
)
async def test_bad_parameters_are_422_in_the_envelope(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)
    assert response.status_code == 422, response.text
    document = response.json()
    ErrorResponse.model_validate(document)
    assert document["meta"]["code"] == 422
    assert document["meta"]["message"].startswith("invalid parameters")


async def test_unknown_path_and_method_are_enveloped(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["meta"]["code"] == 404
    wrong_method = await client.delete(f"/v1/courses/{COURSE}")
    assert wrong_method.status_code == 405 and wrong_method.json()["meta"]["code"] == 405


async def test_health_ready_docs_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert (
        ready.status_code == 200
        and ready.json()["database"] == "ok"
        and ready.json()["redis"] == "ok"
    )
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    course = schema["paths"]["/v1/courses/{topic}"]["get"]["responses"]
    assert course["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CourseResponse"
    )
    assert course["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


async def test_metrics_use_route_templates(client: httpx.AsyncClient) -> None:
    await client.get(f"/v1/courses/{COURSE}")
    await client.get("/v1/courses/testu.missing")
    text = (await client.get("/metrics")).text
    assert (
        'trakr_spike_request_duration_seconds_count{method="GET",route="/v1/courses/{topic}",status="200"}'
        in text
    )
    assert (
        'trakr_spike_requests_total{method="GET",route="/v1/courses/{topic}",status="404"}' in text
    )
    assert COURSE not in text
    assert "trakr_spike_cache_hits_total" in text and "trakr_spike_cache_misses_total" in text


async def test_json_is_the_protobuf_json_mapping(client: httpx.AsyncClient) -> None:
    body = (await client.get(f"/v1/courses/{COURSE}")).content
    document = json.loads(body)
    section = document["data"]["course"]["sections"][0]
    assert set(section) >= {"topicName", "topicId", "meetings", "instructors", "books", "metadata"}
    assert section["meetings"][0]["startTime"] == "09:00"
