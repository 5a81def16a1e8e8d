"""The `up`, `status` and `demo` subcommands of `trakr`: argument handling around the real work."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from trakr.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail, load_settings
from trakr.errors import ConfigError
from trakr.logs import configure_logging


class PrefixFormatter(logging.Formatter):
    """Wraps the JSON formatter so the supervisor's own lines read `[up] {…}` like its children's."""

    def __init__(self, inner: logging.Formatter, prefix: str) -> None:
        super().__init__()
        self.inner = inner
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        return self.prefix + self.inner.format(record)


def up(args: argparse.Namespace) -> int:
    from trakr.up.run import run_up

    settings = load_settings(args)
    configure_logging("trakr-up", settings.log_level)
    for handler in logging.getLogger().handlers:
        if handler.formatter is not None:
            handler.setFormatter(PrefixFormatter(handler.formatter, "[up] "))
    scrapers = args.scrapers or settings.up_scrapers_file
    try:
        return asyncio.run(
            run_up(
                settings,
                scrapers_file=Path(scrapers) if scrapers else None,
                port_offset=args.port_offset,
                config_file=getattr(args, "config", None),
                with_emulator=args.fcm_emulator,
            )
        )
    except ConfigError as exc:
        fail(str(exc), code=EXIT_USAGE)


def status(args: argparse.Namespace) -> int:
    from trakr.up.status import as_json, collect, render

    settings = load_settings(args)
    report = collect(settings)
    sys.stdout.write(as_json(report) + "\n" if args.json else render(report))
    return EXIT_OK if report.healthy else EXIT_FAILED


def demo(args: argparse.Namespace) -> int:
    from trakr.up.demo import run_demo

    settings = load_settings(args)
    if args.duration is not None and args.duration <= 0:
        fail("--duration must be positive", code=EXIT_USAGE)
    try:
        return asyncio.run(
            run_demo(
                settings,
                duration_seconds=args.duration,
                port_offset=args.port_offset,
                work_dir=Path(args.work_dir) if args.work_dir else None,
            )
        )
    except ConfigError as exc:
        fail(str(exc), code=EXIT_USAGE)
