"""/v1/subscriptions: apps report that a device joined or left a topic (feeds hotness)."""

from __future__ import annotations

from fastapi import Response

from trakr.pb.trakr_pb2 import Data, Subscription
from trakr.spike.deps import DB, Fmt, NotFound, reply
from trakr.spike.models import SubscriptionRequest, SubscriptionResponse
from trakr.spike.routes._route import make_router

router = make_router("subscriptions")


@router.post(
    "/subscriptions",
    response_model=SubscriptionResponse,
    summary="Report a subscribe/unsubscribe (idempotent per device and topic)",
    description="Subscribing needs an existing topic (404 otherwise); unsubscribing is always "
    "accepted, so an app can leave a topic that has since left the catalogue. Repeating a report "
    "changes nothing: updatedAt is the time the state last changed.",
)
async def report_subscription(body: SubscriptionRequest, db: DB, fmt: Fmt) -> Response:
    if body.is_subscribed and await db.fetchval("topic_exists", body.topic_name) is None:
        raise NotFound("topic", body.topic_name)
    row = await db.fetchrow(
        "subscription_upsert", body.device_id, body.topic_name, body.is_subscribed
    )
    assert row is not None  # INSERT … ON CONFLICT DO UPDATE always returns the row
    subscription = Subscription(
        device_id=row["device_id"], topic_name=row["topic_name"], is_subscribed=row["is_subscribed"]
    )
    subscription.updated_at.FromDatetime(row["updated_at"])
    message = "subscribed" if row["is_subscribed"] else "unsubscribed"
    return reply(Data(subscription=subscription), "subscription", fmt, message=message)
