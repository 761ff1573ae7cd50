"""Search terms die with the children they describe, on every path (issue 13, item 3).

A search that carries a date of birth has its audit terms sealed under that date's birth-date
key, so when the children born that day are destroyed at 24 the terms stop opening, whatever the
search found: an archived child ("no match"), several candidates, nobody, or one child born on
another day. Keyed lookups of one child keep the child's key; terms with no date keep the month key.
"""

from __future__ import annotations

from datetime import date
from typing import TypeGuard

from sqlalchemy import func, select

from bot.app import Signpost
from handlers.vocabulary import Outcome, format_ref
from store.audit.log import WITHHELD, TermSealer
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.register.refs import make_reference
from store.tables.audit import AuditEvent, AuditSubject, AuditTermKey
from store.tables.delivery import Notice
from store.tables.people import ParkedCommand
from tests.factories import AMY, BEN, say
from tests.stepup_helpers import code_now, say_fresh, totp_from
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_24, at, load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)
TARA_DOB = date(2002, 11, 3)  # TURNS_24: archived on 2 November 2026, destroyed on the 3rd
SEARCH = f"Tara {MARKER} 03/11/2002"


def key_file_now(app: Signpost, today: date) -> KeyRing:
    """The key file as a process started after destruction would load it."""
    assert app.ctx.keys.path is not None
    ring = KeyRing.load_or_create(app.ctx.keys.path)
    keychain.ensure_chains(ring, today)
    return ring


async def opens(app: Signpost, keys: KeyRing, sealed: bytes, terms_key: str) -> str | None:
    async with app.ctx.db.read() as session:
        return await TermSealer(app.ctx.db, keys).open(session, sealed, terms_key)


async def test_a_search_hitting_an_archived_child_has_terms_that_die_with_it(signpost: Signpost) -> None:
    """The issue's path: a demographic search for an archived (18-24) child answers "no match";
    its terms open until the child is destroyed, and not after, with the key file as it is then."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    reply = await say_fresh(signpost, "P001", SEARCH)
    assert reply.outcome is Outcome.NO_MATCH
    async with signpost.ctx.db.read() as session:
        event = (
            (await session.execute(select(AuditEvent).where(AuditEvent.action == "search").order_by(AuditEvent.seq)))
            .scalars()
            .all()[-1]
        )
    assert event.terms is not None and event.terms_key is not None
    assert event.terms_key.startswith("cohort:") and MARKER not in event.terms_key
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) == SEARCH
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    assert await opens(signpost, key_file_now(signpost, NOV_3), event.terms, event.terms_key) is None
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) is None
    async with signpost.ctx.db.read() as session:  # the cohort's terms key row is gone too
        assert await session.get(AuditTermKey, event.terms_key.partition(":")[2]) is None


async def test_terms_with_a_date_die_on_every_path(signpost: Signpost) -> None:
    """Sealed with the date of birth searched for: nobody found, several candidates, one child
    born on another day: all stop opening when children born that date are destroyed; terms about
    a date still kept, terms about one child, and terms with no date still open."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    sealer, now = signpost.ctx.sealer, at(NOV_2)
    doomed, kept = [], []
    async with signpost.ctx.db.read() as session:
        for subjects in ((), (int(AMY), int(BEN)), (int(AMY),)):  # no match, several, ambiguous one
            sealed, key = await sealer.seal(session, SEARCH, subjects, now, born=TARA_DOB)
            assert sealed is not None and key is not None and key.startswith("cohort:")
            doomed.append((sealed, key))
        amy_born = date(2014, 4, 3)
        for subjects, born in (((int(AMY),), amy_born), ((), amy_born), ((int(AMY),), None), ((), None)):
            sealed, key = await sealer.seal(session, "Amy Jones 03/04/2014", subjects, now, born=born)
            assert sealed is not None and key is not None
            kept.append((sealed, key))
    assert [key.partition(":")[0] for _, key in kept] == ["child", "cohort", "child", "period"]
    await retention_on(signpost, NOV_3)
    ring = key_file_now(signpost, NOV_3)
    assert [await opens(signpost, ring, s, k) for s, k in doomed] == [None, None, None]
    assert [await opens(signpost, ring, s, k) for s, k in kept] == ["Amy Jones 03/04/2014"] * 4


async def last_event(app: Signpost, action: str) -> AuditEvent:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return found.scalars().all()[-1]


async def test_a_search_naming_a_destroyed_childs_date_keeps_none_of_its_terms(signpost: Signpost) -> None:
    """A search made after the child's destruction (its name, date of birth and postcode typed
    again): its event keeps no terms and says they were withheld as that cohort is destroyed; no
    event's terms open to the name with the key file (under the month's key they did, for two years)."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    reply = await say_fresh(signpost, "P001", f"{SEARCH} M2 3CD")
    assert reply.outcome is Outcome.NO_MATCH
    event = await last_event(signpost, "search")
    assert (event.terms, event.terms_key, event.outcome) == (None, WITHHELD, "no_match")
    ring = key_file_now(signpost, NOV_3)
    async with signpost.ctx.db.read() as session:
        sealed = (await session.execute(select(AuditEvent).where(AuditEvent.terms.is_not(None)))).scalars().all()
    for other in sealed:
        assert other.terms is not None and other.terms_key is not None
        assert MARKER not in (await opens(signpost, ring, other.terms, other.terms_key) or "")


async def test_a_parked_search_naming_a_destroyed_childs_date_is_sealed_under_a_key_gone_within_two_days(
    signpost: Signpost,
) -> None:
    """The same search waiting for its code (the practitioner enrols first): its text is sealed under
    a birth-date key the key file no longer holds two days on (not the month's, kept two years); the
    code still runs it, and its event keeps no terms."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    await retention_on(signpost, NOV_3)
    enrolled = await say(signpost, "P002", "enrol")
    parked = await say(signpost, "P002", SEARCH)
    assert parked.outcome is Outcome.CHALLENGED and parked.challenge is not None
    async with signpost.ctx.db.read() as session:
        (kek_id,) = (
            (await session.execute(select(ParkedCommand.kek_id).where(ParkedCommand.text.is_not(None)))).scalars().all()
        )
    assert kek_id is not None and kek_id in key_file_now(signpost, NOV_3).keks
    code = code_now(signpost, totp_from(enrolled))
    resumed = await say(signpost, "P002", "code", code=code, challenge_id=parked.challenge.challenge_id)
    assert resumed.outcome is Outcome.NO_MATCH, resumed
    assert (await last_event(signpost, "search")).terms_key == WITHHELD
    await retention_on(signpost, date(2026, 11, 5))
    assert kek_id not in key_file_now(signpost, date(2026, 11, 5)).keks


def names_no_reference(terms_key: str | None, ref: str) -> TypeGuard[str]:
    """An event whose child is not its subject is sealed under the cohort terms key of the child's
    birth day, which dies with the child: the ``terms_key`` names that key, never the reference
    (``child:<ref>`` kept the reference in plain text in the audit for good: PostgreSQL forensics)."""
    return terms_key is not None and terms_key.startswith("cohort:") and str(int(ref)) not in terms_key


async def test_a_lookup_of_an_archived_child_has_terms_that_die_with_it_and_tells_nobody(signpost: Signpost) -> None:
    """A lookup by reference of an archived child ("no record"): its terms are sealed under its
    birth day's cohort terms key, so they open until the child is destroyed and not after; the
    child is not made a subject of the event, nor named by its ``terms_key``, and nobody (its lead
    professional) is told."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    async with signpost.ctx.db.read() as session:
        notices_before = (await session.execute(select(func.count()).select_from(Notice))).scalar_one()
    reply = await say_fresh(signpost, "P002", TURNS_24)
    assert reply.outcome is Outcome.NO_MATCH
    event = await last_event(signpost, "lookup")
    assert event.terms is not None and names_no_reference(event.terms_key, TURNS_24)
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(AuditSubject).where(AuditSubject.seq == event.seq))).first() is None
        assert (await session.execute(select(func.count()).select_from(Notice))).scalar_one() == notices_before
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) == TURNS_24
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    assert await opens(signpost, key_file_now(signpost, NOV_3), event.terms, event.terms_key) is None


async def test_a_lookup_of_a_destroyed_child_keeps_none_of_its_terms(signpost: Signpost) -> None:
    """A lookup by reference made after the child's destruction ("no record"): its event keeps no
    terms and says they were withheld; under the month's key the reference stayed readable with
    the key file for two years after the child was destroyed (crash-forensics review)."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    reply = await say_fresh(signpost, "P002", TURNS_24)
    assert reply.outcome is Outcome.NO_MATCH
    event = await last_event(signpost, "lookup")
    assert (event.terms, event.terms_key, event.outcome) == (None, WITHHELD, "no_match")
    unknown = await say_fresh(signpost, "P002", "999 000 0000")  # never registered: kept as before
    assert unknown.outcome in (Outcome.NO_MATCH, Outcome.INVALID)
    other = await last_event(signpost, "lookup")
    assert other.seq != event.seq and other.terms_key != WITHHELD


async def challenged(app: Signpost, who: str, text: str, action: str) -> AuditEvent:
    """Send ``text`` as ``who``, whose code is not fresh (enrolled, not yet confirmed): the step-up
    gate asks for a code before the handler runs; the event it writes."""
    reply = await say(app, who, text)
    assert reply.outcome is Outcome.CHALLENGED, reply
    event = await last_event(app, action)
    assert event.outcome == "challenged"
    return event


async def test_a_challenged_lookup_has_terms_that_die_with_the_child(signpost: Signpost) -> None:
    """A lookup by reference stopped for a code (forensic review F2): its terms are sealed under the
    child's key, as its answer's would be, so they stop opening when retention destroys the child
    (under the month's key they opened for two years and tied the practitioner to the child)."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    await say(signpost, "P002", "enrol")
    event = await challenged(signpost, "P002", TURNS_24, "lookup")
    assert event.terms is not None and names_no_reference(event.terms_key, TURNS_24)
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) == TURNS_24
    active = await challenged(signpost, "P002", AMY, "lookup")
    assert names_no_reference(active.terms_key, AMY)
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    assert await opens(signpost, key_file_now(signpost, NOV_3), event.terms, event.terms_key) is None
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) is None


async def test_a_challenged_lookup_of_a_destroyed_child_keeps_none_of_its_terms(signpost: Signpost) -> None:
    """Stopped for a code after the child's destruction: no terms kept, as for its answer; a
    reference that names no registered child is sealed as before (the month's key)."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    await say(signpost, "P002", "enrol")
    event = await challenged(signpost, "P002", TURNS_24, "lookup")
    assert (event.terms, event.terms_key) == (None, WITHHELD)
    nobody = str(make_reference(999_000_990))
    other = await challenged(signpost, "P002", nobody, "lookup")
    assert other.terms is not None and other.terms_key is not None and other.terms_key.startswith("period:")


async def test_a_challenged_access_request_has_terms_that_die_with_the_child(signpost: Signpost) -> None:
    """A request for access by reference stopped for a code (a writing command): its reference (not
    its purpose, screened only once the code is given) is sealed under the child's key too, and dies
    with it."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    await say(signpost, "P002", "enrol")
    text = f"request {TURNS_24} to plan a home visit"
    event = await challenged(signpost, "P002", text, "request_access")
    assert event.terms is not None and names_no_reference(event.terms_key, TURNS_24)
    assert await opens(signpost, signpost.ctx.keys, event.terms, event.terms_key) == format_ref(int(TURNS_24))
    await retention_on(signpost, NOV_3)
    assert await opens(signpost, key_file_now(signpost, NOV_3), event.terms, event.terms_key) is None
