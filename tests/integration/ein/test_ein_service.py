"""The trakr-ein process: stream in, rows out, acks, dead letters, kills and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from trakr import streams
from trakr.codec import encode_university
from trakr.pb.trakr_pb2 import University
from trakr.scrapers.sim import simulate
from trakr.settings import Settings

pytestmark = pytest.mark.slow


def sample(tick: int = 0) -> University:
    return simulate(sections=120, tick=tick, changes=4, subjects=4)


def entry(university: University | None = None, *, payload: bytes | None = None) -> dict[str, Any]:
    """A stream entry shaped as jet writes it."""
    if payload is None:
        payload = encode_university(university, "protobuf")  # type: ignore[arg-type]
    return {
        "university": "sim",
        "scraper": "test",
        "format": "protobuf",
        "payload": payload,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": str(len(payload)),
        "scraped_at": f"{time.time():.3f}",
    }


class EinProcess:
    """trakr-ein as a child process, with its JSON log lines readable by event name."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []

    async def start(self) -> EinProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "trakr.ein",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return self

    async def wait_for(
        self, event: str, *, count: int = 1, timeout_seconds: float = 30.0
    ) -> dict[str, Any]:
        """Read log lines until the `count`-th line with this event; fails on timeout or exit."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout_seconds
        while True:
            seen = [line for line in self.lines if line.get("event") == event]
            if len(seen) >= count:
                return seen[count - 1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {event!r} log line; got {self.lines[-10:]}")
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout=remaining)
            if not raw:
                raise AssertionError(f"trakr-ein exited before {event!r}; got {self.lines[-10:]}")
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                self.lines.append({"raw": raw.decode(errors="replace")})

    async def wait_for_any(self, *events: str, timeout_seconds: float = 30.0) -> dict[str, Any]:
        """The first line (already read or next) whose event is one of `events`."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            found = [line for line in self.lines if line.get("event") in events]
            if found:
                return found[0]
            await self._read_one(deadline)

    async def _read_one(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; got {self.lines[-10:]}")
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout=remaining)
        except TimeoutError:
            raise AssertionError(f"timed out; got {self.lines[-10:]}") from None
        if not raw:
            raise AssertionError(f"trakr-ein exited; got {self.lines[-10:]}")
        try:
            self.lines.append(json.loads(raw))
        except ValueError:
            self.lines.append({"raw": raw.decode(errors="replace")})

    async def stop(self, sig: int = signal.SIGTERM, timeout_seconds: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        assert self.proc.stdout is not None
        with contextlib.suppress(ValueError):
            for raw in (
                await asyncio.wait_for(self.proc.stdout.read(), timeout=timeout_seconds)
            ).splitlines():
                self.lines.append(json.loads(raw))
        return await asyncio.wait_for(self.proc.wait(), timeout=timeout_seconds)


@pytest.fixture
def ein_env(subprocess_env: dict[str, str]) -> dict[str, str]:
    return {**subprocess_env, "TRAKR_EIN_BLOCK_SECONDS": "0.2", "TRAKR_EIN_CLAIM_IDLE_SECONDS": "1"}


@pytest.fixture
async def ein(ein_env: dict[str, str]) -> AsyncIterator[EinProcess]:
    process = await EinProcess(ein_env).start()
    yield process
    if process.proc is not None and process.proc.returncode is None:
        process.proc.kill()
        await process.proc.wait()


@pytest.fixture
async def conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_dsn)
    yield connection
    await connection.close()


async def pending(redis_client: aioredis.Redis, settings: Settings) -> int:
    summary = await redis_client.xpending(settings.key(streams.SCRAPES), "ein")
    return summary["pending"]


async def test_ingests_publishes_skips_and_stops_cleanly(
    ein: EinProcess, conn: asyncpg.Connection, redis_client: aioredis.Redis, settings: Settings
) -> None:
    stream = settings.key(streams.SCRAPES)
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(settings.key("ein", "changed"))
    await ein.wait_for("consuming")

    await redis_client.xadd(stream, entry(sample(0)))
    await ein.wait_for("scrape_ingested")
    assert await conn.fetchval("SELECT count(*) FROM section") == 120
    assert await conn.fetchval("SELECT scraped_at IS NOT NULL FROM university")

    await redis_client.xadd(stream, entry(sample(1)))
    line = await ein.wait_for("scrape_ingested", count=2)
    assert line["status_changes"] == 4
    assert await conn.fetchval("SELECT count(*) FROM notification") == 4

    await redis_client.xadd(stream, entry(sample(1)))  # the same snapshot again
    await ein.wait_for("scrape_skipped")
    assert await conn.fetchval("SELECT count(*) FROM notification") == 4
    assert await pending(redis_client, settings) == 0

    published = []
    deadline = time.monotonic() + 10
    while len(published) < 2 and time.monotonic() < deadline:
        # get_message returns None for the (ignored) subscribe confirmation too.
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:
            published.append(message["data"])
    assert published == [b"sim", b"sim"]
    await pubsub.aclose()

    assert await ein.stop(signal.SIGTERM) == 0
    assert any(line.get("event") == "stopped" for line in ein.lines)


async def test_rejected_scrapes_are_dead_lettered_and_acked(
    ein: EinProcess, conn: asyncpg.Connection, redis_client: aioredis.Redis, settings: Settings
) -> None:
    stream = settings.key(streams.SCRAPES)
    await ein.wait_for("consuming")
    await redis_client.xadd(stream, entry(payload=b"\x0a\xff\xff not protobuf"))
    await redis_client.xadd(stream, entry(sample(0)))
    half = sample(0)
    del half.subjects[1:]
    await redis_client.xadd(stream, entry(half))
    await ein.wait_for("scrape_rejected", count=2)
    await ein.wait_for("scrape_ingested")

    dead = await redis_client.xrange(settings.key(streams.SCRAPES_DEAD_LETTER))
    reasons = [fields[b"reason"] for _, fields in dead]
    assert reasons == [b"parse_error", b"too_many_deletes"]
    assert dead[0][1][b"payload"] == b"\x0a\xff\xff not protobuf"
    assert dead[1][1][b"scraper"] == b"test" and dead[1][1][b"error"]
    assert await pending(redis_client, settings) == 0
    assert await conn.fetchval("SELECT count(*) FROM section") == 120
    assert await ein.stop() == 0


async def test_a_kill_inside_the_transaction_loses_nothing(
    ein_env: dict[str, str],
    conn: asyncpg.Connection,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    stream = settings.key(streams.SCRAPES)
    first = await EinProcess(ein_env).start()
    await redis_client.xadd(stream, entry(sample(0)))
    await first.wait_for("scrape_ingested")
    assert await first.stop() == 0
    snapshot = await conn.fetchval("SELECT snapshot_sha256 FROM university")

    paused = await EinProcess(
        {**ein_env, "TRAKR_TEST_EIN_PAUSE_BEFORE_COMMIT_SECONDS": "60"}
    ).start()
    try:
        await redis_client.xadd(stream, entry(sample(1)))
        await paused.wait_for("test_pause")
    finally:
        assert paused.proc is not None
        paused.proc.kill()  # SIGKILL with the transaction open
        await paused.proc.wait()

    assert await conn.fetchval("SELECT snapshot_sha256 FROM university") == snapshot
    assert await conn.fetchval("SELECT count(*) FROM notification") == 0
    assert await pending(redis_client, settings) == 1

    restarted = await EinProcess(ein_env).start()
    try:
        line = await restarted.wait_for("scrape_ingested")
        assert line["status_changes"] == 4
        assert await conn.fetchval("SELECT count(*) FROM notification") == 4
        assert await pending(redis_client, settings) == 0
    finally:
        assert await restarted.stop() == 0


async def test_a_redelivered_entry_after_commit_is_skipped(
    ein_env: dict[str, str],
    conn: asyncpg.Connection,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    """A consumer committed, then died before XACK: the entry comes back and changes nothing."""
    from trakr.ein.ingest import ingest_payload

    stream = settings.key(streams.SCRAPES)
    await ingest_payload(conn, encode_university(sample(0), "protobuf"), "protobuf")
    await streams.ensure_group(redis_client, stream, "ein")
    fields = entry(sample(1))
    await redis_client.xadd(stream, fields)
    delivered = await redis_client.xreadgroup("ein", "dead-consumer", {stream: ">"}, count=1)
    assert delivered
    result = await ingest_payload(conn, fields["payload"], "protobuf")  # committed, never acked
    assert result.status_changes == 4

    ein = await EinProcess(ein_env).start()
    try:
        await ein.wait_for("scrape_skipped")  # claimed from dead-consumer after 1 s idle
        assert await pending(redis_client, settings) == 0
        assert await conn.fetchval("SELECT count(*) FROM notification") == 4
    finally:
        assert await ein.stop() == 0


class LingeringProxy:
    """A TCP proxy to PostgreSQL that keeps the client's socket open a while after the server
    closed its side: the FATAL "terminating connection" message reaches asyncpg before the
    close does, as over a slow network — asyncpg's protocol then sits in its error state and
    the next query fails client-side with InternalClientError (what the chaos suite saw)."""

    def __init__(self, host: str, port: int, linger_seconds: float) -> None:
        self.host, self.port, self.linger = host, port, linger_seconds
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(self.host, self.port)

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter, linger: float) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            await asyncio.sleep(linger)
            w.close()

        await asyncio.gather(pump(client_r, server_w, 0), pump(server_r, client_w, self.linger))

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_terminated_backend_is_an_outage_not_a_bad_scrape(
    ein_env: dict[str, str],
    conn: asyncpg.Connection,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    """pg_terminate_backend with the ingest transaction open: the entry stays pending and is
    ingested after the reconnect, never dead-lettered (chaos suite: a good scrape was lost)."""
    stream = settings.key(streams.SCRAPES)
    from urllib.parse import urlsplit

    dsn = urlsplit(settings.postgres_dsn)
    proxy = LingeringProxy(dsn.hostname or "127.0.0.1", dsn.port or 5432, linger_seconds=3)
    port = await proxy.start()
    proxied = dsn._replace(netloc=f"{dsn.username or 'postgres'}@127.0.0.1:{port}").geturl()
    ein = await EinProcess(
        {
            **ein_env,
            "TRAKR_POSTGRES_DSN": proxied,
            "TRAKR_TEST_EIN_PAUSE_BEFORE_COMMIT_SECONDS": "1.5",
        }
    ).start()
    try:
        await redis_client.xadd(stream, entry(sample(0)))
        await ein.wait_for("test_pause")
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert killed == 1
        # Before the fix: the client-side InternalClientError dead-lettered the scrape.
        line = await ein.wait_for_any("scrape_ingested", "scrape_rejected")
        assert line["event"] == "scrape_ingested", line  # the same entry, on a fresh connection
        retry = await ein.wait_for("ingest_retry")
        assert "InternalClientError" in retry["msg"], retry
        assert line["sections_written"] == 120
        assert await redis_client.xlen(settings.key(streams.SCRAPES_DEAD_LETTER)) == 0
        assert not [x for x in ein.lines if x.get("event") == "scrape_rejected"]
        assert await pending(redis_client, settings) == 0
        assert await conn.fetchval("SELECT count(*) FROM section") == 120
    finally:
        assert await ein.stop() == 0
        await proxy.close()


async def test_a_restarted_ein_skips_a_stale_claimed_entry(
    ein_env: dict[str, str],
    conn: asyncpg.Connection,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    """A dead consumer's pending entry is claimed after newer entries were ingested: acked as
    stale, never applied (statuses must not revert)."""
    stream = settings.key(streams.SCRAPES)
    await streams.ensure_group(redis_client, stream, "ein")
    older = entry(sample(1))
    older["scraped_at"] = f"{time.time() - 60:.3f}"
    await redis_client.xadd(stream, older)
    assert await redis_client.xreadgroup("ein", "dead-consumer", {stream: ">"}, count=1)
    await redis_client.xadd(stream, entry(sample(0)))  # newer (by scraped_at), not yet read

    ein = await EinProcess({**ein_env, "TRAKR_EIN_CLAIM_IDLE_SECONDS": "2"}).start()
    try:
        await ein.wait_for("scrape_ingested")  # the newer one, read before the claim
        stale = await ein.wait_for("scrape_stale")  # then the claimed older one
        assert stale["university"] == "sim"
        assert await pending(redis_client, settings) == 0
        assert await conn.fetchval("SELECT count(*) FROM notification") == 0
        assert not [x for x in ein.lines if x.get("event") == "scrape_rejected"]
    finally:
        assert await ein.stop() == 0
