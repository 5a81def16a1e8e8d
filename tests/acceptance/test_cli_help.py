"""Every console script in pyproject.toml answers --help with exit 0 (and python -m works too)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent


def test_scripts_are_declared() -> None:
    assert {
        "trakr",
        "trakr-jet",
        "trakr-ein",
        "trakr-julia",
        "trakr-hermes",
        "trakr-spike",
    } <= SCRIPTS.keys()
    assert {"trakr-scrape-rutgers", "trakr-scrape-sim"} <= SCRIPTS.keys()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help(script: str) -> None:
    module = SCRIPTS[script].split(":")[0]
    # The installed script when there is one (what operators run), else the module entry point.
    command = [str(BIN / script)] if (BIN / script).exists() else [sys.executable, "-m", module]
    result = subprocess.run([*command, "--help"], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("usage:")
    assert script in out.splitlines()[0]
    assert len(out.splitlines()) > 3  # says what it does, not only the usage line


@pytest.mark.parametrize("script", ["trakr-scrape-rutgers", "trakr-scrape-sim"])
def test_python_m_works_for_the_scrapers(script: str) -> None:
    module = SCRIPTS[script].split(":")[0]
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
