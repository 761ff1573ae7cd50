"""Possible matches filed by tag (``audit_candidates``): a child's subject access report finds the
searches that had it as a possible match through the table, still after a corrected date of birth
gives it a new tag, never after it is destroyed; the table's migration files the events already
written; the table is append-only, as the audit is.

A brother's name on Ben's date of birth ("Sam Okafor 12/09/2016") is ambiguous,
with Ben as its one weak candidate: the event records Ben's tag, never his reference."""

from __future__ import annotations

import re
from typing import cast

import pytest
from alembic import command
from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import DBAPIError

from bot.app import Signpost
from handlers.vocabulary import Outcome
from store.audit import candidates
from store.audit.candidates import CANDIDATES_PREFIX
from store.audit.log import EventFilter, iter_events
from store.audit.sar import POSSIBLE_MATCH, SarReport, subject_access
from store.audit.verify import verify
from store.db import alembic_config
from store.register.feeds import Feed, import_feeds
from store.tables.audit import AuditCandidate, AuditEvent
from store.tables.base import Base
from tests.factories import AMY, BEN, CHILDREN_HEADER, load_standard
from tests.stepup_helpers import say_fresh
from tests.store.audit.tamper import run_sql

SEARCH_FOR_BENS_BROTHER = "Sam Okafor 12/09/2016"
WORDS = "searched for by name and date of birth; " + POSSIBLE_MATCH


def bens_row(born: str) -> Feed:
    return Feed("children.csv", f"{CHILDREN_HEADER}\n{BEN},Ben,Okafor,,{born},M,M4 5CD,Northshire,false\n")


async def report(app: Signpost, ref: str) -> SarReport:
    return await subject_access(app.ctx.db, app.ctx.sealer, int(ref), app.ctx.clock.now())


async def tag_of(app: Signpost, ref: str) -> str | None:
    async with app.ctx.db.read() as session:
        return await app.ctx.sealer.candidate_tag(session, int(ref))


async def filed(app: Signpost) -> list[tuple[str, int]]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(select(AuditCandidate.tag, AuditCandidate.seq).order_by(AuditCandidate.seq))
        return [(tag, seq) for tag, seq in rows]


async def ambiguous(app: Signpost) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.outcome == Outcome.AMBIGUOUS.value).order_by(AuditEvent.seq)
        return list((await session.execute(query)).scalars())


async def exported_for(app: Signpost, ref: str) -> list[int]:
    """The sequence numbers ``audit export --child`` writes out for ``ref`` (its filter, as built there)."""
    where = EventFilter(child_ref=int(ref), candidate_tag=await tag_of(app, ref))
    return [int(str(event["seq"])) async for event in iter_events(app.ctx.db, where)]


async def test_the_search_is_filed_under_the_candidates_tag_with_the_event(signpost: Signpost) -> None:
    """The event and its one row in the table are written together: Ben's tag and the event's seq,
    nothing else; Ben's report and export find it, Amy's do not."""
    await load_standard(signpost)
    assert (await say_fresh(signpost, "P003", SEARCH_FOR_BENS_BROTHER)).outcome is Outcome.AMBIGUOUS
    (event,) = await ambiguous(signpost)
    tag = await tag_of(signpost, BEN)
    assert tag is not None and event.detail == CANDIDATES_PREFIX + tag
    assert await filed(signpost) == [(tag, event.seq)]

    assert [(e.seq, e.role) for e in (await report(signpost, BEN)).entries] == [(event.seq, "Teacher")]
    assert WORDS in (await report(signpost, BEN)).to_text()
    assert await exported_for(signpost, BEN) == [event.seq]
    assert (await report(signpost, AMY)).entries == ()
    assert await exported_for(signpost, AMY) == []


async def test_an_ambiguous_search_without_weak_candidates_files_nothing(signpost: Signpost) -> None:
    """Twins strong enough to accept are the event's subjects (found through ``audit_subjects``);
    no tag is filed, and neither is one for any answered search."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", "Lily Brown 20/01/2019")
    await say_fresh(signpost, "P001", "Amy Jones 03/04/2014")
    assert len(await ambiguous(signpost)) == 1
    assert await filed(signpost) == []


async def test_after_a_corrected_date_of_birth_the_report_still_shows_earlier_possible_matches(
    signpost: Signpost,
) -> None:
    """A feed corrects Ben's date of birth: he gets a fresh data key, and so a new tag. The earlier
    search's event still holds the old tag (it is chained, never rewritten), yet Ben's report and
    export show it, as they show a search made after the correction; the chain verifies."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", SEARCH_FOR_BENS_BROTHER)
    old = await tag_of(signpost, BEN)

    done = await import_feeds(signpost.ctx.db, signpost.ctx.keys, [bens_row("2016-09-21")], signpost.ctx.clock.now())
    assert done.shredded == 1  # moved to a fresh data key
    new = await tag_of(signpost, BEN)
    assert new is not None and old is not None and new != old

    assert (await say_fresh(signpost, "P001", "Sam Okafor 21/09/2016")).outcome is Outcome.AMBIGUOUS
    before, after = await ambiguous(signpost)
    assert before.detail == CANDIDATES_PREFIX + old  # the event as it was written
    assert after.detail == CANDIDATES_PREFIX + new
    assert sorted(await filed(signpost)) == sorted([(old, before.seq), (new, before.seq), (new, after.seq)])

    sar = await report(signpost, BEN)
    assert [(e.seq, e.role, e.outcome) for e in sar.entries] == [
        (before.seq, "Teacher", "ambiguous"),
        (after.seq, "Social worker", "ambiguous"),
    ]
    assert sar.to_text().count(WORDS) == 2
    assert await exported_for(signpost, BEN) == [before.seq, after.seq]
    assert (await verify(signpost.ctx.db, signpost.ctx.signer.public)).ok


async def test_once_destroyed_no_report_or_export_finds_the_child_as_a_possible_match(signpost: Signpost) -> None:
    """Ben is a possible match, his date of birth is corrected (a new tag, the search filed under it
    too), then a second correction puts him past 24 and he is destroyed. Neither his report nor his
    export finds the search, no one else's does, no row but his own names him, the table holds
    only tags and sequence numbers, and the chain verifies."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", SEARCH_FOR_BENS_BROTHER)
    now = signpost.ctx.clock.now()
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [bens_row("2016-09-21")], now)
    assert [e.outcome for e in (await report(signpost, BEN)).entries] == ["ambiguous"]

    done = await import_feeds(signpost.ctx.db, signpost.ctx.keys, [bens_row("2000-09-12")], now, destroy_redated=True)
    assert done.past_retention == 1
    assert await tag_of(signpost, BEN) is None

    assert (await report(signpost, BEN)).entries == ()
    assert await exported_for(signpost, BEN) == []
    for other in (AMY, "9990000034", "9990000042"):
        assert (await report(signpost, other)).entries == (), other
    rows = await filed(signpost)
    assert len(rows) == 2 and all(re.fullmatch(r"[0-9a-f]{16}", tag) for tag, _ in rows)
    async with signpost.ctx.db.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name != "children":
                found = (await session.execute(select(table))).all()
                assert not any(BEN in repr(tuple(row)) for row in found), table.name
    assert (await verify(signpost.ctx.db, signpost.ctx.signer.public)).ok


async def test_the_table_is_append_only(signpost: Signpost) -> None:
    """Rows are never changed or taken away, as the events they file are not."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", SEARCH_FOR_BENS_BROTHER)
    for statement in ("UPDATE audit_candidates SET seq = seq + 1", "DELETE FROM audit_candidates"):
        with pytest.raises(DBAPIError, match="append-only"):
            await run_sql(signpost.ctx.db, statement)
    if signpost.ctx.db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            await run_sql(signpost.ctx.db, "TRUNCATE audit_candidates")
    assert len(await filed(signpost)) == 1


def _before_the_table(connection: Connection) -> None:
    """Take the store back to before ``audit_candidates`` (its revision alone is undone)."""
    command.downgrade(alembic_config(connection), "0024_audit_candidates-1")


def _backfill_one_event_at_a_time(connection: Connection) -> int:
    """The table made afresh and filled from the events, one event a read (its paging), then dropped."""
    table = cast(Table, AuditCandidate.__table__)
    table.create(connection)
    try:
        return candidates.backfill(connection, chunk=1)
    finally:
        table.drop(connection)


async def test_the_migration_files_the_possible_matches_of_events_written_before_it(signpost: Signpost) -> None:
    """A store whose events were written before the table existed (two searches with Ben as a
    possible match, an ambiguous one with twins as subjects, an answered one): the table's revision
    undone, then the store upgraded again. The backfill reads the tags from the events' details;
    Ben's report and export find both searches, and the chain (never touched) verifies."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", SEARCH_FOR_BENS_BROTHER)
    await say_fresh(signpost, "P001", "Lily Brown 20/01/2019")
    await say_fresh(signpost, "P001", "Amy Jones 03/04/2014")
    await say_fresh(signpost, "P002", SEARCH_FOR_BENS_BROTHER)
    written = await filed(signpost)
    assert len(written) == 2

    db = signpost.ctx.db
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(signpost_write=True)
        await conn.run_sync(_before_the_table)
        assert await conn.run_sync(_backfill_one_event_at_a_time) == 2
        await conn.commit()
    async with db.read() as session:
        with pytest.raises(DBAPIError):  # gone: what a store from before looks like
            await session.execute(select(AuditCandidate.seq))

    await db.migrate()
    assert await filed(signpost) == written
    searches = [e.seq for e in await ambiguous(signpost) if e.detail.startswith(CANDIDATES_PREFIX)]
    assert [e.seq for e in (await report(signpost, BEN)).entries] == searches
    assert await exported_for(signpost, BEN) == searches
    assert (await verify(db, signpost.ctx.signer.public)).ok
    for statement in ("UPDATE audit_candidates SET seq = seq + 1", "DELETE FROM audit_candidates"):
        with pytest.raises(DBAPIError, match="append-only"):  # its triggers are back too
            await run_sql(db, statement)
