"""A warning about a practitioner whose duty manager has left, or a relayed message whose recipient
has, reaches someone else through the outbox.

A misuse alert or a step-up lockout queued for a duty manager made inactive before it is sent goes,
with the same text, to whoever would be told now: the authority's other active duty managers, or
the admins when there are none. Nobody already told is told again, and nothing is sent twice. A
relayed message about a shielded child whose only recipient was made inactive before it was sent
goes to whoever the relay would choose now, who may then read and answer it; with nobody, its sender
is told it was not delivered.

Southvale has three duty managers here (DM02, DM03 and DM04); Northshire has one (DM01), and AD01
is the only admin.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.app import Signpost
from bot.notify import Outbox
from handlers.access.notices import request_notices
from handlers.access.relay import UNDELIVERED, UNDELIVERED_NOTICE
from handlers.clock import FakeClock
from handlers.lifecycle.flows import schedule_with_notices
from handlers.misuse.monitor import Finding, MisusePolicy, raise_alert
from handlers.operator import people
from handlers.operator.common import audited
from handlers.stand_in import ACCESS_KEY, NOT_ACTIVE
from handlers.stepup.flow import LOCKOUT, StepUpPolicy, managers_notices
from handlers.stepup.reset import MANAGERS_KEY, MANAGERS_KIND
from handlers.vocabulary import Action, Actor, Notice, Outcome, Platform, Principal
from store.people import practitioners
from store.people.credentials import Failure
from store.register.feeds import Feed, import_feeds
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import RelayMessage
from store.tables.register import Child
from tests.access_helpers import audit_events, fresh_say, load_access, notices
from tests.factories import CHILDREN, NO_INVOLVEMENTS, PRACTITIONERS_HEADER, SHIELDED, say
from tests.stepup_helpers import enrol_and_step_up, five_wrong_codes

_SOUTHVALE_DM = "Duty manager,Southvale Children's Services,Southvale"
DM04 = f"""{PRACTITIONERS_HEADER}
DM04,Kit,Shaw,{_SOUTHVALE_DM},0113 496 0102,kit.shaw@southvale.example,duty_manager;practitioner
"""
WARNINGS = {"misuse_alert", "stepup_locked", "stepup_disabled", "stepup_reset_by"}


class Recorder:
    """A chat platform that takes every notice and records who got which."""

    platform = Platform.SLACK

    def __init__(self) -> None:
        self.sent: list[tuple[str, Notice]] = []

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.sent.append((to.user_id, notice))

    def warnings(self) -> list[tuple[str, str, str]]:
        return sorted((user, n.kind, n.text) for user, n in self.sent if n.kind in WARNINGS)


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    now = signpost.ctx.clock.now()
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [Feed("practitioners.csv", DM04)], now)
    async with signpost.ctx.db.write() as session:
        for pid in ("DM01", "DM02", "DM03", "DM04", "AD01", "P002"):
            await practitioners.link_identity(session, Principal(Platform.SLACK, "T1", pid), pid, now)
    return signpost


async def _set_status(app: Signpost, status: str, *ids: str) -> None:
    async with app.ctx.db.write() as session:
        for pid in ids:
            await practitioners.set_status(session, pid, status)


async def _alert(app: Signpost, about: str) -> None:
    async with app.ctx.db.read() as session:
        actor = await practitioners.get_actor(session, about)
    assert actor is not None
    finding = Finding("enumeration", about, "40 children in the last hour")
    raised, _ = await raise_alert(app.ctx, MisusePolicy(), actor, finding, app.ctx.clock.now())
    assert raised


async def _warnings(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(select(NoticeRow).where(NoticeRow.kind.in_(WARNINGS)).order_by(NoticeRow.id))
        return list(rows.scalars())


async def _deliver_all(app: Signpost, box: Outbox) -> None:
    """Pass until a pass does nothing: a stand-in queued in one pass goes out in the next."""
    for _ in range(3):
        await box.deliver_due()
    assert (await box.deliver_due()).delivered == 0, "nothing left, nothing sent twice"


async def _queued_for(app: Signpost) -> list[str]:
    return [row.recipient_id for row in await _warnings(app)]


async def test_a_misuse_alert_for_a_manager_made_inactive_goes_to_the_other_managers_once_each(
    app: Signpost,
) -> None:
    """Alert about S001 queued for DM02 and DM03 (DM04 was away); DM02 leaves and DM04 returns before
    it is sent: DM04 gets the same alert, DM03 gets its one copy only, DM02's is recorded dropped."""
    await _set_status(app, "inactive", "DM04")
    await _alert(app, "S001")
    assert await _queued_for(app) == ["DM02", "DM03"]
    [queued, _] = await notices(app)
    await _set_status(app, "inactive", "DM02")
    await _set_status(app, "active", "DM04")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    assert "practitioner S001" in queued.text
    assert recorder.warnings() == [("DM03", "misuse_alert", queued.text), ("DM04", "misuse_alert", queued.text)]
    dm02 = (await _warnings(app))[0]
    assert (dm02.recipient_id, dm02.delivered_at, dm02.last_error) == ("DM02", None, NOT_ACTIVE)
    assert dm02.dropped_at is not None


async def test_a_misuse_alert_whose_only_manager_was_made_inactive_goes_to_the_admins(app: Signpost) -> None:
    """Alert about P002 queued for Northshire's only duty manager, DM01, who leaves before it is sent:
    AD01 gets the same alert, once."""
    await _alert(app, "P002")
    await _set_status(app, "inactive", "DM01")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    [(user, kind, text)] = recorder.warnings()
    assert (user, kind) == ("AD01", "misuse_alert") and "practitioner P002" in text
    assert await _queued_for(app) == ["DM01", "AD01"]


async def test_a_lockout_for_a_manager_made_inactive_goes_to_the_other_managers_once_each(
    app: Signpost, clock: FakeClock
) -> None:
    """S001 locks their code entry, DM02 and DM03 told (DM04 away); DM02 leaves and DM04 returns
    before it is sent: DM04 gets the same notice, DM03 one copy only, DM02's is recorded dropped."""
    await _set_status(app, "inactive", "DM04")
    await five_wrong_codes(app, clock, "S001")
    assert await _queued_for(app) == ["DM02", "DM03"]
    [queued, _] = [n for n in await notices(app) if n.kind in WARNINGS]
    await _set_status(app, "inactive", "DM02")
    await _set_status(app, "active", "DM04")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    assert "practitioner S001" in queued.text
    assert recorder.warnings() == [("DM03", "stepup_locked", queued.text), ("DM04", "stepup_locked", queued.text)]
    dm02 = (await _warnings(app))[0]
    assert (dm02.recipient_id, dm02.delivered_at, dm02.last_error) == ("DM02", None, NOT_ACTIVE)
    assert dm02.dropped_at is not None


async def test_a_lockout_whose_only_manager_was_made_inactive_goes_to_the_admins(
    app: Signpost, clock: FakeClock
) -> None:
    """P002 locks their code entry, Northshire's only duty manager DM01 told, then made inactive
    before it is sent: AD01 gets the same notice, once."""
    await five_wrong_codes(app, clock, "P002")
    await _set_status(app, "inactive", "DM01")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    [(user, kind, text)] = recorder.warnings()
    assert (user, kind) == ("AD01", "stepup_locked") and "practitioner P002" in text
    assert await _queued_for(app) == ["DM01", "AD01"]


async def test_a_reset_told_to_a_manager_made_inactive_goes_to_the_other_managers_never_the_one_who_did_it(
    app: Signpost,
) -> None:
    """DM02 resets S001's authenticator while DM04 is away: DM03 is told. DM03 leaves and DM04 returns
    before it is sent: DM04 gets the same notice, once; DM02, who did the reset, gets none."""
    await _set_status(app, "inactive", "DM04")
    await enrol_and_step_up(app, "S001")
    await enrol_and_step_up(app, "DM02")
    assert (await say(app, "DM02", "reset S001")).outcome is Outcome.DONE
    assert await _queued_for(app) == ["DM03"]
    [queued] = [n for n in await notices(app) if n.kind in WARNINGS]
    await _set_status(app, "inactive", "DM03")
    await _set_status(app, "active", "DM04")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    assert "reset practitioner S001" in queued.text
    assert recorder.warnings() == [("DM04", "stepup_reset_by", queued.text)]


async def test_a_host_reset_whose_only_manager_was_made_inactive_goes_to_the_admins(app: Signpost) -> None:
    """An admin resets P002 on the host and Northshire's only duty manager DM01 is told, then made
    inactive before it is sent: AD01 gets the same notice, once."""
    await enrol_and_step_up(app, "P002")
    async with audited(app.ctx, "operator", Action.TOTP_RESET) as audit:
        assert (await people.totp_reset(app.ctx, audit, "P002")).existed
    await _set_status(app, "inactive", "DM01")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    [(user, kind, text)] = recorder.warnings()
    assert (user, kind) == ("AD01", "stepup_reset_by") and "practitioner P002" in text
    assert await _queued_for(app) == ["DM01", "AD01"]


@pytest.mark.parametrize("practitioner_id", ["S001", "NS:P:0001", "x:12:None"])
@pytest.mark.parametrize("locked_until", [None, datetime(2026, 11, 2, 9, 30, 5, 120, tzinfo=UTC)])
def test_the_practitioner_is_read_back_from_any_lockout_key(
    practitioner_id: str, locked_until: datetime | None
) -> None:
    """The key step-up gives a lockout notice names the practitioner concerned, even one whose id
    holds colons, for a pause (an end time) or a switch-off (none)."""
    actor = Actor(practitioner_id, "", "Social worker", "Southvale Children's Services", "Southvale", frozenset())
    failure = Failure(5, locked_until, "locked", newly_locked=locked_until is not None, newly_disabled=not locked_until)
    [notice] = managers_notices(["DM:02"], actor, failure, StepUpPolicy())
    key = notice.dedupe_key or ""
    assert key.endswith(":DM:02")
    found = LOCKOUT.read(notice)
    assert found is not None and (found.shared, found.about) == (key.removesuffix(":DM:02"), practitioner_id)


@pytest.mark.parametrize("practitioner_id", ["S001", "NS:P:0001", "x:12:None"])
@pytest.mark.parametrize("by", [None, "DM:02", "NS-DM01"])
def test_the_practitioner_and_who_reset_are_read_back_from_any_reset_key(practitioner_id: str, by: str | None) -> None:
    """The key a reset's notice to a duty manager carries names the practitioner reset and the duty
    manager who did it (none on the host), whatever colons their ids hold."""
    now = datetime(2026, 11, 2, 9, 30, 5, 120, tzinfo=UTC)
    key = MANAGERS_KEY.shared(MANAGERS_KIND, practitioner_id, str(now), by=by)
    found = MANAGERS_KEY.read(Notice("DM:03", MANAGERS_KIND, "reset", dedupe_key=f"{key}:DM:03"))
    assert found is not None and (found.shared, found.about) == (key, practitioner_id)
    assert found.excluding == (() if by is None else (by,))
    assert LOCKOUT.read(Notice("DM:03", MANAGERS_KIND, "reset", dedupe_key=f"{key}:DM:03")) is None


MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"
LEAD = ("S001", "Lee", "Hart", "Health visit", "Southvale NHS Trust", "0113 496 0001", "lee.hart")


def _relayed(recorder: Recorder) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted(
        (user, n.text, tuple(b.command for b in n.buttons)) for user, n in recorder.sent if n.kind == "relay_message"
    )


async def _relay_row(app: Signpost) -> RelayMessage:
    async with app.ctx.db.read() as session:
        return (await session.execute(select(RelayMessage))).scalar_one()


async def test_a_relay_whose_lead_was_made_inactive_goes_to_the_duty_managers_who_can_read_and_answer_it(
    app: Signpost,
) -> None:
    """P002 writes about a shielded child; its lead professional, S001, leaves before the notice is
    sent. Southvale's duty managers get it as if it were sent now, read it and answer; the sender is
    told "answered", as ever, and never who had it. S001's notice is recorded dropped."""
    sent = await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    assert sent.outcome is Outcome.DONE and "delivered" in sent.text
    await _set_status(app, "inactive", "S001")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    text = (
        "A practitioner sent you a message through Signpost about shielded record 999 000 0050, a child of your "
        "authority with no lead professional Signpost can reach (message 1). Send 'relay 1' to read it and the "
        "sender's contact details; you can answer through Signpost, contact them directly, or leave it. They are "
        "not told who you are."
    )
    assert _relayed(recorder) == [(dm, text, ("relay 1", "reply 1")) for dm in ("DM02", "DM03", "DM04")]
    [lead] = [n for n in await notices(app, "S001") if n.kind == "relay_message"]
    async with app.ctx.db.read() as session:
        row = (await session.execute(select(NoticeRow).where(NoticeRow.dedupe_key == lead.dedupe_key))).scalar_one()
    assert (row.delivered_at, row.last_error) == (None, NOT_ACTIVE)
    read = await fresh_say(app, "DM03", "relay 1")
    assert read.outcome is Outcome.INFO and f"Message: {MARKER}" in read.lines
    answered = await fresh_say(app, "DM03", "reply 1 happy to talk, ring after 3pm")
    assert answered.outcome is Outcome.DONE
    status = await fresh_say(app, "P002", "relay 1")
    assert any(line.startswith("Status: answered") for line in status.lines)
    traffic = await fresh_say(app, "DM02", "relays")
    [line] = traffic.lines  # the relay is blind: the role it was handed on to, never who (handlers.access.relay.party)
    assert line.startswith("• 999 000 0050: P002 → the duty managers: 1 sent, 1 answered, 0 waiting; last sent ")
    to_sender = [n.kind for user, n in recorder.sent if user == "P002"]
    assert to_sender == [], "the sender is told nothing of the hand-on"
    [handed] = await audit_events(app, Action.RELAY_HANDED_ON.value)  # who may read it changed: audited
    assert (handed.outcome, handed.subject_refs, handed.result_count, handed.detail) == (
        "done",
        SHIELDED,
        3,
        "relay 1 to duty_manager",
    )
    await _set_status(app, "active", "S001")
    assert (await fresh_say(app, "S001", "relay 1")).outcome is Outcome.INVALID, "who never had it keeps nothing"


async def test_a_relay_nobody_can_take_any_more_tells_its_sender_it_was_not_delivered(app: Signpost) -> None:
    """The lead professional, every Southvale duty manager and the only admin leave before the notice
    is sent: the sender is told it was not delivered and to ask their own duty manager, with the
    reference only (neither who it went to nor the child's authority), and 'relay 1' says so too."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await _set_status(app, "inactive", "S001", "DM02", "DM03", "DM04", "AD01")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    told = [(user, n.kind, n.text) for user, n in recorder.sent]
    assert told == [("P002", "relay_undelivered", UNDELIVERED_NOTICE.format(id=1, ref="999 000 0050"))]
    assert not any(word in told[0][2] for word in (*LEAD, "Southvale", "Mia", "Stone"))
    status = await fresh_say(app, "P002", "relay 1")
    assert f"Status: {UNDELIVERED}" in status.lines
    row = await _relay_row(app)
    assert (row.recipients, row.recipient_role) == ("", "none")
    [handed] = await audit_events(app, Action.RELAY_HANDED_ON.value)
    assert (handed.outcome, handed.subject_refs, handed.detail) == (
        "failed",
        SHIELDED,
        "relay 1 to nobody: sender told",
    )


async def test_a_relay_to_several_duty_managers_stays_with_those_still_active(app: Signpost) -> None:
    """A shielded child with no lead: the message goes to Southvale's duty managers; DM02 leaves before
    it is sent. DM03 and DM04 still have it: nobody else is told, nothing changes who may read it."""
    async with app.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(NO_INVOLVEMENTS)).values(shielded=True))
    await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    await _set_status(app, "inactive", "DM02")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    assert [user for user, _, _ in _relayed(recorder)] == ["DM03", "DM04"]
    assert [n.kind for user, n in recorder.sent if user in {"AD01", "P002"}] == []
    row = await _relay_row(app)
    assert (row.recipients, row.recipient_role) == ("DM02;DM03;DM04", "duty_manager")


AD02 = f"""{PRACTITIONERS_HEADER}
AD02,Jay,Park,Service admin,Signpost Operations,Northshire,0161 496 0201,jay.park@signpost.example,admin
"""


async def test_decommissioning_news_for_an_admin_who_left_goes_to_the_admin_appointed_since(app: Signpost) -> None:
    """Switch-off is scheduled and the only admin, AD01, told; AD01 leaves and AD02 is appointed before
    it is sent: AD02 gets the same notice, once, keyed as theirs would have been."""
    now = app.ctx.clock.now()
    async with app.ctx.db.write() as session:
        await schedule_with_notices(app.ctx, session, now.date() + timedelta(days=40), None, "AD01", now)
    await _set_status(app, "inactive", "AD01")
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("practitioners.csv", AD02)], now)
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, Principal(Platform.SLACK, "T1", "AD02"), "AD02", now)
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    [(user, notice)] = [(user, n) for user, n in recorder.sent if n.kind == "decommission"]
    assert user == "AD02" and notice.text.startswith("Signpost is scheduled to be switched off on ")
    assert notice.dedupe_key == "decommission:1:scheduled:AD02"


@pytest.mark.parametrize("manager", ["DM02", "SV:DM:02"])
def test_the_request_is_read_back_from_the_key_of_any_managers_copy(manager: str) -> None:
    """The key an access request gives each duty manager's copy names the request and its level, even
    for a manager whose id holds colons: such a copy, dropped, still finds a stand-in."""
    [copy] = request_notices(12, int(SHIELDED), [manager], 1)
    found = ACCESS_KEY.fullmatch(copy.dedupe_key or "")
    assert found is not None and (found["request"], found["level"]) == ("12", "1")


async def test_an_access_request_whose_manager_left_after_the_child_moved_goes_to_the_child_s_new_authority(
    app: Signpost,
) -> None:
    """The stand-in for a duty manager who left is chosen in the authority responsible now: the
    child moved to Northshire, so Northshire's duty manager is asked, never Southvale's others."""
    requested = await fresh_say(app, "P002", f"request {SHIELDED} section 47 enquiry")
    assert requested.outcome is Outcome.DONE
    moved = CHILDREN.replace("S1 4ZZ,Southvale,true", "S1 4ZZ,Northshire,true")
    assert moved != CHILDREN
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("children.csv", moved)], app.ctx.clock.now())
    await _set_status(app, "inactive", "DM02")
    recorder = Recorder()

    await _deliver_all(app, Outbox(app.ctx, [recorder]))

    assert [user for user, n in recorder.sent if n.kind == "access_request"] == ["DM01"]
