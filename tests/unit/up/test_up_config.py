"""The scrapers file and the process plan of `trakr up` (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trakr.errors import ConfigError
from trakr.up.config import format_duration, load_scrapers, parse_duration, parse_scrapers
from trakr.up.plan import build_plan

GOOD = """
[[scraper]]
name = "rutgers-nb"
replicas = 2
interval = "60s"
timeout = "30s"
input_format = "protobuf"
command = ["trakr-scrape-rutgers", "--courses", "data/courses.json"]
env = { EXTRA = "1" }

[[scraper]]
name = "sim"
interval = "500ms"
command = ["trakr-scrape-sim"]
"""


def test_parses_every_field(tmp_path: Path) -> None:
    rutgers, sim = parse_scrapers(GOOD, workdir=tmp_path)
    assert rutgers.name == "rutgers-nb" and rutgers.replicas == 2 and rutgers.interval_seconds == 60
    assert rutgers.timeout_seconds == 30 and rutgers.input_format == "protobuf"
    assert rutgers.command == ("trakr-scrape-rutgers", "--courses", "data/courses.json")
    assert rutgers.env == {"EXTRA": "1"} and rutgers.workdir == tmp_path
    assert sim.replicas == 1 and sim.interval_seconds == 0.5 and sim.input_format is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense = [", "not valid TOML"),
        ("", "at least one [[scraper]]"),
        (
            '[[scraper]]\nname = "a"\ninterval = "5s"\ncommand = []',
            "'command' must be a non-empty list",
        ),
        ('[[scraper]]\nname = "a"\ncommand = ["x"]', "'interval' is required"),
        ('[[scraper]]\nname = "a"\ninterval = "soon"\ncommand = ["x"]', "expected a duration"),
        ('[[scraper]]\nname = "a"\ninterval = "0s"\ncommand = ["x"]', "must be positive"),
        (
            '[[scraper]]\nname = "a"\ninterval = "5s"\nreplicas = 0\ncommand = ["x"]',
            "'replicas' must be",
        ),
        (
            '[[scraper]]\nname = "a"\ninterval = "5s"\nreplicas = true\ncommand = ["x"]',
            "'replicas' must be",
        ),
        ('[[scraper]]\nname = "A b"\ninterval = "5s"\ncommand = ["x"]', "'name' must be lowercase"),
        (
            '[[scraper]]\nname = "a"\ninterval = "5s"\ncommand = ["x"]\ncolour = 1',
            "unknown keys ['colour']",
        ),
        (
            '[[scraper]]\nname = "a"\ninterval = "5s"\ncommand = ["x"]\ninput_format = "xml"',
            "'input_format'",
        ),
        ('[[scraper]]\nname = "a"\ninterval = "5s"\ncommand = ["x"]\n' * 2, "repeated: a"),
        ('[scrapers]\nname = "a"', "unknown top-level keys"),
    ],
)
def test_rejects_bad_files_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_scrapers(text, source="s.toml")


def test_durations() -> None:
    assert parse_duration("2m", what="x") == 120
    assert parse_duration("1.5h", what="x") == 5400
    assert parse_duration(7, what="x") == 7
    assert format_duration(5) == "5s" and format_duration(0.25) == "250ms"


def test_default_is_the_simulated_registrar_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    (sim,) = load_scrapers(None)
    assert sim.command[0] == "trakr-scrape-sim"
    with pytest.raises(ConfigError, match="cannot read scrapers file"):
        load_scrapers(tmp_path / "missing.toml")


def test_plan_gives_every_process_its_own_port(tmp_path: Path) -> None:
    plan = build_plan(
        parse_scrapers(GOOD, workdir=tmp_path), port_offset=100, config_file="trakr.toml"
    )
    ports = {spec.name: spec.metrics_port for spec in plan}
    assert ports == {
        "ein": 9202,
        "julia": 9203,
        "hermes": 9204,
        "spike": 9976,
        "jet:rutgers-nb#1": 9211,
        "jet:rutgers-nb#2": 9212,
        "jet:sim#1": 9213,
    }
    by_name = {spec.name: spec for spec in plan}
    jet = by_name["jet:rutgers-nb#2"]
    assert jet.argv[1:] == (
        "-c", "trakr.toml", "--scraper-name", "rutgers-nb", "--daemon", "60s", "--input-format", "protobuf",
        "--timeout", "30s", "--", "trakr-scrape-rutgers", "--courses", "data/courses.json",
    )  # fmt: skip
    assert (
        jet.env["TRAKR_METRICS_PORT"] == "9212" and jet.env["EXTRA"] == "1" and jet.cwd == tmp_path
    )
    assert by_name["jet:sim#1"].argv[-3:] == ("--daemon", "500ms", "--", "trakr-scrape-sim")[-3:]
    assert by_name["spike"].env["TRAKR_SPIKE_PORT"] == "9976"
    assert "TRAKR_METRICS_PORT" in by_name["spike"].unset_env
    assert by_name["ein"].env["TRAKR_METRICS_PORT"] == "9202"
    assert len(set(ports.values())) == len(ports)
    # producers stop first
    assert {spec.stop_phase for spec in plan if spec.kind == "jet"} == {0}
    assert {spec.stop_phase for spec in plan if spec.kind != "jet"} == {1}
