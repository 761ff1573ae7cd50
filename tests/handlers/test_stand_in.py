"""A warning about a practitioner whose duty manager has left reaches someone else, through the outbox.

A misuse alert or a step-up lockout queued for a duty manager made inactive before it is sent goes,
with the same text, to whoever would be told now: the authority's other active duty managers, or
the admins when there are none. Nobody already told is told again, and nothing is sent twice.

Southvale has three duty managers here (DM02, DM03 and DM04); Northshire has one (DM01), and AD01
is the only admin.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.notify import Outbox
from handlers.clock import FakeClock
from handlers.misuse.monitor import Finding, MisusePolicy, raise_alert
from handlers.stand_in import NOT_ACTIVE
from handlers.stepup.flow import LOCKOUT_KEY, StepUpPolicy, managers_notices
from handlers.vocabulary import Actor, Notice, Platform, Principal
from store.people import practitioners
from store.people.credentials import Failure
from store.register.feeds import Feed, import_feeds
from store.tables.delivery import Notice as NoticeRow
from tests.access_helpers import load_access, notices
from tests.factories import PRACTITIONERS_HEADER
from tests.stepup_helpers import five_wrong_codes

_SOUTHVALE_DM = "Duty manager,Southvale Children's Services,Southvale"
DM04 = f"""{PRACTITIONERS_HEADER}
DM04,Kit,Shaw,{_SOUTHVALE_DM},0113 496 0102,kit.shaw@southvale.example,duty_manager;practitioner
"""
WARNINGS = {"misuse_alert", "stepup_locked", "stepup_disabled"}


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
        for pid in ("DM01", "DM02", "DM03", "DM04", "AD01"):
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
    found = LOCKOUT_KEY.fullmatch(key.removesuffix(":DM:02"))
    assert found is not None and (found["kind"], found["practitioner"]) == (notice.kind, practitioner_id)
