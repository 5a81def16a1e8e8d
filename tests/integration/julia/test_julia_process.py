"""trakr-julia as a real process: forwards, exits 0 on SIGTERM, survives a crash in the commit window."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from julia_helpers import Catalogue, stream_entries, wait_until
from trakr.settings import Settings

JULIA = shutil.which("trakr-julia") or str(Path(sys.executable).with_name("trakr-julia"))


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start trakr-julia with its output in a file (a pipe nobody reads could fill and block it)."""
    with log.open("wb") as out:
        return subprocess.Popen([JULIA], env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_exit(proc: subprocess.Popen[bytes], timeout_seconds: float = 20) -> int:
    for _ in range(int(timeout_seconds / 0.05)):
        code = proc.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("trakr-julia did not exit")


def log_events(log: Path) -> list[str]:
    return [
        json.loads(line)["event"] for line in log.read_bytes().splitlines() if b'"event"' in line
    ]


async def test_process_forwards_and_exits_0_on_sigterm(
    catalogue: Catalogue,
    subprocess_env: dict[str, str],
    settings: Settings,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    sections = await catalogue.add_university("rutgers-nb", 20)
    await catalogue.set_status(sections, "OPEN")  # made before it starts: caught up
    proc = start(
        {**subprocess_env, "TRAKR_COLLAPSE": "rutgers=240s,default=0s"}, tmp_path / "julia.log"
    )
    try:
        await wait_until(lambda: _stream_len(redis_client, settings, 20), what="catch-up forwarded")
        await catalogue.set_status(sections[:5], "CLOSED")  # inside rutgers' window: held
        await wait_until(lambda: _held(catalogue, 5), what="held rows")
        proc.send_signal(signal.SIGTERM)
        assert await wait_exit(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    events = log_events(tmp_path / "julia.log")
    assert "listening" in events and "catchup" in events and events[-1] == "stopped"
    assert len(await stream_entries(redis_client, settings)) == 20


async def test_process_killed_between_xadd_and_commit_does_not_duplicate(
    catalogue: Catalogue,
    subprocess_env: dict[str, str],
    settings: Settings,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    sections = await catalogue.add_university("uni-a", 40)
    await catalogue.set_status(sections, "OPEN")
    crashing = start(
        {**subprocess_env, "TRAKR_TEST_JULIA_EXIT_AFTER_XADD": "1"}, tmp_path / "crash.log"
    )
    assert await wait_exit(crashing) == 70
    # The message is out, the rows were never marked: the commit died with the process.
    assert len(await stream_entries(redis_client, settings)) == 40
    assert await catalogue.states() == {"new": 40}

    proc = start(subprocess_env, tmp_path / "julia.log")
    try:
        await wait_until(lambda: _queued(catalogue, 40), what="rows queued after restart")
        proc.send_signal(signal.SIGTERM)
        assert await wait_exit(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    ids = Counter(e["notification_id"] for e in await stream_entries(redis_client, settings))
    assert len(ids) == 40 and set(ids.values()) == {1}
    assert "duplicates_suppressed" in log_events(tmp_path / "julia.log")


@pytest.mark.parametrize("collapse", ["rutgers=4x", "rutgers", "a b=1s", "x=1s,x=2s"])
def test_bad_collapse_setting_is_a_config_error(
    subprocess_env: dict[str, str], collapse: str
) -> None:
    result = subprocess.run(
        [JULIA], env={**subprocess_env, "TRAKR_COLLAPSE": collapse}, capture_output=True, timeout=30
    )
    assert result.returncode == 2
    assert b"TRAKR_COLLAPSE" in result.stderr
    assert b"Traceback" not in result.stderr


def test_help_names_the_settings() -> None:
    result = subprocess.run([JULIA, "--help"], capture_output=True, timeout=30, check=True)
    for word in (b"--metrics-port", b"TRAKR_COLLAPSE", b"TRAKR_JULIA_POLL_SECONDS", b"-c FILE"):
        assert word in result.stdout


async def _stream_len(redis: aioredis.Redis, settings: Settings, count: int) -> bool:
    return len(await stream_entries(redis, settings)) >= count


async def _held(catalogue: Catalogue, count: int) -> bool:
    return (await catalogue.states()).get("held", 0) == count


async def _queued(catalogue: Catalogue, count: int) -> bool:
    return (await catalogue.states()).get("queued", 0) == count
