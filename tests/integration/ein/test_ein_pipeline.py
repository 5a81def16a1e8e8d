"""ein's pipelined COPY against a real PostgreSQL: order, counts, and errors on either side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from trakr.ein import pipeline
from trakr.ein.pipeline import copy_tables


@pytest.fixture
async def conn(database_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_dsn)
    await connection.execute(
        """
        CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
        CREATE TABLE child (parent_id int NOT NULL REFERENCES parent (id), n int NOT NULL);
        -- One row per COPY statement, as the server saw it.
        CREATE TABLE statement_log (seq serial, tbl text, n bigint);
        CREATE FUNCTION log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO statement_log (tbl, n) SELECT TG_TABLE_NAME, count(*) FROM new_rows;
            RETURN NULL;
        END $$;
        CREATE TRIGGER parent_log AFTER INSERT ON parent REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION log_statement();
        CREATE TRIGGER child_log AFTER INSERT ON child REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION log_statement();
        """
    )
    yield connection
    await connection.close()


@pytest.fixture(autouse=True)
def small_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """Units and the held-rows bound small enough that a few hundred rows make many statements."""
    monkeypatch.setattr(pipeline, "UNIT_ROWS", 7)
    monkeypatch.setattr(pipeline, "MAX_HELD_ROWS", 40)


def parents(n: int) -> Iterator[tuple[object, ...]]:
    return ((i, f"p{i}") for i in range(n))


def children(n: int) -> Iterator[tuple[object, ...]]:
    return ((i // 3, i) for i in range(3 * n))


async def test_every_row_reaches_its_table_parents_first(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        counts = await copy_tables(
            conn,
            [
                ("parent", parents(500), ("id", "name")),
                ("child", children(500), ("parent_id", "n")),
            ],
        )
    assert counts == {"parent": 500, "child": 1500}
    # The foreign key would have refused a child sent before its parent.
    assert await conn.fetchval("SELECT count(*) FROM parent") == 500
    assert await conn.fetch("SELECT parent_id, n FROM child ORDER BY n") == [
        (i // 3, i) for i in range(1500)
    ]
    assert await conn.fetchval("SELECT string_agg(name, ',' ORDER BY id) FROM parent") == ",".join(
        f"p{i}" for i in range(500)
    )
    # Many statements, each of one table, all parents before any child.
    statements = await conn.fetch("SELECT tbl, n FROM statement_log ORDER BY seq")
    tables = [table for table, _ in statements]
    assert len(statements) > 10
    assert tables == sorted(tables, key=["parent", "child"].index)
    assert sum(n for t, n in statements if t == "parent") == 500


async def test_a_table_without_rows_sends_nothing(conn: asyncpg.Connection) -> None:
    counts = await copy_tables(conn, [("parent", [], ("id", "name"))])
    assert counts == {"parent": 0}
    assert await conn.fetchval("SELECT count(*) FROM parent") == 0


async def test_a_refused_row_raises_and_the_connection_rolls_back(conn: asyncpg.Connection) -> None:
    rows = [*parents(300), (5, "again")]  # a duplicate key in the last statement
    with pytest.raises(asyncpg.UniqueViolationError):
        async with conn.transaction():
            await copy_tables(conn, [("parent", rows, ("id", "name"))])
    assert await conn.fetchval("SELECT count(*) FROM parent") == 0


async def test_a_failure_while_building_rows_waits_for_the_statement_in_flight(
    conn: asyncpg.Connection,
) -> None:
    def failing() -> Iterator[tuple[object, ...]]:
        yield from parents(200)
        raise RuntimeError("scraper bug")

    with pytest.raises(RuntimeError, match="scraper bug"):
        async with conn.transaction():
            await copy_tables(conn, [("parent", failing(), ("id", "name"))])
    # No "another operation is in progress": the statement in flight ended before the rollback.
    assert await conn.fetchval("SELECT count(*) FROM parent") == 0


async def test_cancelled_mid_copy_leaves_a_usable_connection(conn: asyncpg.Connection) -> None:
    started = asyncio.Event()

    def slow() -> Iterator[tuple[object, ...]]:
        for row in parents(10_000):
            if row[0] == 100:
                started.set()
            yield row

    async def run() -> None:
        async with conn.transaction():
            await copy_tables(conn, [("parent", slow(), ("id", "name"))])
            await asyncio.sleep(10)  # never reached before the cancel below

    task = asyncio.ensure_future(run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await conn.fetchval("SELECT count(*) FROM parent") == 0
