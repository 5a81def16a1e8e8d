"""`trakr up`: migrate, then run every process of the pipeline on this host until stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from trakr.errors import TrakrError
from trakr.migrate import migrate
from trakr.settings import Settings
from trakr.up.config import load_scrapers
from trakr.up.plan import PHASE_INFRA, ProcessSpec, build_plan, script, shared_env
from trakr.up.supervisor import STATE_KEY, Sink, Supervisor

logger = logging.getLogger(__name__)

EMULATOR_PORT = 9190
EMULATOR_KIND = "fcm-emulator"


def stdout_sink(line: str) -> None:
    """Relay one child line to our stdout (one write per line keeps lines whole)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def install_signals(stop: asyncio.Event, supervisor: Supervisor) -> None:
    """First SIGINT/SIGTERM: stop cleanly. A second one: SIGKILL every child now."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            logger.warning("second %s: killing every process", name, extra={"event": "forced_stop"})
            supervisor.kill_all()
            return
        logger.info("%s received: stopping every process", name, extra={"event": "stopping"})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def emulator_spec(*, port: int, credentials: Path, env: dict[str, str]) -> ProcessSpec:
    """trakr-fcm-emulator writing a throw-away service account that hermes then uses."""
    return ProcessSpec(
        name=EMULATOR_KIND,
        argv=(
            script("trakr-fcm-emulator"),
            "--port",
            str(port),
            "--credentials-out",
            str(credentials),
        ),
        metrics_port=None,
        env=env,
        stop_phase=PHASE_INFRA,
        kind=EMULATOR_KIND,
    )


def emulator_env(*, port: int, credentials: Path) -> dict[str, str]:
    """What hermes needs to send to the emulator instead of Google."""
    return {"TRAKR_FCM_URL": f"http://127.0.0.1:{port}", "TRAKR_FCM_CREDENTIALS": str(credentials)}


async def wait_for_emulator(*, url: str, credentials: Path, timeout_seconds: float = 30.0) -> None:
    """Until the emulator answers /healthz and has written its credentials; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_seconds
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if await asyncio.to_thread(credentials.exists):
                try:
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"FCM emulator at {url} not ready after {timeout_seconds:.0f}s")


async def start_plan(supervisor: Supervisor) -> None:
    """Start the emulator first (hermes needs its credentials file at start), then the rest."""
    emulator = next((c for c in supervisor.children if c.spec.kind == EMULATOR_KIND), None)
    if emulator is not None:
        supervisor.start(only=lambda spec: spec.kind == EMULATOR_KIND)
        url = emulator.spec.env["TRAKR_FCM_URL"]
        await wait_for_emulator(
            url=url, credentials=Path(emulator.spec.env["TRAKR_FCM_CREDENTIALS"])
        )
    supervisor.start(only=lambda spec: spec.kind != EMULATOR_KIND)


async def run_up(
    settings: Settings,
    *,
    scrapers_file: Path | None,
    port_offset: int,
    config_file: str | None,
    with_emulator: bool = False,
    sink: Sink = stdout_sink,
    stop: asyncio.Event | None = None,
) -> int:
    """Migrate, start everything, relay logs until SIGINT/SIGTERM (or `stop`); 0 after a clean stop."""
    scrapers = load_scrapers(scrapers_file)
    extra_env = shared_env(settings)
    workdir: tempfile.TemporaryDirectory[str] | None = None
    emulator: list[ProcessSpec] = []
    if with_emulator:
        workdir = tempfile.TemporaryDirectory(prefix="trakr-up-")
        port = EMULATOR_PORT + port_offset
        credentials = Path(workdir.name) / "fcm-service-account.json"
        extra_env |= emulator_env(port=port, credentials=credentials)
        emulator = [emulator_spec(port=port, credentials=credentials, env=extra_env)]
    elif settings.fcm_credentials is None and not settings.hermes_dry_run:
        logger.warning(
            "no FCM credentials (TRAKR_FCM_CREDENTIALS): hermes will not start; "
            "use --fcm-emulator for a local emulator",
            extra={"event": "no_fcm_credentials"},
        )
    plan = emulator + build_plan(
        scrapers, port_offset=port_offset, config_file=config_file, extra_env=extra_env
    )
    try:
        await asyncio.to_thread(migrate, settings.postgres_dsn)
    except TrakrError as exc:
        logger.error("migration failed: %s", exc, extra={"event": "migrate_failed"})
        return 1
    logger.info(
        "starting %d processes",
        len(plan),
        extra={"event": "starting", "processes": [p.name for p in plan]},
    )
    stop = stop or asyncio.Event()
    supervisor = Supervisor(
        plan,
        sink=sink,
        grace_seconds=settings.shutdown_grace_seconds + 5,
        base_env=dict(os.environ),
    )
    install_signals(stop, supervisor)
    redis = aioredis.Redis.from_url(settings.redis_url)
    publisher = asyncio.create_task(supervisor.publish_state(redis, settings.key(STATE_KEY)))
    try:
        await start_plan(supervisor)
        await stop.wait()
    except TimeoutError as exc:
        logger.error("%s", exc, extra={"event": "start_failed"})
        return 1
    finally:
        await supervisor.shutdown()
        await publisher
        await redis.aclose()
        if workdir is not None:
            workdir.cleanup()
    return 0
