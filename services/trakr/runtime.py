"""What every long-running process shares: stop signals, backoff, side-task supervision."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")


def install_stop_signals() -> asyncio.Event:
    """Return an event set on the first SIGTERM/SIGINT; a second signal stops waiting for a drain.

    Call from inside the running loop. The handlers run in the loop, so they may touch asyncio
    objects safely (a plain signal.signal handler could fire between two bytecodes of a coroutine).
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            logger.warning(
                "second %s: exiting now",
                signal.Signals(signum).name,
                extra={"event": "forced_stop"},
            )
            raise SystemExit(1)
        logger.info(
            "%s received: finishing work in hand",
            signal.Signals(signum).name,
            extra={"event": "stopping"},
        )
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


class Backoff:
    """Exponential backoff with full jitter and a cap; reset() after a success."""

    def __init__(self, *, base_seconds: float = 0.1, max_seconds: float = 10.0) -> None:
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows 2x per attempt up to the cap, with jitter."""
        # The exponent is capped: after ~1,000 attempts (hours of outage at a 10 s cap) 2**attempt
        # no longer fits in a float and the multiplication raised OverflowError.
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(self.attempt, 64))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    async def wait(self, stop: asyncio.Event | None = None, *, what: str = "retry") -> bool:
        """Sleep the next delay (logging it); return False early if `stop` is set meanwhile."""
        delay = self.next_delay()
        logger.warning(
            "%s: attempt %d, retrying in %.2fs",
            what,
            self.attempt,
            delay,
            extra={"event": "backoff", "attempt": self.attempt, "delay_seconds": round(delay, 3)},
        )
        return await sleep_or_stop(delay, stop)


async def sleep_or_stop(seconds: float, stop: asyncio.Event | None) -> bool:
    """Sleep `seconds`; return False at once if `stop` is set first, True otherwise."""
    if stop is None:
        await asyncio.sleep(seconds)
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return True
    return False


async def retry_until_stopped(
    operation: Callable[[], Awaitable[T]],
    *,
    stop: asyncio.Event,
    retry_on: tuple[type[BaseException], ...],
    what: str,
    max_seconds: float = 10.0,
) -> T | None:
    """Run `operation` until it succeeds, backing off after each `retry_on` error.

    Returns its result, or None if `stop` was set before it succeeded.
    """
    backoff = Backoff(max_seconds=max_seconds)
    while not stop.is_set():
        try:
            return await operation()
        except retry_on as exc:
            logger.warning(
                "%s failed: %s", what, exc, extra={"event": "retry", "error": type(exc).__name__}
            )
            if not await backoff.wait(stop, what=what):
                break
    return None


async def supervise(tasks: list[asyncio.Task[object]], stop: asyncio.Event) -> None:
    """Wait until `stop` is set or a side task ends; a task that ended early is logged and stops us.

    A worker limping on without its heartbeat or listener is worse than a restart by the
    orchestrator, so the first task that dies takes the service down (procrastinate does this).
    """
    stopper = asyncio.create_task(stop.wait(), name="stop-signal")
    done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is stopper:
            continue
        exc = task.exception() if not task.cancelled() else None
        logger.error(
            "task %s ended unexpectedly: %r",
            task.get_name(),
            exc,
            exc_info=exc,
            extra={"event": "task_died"},
        )
    stop.set()
    stopper.cancel()
