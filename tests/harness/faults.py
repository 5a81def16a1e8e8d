"""Fault injection against a running Pipeline and its own servers, and the drain that follows."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import psycopg
import redis

from harness.pipeline import Pipeline, wait_until
from harness.servers import PostgresCluster, RedisServer

PROCESS_KILLS = ("jet1", "jet2", "ein", "julia", "hermes", "spike")
SERVER_FAULTS = ("pg_terminate_backend", "redis_restart", "postgres_restart", "fcm_errors")


@dataclass
class FaultLog:
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    # (wall-clock start, wall-clock end, kind): comparable with the emulator's received_at.
    timeline: list[tuple[float, float, str]] = field(default_factory=list)

    def record(self, kind: str, started: float) -> None:
        self.counts[kind] += 1
        self.timeline.append((started, time.time(), kind))

    def during(self, first: float, last: float, *, slack_seconds: float = 1.0) -> str | None:
        """The kind of the first fault in progress between two pushes of one notification.

        A duplicate push is excusable only when its first send was in flight as a fault hit:
        the fault must have been going on at some point between `first - slack` and `last`.
        """
        for start, end, kind in self.timeline:
            if start <= last and end >= first - slack_seconds:
                return kind
        return None


@dataclass
class Chaos:
    """Injects one fault after another, round-robin over every kind, until told to stop."""

    pipeline: Pipeline
    redis_server: RedisServer
    postgres: PostgresCluster
    database: str
    gap_seconds: float = 4.0
    seed: int = 0
    # Every FCM send takes this long, so a kill of hermes finds sends in flight.
    fcm_delay_ms: int = 50
    log: FaultLog = field(default_factory=FaultLog)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kinds(self) -> list[str]:
        jets = tuple(self.pipeline.jet_names())
        return [
            *(f"kill {name}" for name in (*jets, "ein", "julia", "hermes", "spike")),
            *SERVER_FAULTS,
        ]

    def slow_fcm(self, **extra: object) -> None:
        httpx.post(
            self.pipeline.emulator_url("/faults"),
            json={"delay_ms": self.fcm_delay_ms, **extra},
            timeout=5,
        )

    def inject(self, kind: str) -> None:
        """One fault; returns when the faulty part has been restarted (if it was stopped)."""
        started = time.time()
        if kind.startswith("kill "):
            process = self.pipeline.processes[kind.split(" ", 1)[1]]
            process.kill(signal.SIGKILL)
            time.sleep(self.rng.uniform(0.1, 1.0))
            process.restart()
        elif kind == "pg_terminate_backend":
            self.postgres.terminate_backends(self.database)
        elif kind == "redis_restart":
            self.redis_server.kill()
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.redis_server.start()
        elif kind == "postgres_restart":
            self.postgres.kill()
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.postgres.start()
        elif kind == "fcm_errors":
            # A burst of transient FCM failures: hermes must retry, not drop, not double-record.
            self.slow_fcm(unavailable_rate=0.5, rate_limit_rate=0.2, retry_after_seconds=1,
                          seed=self.rng.randrange(1 << 30))  # fmt: skip
            time.sleep(3)
            self.slow_fcm()
        else:
            raise ValueError(kind)
        self.log.record(kind, started)

    def run(self, seconds: float) -> None:
        """Inject faults for `seconds` (in this thread); every kind at least once if time allows."""
        kinds = self.kinds()
        self.slow_fcm()
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline and not self._stop.is_set():
            kind = kinds[i % len(kinds)]
            i += 1
            try:
                self.inject(kind)
            except Exception as exc:  # a harness failure is reported, never hidden
                self.log.errors.append(f"{kind}: {exc!r}")
            self._stop.wait(self.gap_seconds * self.rng.uniform(0.5, 1.5))


def _group(client: redis.Redis, stream: str, group: str) -> dict | None:
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:
        return None
    for info in groups:
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == group:
            return info
    return None


@dataclass(frozen=True)
class Backlog:
    scrapes_lag: int | None
    scrapes_pending: int | None
    outbox_unforwarded: int | None  # notification rows julia has not forwarded (new/held)
    notifications_lag: int | None
    notifications_pending: int | None
    undelivered: int | None  # queued rows without a delivery row

    def drained(self) -> bool:
        return all(
            v == 0
            for v in (self.scrapes_lag, self.scrapes_pending, self.outbox_unforwarded,
                      self.notifications_lag, self.notifications_pending, self.undelivered)
        )  # fmt: skip


def backlog(client: redis.Redis, dsn: str, namespace: str) -> Backlog:
    """Where work is waiting right now, per stage (None where it cannot be read)."""
    values: dict[str, int | None] = {}
    for stream, group, prefix in (
        ("scrapes", "ein", "scrapes"),
        ("notifications", "hermes", "notifications"),
    ):
        try:
            info = _group(client, f"{namespace}:{stream}", group)
        except redis.RedisError:
            info = None
        values[f"{prefix}_lag"] = (
            None if info is None or info.get("lag") is None else int(info["lag"])
        )
        values[f"{prefix}_pending"] = None if info is None else int(info["pending"])
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE n.state IN ('new', 'held')),"
                " count(*) FILTER (WHERE n.state <> 'collapsed' AND n.state <> 'new'"
                "                    AND n.state <> 'held' AND d.notification_id IS NULL)"
                " FROM notification n LEFT JOIN delivery d ON d.notification_id = n.id"
            ).fetchone()
        values["outbox_unforwarded"], values["undelivered"] = (
            (int(row[0]), int(row[1])) if row else (None, None)
        )
    except psycopg.Error:
        values["outbox_unforwarded"] = values["undelivered"] = None
    return Backlog(**values)


def drain(
    client_factory: Callable[[], redis.Redis], dsn: str, namespace: str, *, timeout_seconds: float
) -> tuple[bool, Backlog]:
    """Wait until every stage is empty (twice in a row, a second apart); (drained, last backlog)."""
    last: list[Backlog] = []

    def empty() -> bool:
        client = client_factory()
        try:
            state = backlog(client, dsn, namespace)
        finally:
            client.close()
        last.append(state)
        return state.drained()

    ok = wait_until(
        lambda: empty() and (time.sleep(1.0) or empty()),
        timeout_seconds=timeout_seconds,
        interval_seconds=0.5,
    )
    return ok, last[-1]
