"""Child processes of the harness: start, SIGKILL, restart, and a restart policy like compose's.

Each process writes its JSON log lines to its own file. A watcher thread restarts a process
that exits without being told to (as `restart: unless-stopped` would) and records the exit, so
the suite can tell "reconnected with backoff" from "died and was restarted" and spot a crash
loop: several unexpected exits in a row.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Exit:
    """A process exit the harness did not ask for."""

    at: float
    code: int | None
    tail: str


@dataclass
class ManagedProcess:
    """One long-running child (a trakr process, the emulator)."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log_path: Path
    kind: str = ""
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    unexpected_exits: list[Exit] = field(default_factory=list)
    last_start: float = 0.0
    wanted: bool = False  # the watcher restarts it when it dies while wanted
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> None:
        with self.lock:
            self._spawn()

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"### harness: start #{self.starts + 1} of {self.name}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                list(self.argv),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.last_start = time.monotonic()
        self.wanted = True

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` and wait for the exit; the harness restarts it (restart()), not the watcher."""
        with self.lock:
            self.wanted = False
            if self.proc is None or self.proc.poll() is not None:
                return
            self.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                self.kills += 1
                # jet's scraper runs in a session of its own and outlives a SIGKILLed jet, as it
                # would in a container only until the container goes; it exits on its own.
            self.proc.wait()

    def restart(self) -> None:
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                return
            self._spawn()

    def stop(self, timeout_seconds: float = 20.0) -> int | None:
        """SIGTERM, wait for the graceful exit (SIGKILL after the timeout); the exit code."""
        with self.lock:
            self.wanted = False
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout_seconds)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    return None
            return self.proc.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - 8192))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self, *, now: float, restart_delay_seconds: float) -> bool:
        """Called by the watcher: record an unexpected exit and restart; True if it restarted."""
        with self.lock:
            if not self.wanted or self.proc is None or self.proc.poll() is None:
                return False
            code = self.proc.returncode
            if not self.unexpected_exits or self.unexpected_exits[-1].at < self.last_start:
                self.unexpected_exits.append(Exit(at=now, code=code, tail=self.tail()))
            # Back off like an orchestrator: more quick deaths, longer waits.
            recent = sum(1 for e in self.unexpected_exits if now - e.at < 30)
            if now - self.unexpected_exits[-1].at < min(restart_delay_seconds * recent, 10):
                return False
            self._spawn()
            return True

    def exits_since(self, since: float) -> int:
        return sum(1 for e in self.unexpected_exits if e.at >= since)


class Watcher:
    """Background thread: restart processes that died without the harness killing them."""

    def __init__(self, processes: list[ManagedProcess], *, restart_delay_seconds: float = 1.0):
        self.processes = processes
        self.restart_delay_seconds = restart_delay_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for process in list(self.processes):
                with contextlib.suppress(OSError):
                    process.check(now=now, restart_delay_seconds=self.restart_delay_seconds)
