"""trakr-jet: run a scraper executable, validate its output, queue it on the scrapes stream."""

from __future__ import annotations

import argparse
import re
import shutil
import sys

from trakr.cli import EXIT_USAGE, fail, load_settings, make_parser, run_service
from trakr.jet.service import DEFAULT_METRICS_PORT, run

DESCRIPTION = """\
Run a scraper executable (any language; it prints one University on stdout and exits 0),
check its output, and queue it on the Redis stream <namespace>:scrapes for ein.

Without --daemon: scrape once; exit 0 if the scrape was queued (or skipped because it is
identical to the last queued one), 1 with a one-line reason on stderr if it was rejected.
With --daemon INTERVAL: scrape forever. Replicas with the same --scraper-name share the
interval: replica i of N (found through <namespace>:jet:<name>:members) runs at wall-clock
times i*INTERVAL/N past each multiple of INTERVAL.

More settings (environment or -c file): TRAKR_JET_MAX_OUTPUT_BYTES (64 MiB),
TRAKR_JET_SKIP_UNCHANGED (true), TRAKR_JET_STREAM_MAXLEN (1000), TRAKR_JET_HEARTBEAT_SECONDS
(interval/4 within 1..5 s).

example:
  trakr-jet --scraper-name rutgers-nb --daemon 60s --timeout 30s -- \\
      trakr-scrape-rutgers --courses courses.json --open-sections open.json
"""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SCRAPER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_duration(text: str) -> float:
    """'500ms', '30s', '1m', '2h' or a bare number of seconds -> seconds (> 0)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (examples: 500ms, 30s, 1m)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return seconds


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("trakr-jet", DESCRIPTION, metrics_port=DEFAULT_METRICS_PORT)
    parser.add_argument(
        "--scraper-name",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="name of this scraper; replicas with the same name share the interval (TRAKR_JET_SCRAPER_NAME)",
    )
    parser.add_argument(
        "--input-format",
        default=argparse.SUPPRESS,
        choices=["json", "protobuf"],
        help="what the scraper prints (TRAKR_JET_INPUT_FORMAT; default json)",
    )
    parser.add_argument(
        "--output-format",
        default=argparse.SUPPRESS,
        choices=["json", "protobuf"],
        help="encoding queued on the stream (TRAKR_JET_OUTPUT_FORMAT; default protobuf)",
    )
    parser.add_argument(
        "--daemon",
        default=argparse.SUPPRESS,
        metavar="INTERVAL",
        type=_duration_arg,
        help="scrape every INTERVAL (e.g. 60s, 1m) instead of once (TRAKR_JET_DAEMON_INTERVAL_SECONDS)",
    )
    parser.add_argument(
        "--daemon-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="also write each queued scrape to DIR, atomically (TRAKR_JET_DAEMON_DIR)",
    )
    parser.add_argument(
        "--timeout",
        default=argparse.SUPPRESS,
        metavar="DURATION",
        type=_duration_arg,
        help="kill the scraper (its whole process group) after DURATION (TRAKR_JET_TIMEOUT_SECONDS; default 30s)",
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- EXECUTABLE [ARGS ...]",
        help="the scraper and its arguments, run without a shell",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    settings = load_settings(
        args,
        jet_scraper_name=getattr(args, "scraper_name", None),
        jet_input_format=getattr(args, "input_format", None),
        jet_output_format=getattr(args, "output_format", None),
        jet_daemon_interval_seconds=getattr(args, "daemon", None),
        jet_daemon_dir=getattr(args, "daemon_dir", None),
        jet_timeout_seconds=getattr(args, "timeout", None),
    )
    if not settings.jet_scraper_name:
        fail("--scraper-name (or TRAKR_JET_SCRAPER_NAME) is required", code=EXIT_USAGE)
    if not _SCRAPER_NAME.match(settings.jet_scraper_name):
        fail(
            f"scraper name {settings.jet_scraper_name!r} may only contain letters, digits, '_', '.', '-'",
            code=EXIT_USAGE,
        )
    if not command:
        fail("no scraper given: trakr-jet [options] -- EXECUTABLE [ARGS ...]", code=EXIT_USAGE)
    if shutil.which(command[0]) is None:
        fail(f"scraper executable not found or not executable: {command[0]}", code=EXIT_USAGE)
    sys.exit(run_service("jet", settings, lambda s: run(s, command)))


if __name__ == "__main__":
    main()
