"""The demo's generated files: its scrapers file and its Prometheus config."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from trakr.up.config import parse_scrapers
from trakr.up.demo import demo_scrapers_toml, prometheus_config
from trakr.up.plan import build_plan


def test_demo_runs_two_sim_replicas_and_real_rutgers_data(tmp_path: Path) -> None:
    sim, rutgers = parse_scrapers(demo_scrapers_toml(tmp_path))
    assert (sim.name, sim.replicas, sim.interval_seconds) == ("sim", 2, 5)
    assert "--flapping" in sim.command
    assert rutgers.name == "rutgers-nb" and rutgers.input_format == "protobuf"
    script = rutgers.command[-1]
    assert (
        "trakr-scrape-rutgers" in script
        and str(tmp_path / "rutgers_2026spring_NB_courses") in script
    )
    assert (
        "openSections_2025-11-15T200031Z" in script and "openSections_2025-11-15T202526Z" in script
    )
    (only_sim,) = parse_scrapers(demo_scrapers_toml(None))
    assert only_sim.name == "sim"


def test_prometheus_config_scrapes_every_process(tmp_path: Path) -> None:
    plan = build_plan(parse_scrapers(demo_scrapers_toml(tmp_path)), port_offset=5)
    config = json.loads(prometheus_config(plan, rules=[tmp_path / "missing.yml"]))
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {
        "ein": ["127.0.0.1:9107"],
        "julia": ["127.0.0.1:9108"],
        "hermes": ["127.0.0.1:9109"],
        "spike": ["127.0.0.1:9881"],
        "jet": ["127.0.0.1:9116", "127.0.0.1:9117", "127.0.0.1:9118"],
    }
    assert config["rule_files"] == []


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_prometheus_config_is_valid_with_the_alert_rules(tmp_path: Path) -> None:
    rules = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
    plan = build_plan(parse_scrapers(demo_scrapers_toml(None)))
    (tmp_path / "prometheus.yml").write_text(prometheus_config(plan, rules=[rules]))
    result = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
