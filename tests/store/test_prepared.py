"""Hot-path reads compiled once and run on the driver (issue 15): ``store.prepared.Prepared``.

They replace ``session.execute`` for the reads every command makes, so on both backends they must
give exactly what SQLAlchemy gives (values converted by the same types: dates, times, booleans,
bytes, big integers), run inside the session's own transaction, show every statement to engine
listeners, and surface a driver's error as SQLAlchemy's own, with no parameter in its text.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import bindparam, event, select, text
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Signpost
from handlers.vocabulary import Notice, Outcome
from store.db import Database
from store.delivery.notices import NoticeStore, pending
from store.keys.crypto import KeyRing
from store.prepared import Prepared, all_of, read_ahead
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import Practitioner
from store.tables.register import Child, Involvement, LocalAuthority
from tests.access_helpers import load_access, search_as
from tests.factories import AMY
from tests.statements import statements_sent

COMPILED_AGAIN = (CacheStats.CACHE_MISS, CacheStats.NO_CACHE_KEY, CacheStats.NO_DIALECT_SUPPORT)
WHEN = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)

_ROWS = Prepared(
    select(
        Child.ref,
        Child.shielded,
        Child.identity,
        Child.updated_at,
        Involvement.started,
        Involvement.ended,
        Involvement.lead_professional,
    )
    .outerjoin(Involvement, Involvement.child_ref == Child.ref)
    .where(Child.local_authority == bindparam("authority"), Child.state == "active")
    .order_by(Child.ref, Involvement.started)
)


async def _register(db: Database) -> None:
    async with db.write() as session:
        session.add(LocalAuthority(name="Northshire", first_seen=WHEN))
        await session.flush()
        session.add(
            Practitioner(id="P001", given_name="Ann", family_name="Lee", role="Nurse", organisation="NHS",
                         local_authority="Northshire", phone="0", email="a@example.org", roles="practitioner",
                         status="active", updated_at=WHEN)
        )  # fmt: skip
        session.add_all(
            [
                Child(ref=9_990_000_016, local_authority="Northshire", shielded=True, state="active",
                      identity=b"\x00sealed\xff", row_mac=None, updated_at=WHEN),
                Child(ref=42, local_authority="Northshire", shielded=False, state="active",
                      identity=None, row_mac=None, updated_at=WHEN),
                Child(ref=43, local_authority="Northshire", shielded=False, state="destroyed",
                      identity=None, row_mac=None, updated_at=WHEN),
            ]
        )  # fmt: skip
        await session.flush()
        session.add(
            Involvement(child_ref=9_990_000_016, practitioner_id="P001", service="School nursing",
                        started=date(2020, 2, 29), ended=None, lead_professional=True)
        )  # fmt: skip


async def test_rows_and_values_are_what_sqlalchemy_gives(db: Database) -> None:
    await _register(db)
    async with db.read() as session:
        ours = await _ROWS.all(session, {"authority": "Northshire"})
        theirs = (await session.execute(_ROWS.statement, {"authority": "Northshire"})).all()
    assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
    assert [tuple(row) for row in ours] == [
        (42, False, None, WHEN, None, None, None),
        (9_990_000_016, True, b"\x00sealed\xff", WHEN, date(2020, 2, 29), None, True),
    ]
    assert ours[1].updated_at == WHEN and ours[1].lead_professional is True and ours[0].shielded is False
    async with db.read() as session:
        assert await _ROWS.all(session, {"authority": "Southshire"}) == []
        assert await _ROWS.first(session, {"authority": "Southshire"}) is None


async def test_a_parameter_not_given_is_refused_by_name_as_sqlalchemy_refuses_it(db: Database) -> None:
    """It was bound as NULL: the read ran and found nothing (found by review: a caller that forgot
    the day ``current`` compares with read every planned end as past)."""
    await _register(db)
    async with db.read() as session:
        with pytest.raises(TypeError, match="authority"):
            await _ROWS.all(session)
        with pytest.raises(TypeError, match="authority"):
            await _ROWS.all(session, {"other": 1})
        with pytest.raises(Exception, match="authority"):  # SQLAlchemy's own refusal says the same
            await session.execute(_ROWS.statement)


async def test_it_reads_inside_the_sessions_own_transaction(db: Database) -> None:
    async with db.write() as session:
        session.add(LocalAuthority(name="Northshire", first_seen=WHEN))
        await session.flush()
        assert await _ROWS.all(session, {"authority": "Northshire"}) == []
        session.add(Child(ref=7, local_authority="Northshire", shielded=False, state="active", updated_at=WHEN))
        await session.flush()
        # Uncommitted, so visible only on this transaction's own connection.
        assert [row.ref for row in await _ROWS.all(session, {"authority": "Northshire"})] == [7]
        await session.rollback()
    async with db.read() as session:
        assert await _ROWS.all(session, {"authority": "Northshire"}) == []


async def test_one_session_across_transactions_reads_each_ones_own(db: Database) -> None:
    """The connection is looked up once a transaction: a session's next transaction (maybe on
    another pooled connection) must not read through the last one's."""
    async with db.write() as session:
        session.add(LocalAuthority(name="Northshire", first_seen=WHEN))
    async with AsyncSession(db.engine) as session:
        assert await _ROWS.all(session, {"authority": "Northshire"}) == []
        await session.commit()
        session.add(Child(ref=8, local_authority="Northshire", shielded=False, state="active", updated_at=WHEN))
        await session.flush()
        assert [row.ref for row in await _ROWS.all(session, {"authority": "Northshire"})] == [8]
        await session.rollback()
        assert await _ROWS.all(session, {"authority": "Northshire"}) == []


async def test_engine_listeners_see_each_statement(db: Database) -> None:
    with statements_sent(db) as seen:
        async with db.read() as session:
            await _ROWS.all(session, {"authority": "Northshire"})
    assert [s for s in seen if "children.shielded" in s.sql], seen


async def test_a_driver_error_is_sqlalchemys_shows_no_parameter_and_the_pool_goes_on(db: Database) -> None:
    broken = Prepared(select(Child.ref).where(Child.ref == bindparam("ref"), text("no_such_column = 1")))
    with pytest.raises(DBAPIError) as raised:
        async with db.read() as session:
            await broken.all(session, {"ref": 9_990_000_016})
    assert "9990000016" not in str(raised.value)
    async with db.read() as session:
        assert await _ROWS.all(session, {"authority": "Northshire"}) == []


async def test_a_keyed_enquiry_compiles_nothing_once_warm(signpost: Signpost) -> None:
    """Every statement of a keyed enquiry is compiled once: a prepared read, or one from
    SQLAlchemy's compiled cache. A statement with no cache key (``insert().values(rows)`` was
    one: the lead's notice) would be compiled afresh on every lookup."""
    await load_access(signpost)
    assert (await search_as(signpost, "P002", AMY)).outcome is Outcome.ANSWERED  # warm: compiles
    await signpost.ctx.audit.settle()  # and the audit listeners (the misuse rules) have run
    compiled: list[tuple[str, str]] = []

    def record(_conn: Any, _cursor: object, statement: str, _params: object, context: Any, *_: object) -> None:
        hit = getattr(context, "cache_hit", None)
        if getattr(context, "compiled", None) is not None and hit in COMPILED_AGAIN:
            compiled.append((str(hit), " ".join(statement.split())[:120]))

    engine = signpost.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        reply = await search_as(signpost, "P003", AMY)  # another looker: the lead is told again
        await signpost.ctx.audit.settle()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert reply.outcome is Outcome.ANSWERED
    assert compiled == [], compiled


async def test_a_notice_is_stored_once_by_its_dedupe_key_and_read_back_whole(db: Database, keys: KeyRing) -> None:
    """The lead's notice goes in by a prepared INSERT … RETURNING: a repeat of its dedupe key is
    refused (no row), and what was stored reads back exactly (text, time, attempts)."""
    store = NoticeStore()
    notice = Notice("P001", "lead_informed", "Someone looked up 999 000 0018.", dedupe_key="lead:P002:P001:1")
    async with db.write() as session:
        assert await store.enqueue(session, [notice], WHEN) == 1
        assert await store.enqueue(session, [notice], WHEN) == 0
    async with db.write() as session:
        assert await store.enqueue(session, [notice], WHEN) == 0
        [(stored_id, stored)] = await pending(session, keys, WHEN)
    assert stored == notice and stored_id > 0
    async with db.read() as session:
        row = (await session.execute(select(NoticeRow.created_at, NoticeRow.attempts))).one()
    assert tuple(row) == (WHEN, 0)


async def test_rows_added_but_not_flushed_are_read_as_sqlalchemy_would(db: Database) -> None:
    async with db.write() as session:
        session.add(LocalAuthority(name="Northshire", first_seen=WHEN))
        await session.flush()
        session.add(Child(ref=9, local_authority="Northshire", shielded=False, state="active", updated_at=WHEN))
        assert [row.ref for row in await _ROWS.all(session, {"authority": "Northshire"})] == [9]


_ONE = Prepared(select(Child.ref, Child.state).where(Child.ref == bindparam("ref")))


async def test_reads_together_give_each_ones_rows_as_alone(db: Database) -> None:
    """``all_of``: several statements in one round trip give each what ``all`` gives alone, in order."""
    await _register(db)
    async with db.read() as session:
        together = await all_of(
            session, [(_ROWS, {"authority": "Northshire"}), (_ONE, {"ref": 43}), (_ONE, {"ref": 5})]
        )
        alone = [
            await _ROWS.all(session, {"authority": "Northshire"}),
            await _ONE.all(session, {"ref": 43}),
            await _ONE.all(session, {"ref": 5}),
        ]
    assert together == alone and [tuple(row) for row in together[1]] == [(43, "destroyed")] and together[2] == []
    with pytest.raises(DBAPIError) as raised:
        async with db.read() as session:
            broken = Prepared(select(Child.ref).where(Child.ref == bindparam("ref"), text("no_such_column = 1")))
            await all_of(session, [(_ONE, {"ref": 43}), (broken, {"ref": 9_990_000_016})])
    assert "9990000016" not in str(raised.value)


async def test_rows_read_ahead_are_taken_once_in_their_own_transaction_only(db: Database) -> None:
    """Rows read ahead (``read_ahead``) stand in for the same statement with the same parameters,
    once, in the transaction that read them; any other read, or a later transaction, reads afresh."""
    await _register(db)
    async with AsyncSession(db.engine) as session:
        [rows] = await all_of(session, [(_ONE, {"ref": 42})])
        read_ahead(session, _ONE, {"ref": 42}, rows)
        statements: list[str] = []

        def record(_conn: Any, _cursor: object, statement: str, *_: object) -> None:
            statements.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", record)
        try:
            assert [tuple(row) for row in await _ONE.all(session, {"ref": 42})] == [(42, "active")]
            assert statements == []  # taken, not read
            assert [tuple(row) for row in await _ONE.all(session, {"ref": 42})] == [(42, "active")]
            assert len(statements) == 1  # once only
            read_ahead(session, _ONE, {"ref": 43}, [])
            assert [tuple(row) for row in await _ONE.all(session, {"ref": 43})] == []
            assert len(statements) == 1  # no row is an answer too
            read_ahead(session, _ONE, {"ref": 42}, rows)
            await session.rollback()  # another transaction: what this one read ahead is not its
            assert [tuple(row) for row in await _ONE.all(session, {"ref": 42})] == [(42, "active")]
            assert len(statements) >= 2
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_a_keyed_lookup_reads_its_child_with_the_askers_standing_in_one_trip(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: the asker's standing (identity, step-up, switch-off, delivery seen) and the child,
    its key, its signposts and who is told are read in one round trip; on SQLite, one hand-off to
    aiosqlite's thread, the transaction's BEGIN sent in it (a hand-off is a thread wake-up each way)."""
    await load_access(signpost)
    assert (await search_as(signpost, "P002", AMY)).outcome is Outcome.ANSWERED  # stepped up, warm
    await signpost.ctx.audit.settle()
    reads: list[str] = []

    def record(_conn: Any, _cursor: object, statement: str, *_: object) -> None:
        if statement.split(None, 1)[0].upper() in {"SELECT", "BEGIN"}:
            reads.append(" ".join(statement.split()).lower())

    trips: list[str] = []
    if signpost.ctx.db.dialect == "sqlite":
        handed: Any = aiosqlite.core.Connection._execute

        async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            trips.append(getattr(fn, "__name__", "?"))
            return await handed(self, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    engine = signpost.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        reply = await search_as(signpost, "P003", AMY)  # the lead is told of Tom's lookup
    finally:
        event.remove(engine, "before_cursor_execute", record)
        await signpost.ctx.audit.settle()
    assert reply.outcome is Outcome.ANSWERED and len(reply.signposts) > 0
    first_reads = reads[: reads.index(next(r for r in reads if " children" in r)) + 1]
    assert [r for r in first_reads if r.startswith("select")][-2:] == [
        next(r for r in first_reads if "practitioners" in r and "children" not in r),
        next(r for r in first_reads if " children" in r),
    ]
    assert sum(" children" in r and " involvements" in r for r in reads) == 1  # read once, never again
    if trips:
        assert trips[0] == "run_sqlite_many", trips  # BEGIN, standing and child together
