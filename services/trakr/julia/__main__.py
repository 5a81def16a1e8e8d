"""trakr-julia: turn outbox rows into notifications on the notifications stream, collapsing flaps."""

from __future__ import annotations

import os
import sys

from trakr.cli import EXIT_USAGE, fail, load_settings, make_parser, run_service
from trakr.julia.collapse import parse_collapse
from trakr.metrics import start_metrics_server
from trakr.runtime import install_stop_signals
from trakr.settings import Settings

DEFAULT_METRICS_PORT = 9103

DESCRIPTION = """\
Turn section status changes into notifications.

PostgreSQL's trigger writes one outbox row (table notification) per section status change and
NOTIFYs channel status_change. julia LISTENs on a dedicated connection, and on every event, on
start, after every reconnect and every TRAKR_JULIA_POLL_SECONDS it forwards the outbox rows still
new to the Redis stream <namespace>:notifications (consumed by hermes), marking them queued.
Each row is forwarded once, across crashes and with several julias running.

Flapping is collapsed per university (TRAKR_COLLAPSE, e.g. 'rutgers=240s,default=0s'; a key
covers the university of that topic name and those named key-*): the first change of a section
goes out at once, later changes inside the window are held, and when it closes the latest
status goes out only if it differs from the last one sent.

Settings: TRAKR_COLLAPSE, TRAKR_JULIA_KEEPALIVE_SECONDS (LISTEN liveness check),
TRAKR_JULIA_POLL_SECONDS (fallback poll), TRAKR_JULIA_BATCH_SIZE (topics per transaction),
TRAKR_JULIA_STREAM_MAXLEN (approximate stream cap).
"""

# Test hook: exit abruptly after the XADD and before the commit, to prove the crash window safe.
CRASH_AFTER_XADD_ENV = "TRAKR_TEST_JULIA_EXIT_AFTER_XADD"


def main(argv: list[str] | None = None) -> None:
    parser = make_parser("trakr-julia", DESCRIPTION, metrics_port=DEFAULT_METRICS_PORT)
    args = parser.parse_args(argv)
    settings = load_settings(args)
    try:
        policy = parse_collapse(settings.collapse)
    except ValueError as exc:
        fail(f"invalid configuration: collapse (TRAKR_COLLAPSE): {exc}", code=EXIT_USAGE)

    async def serve(settings: Settings) -> int:
        from trakr.julia.service import run

        stop = install_stop_signals()
        start_metrics_server(settings.metrics_port, default_port=DEFAULT_METRICS_PORT)
        kwargs = {}
        if os.environ.get(CRASH_AFTER_XADD_ENV):
            kwargs["after_xadd"] = lambda ids: os._exit(70)
        return await run(settings, policy, stop, **kwargs)

    sys.exit(run_service("julia", settings, serve))


if __name__ == "__main__":
    main()
