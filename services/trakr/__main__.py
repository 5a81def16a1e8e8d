"""`trakr`: the umbrella command — migrate, up, demo, status."""

from __future__ import annotations

import argparse
import sys

from trakr.cli import EXIT_FAILED, EXIT_OK, HelpFormatter, fail, load_settings, make_parser
from trakr.db import redact
from trakr.errors import TrakrError
from trakr.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("trakr", "trakr: course-section alerts. Umbrella command for operators.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    migrate = commands.add_parser(
        "migrate",
        help="create the database if missing and apply new migrations (TRAKR_POSTGRES_DSN)",
        description="Create the database if missing and apply new migrations from sql/migrations. "
        "Safe to run twice and concurrently.",
    )
    migrate.add_argument("--dsn", help="PostgreSQL DSN (TRAKR_POSTGRES_DSN)")
    up = commands.add_parser(
        "up",
        help="migrate, then run every process on this host (ein, julia, hermes, spike, jets)",
        description="Migrate the database, then run ein, julia, hermes, spike and one jet per "
        "configured scraper replica as child processes against the configured PostgreSQL and "
        "Redis. Their JSON logs are relayed to stdout prefixed with the process name; a process "
        "that dies is restarted with backoff; Ctrl-C or SIGTERM stops them all cleanly (a second "
        "one kills them). Metrics ports: ein 9102, julia 9103, hermes 9104, spike 9876, jet "
        "replicas 9111, 9112, … (all shifted by --port-offset).",
        formatter_class=HelpFormatter,
    )
    up.add_argument(
        "--scrapers",
        metavar="FILE",
        help="scrapers TOML file ([[scraper]] name, replicas, interval, command); "
        "default: the simulated registrar (TRAKR_UP_SCRAPERS_FILE)",
    )
    up.add_argument(
        "--fcm-emulator",
        action="store_true",
        help="also run trakr-fcm-emulator on 9190 (+offset) and point hermes at it (local development)",
    )
    up.add_argument(
        "--port-offset", type=int, default=0, help="add this to every port, to run a second stack"
    )
    status = commands.add_parser(
        "status",
        help="one screen with every process, stream backlogs, last scrapes and recent pushes",
        description="Show what `trakr up` runs for this namespace (pid alive, /metrics reachable, "
        "restarts), stream backlogs (length, pending, lag of groups ein and hermes), the last scrape "
        "per university, notifications sent and FCM errors in the last hour, and the outbox by "
        "state. Exits 0 when everything is healthy, 1 otherwise.",
        formatter_class=HelpFormatter,
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on simulated and real Rutgers data, show the pushes",
        description="Recreate the trakr_demo database (namespace trakr_demo), start the FCM "
        "emulator, and run every process with a simulated registrar (two jet replicas every 5 s, "
        "some sections flapping) and the real Rutgers data. Prints one line per push the emulator "
        "receives until Ctrl-C, or for --duration seconds; then a summary. Exits 0 only if every "
        "change that was not collapsed reached the emulator. Starts Prometheus on :9090 too when "
        "the `prometheus` binary is installed. Process logs go to a file (printed at start).",
        formatter_class=HelpFormatter,
    )
    for sub in (up, status, demo):
        # SUPPRESS: an unset sub-command flag must not overwrite `trakr -c FILE up`'s value.
        sub.add_argument(
            "-c", "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML settings file"
        )
        sub.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log at DEBUG (TRAKR_LOG_LEVEL)",
        )
    demo.add_argument(
        "--duration", type=float, help="run this many seconds, then summarise and exit"
    )
    demo.add_argument("--port-offset", type=int, default=0, help="add this to every port")
    demo.add_argument(
        "--work-dir", metavar="DIR", help="where logs and generated files go (default: a temp dir)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "migrate":
        settings = load_settings(args, postgres_dsn=args.dsn)
        configure_logging("trakr-migrate", settings.log_level)
        from trakr.migrate import migrate

        try:
            migrate(settings.postgres_dsn)
        except TrakrError as exc:
            fail(str(exc))
        sys.stderr.write(f"migrated {redact(settings.postgres_dsn)}\n")
        raise SystemExit(EXIT_OK)
    if args.command == "up":
        from trakr.up.command import up

        raise SystemExit(up(args))
    if args.command == "status":
        from trakr.up.command import status

        raise SystemExit(status(args))
    if args.command == "demo":
        from trakr.up.command import demo

        raise SystemExit(demo(args))
    fail(f"unknown command {args.command}", code=EXIT_FAILED + 1)


if __name__ == "__main__":
    main()
