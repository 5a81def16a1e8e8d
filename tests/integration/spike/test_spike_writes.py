"""Subscriptions, hotness and section history (tests with a database of their own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from spike_helpers import COURSE, EMPTY_COURSE, SECTION_NUMBERS, running, section_topic
from trakr.pb.trakr_pb2 import Section
from trakr.settings import Settings
from trakr.spike.encoding import PROTOBUF_TYPE, parse
from trakr.spike.models import CourseHotnessResponse, SectionHistoryResponse, SubscriptionResponse

DEVICE = "device-token_0123:abc"


@pytest.fixture
async def client(writable_settings: Settings) -> httpx.AsyncClient:  # type: ignore[misc]
    # TTL 0: these tests change the data between requests.
    settings = writable_settings.model_copy(update={"spike_cache_ttl_seconds": 0.0})
    async with running(settings) as (http, _):
        yield http


async def subscription_rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT * FROM subscription ORDER BY device_id, topic_name")
    finally:
        await conn.close()


async def test_subscribe_is_idempotent(
    client: httpx.AsyncClient, writable_settings: Settings
) -> None:
    body = {"device_id": DEVICE, "topic_name": section_topic("01"), "is_subscribed": True}
    first = await client.post("/v1/subscriptions", json=body)
    assert first.status_code == 200, first.text
    SubscriptionResponse.model_validate(first.json())
    assert first.json()["meta"]["message"] == "subscribed"
    second = await client.post("/v1/subscriptions", json=body)
    assert second.json() == first.json()  # same state, same updatedAt
    [row] = await subscription_rows(writable_settings.postgres_dsn)
    assert row["is_subscribed"] and row["device_id"] == DEVICE

    # The JSON mapping's names work too; leaving changes the state once.
    leave = {"deviceId": DEVICE, "topicName": section_topic("01"), "isSubscribed": False}
    left = await client.post("/v1/subscriptions", json=leave)
    assert left.json()["data"]["subscription"]["isSubscribed"] is False
    assert left.json()["meta"]["message"] == "unsubscribed"
    [row] = await subscription_rows(writable_settings.postgres_dsn)
    assert not row["is_subscribed"]


async def test_subscription_in_protobuf(client: httpx.AsyncClient) -> None:
    body = {"device_id": DEVICE, "topic_name": COURSE, "is_subscribed": True}
    response = await client.post("/v1/subscriptions", json=body, headers={"Accept": PROTOBUF_TYPE})
    assert response.headers["content-type"] == PROTOBUF_TYPE
    assert parse(response.content, "protobuf").data.subscription.topic_name == COURSE


async def test_subscribing_to_an_unknown_topic_is_404_but_leaving_it_is_fine(
    client: httpx.AsyncClient,
) -> None:
    join = {"device_id": DEVICE, "topic_name": "testu.gone", "is_subscribed": True}
    response = await client.post("/v1/subscriptions", json=join)
    assert response.status_code == 404 and response.json()["meta"]["code"] == 404
    leave = {**join, "is_subscribed": False}
    assert (await client.post("/v1/subscriptions", json=leave)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"device_id": "short", "topic_name": COURSE, "is_subscribed": True},
        {"device_id": "has spaces in it", "topic_name": COURSE, "is_subscribed": True},
        {"device_id": "x" * 513, "topic_name": COURSE, "is_subscribed": True},
        {"device_id": DEVICE, "topic_name": "Upper.Case", "is_subscribed": True},
        {"device_id": DEVICE, "topic_name": "", "is_subscribed": True},
        {"device_id": DEVICE, "topic_name": COURSE, "is_subscribed": "yes"},
        {"device_id": DEVICE, "topic_name": COURSE},
        {"device_id": DEVICE, "topic_name": COURSE, "is_subscribed": True, "extra": 1},
        [],
        "not an object",
    ],
)
async def test_invalid_subscriptions_are_422(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["meta"]["code"] == 422 and response.json()["data"] == {}


async def test_malformed_json_body_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/subscriptions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


async def test_hotness_z_scores(client: httpx.AsyncClient) -> None:
    # Section 01 gets 12 devices, 02 and 03 one each, 04 and 05 none.
    plan = {"01": 12, "02": 1, "03": 1}
    for number, count in plan.items():
        for device in range(count):
            body = {
                "device_id": f"device-{device:04d}",
                "topic_name": section_topic(number),
                "is_subscribed": True,
            }
            assert (await client.post("/v1/subscriptions", json=body)).status_code == 200
    # An unsubscribed device does not count.
    gone = {"device_id": "device-gone", "topic_name": section_topic("04"), "is_subscribed": False}
    await client.post("/v1/subscriptions", json=gone)

    response = await client.get(f"/v1/courses/{COURSE}/hotness")
    assert response.status_code == 200
    CourseHotnessResponse.model_validate(response.json())
    sections = response.json()["data"]["courseHotness"]["sections"]
    counts = [int(s["subscribers"]) for s in sections]
    assert [s["number"] for s in sections] == SECTION_NUMBERS
    assert counts == [12, 1, 1, 0, 0]
    mean = sum(counts) / 5
    sd = (sum((c - mean) ** 2 for c in counts) / 5) ** 0.5
    for section, count in zip(sections, counts, strict=True):
        assert section["zScore"] == pytest.approx((count - mean) / sd, abs=1e-4)
    assert [s["hot"] for s in sections] == [True, False, False, False, False]


async def test_hotness_of_a_course_without_sections_or_subscribers(
    client: httpx.AsyncClient,
) -> None:
    empty = await client.get(f"/v1/courses/{EMPTY_COURSE}/hotness")
    assert empty.status_code == 200 and empty.json()["data"]["courseHotness"]["sections"] == []
    quiet = await client.get(f"/v1/courses/{COURSE}/hotness")
    assert all(
        s["zScore"] == 0 and not s["hot"] for s in quiet.json()["data"]["courseHotness"]["sections"]
    )


async def insert_changes(dsn: str, topic: str, changes: list[tuple[datetime, str, str]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            """INSERT INTO notification (topic_name, topic_id, university, old_status, new_status, created_at)
               VALUES ($1, 0, 'testu', $2, $3, $4)""",
            [(topic, old, new, at) for at, old, new in changes],
        )
    finally:
        await conn.close()


async def test_history_open_share(client: httpx.AsyncClient, writable_settings: Settings) -> None:
    now = datetime.now(UTC)
    topic = section_topic("01")  # currently OPEN
    await insert_changes(
        writable_settings.postgres_dsn,
        topic,
        [
            (now - timedelta(days=40), "OPEN", "CLOSED"),  # before the window: CLOSED at its start
            (now - timedelta(days=6), "CLOSED", "OPEN"),
            (now - timedelta(days=4), "OPEN", "CLOSED"),
            (now - timedelta(days=1), "CLOSED", "OPEN"),
        ],
    )
    response = await client.get(f"/v1/sections/{topic}/history?days=10")
    assert response.status_code == 200
    SectionHistoryResponse.model_validate(response.json())
    history = parse(response.content, "json").data.section_history
    assert history.days == 10
    assert [c.status for c in history.changes] == [Section.OPEN, Section.CLOSED, Section.OPEN]
    assert history.open_share == pytest.approx(0.3, abs=1e-3)  # 2 days + 1 day out of 10
    assert history.changes[0].at.ToDatetime(UTC) == pytest.approx(
        now - timedelta(days=6), abs=timedelta(seconds=1)
    )

    # Default window (30 days) still starts CLOSED (the day-40 change) and sees all three.
    default = parse(
        (await client.get(f"/v1/sections/{topic}/history")).content, "json"
    ).data.section_history
    assert default.days == 30 and len(default.changes) == 3
    assert default.open_share == pytest.approx(3 / 30, abs=1e-3)


async def test_history_without_changes_uses_the_current_status(client: httpx.AsyncClient) -> None:
    open_now = parse(
        (await client.get(f"/v1/sections/{section_topic('01')}/history")).content, "json"
    )
    closed_now = parse(
        (await client.get(f"/v1/sections/{section_topic('02')}/history")).content, "json"
    )
    assert open_now.data.section_history.open_share == 1.0
    assert closed_now.data.section_history.open_share == 0.0
    assert not open_now.data.section_history.changes


async def test_history_of_a_section_that_left_the_catalogue(
    client: httpx.AsyncClient, writable_settings: Settings
) -> None:
    now = datetime.now(UTC)
    gone = "testu.198.spring.2026.01-198-111.99.19999"
    await insert_changes(
        writable_settings.postgres_dsn, gone, [(now - timedelta(days=2), "CLOSED", "OPEN")]
    )
    response = await client.get(f"/v1/sections/{gone}/history?days=4")
    assert response.status_code == 200
    assert response.json()["data"]["sectionHistory"]["openShare"] == pytest.approx(0.5, abs=1e-3)
    assert (await client.get(f"/v1/sections/{gone}")).status_code == 404


async def test_history_from_real_trigger_rows(
    client: httpx.AsyncClient, writable_settings: Settings
) -> None:
    """Status updates go through 0001's trigger, as ein's writes do."""
    topic = section_topic("02")
    conn = await asyncpg.connect(writable_settings.postgres_dsn)
    try:
        await conn.execute("UPDATE section SET status = 'OPEN' WHERE topic_name = $1", topic)
        await conn.execute("UPDATE section SET status = 'CLOSED' WHERE topic_name = $1", topic)
    finally:
        await conn.close()
    history = (await client.get(f"/v1/sections/{topic}/history?days=1")).json()["data"][
        "sectionHistory"
    ]
    assert [c["status"] for c in history["changes"]] == ["OPEN", "CLOSED"]
    assert 0 <= history["openShare"] < 0.01


async def test_meetings_and_instructors_follow_their_ordinal(
    client: httpx.AsyncClient, writable_settings: Settings
) -> None:
    """The queries aggregate from a subquery sorted by ordinal; stored out of order, still in order."""
    topic = section_topic("03")
    conn = await asyncpg.connect(writable_settings.postgres_dsn)
    try:
        section_id = await conn.fetchval("SELECT id FROM section WHERE topic_name = $1", topic)
        await conn.execute("DELETE FROM meeting WHERE section_id = $1", section_id)
        await conn.execute("DELETE FROM instructor WHERE section_id = $1", section_id)
        for ordinal, day in ((2, "Friday"), (0, "Monday"), (1, "Wednesday")):
            await conn.execute(
                "INSERT INTO meeting (section_id, ordinal, day) VALUES ($1, $2, $3)",
                section_id,
                ordinal,
                day,
            )
        for ordinal, name in ((1, "SECOND"), (0, "FIRST")):
            await conn.execute(
                "INSERT INTO instructor VALUES ($1, $2, $3)", section_id, ordinal, name
            )
    finally:
        await conn.close()
    course = await client.get(f"/v1/courses/{COURSE}", headers={"Accept": PROTOBUF_TYPE})
    [section] = [
        s for s in parse(course.content, "protobuf").data.course.sections if s.topic_name == topic
    ]
    alone = await client.get(f"/v1/sections/{topic}")
    for found in (section, parse(alone.content, "json").data.section):
        assert [m.day for m in found.meetings] == ["Monday", "Wednesday", "Friday"]
        assert [i.name for i in found.instructors] == ["FIRST", "SECOND"]
