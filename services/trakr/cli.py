"""What every command line shares: -c/--config, -v/--verbose, settings with readable errors."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from trakr.errors import ConfigError, TrakrError
from trakr.logs import configure_logging
from trakr.settings import Settings

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks."""


def make_parser(
    prog: str, description: str, *, metrics_port: int | None = None
) -> argparse.ArgumentParser:
    """A parser with the shared flags. Every flag's help names its TRAKR_* variable."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=HelpFormatter,
        epilog="Settings come from CLI flags, then TRAKR_* environment variables, then the -c TOML "
        "file (keys are the setting names, e.g. postgres_dsn), then defaults. "
        "Shared: TRAKR_POSTGRES_DSN, TRAKR_REDIS_URL, TRAKR_NAMESPACE, TRAKR_LOG_LEVEL.",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML settings file")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at DEBUG (TRAKR_LOG_LEVEL)"
    )
    if metrics_port is not None:
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help=f"Prometheus /metrics port, 0 disables it (TRAKR_METRICS_PORT; default {metrics_port})",
        )
    return parser


def load_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the parsed args; on a config error print one line and exit 2."""
    if getattr(args, "verbose", False):
        overrides["log_level"] = "DEBUG"
    if getattr(args, "metrics_port", None) is not None:
        overrides["metrics_port"] = args.metrics_port
    try:
        return Settings.load(getattr(args, "config", None), **overrides)
    except ConfigError as exc:
        fail(str(exc), code=EXIT_USAGE)


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    """Print one line on stderr and exit."""
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code)


def run_service(
    service: str,
    settings: Settings,
    main: Callable[[Settings], Coroutine[Any, Any, int | None]],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Configure logging, run `main(settings)` in a fresh event loop, map failures to exit codes.

    `loop_factory` picks another event loop (spike passes uvloop's, as uvicorn would).
    """
    configure_logging(service, settings.log_level)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(main(settings))
    except TrakrError as exc:
        logger.error("%s: %s", service, exc, extra={"event": "fatal"})
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    return EXIT_OK if result is None else result


def not_implemented(prog: str) -> NoReturn:
    """Entry point of a process that is not built yet."""
    parser = argparse.ArgumentParser(prog=prog, description=f"{prog}: not implemented yet.")
    parser.parse_args()
    fail(f"{prog} is not implemented yet", code=EXIT_USAGE)
