"""The chaos suite's harness: its own redis-server and PostgreSQL cluster, the whole pipeline.

Nothing here touches the machine's shared servers: both are started on free ports in a
temporary directory (kept after a failure when TRAKR_TEST_CHAOS_KEEP=1, with every process's log).

Duration: the CI variant injects faults for ~60 s (every kind at least once); `make chaos`
sets TRAKR_TEST_CHAOS_LONG=1 for 10 minutes; TRAKR_TEST_CHAOS_SECONDS=N picks any length.
(TRAKR_TEST_ prefix: tests/conftest.py removes every other TRAKR_* variable at import.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness.servers import PostgresCluster, RedisServer, temp_root

DEFAULT_SECONDS = 60.0
LONG_SECONDS = 600.0


def chaos_seconds() -> float:
    if os.environ.get("TRAKR_TEST_CHAOS_SECONDS"):
        return float(os.environ["TRAKR_TEST_CHAOS_SECONDS"])
    if os.environ.get("TRAKR_TEST_CHAOS_LONG", "") not in ("", "0"):
        return LONG_SECONDS
    return DEFAULT_SECONDS


@dataclass
class Servers:
    root: Path
    redis: RedisServer
    postgres: PostgresCluster


@pytest.fixture
def own_servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    """A redis-server (append-only) and a PostgreSQL cluster of this test's own."""
    root = temp_root("trakr-chaos-")
    redis_server = RedisServer(root / "redis")
    postgres = PostgresCluster(root / "postgres")
    try:
        redis_server.start()
        postgres.init()
        postgres.start()
        yield Servers(root, redis_server, postgres)
    finally:
        postgres.stop()
        redis_server.stop()
        failed = getattr(request.node, "chaos_failed", True)
        if failed and os.environ.get("TRAKR_TEST_CHAOS_KEEP"):
            print(f"\nchaos: kept {root} (logs in {root}/pipeline/logs)")
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call":
        item.chaos_failed = report.failed  # type: ignore[attr-defined]
    return report
