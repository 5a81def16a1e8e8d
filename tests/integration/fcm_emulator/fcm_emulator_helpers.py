"""Start trakr-fcm-emulator as a real subprocess on a free port and talk to its control API.

A plain module (not conftest) so hermes' tests can import it too (their conftest puts this
directory on sys.path).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PROJECT_ID = "trakr-test"


def script(name: str) -> str:
    """A console script of this virtualenv."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


@dataclass
class Emulator:
    """A running emulator: its base URL, the credentials file it wrote, its control API."""

    url: str
    credentials: Path
    proc: subprocess.Popen[bytes]
    project_id: str = PROJECT_ID

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def reset(self) -> None:
        with self.client() as client:
            client.delete("/messages").raise_for_status()
            client.delete("/faults").raise_for_status()

    def faults(self, **config: Any) -> None:
        with self.client() as client:
            client.post("/faults", json=config).raise_for_status()

    def messages(self) -> list[dict[str, Any]]:
        """Every recorded message, oldest first (paging through ?since=)."""
        found: list[dict[str, Any]] = []
        since = 0
        with self.client() as client:
            while True:
                page = client.get("/messages", params={"since": since, "limit": 5000}).json()
                found.extend(page["messages"])
                if not page["messages"]:
                    return found
                since = page["last_seq"]

    def stats(self) -> dict[str, Any]:
        with self.client() as client:
            return dict(client.get("/stats").json())


@contextlib.contextmanager
def running_emulator(tmp_dir: Path, *, project_id: str = PROJECT_ID) -> Iterator[Emulator]:
    """`trakr-fcm-emulator --port 0 --credentials-out …`; the port is read from its start log line."""
    credentials = tmp_dir / "fcm-credentials.json"
    log = tmp_dir / "fcm-emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAKR_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                script("trakr-fcm-emulator"),
                "--port",
                "0",
                "--project-id",
                project_id,
                "--credentials-out",
                str(credentials),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = _wait_for_start(log, proc)
        yield Emulator(url=url, credentials=credentials, proc=proc, project_id=project_id)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_start(log: Path, proc: subprocess.Popen[bytes], timeout_seconds: float = 30.0) -> str:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited {proc.returncode}: {log.read_text()}")
        url = None
        for line in log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == "emulator_started":
                    url = record["url"]
        if url:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    return str(url)
        time.sleep(0.05)
    raise RuntimeError(f"emulator did not start: {log.read_text()}")
