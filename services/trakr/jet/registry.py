"""The members set: how jet replicas of one scraper find each other (a Redis sorted set).

member = replica id, score = its last heartbeat in ms since the epoch. Every heartbeat a
replica refreshes its own score, removes members silent for longer than DEAD_AFTER_HEARTBEATS
heartbeats, and reads who is left — one MULTI round trip, so what it reads already includes
its own beat and excludes the dead.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import redis.asyncio as aioredis

from trakr.jet.schedule import DEAD_AFTER_HEARTBEATS, dead_before_ms


def new_replica_id() -> str:
    """hostname-pid-random: unique even when a pid is reused or two containers share a hostname."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Registry:
    """One replica's view of the members set."""

    def __init__(
        self, redis: aioredis.Redis, *, key: str, replica_id: str, heartbeat_seconds: float
    ) -> None:
        self.redis = redis
        self.key = key
        self.replica_id = replica_id
        self.heartbeat_seconds = heartbeat_seconds

    async def beat(self) -> list[str]:
        """Record this replica's heartbeat, prune the dead; return the live ids, sorted."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {self.replica_id: now_ms})
            # "(" makes the bound exclusive: a member exactly at the limit is still alive.
            pipe.zremrangebyscore(
                self.key, "-inf", f"({dead_before_ms(now_ms, self.heartbeat_seconds)}"
            )
            pipe.zrange(self.key, 0, -1)
            # The key disappears by itself once every replica is gone.
            pipe.pexpire(self.key, int(self.heartbeat_seconds * 1000 * (DEAD_AFTER_HEARTBEATS + 2)))
            _, _, members, _ = await pipe.execute()
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def leave(self) -> None:
        """Remove this replica at once, so the others re-divide at their next heartbeat."""
        await self.redis.zrem(self.key, self.replica_id)
