"""The daemon loop in-process: heartbeats, position gauges, pruning a silent member, leaving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from jet_spacing import jet_settings, scraper_command
from prometheus_client import REGISTRY
from trakr.jet.service import Jet


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def wait_for(condition: Callable[[], bool], within_seconds: float = 5.0) -> None:
    deadline = time.monotonic() + within_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_member_appears_then_goes_silent_and_is_pruned(
    namespace: str, redis_client: aioredis.Redis
) -> None:
    settings = jet_settings(namespace, jet_heartbeat_seconds=0.2)
    stop = asyncio.Event()
    jet = Jet(
        settings, scraper_command("university.py"), redis_client, stop=stop, replica_id="m-replica"
    )
    members = settings.key("jet", "fixture", "members")
    daemon = asyncio.create_task(jet.run_daemon(1.0))
    try:
        await wait_for(lambda: gauge("trakr_jet_replicas") == 1 and jet.position.count == 1)
        # Another replica ("z…" sorts after us) beats once, then falls silent.
        await redis_client.zadd(members, {"z-replica": int(time.time() * 1000)})
        await wait_for(lambda: jet.position.count == 2)
        assert gauge("trakr_jet_replicas") == 2
        assert gauge("trakr_jet_replica_position") == 0
        # "a…" sorts first: we move to position 1.
        await redis_client.zadd(members, {"a-replica": int(time.time() * 1000)})
        await wait_for(lambda: jet.position.count == 3 and jet.position.index == 1)
        silent_from = time.monotonic()
        # Dead after three silent heartbeats (0.6 s), noticed at our next beat.
        await wait_for(lambda: jet.position.count == 1, within_seconds=3)
        assert time.monotonic() - silent_from < 1.5
        assert await redis_client.zrange(members, 0, -1) == [b"m-replica"]
        # And it scrapes, as the only replica now, every second.
        deadline = time.monotonic() + 10
        while await redis_client.xlen(settings.key("scrapes")) < 1:
            assert time.monotonic() < deadline, "no scrape queued"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 10)
    assert await redis_client.zcard(members) == 0
    assert gauge("trakr_jet_last_success_timestamp_seconds") > 0
