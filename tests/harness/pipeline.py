"""The whole trakr pipeline as separate child processes, each killable on its own.

Started directly (not through `trakr up`) so a test can SIGKILL one process and restart it
while the rest keep running. Every process gets the shared TRAKR_* settings, a free metrics
port, short claim-idle times (redelivery after a kill within seconds, not the production
minute) and a short backoff cap (reconnects right after a server comes back).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.processes import ManagedProcess, Watcher
from harness.servers import free_port, wait_for_port

PIPELINE = ("ein", "julia", "hermes", "spike")


def script(name: str) -> str:
    """A console script of this installation (next to the interpreter running the harness)."""
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.exists() else name


@dataclass
class PipelineConfig:
    postgres_dsn: str
    redis_url: str
    namespace: str
    root: Path  # logs and the emulator's credentials go here
    scraper: Sequence[str]  # the scraper command jet runs
    scraper_name: str = "sim"
    jet_replicas: int = 2
    jet_interval: str = "1s"
    claim_idle_seconds: float = 2.0
    backoff_max_seconds: float = 1.0
    stream_maxlen: int = 100_000
    jet_args: Sequence[str] = ()  # extra jet flags, e.g. ("--input-format", "protobuf")
    extra_env: dict[str, str] = field(default_factory=dict)


class Pipeline:
    """fcm-emulator, ein, julia, hermes, spike and N jet replicas."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.emulator_port = free_port()
        self.credentials = config.root / "fcm-credentials.json"
        self.spike_port = free_port()
        self.metrics_ports: dict[str, int] = {}
        self.processes: dict[str, ManagedProcess] = {}
        self.watcher: Watcher | None = None
        self._build()

    # --- construction -------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        c = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        env.update(
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            TRAKR_POSTGRES_DSN=c.postgres_dsn,
            TRAKR_REDIS_URL=c.redis_url,
            TRAKR_NAMESPACE=c.namespace,
            TRAKR_LOG_LEVEL="INFO",
            TRAKR_BACKOFF_MAX_SECONDS=str(c.backoff_max_seconds),
            TRAKR_SHUTDOWN_GRACE_SECONDS="5",
            TRAKR_EIN_CLAIM_IDLE_SECONDS=str(c.claim_idle_seconds),
            TRAKR_HERMES_CLAIM_IDLE_SECONDS=str(c.claim_idle_seconds),
            TRAKR_JET_STREAM_MAXLEN=str(c.stream_maxlen),
            TRAKR_FCM_URL=f"http://127.0.0.1:{self.emulator_port}",
            TRAKR_FCM_CREDENTIALS=str(self.credentials),
            PYTHONUNBUFFERED="1",
        )
        env.update(c.extra_env)
        return env

    def _add(self, name: str, argv: list[str], *, kind: str, env: dict[str, str]) -> None:
        self.processes[name] = ManagedProcess(
            name=name,
            argv=argv,
            env=env,
            log_path=self.config.root / "logs" / f"{name}.log",
            kind=kind,
        )

    def _build(self) -> None:
        c = self.config
        base = self.base_env()
        self._add(
            "fcm-emulator",
            [script("trakr-fcm-emulator"), "--port", str(self.emulator_port),
             "--credentials-out", str(self.credentials)],
            kind="fcm-emulator", env=base,
        )  # fmt: skip
        for name in ("ein", "julia", "hermes"):
            port = free_port()
            self.metrics_ports[name] = port
            self._add(name, [script(f"trakr-{name}")], kind=name,
                      env={**base, "TRAKR_METRICS_PORT": str(port)})  # fmt: skip
        self.metrics_ports["spike"] = self.spike_port
        spike_env = {**base, "TRAKR_SPIKE_PORT": str(self.spike_port)}
        self._add(
            "spike",
            [script("trakr-spike"), "-p", str(self.spike_port)],
            kind="spike",
            env=spike_env,
        )
        for replica in range(1, c.jet_replicas + 1):
            port = free_port()
            name = f"jet{replica}"
            self.metrics_ports[name] = port
            argv = [script("trakr-jet"), "--scraper-name", c.scraper_name, "--daemon", c.jet_interval,
                    "--timeout", "20s", *c.jet_args, "--", *c.scraper]  # fmt: skip
            self._add(name, argv, kind="jet", env={**base, "TRAKR_METRICS_PORT": str(port)})

    # --- lifecycle ----------------------------------------------------------------------------

    def migrate(self) -> None:
        result = subprocess.run(
            [script("trakr"), "migrate"], env=self.base_env(), capture_output=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"trakr migrate failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
            )

    def start(self, *, jets: bool = True, timeout_seconds: float = 60.0) -> None:
        """Migrate, start everything, wait until each process serves its metrics port."""
        self.migrate()
        emulator = self.processes["fcm-emulator"]
        emulator.start()
        wait_for_port(self.emulator_port, timeout_seconds=timeout_seconds, proc=emulator.proc)
        for name in PIPELINE:
            self.processes[name].start()
        for name in PIPELINE:
            self.wait_ready(name, timeout_seconds=timeout_seconds)
        if jets:
            self.start_jets(timeout_seconds=timeout_seconds)
        self.watcher = Watcher(list(self.processes.values()))
        self.watcher.start()

    def start_jets(self, *, timeout_seconds: float = 60.0) -> None:
        for name in self.jet_names():
            self.processes[name].start()
        for name in self.jet_names():
            self.wait_ready(name, timeout_seconds=timeout_seconds)

    def jet_names(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.kind == "jet"]

    def wait_ready(self, name: str, *, timeout_seconds: float = 60.0) -> None:
        process = self.processes[name]
        try:
            wait_for_port(
                self.metrics_ports[name], timeout_seconds=timeout_seconds, proc=process.proc
            )
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(
                f"{name} did not come up: {exc}\n--- log tail:\n{process.tail(30)}"
            ) from exc

    def stop_jets(self) -> None:
        for name in self.jet_names():
            self.processes[name].stop()

    def stop(self) -> dict[str, int | None]:
        """SIGTERM everything, producers first; exit code per process."""
        if self.watcher is not None:
            self.watcher.stop()
        codes: dict[str, int | None] = {}
        order = [*self.jet_names(), *PIPELINE, "fcm-emulator"]
        for name in order:
            codes[name] = self.processes[name].stop()
        return codes

    # --- observation --------------------------------------------------------------------------

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def emulator_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.emulator_port}{path}"

    def iter_messages(self, since: int = 0) -> Iterator[dict]:
        """Every message the emulator accepted with seq > since, oldest first."""
        with httpx.Client(timeout=30) as client:
            while True:
                page = client.get(
                    self.emulator_url("/messages"), params={"since": since, "limit": 5000}
                ).json()
                yield from page["messages"]
                if not page["messages"]:
                    return
                since = page["last_seq"]

    def spike_get(self, path: str, **kwargs) -> httpx.Response:
        with httpx.Client(timeout=10) as client:
            return client.get(f"http://127.0.0.1:{self.spike_port}{path}", **kwargs)


@contextlib.contextmanager
def running(pipeline: Pipeline, *, jets: bool = True) -> Iterator[Pipeline]:
    try:
        pipeline.start(jets=jets)
        yield pipeline
    finally:
        pipeline.stop()


def wait_until(predicate, *, timeout_seconds: float, interval_seconds: float = 0.2) -> bool:
    """Poll predicate() until it is true (True) or the timeout passes (False)."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_seconds)
    return bool(predicate())
