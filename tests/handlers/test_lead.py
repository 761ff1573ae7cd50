"""Issue 18 part 1: the lead professional is told who found their child, through the outbox, on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, update

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Action, Outcome, Reply
from store.audit.sar import subject_access
from store.people import lead
from store.tables.register import Child, LocalAuthority
from tests.access_helpers import audit_events, decide, load_access, notices, request_access, search_as
from tests.factories import AMY, SHIELDED, ready, say
from tests.statements import statements_sent

PRIYA_LOOKED_UP_AMY = (
    "Priya Shah, School nurse, Northshire School Health (0161 496 0002, priya.shah@nhs.example) "
    "looked up 999 000 0018, a child you are lead professional for."
)
UNKNOWN_AUTHORITY = (
    "There is no local authority by that name in the register. "
    "The local authorities in the register are: Northshire, Southvale."
)
AMY_IDENTITY = ("Amy", "Jones", "Amelia", "Smith", "2014", "03/04", "M1 2AB", "M12AB")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def informed(app: Signpost) -> list[str]:
    return [n.recipient_id for n in await notices(app) if n.kind == "lead_informed"]


async def set_setting(app: Signpost, authority: str, value: lead.LeadNotices) -> None:
    async with app.ctx.db.write() as session:
        await lead.set_setting(session, authority, value)


async def test_the_lead_professional_reads_who_looked_up_their_child(app: Signpost) -> None:
    """A keyed lookup by Priya tells Amy's lead professional (P001) exactly who looked, and nothing of Amy."""
    reply = await search_as(app, "P002", AMY)
    assert reply.outcome is Outcome.ANSWERED
    [notice] = [n for n in await notices(app) if n.kind == "lead_informed"]
    assert notice.recipient_id == "P001"
    assert notice.text == PRIYA_LOOKED_UP_AMY
    assert not any(word.casefold() in notice.text.casefold() for word in AMY_IDENTITY)


async def test_the_notice_is_its_own_audit_event_with_the_lookers_authority_and_in_the_sar(app: Signpost) -> None:
    """One LEAD_PROFESSIONAL_INFORMED event (actor Priya, Northshire, subject Amy), shown in the SAR."""
    await search_as(app, "P002", "Amy Jones 03/04/2014")
    [event] = await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value)
    assert (event.actor_id, event.actor_la, event.subject_refs, event.result_count) == ("P002", "Northshire", AMY, 1)
    report = await subject_access(app.ctx.db, app.ctx.sealer, int(AMY), app.ctx.clock.now())
    text = report.to_text()
    assert "notice to the lead professional queued" in text
    assert "Priya" not in text, "names only when asked for"


async def test_at_most_one_notice_per_looker_and_child_a_day(app: Signpost, clock: FakeClock) -> None:
    """A second lookup the same day (keyed or by name) tells nobody again; the next day it does."""
    await search_as(app, "P002", AMY)
    await search_as(app, "P002", "Amy Jones 03/04/2014")
    assert await informed(app) == ["P001"]
    assert len(await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value)) == 1
    clock.advance(days=1)
    await search_as(app, "P002", AMY)
    assert await informed(app) == ["P001", "P001"]


async def test_nobody_is_told_of_the_lead_professionals_own_lookup(app: Signpost) -> None:
    """P001 looking up their own child sends no notice and writes no informed event."""
    reply = await search_as(app, "P001", AMY)
    assert reply.outcome is Outcome.ANSWERED
    assert await informed(app) == []
    assert await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value) == []


async def test_no_notice_while_the_child_is_archived_or_destroyed(app: Signpost) -> None:
    for state in ("archived", "destroyed"):
        async with app.ctx.db.write() as session:
            await session.execute(update(Child).where(Child.ref == int(AMY)).values(state=state))
        reply = await search_as(app, "P002", AMY)
        assert reply.outcome is Outcome.NO_MATCH
    assert await informed(app) == []


async def test_a_shielded_childs_lead_is_told_only_of_a_looker_with_a_grant(app: Signpost) -> None:
    """P002 without a grant: shielded, nobody told. With a grant: the lead (S001) is told."""
    before = await search_as(app, "P002", SHIELDED)
    assert before.outcome is Outcome.SHIELDED
    assert await informed(app) == []
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1)
    during = await search_as(app, "P002", SHIELDED)
    assert during.outcome is Outcome.ANSWERED
    assert await informed(app) == ["S001"]
    [notice] = [n for n in await notices(app, "S001") if n.kind == "lead_informed"]
    assert "looked up 999 000 0050, a child you are lead professional for." in notice.text
    assert "Mia" not in notice.text and "Stone" not in notice.text


async def test_an_authority_can_switch_the_notices_off(app: Signpost) -> None:
    await set_setting(app, "Northshire", lead.LeadNotices.OFF)
    assert (await search_as(app, "P002", AMY)).outcome is Outcome.ANSWERED
    assert await informed(app) == []
    assert await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value) == []


async def test_an_authority_can_tell_every_current_practitioner(app: Signpost) -> None:
    """Setting 'all': Tom Reed's lookup tells the lead (P001) and the other current practitioner (P002);
    Tom himself, whose own involvement has ended, is not told."""
    await set_setting(app, "Northshire", lead.LeadNotices.ALL)
    await search_as(app, "P003", AMY)
    found = {n.recipient_id: n.text for n in await notices(app) if n.kind == "lead_informed"}
    assert sorted(found) == ["P001", "P002"]
    assert found["P001"].endswith("looked up 999 000 0018, a child you are lead professional for.")
    assert found["P002"].endswith("looked up 999 000 0018, a child you are working with.")
    assert found["P002"].startswith("Tom Reed, Teacher, Hill Primary School (0161 496 0003, tom.reed@hill.example)")
    [event] = await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value)
    assert event.result_count == 2


async def test_the_setting_defaults_to_the_lead_professional_and_is_kept_per_authority(app: Signpost) -> None:
    async with app.ctx.db.read() as session:
        assert await lead.setting(session, "Northshire") is lead.LeadNotices.LEAD
    await set_setting(app, "Southvale", lead.LeadNotices.ALL)
    await set_setting(app, "Southvale", lead.LeadNotices.OFF)
    async with app.ctx.db.read() as session:
        assert await lead.setting(session, "Southvale") is lead.LeadNotices.OFF
        assert await lead.setting(session, "Northshire") is lead.LeadNotices.LEAD


async def test_an_admin_sets_who_is_told_per_authority_and_nobody_else_can(app: Signpost) -> None:
    """`lead-notices Northshire off` (an admin): the next lookup tells nobody; the setting is shown on
    asking, audited, refused to a duty manager, and an unknown authority is answered kindly."""
    await ready(app, "AD01")  # a fresh code: the setting changes what every lookup tells
    assert (await say(app, "AD01", "lead-notices Northshire")).text.startswith("Northshire: lead")
    changed = await say(app, "AD01", "lead-notices Northshire off")
    assert changed.outcome is Outcome.DONE and "nobody is told" in changed.text
    assert (await search_as(app, "P002", AMY)).outcome is Outcome.ANSWERED
    assert await informed(app) == []
    refused = await say(app, "DM02", "lead-notices Northshire all")
    assert refused.outcome is Outcome.REFUSED
    unknown = await say(app, "AD01", "lead-notices Atlantis all")
    assert (unknown.outcome, unknown.text) == (Outcome.INVALID, UNKNOWN_AUTHORITY)
    bad = await say(app, "AD01", "lead-notices Northshire sometimes")
    assert bad.outcome is Outcome.INVALID and "off, lead or all" in bad.text
    events = [e for e in await audit_events(app) if e.action == Action.LEAD_NOTICES]
    assert [(e.outcome, e.detail) for e in events][:2] == [("info", "Northshire lead"), ("done", "Northshire off")]


async def test_telling_the_lead_is_written_with_the_lookups_own_audit_event(app: Signpost) -> None:
    """A lookup that tells the lead professional writes in one transaction: the notice, its event and
    the lookup's own event together, in one insert, made durable before the answer (issue 15: the
    notice had a write transaction of its own, SQLite's one write lock, on nearly every lookup, and
    each event an insert of its own)."""
    await search_as(app, "P001", AMY)  # the lead's own lookup: nobody told; Amy's audit keys exist
    await search_as(app, "P002", SHIELDED)  # Priya steps up; a shielded child's lead is not told
    committed: list[bool] = []
    event_inserts: list[str] = []

    def wrote(conn: Any, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            conn.info["signpost_test_wrote"] = True
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS"):
            event_inserts.append(statement)

    def commit(conn: Any) -> None:
        committed.append(conn.info.pop("signpost_test_wrote", False))

    engine = app.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", wrote)
    event.listen(engine, "commit", commit)
    try:
        reply = await say(app, "P002", AMY)
    finally:
        event.remove(engine, "before_cursor_execute", wrote)
        event.remove(engine, "commit", commit)
    assert reply.outcome is Outcome.ANSWERED
    assert await informed(app) == ["P001"]
    assert len(await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value)) == 1
    assert committed.count(True) == 1, committed
    assert len(event_inserts) == 1, "the two events in one insert"


async def _priyas_lookup_of_amy(app: Signpost) -> tuple[Reply, list[str]]:
    """Priya's keyed lookup of Amy, once the lead's own lookup and Priya's step-up are behind her,
    and every SELECT it ran (one line each, lower case)."""
    await search_as(app, "P001", AMY)  # the lead's own lookup: nobody told
    await search_as(app, "P002", SHIELDED)  # Priya steps up
    await app.ctx.audit.settle()  # the misuse rules' reads after those lookups' audit: not this one's
    with statements_sent(app.ctx.db) as sent:
        reply = await say(app, "P002", AMY)
    return reply, [" ".join(s.sql.split()).lower() for s in sent if s.verb == "SELECT"]


async def test_who_is_told_and_what_they_read_of_the_looker_are_one_statement(app: Signpost) -> None:
    """A lookup that tells the lead reads the setting, the recipients and the looker's contact
    signpost in one statement (issue 15: the contact was a statement of its own on every such
    lookup), and the notice still names the looker by their contact signpost."""
    reply, selects = await _priyas_lookup_of_amy(app)
    reads = [s for s in selects if " practitioners" in s]
    assert reply.outcome is Outcome.ANSWERED
    assert await informed(app) == ["P001"]
    [notice] = [n for n in await notices(app) if n.kind == "lead_informed"]
    assert notice.text == PRIYA_LOOKED_UP_AMY
    told = [s for s in reads if "meta" in s]
    assert len(told) == 1, reads
    looker_alone = [s for s in reads if s.startswith("select practitioners.given_name")]
    assert looker_alone == [], reads


async def test_a_keyed_lookup_reads_the_child_its_signposts_and_who_is_told_in_one_statement(app: Signpost) -> None:
    """Issue 15 (one round trip for the keyed enquiry): who is told — the authority's setting and the
    current practitioners — comes in the statement that reads the child and its signposts (the
    looker's contact comes with their standing); no statement of its own reads them."""
    reply, reads = await _priyas_lookup_of_amy(app)
    assert reply.outcome is Outcome.ANSWERED
    [notice] = [n for n in await notices(app) if n.kind == "lead_informed"]
    assert (notice.recipient_id, notice.text) == ("P001", PRIYA_LOOKED_UP_AMY)
    involvements = [s for s in reads if " involvements" in s and "audit" not in s]  # not the misuse rules' reads
    assert len(involvements) == 1 and " children" in involvements[0] and "meta" in involvements[0], reads


@pytest.mark.parametrize("setting", list(lead.LeadNotices))
async def test_an_authority_whose_name_fills_the_column_keeps_its_setting_for_lookups(
    app: Signpost, setting: lead.LeadNotices
) -> None:
    """The setting read with the child is keyed in SQL as ``lead.setting`` keys it in Python (the
    prefix and the name, cut at 64 characters), for a name of 64 characters, not all of them ASCII."""
    name = ("Ynys Môn a Chyngor Sir Ddinbych — Awdurdod Lleol Enghreifftiol " + "x" * 64)[:64]
    async with app.ctx.db.write() as session:
        session.add(LocalAuthority(name=name, first_seen=app.ctx.clock.now()))
        await session.flush()
        await session.execute(update(Child).where(Child.ref == int(AMY)).values(local_authority=name))
    await set_setting(app, name, setting)
    async with app.ctx.db.read() as session:
        assert await lead.setting(session, name) is setting
    await search_as(app, "P003", AMY)  # Tom Reed, whose own involvement has ended
    expected = {lead.LeadNotices.OFF: [], lead.LeadNotices.LEAD: ["P001"], lead.LeadNotices.ALL: ["P001", "P002"]}
    assert sorted(await informed(app)) == expected[setting]


async def test_a_lookup_reads_nothing_of_the_outbox_and_still_tells_once_a_day(app: Signpost) -> None:
    """Whether the lead was told today is the notice's own unique key, met when the audit writer
    stores it with the lookup's event (issue 15: it was a read of the outbox on every lookup that
    had someone to tell); a second lookup the same day stores nothing and writes no informed event."""
    await search_as(app, "P001", AMY)  # the lead's own lookup: nobody told
    await search_as(app, "P002", SHIELDED)  # Priya steps up
    outbox_reads: list[str] = []

    def read(_conn: Any, _cursor: object, statement: str, *_: object) -> None:
        words = statement.split()
        if words and words[0].upper() == "SELECT" and " notices" in statement.lower():
            outbox_reads.append(" ".join(words))

    engine = app.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", read)
    try:
        first = await say(app, "P002", AMY)
        again = await say(app, "P002", AMY)
    finally:
        event.remove(engine, "before_cursor_execute", read)
    assert first.outcome is again.outcome is Outcome.ANSWERED
    assert outbox_reads == []
    assert await informed(app) == ["P001"]
    assert len(await audit_events(app, Action.LEAD_PROFESSIONAL_INFORMED.value)) == 1


async def test_an_unknown_authority_is_not_said_back_at_any_length(app: Signpost) -> None:
    """`lead-notices` with 10,000 letters for the authority answered "There is no local authority
    called NNNN…" with all of them: an unknown authority is now answered without repeating it."""
    await ready(app, "AD01")
    typed = "N" * 3_900  # near the longest a command may be (4,000 characters)
    reply = await say(app, "AD01", f"lead-notices {typed} off")
    assert (reply.outcome, reply.text) == (Outcome.INVALID, UNKNOWN_AUTHORITY)
    event = (await audit_events(app, Action.LEAD_NOTICES.value))[-1]
    assert (event.actor_id, event.outcome, event.detail) == ("AD01", "invalid", "no such authority")
