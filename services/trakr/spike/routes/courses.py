"""/v1/courses: a course with everything below it, and its sections' hotness."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from trakr.pb.trakr_pb2 import CourseHotness, Data, SectionHotness
from trakr.spike import stats
from trakr.spike.deps import DB, Fmt, NotFound, reply, reply_document
from trakr.spike.models import TOPIC_PATTERN, CourseHotnessResponse, CourseResponse
from trakr.spike.routes._route import make_router

router = make_router("courses")
Topic = Annotated[
    str, Path(pattern=TOPIC_PATTERN, description="e.g. rutgers-nb.198.spring.2026.01-198-111")
]


@router.get(
    "/courses/{topic}",
    response_model=CourseResponse,
    summary="A course with its sections, meetings and instructors",
)
async def get_course(topic: Topic, db: DB, fmt: Fmt) -> Response:
    doc = await db.document("course", fmt, topic)
    if doc is None:
        raise NotFound("course", topic)
    return reply_document(doc, "course", fmt, field_names=True)


@router.get(
    "/courses/{topic}/hotness",
    response_model=CourseHotnessResponse,
    summary="Subscribers per section; sections far above the course's mean are flagged hot",
    description=f"zScore = (subscribers - mean) / standard deviation over the course's sections; "
    f"hot when zScore >= {stats.HOT_Z} and subscribers >= {stats.HOT_MIN_SUBSCRIBERS}.",
)
async def get_hotness(topic: Topic, db: DB, fmt: Fmt) -> Response:
    rows = await db.fetch("course_subscribers", topic)
    if not rows and await db.fetchval("course_exists", topic) is None:
        raise NotFound("course", topic)
    scores = stats.hotness([row["subscribers"] for row in rows])
    sections = [
        SectionHotness(
            topic_name=row["topic_name"],
            number=row["number"],
            index=row["index"],
            subscribers=score.subscribers,
            z_score=round(score.z_score, 4),
            hot=score.hot,
        )
        for row, score in zip(rows, scores, strict=True)
    ]
    data = Data(course_hotness=CourseHotness(topic_name=topic, sections=sections))
    return reply(data, "course_hotness", fmt)
