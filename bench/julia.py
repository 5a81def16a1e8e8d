"""Measure julia: forward lag while idle-waiting, and the catch-up rate of a backlog.

Run: .venv/bin/python tests/integration/julia/bench_julia.py [--changes 300] [--backlog 10000]

Not collected by pytest (speed is measured, never asserted). trakr-julia runs as a real
process against a throw-away database and Redis namespace.

- lag: one section status change at a time, with julia idle in between; lag = the moment the
  entry is read from the stream (XREAD BLOCK) minus the outbox row's created_at (same host
  clock). Includes the NOTIFY, julia's batch transaction, and one Redis round trip.
- catch-up: julia stopped, N changes made, julia started; rows/s over the span from the first
  to the last row marked queued (queued_at, the database's clock), and from process start
  to the last row queued (includes Python start-up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis.asyncio as aioredis
from trakr.db import with_database
from trakr.migrate import migrate

SERVER_DSN = os.environ.get(
    "TRAKR_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TRAKR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
JULIA = str(Path(sys.executable).with_name("trakr-julia"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def setup_catalogue(dsn: str, sections: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO university (id, topic_name, topic_id, name, abbr) VALUES (1, 'bench', 1, 'Bench U', 'B')"
        )
        conn.execute(
            "INSERT INTO subject (id, university_id, topic_name, topic_id, number, name, season, year,"
            " content_hash) VALUES (1, 1, 'bench.198', 2, '198', 'CS', 'spring', 2026, '\\x00')"
        )
        conn.execute(
            "INSERT INTO course (id, subject_id, topic_name, topic_id, code, number, name, content_hash)"
            " VALUES (1, 1, 'bench.198.111', 3, '01:198:111', '111', 'Intro', '\\x00')"
        )
        conn.execute(
            "INSERT INTO section (course_id, university_id, topic_name, topic_id, index, number, status,"
            " content_hash) SELECT 1, 1, 'bench.198.111.' || i, 100 + i, i::text, i::text, 'CLOSED', '\\x00'"
            " FROM generate_series(1, %s) AS i",
            (sections,),
        )


def start_julia(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([JULIA], env=env, stdout=out, stderr=subprocess.STDOUT)


def stop_julia(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


async def wait_listening(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for _ in range(400):
            cur = await conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'trakr-julia-listen'"
                " AND datname = current_database()"
            )
            if await cur.fetchone():
                return
            await asyncio.sleep(0.05)
    raise RuntimeError("julia did not start listening")


async def measure_lag(
    dsn: str, stream: str, changes: int
) -> tuple[list[float], list[float], list[float]]:
    """Per change: created_at → read from the stream; UPDATE issued → read from the stream; and
    the baseline, UPDATE issued → a bare LISTEN connection in this process gets the NOTIFY."""
    redis = aioredis.Redis.from_url(REDIS_URL)
    lags: list[float] = []
    totals: list[float] = []
    baselines: list[float] = []
    last_id = "$"
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listen,
    ):
        await listen.execute("LISTEN status_change")
        received: asyncio.Queue[float] = asyncio.Queue()

        async def listen_forever() -> None:
            async for _ in listen.notifies():
                received.put_nowait(time.time())

        listener = asyncio.create_task(listen_forever())
        for i in range(changes):
            section = i % 1000 + 1
            reader = asyncio.create_task(redis.xread({stream: last_id}, count=1, block=10_000))
            await asyncio.sleep(0.01)  # both are waiting; julia is idle
            issued = time.time()
            await conn.execute(
                "UPDATE section SET status = CASE status WHEN 'OPEN' THEN 'CLOSED' ELSE 'OPEN' END"
                " WHERE id = %s",
                (section,),
            )
            baselines.append(await asyncio.wait_for(received.get(), 10) - issued)
            response = await reader
            seen = time.time()
            entry_id, fields = response[0][1][0]
            last_id = entry_id
            lags.append(seen - float(fields[b"created_at"]))
            totals.append(seen - issued)
            await asyncio.sleep(0.02)
        listener.cancel()
    await redis.aclose()
    return lags, totals, baselines


async def xadd_baseline(stream: str, count: int) -> float:
    """Rows/s of plain pipelined XADDs of similar entries: the Redis floor of a catch-up."""
    redis = aioredis.Redis.from_url(REDIS_URL)
    fields = {
        "notification_id": "1",
        "topic_name": "bench.198.111.1",
        "status": "OPEN",
        "university": "bench",
        "payload": "x" * 330,
        "created_at": "1.0",
    }
    started = time.perf_counter()
    for start in range(0, count, 500):
        pipe = redis.pipeline(transaction=False)
        for _ in range(min(500, count - start)):
            pipe.xadd(stream, fields, maxlen=100_000, approximate=True)
        await pipe.execute()
    elapsed = time.perf_counter() - started
    await redis.delete(stream)
    await redis.aclose()
    return count / elapsed


def measure_catchup(dsn: str, env: dict[str, str], log: Path, backlog: int) -> tuple[float, float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE notification CASCADE")
        conn.execute(
            "UPDATE section SET status = CASE status WHEN 'OPEN' THEN 'CLOSED' ELSE 'OPEN' END WHERE id <= %s",
            (backlog,),
        )
        started = time.time()
        proc = start_julia(env, log)
        while True:
            (left,) = conn.execute(
                "SELECT count(*) FROM notification WHERE state = 'new'"
            ).fetchone()  # type: ignore[misc]
            if left == 0:
                break
            time.sleep(0.05)
        wall = time.time() - started
        stop_julia(proc)
        (span,) = conn.execute(  # type: ignore[misc]
            "SELECT EXTRACT(EPOCH FROM max(queued_at) - min(queued_at))::float8 FROM notification"
        ).fetchone()
    return backlog / max(span, 1e-6), backlog / wall


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=300, help="changes for the lag measurement")
    parser.add_argument(
        "--backlog", type=int, default=10_000, help="rows for the catch-up measurement"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="TRAKR_JULIA_BATCH_SIZE")
    args = parser.parse_args()

    name = f"trakr_bench_julia_{uuid.uuid4().hex[:8]}"
    dsn = with_database(SERVER_DSN, name)
    namespace = f"benchjulia-{uuid.uuid4().hex[:8]}"
    migrate(dsn)
    setup_catalogue(dsn, max(args.backlog, 1000))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    env.update(
        TRAKR_POSTGRES_DSN=dsn,
        TRAKR_REDIS_URL=REDIS_URL,
        TRAKR_NAMESPACE=namespace,
        TRAKR_METRICS_PORT="0",
    )
    if args.batch_size:
        env["TRAKR_JULIA_BATCH_SIZE"] = str(args.batch_size)
    log = Path(tempfile.mkstemp(prefix="bench-julia-", suffix=".log")[1])
    try:
        proc = start_julia(env, log)
        await wait_listening(dsn)
        lags, totals, baselines = await measure_lag(dsn, f"{namespace}:notifications", args.changes)
        stop_julia(proc)
        for label, values in (
            ("forward lag (outbox created_at -> entry read from the stream)", lags),
            ("UPDATE issued -> entry read from the stream", totals),
            ("baseline: UPDATE issued -> NOTIFY at a bare LISTEN connection", baselines),
        ):
            ms = [value * 1000 for value in values]
            print(
                f"{label}, {len(ms)} changes one at a time: p50 {percentile(ms, 0.5):.1f} ms,"
                f" p90 {percentile(ms, 0.9):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
            )
        span_rate, wall_rate = measure_catchup(dsn, env, log, args.backlog)
        print(
            f"catch-up of {args.backlog} rows: {span_rate:,.0f} rows/s (first to last queued),"
            f" {wall_rate:,.0f} rows/s (from process start, incl. Python start-up)"
        )
        floor = await xadd_baseline(f"{namespace}:baseline", args.backlog)
        print(f"baseline: plain pipelined XADD of {args.backlog} entries: {floor:,.0f} entries/s")
    finally:
        redis = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"{namespace}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"julia log: {log}")


if __name__ == "__main__":
    asyncio.run(main())
