"""hermes test helpers: outbox rows + stream entries as julia writes them, hermes as a process.

A plain module (not conftest) so tests can import it; the fixtures live in conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from trakr.settings import Settings
from trakr.streams import NOTIFICATIONS

STATUSES = ("OPEN", "CLOSED")


@dataclass(frozen=True)
class Seeded:
    """One notification the test created: what hermes must send."""

    notification_id: int
    topic_name: str
    status: str
    course_name: str
    section_number: str


def seed_notifications(
    settings: Settings, count: int, *, topics: int | None = None
) -> list[Seeded]:
    """Insert `count` outbox rows and XADD their entries (julia's fields), oldest first.

    Notification i goes to topic i % topics, alternating OPEN/CLOSED per topic, so with fewer
    topics than notifications a topic gets several messages whose order matters.
    """
    topics = topics or count
    seeded: list[Seeded] = []
    entries: list[dict[str, str]] = []
    with psycopg.connect(settings.postgres_dsn) as conn, conn.cursor() as cur:
        for i in range(count):
            t = i % topics
            number = f"{t % 100:02d}"
            index = str(10000 + t)
            topic = f"rutgers-nb.198.spring.2026.01-{100 + t // 100}.{number}.{index}"
            course = f"Intro to Computer Science {100 + t // 100}"
            new = STATUSES[(i // topics) % 2]
            old = STATUSES[1 - (i // topics) % 2]
            cur.execute(
                "INSERT INTO notification (topic_name, topic_id, university, old_status, new_status, state)"
                " VALUES (%s, %s, 'rutgers-nb', %s, %s, 'queued') RETURNING id, created_at",
                (topic, t + 1, old, new),
            )
            nid, created_at = cur.fetchone()  # type: ignore[misc]
            seeded.append(Seeded(nid, topic, new, course, number))
            payload = {
                "notification_id": nid,
                "topic_name": topic,
                "university": "rutgers-nb",
                "old_status": old,
                "status": new,
                "created_at": created_at.isoformat(),
                "course_name": course,
                "section_number": number,
                "section_index": index,
                "subject_name": "Computer Science",
            }
            entries.append(
                {
                    "notification_id": str(nid),
                    "topic_name": topic,
                    "status": new,
                    "university": "rutgers-nb",
                    "payload": json.dumps(payload),
                    "created_at": repr(created_at.timestamp()),
                }
            )
    client = redis.Redis.from_url(settings.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(settings.key(NOTIFICATIONS), fields)  # type: ignore[arg-type]
        pipe.execute()
    finally:
        client.close()
    return seeded


def hermes_env(base: dict[str, str], emulator: Any, **extra: str) -> dict[str, str]:
    env = dict(base)
    env.update(
        TRAKR_FCM_URL=emulator.url,
        TRAKR_FCM_CREDENTIALS=str(emulator.credentials),
        TRAKR_BACKOFF_MAX_SECONDS="1",
        # Long enough that a live consumer's slow sends are never taken over mid-test.
        TRAKR_HERMES_CLAIM_IDLE_SECONDS="60",
        TRAKR_HERMES_BLOCK_SECONDS="0.2",
        TRAKR_SHUTDOWN_GRACE_SECONDS="20",
    )
    env.update(extra)
    return env


class HermesProcess:
    """trakr-hermes as a child process, logging to a file. Every instance is killed at exit of
    the test that made it (see `reap`), even when the test fails half-way."""

    started: list[HermesProcess] = []

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trakr.hermes", *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.wait()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, proc: HermesProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(
                f"hermes exited {proc.proc.returncode} while waiting for {what}:\n{proc.log.read_text()[-3000:]}"
            )
        time.sleep(0.1)
    tail = proc.log.read_text()[-3000:] if proc is not None else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def deliveries(settings: Settings) -> dict[int, dict[str, Any]]:
    """Delivery rows by notification id."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        cur = conn.execute(
            "SELECT d.notification_id, d.state, d.fcm_message_id, d.error_code, d.attempts, n.state"
            " FROM delivery d JOIN notification n ON n.id = d.notification_id"
        )
        return {
            row[0]: {
                "state": row[1],
                "fcm_message_id": row[2],
                "error_code": row[3],
                "attempts": row[4],
                "outbox": row[5],
            }
            for row in cur.fetchall()
        }


def delivery_count(settings: Settings) -> int:
    with psycopg.connect(settings.postgres_dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM delivery").fetchone()[0])  # type: ignore[index]


def per_notification(messages: list[dict[str, Any]]) -> Counter[int]:
    """How many times the emulator accepted each notification id."""
    return Counter(int(m["data"]["notification_id"]) for m in messages)


def group_pending(settings: Settings, group: str = "hermes") -> int:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        info = client.xpending(settings.key(NOTIFICATIONS), group)
        return int(info["pending"])
    finally:
        client.close()
