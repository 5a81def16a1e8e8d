"""/v1/universities: the list, one university with its semesters, its subjects in a semester."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query, Response

from trakr.spike.deps import DB, Fmt, NotFound, reply_document
from trakr.spike.models import (
    TOPIC_PATTERN,
    SubjectsResponse,
    UniversitiesResponse,
    UniversityResponse,
)
from trakr.spike.routes._route import make_router

router = make_router("universities")
Topic = Annotated[
    str, Path(pattern=TOPIC_PATTERN, description="a university topic, e.g. rutgers-nb")
]
SeasonParam = Literal["winter", "spring", "summer", "fall", "WINTER", "SPRING", "SUMMER", "FALL"]


@router.get("/universities", response_model=UniversitiesResponse, summary="All universities")
async def list_universities(db: DB, fmt: Fmt) -> Response:
    return reply_document(
        await db.document("universities", fmt), "universities", fmt, field_names=True
    )


@router.get(
    "/universities/{topic}",
    response_model=UniversityResponse,
    summary="A university and its semesters",
)
async def get_university(topic: Topic, db: DB, fmt: Fmt) -> Response:
    doc = await db.fetchval("university", topic)
    if doc is None:
        raise NotFound("university", topic)
    return reply_document(doc, "university", fmt)


@router.get(
    "/universities/{topic}/subjects",
    response_model=SubjectsResponse,
    summary="A university's subjects in one semester",
)
async def list_subjects(
    topic: Topic,
    db: DB,
    fmt: Fmt,
    season: Annotated[SeasonParam, Query(description="semester season")],
    year: Annotated[int, Query(ge=1900, le=2999, description="semester year")],
) -> Response:
    doc = await db.document("university_subjects", fmt, topic, season, year)
    if doc is None:
        raise NotFound("university", topic)
    return reply_document(doc, "subjects", fmt, field_names=True)
