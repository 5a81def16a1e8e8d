"""spike throughput and latency for the course-detail route: cached vs uncached, JSON vs protobuf.

Loads the real Rutgers NB snapshot into a database of its own through ein's library API, starts
two `trakr-spike` processes on kernel-chosen ports — one with the Redis cache (TTL 60 s), one
with TTL 0 (every request reads PostgreSQL) — and drives each with `wrk` at a fixed concurrency
in a separate process (a Lua script sets Accept and prints the latency percentiles as JSON). If
`wrk` is missing, a Python asyncio client in a subprocess stands in (it competes with spike for
the same two cores, so it measures itself as much as spike: figures are lower bounds).

Route: GET /v1/courses/rutgers-nb.198.spring.2026.01-111 (Intro to Computer Science: every
section with meetings and instructors). Targets on 2 cores: cached >= 2,000 req/s with p99 <= 20 ms;
uncached >= 400 req/s.

Besides req/s and latency, each row reports the CPU time per request of the spike process and of
the PostgreSQL backends serving the bench database (utime+stime from /proc, so PostgreSQL must
run on this host): unlike req/s, those hardly move when other work shares the cores.

usage: python bench/api.py [--seconds 10] [--connections 16] [--course TOPIC] [--extras DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("TRAKR_TEST_REALDATA", REPO.parent / "shared" / "realdata"))
NB_COURSES = REALDATA / "rutgers_2026spring_NB_courses_2025-11-15T200031Z.json.gz"
OPEN_SECTIONS = REALDATA / "rutgers_2026spring_openSections_2025-11-15T200031Z.json"
SERVER_DSN = os.environ.get(
    "TRAKR_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TRAKR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
COURSE = "rutgers-nb.198.spring.2026.01-111"
TARGETS = {"cached": (2000.0, 20.0), "uncached": (400.0, None)}

WRK_SCRIPT = """
wrk.headers["Accept"] = os.getenv("BENCH_ACCEPT") or "application/json"
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "non_2xx": %d, "socket_errors": %d}\\n',
    summary.requests, seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""

# The fallback load generator, run as `python -c` in its own process.
PY_CLIENT = """
import asyncio, json, sys, time
import httpx
url, accept, seconds, connections = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
latencies, errors = [], 0
async def worker(client, end):
    global errors
    while time.perf_counter() < end:
        t = time.perf_counter()
        r = await client.get(url, headers={"Accept": accept})
        latencies.append(time.perf_counter() - t)
        errors += r.status_code != 200
async def main():
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, start + seconds) for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(json.dumps({"requests": len(latencies), "seconds": elapsed, "p50_ms": pick(0.5),
                      "p99_ms": pick(0.99), "non_2xx": errors, "socket_errors": 0}))
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """A migrated database holding the NB snapshot as ein writes it; dropped afterwards."""
    from trakr.db import with_database
    from trakr.ein.ingest import ingest_university
    from trakr.migrate import migrate
    from trakr.scrapers.rutgers import load_university

    name = f"trakr_bench_api_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_database(SERVER_DSN, name)
    try:
        migrate(dsn)
        university = load_university(
            NB_COURSES, OPEN_SECTIONS, campus="NB", season="spring", year=2026
        )

        async def ingest() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await ingest_university(conn, university)
                # A live database has planner statistics (autovacuum); a freshly loaded one has
                # none until autovacuum gets to it (if it is on at all) and is planned differently.
                await conn.execute("ANALYZE")
            finally:
                await conn.close()

        asyncio.run(ingest())
        yield dsn
    finally:
        with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def spike(
    dsn: str, *, ttl_seconds: float, namespace: str, extras: str | None
) -> Iterator[tuple[str, int]]:
    """A trakr-spike subprocess; yields its base URL and pid; SIGTERM (and a clean exit) afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    env.update(
        TRAKR_POSTGRES_DSN=dsn,
        TRAKR_REDIS_URL=REDIS_URL,
        TRAKR_NAMESPACE=namespace,
        TRAKR_SPIKE_CACHE_TTL_SECONDS=str(ttl_seconds),
        TRAKR_LOG_LEVEL="WARNING",
    )
    if extras:  # e.g. a --target dir holding uvloop/httptools, which uvicorn picks up by itself
        env["PYTHONPATH"] = extras
    exe = Path(sys.executable).with_name("trakr-spike")
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(exe), "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"spike did not start:\n{log.read().decode(errors='replace')}")
                time.sleep(0.1)
            yield base_url, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                log.seek(0)
                sys.stderr.write(
                    f"spike exited {code}:\n{log.read().decode(errors='replace')[-2000:]}\n"
                )


def load(
    url: str, *, accept: str, seconds: float, connections: int, script: Path | None
) -> dict[str, float]:
    """Drive `url` from a separate process; returns requests, seconds, p50_ms, p99_ms, errors."""
    if script is not None:
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
        env = {**os.environ, "BENCH_ACCEPT": accept}
        output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
        line = next(line for line in output.splitlines() if line.startswith("{"))
    else:
        command = [sys.executable, "-c", PY_CLIENT, url, accept, str(seconds), str(connections)]
        line = (
            subprocess.run(command, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
    return json.loads(line)  # type: ignore[no-any-return]


def cleanup_redis(namespace: str) -> None:
    """Delete the cache entries both spikes left (they would expire anyway within two minutes)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{namespace}-*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process on this host so far; None when /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids(dsn: str) -> list[int]:
    """The PostgreSQL backends connected to the bench database (spike's pool, after warm-up)."""
    from trakr.db import database_name

    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database_name(dsn),)
        ).fetchall()
    return [row[0] for row in rows]


def cpu_total(pids: list[int]) -> float | None:
    readings = [cpu_seconds(pid) for pid in pids]
    return None if None in readings else sum(r for r in readings if r is not None)


def measure(
    url: str, accept: str, args: argparse.Namespace, script: Path | None, *, pid: int, dsn: str
) -> dict[str, float | None]:
    """Warm up, then one measured run; adds the CPU ms per request of spike and of PostgreSQL.

    The warm-up opens spike's pool connections, so the backends listed after it are the ones
    that serve the measured run.
    """
    load(
        url, accept=accept, seconds=args.warmup_seconds, connections=args.connections, script=script
    )
    backends = backend_pids(dsn)
    spike_before, pg_before = cpu_seconds(pid), cpu_total(backends)
    result: dict[str, float | None] = dict(
        load(url, accept=accept, seconds=args.seconds, connections=args.connections, script=script)
    )
    spike_after, pg_after = cpu_seconds(pid), cpu_total(backends)
    requests = max(1.0, float(result["requests"] or 0))
    for name, before, after in (
        ("spike_cpu_ms", spike_before, spike_after),
        ("pg_cpu_ms", pg_before, pg_after),
    ):
        ok = before is not None and after is not None
        result[name] = (after - before) * 1000 / requests if ok else None  # type: ignore[operator]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario")
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--course", default=COURSE, help="course topic to request")
    parser.add_argument(
        "--extras", default=None, help="PYTHONPATH dir for spike (e.g. uvloop+httptools)"
    )
    parser.add_argument(
        "--python-client", action="store_true", help="use the Python client even if wrk exists"
    )
    args = parser.parse_args()

    use_wrk = shutil.which("wrk") is not None and not args.python_client
    namespace = f"bench-api-{uuid.uuid4().hex[:8]}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = None
        if use_wrk:
            script = Path(tmp) / "accept.lua"
            script.write_text(WRK_SCRIPT)
        started = time.perf_counter()
        with bench_database() as dsn:
            print(f"NB loaded via ein in {time.perf_counter() - started:.1f}s", flush=True)
            for mode, ttl in (("cached", 60.0), ("uncached", 0.0)):
                with spike(
                    dsn, ttl_seconds=ttl, namespace=f"{namespace}-{mode}", extras=args.extras
                ) as (base, pid):
                    url = f"{base}/v1/courses/{args.course}"
                    probe = httpx.get(url, timeout=10)
                    probe.raise_for_status()
                    sections = len(probe.json()["data"]["course"]["sections"])
                    if mode == "cached":
                        # A reference measured the same way in the same run: a trivial route that
                        # goes through FastAPI's routing and serialisation (cache hits skip those).
                        health = f"{base}/healthz"
                        rows.append(
                            (
                                "reference: /healthz",
                                "json",
                                len(httpx.get(health).content),
                                measure(health, "application/json", args, script, pid=pid, dsn=dsn),
                            )
                        )
                    for fmt, accept in (
                        ("json", "application/json"),
                        ("protobuf", "application/x-protobuf"),
                    ):
                        size = len(httpx.get(url, headers={"Accept": accept}, timeout=10).content)
                        result = measure(url, accept, args, script, pid=pid, dsn=dsn)
                        rows.append((mode, fmt, size, result))
                        print(f"  {mode:8} {fmt:8} done", flush=True)

    cleanup_redis(namespace)
    driver = "wrk -t2" if use_wrk else "python asyncio client (fallback)"
    print()
    print(
        f"spike, GET /v1/courses/{args.course} ({sections} sections), {args.connections} connections, "
        f"{args.seconds:g} s per row, load from {driver}, {os.cpu_count()} cores"
        + (f", PYTHONPATH={args.extras}" if args.extras else "")
    )
    print()
    print(
        "| mode | format | body bytes | req/s | p50 ms | p99 ms | errors "
        "| spike CPU ms/req | PostgreSQL CPU ms/req | target |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for mode, fmt, size, r in rows:
        rps = r["requests"] / r["seconds"]
        errors = int(r["non_2xx"] + r["socket_errors"])
        if mode in TARGETS:
            min_rps, max_p99 = TARGETS[mode]
            ok = rps >= min_rps and (max_p99 is None or r["p99_ms"] <= max_p99)
            target = f">= {min_rps:,.0f} req/s" + (f", p99 <= {max_p99:g} ms" if max_p99 else "")
            target += ": met" if ok else ": MISSED"
        else:
            target = "trivial route through FastAPI"
        cpu = " | ".join(
            "n/a" if r[name] is None else f"{r[name]:.3f}" for name in ("spike_cpu_ms", "pg_cpu_ms")
        )
        print(
            f"| {mode} | {fmt} | {size:,} | {rps:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {errors} | {cpu} | {target} |"
        )
    load_average = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nload average at the end (1/5/15 min): {load_average}; other work on these cores skews every row"
    )


if __name__ == "__main__":
    main()
