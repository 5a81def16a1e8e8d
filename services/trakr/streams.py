"""Redis Streams: the stream names of the design, and an at-least-once consumer-group reader.

Every consumer acknowledges (XACK) only after its effect is durable. Entries a consumer read
and never acknowledged stay pending: its own on restart (same consumer name), and anyone's once
idle longer than `claim_idle_seconds` (XAUTOCLAIM), are delivered again.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

SCRAPES = "scrapes"
SCRAPES_DEAD_LETTER = "scrapes:dead"
NOTIFICATIONS = "notifications"

# Errors after which a reconnect with backoff is the right answer.
REDIS_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)

Entry = tuple[str, dict[bytes, bytes]]


def default_consumer_name() -> str:
    """hostname-pid: unique per process, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) if missing; a no-op when it exists."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass
class GroupReader:
    """Reads a stream through a consumer group: own pending first, then stale claims, then new."""

    redis: aioredis.Redis
    stream: str
    group: str
    consumer: str = field(default_factory=default_consumer_name)
    count: int = 10
    block_seconds: float = 1.0
    claim_idle_seconds: float = 60.0
    _own_pending_done: bool = False
    _claim_cursor: str = "0-0"

    async def start(self) -> None:
        await ensure_group(self.redis, self.stream, self.group)
        self._own_pending_done = False

    async def read(self) -> list[Entry]:
        """The next batch (possibly empty after `block_seconds`), redeliveries before new entries."""
        if not self._own_pending_done:
            entries = await self._read_from("0")
            if entries:
                return entries
            self._own_pending_done = True
        claimed = await self.claim_stale()
        if claimed:
            return claimed
        return await self._read_from(">", block_ms=int(self.block_seconds * 1000))

    async def claim_stale(self) -> list[Entry]:
        """Take over entries another consumer read but left unacknowledged for too long."""
        result = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(self.claim_idle_seconds * 1000),
            start_id=self._claim_cursor,
            count=self.count,
        )
        next_cursor, claimed = result[0], result[1]
        self._claim_cursor = _text(next_cursor)
        entries = [(_text(entry_id), fields) for entry_id, fields in claimed if fields is not None]
        if entries:
            logger.warning(
                "claimed %d stale entries from %s",
                len(entries),
                self.stream,
                extra={"event": "claimed_stale"},
            )
        return entries

    async def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)

    async def _read_from(self, last_id: str, *, block_ms: int | None = None) -> list[Entry]:
        response = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: last_id}, count=self.count, block=block_ms
        )
        if not response:
            return []
        _, messages = response[0]
        # With id "0" Redis also returns pending entries that were deleted (trimmed) meanwhile,
        # as (id, None); there is nothing left to process for them but the acknowledgement.
        gone = [_text(entry_id) for entry_id, fields in messages if not fields]
        if gone:
            await self.ack(*gone)
        return [(_text(entry_id), fields) for entry_id, fields in messages if fields]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
