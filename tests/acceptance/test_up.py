"""`trakr up` starts every real process, the pipeline delivers, a killed child is restarted,
`trakr status` sees it all, and SIGTERM stops everything cleanly."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from trakr.settings import Settings

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
EXPECTED = {"fcm-emulator", "ein", "julia", "hermes", "spike", "jet:sim#1", "jet:sim#2"}
BASE_PORTS = (9102, 9103, 9104, 9876, 9111, 9112, 9190)


def free_offset() -> int:
    """A port offset under which every port `trakr up` uses is free right now."""
    for _ in range(50):
        offset = random.randrange(20_000, 50_000, 10)
        try:
            for port in BASE_PORTS:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free port range")


def wait_until(check: Callable[[], Any], *, timeout_seconds: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_seconds:.0f}s waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_runs_the_pipeline_and_stops_cleanly(
    tmp_path: Path, settings: Settings, subprocess_env: dict[str, str]
) -> None:
    scrapers = tmp_path / "scrapers.toml"
    scrapers.write_text(
        """
[[scraper]]
name = "sim"
replicas = 2
interval = "2s"
command = ["trakr-scrape-sim", "--sections", "40", "--changes", "2", "--tick-seconds", "2"]
"""
    )
    offset = free_offset()
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [
            str(BIN / "trakr"),
            "up",
            "--scrapers",
            str(scrapers),
            "--port-offset",
            str(offset),
            "--fcm-emulator",
        ],
        env=subprocess_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    client = redis.Redis.from_url(settings.redis_url)
    state_key = settings.key("up", "state")

    def state() -> dict[str, Any] | None:
        raw = client.get(state_key)
        return json.loads(raw) if raw else None

    def output() -> str:
        log.flush()
        return (tmp_path / "up.log").read_text()

    try:
        # Every process is up and serves /metrics.
        def all_running() -> dict[str, Any] | None:
            assert up.poll() is None, output()[-3000:]
            current = state()
            if not current:
                return None
            processes = {p["name"]: p for p in current["processes"]}
            if set(processes) != EXPECTED or any(
                p["state"] != "running" for p in processes.values()
            ):
                return None
            for p in processes.values():
                if p["metrics_url"]:
                    try:
                        if httpx.get(p["metrics_url"], timeout=2).status_code != 200:
                            return None
                    except httpx.HTTPError:
                        return None
            return processes

        processes = wait_until(all_running, timeout_seconds=120, what="every process running")
        assert processes["spike"]["metrics_url"] == f"http://127.0.0.1:{9876 + offset}/metrics"
        assert processes["ein"]["metrics_url"] == f"http://127.0.0.1:{9102 + offset}/metrics"
        assert {processes[f"jet:sim#{i}"]["metrics_url"] for i in (1, 2)} == {
            f"http://127.0.0.1:{9111 + offset}/metrics",
            f"http://127.0.0.1:{9112 + offset}/metrics",
        }

        # The pipeline works end to end: a status change of the simulator was pushed to the emulator.
        def delivered() -> int:
            with psycopg.connect(settings.postgres_dsn) as conn:
                row = conn.execute("SELECT count(*) FROM delivery WHERE state = 'sent'").fetchone()
            return row[0] if row else 0

        wait_until(delivered, timeout_seconds=90, what="a delivery recorded by hermes")
        messages = httpx.get(f"http://127.0.0.1:{9190 + offset}/messages", timeout=5).json()
        assert messages["total"] >= 1

        # A killed child is restarted (and counted).
        old_pid = processes["julia"]["pid"]
        os.kill(old_pid, signal.SIGKILL)

        def julia_restarted() -> bool:
            current = state()
            julia = (
                next(p for p in current["processes"] if p["name"] == "julia") if current else None
            )
            return bool(
                julia
                and julia["restarts"] == 1
                and julia["state"] == "running"
                and julia["pid"] != old_pid
            )

        wait_until(julia_restarted, timeout_seconds=30, what="julia restarted")

        # `trakr status` shows every process healthy, the university scraped and the pushes.
        status = subprocess.run(
            [str(BIN / "trakr"), "status", "--json"],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        report = json.loads(status.stdout)
        assert status.returncode == 0, status.stdout + status.stderr
        assert {p["name"] for p in report["processes"] if p["healthy"]} == EXPECTED
        assert [u["topic_name"] for u in report["universities"]] == ["sim"]
        assert report["deliveries_last_hour"]["sent"] >= 1
        streams = {s["stream"]: s for s in report["streams"]}
        assert streams[settings.key("scrapes")]["group"] == "ein"
        pids = [p["pid"] for p in state()["processes"]]
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        try:
            code = up.wait(timeout=90)
        finally:
            if up.poll() is None:
                up.kill()
            client.close()

    text = output()
    log.close()
    assert code == 0, text[-3000:]
    for pid in pids:
        assert not pid_alive(pid), f"child {pid} outlived trakr up"
    assert client_state_gone(settings, state_key)
    assert "[ein] {" in text and "[jet:sim#2] {" in text and "[hermes] {" in text
    stopped = [
        json.loads(line[5:])
        for line in text.splitlines()
        if line.startswith("[up] ") and '"stopped"' in line
    ]
    assert stopped, "no final 'all processes stopped' line"
    # Every service drained and exited 0 on SIGTERM (none had to be killed).
    assert "SIGKILL" not in text
    exit_codes = stopped[-1]["exit_codes"]
    assert exit_codes == dict.fromkeys(EXPECTED, 0), exit_codes


def client_state_gone(settings: Settings, key: str) -> bool:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return not client.exists(key)
    finally:
        client.close()


def test_up_refuses_a_bad_scrapers_file(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    scrapers = tmp_path / "scrapers.toml"
    scrapers.write_text('[[scraper]]\nname = "Bad Name"\ninterval = "5s"\ncommand = ["x"]\n')
    result = subprocess.run(
        [str(BIN / "trakr"), "up", "--scrapers", str(scrapers)],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "scraper #1: 'name' must be lowercase" in result.stderr
