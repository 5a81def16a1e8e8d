"""What `trakr up` starts: one ProcessSpec per child, with its command, port and environment (pure).

Ports (each process gets its own, so one host runs them all; `--port-offset K` adds K to every
one so a second stack, or a test, can run beside the first):

| process | metrics | note |
|---|---|---|
| ein | 9102 | DESIGN default |
| julia | 9103 | DESIGN default |
| hermes | 9104 | DESIGN default |
| spike | 9876 | HTTP API and /metrics on one port |
| jet replicas | 9111, 9112, … | one per replica, in scrapers-file order (9101 stays free for a lone jet) |
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from trakr.settings import Settings
from trakr.up.config import ScraperSpec, format_duration

EIN_PORT = 9102
JULIA_PORT = 9103
HERMES_PORT = 9104
SPIKE_PORT = 9876
JET_FIRST_PORT = 9111

# Producers stop first so the consumers can drain what is already queued.
PHASE_PRODUCERS = 0
PHASE_PIPELINE = 1
PHASE_INFRA = 2


@dataclass(frozen=True)
class ProcessSpec:
    """One child process of the supervisor."""

    name: str
    argv: tuple[str, ...]
    metrics_port: int | None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    unset_env: tuple[str, ...] = ()
    stop_phase: int = PHASE_PIPELINE
    kind: str = ""

    @property
    def metrics_url(self) -> str | None:
        return (
            None if self.metrics_port is None else f"http://127.0.0.1:{self.metrics_port}/metrics"
        )


def script(name: str) -> str:
    """A console script of this installation: next to the running interpreter when it is there.

    `trakr up` is often started as .venv/bin/trakr without the venv on PATH; its siblings
    are the ones that match this code.
    """
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.exists() else name


def child_path() -> str:
    """PATH for children: the interpreter's bin directory first, so scrapers named bare resolve."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def shared_env(settings: Settings) -> dict[str, str]:
    """The settings every child must agree on, resolved once here (flags, env and -c file)."""
    return {
        "TRAKR_POSTGRES_DSN": settings.postgres_dsn,
        "TRAKR_REDIS_URL": settings.redis_url,
        "TRAKR_NAMESPACE": settings.namespace,
        "TRAKR_LOG_LEVEL": settings.log_level,
        "PATH": child_path(),
    }


def build_plan(
    scrapers: list[ScraperSpec],
    *,
    port_offset: int = 0,
    config_file: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> list[ProcessSpec]:
    """The pipeline's processes: ein, julia, hermes, spike, then every jet replica."""
    config_args = ("-c", config_file) if config_file else ()
    extra = dict(extra_env or {})

    def service(name: str, port: int) -> ProcessSpec:
        return ProcessSpec(
            name=name,
            argv=(script(f"trakr-{name}"), *config_args),
            metrics_port=port + port_offset,
            env={**extra, "TRAKR_METRICS_PORT": str(port + port_offset)},
            kind=name,
        )

    plan = [
        service("ein", EIN_PORT),
        service("julia", JULIA_PORT),
        service("hermes", HERMES_PORT),
        # spike serves /metrics on its HTTP port; an inherited TRAKR_METRICS_PORT would only
        # confuse it (a test's environment sets it to 0).
        ProcessSpec(
            name="spike",
            argv=(script("trakr-spike"), *config_args),
            metrics_port=SPIKE_PORT + port_offset,
            env={**extra, "TRAKR_SPIKE_PORT": str(SPIKE_PORT + port_offset)},
            unset_env=("TRAKR_METRICS_PORT",),
            kind="spike",
        ),
    ]
    port = JET_FIRST_PORT + port_offset
    for scraper in scrapers:
        for replica in range(1, scraper.replicas + 1):
            argv = [script("trakr-jet"), *config_args, "--scraper-name", scraper.name]
            argv += ["--daemon", format_duration(scraper.interval_seconds)]
            if scraper.input_format:
                argv += ["--input-format", scraper.input_format]
            if scraper.timeout_seconds:
                argv += ["--timeout", format_duration(scraper.timeout_seconds)]
            argv += ["--", *scraper.command]
            plan.append(
                ProcessSpec(
                    name=f"jet:{scraper.name}#{replica}",
                    argv=tuple(argv),
                    metrics_port=port,
                    env={**extra, **scraper.env, "TRAKR_METRICS_PORT": str(port)},
                    cwd=scraper.workdir,
                    stop_phase=PHASE_PRODUCERS,
                    kind="jet",
                )
            )
            port += 1
    return plan
