"""jet's run loop: scrape once, or scrape forever at this replica's phase of the interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from trakr import streams
from trakr.codec import KnownSubjects, ScrapeRejected
from trakr.jet import metrics
from trakr.jet.registry import Registry, new_replica_id
from trakr.jet.schedule import Position, heartbeat_seconds, next_run, position_of
from trakr.jet.scrape import ChildOutput, Payload, ScrapeStopped, prepare_payload, run_child
from trakr.metrics import start_metrics_server
from trakr.runtime import Backoff, install_stop_signals, supervise
from trakr.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9101
OK_RESULTS = frozenset({"queued", "unchanged"})
# Without --daemon there is no interval to stay within; Redis gets this long to come back.
ONCE_REDIS_BUDGET_SECONDS = 30.0
# The last-hash key expires, so identical output is still queued about once an hour: a consumer
# that lost its state (a restored database) catches up without anyone touching jet.
UNCHANGED_REQUEUE_SECONDS = 3600


@dataclass(frozen=True)
class Outcome:
    """How one scrape ended: `result` is the metric label, `message` the log line's reason."""

    result: str
    message: str
    entry_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.result in OK_RESULTS


class _RedisGaveUp(Exception):
    """Redis stayed unreachable for the whole retry budget."""


class Jet:
    """One jet replica: runs the scraper, checks and queues its output, keeps its phase."""

    def __init__(
        self,
        settings: Settings,
        command: Sequence[str],
        redis: aioredis.Redis,
        *,
        stop: asyncio.Event,
        replica_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.command = list(command)
        self.redis = redis
        self.stop = stop
        self.name = settings.jet_scraper_name
        self.replica_id = replica_id or new_replica_id()
        self.stream_key = settings.key(streams.SCRAPES)
        self.members_key = settings.key("jet", self.name, "members")
        # Shared by the replicas, so "unchanged" means unchanged since the last scrape any of
        # them queued; a per-process memory would drop an A→B→A change until another replica ran.
        self.last_sha_key = settings.key("jet", self.name, "last_sha256")
        self.position = Position(index=0, count=1)
        self.results: Counter[str] = Counter()
        # What the last accepted scrape's validation learnt: one scrape at a time uses it.
        self.known = KnownSubjects()

    # --- one scrape ---------------------------------------------------------------------------

    async def scrape_once(self, *, redis_budget_seconds: float) -> Outcome:
        """Run the scraper, validate, queue. Never raises for a bad scrape or a Redis outage."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            child = await run_child(
                self.command,
                timeout_seconds=self.settings.jet_timeout_seconds,
                max_output_bytes=self.settings.jet_max_output_bytes,
                stop=self.stop,
                label=self.name,
            )
        except ScrapeRejected as exc:
            if exc.reason != "exec_error":
                metrics.SCRAPE_DURATION.observe(loop.time() - started)
            return self._rejected(exc.reason, str(exc))
        except ScrapeStopped as exc:
            return self._finish(Outcome("stopped", str(exc)), level=logging.WARNING)
        metrics.SCRAPE_DURATION.observe(child.duration_seconds)
        try:
            payload = await asyncio.to_thread(
                prepare_payload,
                child.stdout,
                input_format=self.settings.jet_input_format,
                output_format=self.settings.jet_output_format,
                max_output_bytes=self.settings.jet_max_output_bytes,
                known=self.known,
            )
        except ScrapeRejected as exc:
            return self._rejected(exc.reason, str(exc))
        try:
            entry_id = await self._queue(payload, child, budget_seconds=redis_budget_seconds)
        except _RedisGaveUp as exc:
            return self._rejected("redis_unavailable", f"could not queue: {exc}")
        metrics.LAST_SUCCESS.set(time.time())
        if entry_id is None:
            return self._finish(
                Outcome(
                    "unchanged",
                    f"{payload.university}: same output as the last queued scrape, not queued",
                )
            )
        metrics.PAYLOAD_BYTES.observe(len(payload.data))
        if self.settings.jet_daemon_dir is not None:
            await asyncio.to_thread(self._write_daemon_dir, payload, child)
        return self._finish(
            Outcome(
                "queued",
                f"{payload.university}: {payload.sections} sections, {len(payload.data)} bytes, "
                f"{child.duration_seconds:.2f}s, entry {entry_id}",
                entry_id=entry_id,
            )
        )

    async def _queue(
        self, payload: Payload, child: ChildOutput, *, budget_seconds: float
    ) -> str | None:
        """XADD the payload (retrying Redis with backoff within the budget); None if unchanged."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_seconds
        backoff = Backoff(base_seconds=0.2, max_seconds=self.settings.backoff_max_seconds)
        fields: dict[str, str | bytes] = {
            "university": payload.university,
            "scraper": self.name,
            "format": self.settings.jet_output_format,
            "payload": payload.data,
            "sha256": payload.sha256,
            "bytes": str(len(payload.data)),
            "scraped_at": repr(child.finished_at),
            "started_at": repr(child.started_at),
            "replica": self.replica_id,
        }
        while True:
            try:
                if self.settings.jet_skip_unchanged:
                    last = await self.redis.get(self.last_sha_key)
                    if last is not None and last.decode() == payload.sha256:
                        return None
                # One transaction: a lost reply followed by a retry finds the hash already set
                # and reports "unchanged" instead of queueing the scrape twice.
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(
                        self.stream_key,
                        fields,
                        maxlen=self.settings.jet_stream_maxlen,
                        approximate=True,
                    )
                    pipe.set(self.last_sha_key, payload.sha256, ex=UNCHANGED_REQUEUE_SECONDS)
                    entry_id, _ = await pipe.execute()
                return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            except streams.REDIS_CONNECTION_ERRORS as exc:
                delay = backoff.next_delay()
                if self.stop.is_set():
                    # Shutting down: what is left of the grace period, not of the interval.
                    deadline = min(deadline, loop.time() + self.settings.shutdown_grace_seconds)
                if loop.time() + delay > deadline:
                    raise _RedisGaveUp(f"Redis unreachable ({exc})") from exc
                logger.warning(
                    "queueing failed: %s; attempt %d, retrying in %.2fs",
                    exc,
                    backoff.attempt,
                    delay,
                    extra={"event": "redis_retry", "attempt": backoff.attempt},
                )
                await asyncio.sleep(delay)
            except RedisError as exc:
                # Not a connection problem (OOM, wrong key type): retrying will not help.
                raise _RedisGaveUp(f"Redis refused the entry ({exc})") from exc

    def _write_daemon_dir(self, payload: Payload, child: ChildOutput) -> None:
        """Write the payload to --daemon-dir atomically (tmp file + rename)."""
        directory = self.settings.jet_daemon_dir
        assert directory is not None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(child.finished_at))
        millis = int((child.finished_at % 1) * 1000)
        ext = "json" if self.settings.jet_output_format == "json" else "pb"
        target = Path(directory) / f"{payload.university}-{stamp}.{millis:03d}Z.{ext}"
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(payload.data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            metrics.DAEMON_DIR_ERRORS.inc()
            logger.error("cannot write %s: %s", target, exc, extra={"event": "daemon_dir_failed"})
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        logger.debug("wrote %s", target, extra={"event": "daemon_dir_written"})

    def _rejected(self, reason: str, message: str) -> Outcome:
        return self._finish(Outcome(reason, message), level=logging.ERROR)

    def _finish(self, outcome: Outcome, *, level: int = logging.INFO) -> Outcome:
        metrics.SCRAPES.labels(result=outcome.result).inc()
        self.results[outcome.result] += 1
        if outcome.ok:
            text = f"scrape {outcome.result}: {outcome.message}"
        else:
            text = f"scrape rejected ({outcome.result}): {outcome.message}"
        logger.log(
            level,
            "%s",
            text,
            extra={
                "event": "scrape_" + ("done" if outcome.ok else "rejected"),
                "result": outcome.result,
                "scraper": self.name,
            },
        )
        return outcome

    # --- daemon -------------------------------------------------------------------------------

    async def run_daemon(self, interval_seconds: float) -> None:
        """Heartbeat and scrape at this replica's phase until `stop` is set; then leave the set."""
        heartbeat = heartbeat_seconds(interval_seconds, self.settings.jet_heartbeat_seconds)
        registry = Registry(
            self.redis,
            key=self.members_key,
            replica_id=self.replica_id,
            heartbeat_seconds=heartbeat,
        )
        changed = asyncio.Event()
        logger.info(
            "jet %s: every %gs, heartbeat %gs, replica %s",
            self.name,
            interval_seconds,
            heartbeat,
            self.replica_id,
            extra={"event": "started", "scraper": self.name, "replica": self.replica_id},
        )
        # Know the others before planning the first run, so a joiner takes its own phase at once.
        first_ok = await self._beat(registry, changed)
        beats = asyncio.create_task(
            self._heartbeat_loop(registry, changed, heartbeat, first_ok=first_ok),
            name="jet-heartbeat",
        )
        leaver = asyncio.create_task(self._leave_on_stop(registry, beats), name="jet-leave")
        try:
            await self._schedule_loop(interval_seconds, changed)
        finally:
            self.stop.set()
            await leaver
        logger.info(
            "jet %s stopped: %s",
            self.name,
            ", ".join(f"{k}={v}" for k, v in sorted(self.results.items())) or "no scrapes",
            extra={"event": "stopped", "results": dict(self.results)},
        )

    async def _schedule_loop(self, interval_seconds: float, changed: asyncio.Event) -> None:
        last_slot: int | None = None
        last_run_at: float | None = None
        while not self.stop.is_set():
            changed.clear()
            plan = next_run(
                time.time(),
                position=self.position,
                interval_seconds=interval_seconds,
                last_slot=last_slot,
                last_run_at=last_run_at,
            )
            logger.debug(
                "next scrape at %.3f (slot %d, %d of %d)",
                plan.at,
                plan.slot,
                self.position.index,
                self.position.count,
                extra={"event": "planned", "at": plan.at, "slot": plan.slot},
            )
            woke = await self._wait_until(plan.at, changed)
            if woke == "stop":
                break
            if woke == "changed":
                continue
            # Recorded before running: a re-division during the scrape must not hand us this
            # slot (or a neighbour too close to it) again.
            last_slot, last_run_at = plan.slot, plan.at
            logger.info(
                "scrape for slot %d (replica %d of %d)",
                plan.slot,
                self.position.index,
                self.position.count,
                extra={"event": "scrape_started", "slot": plan.slot, "at": plan.at},
            )
            try:
                await self.scrape_once(redis_budget_seconds=interval_seconds / 2)
            except Exception:
                # A bug in one scrape must not end the daemon; the next slot tries again.
                logger.exception("scrape failed unexpectedly", extra={"event": "scrape_crashed"})
                metrics.SCRAPES.labels(result="error").inc()

    async def _wait_until(self, at: float, changed: asyncio.Event) -> str:
        """Sleep until wall-clock `at`; return "due", or "stop"/"changed" if that came first."""
        delay = at - time.time()
        if delay <= 0:
            return "due"
        waiters = {
            asyncio.create_task(self.stop.wait(), name="stop"): "stop",
            asyncio.create_task(changed.wait(), name="changed"): "changed",
        }
        done, pending = await asyncio.wait(
            waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task, label in waiters.items():
            if label == "stop" and task in done:
                return "stop"
        return "changed" if done else "due"

    async def _heartbeat_loop(
        self, registry: Registry, changed: asyncio.Event, heartbeat: float, *, first_ok: bool
    ) -> None:
        """Beat every `heartbeat` seconds forever (cancelled on stop); Redis outages back off.

        Never returns; `first_ok` is the outcome of the beat made before the loop started.
        """
        backoff = Backoff(base_seconds=min(0.2, heartbeat), max_seconds=heartbeat)
        ok = first_ok
        while True:
            await asyncio.sleep(heartbeat if ok else backoff.next_delay())
            ok = await self._beat(registry, changed)
            if ok:
                backoff.reset()

    async def _beat(self, registry: Registry, changed: asyncio.Event) -> bool:
        try:
            members = await registry.beat()
        except streams.REDIS_CONNECTION_ERRORS as exc:
            logger.warning(
                "heartbeat failed: %s (keeping position %d of %d)",
                exc,
                self.position.index,
                self.position.count,
                extra={"event": "heartbeat_failed"},
            )
            return False
        position = position_of(self.replica_id, members)
        metrics.REPLICA_POSITION.set(position.index)
        metrics.REPLICAS.set(position.count)
        if position != self.position:
            logger.info(
                "replica %d of %d (%s)",
                position.index,
                position.count,
                self.replica_id,
                extra={"event": "position", "position": position.index, "replicas": position.count},
            )
            self.position = position
            changed.set()
        return True

    async def _leave_on_stop(self, registry: Registry, beats: asyncio.Task[None]) -> None:
        """When stopping (or when the heartbeat dies), stop beating and leave the members set."""
        await supervise([beats], self.stop)  # type: ignore[list-item]
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        try:
            await registry.leave()
        except RedisError as exc:
            logger.warning(
                "could not leave the members set: %s", exc, extra={"event": "leave_failed"}
            )
        else:
            logger.info("left the members set", extra={"event": "left"})


async def run(settings: Settings, command: Sequence[str]) -> int:
    """jet's main: returns the exit code (0 queued/unchanged or clean daemon stop, 1 rejected)."""
    stop = install_stop_signals()
    redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=3)
    try:
        jet = Jet(settings, command, redis, stop=stop)
        interval = settings.jet_daemon_interval_seconds
        if interval is not None:
            start_metrics_server(settings.metrics_port, default_port=DEFAULT_METRICS_PORT)
            await jet.run_daemon(interval)
            return 0
        outcome = await jet.scrape_once(redis_budget_seconds=ONCE_REDIS_BUDGET_SECONDS)
        if outcome.ok:
            return 0
        sys.stderr.write(f"error: scrape rejected ({outcome.result}): {outcome.message}\n")
        return 1
    finally:
        await redis.aclose()
