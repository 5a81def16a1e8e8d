"""spike over the real Rutgers New Brunswick snapshot as ein writes it (4,608 courses, 11,680 sections)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from spike_helpers import NB_COURSES, OPEN_SECTIONS_2, running, wait_for
from trakr.settings import Settings
from trakr.spike.encoding import PROTOBUF_TYPE, parse
from trakr.spike.models import CourseResponse, CoursesResponse, SubjectsResponse, UniversityResponse

NB = "rutgers-nb"
CS = "rutgers-nb.198.spring.2026"
CS111 = "rutgers-nb.198.spring.2026.01-111"


@pytest.fixture
async def nb_client(nb_settings: Settings) -> httpx.AsyncClient:  # type: ignore[misc]
    async with running(nb_settings) as (client, _):
        yield client


async def same_both_ways(client: httpx.AsyncClient, url: str) -> dict[str, object]:
    as_json = await client.get(url)
    as_protobuf = await client.get(url, headers={"Accept": PROTOBUF_TYPE})
    assert as_json.status_code == as_protobuf.status_code == 200, as_json.text
    assert parse(as_json.content, "json") == parse(as_protobuf.content, "protobuf")
    return as_json.json()  # type: ignore[no-any-return]


async def test_catalogue_walk(nb_client: httpx.AsyncClient) -> None:
    universities = await same_both_ways(nb_client, "/v1/universities")
    assert [u["topicName"] for u in universities["data"]["universities"]] == [NB]  # type: ignore[index]
    university = await same_both_ways(nb_client, f"/v1/universities/{NB}")
    UniversityResponse.model_validate(university)
    assert {"season": "SPRING", "year": 2026} in university["data"]["university"][
        "availableSemesters"
    ]  # type: ignore[index]
    subjects = await same_both_ways(
        nb_client, f"/v1/universities/{NB}/subjects?season=spring&year=2026"
    )
    SubjectsResponse.model_validate(subjects)
    numbers = [s["number"] for s in subjects["data"]["subjects"]]  # type: ignore[index]
    assert len(numbers) == 238 and "198" in numbers
    courses = await same_both_ways(nb_client, f"/v1/subjects/{CS}/courses")
    CoursesResponse.model_validate(courses)
    assert CS111 in [c["topicName"] for c in courses["data"]["courses"]]  # type: ignore[index]
    course = await same_both_ways(nb_client, f"/v1/courses/{CS111}")
    CourseResponse.model_validate(course)
    sections = course["data"]["course"]["sections"]  # type: ignore[index]
    assert sections and all(s["meetings"] for s in sections)
    assert {s["status"] for s in sections} <= {"OPEN", "CLOSED"}
    first = sections[0]["topicName"]
    section = await same_both_ways(nb_client, f"/v1/sections/{first}")
    assert section["data"]["section"] == sections[0]  # type: ignore[index]


async def test_a_sample_of_every_kind_of_course(
    nb_client: httpx.AsyncClient, nb_settings: Settings
) -> None:
    """Sixty courses spread over the catalogue, including the largest: all render, both formats agree."""
    conn = await asyncpg.connect(nb_settings.postgres_dsn)
    try:
        topics = await conn.fetch(
            """SELECT topic_name FROM (
                   SELECT c.topic_name, row_number() OVER (ORDER BY c.topic_name) AS n,
                          (SELECT count(*) FROM section x WHERE x.course_id = c.id) AS sections
                   FROM course c) t
               WHERE n % 80 = 0 OR sections >= 70"""
        )
        counts = dict(
            await conn.fetch(
                "SELECT c.topic_name, count(x.id) FROM course c LEFT JOIN section x ON x.course_id = c.id "
                "GROUP BY c.topic_name"
            )
        )
    finally:
        await conn.close()
    assert len(topics) >= 55
    for (topic,) in topics:
        course = await same_both_ways(nb_client, f"/v1/courses/{topic}")
        CourseResponse.model_validate(course)
        assert len(course["data"]["course"]["sections"]) == counts[topic]  # type: ignore[index]


async def test_reingest_invalidates_and_records_history(
    nb_settings: Settings, redis_client: aioredis.Redis
) -> None:
    """ein ingests a later snapshot and publishes; spike drops the cache and shows the changes."""
    ingest = pytest.importorskip("trakr.ein.ingest")
    service = pytest.importorskip("trakr.ein.service")
    rutgers = pytest.importorskip("trakr.scrapers.rutgers")
    settings = nb_settings.model_copy(update={"spike_cache_ttl_seconds": 600.0})
    conn = await asyncpg.connect(settings.postgres_dsn)
    try:
        async with running(settings) as (client, _):
            before = {
                s["topicName"]: s["status"]
                for s in (await client.get(f"/v1/courses/{CS111}")).json()["data"]["course"][
                    "sections"
                ]
            }
            university = rutgers.load_university(
                NB_COURSES, OPEN_SECTIONS_2, campus="NB", season="spring", year=2026
            )
            result = await ingest.ingest_university(conn, university)
            assert result.status_changes > 0
            changed = await conn.fetch("SELECT topic_name, new_status FROM notification")
            await service.publish_changed(redis_client, settings, result)

            async def fresh() -> bool:
                response = await client.get(f"/v1/courses/{CS111}")
                return response.headers["x-cache"] == "miss"

            await wait_for(fresh)
            topic, status = changed[0]["topic_name"], changed[0]["new_status"]
            section = (await client.get(f"/v1/sections/{topic}")).json()["data"]["section"]
            assert section["status"] == status
            history = (await client.get(f"/v1/sections/{topic}/history")).json()["data"][
                "sectionHistory"
            ]
            assert history["changes"][-1]["status"] == status
            assert before  # CS111 was served (and cached) before the re-ingest
    finally:
        await conn.close()
