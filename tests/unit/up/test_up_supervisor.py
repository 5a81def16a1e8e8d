"""The supervisor with real (tiny) child processes: relay, restart with backoff, crash loops, stop."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import redis.asyncio as aioredis
from trakr.runtime import Backoff
from trakr.up.plan import ProcessSpec
from trakr.up.supervisor import Supervisor

GRACEFUL = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("draining", flush=True), sys.exit(0)))
print("hello", flush=True)
while True:
    time.sleep(0.1)
"""
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
while True:
    time.sleep(0.1)
"""


def spec(name: str, code: str, **kwargs: object) -> ProcessSpec:
    return ProcessSpec(name=name, argv=(sys.executable, "-c", code), metrics_port=None, **kwargs)  # type: ignore[arg-type]


async def wait_for(check: object, timeout_seconds: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_relays_prefixed_lines_and_stops_gracefully() -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        [spec("svc", GRACEFUL)], sink=lines.append, grace_seconds=10, base_env=dict(os.environ)
    )
    supervisor.start()
    await wait_for(lambda: "[svc] hello" in lines)
    (child,) = supervisor.children
    assert child.describe()["state"] == "running" and child.pid
    started = time.monotonic()
    await supervisor.shutdown()
    assert time.monotonic() - started < 5
    assert child.last_exit_code == 0 and child.restarts == 0
    assert "[svc] draining" in lines


async def test_restarts_a_dying_child_and_reports_a_crash_loop() -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        [spec("crashy", "print('boom', flush=True); raise SystemExit(3)")],
        sink=lines.append,
        grace_seconds=5,
        base_env=dict(os.environ),
    )
    (child,) = supervisor.children
    child.backoff = Backoff(base_seconds=0.01, max_seconds=0.05)
    supervisor.start()
    await wait_for(lambda: child.restarts >= 4)
    described = child.describe()
    assert described["crash_looping"] and described["last_exit_code"] == 3
    assert lines.count("[crashy] boom") >= 4
    await supervisor.shutdown()


async def test_a_child_ignoring_sigterm_is_killed_with_its_process_group() -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        [spec("stubborn", STUBBORN)], sink=lines.append, grace_seconds=1, base_env=dict(os.environ)
    )
    supervisor.start()
    await wait_for(lambda: any(line.startswith("[stubborn] ") for line in lines))
    grandchild = int(lines[0].split()[1])
    started = time.monotonic()
    await supervisor.shutdown()
    assert 1 <= time.monotonic() - started < 8
    assert supervisor.children[0].last_exit_code == -9
    await wait_for(lambda: not alive(grandchild), timeout_seconds=5)


async def test_state_is_published_and_removed(redis_client: aioredis.Redis, namespace: str) -> None:
    key = f"{namespace}:up:state"
    supervisor = Supervisor(
        [spec("svc", GRACEFUL)], sink=lambda _: None, grace_seconds=5, base_env=dict(os.environ)
    )
    supervisor.start()
    publisher = asyncio.create_task(supervisor.publish_state(redis_client, key))

    async def published() -> dict[str, object] | None:
        raw = await redis_client.get(key)
        return json.loads(raw) if raw else None

    deadline = time.monotonic() + 20
    while not ((state := await published()) and state["processes"][0]["pid"]):  # type: ignore[index]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert state["supervisor_pid"] == os.getpid()
    assert 0 < await redis_client.ttl(key) <= 15
    await supervisor.shutdown()
    await publisher
    assert await redis_client.exists(key) == 0
