"""/v1/sections: a section, and its open/close history with the share of time it was open."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query, Response
from google.protobuf.timestamp_pb2 import Timestamp

from trakr.pb.trakr_pb2 import Data, SectionHistory, StatusChange
from trakr.spike import stats
from trakr.spike.deps import DB, Fmt, NotFound, reply, reply_document
from trakr.spike.models import TOPIC_PATTERN, SectionHistoryResponse, SectionResponse
from trakr.spike.routes._route import make_router

router = make_router("sections")
Topic = Annotated[
    str,
    Path(pattern=TOPIC_PATTERN, description="e.g. rutgers-nb.198.spring.2026.01-198-111.01.09214"),
]


@router.get(
    "/sections/{topic}",
    response_model=SectionResponse,
    summary="A section with meetings and instructors",
)
async def get_section(topic: Topic, db: DB, fmt: Fmt) -> Response:
    doc = await db.document("section", fmt, topic)
    if doc is None:
        raise NotFound("section", topic)
    return reply_document(doc, "section", fmt, field_names=True)


@router.get(
    "/sections/{topic}/history",
    response_model=SectionHistoryResponse,
    summary="Status changes in the last `days` days and the share of that time the section was open",
    description="From the notification outbox (one row per real status change). A section that "
    "left the catalogue keeps its history.",
)
async def get_history(
    topic: Topic,
    db: DB,
    fmt: Fmt,
    days: Annotated[int, Query(ge=1, le=365, description="window length in days")] = 30,
) -> Response:
    end = time.time()
    start = end - days * 86400
    row = await db.fetchrow("section_history", topic, datetime.fromtimestamp(start, UTC))
    assert row is not None  # the query always returns one row
    changes = json.loads(row["changes"])
    if row["current_status"] is None and row["total_changes"] == 0:
        raise NotFound("section", topic)
    initial = row["status_before"] or (
        changes[0]["old_status"] if changes else row["current_status"]
    )
    share = stats.open_share(
        start=start,
        end=end,
        initial_status=initial,
        changes=[(change["at"], change["status"]) for change in changes],
    )
    history = SectionHistory(
        topic_name=topic,
        changes=[
            StatusChange(status=change["status"], at=_timestamp(change["at"])) for change in changes
        ],
        open_share=round(share, 6),
        days=days,
    )
    return reply(Data(section_history=history), "section_history", fmt)


def _timestamp(epoch_seconds: float) -> Timestamp:
    seconds = int(epoch_seconds // 1)
    return Timestamp(
        seconds=seconds, nanos=min(999_999, round((epoch_seconds - seconds) * 1e6)) * 1000
    )
