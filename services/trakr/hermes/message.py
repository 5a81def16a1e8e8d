"""Pure: a notification stream entry → the FCM topic message announcing it.

No I/O here; hermes.service reads the entries and hermes.fcm sends what this builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from firebase_admin import messaging

# Android notification colour and APNs category by new status: the apps show an opened section
# in green with a "register" action, a closed one in red, and so on.
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    # status: (verb phrase, android colour, APNs category)
    "OPEN": ("has opened!", "#2E7D32", "SECTION_OPENED"),
    "CLOSED": ("has closed", "#C62828", "SECTION_CLOSED"),
    "WAITLIST": ("has a waitlist", "#F9A825", "SECTION_WAITLISTED"),
    "CANCELLED": ("was cancelled", "#616161", "SECTION_CANCELLED"),
}
UNKNOWN_STYLE = ("changed status", "#1565C0", "SECTION_CHANGED")
# How long FCM keeps a message for an offline device: news about a seat is stale after a day.
TIME_TO_LIVE_SECONDS = 24 * 3600


class MalformedEntry(ValueError):
    """A stream entry that is not a notification hermes can send."""


@dataclass(frozen=True)
class Notification:
    """One notification as julia forwards it (stream entry fields plus the parsed payload)."""

    notification_id: int
    topic_name: str
    status: str
    university: str
    created_at: float | None
    payload: dict[str, Any] = field(default_factory=dict)


def parse_entry(fields: dict[bytes, bytes]) -> Notification:
    """Decode a `<ns>:notifications` entry; raises MalformedEntry when it cannot be sent."""
    text = {
        key.decode(errors="replace"): value.decode(errors="replace")
        for key, value in fields.items()
    }
    try:
        notification_id = int(text["notification_id"])
        topic_name = text["topic_name"]
        status = text["status"]
    except (KeyError, ValueError) as exc:
        raise MalformedEntry(f"entry lacks a usable {exc}") from exc
    if not topic_name:
        raise MalformedEntry("entry has an empty topic_name")
    payload: dict[str, Any] = {}
    if text.get("payload"):
        try:
            loaded = json.loads(text["payload"])
        except ValueError as exc:
            raise MalformedEntry(f"payload is not JSON: {exc}") from exc
        if isinstance(loaded, dict):
            payload = loaded
    created_at: float | None
    try:
        created_at = float(text["created_at"]) if text.get("created_at") else None
    except ValueError:
        created_at = None
    return Notification(
        notification_id=notification_id,
        topic_name=topic_name,
        status=status.upper(),
        university=text.get("university", ""),
        created_at=created_at,
        payload=payload,
    )


def title_and_body(notification: Notification) -> tuple[str, str]:
    """("Section 05 of Intro to Computer Science has opened!", "Index 09214 · Computer Science")."""
    payload = notification.payload
    verb = STATUS_STYLE.get(notification.status, UNKNOWN_STYLE)[0]
    course = _text(payload.get("course_name")) or notification.topic_name
    number = _text(payload.get("section_number"))
    title = f"Section {number} of {course} {verb}" if number else f"A section of {course} {verb}"
    details = []
    if index := _text(payload.get("section_index")):
        details.append(f"Index {index}")
    if subject := _text(payload.get("subject_name")):
        details.append(subject)
    if notification.status == "OPEN":
        details.append("register now")
    body = " · ".join(details) if details else f"Now {notification.status.lower()}"
    return title, body


def build_message(notification: Notification) -> messaging.Message:
    """The FCM topic message for one notification."""
    title, body = title_and_body(notification)
    _, color, category = STATUS_STYLE.get(notification.status, UNKNOWN_STYLE)
    data = {
        "topic": notification.topic_name,
        "status": notification.status,
        "notification_id": str(notification.notification_id),
        "university": notification.university,
    }
    for key in ("old_status", "section_index", "section_number", "course_name"):
        if value := _text(notification.payload.get(key)):
            data[key] = value
    return messaging.Message(
        topic=notification.topic_name,
        notification=messaging.Notification(title=title, body=body),
        data=data,
        android=messaging.AndroidConfig(
            priority="high",
            ttl=TIME_TO_LIVE_SECONDS,
            # A newer status of the same section replaces the older one on the device.
            collapse_key=notification.topic_name[:64],
            notification=messaging.AndroidNotification(color=color, tag=notification.topic_name),
        ),
        apns=messaging.APNSConfig(
            headers={"apns-collapse-id": notification.topic_name[:64]},
            payload=messaging.APNSPayload(
                aps=messaging.Aps(
                    category=category,
                    thread_id=notification.topic_name,
                    sound="default" if notification.status == "OPEN" else None,
                )
            ),
        ),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
