"""The stream loop: take scrapes from `<ns>:scrapes` (group `ein`), ingest, then acknowledge.

At-least-once: an entry is acknowledged only after its transaction committed (or after it was
moved to the dead-letter stream). If PostgreSQL or Redis goes away the entry stays pending, we
reconnect with backoff and it is delivered to us again (own pending entries first); an entry
that was committed but not acknowledged comes back with a known snapshot hash and is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis
from asyncpg.exceptions._base import DataError as ClientDataError

from trakr import streams
from trakr.codec import ScrapeRejected
from trakr.db import ASYNCPG_CONNECTION_ERRORS, redact
from trakr.ein import metrics
from trakr.ein.ingest import IngestResult, ingest_payload
from trakr.metrics import start_metrics_server
from trakr.runtime import Backoff, install_stop_signals
from trakr.settings import Settings
from trakr.streams import REDIS_CONNECTION_ERRORS, GroupReader

logger = logging.getLogger(__name__)

GROUP = "ein"
DEFAULT_METRICS_PORT = 9102
CHANGED_CHANNEL = ("ein", "changed")  # settings.key(*CHANGED_CHANNEL): pub/sub, message = topic
# Test hook: seconds to sleep before COMMIT, so a test can SIGKILL ein inside the transaction.
PAUSE_ENV = "TRAKR_TEST_EIN_PAUSE_BEFORE_COMMIT_SECONDS"
OUTAGE_ERRORS = (*ASYNCPG_CONNECTION_ERRORS, *REDIS_CONNECTION_ERRORS)
# Errors caused by the scrape's content: the same scrape would fail again on any connection.
# asyncpg's client-side DataError (a value it cannot encode) is an InterfaceError, so it must be
# told apart from the connection errors before them.
CONTENT_ERRORS = (
    ClientDataError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)
# An unexpected (non-database) exception on a healthy connection, this many times in a row for
# one entry, means the entry itself triggers it: it is set aside rather than block the stream.
MAX_UNEXPECTED_ATTEMPTS = 5


class RetryLater(Exception):
    """Give up on the entry in hand for now: it stays pending and is taken again after a
    backoff, on a fresh connection."""


def changed_channel(settings: Settings) -> str:
    return settings.key(*CHANGED_CHANNEL)


def record_result(result: IngestResult) -> None:
    """Count one ingest in the metrics."""
    if result.skipped:
        metrics.SCRAPES_SKIPPED.labels(reason=result.skip_reason or "identical").inc()
        return
    metrics.SCRAPES_PROCESSED.inc()
    metrics.INGEST_DURATION.labels(mode=result.mode).observe(result.duration_seconds)
    metrics.STATUS_CHANGES.inc(result.status_changes)
    for table, kinds in result.counts.items():
        for kind, n in kinds.items():
            if n:
                metrics.ROWS.labels(table=table, kind=kind).inc(n)


async def publish_changed(redis: aioredis.Redis, settings: Settings, result: IngestResult) -> None:
    """Tell spike (and anyone listening) which university changed."""
    if result.changed and not result.skipped:
        await redis.publish(changed_channel(settings), result.university)


@dataclass
class Ein:
    settings: Settings
    fmt: str
    insert_all: bool
    stop: asyncio.Event
    pause_before_commit_seconds: float = 0.0
    processed: int = 0
    rejected: int = 0
    skipped: int = 0
    _last_pending_check: float = field(default=0.0)
    _failures: dict[str, int] = field(default_factory=dict)  # entry id -> unexpected errors

    @property
    def stream(self) -> str:
        return self.settings.key(streams.SCRAPES)

    @property
    def dead_letter(self) -> str:
        return self.settings.key(streams.SCRAPES_DEAD_LETTER)

    async def serve(self) -> None:
        """Consume until `stop` is set; outages are retried with backoff, never fatal."""
        backoff = Backoff(max_seconds=self.settings.backoff_max_seconds)
        while not self.stop.is_set():
            try:
                async with self._resources() as (redis, conn):
                    reader = GroupReader(
                        redis,
                        self.stream,
                        GROUP,
                        # One name per host, not per process: a restarted ein first re-reads the
                        # entries its predecessor left pending, so scrapes are applied in stream
                        # order. A per-process name would read newer entries first and reach the
                        # older one only through XAUTOCLAIM, after which it is stale and skipped
                        # (a flap inside it lost). Two eins on one host share pending entries
                        # harmlessly: the university row lock and the snapshot hash serialise them.
                        consumer=f"ein-{socket.gethostname()}",
                        count=1,  # one scrape in hand at a time: they are large, and SIGTERM finishes it
                        block_seconds=self.settings.ein_block_seconds,
                        claim_idle_seconds=self.settings.ein_claim_idle_seconds,
                    )
                    await reader.start()
                    logger.info(
                        "consuming %s as %s/%s",
                        self.stream,
                        GROUP,
                        reader.consumer,
                        extra={"event": "consuming"},
                    )
                    backoff.reset()
                    await self._consume(reader, redis, conn)
            except OUTAGE_ERRORS as exc:
                logger.warning(
                    "lost PostgreSQL or Redis: %s: %s",
                    type(exc).__name__,
                    exc,
                    extra={"event": "outage"},
                )
                if not await backoff.wait(self.stop, what="reconnect"):
                    break
            except RetryLater as exc:
                logger.warning(
                    "will retry on a fresh connection: %s",
                    exc,
                    extra={"event": "ingest_retry"},
                )
                if not await backoff.wait(self.stop, what="reconnect"):
                    break
            except asyncpg.PostgresError as exc:
                logger.exception("database error: %s", exc, extra={"event": "database_error"})
                if not await backoff.wait(self.stop, what="reconnect"):
                    break
        logger.info(
            "stopped: %d ingested, %d skipped, %d rejected",
            self.processed,
            self.skipped,
            self.rejected,
            extra={"event": "stopped", "processed": self.processed, "rejected": self.rejected},
        )

    @asynccontextmanager
    async def _resources(self) -> AsyncIterator[tuple[aioredis.Redis, asyncpg.Connection]]:
        redis = aioredis.Redis.from_url(self.settings.redis_url)
        try:
            conn = await asyncpg.connect(self.settings.postgres_dsn, timeout=10)
        except BaseException:
            await redis.aclose()
            raise
        logger.info(
            "connected to %s", redact(self.settings.postgres_dsn), extra={"event": "connected"}
        )
        try:
            yield redis, conn
        finally:
            await redis.aclose()
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except (*ASYNCPG_CONNECTION_ERRORS, TimeoutError):
                conn.terminate()

    async def _consume(
        self, reader: GroupReader, redis: aioredis.Redis, conn: asyncpg.Connection
    ) -> None:
        while not self.stop.is_set():
            entries = await reader.read()
            for entry_id, fields in entries:
                # Finish the entry in hand even if SIGTERM arrives meanwhile.
                await self._handle(reader, redis, conn, entry_id, fields)
                if self.stop.is_set():
                    break
            await self._update_pending(redis, force=bool(entries))

    async def _handle(
        self,
        reader: GroupReader,
        redis: aioredis.Redis,
        conn: asyncpg.Connection,
        entry_id: str,
        fields: dict[bytes, bytes],
    ) -> None:
        text = {k.decode(errors="replace"): v for k, v in fields.items()}
        payload = text.get("payload", b"")
        fmt = text.get("format", self.fmt.encode()).decode(errors="replace") or self.fmt
        scraped_at = _scraped_at(text.get("scraped_at"))
        metrics.PAYLOAD_BYTES.observe(len(payload))
        try:
            if fmt not in ("json", "protobuf"):
                raise ScrapeRejected("bad_format", f"unknown format {fmt[:40]!r}")
            if not payload:
                raise ScrapeRejected("empty_payload", "the stream entry has no payload")
            result = await ingest_payload(
                conn,
                payload,
                fmt,
                insert_all=self.insert_all,
                max_delete_share=self.settings.ein_max_delete_share,
                scraped_at=scraped_at,
                pause_before_commit_seconds=self.pause_before_commit_seconds,
            )
        except ScrapeRejected as exc:
            await self._dead_letter(reader, redis, entry_id, fields, exc.reason, str(exc))
            return
        except CONTENT_ERRORS as exc:
            # The database refused this scrape's content (e.g. a NUL byte in a string): retrying
            # would fail forever, so it is set aside like any other bad scrape.
            await self._dead_letter(reader, redis, entry_id, fields, "database_rejected", str(exc))
            return
        except OUTAGE_ERRORS as exc:
            # Includes asyncpg's client-state errors after a dropped connection: never the
            # scrape's fault. It stays pending and is redelivered to us after the reconnect.
            metrics.INGEST_RETRIES.labels(reason="outage").inc()
            raise RetryLater(
                f"{entry_id}: lost the connection: {type(exc).__name__}: {exc}"
            ) from exc
        except asyncpg.PostgresError as exc:
            # Anything else from the server (serialization failure, deadlock, lock or statement
            # timeout, disk full, a missing migration, …) is not caused by the scrape: retried
            # with backoff on a fresh connection for as long as it takes, never dead-lettered.
            metrics.INGEST_RETRIES.labels(reason="database_error").inc()
            raise RetryLater(f"{entry_id}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            metrics.INGEST_RETRIES.labels(reason="unexpected_error").inc()
            if not await _connection_alive(conn):
                # Whatever was raised, the connection died under it: an outage, not the scrape.
                raise RetryLater(f"{entry_id}: connection lost: {exc!r}") from exc
            failures = self._failures[entry_id] = self._failures.get(entry_id, 0) + 1
            if failures < MAX_UNEXPECTED_ATTEMPTS:
                logger.exception(
                    "ingest of %s failed (attempt %d)",
                    entry_id,
                    failures,
                    extra={"event": "ingest_error", "entry_id": entry_id},
                )
                raise RetryLater(f"{entry_id}: {exc!r}") from exc
            logger.exception("ingest of %s failed", entry_id, extra={"event": "ingest_error"})
            self._failures.pop(entry_id, None)
            await self._dead_letter(reader, redis, entry_id, fields, "ingest_error", repr(exc))
            return
        await publish_changed(redis, self.settings, result)
        await reader.ack(entry_id)
        self._failures.pop(entry_id, None)
        record_result(result)
        if scraped_at is not None:
            metrics.STREAM_LAG.set(max(0.0, time.time() - scraped_at.timestamp()))
        if result.skip_reason == "stale":
            self.skipped += 1
            logger.warning(
                "skipped %s: scraped at %s, before the stored snapshot of %s (scraped at %s)",
                entry_id,
                scraped_at.isoformat() if scraped_at else "?",
                result.university,
                result.stored_scraped_at.isoformat() if result.stored_scraped_at else "?",
                extra={
                    "event": "scrape_stale",
                    "entry_id": entry_id,
                    "university": result.university,
                },
            )
        elif result.skipped:
            self.skipped += 1
            logger.info(
                "skipped %s: snapshot already ingested (%s)",
                entry_id,
                result.university,
                extra={
                    "event": "scrape_skipped",
                    "entry_id": entry_id,
                    "university": result.university,
                },
            )
        else:
            self.processed += 1
            logger.info(
                "ingested %s: %s",
                entry_id,
                result.summary(),
                extra={
                    "event": "scrape_ingested",
                    "entry_id": entry_id,
                    "university": result.university,
                    "duration_seconds": round(result.duration_seconds, 4),
                    "sections_written": result.written("section"),
                    "status_changes": result.status_changes,
                },
            )

    async def _dead_letter(
        self,
        reader: GroupReader,
        redis: aioredis.Redis,
        entry_id: str,
        fields: dict[bytes, bytes],
        reason: str,
        error: str,
    ) -> None:
        moved = {
            **fields,
            b"reason": reason.encode(),
            b"error": error[:2000].encode(),
            b"entry_id": entry_id.encode(),
        }
        await redis.xadd(
            self.dead_letter, moved, maxlen=self.settings.ein_dead_letter_maxlen, approximate=True
        )
        await reader.ack(entry_id)
        self.rejected += 1
        metrics.SCRAPES_REJECTED.labels(reason=reason).inc()
        logger.error(
            "rejected scrape %s (%s): %s",
            entry_id,
            reason,
            error,
            extra={"event": "scrape_rejected", "entry_id": entry_id, "reason": reason},
        )

    async def _update_pending(self, redis: aioredis.Redis, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_pending_check < 5:
            return
        self._last_pending_check = now
        summary = await redis.xpending(self.stream, GROUP)
        metrics.STREAM_PENDING.set(summary.get("pending", 0) if isinstance(summary, dict) else 0)


async def _connection_alive(conn: asyncpg.Connection) -> bool:
    """False when the connection is closed or no longer answers (checked after an error)."""
    if conn.is_closed():
        return False
    try:
        await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=5)
    except Exception:  # whatever it is, this connection cannot be trusted with the retry
        return False
    return True


def _scraped_at(raw: bytes | None) -> datetime | None:
    """jet writes epoch seconds as a float string; anything unreadable means "now"."""
    if not raw:
        return None
    try:
        return datetime.fromtimestamp(float(raw), UTC)
    except (ValueError, OverflowError, OSError):
        return None


async def run(settings: Settings, *, fmt: str, insert_all: bool) -> int:
    """The trakr-ein process: consume until SIGTERM/SIGINT, then return 0."""
    stop = install_stop_signals()
    start_metrics_server(settings.metrics_port, default_port=DEFAULT_METRICS_PORT)
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    ein = Ein(
        settings=settings,
        fmt=fmt,
        insert_all=insert_all,
        stop=stop,
        pause_before_commit_seconds=pause,
    )
    logger.info(
        "ein starting (format %s, %s)",
        fmt,
        "insert-all" if insert_all else "diff",
        extra={"event": "starting", "mode": "insert_all" if insert_all else "diff"},
    )
    await ein.serve()
    return 0
