"""The month's audit-terms key is made inside a writing command's own transaction.

Regression: a ``writes=True`` command whose audit terms touch no single child (a challenged
request, a refusal …) used to create the month's key in a *second* write transaction while its
own held SQLite's write lock, so the first such command of a month waited 30 s and failed with
"database is locked". These run on SQLite and PostgreSQL, on a month with no key yet.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Outcome, format_ref
from store.audit.log import TermSealer
from store.register.refs import make_reference
from store.tables.audit import AuditEvent, AuditTermKey
from tests.access_helpers import audit_events, load_access
from tests.factories import AMY, BEN, say
from tests.stepup_helpers import answer_challenges, ensure_enrolled

# A month nothing in these tests has touched yet (the FakeClock starts in November 2026).
FRESH_MONTH = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
PERIOD = "2027-03"
NOBODY = str(make_reference(999_000_990))  # a valid reference no child is registered under


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def period_keys(app: Signpost, period: str) -> int:
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(AuditTermKey).where(AuditTermKey.period == period))).all()
    return len(rows)


async def opened_terms(app: Signpost, event: AuditEvent) -> str | None:
    assert event.terms is not None and event.terms_key is not None
    async with app.ctx.db.read() as session:
        return await app.ctx.sealer.open(session, event.terms, event.terms_key)


async def test_first_writing_command_of_a_month_seals_its_no_child_terms(app: Signpost) -> None:
    """A challenged ``request`` (writes, terms naming no registered child) is the month's first
    sealing: it is answered with a code prompt at once, and its terms open with the month's one key.
    (One naming a registered child is sealed under that child's key: test_terms_die.py.)"""
    await ensure_enrolled(app, "P002")
    app.ctx.clock.set(FRESH_MONTH)  # type: ignore[attr-defined]  # tests run on FakeClock
    assert await period_keys(app, PERIOD) == 0

    asked = await say(app, "P002", f"request {NOBODY} child protection")
    assert asked.outcome is Outcome.CHALLENGED and asked.challenge is not None, asked

    [challenged] = [e for e in await audit_events(app, "request_access") if e.outcome == "challenged"]
    assert challenged.subject_refs == "" and challenged.terms_key == f"period:{PERIOD}"
    # The record it names, not its purpose, screened only once the code is given (Spec.stopped_terms).
    assert await opened_terms(app, challenged) == format_ref(int(NOBODY))
    assert await period_keys(app, PERIOD) == 1

    done = await answer_challenges(app, "P002", asked)
    assert done.outcome is Outcome.INVALID, done  # no record: the code was taken all the same


async def test_writing_commands_racing_on_a_fresh_month_share_one_key(app: Signpost) -> None:
    """Two writing commands at once on a month with no key: one key is kept, both terms open."""
    for who in ("P001", "P002", "AD01"):
        await ensure_enrolled(app, who)
    app.ctx.clock.set(FRESH_MONTH)  # type: ignore[attr-defined]  # tests run on FakeClock

    replies = await asyncio.gather(
        say(app, "P002", f"request {NOBODY} child protection"),
        say(app, "P001", f"request {NOBODY} strategy meeting"),
        say(app, "AD01", "unlink P003 slack"),
    )
    assert [r.outcome for r in replies] == [Outcome.CHALLENGED] * 3, replies
    assert await period_keys(app, PERIOD) == 1
    challenged = [e for e in await audit_events(app) if e.outcome == "challenged"]
    assert sorted([str(await opened_terms(app, e)) for e in challenged]) == sorted(
        [format_ref(int(NOBODY)), format_ref(int(NOBODY)), "P003 slack"]  # a request keeps the record it names
    )


async def test_multi_child_terms_sealed_in_a_write_transaction(app: Signpost) -> None:
    """Terms about two children are keyed by the month, created in the caller's transaction."""
    sealer: TermSealer = app.ctx.sealer
    async with app.ctx.db.write() as session:
        two = (int(AMY), int(BEN))
        sealed, key = await sealer.seal(session, "two children", two, FRESH_MONTH, writer=True)
    assert key == f"period:{PERIOD}" and sealed is not None
    async with app.ctx.db.read() as session:
        assert await sealer.open(session, sealed, key) == "two children"
    assert await period_keys(app, PERIOD) == 1


async def test_a_month_key_made_in_a_rolled_back_transaction_is_never_used(app: Signpost) -> None:
    """The key goes with the transaction that made it: later terms use a key that was kept."""
    sealer: TermSealer = app.ctx.sealer
    with pytest.raises(RuntimeError):
        async with app.ctx.db.write() as session:
            await sealer.seal(session, "lost", (), FRESH_MONTH, writer=True)
            raise RuntimeError("the command failed")
    assert await period_keys(app, PERIOD) == 0
    async with app.ctx.db.write() as session:
        sealed, key = await sealer.seal(session, "kept", (), FRESH_MONTH, writer=True)
    assert sealed is not None and key is not None
    async with app.ctx.db.read() as session:
        assert await sealer.open(session, sealed, key) == "kept"


async def test_cohort_keys_made_ahead_are_the_ones_searches_then_seal_under(app: Signpost) -> None:
    """``make_cohort_keys`` makes each birth day's terms key once (a second call makes none, a day
    whose cohort is destroyed gets none), and a search naming one of those days seals under the key
    made ahead rather than making another."""
    sealer: TermSealer = app.ctx.sealer
    days = [date(2015, 6, d) for d in range(1, 29)] + [date(1990, 1, 1)]  # the last: 24 long ago
    async with app.ctx.db.write() as session:
        assert await sealer.make_cohort_keys(session, days, FRESH_MONTH) == 28
    async with app.ctx.db.write() as session:
        assert await sealer.make_cohort_keys(session, days[:3], FRESH_MONTH) == 0
    async with app.ctx.db.read() as session:
        before = len((await session.execute(select(AuditTermKey))).all())
    async with app.ctx.db.write() as session:
        sealed, key = await sealer.seal(session, "Amy 14/06/2015", (), FRESH_MONTH, writer=True, born=date(2015, 6, 14))
    assert sealed is not None and key is not None and key.startswith("cohort:")
    async with app.ctx.db.read() as session:
        assert len((await session.execute(select(AuditTermKey))).all()) == before
        assert await sealer.open(session, sealed, key) == "Amy 14/06/2015"
