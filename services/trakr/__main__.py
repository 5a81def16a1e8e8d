"""`trakr`: the umbrella command — migrate, up, demo, status."""

from __future__ import annotations

import argparse
import sys

from trakr.cli import EXIT_FAILED, EXIT_OK, fail, load_settings, make_parser
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
    for name, text in (
        ("up", "start every process on this host"),
        ("demo", "run the whole pipeline against simulated and real data"),
        ("status", "one screen with every process, backlogs and recent pushes"),
    ):
        commands.add_parser(name, help=f"{text} (not implemented yet)")
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
    fail(f"trakr {args.command} is not implemented yet", code=EXIT_FAILED + 1)


if __name__ == "__main__":
    main()
