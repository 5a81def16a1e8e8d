"""Builds spike's ASGI app: FastAPI routes wrapped in the cache/metrics middleware.

The lifespan opens the asyncpg pool, the Redis cache and the listener that drops a university's
cached responses when ein publishes a change. Neither PostgreSQL nor Redis has to be up for the
app to start: requests answer 503 (database) or skip the cache (Redis) until they come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trakr import __version__
from trakr.db import redact
from trakr.runtime import Backoff
from trakr.settings import Settings
from trakr.spike import metrics
from trakr.spike.cache import REDIS_ERRORS, Entry, ResponseCache, make_redis, university_of
from trakr.spike.deps import DATABASE_UNAVAILABLE_ERRORS, QUERIES, Resources
from trakr.spike.encoding import CONTENT_TYPES, envelope, etag, etag_matches, negotiate, render
from trakr.spike.routes import courses, sections, subjects, subscriptions, universities
from trakr.spike.routes._route import error_response

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 1.0
MAX_CACHED_PATH_LENGTH = 2048
UNMATCHED = "unmatched"
LISTENER_POLL_SECONDS = 0.25


ROUTE_MODULES = (universities, subjects, courses, sections, subscriptions)


def create_app(settings: Settings) -> ASGIApp:
    """The ASGI app uvicorn serves: SpikeMiddleware around the FastAPI app."""
    api = FastAPI(
        title="trakr spike",
        version=__version__,
        description="The read API the trakr apps use. JSON (the protobuf JSON mapping) by default; "
        "send `Accept: application/x-protobuf` for the binary trakr.Response message. Every /v1 "
        "response is an envelope {meta: {code, message}, data: {…}}.",
        lifespan=_lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    api.state.settings = settings
    for module in ROUTE_MODULES:
        api.include_router(module.router)
    api.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    api.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    api.add_api_route(
        "/healthz", _healthz, methods=["GET"], tags=["operations"], summary="Process alive"
    )
    api.add_api_route(
        "/readyz",
        _readyz,
        methods=["GET"],
        tags=["operations"],
        summary="Database and Redis reachable",
    )
    api.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    # FastAPI wraps included routers in private structures; the middleware matches against the
    # plain route objects instead, which carry the templates used as metric labels.
    routes = [route for module in ROUTE_MODULES for route in module.router.routes]
    routes += [
        route for route in api.router.routes if isinstance(getattr(route, "path", None), str)
    ]
    return SpikeMiddleware(api, routes)


# --- lifespan ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _lifespan(api: FastAPI) -> AsyncIterator[None]:
    settings: Settings = api.state.settings
    # min_size=0: creating the pool connects nothing, so spike starts (and answers 503) while
    # PostgreSQL is down; connections are opened on demand and kept for reuse.
    pool = await asyncpg.create_pool(
        settings.postgres_dsn,
        min_size=0,
        max_size=settings.spike_pool_size,
        timeout=CONNECT_TIMEOUT_SECONDS,
        command_timeout=COMMAND_TIMEOUT_SECONDS,
        reset=_keep_session,
    )
    redis_client = make_redis(settings.redis_url)
    cache = ResponseCache(
        redis_client, key=settings.key, ttl_seconds=settings.spike_cache_ttl_seconds
    )
    api.state.resources = Resources(settings=settings, pool=pool, cache=cache)
    await _warm_up(pool, settings)
    stop_listening = asyncio.Event()
    listener = asyncio.create_task(
        listen_for_changes(settings, cache, stop_listening), name="cache-invalidation"
    )
    logger.info(
        "spike ready: cache ttl %.1fs, pool %d",
        settings.spike_cache_ttl_seconds,
        settings.spike_pool_size,
        extra={"event": "started"},
    )
    try:
        yield
    finally:
        # Not cancel(): redis-py's get_message(timeout=…) can swallow a cancellation, and the
        # loop would go on forever. The stop event ends it within one poll interval.
        stop_listening.set()
        try:
            await asyncio.wait_for(listener, timeout=LISTENER_POLL_SECONDS * 4)
        except TimeoutError:
            logger.warning(
                "invalidation listener did not stop in time", extra={"event": "listener_stuck"}
            )
        await redis_client.aclose()
        await asyncio.wait_for(pool.close(), timeout=settings.shutdown_grace_seconds or None)
        logger.info("spike stopped", extra={"event": "stopped"})


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's default reset query (RESET ALL, UNLISTEN *, …).

    spike's queries change no session state, listen to nothing and take no advisory locks, so
    that round trip on every release is pure cost. asyncpg still rolls back a transaction left
    open before it calls this.
    """


async def _warm_up(pool: asyncpg.Pool, settings: Settings) -> None:
    try:
        await pool.fetchval(QUERIES["ping"])
    except DATABASE_UNAVAILABLE_ERRORS as exc:
        logger.warning(
            "database %s unreachable at start, answering 503 until it is back: %s",
            redact(settings.postgres_dsn),
            exc,
            extra={"event": "database_unavailable"},
        )


async def listen_for_changes(settings: Settings, cache: ResponseCache, stop: asyncio.Event) -> None:
    """Drop a university's cached responses whenever ein publishes its topic; returns once `stop` is set.

    Messages published while we are disconnected are lost; the cache TTL bounds the staleness
    that causes, so no catch-up is attempted after a reconnect.
    """
    channel = settings.key("ein", "changed")
    backoff = Backoff(max_seconds=settings.backoff_max_seconds)
    while not stop.is_set():
        client = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=1.0,
            health_check_interval=10,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                logger.info("listening on %s", channel, extra={"event": "invalidation_subscribed"})
                backoff.reset()
                while not stop.is_set():
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=LISTENER_POLL_SECONDS
                    )
                    if message is None or message.get("type") != "message":
                        continue
                    university = _text(message["data"])
                    dropped = await cache.invalidate(university)
                    metrics.CACHE_INVALIDATIONS.inc()
                    logger.debug(
                        "invalidated %s: %d entries",
                        university,
                        dropped,
                        extra={"event": "cache_invalidated", "university": university},
                    )
        except REDIS_ERRORS as exc:
            logger.warning(
                "invalidation listener lost Redis: %s",
                exc,
                extra={"event": "invalidation_disconnected"},
            )
        except Exception:
            # A loop-iteration boundary: a bad message must not end invalidation for good.
            logger.exception("invalidation listener failed", extra={"event": "invalidation_failed"})
        finally:
            await client.aclose()
        if not stop.is_set():
            await backoff.wait(stop, what="cache invalidation listener")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- operations routes -------------------------------------------------------------------------


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _readyz(request: Request) -> JSONResponse:
    resources: Resources = request.app.state.resources
    checks: dict[str, str] = {}
    try:
        assert resources.pool is not None
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await resources.pool.fetchval(QUERIES["ping"])
        checks["database"] = "ok"
    except (*DATABASE_UNAVAILABLE_ERRORS, AssertionError) as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await resources.cache.client.ping()
        checks["redis"] = "ok"
    except REDIS_ERRORS as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


async def _metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in exc.errors()
    )
    return error_response(request, 422, f"invalid parameters: {problems}"[:1000])


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    return error_response(request, exc.status_code, str(exc.detail), dict(exc.headers or {}))


# --- middleware: metrics, response cache, ETag -------------------------------------------------


class SpikeMiddleware:
    """Times every request by route template; serves and fills the cache for GET /v1/…

    It runs outside FastAPI so a cache hit costs a route-table match and one Redis GET, not a
    trip through routing, dependency injection and validation. A 200 from the app is buffered
    (API responses are small) to compute its ETag, store it, and answer If-None-Match with 304.
    """

    def __init__(self, app: FastAPI, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        route = self._route_template(scope)
        status = 0

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if scope["method"] == "GET" and route.startswith("/v1/"):
                await self._cacheable(scope, receive, send_and_record)
            else:
                await self.app(scope, receive, send_and_record)
        finally:
            labels = (route, scope["method"], str(status or 500))
            metrics.REQUEST_DURATION.labels(*labels).observe(perf_counter() - started)
            metrics.REQUESTS.labels(*labels).inc()

    def _route_template(self, scope: Scope) -> str:
        partial = None
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return getattr(candidate, "path", UNMATCHED)
            if match is Match.PARTIAL and partial is None:
                partial = getattr(candidate, "path", None)
        return partial or UNMATCHED

    async def _cacheable(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        fmt = negotiate(headers.get("accept"))
        resources: Resources | None = getattr(self.state, "resources", None)
        cache = resources.cache if resources is not None else None
        query = scope.get("query_string", b"").decode("latin-1")
        path_qs = scope["path"] + ("?" + query if query else "")
        use_cache = cache is not None and cache.enabled and len(path_qs) <= MAX_CACHED_PATH_LENGTH
        key = university = ""
        if use_cache:
            assert cache is not None
            university = university_of(scope["path"])
            key = cache.entry_key(university, fmt, path_qs)
            cached = await cache.get(key, university)
            if cached is not None:
                metrics.CACHE_HITS.inc()
                await self._send_entry(send, cached, fmt, headers, cache, hit=True)
                return
            metrics.CACHE_MISSES.inc()

        start, body = await self._run_buffered(scope, receive, headers)
        if start["status"] != 200:
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        entry = Entry(etag(body), body)
        if use_cache:
            assert cache is not None
            await cache.put(key, university, entry)
        await self._send_entry(send, entry, fmt, headers, cache, hit=False)

    async def _run_buffered(
        self, scope: Scope, receive: Receive, headers: Headers
    ) -> tuple[Message, bytes]:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except Exception:
            # SpikeRoute already maps handler errors; this is the last line of "never a 500".
            metrics.UNEXPECTED_ERRORS.inc()
            logger.exception(
                "unhandled error on %s", scope["path"], extra={"event": "unexpected_error"}
            )
            start, chunks = None, []
        if start is None:
            fmt = negotiate(headers.get("accept"))
            body = render(envelope(code=503, message="internal error, retry later"), fmt)
            start = {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", CONTENT_TYPES[fmt].encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"5"),
                ],
            }
            return start, body
        return start, b"".join(chunks)

    async def _send_entry(
        self,
        send: Send,
        entry: Entry,
        fmt: str,
        request_headers: Headers,
        cache: ResponseCache | None,
        *,
        hit: bool,
    ) -> None:
        if cache is not None and cache.enabled:
            cache_control = f"public, max-age={int(cache.ttl_seconds)}"
        else:
            cache_control = "no-cache"
        common = [
            (b"etag", entry.etag.encode()),
            (b"cache-control", cache_control.encode()),
            (b"vary", b"Accept"),
            (b"x-cache", b"hit" if hit else b"miss"),
        ]
        if etag_matches(request_headers.get("if-none-match"), entry.etag):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        headers = [
            (b"content-type", CONTENT_TYPES[fmt].encode()),  # type: ignore[index]
            (b"content-length", str(len(entry.body)).encode()),
            *common,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.body})
