"""hermes' run loop: read notifications, send each to its FCM topic once, record, acknowledge.

Three parts run concurrently:

* the reader takes entries from `<ns>:notifications` (consumer group `hermes`), drops those whose
  delivery is already recorded (a redelivery after a crash), and starts one job per notification,
  as long as fewer than `max_outstanding` entries are unacknowledged;
* jobs send through the FcmSender — at most `hermes_concurrency` sends at once, one at a time per
  topic so a section's "opened" never overtakes its earlier "closed" — retrying transient errors
  with backoff and per-topic pacing, and put their outcome on a queue;
* the recorder writes outcomes in batches (delivery rows + notification.state, one transaction)
  and only then XACKs their entries. Nothing is acknowledged before its outcome is durable.

Exactly-once as far as FCM allows: FCM has no idempotency key, so the one window for a duplicate
is a send FCM accepted whose delivery row was not yet written when hermes died (SIGKILL, power
loss). Redelivered entries with a recorded delivery are acknowledged without sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from trakr.db import ASYNCPG_CONNECTION_ERRORS, load_queries, redact
from trakr.errors import ConfigError
from trakr.hermes import metrics
from trakr.hermes.fcm import FcmSender, FirebaseSender, SendError
from trakr.hermes.message import MalformedEntry, Notification, build_message, parse_entry
from trakr.hermes.policy import RetryPolicy, TopicPacer
from trakr.metrics import start_metrics_server
from trakr.runtime import Backoff, install_stop_signals, retry_until_stopped, sleep_or_stop
from trakr.settings import Settings
from trakr.streams import NOTIFICATIONS, REDIS_CONNECTION_ERRORS, Entry, GroupReader

logger = logging.getLogger(__name__)

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
GROUP = "hermes"
# A dry run must not consume the real group's entries (that would mark them handled), so it
# reads through a group of its own.
DRY_RUN_GROUP = "hermes-dry-run"
RECORD_BATCH_MAX = 1000
PENDING_GAUGE_INTERVAL_SECONDS = 5.0
CONNECTION_ERRORS = (*REDIS_CONNECTION_ERRORS, *ASYNCPG_CONNECTION_ERRORS)


@dataclass
class Outcome:
    """What became of one notification (or None: nothing to record, only acknowledge)."""

    entry_ids: list[str]
    notification: Notification | None = None
    state: str | None = None  # 'sent' | 'failed'; None for acknowledge-only outcomes
    fcm_message_id: str | None = None
    error_code: str | None = None
    attempts: int = 0
    sent_at: datetime | None = None


@dataclass
class Job:
    notification: Notification
    entry_ids: list[str]
    task: asyncio.Task[None] | None = None
    abandoned: bool = False


@dataclass
class Counts:
    sent: int = 0
    failed: int = 0
    validated: int = 0
    skipped: int = 0
    abandoned: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Hermes:
    """One hermes consumer. `run(stop)` returns after `stop` is set and work in hand is drained."""

    def __init__(
        self, settings: Settings, sender: FcmSender, *, consumer: str | None = None
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.dry_run = settings.hermes_dry_run
        self.group = DRY_RUN_GROUP if self.dry_run else GROUP
        self.stream = settings.key(NOTIFICATIONS)
        self.consumer = consumer
        self.policy = RetryPolicy(
            max_attempts=settings.hermes_max_attempts, max_seconds=settings.backoff_max_seconds
        )
        self.pacer = TopicPacer()
        self.max_outstanding = max(100, settings.hermes_concurrency * 4)
        self.counts = Counts()
        self._send_slots = asyncio.Semaphore(settings.hermes_concurrency)
        self._jobs: dict[int, Job] = {}
        self._topic_tail: dict[str, Job] = {}
        self._outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self._outstanding = 0
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._stop = asyncio.Event()
        self._hard_stop = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._redis: aioredis.Redis | None = None
        self._reader: GroupReader | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> bool:
        """Consume until `stop`; False if it stopped because its recorder failed."""
        self._stop = stop
        settings = self.settings
        self._pool = await retry_until_stopped(
            lambda: asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=4),
            stop=stop,
            retry_on=ASYNCPG_CONNECTION_ERRORS,
            what=f"connect to {redact(settings.postgres_dsn)}",
            max_seconds=settings.backoff_max_seconds,
        )
        if self._pool is None:
            return True
        self._redis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=5,
            socket_timeout=settings.hermes_block_seconds + 10,
        )
        reader = GroupReader(
            self._redis,
            self.stream,
            self.group,
            count=100,
            block_seconds=settings.hermes_block_seconds,
            claim_idle_seconds=settings.hermes_claim_idle_seconds,
        )
        if self.consumer:
            reader.consumer = self.consumer
        self._reader = reader
        logger.info(
            "hermes consuming %s as %s/%s%s",
            self.stream,
            self.group,
            reader.consumer,
            " (dry run: validate only, nothing recorded)" if self.dry_run else "",
            extra={
                "event": "started",
                "stream": self.stream,
                "group": self.group,
                "dry_run": self.dry_run,
            },
        )
        recorder = asyncio.create_task(self._record_loop(), name="hermes-recorder")
        # Without its recorder nothing is acknowledged any more: stop rather than limp on.
        recorder.add_done_callback(lambda _: stop.set())
        try:
            await self._read_loop()
        finally:
            await self._drain(recorder)
            await self._redis.aclose()
            await self._pool.close()
        if not recorder.cancelled() and recorder.exception() is not None:
            logger.error(
                "recorder failed", exc_info=recorder.exception(), extra={"event": "task_died"}
            )
            return False
        return True

    async def _drain(self, recorder: asyncio.Task[None]) -> None:
        """Let sends in flight finish (within the grace period), record and acknowledge them."""
        grace = self.settings.shutdown_grace_seconds
        tasks = [job.task for job in self._jobs.values() if job.task is not None]
        if tasks:
            logger.info(
                "waiting for %d sends in hand",
                len(tasks),
                extra={"event": "draining", "jobs": len(tasks)},
            )
            _, still_running = await asyncio.wait(tasks, timeout=grace)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
        await self._outcomes.put(None)
        _, pending = await asyncio.wait([recorder], timeout=max(grace, 1.0))
        if pending:
            # PostgreSQL or Redis is down: the unrecorded entries stay pending and come back.
            self._hard_stop.set()
            await asyncio.wait([recorder], timeout=5)
            recorder.cancel()
            await asyncio.wait([recorder])
        c = self.counts
        logger.info(
            "hermes stopped: %d sent, %d failed, %d validated, %d skipped, %d left pending",
            c.sent,
            c.failed,
            c.validated,
            c.skipped,
            c.abandoned,
            extra={
                "event": "stopped",
                "sent": c.sent,
                "failed": c.failed,
                "validated": c.validated,
                "skipped": c.skipped,
                "abandoned": c.abandoned,
            },
        )

    # --- reading ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        assert self._reader is not None
        reader = self._reader
        backoff = Backoff(max_seconds=self.settings.backoff_max_seconds)
        started = False
        next_gauge = 0.0
        while not self._stop.is_set():
            try:
                if not started:
                    await reader.start()
                    started = True
                if self._outstanding >= self.max_outstanding:
                    self._capacity.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._capacity.wait(), timeout=self.settings.hermes_block_seconds
                        )
                    continue
                reader.count = max(1, min(500, self.max_outstanding - self._outstanding))
                entries = await reader.read()
                if entries:
                    await self._dispatch(entries)
                if time.monotonic() >= next_gauge:
                    next_gauge = time.monotonic() + PENDING_GAUGE_INTERVAL_SECONDS
                    await self._update_pending_gauge()
                backoff.reset()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream (and its group) was deleted under us: create them again.
                logger.warning("%s", exc, extra={"event": "group_missing"})
                started = False
            except CONNECTION_ERRORS as exc:
                what = "redis" if isinstance(exc, REDIS_CONNECTION_ERRORS) else "postgres"
                metrics.RECONNECTS.labels(what).inc()
                logger.warning(
                    "%s unavailable: %s", what, exc, extra={"event": "reconnect", "what": what}
                )
                # Entries read but not dispatched stay pending for this consumer: re-read them.
                started = False
                if not await backoff.wait(self._stop, what=f"reconnect to {what}"):
                    break

    async def _update_pending_gauge(self) -> None:
        assert self._redis is not None
        summary = await self._redis.xpending(self.stream, self.group)
        metrics.STREAM_PENDING.set(int(summary.get("pending", 0)) if summary else 0)

    async def _dispatch(self, entries: list[Entry]) -> None:
        """Start a job per new notification; acknowledge what needs no send.

        An entry counts as outstanding from the moment it is given a job or an outcome until
        its acknowledgement (or until its job is abandoned); a failure before that leaves it
        pending in Redis, and it is read again after the reconnect.
        """
        fresh: dict[int, Job] = {}
        for entry_id, fields in entries:
            try:
                notification = parse_entry(fields)
            except MalformedEntry as exc:
                logger.error(
                    "dropping malformed entry %s: %s",
                    entry_id,
                    exc,
                    extra={"event": "malformed", "entry": entry_id},
                )
                metrics.MESSAGES.labels("malformed", "").inc()
                self.counts.skipped += 1
                self._finish(Outcome([entry_id]))
                continue
            nid = notification.notification_id
            job = self._jobs.get(nid)
            if job is not None:
                # Already in hand (a reclaimed entry, julia re-adding it after a crash, or our
                # own pending re-read after a reconnect): one send; every entry acknowledged.
                if entry_id not in job.entry_ids:
                    job.entry_ids.append(entry_id)
                    self._outstanding += 1
                continue
            if nid in fresh:
                if entry_id not in fresh[nid].entry_ids:
                    fresh[nid].entry_ids.append(entry_id)
                continue
            fresh[nid] = Job(notification, [entry_id])
        if not fresh:
            return
        assert self._pool is not None
        rows = await self._pool.fetch(QUERIES["delivery_status"], list(fresh))
        status = {row["notification_id"]: row for row in rows}
        # Stream order, not the query's row order: jobs of one topic are chained in start order.
        for nid, job in fresh.items():
            row = status[nid]
            if row["delivery_state"] is not None:
                logger.debug(
                    "notification %d already %s",
                    nid,
                    row["delivery_state"],
                    extra={"event": "duplicate"},
                )
                metrics.MESSAGES.labels("duplicate", "").inc()
                self.counts.skipped += 1
                self._finish(Outcome(job.entry_ids))
            elif not row["known"]:
                logger.error(
                    "notification %d has no outbox row; not sending it",
                    nid,
                    extra={"event": "unknown_notification", "notification_id": nid},
                )
                metrics.MESSAGES.labels("unknown", "").inc()
                self.counts.skipped += 1
                self._finish(Outcome(job.entry_ids))
            else:
                self._outstanding += len(job.entry_ids)
                self._start(job)

    def _finish(self, outcome: Outcome) -> None:
        """Queue an outcome that was not produced by a job (nothing sent)."""
        self._outstanding += len(outcome.entry_ids)
        self._outcomes.put_nowait(outcome)

    def _start(self, job: Job) -> None:
        topic = job.notification.topic_name
        previous = self._topic_tail.get(topic)
        job.task = asyncio.create_task(
            self._deliver(job, previous), name=f"send-{job.notification.notification_id}"
        )
        self._jobs[job.notification.notification_id] = job
        self._topic_tail[topic] = job
        job.task.add_done_callback(lambda task: self._job_done(job, task))

    def _job_done(self, job: Job, task: asyncio.Task[None]) -> None:
        if self._topic_tail.get(job.notification.topic_name) is job:
            del self._topic_tail[job.notification.topic_name]
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                logger.error(
                    "send job crashed", exc_info=task.exception(), extra={"event": "job_crashed"}
                )
            self._abandon(job)

    def _release(self, entries: int) -> None:
        self._outstanding -= entries
        if self._outstanding < self.max_outstanding:
            self._capacity.set()

    # --- sending ------------------------------------------------------------------------------

    async def _deliver(self, job: Job, previous: Job | None) -> None:
        """Send one notification until FCM accepts, rejects it for good, or attempts run out."""
        if previous is not None and previous.task is not None:
            await asyncio.wait([previous.task])
            if previous.abandoned:
                # Sending this one now would let it overtake its predecessor, which comes back
                # later: an old "opened" must never arrive after a newer "closed".
                return self._abandon(job)
        notification = job.notification
        topic = notification.topic_name
        message = build_message(notification)
        attempts = 0
        while True:
            pause = self.pacer.wait_seconds(topic)
            if pause and not await sleep_or_stop(pause, self._stop):
                return self._abandon(job)
            # No stop check here: on SIGTERM every notification already read is still sent (work
            # in hand; its entry would otherwise wait claim_idle_seconds for another consumer).
            # Only waits — a retry backoff, a rate-limited topic's pause — are cut short.
            async with self._send_slots:
                attempts += 1
                metrics.IN_FLIGHT.inc()
                started = time.perf_counter()
                try:
                    name = await self.sender.send(message, dry_run=self.dry_run)
                except SendError as exc:
                    error: SendError | None = exc
                else:
                    error = None
                finally:
                    metrics.SEND_DURATION.observe(time.perf_counter() - started)
                    metrics.IN_FLIGHT.dec()
            if error is None:
                self.pacer.succeeded(topic)
                return self._accepted(job, name, attempts)
            if error.rate_limited:
                self.pacer.rate_limited(topic, error.retry_after_seconds)
            if not error.transient:
                return self._rejected(job, error, attempts, outcome="failed")
            if not self.policy.should_retry(attempts):
                return self._rejected(job, error, attempts, outcome="gave_up")
            metrics.RETRIES.labels(error.code).inc()
            delay = self.policy.delay(attempts, error.retry_after_seconds)
            logger.debug(
                "notification %d: %s, retry %d in %.2fs",
                notification.notification_id,
                error.code,
                attempts,
                delay,
                extra={"event": "send_retry", "error_code": error.code},
            )
            if not await sleep_or_stop(delay, self._stop):
                return self._abandon(job)

    def _accepted(self, job: Job, name: str, attempts: int) -> None:
        now = time.time()
        if self.dry_run:
            metrics.MESSAGES.labels("validated", "").inc()
            self.counts.validated += 1
            self._outcomes.put_nowait(Outcome(job.entry_ids, job.notification))
            return
        metrics.MESSAGES.labels("sent", "").inc()
        if job.notification.created_at is not None:
            metrics.DELIVERY_LAG.observe(max(0.0, now - job.notification.created_at))
        self.counts.sent += 1
        self._outcomes.put_nowait(
            Outcome(
                job.entry_ids,
                job.notification,
                state="sent",
                fcm_message_id=name,
                attempts=attempts,
                sent_at=datetime.fromtimestamp(now, UTC),
            )
        )

    def _rejected(self, job: Job, error: SendError, attempts: int, *, outcome: str) -> None:
        nid = job.notification.notification_id
        logger.warning(
            "notification %d to %s not delivered: %s (after %d attempts)",
            nid,
            job.notification.topic_name,
            error,
            attempts,
            extra={
                "event": "send_failed",
                "notification_id": nid,
                "error_code": error.code,
                "outcome": outcome,
            },
        )
        if self.dry_run:
            metrics.MESSAGES.labels("invalid", error.code).inc()
            self.counts.failed += 1
            self._outcomes.put_nowait(Outcome(job.entry_ids, job.notification))
            return
        metrics.MESSAGES.labels(outcome, error.code).inc()
        self.counts.failed += 1
        self._outcomes.put_nowait(
            Outcome(
                job.entry_ids,
                job.notification,
                state="failed",
                error_code=error.code,
                attempts=attempts,
                sent_at=datetime.now(UTC),
            )
        )

    def _abandon(self, job: Job) -> None:
        """Stopping mid-retry (or a crashed job): leave the entries pending for a later read."""
        if self._jobs.get(job.notification.notification_id) is job:
            del self._jobs[job.notification.notification_id]
        job.abandoned = True
        self.counts.abandoned += 1
        self._release(len(job.entry_ids))

    # --- recording ----------------------------------------------------------------------------

    async def _record_loop(self) -> None:
        """Write outcomes in batches, then acknowledge their entries. Returns on the None sentinel."""
        finished = False
        while not finished:
            first = await self._outcomes.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < RECORD_BATCH_MAX and not self._outcomes.empty():
                item = self._outcomes.get_nowait()
                if item is None:
                    finished = True
                    break
                batch.append(item)
            if not await self._record(batch):
                return
            for outcome in batch:
                # Only now may a re-read of the same notification be checked against the database.
                if outcome.notification is not None:
                    self._jobs.pop(outcome.notification.notification_id, None)
            self._release(sum(len(outcome.entry_ids) for outcome in batch))

    async def _record(self, batch: list[Outcome]) -> bool:
        """Make the batch durable and acknowledge it, retrying through outages; False if given up."""
        backoff = Backoff(max_seconds=self.settings.backoff_max_seconds)
        rows = [outcome for outcome in batch if outcome.state is not None]
        entry_ids = [entry_id for outcome in batch for entry_id in outcome.entry_ids]
        while True:
            started = time.perf_counter()
            try:
                if rows and not self.dry_run:
                    await self._write(rows)
                assert self._reader is not None
                await self._reader.ack(*entry_ids)
            except CONNECTION_ERRORS as exc:
                what = "redis" if isinstance(exc, REDIS_CONNECTION_ERRORS) else "postgres"
                metrics.RECONNECTS.labels(what).inc()
                logger.warning(
                    "cannot record %d outcomes (%s: %s)",
                    len(batch),
                    what,
                    exc,
                    extra={"event": "record_retry"},
                )
                if not await backoff.wait(self._hard_stop, what=f"record outcomes ({what})"):
                    return False
                continue
            metrics.RECORD_DURATION.observe(time.perf_counter() - started)
            return True

    async def _write(self, rows: list[Outcome]) -> None:
        assert self._pool is not None
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for outcome in rows:
            assert outcome.notification is not None
            columns[0].append(outcome.notification.notification_id)
            columns[1].append(outcome.state)
            columns[2].append(outcome.fcm_message_id)
            columns[3].append(outcome.error_code)
            columns[4].append(outcome.attempts)
            columns[5].append(outcome.sent_at)
        result = await self._pool.fetchrow(QUERIES["record_outcomes"], *columns)
        if result is not None and result["inserted"] < len(rows):
            logger.warning(
                "%d of %d deliveries were already recorded (another consumer sent them too)",
                len(rows) - result["inserted"],
                len(rows),
                extra={"event": "delivery_conflict"},
            )


def build_sender(settings: Settings) -> FirebaseSender:
    """The real sender; raises ConfigError when no usable credentials file is configured."""
    if settings.fcm_credentials is None:
        raise ConfigError(
            "no FCM credentials: set TRAKR_FCM_CREDENTIALS (or GOOGLE_APPLICATION_CREDENTIALS) "
            "to a service-account JSON file"
        )
    try:
        return FirebaseSender(
            credentials_file=settings.fcm_credentials,
            fcm_url=settings.fcm_url,
            concurrency=settings.hermes_concurrency,
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot use FCM credentials {settings.fcm_credentials}: {exc}") from exc


async def run(settings: Settings) -> int:
    """Run hermes until SIGTERM/SIGINT; returns the exit code (0 after a clean drain)."""
    stop = install_stop_signals()
    sender = build_sender(settings)
    logger.info(
        "sending to %s", sender.send_url, extra={"event": "fcm_endpoint", "url": sender.send_url}
    )
    start_metrics_server(settings.metrics_port, default_port=metrics.DEFAULT_METRICS_PORT)
    try:
        healthy = await Hermes(settings, sender).run(stop)
    finally:
        await sender.close()
    return 0 if healthy else 1
