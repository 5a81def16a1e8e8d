"""hermes.service in-process with a recording FcmSender (our own seam), real PostgreSQL and Redis.

The SDK and the emulator are covered by test_hermes_process.py; here the sender is scripted so
each retry/permanent/pacing/ordering rule can be checked exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

import psycopg
import pytest
import redis.asyncio as aioredis
from firebase_admin import messaging
from hermes_helpers import deliveries, group_pending, seed_notifications
from trakr.hermes.fcm import SendError
from trakr.hermes.service import Hermes
from trakr.settings import Settings
from trakr.streams import NOTIFICATIONS

Script = Callable[[messaging.Message, int], SendError | None]


class RecordingSender:
    """Records every send; `script(message, attempt)` returns the error to raise, if any."""

    def __init__(self, script: Script | None = None, *, delay_seconds: float = 0.0) -> None:
        self.script = script or (lambda message, attempt: None)
        self.delay_seconds = delay_seconds
        self.calls: list[
            tuple[float, str, str, bool]
        ] = []  # (time, topic, notification id, dry run)
        self.attempts: dict[str, int] = defaultdict(int)

    async def send(self, message: messaging.Message, *, dry_run: bool) -> str:
        nid = message.data["notification_id"]
        self.attempts[nid] += 1
        self.calls.append((time.monotonic(), message.topic, nid, dry_run))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        error = self.script(message, self.attempts[nid])
        if error is not None:
            raise error
        return f"projects/p/messages/{nid}-{self.attempts[nid]}"

    async def close(self) -> None:
        return None


@pytest.fixture
def hermes_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "hermes_block_seconds": 0.1,
            "backoff_max_seconds": 0.2,
            "hermes_max_attempts": 4,
            "shutdown_grace_seconds": 5.0,
        }
    )


async def run_until(
    hermes: Hermes, predicate: Callable[[], bool], wait_seconds: float = 30
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(hermes.run(stop))
    deadline = time.monotonic() + wait_seconds
    try:
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def delivered(settings: Settings, n: int) -> Callable[[], bool]:
    return lambda: len(deliveries(settings)) >= n


async def test_transient_errors_are_retried_until_accepted(hermes_settings: Settings) -> None:
    seeded = seed_notifications(hermes_settings, 5)
    flaky = str(seeded[2].notification_id)
    sender = RecordingSender(
        lambda m, attempt: (
            SendError("UNAVAILABLE") if m.data["notification_id"] == flaky and attempt < 3 else None
        )
    )
    await run_until(Hermes(hermes_settings, sender), delivered(hermes_settings, 5))
    rows = deliveries(hermes_settings)
    assert rows[int(flaky)] == {
        "state": "sent",
        "fcm_message_id": f"projects/p/messages/{flaky}-3",
        "error_code": None,
        "attempts": 3,
        "outbox": "sent",
    }
    assert {row["attempts"] for nid, row in rows.items() if nid != int(flaky)} == {1}


async def test_permanent_error_is_recorded_once_without_retry(hermes_settings: Settings) -> None:
    seeded = seed_notifications(hermes_settings, 3)
    sender = RecordingSender(lambda m, attempt: SendError("SENDER_ID_MISMATCH", "wrong project"))
    await run_until(Hermes(hermes_settings, sender), delivered(hermes_settings, 3))
    rows = deliveries(hermes_settings)
    assert {(r["state"], r["error_code"], r["attempts"], r["outbox"]) for r in rows.values()} == {
        ("failed", "SENDER_ID_MISMATCH", 1, "failed")
    }
    assert len(sender.calls) == 3 and len(rows) == len(seeded)


async def test_transient_errors_give_up_after_max_attempts(hermes_settings: Settings) -> None:
    seed_notifications(hermes_settings, 2)
    sender = RecordingSender(lambda m, attempt: SendError("INTERNAL"))
    await run_until(Hermes(hermes_settings, sender), delivered(hermes_settings, 2))
    rows = deliveries(hermes_settings)
    assert {(r["state"], r["error_code"], r["attempts"]) for r in rows.values()} == {
        ("failed", "INTERNAL", 4)
    }
    assert len(sender.calls) == 8
    assert group_pending(hermes_settings) == 0


async def test_rate_limited_topic_waits_for_retry_after(hermes_settings: Settings) -> None:
    seeded = seed_notifications(hermes_settings, 3, topics=1)  # one topic, three notifications
    first = str(seeded[0].notification_id)
    sender = RecordingSender(
        lambda m, attempt: (
            SendError("QUOTA_EXCEEDED", retry_after_seconds=1)
            if m.data["notification_id"] == first and attempt == 1
            else None
        )
    )
    await run_until(Hermes(hermes_settings, sender), delivered(hermes_settings, 3))
    times = [t for t, *_ in sender.calls]
    assert times[1] - times[0] >= 1.0  # Retry-After honoured (above the 0.2 s backoff cap)
    assert [nid for _, _, nid, _ in sender.calls] == [
        first,
        first,
        *(str(s.notification_id) for s in seeded[1:]),
    ]


async def test_sends_to_one_topic_keep_their_order(hermes_settings: Settings) -> None:
    seeded = seed_notifications(hermes_settings, 60, topics=6)
    # Early notifications are slow and fail once: a naive concurrent sender would reorder them.
    sender = RecordingSender(
        lambda m, attempt: (
            SendError("UNAVAILABLE")
            if int(m.data["notification_id"]) % 7 == 0 and attempt == 1
            else None
        ),
        delay_seconds=0.01,
    )
    await run_until(Hermes(hermes_settings, sender), delivered(hermes_settings, 60))
    last: dict[str, int] = {}
    for _, topic, nid, _ in sender.calls:
        assert int(nid) >= last.get(topic, 0)
        last[topic] = int(nid)
    assert len({nid for *_, nid, _ in sender.calls}) == len(seeded)


async def test_recorded_delivery_is_acknowledged_without_sending(hermes_settings: Settings) -> None:
    seeded = seed_notifications(hermes_settings, 4)
    done = seeded[1].notification_id
    with psycopg.connect(hermes_settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO delivery (notification_id, state, fcm_message_id) VALUES (%s, 'sent', 'earlier')",
            (done,),
        )
    sender = RecordingSender()
    await run_until(
        Hermes(hermes_settings, sender),
        lambda: len(sender.calls) == 3 and group_pending(hermes_settings) == 0,
    )
    assert str(done) not in {nid for *_, nid, _ in sender.calls}
    assert deliveries(hermes_settings)[done]["fcm_message_id"] == "earlier"


async def test_malformed_and_unknown_entries_are_acknowledged_not_sent(
    hermes_settings: Settings, redis_client: aioredis.Redis
) -> None:
    stream = hermes_settings.key(NOTIFICATIONS)
    await redis_client.xadd(stream, {"garbage": "1"})
    await redis_client.xadd(
        stream, {"notification_id": "999999", "topic_name": "a.b", "status": "OPEN"}
    )
    seed_notifications(hermes_settings, 1)
    sender = RecordingSender()
    hermes = Hermes(hermes_settings, sender)
    await run_until(hermes, lambda: len(sender.calls) == 1 and group_pending(hermes_settings) == 0)
    await asyncio.sleep(0)
    assert hermes.counts.skipped == 2 and hermes.counts.sent == 1
    xinfo = await redis_client.xinfo_groups(stream)
    assert xinfo[0]["pending"] == 0


async def test_dry_run_uses_its_own_group_and_records_nothing(hermes_settings: Settings) -> None:
    seed_notifications(hermes_settings, 5)
    sender = RecordingSender()
    dry = hermes_settings.model_copy(update={"hermes_dry_run": True})
    hermes = Hermes(dry, sender)
    await run_until(hermes, lambda: hermes.counts.validated == 5)
    assert {dry_run for *_, dry_run in sender.calls} == {True}
    assert deliveries(hermes_settings) == {}
    assert group_pending(hermes_settings, "hermes-dry-run") == 0


async def test_unreachable_redis_and_postgres_are_retried_not_fatal(
    hermes_settings: Settings,
) -> None:
    for broken in (
        {"redis_url": "redis://127.0.0.1:1/0"},
        {"postgres_dsn": "postgresql://postgres@127.0.0.1:1/nothing"},
    ):
        hermes = Hermes(hermes_settings.model_copy(update=broken), RecordingSender())
        stop = asyncio.Event()
        task = asyncio.create_task(hermes.run(stop))
        await asyncio.sleep(1.5)
        assert not task.done(), "hermes gave up instead of backing off"
        stop.set()
        assert await asyncio.wait_for(task, 10) is True
