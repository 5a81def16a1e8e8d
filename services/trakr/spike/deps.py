"""Shared dependencies of the route handlers: the pool, the queries, the negotiated format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Response

from trakr.db import ASYNCPG_CONNECTION_ERRORS, load_queries
from trakr.errors import DatabaseUnavailable
from trakr.pb.trakr_pb2 import Data
from trakr.settings import Settings
from trakr.spike.cache import ResponseCache
from trakr.spike.encoding import (
    CONTENT_TYPES,
    Format,
    envelope,
    negotiate,
    protobuf_query,
    render,
    render_document,
)

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
# Catalogue documents whose protobuf variant can go straight into the message constructors
# (no Timestamp inside); see encoding.protobuf_query.
DOCUMENT_QUERIES = (
    "universities",
    "university_subjects",
    "subject",
    "subject_courses",
    "course",
    "section",
)
PROTOBUF_QUERIES = {name: protobuf_query(QUERIES[name]) for name in DOCUMENT_QUERIES}

# Errors that mean "PostgreSQL is not there right now" (answered 503 + Retry-After), as opposed to
# a bug in a query. A dropped or not-yet-created database and a refused login count: an operator
# fixes those, and a client should simply come back later.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    *ASYNCPG_CONNECTION_ERRORS,
    DatabaseUnavailable,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.ObjectInUseError,
)
ACQUIRE_TIMEOUT_SECONDS = 5.0


@dataclass
class Resources:
    """What the lifespan opens; lives on `app.state.resources`."""

    settings: Settings
    pool: asyncpg.Pool | None
    cache: ResponseCache


class NotFound(Exception):
    """The topic names nothing in the catalogue."""

    def __init__(self, kind: str, topic: str) -> None:
        super().__init__(f"no {kind} with topic {topic!r}")


def resources(request: Request) -> Resources:
    return request.app.state.resources  # type: ignore[no-any-return]


class Database:
    """Runs spike's named queries on a pooled connection (asyncpg prepares and caches each one)."""

    def __init__(self, pool: asyncpg.Pool | None) -> None:
        self.pool = pool

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise DatabaseUnavailable("the database pool is not open")
        return self.pool

    async def fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        async with self._pool().acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            return await conn.fetchrow(QUERIES[name], *args)

    async def fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        async with self._pool().acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            return await conn.fetch(QUERIES[name], *args)

    async def document(self, name: str, fmt: Format, *args: Any) -> str | None:
        """A catalogue document: the JSON-mapping query, or its protobuf variant for protobuf."""
        query = PROTOBUF_QUERIES[name] if fmt == "protobuf" else QUERIES[name]
        async with self._pool().acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            return await conn.fetchval(query, *args)

    async def fetchval(self, name: str, *args: Any) -> Any:
        async with self._pool().acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
            return await conn.fetchval(QUERIES[name], *args)


# The dependencies are coroutines on purpose: FastAPI runs a plain `def` dependency in a worker
# thread, and those two thread hand-offs cost ~0.2 ms per request (cProfile under wrk,
# docs/spike.md), more than spike's share of the course query.
async def database(request: Request) -> Database:
    return Database(resources(request).pool)


async def response_format(request: Request) -> Format:
    return negotiate(request.headers.get("accept"))


DB = Annotated[Database, Depends(database)]
Fmt = Annotated[Format, Depends(response_format)]


def reply_document(
    document: str, field: str, fmt: Format, *, field_names: bool = False
) -> Response:
    """A 200 envelope around a document from queries.sql (see encoding.render_document)."""
    body = render_document(field, document, fmt, field_names=field_names)
    return Response(content=body, media_type=CONTENT_TYPES[fmt])


def reply(data: Data, field: str, fmt: Format, *, message: str = "OK") -> Response:
    """A 200 envelope holding `data.<field>`, in the negotiated format."""
    body = render(envelope(data, message=message), fmt, field=field)
    return Response(content=body, media_type=CONTENT_TYPES[fmt])
