"""A relayed message's recipient who is no longer responsible for the child, through the dispatcher on
both backends.

Whoever a message went to holds it only while they still hold what it was sent to them for: the
child's lead professional while they are, a duty manager while they are one of the child's
authority (as it is now). One who has lost that (a lead replaced or whose involvement ended, a duty
manager who lost the role or moved authority, a child who moved authority, a recipient who left)
is answered as for a message that is not theirs, audited alike. An unanswered message nobody it was
sent to can take any more is handed on by the scheduled job to whoever the relay would choose now
(or its sender told it was not delivered); the sender's own view does not change.

The shielded child 999 000 0050 (Southvale) has S001 as lead professional; Southvale's duty managers
are DM02 and DM03; Northshire's is DM01; AD01 is the only admin.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bot.app import Signpost
from bot.notify import Outbox
from bot.scheduler import Scheduler, standard_tasks
from handlers.access import jobs as access_jobs
from handlers.access import relay
from handlers.access.relay import UNDELIVERED, UNDELIVERED_NOTICE
from handlers.vocabulary import Action, Outcome, Reply
from store.delivery.notices import HANDED_ON, NO_LONGER_THEIRS
from store.people import practitioners
from store.people import relay as relays
from store.register.feeds import Feed, import_feeds
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import RelayMessage
from store.tables.register import Child
from tests.access_helpers import audit_events, fresh_say, load_access, notices
from tests.factories import AMY, BEN, CHILDREN, INVOLVEMENTS_HEADER, NO_INVOLVEMENTS, PRACTITIONERS_HEADER, SHIELDED
from tests.statements import sqlite_plan, statements_sent

MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"
ANSWER = "happy to talk kingfisher, ring after 3pm"
_SOUTHVALE = "Southvale NHS Trust,Southvale"
NEW_LEAD = f"""{PRACTITIONERS_HEADER}
S002,Ana,Cole,Health visitor,{_SOUTHVALE},0113 496 0002,ana.cole@nhs.example,practitioner
"""
LEAD_REPLACED = f"""{INVOLVEMENTS_HEADER}
{SHIELDED},S001,Health visiting,2016-01-01,2025-06-30,true
{SHIELDED},S002,Health visiting,2025-07-01,,true
"""
LEAD_ENDED = f"""{INVOLVEMENTS_HEADER}
{SHIELDED},S001,Health visiting,2016-01-01,2025-06-30,true
"""
_SOUTHVALE_DM = "Duty manager,Southvale Children's Services,Southvale"
DM02_NO_LONGER_DM = f"""{PRACTITIONERS_HEADER}
DM02,Jo,Bell,{_SOUTHVALE_DM},0113 496 0100,jo.bell@southvale.example,practitioner
"""
DM03_TO_NORTHSHIRE = f"""{PRACTITIONERS_HEADER}
DM03,Ray,Lowe,Duty manager,Northshire Children's Services,Northshire,0113 496 0101,ray.lowe@southvale.example,duty_manager;practitioner
"""  # noqa: E501


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def _import(app: Signpost, *feeds: Feed) -> None:
    await import_feeds(app.ctx.db, app.ctx.keys, list(feeds), app.ctx.clock.now())


async def _shield_the_child_without_a_lead(app: Signpost) -> None:
    async with app.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(NO_INVOLVEMENTS)).values(shielded=True))


def _seen(reply: Reply) -> tuple[object, ...]:
    """All that a reply shows its reader."""
    return (reply.outcome, reply.text, reply.lines, reply.buttons)


async def _refused_as_a_stranger(app: Signpost, former: str) -> None:
    """``former`` reads and answers message 1 and is told exactly what P003, who never had it, is told;
    the audit records both refusals alike (no child named), and nothing of the message is shown."""
    before = max((e.seq for e in await audit_events(app)), default=0)
    for typed in ("relay 1", f"reply 1 {ANSWER}"):
        theirs = await fresh_say(app, former, typed)
        strangers = await fresh_say(app, "P003", typed)
        assert _seen(theirs) == _seen(strangers), typed
        assert theirs.outcome is Outcome.INVALID and theirs.text == "There is no relayed message 1 for you."
        assert "zebrafinch" not in repr(theirs)
    for action in (Action.RELAY_READ, Action.RELAY_MESSAGE):
        events = [e for e in await audit_events(app, action.value) if e.seq > before]
        mine = [(e.outcome, e.detail, e.subject_refs) for e in events if e.actor_id == former]
        others = [(e.outcome, e.detail, e.subject_refs) for e in events if e.actor_id == "P003"]
        assert mine == others and len(mine) == 1 and mine[0][2] in {None, ""}


async def _relay_notices_for(app: Signpost) -> list[str]:
    return sorted(n.recipient_id for n in await notices(app) if n.kind == "relay_message")


async def _row(app: Signpost) -> RelayMessage:
    async with app.ctx.db.read() as session:
        return (await session.execute(select(RelayMessage))).scalar_one()


async def test_a_replaced_lead_can_neither_read_nor_answer_and_the_new_lead_is_handed_it(app: Signpost) -> None:
    """S001 had the message; the involvements feed ends S001's involvement and makes S002 lead. S001 is
    answered as a stranger; the scheduled job hands it to S002 (told through the outbox), who reads and
    answers it; the sender sees 'delivered' throughout, then the answer."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    assert f"Message: {MARKER}" in (await fresh_say(app, "S001", "relay 1")).lines
    await _import(app, Feed("practitioners.csv", NEW_LEAD), Feed("involvements.csv", LEAD_REPLACED))

    await _refused_as_a_stranger(app, "S001")
    assert [n for n in await notices(app, "P002") if n.kind == "relay_answered"] == []
    assert "Status: delivered" in (await fresh_say(app, "P002", "relay 1")).lines, "the sender's view is unchanged"

    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0, "once"
    assert await _relay_notices_for(app) == ["S001", "S002"]
    [told] = [n for n in await notices(app, "S002") if n.kind == "relay_message"]
    assert "a child you are lead professional for (message 1)" in told.text and "zebrafinch" not in told.text
    [handed] = await audit_events(app, Action.RELAY_HANDED_ON.value)
    assert (handed.outcome, handed.subject_refs, handed.detail) == ("done", SHIELDED, "relay 1 to lead")

    assert f"Message: {MARKER}" in (await fresh_say(app, "S002", "relay 1")).lines
    assert (await fresh_say(app, "S002", f"reply 1 {ANSWER}")).outcome is Outcome.DONE
    status = await fresh_say(app, "P002", "relay 1")
    assert any(line.startswith("Status: answered") and line.endswith(ANSWER) for line in status.lines)
    await _refused_as_a_stranger(app, "S001")


async def test_a_replaced_lead_s_notice_not_yet_delivered_is_not_sent_once_it_is_handed_on(app: Signpost) -> None:
    """S001's notice was still waiting (their platform down) when S002 was made lead: once the message
    is handed on, S001 is not told, after it, that a message about the shielded child waits for them."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await _import(app, Feed("practitioners.csv", NEW_LEAD), Feed("involvements.csv", LEAD_REPLACED))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "relay_message"))).scalars()
        state = sorted((r.recipient_id, r.dropped_at is not None, r.last_error) for r in rows)
    assert state == [("S001", True, HANDED_ON), ("S002", False, None)]


async def test_a_lead_whose_involvement_ended_with_no_new_lead_hands_it_to_the_duty_managers(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await _import(app, Feed("involvements.csv", LEAD_ENDED))
    await _refused_as_a_stranger(app, "S001")

    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await _relay_notices_for(app) == ["DM02", "DM03", "S001"]
    assert f"Message: {MARKER}" in (await fresh_say(app, "DM03", "relay 1")).lines


async def test_a_lead_who_left_after_reading_is_replaced_by_the_duty_managers(app: Signpost) -> None:
    """The notice reached S001 before they left, so delivery never dropped it: the job hands it on."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "S001", "inactive")
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await _relay_notices_for(app) == ["DM02", "DM03", "S001"]
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "S001", "active")  # back, but no longer its recipient
    await _refused_as_a_stranger(app, "S001")


async def test_the_standard_scheduler_hands_it_on(app: Signpost) -> None:
    """The job runs among the standard tasks: a message whose lead was replaced reaches the new lead."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await _import(app, Feed("practitioners.csv", NEW_LEAD), Feed("involvements.csv", LEAD_REPLACED))
    assert "hand_on_relays" in await Scheduler(app.ctx, standard_tasks(Outbox(app.ctx, []))).run_due()
    assert await _relay_notices_for(app) == ["S001", "S002"]


async def test_a_duty_manager_who_lost_the_role_or_moved_authority_loses_the_message(app: Signpost) -> None:
    """To DM02 and DM03 (no lead). DM02 loses the duty-manager role: refused, while DM03 still has it and
    nothing is handed on. DM03 then moves to Northshire: refused too, and the job hands it to whoever
    Southvale has now: no duty manager, so the admin."""
    await _shield_the_child_without_a_lead(app)
    await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    await _import(app, Feed("practitioners.csv", DM02_NO_LONGER_DM))
    await _refused_as_a_stranger(app, "DM02")
    assert f"Message: {MARKER}" in (await fresh_say(app, "DM03", "relay 1")).lines
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0, "DM03 still has it"

    await _import(app, Feed("practitioners.csv", DM03_TO_NORTHSHIRE))
    await _refused_as_a_stranger(app, "DM03")
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await _relay_notices_for(app) == ["AD01", "DM02", "DM03"]
    assert ((await _row(app)).recipients, (await _row(app)).recipient_role) == ("AD01", "admin")
    assert f"Message: {MARKER}" in (await fresh_say(app, "AD01", "relay 1")).lines, "an admin-only account reads it"
    assert (await fresh_say(app, "AD01", f"reply 1 {ANSWER}")).outcome is Outcome.DONE
    status = await fresh_say(app, "P002", "relay 1")
    assert any(line.startswith("Status: answered") and line.endswith(ANSWER) for line in status.lines)


async def test_a_child_who_moved_authority_takes_the_message_to_the_new_authority(app: Signpost) -> None:
    await _shield_the_child_without_a_lead(app)
    await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    moved = CHILDREN.replace("M,,Southvale,false", "M,,Northshire,true")
    assert moved != CHILDREN
    await _import(app, Feed("children.csv", moved))
    for former in ("DM02", "DM03"):
        await _refused_as_a_stranger(app, former)

    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await _relay_notices_for(app) == ["DM01", "DM02", "DM03"]
    assert f"Message: {MARKER}" in (await fresh_say(app, "DM01", "relay 1")).lines
    traffic = await fresh_say(app, "DM01", "relays")
    [line] = traffic.lines
    assert line.startswith("• 999 000 0069: P002 → the duty managers: 1 sent, 0 answered, 1 waiting (oldest ")


async def test_an_answered_message_is_not_read_again_by_a_former_recipient_nor_handed_on(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    await _import(app, Feed("practitioners.csv", NEW_LEAD), Feed("involvements.csv", LEAD_REPLACED))
    assert (await fresh_say(app, "S001", "relay 1")).text == "There is no relayed message 1 for you."
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0
    assert await _relay_notices_for(app) == ["S001"]
    status = await fresh_say(app, "P002", "relay 1")
    assert any(line.startswith("Status: answered") and line.endswith(ANSWER) for line in status.lines)


async def test_with_nobody_to_take_it_the_sender_is_told_it_was_not_delivered(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await _import(app, Feed("involvements.csv", LEAD_ENDED))
    async with app.ctx.db.write() as session:
        for pid in ("DM02", "DM03", "AD01"):
            await practitioners.set_status(session, pid, "inactive")
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    [told] = [n for n in await notices(app, "P002") if n.kind == "relay_undelivered"]
    assert told.text == UNDELIVERED_NOTICE.format(id=1, ref="999 000 0050")
    assert f"Status: {UNDELIVERED}" in (await fresh_say(app, "P002", "relay 1")).lines
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0


async def test_a_duty_manager_who_lost_the_role_is_not_sent_the_notice_still_waiting_for_them(app: Signpost) -> None:
    """To DM02 and DM03 (no lead), both notices still waiting (their platform down). DM02 loses the
    duty-manager role while DM03 keeps it: nothing is handed on, but DM02 is not told, after it, that a
    message about the shielded child waits for them; DM03's notice still goes, and DM03 still reads it."""
    await _shield_the_child_without_a_lead(app)
    await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    await _import(app, Feed("practitioners.csv", DM02_NO_LONGER_DM))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0, "DM03 still has it"
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "relay_message"))).scalars()
        state = sorted((r.recipient_id, r.dropped_at is not None, r.last_error) for r in rows)
    assert state == [("DM02", True, NO_LONGER_THEIRS), ("DM03", False, None)]
    with statements_sent(app.ctx.db) as again:
        assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0
    assert [s.verb for s in again if s.verb not in {"SELECT", "BEGIN"}] == [], "nothing left to drop: no write"
    assert ((await _row(app)).recipients, (await _row(app)).recipient_role) == ("DM02;DM03", "duty_manager")
    assert f"Message: {MARKER}" in (await fresh_say(app, "DM03", "relay 1")).lines
    await _refused_as_a_stranger(app, "DM02")


# Unanswered messages each still taken by whoever they went to: the lead, Southvale's duty managers and
# an admin (the first three, one authority), then Northshire's duty manager and lead too.
_SPREAD = (
    (SHIELDED, "Southvale", ("S001",), "lead"),
    (NO_INVOLVEMENTS, "Southvale", ("DM02", "DM03"), "duty_manager"),
    (SHIELDED, "Southvale", ("AD01",), "admin"),
    (AMY, "Northshire", ("DM01",), "duty_manager"),
    (BEN, "Northshire", ("DM01",), "duty_manager"),
    (AMY, "Northshire", ("P001",), "lead"),
)


async def _relayed(app: Signpost, count: int) -> None:
    """``count`` more unanswered relays, round the ``_SPREAD``, stored as ``message`` stores them."""
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        for n in range(count):
            ref, authority, recipients, role = _SPREAD[n % len(_SPREAD)]
            sealed = await relays.seal_for_child(session, app.ctx.keys, int(ref), MARKER, "message")
            assert sealed is not None
            await relays.create(session, int(ref), authority, "P002", recipients, role, sealed, now)


async def test_the_sweep_reads_a_page_of_relays_in_as_many_statements_whatever_its_size(app: Signpost) -> None:
    """Every lookup through an index, no query per row: looking over 30 unanswered relays (two
    authorities, several children, leads, duty managers and an admin) sends as many statements as
    looking over 3, and hands none on while each is still taken."""
    await _relayed(app, 3)
    await app.ctx.audit.settle()  # the misuse rules' reads after the relays' audit: not the job's
    with statements_sent(app.ctx.db) as few:
        assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0
    await _relayed(app, 27)
    await app.ctx.audit.settle()
    with statements_sent(app.ctx.db) as many:
        assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0
    print(f"hand_on_relays statements: 3 relays {len(few)}, 30 relays {len(many)}")
    assert len(many) == len(few), [s.sql for s in many]


async def test_a_former_lead_s_answer_read_before_the_message_was_handed_on_is_not_stored(app: Signpost) -> None:
    """S001 reads message 1 as its recipient; before S001's answer is stored another replica hands it
    on to S002 (the feed replaced S001) and commits. The answer, stored against what S001 read, changes
    nothing: S002 still has an unanswered message, and the sender is not told it was answered."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    async with app.ctx.db.read() as session:
        seen = await relays.get(session, app.ctx.keys, 1)
    assert seen is not None and seen.recipients == ("S001",)
    await _import(app, Feed("practitioners.csv", NEW_LEAD), Feed("involvements.csv", LEAD_REPLACED))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    async with app.ctx.db.write() as session:
        sealed = await relays.seal_for_child(session, app.ctx.keys, int(SHIELDED), ANSWER, "reply")
        assert sealed is not None
        stored = await relays.answer(session, 1, "S001", sealed, app.ctx.clock.now(), was=seen.recipients)
    assert stored is False
    row = await _row(app)
    assert (row.recipients, row.reply, row.replied_by, row.replied_at) == ("S002", None, None, None)
    assert "Status: delivered" in (await fresh_say(app, "P002", "relay 1")).lines
    assert (await fresh_say(app, "S002", f"reply 1 {ANSWER}")).outcome is Outcome.DONE


DM02_DUTY_MANAGER_AGAIN = f"""{PRACTITIONERS_HEADER}
DM02,Jo,Bell,{_SOUTHVALE_DM},0113 496 0100,jo.bell@southvale.example,duty_manager;practitioner
"""


async def test_a_duty_manager_reinstated_after_the_sweep_judged_keeps_their_waiting_notice(app: Signpost) -> None:
    """The sweep judged DM02's waiting notice no longer theirs (DM02 had lost the role), then, before it
    dropped it, a feed made DM02 a duty manager again: the drop judges again and DM02 is still told."""
    await _shield_the_child_without_a_lead(app)
    await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    await _import(app, Feed("practitioners.csv", DM02_NO_LONGER_DM))
    async with app.ctx.db.read() as session:
        page = await relays.unanswered(session, app.ctx.keys, 0, access_jobs.BATCH)
        stale = relay.untaken(
            page, await relay.taken(session, app.ctx.keys, page, app.ctx.reaches, app.ctx.clock.now())
        )
    assert stale == ["relay:1:DM02"]
    await _import(app, Feed("practitioners.csv", DM02_DUTY_MANAGER_AGAIN))
    assert await access_jobs.drop_no_longer_theirs(app.ctx, 0, stale, app.ctx.clock.now()) == 0
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "relay_message"))).scalars()
        state = sorted((r.recipient_id, r.dropped_at is not None, r.last_error) for r in rows)
    assert state == [("DM02", False, None), ("DM03", False, None)]
    assert f"Message: {MARKER}" in (await fresh_say(app, "DM02", "relay 1")).lines


async def _relay_notice_state(app: Signpost) -> list[tuple[str, bool, str | None]]:
    """Each relay notice: its recipient, whether it is still to be sent, and why not if not."""
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "relay_message"))).scalars()
        return sorted((r.recipient_id, r.dropped_at is None and r.delivered_at is None, r.last_error) for r in rows)


async def test_a_duty_manager_who_takes_the_role_back_is_told_again(app: Signpost) -> None:
    """DM02 lost the duty-manager role while DM03 kept it: DM02's notice, still waiting, was not sent.
    DM02 is made a duty manager again and may read the message once more: the next look tells them
    (once: a later look leaves their notice as it is)."""
    await _shield_the_child_without_a_lead(app)
    await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    await _import(app, Feed("practitioners.csv", DM02_NO_LONGER_DM))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0
    assert await _relay_notice_state(app) == [("DM02", False, NO_LONGER_THEIRS), ("DM03", True, None)]

    await _import(app, Feed("practitioners.csv", DM02_DUTY_MANAGER_AGAIN))
    assert f"Message: {MARKER}" in (await fresh_say(app, "DM02", "relay 1")).lines
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0, "nothing handed on"
    assert await _relay_notice_state(app) == [("DM02", True, None), ("DM03", True, None)]
    with statements_sent(app.ctx.db) as again:
        assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0
    assert [s.verb for s in again if s.verb not in {"SELECT", "BEGIN"}] == [], "told once: no write"


LEAD_BACK = f"""{INVOLVEMENTS_HEADER}
{SHIELDED},S001,Health visiting,2016-01-01,,true
{SHIELDED},S002,Health visiting,2025-07-01,2025-08-31,true
"""


async def test_a_lead_handed_the_message_back_is_told_again(app: Signpost) -> None:
    """S001's notice was still waiting when S002 was made lead: handed on to S002, S001's was not
    sent. Then S002's involvement ends and S001 is lead again: the message is handed back to S001,
    who may read it, and is told (with the text of a lead's notice)."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await _import(app, Feed("practitioners.csv", NEW_LEAD), Feed("involvements.csv", LEAD_REPLACED))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await _relay_notice_state(app) == [("S001", False, HANDED_ON), ("S002", True, None)]

    await _import(app, Feed("involvements.csv", LEAD_BACK))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert ((await _row(app)).recipients, (await _row(app)).recipient_role) == ("S001", "lead")
    assert await _relay_notice_state(app) == [("S001", True, None), ("S002", False, HANDED_ON)]
    [told] = [n for n in await notices(app, "S001") if n.kind == "relay_message"]
    assert "a child you are lead professional for (message 1)" in told.text
    assert f"Message: {MARKER}" in (await fresh_say(app, "S001", "relay 1")).lines


LEAD_ENDS_TOMORROW = f"""{INVOLVEMENTS_HEADER}
{SHIELDED},S001,Health visiting,2016-01-01,2026-11-03,true
"""


async def test_a_lead_whose_involvement_ends_tomorrow_has_the_message_until_its_end_date(app: Signpost) -> None:
    """A planned end (tomorrow, as the FakeClock reads) leaves S001 the lead today: the message goes
    to them; on the end date, with no re-import, they can no longer take it and it is handed on."""
    await _import(app, Feed("involvements.csv", LEAD_ENDS_TOMORROW))
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    assert f"Message: {MARKER}" in (await fresh_say(app, "S001", "relay 1")).lines
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0

    app.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    assert (await fresh_say(app, "S001", "relay 1")).text == "There is no relayed message 1 for you."
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 1
    assert await _relay_notices_for(app) == ["DM02", "DM03", "S001"]


async def test_relays_follows_a_child_who_moved_to_the_authority_it_is_in_now(app: Signpost) -> None:
    """A feed moves a shielded child from Southvale to Northshire; its lead professional still has the
    message (nothing is handed on). ``relays`` covers "your authority's children": Northshire's duty
    manager sees the line now, Southvale's no longer."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    assert len((await fresh_say(app, "DM02", "relays")).lines) == 1
    moved = CHILDREN.replace(f"{SHIELDED},Mia,Stone,,2015-06-30,F,S1 4ZZ,Southvale,true", "")
    moved += f"{SHIELDED},Mia,Stone,,2015-06-30,F,S1 4ZZ,Northshire,true\n"
    await _import(app, Feed("children.csv", moved))
    assert await access_jobs.hand_on_relays(app.ctx, app.ctx.clock.now()) == 0, "the lead still has it"
    assert (await fresh_say(app, "DM02", "relays")).lines == ()
    [line] = (await fresh_say(app, "DM01", "relays")).lines
    assert line.startswith("• 999 000 0050: P002 → the lead professional: 1 sent, 0 answered, 1 waiting")


async def test_relays_reads_its_lines_in_as_many_statements_whatever_their_number(app: Signpost, backend: str) -> None:
    """One statement for the traffic, through indexes, however many children and senders: 3 relays
    and 30 are read alike (no query per row, nor per child's authority); on SQLite, its plan scans
    no table."""
    await _relayed(app, 3)
    await fresh_say(app, "DM02", "relays")  # stepped up: what follows is the command alone
    # The misuse rules read after each audit batch, on a task of their own: what the relays before
    # set going is let finish first, or a loaded machine counts it in the command's statements.
    await app.ctx.audit.settle()
    with statements_sent(app.ctx.db) as few:
        await fresh_say(app, "DM02", "relays")
    await _relayed(app, 27)
    await app.ctx.audit.settle()
    with statements_sent(app.ctx.db) as many:
        assert len((await fresh_say(app, "DM02", "relays")).lines) > 1
    assert len(many) == len(few), [s.sql for s in many]
    [traffic] = [sent for sent in many if "JOIN children" in sent.sql]
    if backend == "sqlite":
        plan = await sqlite_plan(app.ctx.db, traffic)
        assert "SCAN" not in plan and "ix_relay_messages_child_created_at" in plan, plan
