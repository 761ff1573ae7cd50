"""Exactly one audit event per command, for every outcome, written before the reply."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from bot.app import Signpost
from handlers.vocabulary import Outcome, is_origin
from store.people import credentials, practitioners
from store.tables.audit import AuditEvent, AuditSubject
from tests.factories import AMY, SHIELDED, console, load_standard, ready, say


async def events(app: Signpost) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars())


CASES = [
    ("P002", AMY, Outcome.ANSWERED, "lookup"),
    ("P002", "Amy Jones 03/04/2014", Outcome.ANSWERED, "search"),
    ("P002", "999 000 0093", Outcome.NO_MATCH, "lookup"),
    ("P002", "Lily Brown 20/01/2019", Outcome.AMBIGUOUS, "search"),
    ("P002", SHIELDED, Outcome.SHIELDED, "lookup"),
    ("NOBODY", AMY, Outcome.REFUSED, "lookup"),
    ("P002", "999 000 0017", Outcome.INVALID, "lookup"),
    ("P002", "blah blah", Outcome.INVALID, "usage"),
    ("P002", "help", Outcome.INFO, "help"),
]


@pytest.mark.parametrize(("who", "message", "outcome", "action"), CASES)
async def test_each_outcome_writes_exactly_one_event(
    signpost: Signpost, who: str, message: str, outcome: Outcome, action: str
) -> None:
    """Answered, no match, ambiguous, shielded, refused, invalid, usage and help: one event each.

    (Events Signpost writes itself as a consequence, e.g. telling the lead professional of an
    answered lookup, carry an origin as their platform and are not the command's.)"""
    await load_standard(signpost)
    await ready(signpost, "P002")
    before = len(await events(signpost))
    reply = await say(signpost, who, message)
    assert reply.outcome is outcome
    after = [e for e in (await events(signpost))[before:] if not is_origin(e.platform)]
    assert len(after) == 1
    event = after[-1]
    assert (event.action, event.outcome, event.platform, event.channel) == (action, outcome.value, "console", "direct")
    assert event.at == signpost.ctx.clock.now()
    assert event.correlation_id


async def test_event_records_who_where_and_what(signpost: Signpost) -> None:
    """Actor id, role, organisation, authority, subject reference and result count are recorded."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    await say(signpost, "P002", AMY)
    event = (await events(signpost))[-1]
    assert (event.actor_id, event.actor_role, event.actor_org, event.actor_la) == (
        "P002",
        "School nurse",
        "Northshire School Health",
        "Northshire",
    )
    assert (event.subject_refs, event.result_count) == (AMY, 3)
    assert event.terms is not None and event.terms_key == f"child:{AMY}"
    async with signpost.ctx.db.read() as session:
        subjects = (await session.execute(select(AuditSubject.child_ref))).scalars().all()
    assert int(AMY) in subjects


async def test_refused_event_keeps_the_platform_identity(signpost: Signpost) -> None:
    """An unknown identity is audited by its platform ids, with no actor."""
    await say(signpost, console("NOBODY"), "help")
    await say(signpost, console("NOBODY"), AMY)
    event = (await events(signpost))[-1]
    assert (event.actor_id, event.user_id, event.outcome, event.detail) == (
        None,
        "NOBODY",
        "refused",
        "unknown identity",
    )


@pytest.mark.parametrize(("who", "message"), [("NOBODY", "enrol"), ("NOBODY", "code"), ("P003", "enrol")])
async def test_enrol_and_code_need_a_registered_active_person(signpost: Signpost, who: str, message: str) -> None:
    """enrol and code take any registered role (an admin-only account too) but nobody else: an
    unknown identity and a deactivated practitioner get the identity gate's answer, no secret and
    no code prompt, and one audit event."""
    await load_standard(signpost)
    async with signpost.ctx.db.write() as session:
        await practitioners.set_status(session, "P003", "inactive")
    extra = {"code": "123456"} if message == "code" else {}
    reply = await say(signpost, console(who), message, **extra)
    expected = "no practitioner with that id in the register" if who == "NOBODY" else "not active"
    assert reply.outcome is Outcome.REFUSED and expected in reply.text
    assert reply.challenge is None and reply.enrolment_uri is None
    event = (await events(signpost))[-1]
    detail = "unknown identity" if who == "NOBODY" else "inactive"
    assert (event.action, event.user_id, event.outcome, event.detail) == (message, who, "refused", detail)
    async with signpost.ctx.db.read() as session:
        assert await credentials.get(session, who) is None


async def test_an_admin_only_practitioner_can_enrol(signpost: Signpost) -> None:
    """AD01 holds only the admin role; admins' own commands ask for a code, so AD01 can enrol."""
    await load_standard(signpost)
    reply = await say(signpost, "AD01", "enrol")
    assert reply.outcome is Outcome.DONE and reply.challenge is not None and reply.enrolment_uri
    assert [e.detail for e in await events(signpost)][-1] == "enrolment started"


async def test_query_terms_are_sealed_and_readable_only_with_the_key(signpost: Signpost) -> None:
    """The typed query is stored encrypted; the sealer can open it, the raw column is not the text."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    await say(signpost, "P002", "Lily Brown 20/01/2019")
    event = (await events(signpost))[-1]
    assert event.terms is not None and b"Lily" not in event.terms
    async with signpost.ctx.db.read() as session:
        opened = await signpost.ctx.sealer.open(session, event.terms, event.terms_key or "")
    assert opened == "Lily Brown 20/01/2019"


async def test_when_the_audit_write_fails_the_user_gets_no_result(signpost: Signpost) -> None:
    """Fail closed: with the audit table unwritable, a lookup answers an error and no signposts."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    async with signpost.ctx.db.write() as session:
        await session.execute(text("ALTER TABLE audit_events RENAME TO audit_events_gone"))
    reply = await say(signpost, "P002", AMY)
    assert reply.outcome is Outcome.FAILED
    assert reply.signposts == () and "could not record" in reply.text
