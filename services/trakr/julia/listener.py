"""The dedicated LISTEN connection: wakes the forwarder, notices a dead socket, reconnects.

NOTIFY payloads only say "look at the outbox": notifications sent while this connection is down
are lost, so every (re)connect asks the forwarder for a catch-up pass, and the forwarder also
polls. A psycopg autocommit connection outside any pool (a pooled one could be handed out, or
recycled, and silently drop the LISTEN). Liveness: `notifies(timeout=keepalive)` returns every
`keepalive_seconds`, then `SELECT 1` (itself bounded by the same timeout) proves the socket
still works; TCP keepalives back this up for a peer that vanished without a FIN/RST.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from trakr.db import redact
from trakr.julia import metrics
from trakr.runtime import Backoff

logger = logging.getLogger(__name__)

CHANNEL = "status_change"

# psycopg.Error covers a server-side termination (AdminShutdown) and a broken socket; OSError
# and TimeoutError a failed connect or a keepalive query that never came back.
LISTENER_ERRORS: tuple[type[BaseException], ...] = (psycopg.Error, OSError, TimeoutError)


def connection_kwargs(keepalive_seconds: float, application_name: str) -> dict[str, object]:
    """libpq options shared by julia's connections: a name for pg_stat_activity, TCP keepalives."""
    idle = max(1, int(keepalive_seconds))
    return {
        "application_name": application_name,
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }


class Listener:
    """LISTENs on `status_change`; calls `on_event()` per notification and `on_connected()` per connect."""

    def __init__(
        self,
        *,
        dsn: str,
        keepalive_seconds: float,
        backoff_max_seconds: float,
        on_event: Callable[[], None],
        on_connected: Callable[[], None],
    ) -> None:
        self.dsn = dsn
        self.keepalive_seconds = keepalive_seconds
        self.backoff = Backoff(max_seconds=backoff_max_seconds)
        self.on_event = on_event
        self.on_connected = on_connected
        self.connections = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set (checked every keepalive period); reconnects with backoff."""
        while not stop.is_set():
            try:
                await self._listen(stop)
            except LISTENER_ERRORS as exc:
                logger.warning(
                    "LISTEN connection lost: %s",
                    exc,
                    extra={"event": "listener_lost", "error": type(exc).__name__},
                )
                if not await self.backoff.wait(stop, what="julia LISTEN connection"):
                    return

    async def _listen(self, stop: asyncio.Event) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self.dsn,
            autocommit=True,
            **connection_kwargs(self.keepalive_seconds, "trakr-julia-listen"),  # type: ignore[arg-type]
        )
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.connections += 1
            if self.connections > 1:
                metrics.LISTENER_RECONNECTS.inc()
            logger.info(
                "listening on %s (%s)",
                CHANNEL,
                redact(self.dsn),
                extra={"event": "listening", "connections": self.connections},
            )
            self.backoff.reset()
            # Only now: a change committed before LISTEN took effect is found by this catch-up.
            self.on_connected()
            while not stop.is_set():
                async for _ in conn.notifies(timeout=self.keepalive_seconds):
                    metrics.EVENTS_RECEIVED.inc()
                    self.on_event()
                await asyncio.wait_for(conn.execute("SELECT 1"), timeout=self.keepalive_seconds)
