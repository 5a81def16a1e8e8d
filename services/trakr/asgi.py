"""Serving an ASGI app with uvicorn under trakr's own SIGTERM/SIGINT handling.

uvicorn installs its own signal handlers and, after a graceful shutdown, re-raises the signal it
caught, so the process dies of it (exit -15) instead of exiting 0. trakr's processes use
`trakr.runtime.install_stop_signals()` instead; its stop event ends the server here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_until_stopped(
    config: uvicorn.Config, stop: asyncio.Event, *, sockets: list[socket.socket] | None = None
) -> bool:
    """Serve until `stop` is set, then shut down gracefully; False if the server never started."""
    server = _Server(config)

    async def stop_on_signal() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_on_signal(), name="stop-signal")
    try:
        await server.serve(sockets=sockets)
    finally:
        stopper.cancel()
    return server.started
