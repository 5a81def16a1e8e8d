"""`trakr status`: one screen with every process, stream backlogs, scrapes, pushes and errors."""

from __future__ import annotations

import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from redis.exceptions import ResponseError

from trakr.db import load_queries, redact
from trakr.settings import Settings
from trakr.streams import NOTIFICATIONS, REDIS_CONNECTION_ERRORS, SCRAPES, SCRAPES_DEAD_LETTER
from trakr.up.supervisor import STATE_KEY

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
# (stream, consumer group reading it)
STREAMS = ((SCRAPES, "ein"), (NOTIFICATIONS, "hermes"), (SCRAPES_DEAD_LETTER, None))


@dataclass
class ProcessHealth:
    name: str
    pid: int | None
    state: str
    restarts: int
    crash_looping: bool
    pid_alive: bool | None
    metrics_ok: bool | None
    metrics_url: str | None

    @property
    def healthy(self) -> bool:
        return (
            self.state == "running" and self.pid_alive is not False and self.metrics_ok is not False
        )


@dataclass
class StreamBacklog:
    stream: str
    length: int
    group: str | None = None
    pending: int | None = None
    lag: int | None = None


@dataclass
class StatusReport:
    namespace: str
    database: str
    up_running: bool = False
    processes: list[ProcessHealth] = field(default_factory=list)
    streams: list[StreamBacklog] = field(default_factory=list)
    universities: list[tuple[str, str, datetime | None, int]] = field(default_factory=list)
    deliveries_last_hour: dict[str, int] = field(default_factory=dict)
    fcm_errors_last_hour: list[tuple[str, int]] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.up_running and not self.problems and all(p.healthy for p in self.processes)


def collect(settings: Settings) -> StatusReport:
    """Gather the report; unreachable parts become `problems` instead of exceptions."""
    report = StatusReport(namespace=settings.namespace, database=redact(settings.postgres_dsn))
    _collect_redis(settings, report)
    _collect_database(settings, report)
    return report


def _collect_redis(settings: Settings, report: StatusReport) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        raw = client.get(settings.key(STATE_KEY))
        if raw:
            report.up_running = True
            report.processes = _check_processes(json.loads(raw))
        else:
            report.problems.append(f"no `trakr up` is running for namespace {settings.namespace!r}")
        for stream, group in STREAMS:
            report.streams.append(_backlog(client, settings.key(stream), group))
    except REDIS_CONNECTION_ERRORS as exc:
        report.problems.append(f"Redis unreachable: {exc}")
    finally:
        client.close()


def _backlog(client: redis.Redis, key: str, group: str | None) -> StreamBacklog:
    backlog = StreamBacklog(stream=key, length=int(client.xlen(key)), group=group)
    if group is None:
        return backlog
    try:
        groups = client.xinfo_groups(key)
    except ResponseError:  # the stream does not exist yet
        return backlog
    for info in groups:
        name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
        if name == group:
            backlog.pending = int(info["pending"])
            backlog.lag = None if info.get("lag") is None else int(info["lag"])
    return backlog


def _check_processes(state: dict[str, Any]) -> list[ProcessHealth]:
    same_host = state.get("host") == socket.gethostname()
    entries = state.get("processes", [])
    with ThreadPoolExecutor(max_workers=8) as pool:
        metrics = list(pool.map(lambda e: _metrics_ok(e.get("metrics_url")), entries))
    return [
        ProcessHealth(
            name=entry["name"],
            pid=entry.get("pid"),
            state=entry.get("state", "?"),
            restarts=int(entry.get("restarts", 0)),
            crash_looping=bool(entry.get("crash_looping")),
            pid_alive=_pid_alive(entry.get("pid")) if same_host else None,
            metrics_ok=metrics_ok,
            metrics_url=entry.get("metrics_url"),
        )
        for entry, metrics_ok in zip(entries, metrics, strict=True)
    ]


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _metrics_ok(url: str | None) -> bool | None:
    if not url:
        return None
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _collect_database(settings: Settings, report: StatusReport) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    try:
        with psycopg.connect(settings.postgres_dsn, connect_timeout=3) as conn:
            report.universities = [tuple(r) for r in conn.execute(QUERIES["last_scrapes"])]  # type: ignore[misc]
            report.deliveries_last_hour = dict(
                conn.execute(QUERIES["deliveries_since"], {"since": since}).fetchall()
            )
            report.fcm_errors_last_hour = list(
                conn.execute(QUERIES["fcm_errors_since"], {"since": since})
            )
            report.outbox = dict(conn.execute(QUERIES["outbox_by_state"]).fetchall())
    except (psycopg.OperationalError, OSError) as exc:
        report.problems.append(f"PostgreSQL unreachable: {str(exc).strip()}")
    except psycopg.errors.UndefinedTable:
        report.problems.append("database is not migrated (run `trakr migrate`)")


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _mark(value: bool | None) -> str:
    return {True: "ok", False: "DOWN", None: "-"}[value]


def render(report: StatusReport, *, now: datetime | None = None) -> str:
    """The one screen, as text (pure)."""
    now = now or datetime.now(UTC)
    lines = [f"trakr status — namespace {report.namespace}, database {report.database}", ""]
    lines.append("PROCESSES" + ("" if report.up_running else "  (trakr up is not running)"))
    if report.processes:
        lines.append(
            f"  {'name':<24} {'state':<14} {'pid':>8} {'alive':>6} {'metrics':>8} {'restarts':>9}"
        )
        for p in report.processes:
            state = "crash-looping" if p.crash_looping else p.state
            lines.append(
                f"  {p.name:<24} {state:<14} {p.pid or '-':>8} {_mark(p.pid_alive):>6} "
                f"{_mark(p.metrics_ok):>8} {p.restarts:>9}"
            )
    lines += ["", "STREAMS"]
    for s in report.streams:
        group = (
            f"group {s.group}: pending {s.pending if s.pending is not None else '-'}, "
            if s.group
            else ""
        )
        lag = (
            f"lag {s.lag}"
            if s.lag is not None
            else ("not consumed yet" if s.group else "dead letters")
        )
        lines.append(f"  {s.stream:<32} length {s.length:>7}   {group}{lag}")
    lines += ["", "LAST SCRAPE PER UNIVERSITY"]
    if not report.universities:
        lines.append("  (none yet)")
    for topic, name, scraped_at, sections in report.universities:
        lines.append(
            f"  {topic:<24} {name[:40]:<40} {sections:>7} sections   {_age(scraped_at, now)}"
        )
    sent = report.deliveries_last_hour.get("sent", 0)
    failed = report.deliveries_last_hour.get("failed", 0)
    lines += ["", f"NOTIFICATIONS (last hour): {sent} sent, {failed} failed"]
    if report.fcm_errors_last_hour:
        errors = ", ".join(f"{code}: {count}" for code, count in report.fcm_errors_last_hour)
        lines.append(f"  FCM errors: {errors}")
    else:
        lines.append("  FCM errors: none")
    outbox = (
        ", ".join(f"{state} {count}" for state, count in sorted(report.outbox.items())) or "empty"
    )
    lines.append(f"  outbox: {outbox}")
    if report.problems:
        lines += ["", "PROBLEMS"] + [f"  ! {problem}" for problem in report.problems]
    unhealthy = [p.name for p in report.processes if not p.healthy]
    if unhealthy:
        lines.append(f"  ! unhealthy: {', '.join(unhealthy)}")
    lines.append("")
    return "\n".join(lines)


def as_json(report: StatusReport) -> str:
    """The report as one JSON document (for scripts)."""

    def default(value: object) -> object:
        return value.isoformat() if isinstance(value, datetime) else str(value)

    document = {
        "healthy": report.healthy,
        "generated_at": time.time(),
        "namespace": report.namespace,
        "up_running": report.up_running,
        "processes": [vars(p) | {"healthy": p.healthy} for p in report.processes],
        "streams": [vars(s) for s in report.streams],
        "universities": [
            {"topic_name": t, "name": n, "scraped_at": s, "sections": c}
            for t, n, s, c in report.universities
        ],
        "deliveries_last_hour": report.deliveries_last_hour,
        "fcm_errors_last_hour": dict(report.fcm_errors_last_hour),
        "outbox": report.outbox,
        "problems": report.problems,
    }
    return json.dumps(document, default=default, indent=2)
