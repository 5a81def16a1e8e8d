"""The Redis response cache: hits and misses, ETag/304, invalidation by ein's publish, Redis down."""

from __future__ import annotations

import time

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from spike_helpers import COURSE, SUBJECT, UNIVERSITY, running, wait_for
from trakr.settings import Settings
from trakr.spike.encoding import PROTOBUF_TYPE

URL = f"/v1/courses/{COURSE}"


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_second_request_is_a_hit_with_the_same_body(client: httpx.AsyncClient) -> None:
    hits, misses = (
        counter("trakr_spike_cache_hits_total"),
        counter("trakr_spike_cache_misses_total"),
    )
    first = await client.get(URL)
    second = await client.get(URL)
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=5"
    assert second.headers["content-type"] == "application/json"
    assert counter("trakr_spike_cache_hits_total") == hits + 1
    assert counter("trakr_spike_cache_misses_total") == misses + 1


async def test_formats_are_cached_separately(client: httpx.AsyncClient) -> None:
    as_json = await client.get(URL)
    as_protobuf = await client.get(URL, headers={"Accept": PROTOBUF_TYPE})
    assert as_protobuf.headers["x-cache"] == "miss"
    again = await client.get(URL, headers={"Accept": PROTOBUF_TYPE})
    assert again.headers["x-cache"] == "hit"
    assert again.headers["content-type"] == PROTOBUF_TYPE
    assert again.content == as_protobuf.content != as_json.content


async def test_query_string_is_part_of_the_key(client: httpx.AsyncClient) -> None:
    spring = await client.get(f"/v1/universities/{UNIVERSITY}/subjects?season=spring&year=2026")
    fall = await client.get(f"/v1/universities/{UNIVERSITY}/subjects?season=fall&year=2026")
    assert spring.headers["x-cache"] == fall.headers["x-cache"] == "miss"
    assert spring.content != fall.content


async def test_etag_if_none_match_gives_304(client: httpx.AsyncClient) -> None:
    first = await client.get(URL)
    tag = first.headers["etag"]
    for _ in range(2):  # once from the cache, and the tag is stable
        revalidated = await client.get(URL, headers={"If-None-Match": tag})
        assert revalidated.status_code == 304
        assert revalidated.content == b""
        assert revalidated.headers["etag"] == tag
    stale = await client.get(URL, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200


async def test_errors_are_not_cached(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        missing = await client.get(f"{URL}.nope")
        assert missing.status_code == 404 and "x-cache" not in missing.headers


async def test_keys_are_namespaced_by_university(
    client: httpx.AsyncClient, seeded_settings: Settings, redis_client: aioredis.Redis
) -> None:
    await client.get(URL)
    await client.get("/v1/universities")
    keys = {
        key.decode() async for key in redis_client.scan_iter(match=f"{seeded_settings.namespace}:*")
    }
    assert f"{seeded_settings.namespace}:spike:cache:{UNIVERSITY}:json:{URL}" in keys
    assert f"{seeded_settings.namespace}:spike:cache:_all:json:/v1/universities" in keys
    assert f"{seeded_settings.namespace}:spike:cache-index:{UNIVERSITY}" in keys


async def test_ein_publish_drops_that_universitys_entries(
    writable_settings: Settings, redis_client: aioredis.Redis
) -> None:
    settings = writable_settings.model_copy(update={"spike_cache_ttl_seconds": 300.0})
    async with running(settings) as (client, _):
        await client.get(URL)
        await client.get(f"/v1/subjects/{SUBJECT}")
        assert (await client.get(URL)).headers["x-cache"] == "hit"
        # Another university's entry must survive the invalidation.
        other_key = settings.key("spike", "cache", "otheru", "json", "/v1/courses/otheru.x")
        await redis_client.set(other_key, b'"' + b"0" * 32 + b'"{}', ex=300)

        conn = await asyncpg.connect(settings.postgres_dsn)
        try:
            await conn.execute("UPDATE course SET name = 'Renamed' WHERE topic_name = $1", COURSE)
        finally:
            await conn.close()
        assert (await client.get(URL)).json()["data"]["course"]["name"] != "Renamed"  # still cached

        channel = settings.key("ein", "changed")

        async def renamed() -> bool:
            # The listener may not be subscribed yet right after start: publish until it hears.
            await redis_client.publish(channel, UNIVERSITY)
            response = await client.get(URL)
            return response.json()["data"]["course"]["name"] == "Renamed"

        await wait_for(renamed)
        assert await redis_client.exists(other_key) == 1


async def test_ttl_zero_disables_the_cache(seeded_settings: Settings) -> None:
    settings = seeded_settings.model_copy(update={"spike_cache_ttl_seconds": 0.0})
    async with running(settings) as (client, _):
        first, second = await client.get(URL), await client.get(URL)
        assert first.headers["x-cache"] == second.headers["x-cache"] == "miss"
        assert first.headers["cache-control"] == "no-cache"
        assert (
            await client.get(URL, headers={"If-None-Match": first.headers["etag"]})
        ).status_code == 304


async def test_redis_down_still_serves_from_the_database(seeded_settings: Settings) -> None:
    settings = seeded_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with running(settings) as (client, _):
        started = time.monotonic()
        for _ in range(20):
            response = await client.get(URL)
            assert response.status_code == 200
            assert response.json()["data"]["course"]["topicName"] == COURSE
        # The breaker skips Redis after the first failure: 20 requests, not 20 timeouts.
        assert time.monotonic() - started < 20 * 0.1
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis"].startswith("unavailable")
        assert ready.json()["database"] == "ok"
        assert counter("trakr_spike_cache_errors_total") >= 1
