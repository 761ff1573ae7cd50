"""Retention: archive at 18, destroy at 24, leap days, catch-up, replicas, dry run, compaction."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from bot.app import Signpost, build
from handlers import lead, transparency
from handlers.lifecycle.flows import finish_retention_puncture
from handlers.vocabulary import Action, Notice, Origin, Outcome
from store.audit.log import append, origin_event
from store.db import Database
from store.keys import keychain
from store.keys.crypto import DecryptionError, KeyRing, child_aad
from store.keys.keychain import birthday, dobs_turning
from store.lifecycle import retention as lifecycle
from store.people import access, relay
from store.register import children
from store.register.children import retention_term
from store.register.feeds import Feed, import_feeds
from store.register.terms import TERMS_VERSION, count_keys
from store.tables import child_rows
from store.tables.audit import AuditEvent, AuditTermKey
from store.tables.delivery import Notice as NoticeRow
from store.tables.lifecycle import Meta
from store.tables.people import AccessGrant, AccessRequest
from store.tables.register import Child, ChildKey, ChildTerm, Involvement, NameCount
from tests.factories import AMY, BEN, INVOLVEMENTS_HEADER, NEWER_INDEX, load_standard, record_index_version
from tests.stepup_helpers import say_fresh
from tests.store.lifecycle.lifecycle_data import (
    AFTER_LEAP,
    LEAP_DAY,
    MARKER,
    OVER_24,
    TURNS_18,
    TURNS_24,
    at,
    load,
    retention_on,
    snapshot,
)

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)


async def state_of(app: Signpost, ref: str) -> str | None:
    async with app.ctx.db.read() as session:
        record = await children.find(session, app.ctx.keys, int(ref))
    return None if record is None else record.state


def test_leap_day_birthdays_fall_on_1_march_in_common_years() -> None:
    """29 February children turn 18 on 1 March in a common year and 24 on 29 February in a leap year."""
    leap = date(2008, 2, 29)
    assert birthday(leap, 18) == date(2026, 3, 1)
    assert birthday(leap, 24) == date(2032, 2, 29)
    assert dobs_turning(date(2026, 3, 1), 18) == [leap, date(2008, 3, 1)]
    assert dobs_turning(date(2026, 2, 28), 18) == [date(2008, 2, 28)]
    assert dobs_turning(date(2032, 2, 29), 24) == [leap]
    assert dobs_turning(date(2100, 3, 1), 24) == [date(2076, 2, 29), date(2076, 3, 1)]  # 2100 is no leap year


async def test_import_never_stores_a_child_past_24_and_archives_adults(signpost: Signpost) -> None:
    """A child already 24 on the import date is never stored (counted in the import report); one
    already 18 is stored archived; every data key is under its birth-date key from the start."""
    report = await load(signpost)
    assert report.past_retention == 1 and report.notes()
    assert await state_of(signpost, OVER_24) is None
    assert await state_of(signpost, TURNS_24) == "archived"
    assert await state_of(signpost, TURNS_18) == "active"
    assert await state_of(signpost, LEAP_DAY) == "archived"  # 18 since 1 March 2026
    async with signpost.ctx.db.read() as session:
        kek_ids = set((await session.execute(select(ChildKey.kek_id))).scalars())
    assert kek_ids and all(k.startswith("d") for k in kek_ids)
    run = await retention_on(signpost, NOV_2)
    assert (run.destroyed, run.archived, run.sealed_in) == (0, 0, 0)


async def test_seal_in_still_moves_keys_of_a_store_written_before_cohort_wrapping(signpost: Signpost) -> None:
    """A store written before data keys were wrapped at import (master-wrapped keys): the first
    run moves every such key under its birth-date key, archiving or destroying on the way."""
    await load(signpost)
    keys = signpost.ctx.keys
    async with signpost.ctx.db.write() as session:  # as an older Signpost wrote them
        for ref, kek_id, wrapped in (
            await session.execute(select(ChildKey.child_ref, ChildKey.kek_id, ChildKey.wrapped))
        ).all():
            data_key = keys.unwrap(kek_id, wrapped, child_aad(ref))
            master, rewrapped = keys.wrap(data_key, child_aad(ref))
            await session.execute(
                update(ChildKey).where(ChildKey.child_ref == ref).values(kek_id=master, wrapped=rewrapped)
            )
        await session.execute(update(Child).where(Child.ref == int(TURNS_24)).values(state="active"))
    report = await retention_on(signpost, NOV_2)
    assert (report.sealed_in, report.archived) == (10, 1)
    assert await state_of(signpost, TURNS_24) == "archived"
    async with signpost.ctx.db.read() as session:
        kek_ids = set((await session.execute(select(ChildKey.kek_id))).scalars())
    assert kek_ids and all(k.startswith("d") for k in kek_ids)


async def test_child_archived_on_18th_birthday_is_found_by_no_search(signpost: Signpost) -> None:
    """On the 18th birthday the record is archived: keyed and demographic searches say nothing about it."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    assert (await say_fresh(signpost, "P001", TURNS_18)).outcome is Outcome.ANSWERED
    report = await retention_on(signpost, NOV_3)
    assert report.archived == 1
    assert await state_of(signpost, TURNS_18) == "archived"
    keyed = await say_fresh(signpost, "P001", TURNS_18)
    demographic = await say_fresh(signpost, "P001", "Omar Patel 03/11/2008")
    assert keyed.outcome is Outcome.NO_MATCH and not keyed.signposts and keyed.child_ref is None
    assert demographic.outcome is Outcome.NO_MATCH and not demographic.signposts
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED  # others unaffected


async def test_child_destroyed_on_24th_birthday_is_shredded(signpost: Signpost) -> None:
    """On the 24th birthday: key, index rows and involvements gone, identity NULL, audit terms
    sealed under the child's key undecryptable, and the birth-date key gone from the key file."""
    await load(signpost)
    # An audit event whose terms are sealed under the child's key (an access request's purpose).
    async with signpost.ctx.db.write() as session:
        sealed, terms_key = await signpost.ctx.sealer.seal(
            session, "purpose", (int(TURNS_24),), signpost.ctx.clock.now(), writer=True
        )
        assert terms_key == f"child:{TURNS_24}"
        await append(
            session,
            [
                origin_event(
                    Origin.SCHEDULER, Action.RETENTION, signpost.ctx.clock.now(), terms=sealed, terms_key=terms_key
                )
            ],
        )
    await retention_on(signpost, NOV_2)
    async with signpost.ctx.db.read() as session:
        identity = (await children.load_identities(session, signpost.ctx.keys, [int(TURNS_24)]))[int(TURNS_24)]
        own_terms = children.terms_for(signpost.ctx.keys, identity)
        cohort = (
            await session.execute(select(ChildKey.kek_id).where(ChildKey.child_ref == int(TURNS_24)))
        ).scalar_one()
    report = await retention_on(signpost, NOV_3)
    assert report.destroyed == 1
    async with signpost.ctx.db.read() as session:
        child = await session.get(Child, int(TURNS_24))
        assert child is not None and child.state == "destroyed" and child.identity is None
        assert await session.get(ChildKey, int(TURNS_24)) is None
        left = await session.execute(select(func.count()).select_from(ChildTerm).where(ChildTerm.term.in_(own_terms)))
        assert left.scalar_one() == 0
        inv = select(func.count()).select_from(Involvement).where(Involvement.child_ref == int(TURNS_24))
        assert (await session.execute(inv)).scalar_one() == 0
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.terms_key == f"child:{TURNS_24}"))
        ).scalar_one()
        assert event.terms is not None and event.terms_key is not None
        assert await signpost.ctx.sealer.open(session, event.terms, event.terms_key) is None
    assert signpost.ctx.keys.path is not None
    on_disk = signpost.ctx.keys.load_or_create(signpost.ctx.keys.path)
    keychain.install(on_disk, NOV_3)
    assert cohort not in on_disk.keks and cohort not in signpost.ctx.keys.keks


async def test_access_requests_and_grants_go_with_a_child_destroyed_at_24(signpost: Signpost) -> None:
    """Who asked about a child, why, and who may see it are the child's data too: on the 24th
    birthday its access requests and grants are deleted; another child's stay."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    now = signpost.ctx.clock.now()
    async with signpost.ctx.db.write() as session:
        for ref in (TURNS_24, AMY):
            new = access.NewRequest("P002", int(ref), "Northshire", None, None)
            request_id = await access.open_request(session, new, now, timedelta(days=3), None)
            request = await access.get_request(session, signpost.ctx.keys, request_id)
            assert request is not None
            await access.create_grant(session, request, "DM01", now, now + timedelta(days=3))

    async def refs(model: type[AccessRequest] | type[AccessGrant]) -> list[int]:
        async with signpost.ctx.db.read() as session:
            return sorted((await session.execute(select(model.child_ref))).scalars())

    assert await refs(AccessRequest) == await refs(AccessGrant) == sorted([int(AMY), int(TURNS_24)])
    report = await retention_on(signpost, NOV_3)
    assert report.destroyed == 1 and await state_of(signpost, TURNS_24) == "destroyed"
    assert await refs(AccessRequest) == await refs(AccessGrant) == [int(AMY)]


async def test_every_table_with_a_child_column_loses_the_destroyed_childs_rows(signpost: Signpost) -> None:
    """Whatever tables declare a child column (store/tables), the child destroyed at 24 has a row
    in each before and none after; another child's rows are untouched."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    now = signpost.ctx.clock.now()
    async with signpost.ctx.db.write() as session:
        for ref in (TURNS_24, AMY):
            new = access.NewRequest("P002", int(ref), "Northshire", None, None)
            request = await access.get_request(
                session, signpost.ctx.keys, await access.open_request(session, new, now, timedelta(days=3), None)
            )
            assert request is not None
            await access.create_grant(session, request, "DM01", now, now + timedelta(days=3))
            await relay.create(session, int(ref), "Northshire", "P002", ["DM01"], "duty_manager", b"sealed", now)
            key = lead.dedupe_key("P002", "P001", int(ref), f"{now:%Y-%m-%d}")  # a lookup told to its lead
            await signpost.ctx.notices.enqueue(
                session, [Notice("P001", lead.NOTICE_KIND, "looked up", dedupe_key=key)], now
            )

    async def rows_of(ref: str) -> dict[str, int]:
        async with signpost.ctx.db.read() as session:
            return {
                table.name: (
                    await session.execute(select(func.count()).select_from(table).where(table.c[column] == int(ref)))
                ).scalar_one()
                for table, column in child_rows()
            }

    doomed, other = await rows_of(TURNS_24), await rows_of(AMY)
    assert 0 not in doomed.values() and 0 not in other.values(), (doomed, other)
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    assert await rows_of(TURNS_24) == dict.fromkeys(doomed, 0)
    assert await rows_of(AMY) == other


async def test_leap_day_child_archived_on_1_march_of_a_common_year(signpost: Signpost) -> None:
    """Born 29 February 2008: still active on 28 February 2026, archived on 1 March 2026."""
    signpost.ctx.clock.set(at(date(2026, 2, 27)))  # type: ignore[attr-defined]
    await load(signpost)
    await retention_on(signpost, date(2026, 2, 28))
    assert await state_of(signpost, LEAP_DAY) == "active"
    report = await retention_on(signpost, date(2026, 3, 1))
    assert await state_of(signpost, LEAP_DAY) == "archived"
    assert await state_of(signpost, AFTER_LEAP) == "archived"
    assert report.archived == 2


async def test_leap_day_child_destroyed_on_29_february_of_a_leap_year(signpost: Signpost) -> None:
    """Born 29 February 2008: destroyed on 29 February 2032 (not the 28th); 1 March 2008 a day later."""
    signpost.ctx.clock.set(at(date(2032, 2, 27)))  # type: ignore[attr-defined]
    await load(signpost)
    await retention_on(signpost, date(2032, 2, 28))
    assert await state_of(signpost, LEAP_DAY) == "archived"
    await retention_on(signpost, date(2032, 2, 29))
    assert await state_of(signpost, LEAP_DAY) == "destroyed"
    assert await state_of(signpost, AFTER_LEAP) == "archived"
    await retention_on(signpost, date(2032, 3, 1))
    assert await state_of(signpost, AFTER_LEAP) == "destroyed"


async def test_missed_days_are_caught_up(signpost: Signpost) -> None:
    """After four days without a run, the next run processes each missed day in order."""
    signpost.ctx.clock.set(at(date(2026, 11, 1)))  # type: ignore[attr-defined]
    await load(signpost)
    await retention_on(signpost, date(2026, 11, 1))
    report = await retention_on(signpost, date(2026, 11, 5))
    assert (report.first_day, report.last_day) == (NOV_2, date(2026, 11, 5))
    assert await state_of(signpost, TURNS_18) == "archived"
    assert await state_of(signpost, TURNS_24) == "destroyed"
    async with signpost.ctx.db.read() as session:
        assert await lifecycle.last_day(session) == date(2026, 11, 5)


async def test_catch_up_is_bounded_per_call_and_resumes(signpost: Signpost) -> None:
    """A long gap is worked through in bounded steps; the next call goes on where the last stopped."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    signpost.ctx.clock.set(at(date(2026, 12, 31)))  # type: ignore[attr-defined]
    now = signpost.ctx.clock.now()
    first = await lifecycle.run(signpost.ctx.db, signpost.ctx.keys, now, max_days=10, catch_up_to=now.date())
    assert (first.first_day, first.last_day, first.pending_days) == (NOV_3, date(2026, 11, 12), 49)
    second = await lifecycle.run(signpost.ctx.db, signpost.ctx.keys, now, max_days=100, catch_up_to=now.date())
    assert (second.first_day, second.pending_days) == (date(2026, 11, 13), 0)


async def test_two_replicas_running_at_once_process_each_day_once(db_url: str, signpost: Signpost) -> None:
    """Two processes running retention together archive and destroy each child exactly once."""
    await load(signpost)
    await retention_on(signpost, date(2026, 11, 1))
    other_db = Database.connect(db_url)
    assert signpost.ctx.keys.path is not None
    other = build(other_db, KeyRing.load_or_create(signpost.ctx.keys.path), signpost.ctx.clock)
    try:
        signpost.ctx.clock.set(at(date(2026, 11, 4)))  # type: ignore[attr-defined]
        from handlers.lifecycle.flows import retention_tick

        a, b = await asyncio.gather(
            retention_tick(signpost.ctx, signpost.ctx.clock.now()),
            retention_tick(other.ctx, other.ctx.clock.now()),
        )
    finally:
        await other.close()
    assert a.destroyed + b.destroyed == 1
    assert a.archived + b.archived == 1  # TURNS_18 (TURNS_24 was archived by the first run)
    assert await state_of(signpost, TURNS_24) == "destroyed"


async def test_dry_run_changes_nothing_and_predicts_the_real_run(signpost: Signpost) -> None:
    """A dry run as of a future date changes no row anywhere, and its counts are what the run does."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    before = await snapshot(signpost.ctx.db)
    preview = await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, NOV_2, NOV_3)
    assert await snapshot(signpost.ctx.db) == before
    assert (preview.archived, preview.destroyed) == (1, 1)
    real = await retention_on(signpost, NOV_3)
    assert (real.archived, real.destroyed) == (preview.archived, preview.destroyed)


async def test_admins_get_a_retention_notice_with_counts_only(signpost: Signpost) -> None:
    """Every admin is told the counts after a run; the notice holds no name, date of birth or reference."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    await retention_on(signpost, NOV_3)
    async with signpost.ctx.db.read() as session:
        rows = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "retention"))).scalars().all()
    assert {r.recipient_id for r in rows} == {"AD01", "AD02"}
    latest = [r.body for r in rows if "03/11/2026" in r.body]
    assert latest and all("1 record was archived at 18, 1 was destroyed at 24" in body for body in latest)
    for body in (r.body for r in rows):
        for secret in (MARKER, "Tara", "Omar", "2002", "2008-11-03", TURNS_24, TURNS_18):
            assert secret not in body


async def test_audit_term_keys_older_than_24_months_are_destroyed(signpost: Signpost) -> None:
    """Month keys for terms that touched no single child live 24 months; newer ones move under
    their month key and still open."""
    await load(signpost)
    sealer = signpost.ctx.sealer
    async with signpost.ctx.db.read() as session:  # as the dispatcher seals (it writes the key itself)
        old, old_key = await sealer.seal(session, "Old Search 01/01/2015", (), at(date(2024, 9, 15)))
        new, new_key = await sealer.seal(session, "New Search 01/01/2015", (), at(date(2026, 10, 15)))
    report = await retention_on(signpost, NOV_2)
    assert report.period_keys_destroyed == 1
    async with signpost.ctx.db.read() as session:
        periods = {row.period: row.kek_id for row in (await session.execute(select(AuditTermKey))).scalars()}
        assert "2024-09" not in periods and periods["2026-10"].startswith("m")
        assert old is not None and old_key is not None and new is not None and new_key is not None
        assert await sealer.open(session, old, old_key) is None
        fresh_sealer = type(sealer)(signpost.ctx.db, signpost.ctx.keys)  # no cached month key
        assert await fresh_sealer.open(session, new, new_key) == "New Search 01/01/2015"


async def test_storage_is_compacted_after_a_run(signpost: Signpost) -> None:
    """After a run SQLite's WAL is checkpointed and truncated; PostgreSQL vacuums the affected tables.
    The log says so: the run's line says compaction comes after its writes, and a second line says
    what compaction did (never an empty ``compaction=``)."""
    await load(signpost)
    with capture_logs() as logs:
        report = await retention_on(signpost, NOV_2)
    [run] = [entry for entry in logs if entry["event"] == "retention_run"]
    [compacted] = [entry for entry in logs if entry["event"] == "retention_compacted"]
    assert run["compaction"] == "deferred" and compacted["compaction"] == report.compaction != ""
    if signpost.ctx.db.dialect == "sqlite":
        assert report.compaction.startswith("sqlite wal_checkpoint busy=0")
        path = str(signpost.ctx.db.engine.url.database) + "-wal"
        import os

        assert os.path.getsize(path) == 0
    else:
        assert report.compaction == f"postgresql vacuum {len(lifecycle.AFFECTED_TABLES)} tables"
        vacuumed = await scalar_pg_vacuumed(signpost.ctx.db)
        assert set(lifecycle.AFFECTED_TABLES) <= vacuumed


async def scalar_pg_vacuumed(db: Database) -> set[str]:
    from sqlalchemy import text

    async with db.read() as session:
        rows = await session.execute(text("SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL"))
        return set(rows.scalars())


async def test_compaction_held_up_by_a_reader_is_reported_pending_and_retried(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another connection holds a read transaction open, compaction cannot finish: the run
    does not claim success (report, summary and an admin notice say compaction is pending, and on
    SQLite the destroyed child's wrapped key is indeed still in the files). Once the reader is
    gone, the next run compacts and the bytes are gone."""
    monkeypatch.setattr(lifecycle, "COMPACTION_WAIT", 0.6)  # bounded wait, kept short for the test
    await load(signpost)
    await retention_on(signpost, NOV_2)
    db = signpost.ctx.db
    async with db.read() as session:
        wrapped = (
            await session.execute(select(ChildKey.wrapped).where(ChildKey.child_ref == int(TURNS_24)))
        ).scalar_one()
    reader = await db.engine.connect()
    try:
        if db.dialect == "postgresql":
            reader = await reader.execution_options(isolation_level="REPEATABLE READ")
        await reader.begin()
        await reader.execute(select(func.count()).select_from(ChildKey))  # the snapshot is taken
        report = await retention_on(signpost, NOV_3)
        assert report.destroyed == 1
        assert report.compaction_pending, report.compaction
        assert re.search(r"; pending after (1 attempt|(?!1 )\d+ attempts): ", report.compaction), report.compaction
        assert "compaction is pending" in report.summary()
        if db.dialect == "sqlite":
            assert wrapped in _sqlite_bytes(db)  # the report is truthful: the bytes are still there
    finally:
        await reader.close()
    async with db.read() as session:
        notices = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "retention"))).scalars().all()
    pending = [n for n in notices if lifecycle.COMPACTION_PENDING in n.body]
    assert {n.recipient_id for n in pending} == {"AD01", "AD02"}
    again = await retention_on(signpost, NOV_3)  # no new day: the run still retries compaction
    assert not again.compaction_pending and "pending" not in again.summary(), again.compaction
    if db.dialect == "sqlite":
        assert wrapped not in _sqlite_bytes(db)


async def test_a_full_compaction_no_reader_holds_up_is_done_at_once_not_pending(signpost: Signpost) -> None:
    """Decommissioning compacts with ``full``. On PostgreSQL VACUUM FULL reports nothing to the
    statistics, so the dead row versions the deletes left stayed counted as kept: every full
    compaction waited out its limit and said "pending" though nothing held it up."""
    await load(signpost)
    db = signpost.ctx.db
    async with db.write() as session:
        gone = await session.execute(delete(Involvement))
        assert gone.rowcount > 0  # type: ignore[attr-defined]
        if db.dialect == "postgresql":
            await session.execute(select(func.pg_stat_force_next_flush()))  # the deletes counted at commit
    result = await lifecycle.compact_checked(db, lifecycle.AFFECTED_TABLES, full=True, wait=1.0)
    assert result.done and "pending" not in result.detail, result.detail


def _sqlite_bytes(db: Database) -> bytes:
    import os

    path = str(db.engine.url.database)
    return b"".join(open(p, "rb").read() for p in (path, path + "-wal") if os.path.exists(p))


class StepRefused(Exception):
    pass


async def test_a_step_that_destroys_commits_only_with_its_own_audit_event(signpost: Signpost) -> None:
    """A run killed part way (kill -9 after a day's commit) left thousands of children destroyed
    with no audit event: the run's one event was written after every step. Each step that archives
    or destroys now writes its event in its own transaction, so a step whose event is not written
    is not applied either."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    signpost.ctx.clock.set(at(NOV_3))  # type: ignore[attr-defined]

    async def refused(session: object, detail: str, archived: int, destroyed: int) -> None:
        raise StepRefused(detail)

    with pytest.raises(StepRefused, match=r"^day 2026-11-03: archived 1 destroyed 1$"):
        await lifecycle.run(signpost.ctx.db, signpost.ctx.keys, signpost.ctx.clock.now(), audit_step=refused)
    assert await state_of(signpost, TURNS_24) == "archived"  # the step rolled back with its event
    assert await state_of(signpost, TURNS_18) == "active"

    await retention_on(signpost, NOV_3)
    assert await state_of(signpost, TURNS_24) == "destroyed"
    async with signpost.ctx.db.read() as session:
        details = (
            await session.execute(select(AuditEvent.detail).where(AuditEvent.action == Action.RETENTION.value))
        ).scalars()
        details_seen = list(details)
    assert "day 2026-11-03: archived 1 destroyed 1" in details_seen
    # The transparency report adds up these events: each record once, the run's totals not again.
    found = [transparency._RETENTION.search(d) for d in details_seen]
    assert sum(int(f.group(2)) for f in found if f) == 1


async def test_a_destroyed_childs_names_leave_the_name_counts(signpost: Signpost) -> None:
    """The counts kept a destroyed child's rare family name at 1, so with the index key anyone
    could confirm it had been on the register. Destruction counts the names out, and a name no
    child bears any more has no row; a name others still bear keeps their count."""
    await load(signpost)
    keys = signpost.ctx.keys
    async with signpost.ctx.db.read() as session:
        identity = (await children.load_identities(session, keys, [int(TURNS_24)]))[int(TURNS_24)]
    held = keys.term_keys
    given, family = (held.blind(held.for_year(identity.date_of_birth.year), key) for key in count_keys(identity))

    async def counts() -> dict[int, int]:
        async with signpost.ctx.db.read() as session:
            rows = await session.execute(select(NameCount.term, NameCount.children))
            return {term: n for term, n in rows.all() if term in (family, given)}

    assert identity.family_name == MARKER
    await retention_on(signpost, NOV_2)
    before = await counts()
    assert before[family] == 1
    await retention_on(signpost, NOV_3)
    after = await counts()
    assert family not in after
    assert after.get(given, 0) == before[given] - 1


async def _retention_details(app: Signpost) -> list[str]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(select(AuditEvent.detail).where(AuditEvent.action == Action.RETENTION.value))
        return [detail or "" for detail in rows.scalars()]


def _counted(details: list[str]) -> tuple[int, int]:
    """(archived, destroyed) as the transparency report adds them up from the audit events."""
    found = [m for m in (transparency._RETENTION.search(d) for d in details) if m]
    return sum(int(m.group(1)) for m in found), sum(int(m.group(2)) for m in found)


async def test_a_first_run_days_after_the_import_works_through_every_day_since(signpost: Signpost) -> None:
    """The first run ever started with its own day: a child who turned 18 between the import and
    that run was never archived (still found by ordinary searches), and one who turned 24 was
    destroyed by the chain's puncture with no audit event and no count. It starts with the day
    of the import, each day audited and counted, and the dry run and progress say so beforehand."""
    await load(signpost)  # 2 November 2026; no retention run follows
    five = date(2026, 11, 5)
    signpost.ctx.clock.set(at(five))  # type: ignore[attr-defined]
    preview = await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, five, five)
    assert (preview.first_day, preview.archived, preview.destroyed) == (NOV_2, 1, 1)
    assert (await lifecycle.due(signpost.ctx.db, five)).days == 4
    report = await retention_on(signpost, five)
    assert (report.first_day, report.last_day, report.archived, report.destroyed) == (NOV_2, five, 1, 1)
    assert await state_of(signpost, TURNS_18) == "archived"
    assert await state_of(signpost, TURNS_24) == "destroyed"
    details = await _retention_details(signpost)
    assert "day 2026-11-03: archived 1 destroyed 1" in details
    assert _counted(details) == (1, 1)
    async with signpost.ctx.db.read() as session:
        bodies = (await session.execute(select(NoticeRow.body).where(NoticeRow.kind == "retention"))).scalars().all()
    assert bodies and all("1 record was archived at 18, 1 was destroyed at 24" in body for body in bodies)


async def test_a_first_run_on_an_empty_store_starts_with_its_own_day(signpost: Signpost) -> None:
    """With no child held there is no earlier day that matters: the first run is today's alone."""
    report = await retention_on(signpost, NOV_3)
    assert (report.first_day, report.last_day) == (NOV_3, NOV_3)


async def test_a_child_its_day_missed_is_destroyed_with_its_cohort_counted_and_audited(signpost: Signpost) -> None:
    """A child still under a cohort key about to be destroyed that its day did not find (here its
    blind-index row for retention is lost) was destroyed at the puncture with no audit event and
    no count. It is destroyed in the day's transaction, audited and counted with the day."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    lost = signpost.ctx.keys.blind(retention_term(date(2002, 11, 3)))
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(ChildTerm).where(ChildTerm.term == lost, ChildTerm.child_ref == int(TURNS_24)))
    report = await retention_on(signpost, NOV_3)
    assert (report.archived, report.destroyed) == (1, 1)
    assert await state_of(signpost, TURNS_24) == "destroyed"
    details = await _retention_details(signpost)
    assert "day 2026-11-03: archived 1 destroyed 1" in details
    assert _counted(details) == (1, 1)


class Killed(Exception):
    """A process killed at this point (kill -9): nothing after it runs."""


async def _wrapped_key(app: Signpost, ref: str) -> tuple[str, bytes]:
    async with app.ctx.db.read() as session:
        row = (
            await session.execute(select(ChildKey.kek_id, ChildKey.wrapped).where(ChildKey.child_ref == int(ref)))
        ).one()
    return row.kek_id, row.wrapped


def _opens_with_key_file(app: Signpost, ref: str, wrapped: tuple[str, bytes], today: date) -> bool:
    """Whether a backup holding this wrapped key opens the child with the key file as it is on disk."""
    assert app.ctx.keys.path is not None
    on_disk = KeyRing.load(app.ctx.keys.path)
    keychain.install(on_disk, today)
    try:
        on_disk.unwrap(wrapped[0], wrapped[1], child_aad(int(ref)))
    except DecryptionError:
        return False
    return True


async def test_a_run_stopped_after_a_days_commit_has_destroyed_that_days_cohort_key(signpost: Signpost) -> None:
    """The cohort keys went only at the end of a run, after seal-in: a run killed after a day's
    commit left its children destroyed and audited, while a backup taken before still opened them
    with the current key file. The key goes right after the day's commit."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup = await _wrapped_key(signpost, TURNS_24)
    assert _opens_with_key_file(signpost, TURNS_24, backup, NOV_3)

    def killed(days: int) -> None:
        raise Killed

    signpost.ctx.clock.set(at(NOV_3))  # type: ignore[attr-defined]
    with pytest.raises(Killed):
        await lifecycle.run(signpost.ctx.db, signpost.ctx.keys, signpost.ctx.clock.now(), on_day=killed)
    assert await state_of(signpost, TURNS_24) == "destroyed"
    assert not _opens_with_key_file(signpost, TURNS_24, backup, NOV_3)


async def test_a_puncture_a_stopped_run_left_undone_is_finished_when_the_next_starts(signpost: Signpost) -> None:
    """Killed between a day's commit and the key file's write, a run leaves the key file with the
    destroyed cohort's key. The next run (or a process starting: ``finish_puncture``) destroys it
    before anything else, and after every run the chain's cutoff is past every destroyed cohort."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup = await _wrapped_key(signpost, TURNS_24)
    keys = signpost.ctx.keys
    assert keys.path is not None
    before = keys.path.read_bytes()
    await retention_on(signpost, NOV_3)
    keys.path.write_bytes(before)  # the key file as a kill -9 before the puncture leaves it
    assert await state_of(signpost, TURNS_24) == "destroyed"
    assert _opens_with_key_file(signpost, TURNS_24, backup, NOV_3)

    assert await finish_retention_puncture(signpost.ctx, at(NOV_3)) == 0  # as a process starting up
    assert not _opens_with_key_file(signpost, TURNS_24, backup, NOV_3)

    keys.path.write_bytes(before)
    signpost.ctx.clock.set(at(date(2026, 11, 4)))  # type: ignore[attr-defined]

    def killed(days: int) -> None:
        raise Killed

    with pytest.raises(Killed):  # the next run is killed too, after its first day
        await lifecycle.run(signpost.ctx.db, keys, signpost.ctx.clock.now(), on_day=killed)
    assert not _opens_with_key_file(signpost, TURNS_24, backup, date(2026, 11, 4))
    keychain.reload(keys)
    cutoff = keychain.cutoff_of(keys, keychain.Chain.DAY)
    assert cutoff is not None and keychain.slot_day(cutoff) > date(2002, 11, 4)  # through the 4th's cohort


def test_a_puncture_keeps_in_memory_exactly_the_keys_a_fresh_derivation_gives(keys: KeyRing) -> None:
    """A run punctures after every day, so a puncture reuses the keys it held instead of deriving
    the chain again: what it keeps must be what the key file now derives, and nothing below the cutoff."""
    keychain.ensure_chains(keys, NOV_2)
    cutoff = keychain.cutoff_of(keys, keychain.Chain.DAY)
    assert cutoff is not None and keys.path is not None
    gone = keychain.kek_id(keys, keychain.Chain.DAY, keychain.generation(keys), cutoff)
    assert keychain.puncture(keys, keychain.Chain.DAY, cutoff + 2, NOV_2) == 2
    fresh = KeyRing.load(keys.path)
    keychain.install(fresh, NOV_2)
    assert keys.keks == fresh.keks and gone not in keys.keks


async def test_a_run_facing_an_index_a_newer_version_wrote_changes_nothing_and_leaves_the_day_due(
    signpost: Signpost,
) -> None:
    """Mid rolling upgrade (a newer Signpost has rebuilt the blind index, this one runs the older
    code): the run would find nobody turning 18 or 24 through it and record the day done, so they
    would never be archived or destroyed. It stops instead, every row as it was and the day still
    due; once the index is this code's version, the same run does the day's work."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    await record_index_version(signpost.ctx.db, NEWER_INDEX)
    before = await snapshot(signpost.ctx.db)
    with pytest.raises(children.IndexNotCurrent):
        await retention_on(signpost, NOV_3)
    assert await snapshot(signpost.ctx.db) == before
    assert (await lifecycle.due(signpost.ctx.db, NOV_3)).days == 1
    await record_index_version(signpost.ctx.db, TERMS_VERSION)
    report = await retention_on(signpost, NOV_3)
    assert (report.archived, report.destroyed) == (1, 1)
    assert (await state_of(signpost, TURNS_18), await state_of(signpost, TURNS_24)) == ("archived", "destroyed")
    assert (await lifecycle.due(signpost.ctx.db, NOV_3)).days == 0


async def test_finishing_a_cut_short_puncture_on_an_index_a_newer_version_wrote_changes_nothing(
    signpost: Signpost,
) -> None:
    """The puncture a killed run left behind is finished as ``run`` is: through the blind index
    (stragglers of the cohort are found by it), so on a newer index it stops too, the key file and
    every row as they were, and the newer code (or this one, once current) finishes it."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup = await _wrapped_key(signpost, TURNS_24)
    keys = signpost.ctx.keys
    assert keys.path is not None
    before = keys.path.read_bytes()
    await retention_on(signpost, NOV_3)
    keys.path.write_bytes(before)  # the key file as a kill -9 before the puncture leaves it
    await record_index_version(signpost.ctx.db, NEWER_INDEX)
    rows = await snapshot(signpost.ctx.db)
    with pytest.raises(children.IndexNotCurrent):
        await finish_retention_puncture(signpost.ctx, at(NOV_3))
    assert keys.path.read_bytes() == before and await snapshot(signpost.ctx.db) == rows
    await record_index_version(signpost.ctx.db, TERMS_VERSION)
    assert await finish_retention_puncture(signpost.ctx, at(NOV_3)) == 0
    assert not _opens_with_key_file(signpost, TURNS_24, backup, NOV_3)


async def test_an_index_a_newer_version_rebuilds_mid_run_stops_the_run_at_the_next_day(signpost: Signpost) -> None:
    """The index is rebuilt by a newer Signpost while a run works through missed days (here in the
    first day's own commit): that day's work stands; the next day, read through the index in its own
    transaction, is neither applied nor recorded done, and a dry run cannot read it either."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    nov_4 = date(2026, 11, 4)

    async def a_newer_signpost_rebuilds(session: AsyncSession, detail: str, archived: int, destroyed: int) -> None:
        await session.merge(Meta(key=children.TERMS_META, value=NEWER_INDEX))

    with pytest.raises(children.IndexNotCurrent):
        await lifecycle.run(signpost.ctx.db, signpost.ctx.keys, at(nov_4), audit_step=a_newer_signpost_rebuilds)
    async with signpost.ctx.db.read() as session:
        assert await lifecycle.last_day(session) == NOV_3
    assert await state_of(signpost, TURNS_24) == "destroyed"
    with pytest.raises(children.IndexNotCurrent):
        await lifecycle.preview(signpost.ctx.db, signpost.ctx.keys, nov_4, nov_4)


def test_the_summary_separates_thousands_in_every_count() -> None:
    """It printed "3,750 records were archived at 18, 5000 were destroyed at 24" (a forensic review)."""
    report = lifecycle.RetentionReport(date(2026, 1, 1), date(2026, 1, 2), archived=3750, destroyed=5000)
    said = report.summary()
    assert "3,750 records were archived at 18, 5,000 were destroyed at 24" in said, said


async def test_a_child_whose_only_involvement_ends_next_year_is_not_archived(signpost: Signpost) -> None:
    """Retention archives by age alone: a child of 10 whose only involvement has a planned end next
    year stays active through a run, and a keyed enquiry still shows that involvement as current."""
    await load_standard(signpost)
    planned = f"{INVOLVEMENTS_HEADER}\n{BEN},P003,Education,2023-09-01,2027-07-31,false\n"
    await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [Feed("involvements.csv", planned)], signpost.ctx.clock.now()
    )
    report = await retention_on(signpost, NOV_3)
    assert (report.archived, report.destroyed) == (0, 0)
    assert await state_of(signpost, BEN) == "active"
    [post] = (await say_fresh(signpost, "P001", BEN)).signposts
    assert (post.current, post.ended) == (True, date(2027, 7, 31))
