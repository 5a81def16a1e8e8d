"""The Redis response cache, its invalidation, and the breaker that keeps Redis optional.

Keys: `<ns>:spike:cache:<university>:<format>:<path?query>`. Every /v1 path names a topic whose
first segment is its university, so a cached entry belongs to exactly one university (the
university list belongs to "_all"). Each entry is also added to the set
`<ns>:spike:cache-index:<university>`; when ein publishes a university on `<ns>:ein:changed`,
one Lua call deletes that set's members and the set itself, atomically, without a SCAN of the
keyspace. The TTL bounds what invalidation can miss (a message sent while we were disconnected,
or a response computed from pre-commit data and stored just after the invalidation).

In front of Redis sits a small per-process copy of the hottest entries (`LocalCache`, at most
LOCAL_TTL_SECONDS old, dropped by the same invalidation message, which every replica receives):
a popular course then costs no Redis round trip at all, which measurably raised cached
throughput (docs/spike.md). Redis stays the shared tier that replicas and restarts reuse.

Redis is an optimisation, never a dependency: every call has a short socket timeout, and after a
failure the breaker skips Redis for `open_seconds`, so a dead Redis costs one timeout per
`open_seconds`, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from trakr.spike import metrics
from trakr.streams import REDIS_CONNECTION_ERRORS

logger = logging.getLogger(__name__)

ALL_UNIVERSITIES = "_all"
LOCAL_TTL_SECONDS = 1.0
LOCAL_MAX_ENTRIES = 1024
REDIS_TIMEOUT_SECONDS = 0.1
BREAKER_OPEN_SECONDS = 2.0
# An entry is the ETag (fixed width, ASCII) followed by the body.
_ETAG_WIDTH = 34

_INVALIDATE = """
local members = redis.call('SMEMBERS', KEYS[1])
for i = 1, #members, 500 do
  redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[1])
return #members
"""

REDIS_ERRORS: tuple[type[BaseException], ...] = (*REDIS_CONNECTION_ERRORS, aioredis.RedisError)


class CircuitBreaker:
    """Closed until a failure; then open (calls skipped) for `open_seconds`; then closed again."""

    def __init__(
        self,
        *,
        open_seconds: float = BREAKER_OPEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.open_seconds = open_seconds
        self._clock = clock
        self._open_until = 0.0

    def allow(self) -> bool:
        return self._clock() >= self._open_until

    def failure(self) -> None:
        self._open_until = self._clock() + self.open_seconds

    @property
    def is_open(self) -> bool:
        return not self.allow()


@dataclass(frozen=True)
class Entry:
    etag: str
    body: bytes


class LocalCache:
    """A bounded, short-lived in-process map of cache entries (LRU by insertion)."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = LOCAL_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, str, Entry]] = OrderedDict()

    def get(self, key: str) -> Entry | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, _, entry = found
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return entry

    def put(self, key: str, university: str, entry: Entry) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[key] = (self._clock() + self.ttl_seconds, university, entry)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, universities: set[str]) -> None:
        for key in [k for k, (_, u, _) in self._entries.items() if u in universities]:
            del self._entries[key]


def university_of(path: str) -> str:
    """The university a /v1 path belongs to: first dot-segment of its topic, or "_all"."""
    parts = path.split("/")
    # ["", "v1", "<resource>", "<topic>", ...]
    if len(parts) >= 4 and parts[3]:
        return parts[3].split(".", 1)[0]
    return ALL_UNIVERSITIES


def make_redis(url: str, *, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> aioredis.Redis:
    """A client that fails fast: short timeouts and no built-in retries (the breaker decides)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )


class ResponseCache:
    """get/put/invalidate of rendered responses; every Redis failure degrades to a miss."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key: Callable[..., str],
        ttl_seconds: float,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.client = client
        self._key = key
        self.ttl_seconds = ttl_seconds
        self.breaker = breaker or CircuitBreaker()
        self.local = LocalCache(ttl_seconds=min(ttl_seconds, LOCAL_TTL_SECONDS))
        self._invalidate = client.register_script(_INVALIDATE)

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def entry_key(self, university: str, fmt: str, path_qs: str) -> str:
        return self._key("spike", "cache", university, fmt, path_qs)

    def index_key(self, university: str) -> str:
        return self._key("spike", "cache-index", university)

    async def get(self, key: str, university: str) -> Entry | None:
        local = self.local.get(key)
        if local is not None:
            return local
        if not self.breaker.allow():
            return None
        try:
            value = await self.client.get(key)
        except REDIS_ERRORS as exc:
            self._failed("get", exc)
            return None
        if value is None or len(value) < _ETAG_WIDTH:
            return None
        entry = Entry(value[:_ETAG_WIDTH].decode(), value[_ETAG_WIDTH:])
        self.local.put(key, university, entry)
        return entry

    async def put(self, key: str, university: str, entry: Entry) -> None:
        self.local.put(key, university, entry)
        if not self.breaker.allow():
            return
        ttl_ms = max(1, int(self.ttl_seconds * 1000))
        index = self.index_key(university)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(key, entry.etag.encode() + entry.body, px=ttl_ms)
                pipe.sadd(index, key)
                # The index outlives every member it lists (each put pushes it forward).
                pipe.pexpire(index, ttl_ms + 60_000)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._failed("put", exc)

    async def invalidate(self, university: str) -> int:
        """Drop a university's entries (and the university list's); returns how many keys went."""
        scopes = {university, ALL_UNIVERSITIES}
        self.local.invalidate(scopes)
        dropped = 0
        for scope in scopes:
            dropped += int(await self._invalidate(keys=[self.index_key(scope)]))
        return dropped

    def _failed(self, what: str, exc: BaseException) -> None:
        metrics.CACHE_ERRORS.inc()
        if not self.breaker.is_open:
            logger.warning(
                "redis %s failed, serving from the database for %.0fs: %s",
                what,
                self.breaker.open_seconds,
                exc,
                extra={"event": "cache_unavailable", "error": type(exc).__name__},
            )
        self.breaker.failure()
