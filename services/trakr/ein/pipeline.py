"""Binary COPY of several tables' rows, the server writing while Python builds what comes next.

With one COPY statement per table the two sides take turns: asyncpg sends rows in 512 KB
chunks as they are built, so within a table they overlap a little, but at each table's end
Python waits for the server, and at each table's start the server waits for Python. And the
tables differ: on a first NB ingest the server is the slower side for sections (index and
foreign-key work per row), Python for courses and meetings (metadata to JSON).

`copy_tables` builds rows in small units, in order, and keeps one COPY statement in flight
(the connection allows no more). Whenever the statement in flight is done, everything built
since is sent as the next statement (one per table), so when Python is ahead the statements
grow, and when the server is ahead Python builds on — into the next tables — up to a bound on
the rows held. Rows reach the tables in the order given (parents before children), in the
caller's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice

import asyncpg

Row = tuple[object, ...]
Copy = tuple[str, Iterable[Row], Sequence[str]]  # (table, rows, columns)

# Rows built between two looks at the statement in flight (~1-3 ms of Python for catalogue rows).
UNIT_ROWS = 256
# Rows built but not yet sent before Python waits for the server (bounds memory: ~10 MB).
MAX_HELD_ROWS = 8192


class _Batch:
    """Rows for one statement; tells when asyncpg starts reading them (the statement is sent)."""

    __slots__ = ("columns", "reading", "rows", "table")

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = columns
        self.rows: list[Row] = []
        self.reading: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __iter__(self) -> Iterator[Row]:
        if not self.reading.done():
            self.reading.set_result(None)
        return iter(self.rows)


class _Pipeline:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.held: list[_Batch] = []  # built, not sent; at most one per table, in order
        self.held_rows = 0
        self.in_flight: asyncio.Task[str] | None = None

    def add(self, table: str, columns: Sequence[str], rows: list[Row]) -> None:
        if not self.held or self.held[-1].table != table:
            self.held.append(_Batch(table, columns))
        self.held[-1].rows.extend(rows)
        self.held_rows += len(rows)

    async def advance(self, *, wait: bool) -> None:
        """Send the next held batch if the connection is free; with `wait`, wait until it is."""
        if self.in_flight is not None and (wait or self.in_flight.done()):
            task, self.in_flight = self.in_flight, None
            await task  # raises what the statement raised
        if self.in_flight is None and self.held:
            batch = self.held.pop(0)
            self.held_rows -= len(batch.rows)
            task = self.in_flight = asyncio.ensure_future(
                self.conn.copy_records_to_table(batch.table, records=batch, columns=batch.columns)
            )
            # Back to building once the rows are on their way (asyncpg may first prepare the
            # table's statement), or the statement failed: the next advance() raises that.
            await asyncio.wait((task, batch.reading), return_when=asyncio.FIRST_COMPLETED)

    async def abandon(self) -> None:
        """After an error: let the statement in flight end, so the connection can roll back."""
        task, self.in_flight = self.in_flight, None
        if task is not None:
            with contextlib.suppress(Exception):  # the error in hand is the one to raise
                await task


async def copy_tables(
    conn: asyncpg.Connection,
    copies: Iterable[Copy],
    *,
    when_built: Callable[[], None] | None = None,
) -> dict[str, int]:
    """COPY each (table, rows, columns) in order; returns the number of rows per table.

    `when_built` is called once every row is built, while the server writes the last ones:
    Python work that needs the rows built but not yet written costs no time there.
    """
    pipe = _Pipeline(conn)
    counts: dict[str, int] = {}
    try:
        for table, rows, columns in copies:
            counts.setdefault(table, 0)
            it = iter(rows)
            while unit := list(islice(it, UNIT_ROWS)):
                counts[table] += len(unit)
                pipe.add(table, columns, unit)
                # Two turns of the event loop: one reads the server's reply, the next lets the
                # finished statement's task complete; then the connection is seen to be free.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                await pipe.advance(wait=pipe.held_rows >= MAX_HELD_ROWS)
        if when_built is not None:
            await pipe.advance(wait=False)  # the server's next rows first
            when_built()
        while pipe.held or pipe.in_flight is not None:
            await pipe.advance(wait=True)
    except BaseException:
        await pipe.abandon()
        raise
    return counts
