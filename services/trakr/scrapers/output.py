"""What the scraper command lines share: help formatting, writing the payload, one-line errors.

Scrapers deliberately avoid trakr.cli/trakr.settings: those import pydantic (~0.4 s), and jet
starts a scraper process on every interval.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the description's line breaks (as trakr.cli.HelpFormatter)."""


def write_output(payload: bytes) -> None:
    """Write to stdout; a reader that went away (`| head`) is not an error worth a traceback."""
    try:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        fail("stdout closed before the output was written")


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 1."""
    first_line = message.splitlines()[0] if message.strip() else "failed"
    sys.stderr.write(f"error: {first_line}\n")
    raise SystemExit(1)
