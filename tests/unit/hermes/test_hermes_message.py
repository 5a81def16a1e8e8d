"""hermes.message: stream entry → Notification → FCM message (pure)."""

from __future__ import annotations

import json

import pytest
from trakr.hermes.message import (
    MalformedEntry,
    Notification,
    build_message,
    parse_entry,
    title_and_body,
)

TOPIC = "rutgers-nb.198.spring.2026.01-111.05.09214"
PAYLOAD = {
    "notification_id": 17,
    "topic_name": TOPIC,
    "university": "rutgers-nb",
    "old_status": "CLOSED",
    "status": "OPEN",
    "created_at": "2026-01-20T10:00:00+00:00",
    "course_name": "Intro to Computer Science",
    "section_number": "05",
    "section_index": "09214",
    "subject_name": "Computer Science",
}


def entry(**overrides: str) -> dict[bytes, bytes]:
    fields = {
        "notification_id": "17",
        "topic_name": TOPIC,
        "status": "OPEN",
        "university": "rutgers-nb",
        "payload": json.dumps(PAYLOAD),
        "created_at": "1768903200.5",
    }
    fields.update(overrides)
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_parse_entry_reads_julias_fields() -> None:
    notification = parse_entry(entry())
    assert notification.notification_id == 17
    assert notification.topic_name == TOPIC
    assert notification.status == "OPEN"
    assert notification.created_at == 1768903200.5
    assert notification.payload["course_name"] == "Intro to Computer Science"


@pytest.mark.parametrize(
    "overrides", [{"notification_id": "x"}, {"topic_name": ""}, {"payload": "{not json"}]
)
def test_parse_entry_rejects_unsendable_entries(overrides: dict[str, str]) -> None:
    with pytest.raises(MalformedEntry):
        parse_entry(entry(**overrides))


def test_parse_entry_tolerates_missing_payload_and_time() -> None:
    fields = entry()
    del fields[b"payload"]
    fields[b"created_at"] = b"soon"
    notification = parse_entry(fields)
    assert notification.payload == {} and notification.created_at is None


@pytest.mark.parametrize(
    ("status", "title"),
    [
        ("OPEN", "Section 05 of Intro to Computer Science has opened!"),
        ("CLOSED", "Section 05 of Intro to Computer Science has closed"),
        ("WAITLIST", "Section 05 of Intro to Computer Science has a waitlist"),
    ],
)
def test_title_names_course_and_section(status: str, title: str) -> None:
    notification = Notification(
        17, TOPIC, status, "rutgers-nb", None, {**PAYLOAD, "status": status}
    )
    assert title_and_body(notification)[0] == title


def test_body_has_index_subject_and_a_call_to_action_when_open() -> None:
    notification = Notification(17, TOPIC, "OPEN", "rutgers-nb", None, PAYLOAD)
    assert title_and_body(notification)[1] == "Index 09214 · Computer Science · register now"


def test_text_without_catalogue_details_falls_back_to_the_topic() -> None:
    title, body = title_and_body(Notification(1, TOPIC, "CLOSED", "rutgers-nb", None, {}))
    assert title == f"A section of {TOPIC} has closed"
    assert body == "Now closed"


def test_message_targets_the_topic_with_data_colour_and_category() -> None:
    opened = build_message(Notification(17, TOPIC, "OPEN", "rutgers-nb", None, PAYLOAD))
    assert opened.topic == TOPIC
    assert opened.notification.title == "Section 05 of Intro to Computer Science has opened!"
    assert opened.data["topic"] == TOPIC
    assert opened.data["status"] == "OPEN"
    assert opened.data["notification_id"] == "17"
    assert all(isinstance(v, str) for v in opened.data.values())  # FCM data values are strings
    assert opened.android.notification.color == "#2E7D32"
    assert opened.android.notification.tag == TOPIC
    assert opened.apns.payload.aps.category == "SECTION_OPENED"
    closed = build_message(Notification(18, TOPIC, "CLOSED", "rutgers-nb", None, PAYLOAD))
    assert closed.android.notification.color == "#C62828"
    assert closed.apns.payload.aps.category == "SECTION_CLOSED"
    assert closed.apns.payload.aps.sound is None
