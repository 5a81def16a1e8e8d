"""julia's forward loop: outbox rows → collapse decisions → `trakr:notifications`, none lost or doubled.

One batch is one PostgreSQL transaction on julia's worker connection:

1. Lock the oldest pending row of up to `julia_batch_size` topics with work due
   (`FOR UPDATE SKIP LOCKED`). That row is the topic's mutex: collapsing needs every pending row
   of a topic and its last forwarded row decided by one julia at a time. A second julia that
   locked rows individually could take row 11 of a topic while the first still holds row 10,
   and would forward it as if it were the topic's first change. With the oldest-pending-row
   lock it computes the same anchor (row 10), finds it locked and skips the whole topic; once
   the first julia commits, the anchor row is no longer pending, so a julia whose snapshot
   predates that commit fails PostgreSQL's re-check of the WHERE clause on the locked row
   and skips too. Within a topic, row ids follow commit order (the trigger inserts them while
   the section row is locked), so "oldest pending" is well defined.
2. Read all pending rows of the locked topics and their last forwarded row (new statements,
   so they see every commit that happened before the lock was granted); decide (collapse.py).
3. Forward the rows to forward, then mark every decided row, then COMMIT.

Crash safety (step 3). Redis and PostgreSQL cannot commit together, so the order is XADD first,
mark `queued` + COMMIT second: a crash before the commit leaves the rows `new`, nothing is lost.
The duplicate that the retry would cause is stopped in Redis itself: one Lua script, atomic on
the server, XADDs an entry only if its notification id is not yet in the sorted set
`<ns>:julia:forwarded` and adds it there in the same step. After a crash between XADD and commit,
the next batch (this julia or another) re-decides the same rows — the decisions depend only on
the rows, so they come out the same — and the script skips the ids already in the stream
(`trakr_julia_duplicates_suppressed_total`). Ids stay in the set for DEDUP_RETENTION_SECONDS,
far longer than any crash-to-restart gap; hermes also dedups by notification id downstream.
The alternative, "mark then send" with a recovery scan, needs the same Redis-side check to know
what was sent, and loses the message if that check is wrong; this order cannot lose one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg.rows import dict_row

from trakr import streams
from trakr.db import load_queries
from trakr.julia import metrics
from trakr.julia.collapse import CollapsePolicy, Decision, LastSent, PendingRow, plan_topic
from trakr.julia.listener import Listener, connection_kwargs
from trakr.runtime import Backoff, supervise
from trakr.settings import Settings

logger = logging.getLogger(__name__)

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
FORWARDED_SET = "julia:forwarded"
DEDUP_RETENTION_SECONDS = 24 * 3600

# KEYS: stream, forwarded-id set. ARGV: maxlen, now, cutoff, fields per entry (n), then per
# entry: notification id followed by its n field/value pairs. Returns the ids it added.
FORWARD_SCRIPT = """
local n = tonumber(ARGV[4])
local added = {}
local i = 5
while i <= #ARGV do
  local id = ARGV[i]
  if not redis.call('ZSCORE', KEYS[2], id) then
    local fields = {}
    for j = 1, 2 * n do fields[j] = ARGV[i + j] end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    added[#added + 1] = id
  end
  i = i + 1 + 2 * n
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
return added
"""

AfterXadd = Callable[[list[int]], Awaitable[None] | None]


@dataclass
class BatchResult:
    topics: int = 0
    decided: int = 0
    forwarded: int = 0
    collapsed: int = 0
    held: int = 0
    duplicates: int = 0


def message_fields(row: dict[str, Any], decision: Decision) -> dict[str, str]:
    """The stream entry of one forwarded row (DESIGN.md fields, plus created_at for lag)."""
    created_at: datetime = row["created_at"]
    payload = {
        "notification_id": row["id"],
        "topic_name": row["topic_name"],
        "university": row["university"],
        # What subscribers heard last; for the first message of a topic, the row's own.
        "old_status": decision.previous_status or row["old_status"],
        "status": row["new_status"],
        "created_at": created_at.isoformat(),
        "course_name": row["course_name"],
        "course_number": row["course_number"],
        "section_number": row["section_number"],
        "section_index": row["section_index"],
        "subject_name": row["subject_name"],
        "subject_number": row["subject_number"],
        "collapsed": decision.folded,
    }
    return {
        "notification_id": str(row["id"]),
        "topic_name": row["topic_name"],
        "status": row["new_status"],
        "university": row["university"],
        "payload": json.dumps(payload, separators=(",", ":")),
        "created_at": repr(created_at.timestamp()),
    }


class Forwarder:
    """Runs one batch at a time on a given connection (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        policy: CollapsePolicy,
        redis: aioredis.Redis,
        after_xadd: AfterXadd | None = None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.redis = redis
        self.stream_key = settings.key(streams.NOTIFICATIONS)
        self.forwarded_key = settings.key(FORWARDED_SET)
        self.script = redis.register_script(FORWARD_SCRIPT)
        # Test seam: runs after the XADD and before the commit (the crash window).
        self.after_xadd = after_xadd

    async def run_batch(self, conn: psycopg.AsyncConnection[Any]) -> BatchResult:
        """Decide and forward one batch; returns what it did (topics == 0: nothing was due)."""
        started = time.perf_counter()
        result = BatchResult()
        forwards: list[tuple[dict[str, Any], Decision]] = []
        collapsed = 0
        async with conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            limit = self.settings.julia_batch_size
            await cur.execute(QUERIES["lock_topics"], {"limit": limit})
            topics = [r["topic_name"] for r in await cur.fetchall()]
            if not topics:
                return result
            await cur.execute(QUERIES["pending_rows"], {"topics": topics})
            rows = await cur.fetchall()
            await cur.execute(QUERIES["last_sent"], {"topics": topics})
            last = {
                r["topic_name"]: LastSent(r["id"], r["new_status"], r["window_ends_at"])
                for r in await cur.fetchall()
            }
            by_topic: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_topic.setdefault(row["topic_name"], []).append(row)

            ids: list[int] = []
            states: list[str] = []
            window_ends: list[datetime | None] = []
            into: list[int | None] = []
            for topic, topic_rows in by_topic.items():
                decisions = plan_topic(
                    [PendingRow(r["id"], r["new_status"], r["created_at"]) for r in topic_rows],
                    last=last.get(topic),
                    window=self.policy.window(topic_rows[0]["university"]),
                    now=topic_rows[0]["db_now"],
                )
                for row, decision in zip(topic_rows, decisions, strict=True):
                    if decision.action == "hold":
                        if (
                            row["state"] == "held"
                            and row["window_ends_at"] == decision.window_ends_at
                        ):
                            continue
                        state, end, target = "held", decision.window_ends_at, None
                        result.held += 1
                    elif decision.action == "forward":
                        state, end, target = "queued", decision.window_ends_at, None
                        forwards.append((row, decision))
                    else:
                        state, end, target = (
                            "collapsed",
                            row["window_ends_at"],
                            decision.collapsed_into,
                        )
                        collapsed += 1
                    ids.append(row["id"])
                    states.append(state)
                    window_ends.append(end)
                    into.append(target)

            if forwards:
                result.duplicates = len(forwards) - await self._xadd(forwards)
                if self.after_xadd is not None:
                    outcome = self.after_xadd([row["id"] for row, _ in forwards])
                    if inspect.isawaitable(outcome):
                        await outcome
            if ids:
                await cur.execute(
                    QUERIES["apply_decisions"],
                    {
                        "ids": ids,
                        "states": states,
                        "window_ends": window_ends,
                        "collapsed_into": into,
                    },
                )
        # Committed: only now do the counters move.
        committed = time.time()
        result.topics = len(topics)
        result.decided = len(ids)
        result.forwarded = len(forwards)
        result.collapsed = collapsed
        for row, decision in forwards:
            reason = decision.reason or "immediate"
            metrics.NOTIFICATIONS_FORWARDED.labels(reason).inc()
            metrics.FORWARD_LAG.labels(reason).observe(
                max(0.0, committed - row["created_at"].timestamp())
            )
        metrics.FLAPS_COLLAPSED.inc(collapsed)
        if result.duplicates:
            metrics.DUPLICATES_SUPPRESSED.inc(result.duplicates)
            logger.warning(
                "%d rows were already in the stream (crash before commit); not sent again",
                result.duplicates,
                extra={"event": "duplicates_suppressed", "count": result.duplicates},
            )
        metrics.BATCH_DURATION.observe(time.perf_counter() - started)
        logger.debug(
            "batch: %d topics, %d forwarded, %d collapsed, %d held",
            result.topics,
            result.forwarded,
            result.collapsed,
            result.held,
            extra={"event": "batch", "forwarded": result.forwarded, "collapsed": result.collapsed},
        )
        return result

    async def _xadd(self, forwards: list[tuple[dict[str, Any], Decision]]) -> int:
        """XADD every row not forwarded before, atomically with its dedup record; returns how many."""
        args: list[str | int | float] = []
        fields_per_entry = 0
        for row, decision in forwards:
            fields = message_fields(row, decision)
            fields_per_entry = len(fields)
            args.append(row["id"])
            for name, value in fields.items():
                args.extend((name, value))
        now = time.time()
        added = await self.script(
            keys=[self.stream_key, self.forwarded_key],
            args=[
                self.settings.julia_stream_maxlen,
                now,
                now - DEDUP_RETENTION_SECONDS,
                fields_per_entry,
                *args,
            ],
        )
        return len(added)


class Julia:
    """The service: a LISTEN task that wakes a forwarder task; returns when `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        policy: CollapsePolicy,
        *,
        redis: aioredis.Redis,
        after_xadd: AfterXadd | None = None,
    ) -> None:
        self.settings = settings
        self.forwarder = Forwarder(
            settings=settings, policy=policy, redis=redis, after_xadd=after_xadd
        )
        self.wake = asyncio.Event()
        self.catchup = True  # the first pass after start is a catch-up
        self.listener = Listener(
            dsn=settings.postgres_dsn,
            keepalive_seconds=settings.julia_keepalive_seconds,
            backoff_max_seconds=settings.backoff_max_seconds,
            on_event=self.wake.set,
            on_connected=self._on_connected,
        )

    def _on_connected(self) -> None:
        self.catchup = True
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` is set; finish the batch in hand; 0 on a clean stop, 1 if a task died."""
        tasks: list[asyncio.Task[object]] = [
            asyncio.create_task(self.listener.run(stop), name="julia-listener"),
            asyncio.create_task(self.forward_loop(stop), name="julia-forwarder"),
        ]
        await supervise(tasks, stop)
        listener, forwarder = tasks
        # The forwarder notices `stop` between batches: let the batch in hand commit.
        done, _ = await asyncio.wait([forwarder], timeout=self.settings.shutdown_grace_seconds)
        if not done:
            logger.error(
                "batch in hand did not finish in time; cancelled", extra={"event": "drain_timeout"}
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        died = listener.done() and not listener.cancelled() and listener.exception() is not None
        died = died or (not forwarder.cancelled() and forwarder.exception() is not None)
        logger.info("julia stopped", extra={"event": "stopped"})
        return 1 if died else 0

    async def forward_loop(self, stop: asyncio.Event) -> None:
        """Drain due work whenever woken (event, reconnect, held row due, poll); returns on stop."""
        backoff = Backoff(max_seconds=self.settings.backoff_max_seconds)
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while not stop.is_set():
                next_due: float | None = None
                catchup = self.catchup
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(
                            self.settings.postgres_dsn,
                            autocommit=True,
                            **connection_kwargs(
                                self.settings.julia_keepalive_seconds, "trakr-julia-forward"
                            ),  # type: ignore[arg-type]
                        )
                    self.catchup = False
                    self.wake.clear()  # before the drain: an event arriving during it wakes us again
                    await self._drain(conn, stop, catchup=catchup)
                    next_due = await self._held_status(conn)
                    backoff.reset()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Any failure rolls the batch back, so nothing is lost; retry from a fresh
                    # connection (cheap, and a broken one is the usual cause).
                    kind = _error_kind(exc)
                    metrics.BATCH_ERRORS.labels(kind).inc()
                    log = logger.warning if kind != "other" else logger.exception
                    log(
                        "batch failed (%s): %s",
                        kind,
                        exc,
                        extra={"event": "batch_failed", "kind": kind},
                    )
                    self.catchup = self.catchup or catchup
                    if conn is not None:
                        await conn.close()
                        conn = None
                    if not await backoff.wait(stop, what="julia forward"):
                        break
                    continue
                timeout = self.settings.julia_poll_seconds
                if next_due is not None:
                    timeout = min(timeout, max(next_due, 0.0) + 0.005)
                await self._sleep(stop, timeout)
        finally:
            if conn is not None:
                await conn.close()

    async def _drain(
        self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event, *, catchup: bool
    ) -> None:
        total = BatchResult()
        while not stop.is_set():
            result = await self.forwarder.run_batch(conn)
            if catchup:
                metrics.CATCHUP_ROWS.inc(result.decided)
            total.decided += result.decided
            total.forwarded += result.forwarded
            total.collapsed += result.collapsed
            if result.topics == 0 or result.decided == 0:
                break
        if catchup:
            logger.info(
                "catch-up: %d rows decided (%d forwarded, %d collapsed)",
                total.decided,
                total.forwarded,
                total.collapsed,
                extra={"event": "catchup", "rows": total.decided},
            )

    async def _held_status(self, conn: psycopg.AsyncConnection[Any]) -> float | None:
        """Update the held gauge; seconds until the first held row is due (None: nothing held)."""
        cur = await conn.execute(QUERIES["held_status"])
        row = await cur.fetchone()
        assert row is not None
        held, next_due = row
        metrics.HELD_NOTIFICATIONS.set(held)
        return next_due  # type: ignore[no-any-return]

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        return "database"
    if isinstance(exc, streams.REDIS_CONNECTION_ERRORS):
        return "redis"
    return "other"


async def run(
    settings: Settings, policy: CollapsePolicy, stop: asyncio.Event, **kwargs: Any
) -> int:
    """Open Redis, run julia until `stop` is set; returns the exit code."""
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        logger.info(
            "julia starting: collapse %s",
            settings.collapse,
            extra={"event": "starting", "stream": settings.key(streams.NOTIFICATIONS)},
        )
        return await Julia(settings, policy, redis=redis, **kwargs).run(stop)
    finally:
        await redis.aclose()
