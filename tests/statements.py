"""What a test sees of the SQL a store sends: every statement, as the driver gets it.

One listener for the suite's "how many statements, and which" checks (issue 15: each lookup through
an index, no query per row), instead of a hand-written ``before_cursor_execute`` in each test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import event

from store.db import Database


class Sent(NamedTuple):
    """One statement sent to the database, and its parameters (as the driver got them)."""

    sql: str
    parameters: Any

    @property
    def verb(self) -> str:
        """Its first word, upper case (SELECT, INSERT, …); empty for an empty statement."""
        words = self.sql.split(None, 1)
        return words[0].upper() if words else ""


@contextmanager
def statements_sent(db: Database) -> Iterator[list[Sent]]:
    """Every statement ``db`` sends while inside, in order (a list the block may read or clear)."""
    seen: list[Sent] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append(Sent(statement, parameters))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def sqlite_plan(db: Database, sent: Sent) -> str:
    """SQLite's query plan for a statement it was sent, its steps on one line."""
    async with db.read() as session:
        connection = await session.connection()
        found = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sent.sql}", sent.parameters)
        return " ".join(str(row[-1]) for row in found)
