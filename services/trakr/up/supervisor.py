"""The process supervisor behind `trakr up`: start children, relay their logs, restart, stop.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the supervisor, which then stops the children in order — producers (jets) first so the consumers
can drain — with SIGTERM, a grace period, then SIGKILL of the whole group (a jet's scraper
included). A child that dies is restarted with exponential backoff; one that keeps dying
within seconds of starting is reported as crash-looping (and still retried, slowly: the
database it waits for may come back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from trakr.runtime import Backoff, sleep_or_stop
from trakr.streams import REDIS_CONNECTION_ERRORS
from trakr.up.plan import ProcessSpec

logger = logging.getLogger(__name__)

STATE_KEY = "up:state"  # under the namespace: trakr:up:state
STATE_TTL_SECONDS = 15
STATE_INTERVAL_SECONDS = 2.0
# A run shorter than this counts as a crash; one longer resets the backoff.
STABLE_SECONDS = 30.0
CRASH_LOOP_EXITS = 3
_LINE_LIMIT = 4 * 1024 * 1024

Sink = Callable[[str], None]


@dataclass
class Child:
    """A supervised process and what the supervisor knows about it."""

    spec: ProcessSpec
    process: asyncio.subprocess.Process | None = None
    state: str = "starting"
    restarts: int = 0
    quick_exits: int = 0
    started_at: float | None = None
    last_exit_code: int | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(base_seconds=0.5, max_seconds=30.0))

    @property
    def pid(self) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "kind": self.spec.kind,
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "crash_looping": self.quick_exits >= CRASH_LOOP_EXITS,
            "last_exit_code": self.last_exit_code,
            "metrics_url": self.spec.metrics_url,
            "started_at": self.started_at,
        }


class Supervisor:
    """Runs a plan of processes until stopped; see the module docstring."""

    def __init__(
        self,
        plan: list[ProcessSpec],
        *,
        sink: Sink,
        grace_seconds: float,
        base_env: dict[str, str],
    ) -> None:
        self.children = [Child(spec) for spec in plan]
        self.sink = sink
        self.grace_seconds = grace_seconds
        self.base_env = base_env
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, *, only: Callable[[ProcessSpec], bool] | None = None) -> None:
        """Start every child (or those `only` selects); returns at once, a task keeps each running."""
        for child in self.children:
            if only is not None and not only(child.spec):
                continue
            self._tasks.append(
                asyncio.create_task(self._keep_running(child), name=f"keep:{child.spec.name}")
            )

    async def shutdown(self) -> None:
        """Stop every child, producers first; SIGKILL what outlives the grace period."""
        self.stopping.set()
        for phase in sorted({child.spec.stop_phase for child in self.children}):
            await self.stop_children([c for c in self.children if c.spec.stop_phase == phase])
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for child in self.children:
            # Last resort for a child spawned while the stop was under way: no orphans.
            if child.pid is not None:
                _signal_group(child, signal.SIGKILL)
        exit_codes = {child.spec.name: child.last_exit_code for child in self.children}
        logger.info("all processes stopped", extra={"event": "stopped", "exit_codes": exit_codes})

    async def stop_children(self, children: list[Child]) -> None:
        """SIGTERM these children (they are not restarted), wait the grace period, then SIGKILL."""
        for child in children:
            child.state = "stopping"
            _signal_group(child, signal.SIGTERM)
        waits = [
            child.process.wait() for child in children if child.pid is not None and child.process
        ]
        if not waits:
            for child in children:
                child.state = "stopped"
            return
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(w) for w in waits], timeout=self.grace_seconds
        )
        for child in children:
            if child.pid is not None:
                logger.warning(
                    "%s did not stop within %.0fs: SIGKILL",
                    child.spec.name,
                    self.grace_seconds,
                    extra={"event": "killed", "child": child.spec.name},
                )
                _signal_group(child, signal.SIGKILL)
        if pending:
            await asyncio.wait(pending, timeout=5)
        for child in children:
            child.state = "stopped"

    def kill_all(self) -> None:
        """SIGKILL every child at once (a second Ctrl-C: the operator does not want to wait)."""
        self.stopping.set()
        for child in self.children:
            child.state = "stopping"
            _signal_group(child, signal.SIGKILL)

    def stop_phase(self, phase: int) -> asyncio.Task[None]:
        """Stop one phase's children early (the demo stops the jets, then drains)."""
        children = [c for c in self.children if c.spec.stop_phase == phase]
        for child in children:
            child.state = "stopping"
        return asyncio.create_task(self.stop_children(children))

    # --- one child --------------------------------------------------------------------------

    async def _keep_running(self, child: Child) -> None:
        while not self.stopping.is_set() and child.state not in ("stopping", "stopped"):
            started = time.monotonic()
            try:
                await self._run_once(child)
            except OSError as exc:
                child.last_exit_code = None
                logger.error(
                    "cannot start %s: %s",
                    child.spec.name,
                    exc,
                    extra={"event": "spawn_failed", "child": child.spec.name},
                )
            except Exception:
                # A supervisor bug must not leave a child unsupervised: log it, treat it as a crash.
                logger.exception(
                    "supervising %s failed", child.spec.name, extra={"event": "supervisor_error"}
                )
                _signal_group(child, signal.SIGKILL)
            if child.state == "running":
                child.state = "exited"
            if self.stopping.is_set() or child.state in ("stopping", "stopped"):
                return
            uptime = time.monotonic() - started
            if uptime >= STABLE_SECONDS:
                child.backoff.reset()
                child.quick_exits = 0
            else:
                child.quick_exits += 1
            child.restarts += 1
            delay = child.backoff.next_delay()
            crash_looping = child.quick_exits >= CRASH_LOOP_EXITS
            child.state = "crash-looping" if crash_looping else "backoff"
            level = logging.ERROR if crash_looping else logging.WARNING
            logger.log(
                level,
                "%s exited with %s after %.1fs%s; restart %d in %.1fs",
                child.spec.name,
                child.last_exit_code,
                uptime,
                " (crash-looping)" if crash_looping else "",
                child.restarts,
                delay,
                extra={
                    "event": "crash_loop" if crash_looping else "restarting",
                    "child": child.spec.name,
                    "exit_code": child.last_exit_code,
                    "restarts": child.restarts,
                },
            )
            await sleep_or_stop(delay, self.stopping)

    async def _run_once(self, child: Child) -> None:
        spec = child.spec
        env = {**self.base_env, **spec.env}
        for name in spec.unset_env:
            env.pop(name, None)
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
            limit=_LINE_LIMIT,
        )
        child.process = process
        child.started_at = time.time()
        if child.state in ("stopping", "stopped"):
            # The stop came while this child was being spawned: it missed the SIGTERM.
            _signal_group(child, signal.SIGTERM)
        else:
            child.state = "running"
        logger.info(
            "started %s (pid %d)",
            spec.name,
            process.pid,
            extra={"event": "started", "child": spec.name, "pid": process.pid},
        )
        assert process.stdout is not None
        await self._relay(spec.name, process.stdout)
        child.last_exit_code = await process.wait()

    async def _relay(self, name: str, stream: asyncio.StreamReader) -> None:
        """Copy the child's output line by line, prefixed with its name, until it closes."""
        prefix = f"[{name}] "
        while True:
            try:
                line = await stream.readline()
            except (asyncio.LimitOverrunError, ValueError):
                line = await stream.read(_LINE_LIMIT)
            if not line:
                return
            self.sink(prefix + line.decode(errors="replace").rstrip("\n"))

    # --- state for `trakr status` -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "supervisor_pid": os.getpid(),
            "host": socket.gethostname(),
            "updated_at": time.time(),
            "processes": [child.describe() for child in self.children],
        }

    async def publish_state(self, redis: aioredis.Redis, key: str) -> None:
        """Keep `key` holding the snapshot (with a TTL, so a killed supervisor's state expires)."""
        warned = False
        while not self.stopping.is_set():
            try:
                await redis.set(key, json.dumps(self.snapshot()), ex=STATE_TTL_SECONDS)
                warned = False
            except REDIS_CONNECTION_ERRORS as exc:
                if not warned:
                    logger.warning(
                        "cannot publish state: %s", exc, extra={"event": "state_unpublished"}
                    )
                    warned = True
            await sleep_or_stop(STATE_INTERVAL_SECONDS, self.stopping)
        with contextlib.suppress(*REDIS_CONNECTION_ERRORS):
            await redis.delete(key)


def _signal_group(child: Child, signum: signal.Signals) -> None:
    """SIGTERM the child itself (it stops its own helpers); SIGKILL its whole process group.

    A jet's scraper is in the jet's group: a jet that had to be killed must not leave it behind.
    """
    if child.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if signum == signal.SIGKILL:
            os.killpg(child.pid, signum)
        else:
            os.kill(child.pid, signum)
