"""Throw-away redis-server and PostgreSQL servers for the end-to-end harness.

Both run on free ports in temporary directories and are children of this process, so the
suite can SIGKILL and restart them without touching the machine's shared servers. PostgreSQL
refuses to run as root: initdb and postgres are started as the `postgres` OS user (Popen's
user=), which keeps the postmaster's pid the Popen pid, so a kill hits the real server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, *, timeout_seconds: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts connections on 127.0.0.1:port; raise on timeout or exit."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_seconds}s")


def _children_of(pid: int) -> list[int]:
    """Direct children of pid (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _wait_gone(pids: list[int], timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return
        time.sleep(0.02)


@dataclass
class RedisServer:
    """redis-server with append-only persistence (as deploy/ runs it) in a temp directory."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.root),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.root / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        self.starts += 1
        wait_for_port(self.port, timeout_seconds=20, proc=self.proc)
        # Listening is not loaded: Redis answers LOADING while it replays the AOF.
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.exceptions.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final AOF rewrite — what an OOM kill or a crash does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _as_postgres() -> dict[str, object]:
    """Popen arguments that run the child as the postgres OS user (we are root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _pg_bin(name: str) -> str:
    for version in ("17", "16", "15", "14"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"PostgreSQL binary {name} not found")
    return found


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of our own: initdb in a temp dir, postgres on a free port."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
            **_as_postgres(),  # type: ignore[arg-type]
        )  # fmt: skip

    def start(self) -> None:
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the child owns it
        argv = [
            _pg_bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            # fsync=off only gives up durability across an OS crash; a killed server keeps
            # every commit (the WAL is written before the commit returns). synchronous_commit
            # must stay on, or a SIGKILL would lose acknowledged commits.
            "-c", "max_connections=200", "-c", "shared_buffers=64MB",
            # Commit times of rows (pg_xact_commit_timestamp): bench/e2e.py splits julia's
            # stage at ein's commit with them.
            "-c", "track_commit_timestamp=on",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
            **_as_postgres(),  # type: ignore[arg-type]
        )  # fmt: skip
        log.close()
        self.starts += 1
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.proc.returncode}; see {self.root / 'postgres.log'}"
                )
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once: a crash; the next start recovers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        children = _children_of(self.proc.pid)
        self.proc.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        # A restart refuses to start while old backends still hold the shared memory.
        _wait_gone(children, 10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def terminate_backends(self, database: str) -> int:
        """pg_terminate_backend every other connection to `database`; how many were ended."""
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0


def temp_root(prefix: str) -> Path:
    """A temp directory any user can enter (postgres must reach its own subdirectory)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path
