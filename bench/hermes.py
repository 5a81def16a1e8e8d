"""hermes throughput: notifications/s from the stream to the FCM emulator, concurrent vs one at a time.

Starts its own trakr-fcm-emulator (port chosen by the kernel), its own database (migrated, dropped
afterwards) and Redis namespace. Per scenario: a fresh namespace and outbox rows, trakr-hermes
started and consuming an empty stream, then all N entries XADDed at once (t0); the figure is N /
(last emulator `received_at` - t0). "recorded" is the time until every delivery row is written
(hermes acknowledges only after that). The emulator adds 50 ms to every send in the first pair of
scenarios (FCM is an internet round trip away) and nothing in the second.

CPU per notification is printed for every process the figure costs, from /proc between the XADD
and the last delivery row: hermes, the emulator, the PostgreSQL backends of the bench database
(hermes' pool) and the Redis server (which counts other clients of a shared server too). On a
shared machine these are the figures to compare, not notifications/s.

usage: python bench/hermes.py [--notifications 3000] [--serial-notifications 150] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import redis
from psycopg import sql
from trakr.db import with_database
from trakr.migrate import migrate

SERVER_DSN = os.environ.get(
    "TRAKR_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TRAKR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def script(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise SystemExit(f"bench: timed out waiting for {what}")


def log_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


@contextlib.contextmanager
def database() -> Iterator[str]:
    name = f"trakr_bench_hermes_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_database(SERVER_DSN, name)
    try:
        migrate(dsn)
        yield dsn
    finally:
        with psycopg.connect(SERVER_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def emulator(root: Path) -> Iterator[tuple[str, Path]]:
    credentials = root / "fcm-credentials.json"
    log = root / "fcm-emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [script("trakr-fcm-emulator"), "--port", "0", "--credentials-out", str(credentials)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        urls: list[str] = []

        def started() -> bool:
            urls[:] = [e["url"] for e in log_events(log) if e.get("event") == "emulator_started"]
            if proc.poll() is not None:
                raise SystemExit(f"bench: emulator exited: {log.read_text()}")
            return bool(urls)

        wait_for(started, timeout=30, what="the emulator")
        yield urls[0], credentials, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def seed(dsn: str, count: int) -> list[dict[str, str]]:
    """Outbox rows for `count` distinct sections, and the stream entries julia would write."""
    entries = []
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "INSERT INTO notification (topic_name, topic_id, university, old_status, new_status, state)"
            " SELECT 'rutgers-nb.198.spring.2026.01-111.' || lpad((i %% 100)::text, 2, '0') || '.' || (10000 + i),"
            "        i, 'rutgers-nb', 'CLOSED', 'OPEN', 'queued'"
            " FROM generate_series(1, %s) AS i RETURNING id, topic_name, created_at",
            (count,),
        ).fetchall()
    for nid, topic, created_at in rows:
        number, index = topic.rsplit(".", 2)[1:]
        payload = {
            "notification_id": nid,
            "topic_name": topic,
            "university": "rutgers-nb",
            "old_status": "CLOSED",
            "status": "OPEN",
            "created_at": created_at.isoformat(),
            "course_name": "Intro to Computer Science",
            "section_number": number,
            "section_index": index,
            "subject_name": "Computer Science",
        }
        entries.append(
            {
                "notification_id": str(nid),
                "topic_name": topic,
                "status": "OPEN",
                "university": "rutgers-nb",
                "payload": json.dumps(payload),
                "created_at": repr(created_at.timestamp()),
            }
        )
    return entries


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU time a process has used (from /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU of the PostgreSQL backends serving the bench database, except the bench's own.

    Backends are sampled at start and end; one that appears in between (hermes' pool growing)
    counts from zero.
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.before = {pid: process_cpu_seconds(pid) for pid in self._pids()}

    def _pids(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
        return [row[0] for row in rows]

    def seconds(self) -> float:
        return sum(process_cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in self._pids())


def redis_cpu_seconds(client: redis.Redis) -> float:
    """The Redis server's CPU (all its clients: other work on a shared server counts too)."""
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def run_scenario(
    *,
    dsn: str,
    url: str,
    emulator_pid: int,
    credentials: Path,
    root: Path,
    count: int,
    concurrency: int,
    delay_ms: float,
) -> dict[str, float]:
    namespace = f"bench-hermes-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, timeout=30) as client:
        client.delete("/messages").raise_for_status()
        client.post("/faults", json={"delay_ms": delay_ms}).raise_for_status()
    entries = seed(dsn, count)
    log = root / f"hermes-{namespace}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    env.update(
        TRAKR_POSTGRES_DSN=dsn,
        TRAKR_REDIS_URL=REDIS_URL,
        TRAKR_NAMESPACE=namespace,
        TRAKR_METRICS_PORT="0",
        TRAKR_FCM_URL=url,
        TRAKR_FCM_CREDENTIALS=str(credentials),
        TRAKR_HERMES_CONCURRENCY=str(concurrency),
        TRAKR_HERMES_BLOCK_SECONDS="0.05",
    )
    client_redis = redis.Redis.from_url(REDIS_URL)
    watch = psycopg.connect(dsn, autocommit=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trakr.hermes"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_for(
            lambda: any(e.get("event") == "started" for e in log_events(log)),
            timeout=60,
            what="hermes",
        )
        time.sleep(0.5)  # let it settle into its blocking read
        cpu_before = process_cpu_seconds(proc.pid)
        emulator_cpu_before = process_cpu_seconds(emulator_pid)
        backends = BackendCpu(watch)
        redis_cpu_before = redis_cpu_seconds(client_redis)
        stream = f"{namespace}:notifications"
        t0 = time.time()
        pipe = client_redis.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(stream, fields)
        pipe.execute()
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_for(
                lambda: client.get("/stats").json()["recorded"] >= count,
                timeout=max(120, count * (delay_ms / 1000 + 0.02) * 2),
                what=f"{count} messages",
            )
            last_received = max(
                m["received_at"]
                for m in client.get("/messages", params={"limit": count}).json()["messages"]
            )
        with psycopg.connect(dsn) as conn:
            wait_for(
                lambda: conn.execute("SELECT count(*) FROM delivery").fetchone()[0] >= count,
                timeout=60,
                what="delivery rows",
            )
            recorded = time.time()
            conn.execute("TRUNCATE delivery, notification")
            conn.commit()
        cpu_seconds = process_cpu_seconds(proc.pid)
        emulator_cpu_seconds = process_cpu_seconds(emulator_pid)
        postgres_cpu_seconds = backends.seconds()
        redis_cpu = redis_cpu_seconds(client_redis) - redis_cpu_before
    finally:
        watch.close()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        client_redis.delete(f"{namespace}:notifications")
        client_redis.close()
    if code != 0:
        raise SystemExit(f"bench: hermes exited {code}: {log.read_text()[-2000:]}")
    return {
        "rate": count / (last_received - t0),
        "seconds": last_received - t0,
        "recorded_seconds": recorded - t0,
        "cpu_ms": (cpu_seconds - cpu_before) * 1000 / count,
        "emulator_cpu_ms": (emulator_cpu_seconds - emulator_cpu_before) * 1000 / count,
        "postgres_cpu_ms": postgres_cpu_seconds * 1000 / count,
        "redis_cpu_ms": redis_cpu * 1000 / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--notifications", type=int, default=3000)
    parser.add_argument("--serial-notifications", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rows: list[list[str]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-hermes-")))
        dsn = stack.enter_context(database())
        url, credentials, emulator_pid = stack.enter_context(emulator(tmp))
        for delay_ms in (50.0, 0.0):
            rates = {}
            for concurrency, count in (
                (args.concurrency, args.notifications),
                (1, args.serial_notifications),
            ):
                figures = run_scenario(
                    dsn=dsn,
                    url=url,
                    emulator_pid=emulator_pid,
                    credentials=credentials,
                    root=tmp,
                    count=count,
                    concurrency=concurrency,
                    delay_ms=delay_ms,
                )
                rates[concurrency] = figures["rate"]
                rows.append(
                    [
                        f"{delay_ms:.0f} ms",
                        str(concurrency),
                        str(count),
                        f"{figures['rate']:.0f}",
                        f"{figures['seconds']:.2f}",
                        f"{figures['recorded_seconds']:.2f}",
                        f"{figures['cpu_ms']:.2f}",
                        f"{figures['emulator_cpu_ms']:.2f}",
                        f"{figures['postgres_cpu_ms']:.2f}",
                        f"{figures['redis_cpu_ms']:.2f}",
                    ]
                )
            rows.append(
                [
                    "",
                    "speed-up",
                    "",
                    f"{rates[args.concurrency] / rates[1]:.1f}x",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
    header = [
        "emulator latency",
        "concurrency",
        "notifications",
        "notif/s",
        "to emulator s",
        "recorded s",
        "hermes CPU ms/notif",
        "emulator CPU ms/notif",
        "postgres CPU ms/notif",
        "redis CPU ms/notif",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(
        f"hermes: stream -> FCM emulator, {os.cpu_count()} cores, one run (load average {os.getloadavg()[0]:.1f})"
    )
    print(" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
