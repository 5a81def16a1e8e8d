"""trakr-spike: the read API the apps use (FastAPI on uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from trakr.cli import EXIT_FAILED, load_settings, make_parser, run_service
from trakr.runtime import install_stop_signals
from trakr.settings import Settings
from trakr.spike.app import create_app

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Serve trakr's catalogue over HTTP: universities, subjects, courses (with sections, meetings,
instructors), section status history, course hotness, and subscription reports from the apps.
JSON by default, protobuf with `Accept: application/x-protobuf`. Responses are cached in Redis
(TTL TRAKR_SPIKE_CACHE_TTL_SECONDS, invalidated when ein publishes a changed university);
Redis being down only disables the cache. /metrics, /healthz, /readyz and /docs are on the same port.
"""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling.

    uvicorn re-raises a captured SIGTERM after its graceful shutdown, so the process would die
    of the signal (exit -15) instead of exiting 0; trakr's stop event drives the shutdown instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> int | None:
    """Run the API until SIGTERM/SIGINT; returns non-zero if it could not start."""
    stop = install_stop_signals()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.spike_host,
        port=settings.spike_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        server_header=False,
    )
    server = _Server(config)

    async def stop_on_signal() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_on_signal(), name="stop-signal")
    try:
        await server.serve()
    finally:
        stopper.cancel()
    if not server.started:
        logger.error("spike could not start on %s:%d", settings.spike_host, settings.spike_port)
        return EXIT_FAILED
    return None


def main() -> None:
    parser = make_parser("trakr-spike", DESCRIPTION)
    parser.add_argument(
        "-p", "--port", type=int, default=None, help="HTTP port (TRAKR_SPIKE_PORT; default 9876)"
    )
    parser.add_argument(
        "--host", default=None, help="address to bind (TRAKR_SPIKE_HOST; default 127.0.0.1)"
    )
    args = parser.parse_args()
    settings = load_settings(args, spike_port=args.port, spike_host=args.host)
    raise SystemExit(run_service("spike", settings, serve))


if __name__ == "__main__":
    main()
