"""trakr-hermes as a real process: real PostgreSQL, Redis, firebase-admin and the FCM emulator."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from fcm_emulator_helpers import Emulator
from hermes_helpers import (
    HermesProcess,
    deliveries,
    delivery_count,
    group_pending,
    hermes_env,
    per_notification,
    seed_notifications,
    wait_until,
)
from trakr.hermes.message import STATUS_STYLE
from trakr.settings import Settings

# Each test runs trakr-hermes (and sometimes a second one) against hundreds of notifications.
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_messages_match(emulator: Emulator, seeded: list) -> list[dict]:
    """Every seeded notification reached its topic with the right text; returns the messages."""
    messages = emulator.messages()
    by_id = {int(m["data"]["notification_id"]): m for m in messages}
    for note in seeded:
        message = by_id[note.notification_id]
        assert message["topic"] == note.topic_name
        verb = STATUS_STYLE[note.status][0]
        assert (
            message["notification"]["title"]
            == f"Section {note.section_number} of {note.course_name} {verb}"
        )
        assert message["data"]["status"] == note.status
        assert message["data"]["topic"] == note.topic_name
        assert message["android"]["notification"]["color"] == STATUS_STYLE[note.status][1]
        assert message["apns"]["payload"]["aps"]["category"] == STATUS_STYLE[note.status][2]
    return messages


def check_topic_order(messages: list[dict]) -> None:
    """Within a topic, notifications arrive in the order they were created."""
    last: dict[str, int] = {}
    for message in messages:
        nid = int(message["data"]["notification_id"])
        assert nid > last.get(message["topic"], 0), (
            f"{message['topic']}: {nid} after {last[message['topic']]}"
        )
        last[message["topic"]] = nid


def test_every_notification_sent_once_with_topic_and_text(
    settings: Settings, subprocess_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    seeded = seed_notifications(settings, 1000, topics=600)
    hermes = HermesProcess(hermes_env(subprocess_env, emulator), tmp_path / "hermes.log")
    wait_until(
        lambda: delivery_count(settings) == 1000, timeout=120, what="1000 deliveries", proc=hermes
    )
    assert hermes.stop() == 0
    messages = check_messages_match(emulator, seeded)
    counts = per_notification(messages)
    assert len(messages) == 1000 and set(counts.values()) == {1}
    check_topic_order(messages)
    rows = deliveries(settings)
    assert {row["state"] for row in rows.values()} == {"sent"}
    assert {row["outbox"] for row in rows.values()} == {"sent"}
    names = {m["name"] for m in messages}
    assert {row["fcm_message_id"] for row in rows.values()} == names
    assert group_pending(settings) == 0


def test_503s_and_429s_still_deliver_each_exactly_once(
    settings: Settings, subprocess_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    seeded = seed_notifications(settings, 1000, topics=800)
    emulator.faults(unavailable_rate=0.3, rate_limit_rate=0.05, retry_after_seconds=1, seed=7)
    # 35% of attempts fail: enough attempts that none gives up (0.35**25 * 1000 ~ 0).
    env = hermes_env(subprocess_env, emulator, TRAKR_HERMES_MAX_ATTEMPTS="25")
    port = free_port()
    hermes = HermesProcess(env, tmp_path / "hermes.log", "--metrics-port", str(port))
    wait_until(
        lambda: delivery_count(settings) == 1000, timeout=150, what="1000 deliveries", proc=hermes
    )
    exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in exposition.splitlines()
        if line.startswith("trakr_hermes")
    }
    assert samples['trakr_hermes_messages_sent_total{error_code="",outcome="sent"}'] == 1000
    assert samples['trakr_hermes_retries_total{error_code="UNAVAILABLE"}'] > 100
    assert samples['trakr_hermes_retries_total{error_code="QUOTA_EXCEEDED"}'] > 10
    assert samples["trakr_hermes_delivery_lag_seconds_count"] == 1000
    assert samples["trakr_hermes_send_duration_seconds_count"] > 1300
    assert samples["trakr_hermes_in_flight"] == 0
    assert "trakr_hermes_stream_pending_entries" in samples
    assert hermes.stop() == 0
    messages = check_messages_match(emulator, seeded)
    assert len(messages) == 1000 and set(per_notification(messages).values()) == {1}
    check_topic_order(messages)
    rows = deliveries(settings)
    assert {row["state"] for row in rows.values()} == {"sent"}
    assert max(row["attempts"] for row in rows.values()) > 1
    counts = emulator.stats()["counts"]
    assert counts["error:UNAVAILABLE"] > 100 and counts["error:QUOTA_EXCEEDED"] > 10


def test_sigkill_mid_batch_then_restart_delivers_everything(
    settings: Settings, subprocess_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    seeded = seed_notifications(settings, 600)
    emulator.faults(delay_ms=50)
    # The restarted process is a new consumer: it takes over the dead one's entries once idle 2 s.
    env = hermes_env(subprocess_env, emulator, TRAKR_HERMES_CLAIM_IDLE_SECONDS="2")
    first = HermesProcess(env, tmp_path / "hermes-1.log")
    wait_until(lambda: len(emulator.messages()) >= 200, timeout=60, what="200 sends", proc=first)
    first.kill()
    time.sleep(0.5)  # requests already on the wire land at the emulator
    accepted_at_kill = per_notification(emulator.messages())
    recorded_at_kill = set(deliveries(settings))
    unrecorded_at_kill = set(accepted_at_kill) - recorded_at_kill
    assert 200 <= len(accepted_at_kill) < 600, "the kill must land mid-batch"

    second = HermesProcess(env, tmp_path / "hermes-2.log")
    wait_until(
        lambda: delivery_count(settings) == 600, timeout=120, what="600 deliveries", proc=second
    )
    assert second.stop() == 0
    counts = per_notification(emulator.messages())
    assert set(counts) == {note.notification_id for note in seeded}
    duplicates = {nid for nid, n in counts.items() if n > 1}
    # FCM has no idempotency key: only sends accepted but not yet recorded at the kill may repeat.
    assert duplicates <= unrecorded_at_kill
    assert max(counts.values()) <= 2
    print(
        f"\nSIGKILL after {len(accepted_at_kill)} accepted sends: {len(unrecorded_at_kill)} accepted but "
        f"unrecorded at the kill, {len(duplicates)} sent twice after the restart"
    )
    assert group_pending(settings) == 0


def test_invalid_topic_is_one_failed_delivery_and_the_rest_are_sent(
    settings: Settings, subprocess_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    seeded = seed_notifications(settings, 100)
    bad = seeded[42]
    emulator.faults(invalid_topics=[bad.topic_name])
    hermes = HermesProcess(hermes_env(subprocess_env, emulator), tmp_path / "hermes.log")
    wait_until(
        lambda: delivery_count(settings) == 100, timeout=60, what="100 deliveries", proc=hermes
    )
    assert hermes.stop() == 0
    rows = deliveries(settings)
    failed = {nid: row for nid, row in rows.items() if row["state"] == "failed"}
    assert list(failed) == [bad.notification_id]
    assert failed[bad.notification_id]["error_code"] == "INVALID_ARGUMENT"
    assert failed[bad.notification_id]["attempts"] == 1  # permanent: not retried
    assert failed[bad.notification_id]["outbox"] == "failed"
    assert len(emulator.messages()) == 99
    assert group_pending(settings) == 0


def test_dry_run_validates_everything_and_records_nothing(
    settings: Settings, subprocess_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    seed_notifications(settings, 100)
    hermes = HermesProcess(
        hermes_env(subprocess_env, emulator), tmp_path / "hermes.log", "--dry-run"
    )
    wait_until(
        lambda: emulator.stats()["counts"].get("validated", 0) >= 100,
        timeout=60,
        what="100 validations",
        proc=hermes,
    )
    assert hermes.stop() == 0
    assert emulator.messages() == []
    assert delivery_count(settings) == 0
    with psycopg.connect(settings.postgres_dsn) as conn:
        states = conn.execute("SELECT DISTINCT state FROM notification").fetchall()
    assert states == [("queued",)]
    # The real group has not consumed anything: a real run afterwards sends all 100.
    hermes = HermesProcess(hermes_env(subprocess_env, emulator), tmp_path / "hermes-real.log")
    wait_until(
        lambda: delivery_count(settings) == 100, timeout=60, what="100 deliveries", proc=hermes
    )
    assert hermes.stop() == 0
    assert len(emulator.messages()) == 100


def test_sigterm_finishes_sends_in_hand_and_exits_0(
    settings: Settings, subprocess_env: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    seeded = seed_notifications(settings, 500)
    emulator.faults(delay_ms=300)
    env = hermes_env(subprocess_env, emulator)
    hermes = HermesProcess(env, tmp_path / "hermes.log")
    wait_until(lambda: len(emulator.messages()) >= 100, timeout=60, what="100 sends", proc=hermes)
    hermes.signal(signal.SIGTERM)
    assert hermes.wait(timeout=30) == 0
    # Everything FCM accepted is recorded: nothing was in flight and unrecorded at the exit.
    accepted = per_notification(emulator.messages())
    assert set(accepted) == {
        nid for nid, row in deliveries(settings).items() if row["state"] == "sent"
    }
    assert len(accepted) < 500
    stopped = [e for e in hermes.events() if e.get("event") == "stopped"]
    assert stopped and stopped[0]["sent"] == len(accepted)
    # The rest is still in the stream, and a restart sends exactly those.
    emulator.faults()
    hermes = HermesProcess(env, tmp_path / "hermes-2.log")
    wait_until(
        lambda: delivery_count(settings) == 500, timeout=60, what="500 deliveries", proc=hermes
    )
    assert hermes.stop() == 0
    counts = per_notification(emulator.messages())
    assert set(counts) == {note.notification_id for note in seeded} and set(counts.values()) == {1}
