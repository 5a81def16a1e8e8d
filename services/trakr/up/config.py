"""The scrapers file of `trakr up`: which jets to run, how many replicas, how often (pure).

```toml
[[scraper]]
name = "rutgers-nb"             # jet --scraper-name; replicas of one name share the interval
replicas = 2                    # default 1
interval = "60s"                # "500ms", "5s", "2m", "1h" or a number of seconds
command = ["trakr-scrape-rutgers", "--courses", "data/courses.json", "--open-sections", "data/open.json"]
input_format = "json"           # optional: what the scraper prints (json | protobuf)
timeout = "30s"                 # optional: jet's --timeout
env = { RUTGERS_CAMPUS = "NB" } # optional: extra environment for this jet and its scraper
```

Relative paths in `command` are relative to the scrapers file's directory: each jet runs
there, so a file and the data next to it move together.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trakr.errors import ConfigError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_KEYS = {"name", "replicas", "interval", "command", "input_format", "timeout", "env"}

# Without a scrapers file `trakr up` runs the simulated registrar, so it shows something at once.
DEFAULT_SCRAPERS_TOML = """
[[scraper]]
name = "sim"
replicas = 1
interval = "10s"
command = ["trakr-scrape-sim", "--sections", "200", "--changes", "5", "--flapping", "2", "--tick-seconds", "10"]
"""


@dataclass(frozen=True)
class ScraperSpec:
    """One configured scraper: run by `replicas` jets under one --scraper-name."""

    name: str
    command: tuple[str, ...]
    interval_seconds: float
    replicas: int = 1
    input_format: str | None = None
    timeout_seconds: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None


def parse_duration(value: object, *, what: str) -> float:
    """Seconds from "500ms", "5s", "2m", "1h" or a bare number; ConfigError if not positive."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration like '60s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(
                f"{what}: expected a duration like '60s', '500ms' or '2m', got {value!r}"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{what}: must be positive, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The jet flag form of a duration: whole seconds as "5s", anything finer in milliseconds."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def parse_scrapers(
    text: str, *, source: str = "scrapers file", workdir: Path | None = None
) -> list[ScraperSpec]:
    """Parse and validate a scrapers file's text; ConfigError names the entry and the problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from exc
    unknown_top = set(document) - {"scraper"}
    if unknown_top:
        raise ConfigError(
            f"{source}: unknown top-level keys {sorted(unknown_top)} (expected [[scraper]])"
        )
    entries = document.get("scraper", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: needs at least one [[scraper]] table")
    specs = [
        _scraper(entry, index=i, source=source, workdir=workdir) for i, entry in enumerate(entries)
    ]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(
            f"{source}: scraper names must be unique, repeated: {', '.join(duplicates)}"
        )
    return specs


def load_scrapers(path: Path | None) -> list[ScraperSpec]:
    """The scrapers of a file, or the simulated registrar when `path` is None."""
    if path is None:
        return parse_scrapers(DEFAULT_SCRAPERS_TOML, source="built-in scrapers")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read scrapers file {path}: {exc.strerror}") from exc
    return parse_scrapers(text, source=str(path), workdir=path.resolve().parent)


def _scraper(entry: Any, *, index: int, source: str, workdir: Path | None) -> ScraperSpec:
    where = f"{source}: scraper #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"{where}: 'name' must be lowercase letters, digits, '-', '_' or '.', got {name!r}"
        )
    where = f"{source}: scraper {name!r}"
    command = entry.get("command")
    if (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) and part for part in command)
    ):
        raise ConfigError(f"{where}: 'command' must be a non-empty list of strings")
    replicas = entry.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 32:
        raise ConfigError(f"{where}: 'replicas' must be an integer from 1 to 32, got {replicas!r}")
    if "interval" not in entry:
        raise ConfigError(f"{where}: 'interval' is required (e.g. interval = \"60s\")")
    interval = parse_duration(entry["interval"], what=f"{where}: interval")
    timeout = (
        parse_duration(entry["timeout"], what=f"{where}: timeout") if "timeout" in entry else None
    )
    input_format = entry.get("input_format")
    if input_format not in (None, "json", "protobuf"):
        raise ConfigError(
            f"{where}: 'input_format' must be 'json' or 'protobuf', got {input_format!r}"
        )
    env = entry.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"{where}: 'env' must be a table of strings")
    return ScraperSpec(
        name=name,
        command=tuple(command),
        interval_seconds=interval,
        replicas=replicas,
        input_format=input_format,
        timeout_seconds=timeout,
        env=dict(env),
        workdir=workdir,
    )
