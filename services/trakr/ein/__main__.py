"""trakr-ein: consume scrapes and write only what changed, one transaction per scrape."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from trakr.cli import EXIT_FAILED, EXIT_OK, load_settings, make_parser, run_service
from trakr.codec import ScrapeRejected
from trakr.db import ASYNCPG_CONNECTION_ERRORS, redact
from trakr.ein import service
from trakr.ein.ingest import ingest_payload
from trakr.errors import DatabaseUnavailable
from trakr.settings import Settings
from trakr.streams import REDIS_CONNECTION_ERRORS

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Consume scrapes from the <namespace>:scrapes Redis stream (consumer group "ein"), find what
changed by content hash, and write only that to PostgreSQL in one transaction per scrape.
Entries are acknowledged after the commit; rejected scrapes go to <namespace>:scrapes:dead.

  trakr-ein                       run the consumer (SIGTERM: finish the scrape in hand, exit 0)
  trakr-ein ingest FILE...        ingest scrape files directly, one summary line per file
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("trakr-ein", DESCRIPTION, metrics_port=service.DEFAULT_METRICS_PORT)
    _mode_flags(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="{ingest}")
    ingest = commands.add_parser(
        "ingest",
        help="ingest scrape files (JSON or protobuf University) and exit",
        description="Ingest each FILE in its own transaction and print one summary line per file. "
        "Exit status 1 if any file was rejected.",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE", type=Path)
    _mode_flags(ingest, suppress=True)
    return parser


def _mode_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # On the subcommand the defaults are suppressed so flags given before it still count.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-f",
        "--format",
        choices=("json", "protobuf"),
        default=default,
        help="payload format when a stream entry has no format field; for `ingest`, the files' "
        "format (default: by file extension, .json is JSON) (TRAKR_EIN_FORMAT)",
    )
    parser.add_argument(
        "-a",
        "--insert-all",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="write every row of every scrape, not only what changed: the naive baseline "
        "(TRAKR_EIN_INSERT_ALL)",
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings(
        args, ein_format=args.format, ein_insert_all=True if args.insert_all else None
    )
    if args.command == "ingest":
        sys.exit(
            run_service("ein", settings, lambda s: ingest_files(s, args.files, fmt=args.format))
        )
    sys.exit(
        run_service(
            "ein", settings, lambda s: service.run(s, fmt=s.ein_format, insert_all=s.ein_insert_all)
        )
    )


async def ingest_files(settings: Settings, files: Sequence[Path], *, fmt: str | None) -> int:
    """Ingest each file; print its summary line; return 1 if any was rejected or unreadable."""
    try:
        conn = await asyncpg.connect(settings.postgres_dsn, timeout=10)
    except ASYNCPG_CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {redact(settings.postgres_dsn)}: {exc}"
        ) from exc
    redis = aioredis.Redis.from_url(settings.redis_url)
    status = EXIT_OK
    try:
        for path in files:
            file_fmt = fmt or ("json" if path.suffix == ".json" else settings.ein_format)
            try:
                payload = await asyncio.to_thread(path.read_bytes)
                result = await ingest_payload(
                    conn,
                    payload,
                    file_fmt,
                    insert_all=settings.ein_insert_all,
                    max_delete_share=settings.ein_max_delete_share,
                )
            except OSError as exc:
                sys.stderr.write(f"{path}: cannot read: {exc.strerror}\n")
                status = EXIT_FAILED
                continue
            except ScrapeRejected as exc:
                sys.stderr.write(f"{path}: rejected ({exc.reason}): {exc}\n")
                status = EXIT_FAILED
                continue
            service.record_result(result)
            try:
                await service.publish_changed(redis, settings, result)
            except REDIS_CONNECTION_ERRORS as exc:
                logger.warning(
                    "could not publish the change: %s", exc, extra={"event": "publish_failed"}
                )
            sys.stdout.write(f"{path}: {result.summary()}\n")
            sys.stdout.flush()
    finally:
        await redis.aclose()
        await conn.close()
    return status


if __name__ == "__main__":
    main()
