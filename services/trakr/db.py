"""Database plumbing: DSN helpers, the named-query loader, connection factories, error wrapping."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from trakr.errors import DatabaseUnavailable

if TYPE_CHECKING:
    import psycopg

# Errors that mean "the server or the connection went away", worth a reconnect with backoff.
ASYNCPG_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionFailureError,
    # Client-side protocol state errors, e.g. "cannot switch to state 12; another operation is
    # in progress" after the server dropped the connection mid-operation: the connection is
    # unusable, a fresh one works (includes ProtocolError and OutdatedSchemaCacheError).
    asyncpg.InternalClientError,
    TimeoutError,
)

_QUERY_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(path: str | Path) -> dict[str, str]:
    """Load a file of named queries: each starts with `-- name: <name>` then a comment line."""
    text = Path(path).read_text()
    parts = _QUERY_HEADER.split(text)
    queries = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if not queries:
        raise ValueError(f"{path}: no '-- name:' queries found")
    return queries


def database_name(dsn: str) -> str:
    """The database a DSN points at ("trakr" for postgresql://…/trakr)."""
    return urlsplit(dsn).path.lstrip("/") or "postgres"


def with_database(dsn: str, name: str) -> str:
    """The same DSN pointing at another database on the same server."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.asynccontextmanager
async def asyncpg_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10
) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool; raises DatabaseUnavailable when the server cannot be reached."""
    try:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    except ASYNCPG_CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot connect to {redact(dsn)}: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()


@contextlib.contextmanager
def psycopg_connect(dsn: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection; raises DatabaseUnavailable when the server cannot be reached."""
    # Imported here: the asyncpg-only processes (ein, spike, hermes) import this module, and
    # psycopg would add ~10 MB to each of them for nothing (ein's peak RSS has a budget).
    import psycopg

    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except (psycopg.OperationalError, OSError) as exc:
        raise DatabaseUnavailable(f"cannot connect to {redact(dsn)}: {exc}") from exc
    with conn:
        yield conn


def redact(dsn: str) -> str:
    """The DSN without its password, for log lines and error messages."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn
