"""trakr-jet's command line: durations and the scraper command after `--`."""

from __future__ import annotations

import pytest
from trakr.jet.__main__ import build_parser, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m", 60.0), ("500ms", 0.5), ("2h", 7200.0), ("1.5", 1.5), (" 3s ", 3.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "0s", "10 minutes", "1d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_command_after_double_dash_keeps_its_own_flags() -> None:
    args = build_parser().parse_args(
        ["--scraper-name", "rutgers", "--daemon", "1m", "--", "scrape", "--courses", "f.json", "-v"]
    )
    assert args.daemon == 60.0
    assert args.verbose is False
    assert [a for a in args.command if a != "--"] == ["scrape", "--courses", "f.json", "-v"]
