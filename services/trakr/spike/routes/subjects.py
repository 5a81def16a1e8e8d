"""/v1/subjects: a subject and its courses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

from trakr.spike.deps import DB, Fmt, NotFound, reply_document
from trakr.spike.models import TOPIC_PATTERN, CoursesResponse, SubjectResponse
from trakr.spike.routes._route import make_router

router = make_router("subjects")
Topic = Annotated[str, Path(pattern=TOPIC_PATTERN, description="e.g. rutgers-nb.198.spring.2026")]


@router.get(
    "/subjects/{topic}", response_model=SubjectResponse, summary="A subject (without courses)"
)
async def get_subject(topic: Topic, db: DB, fmt: Fmt) -> Response:
    doc = await db.document("subject", fmt, topic)
    if doc is None:
        raise NotFound("subject", topic)
    return reply_document(doc, "subject", fmt, field_names=True)


@router.get(
    "/subjects/{topic}/courses",
    response_model=CoursesResponse,
    summary="A subject's courses (without sections; see /v1/courses/{topic})",
)
async def list_courses(topic: Topic, db: DB, fmt: Fmt) -> Response:
    doc = await db.document("subject_courses", fmt, topic)
    if doc is None:
        raise NotFound("subject", topic)
    return reply_document(doc, "courses", fmt, field_names=True)
