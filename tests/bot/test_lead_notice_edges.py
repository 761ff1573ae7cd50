"""A lead professional told of a lookup whose standing changes between the lookup and the delivery,
through the real outbox on both backends.

A lookup's notice says "… looked up 999 000 0018, a child you are lead professional for" (or "a
child you are working with"): it is sent only while that is still so. One whose recipient has left
is dropped (``NOT_ACTIVE``); one whose recipient's involvement has ended, or who is no longer the
lead when it called them so, is dropped too, recorded and logged, not sent: otherwise someone no
longer working with the child would learn who now is (a notice waits up to a week for a recipient
linked nowhere, or through an outage)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.notify import Outbox
from handlers import lead
from handlers.operator import people
from handlers.operator.common import audited
from handlers.stand_in import NOT_ACTIVE
from handlers.vocabulary import Action, Notice, Platform, Principal
from store.lifecycle import retention
from store.people import lead as lead_setting
from store.people import practitioners
from store.register.feeds import Feed, import_feeds
from store.tables.delivery import Notice as NoticeRow
from store.tables.register import Child
from tests.access_helpers import load_access, search_as
from tests.factories import AMY, CHILDREN, INVOLVEMENTS_HEADER


class Recorder:
    """A chat platform that takes every notice and records it."""

    def __init__(self, sent: list[tuple[Principal, Notice]]) -> None:
        self.platform = Platform.SLACK
        self.sent = sent

    async def deliver(self, to: Principal, notice: Notice) -> None:
        await asyncio.sleep(0)
        self.sent.append((to, notice))


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    async with signpost.ctx.db.write() as session:
        for n, pid in enumerate(("P001", "P003")):
            await practitioners.link_identity(
                session, Principal(Platform.SLACK, "T0001", f"U0L{n}"), pid, signpost.ctx.clock.now()
            )
    return signpost


# Amy's lead (P001) ends their involvement; Priya (P002) stays, not lead.
LEAD_ENDED = f"""{INVOLVEMENTS_HEADER}
{AMY},P001,Children's social care,2025-01-10,2026-11-01,true
{AMY},P002,School nursing,2024-09-01,,false
"""
# P001 stays on, no longer lead; P003 becomes lead.
LEAD_REPLACED = f"""{INVOLVEMENTS_HEADER}
{AMY},P001,Children's social care,2025-01-10,,false
{AMY},P002,School nursing,2024-09-01,,false
{AMY},P003,Education,2026-11-01,,true
"""


async def _told(app: Signpost) -> list[str]:
    sent: list[tuple[Principal, Notice]] = []
    await Outbox(app.ctx, [Recorder(sent)]).deliver_due()
    return [n.recipient_id for _, n in sent if n.kind == lead.NOTICE_KIND]


async def _lead_rows(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(select(NoticeRow).where(NoticeRow.kind == lead.NOTICE_KIND))
        return list(rows.scalars())


async def _import(app: Signpost, involvements: str) -> None:
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("involvements.csv", involvements)], app.ctx.clock.now())


async def test_a_lead_who_left_before_the_notice_went_is_not_told(app: Signpost) -> None:
    await search_as(app, "P002", AMY)
    async with audited(app.ctx, "operator", Action.PRACTITIONER_LEAVE) as audit:
        await people.leave(app.ctx, audit, "P001")
    assert await _told(app) == []
    [row] = await _lead_rows(app)
    assert row.dropped_at is not None and row.last_error == NOT_ACTIVE


async def test_a_lead_whose_involvement_ended_before_the_notice_went_is_not_told(app: Signpost) -> None:
    """Priya looks Amy up; before the notice goes, the feed ends Sam's (P001's) involvement. Sam is
    not told who now works with Amy: the notice is closed unsent, recorded and logged (id, kind and
    reason only), never retried."""
    await search_as(app, "P002", AMY)
    await _import(app, LEAD_ENDED)
    with capture_logs() as logs:
        assert await _told(app) == []
    [row] = await _lead_rows(app)
    assert row.dropped_at is not None and row.delivered_at is None
    assert row.last_error == lead.NO_LONGER_SO
    assert [(e["event"], e["kind"]) for e in logs if e["event"] == "notice_dropped"] == [
        ("notice_dropped", lead.NOTICE_KIND)
    ]
    assert await _told(app) == [], "closed, not retried"


async def test_a_lead_replaced_before_the_notice_went_is_not_told_they_are_the_lead(app: Signpost) -> None:
    await search_as(app, "P002", AMY)
    await _import(app, LEAD_REPLACED)
    assert await _told(app) == []
    [row] = await _lead_rows(app)
    assert row.last_error == lead.NO_LONGER_SO


async def test_every_current_practitioner_told_is_told_while_still_working_with_the_child(app: Signpost) -> None:
    """With the authority's setting 'all', P001 (lead) and P002 hear of P003's lookup… but the feed
    makes P001 an ordinary practitioner before delivery: P001 was told as the lead, so is not told."""
    async with app.ctx.db.write() as session:
        await lead_setting.set_setting(session, "Northshire", lead_setting.LeadNotices.ALL)
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(
            session, Principal(Platform.SLACK, "T0001", "U0L9"), "P002", app.ctx.clock.now()
        )
    await search_as(app, "DM01", AMY)
    await _import(app, LEAD_REPLACED)
    assert await _told(app) == ["P002"]


async def test_a_lead_still_the_lead_is_told(app: Signpost) -> None:
    await search_as(app, "P002", AMY)
    assert await _told(app) == ["P001"]


# Amy's lead (P001) has a planned end tomorrow (the FakeClock starts on 02/11/2026): current until then.
LEAD_ENDS_TOMORROW = f"""{INVOLVEMENTS_HEADER}
{AMY},P001,Children's social care,2025-01-10,2026-11-03,true
{AMY},P002,School nursing,2024-09-01,,false
"""


async def test_a_lead_whose_involvement_ends_tomorrow_is_told(app: Signpost) -> None:
    """A planned end is not an end: until that day the lead professional works with the child."""
    await _import(app, LEAD_ENDS_TOMORROW)
    await search_as(app, "P002", AMY)
    assert await _told(app) == ["P001"]


async def test_a_lead_whose_involvement_reached_its_end_date_is_no_longer_told(app: Signpost) -> None:
    """On its end date the involvement has ended, with no re-import: a lookup that day tells nobody."""
    await _import(app, LEAD_ENDS_TOMORROW)
    app.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    await search_as(app, "P002", AMY)
    assert await _told(app) == []
    assert await _lead_rows(app) == []


async def test_a_notice_still_waiting_when_the_end_date_comes_is_not_sent(app: Signpost) -> None:
    """Queued while the lead's involvement was current, delivered on its end date: closed unsent, as
    for an involvement a feed ended (nobody who has stopped working with the child is told)."""
    await _import(app, LEAD_ENDS_TOMORROW)
    await search_as(app, "P002", AMY)
    app.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    assert await _told(app) == []
    [row] = await _lead_rows(app)
    assert row.dropped_at is not None and row.last_error == lead.NO_LONGER_SO


# The child's record changes between the lookup and the sending: the notice is sent only while
# a lookup would tell its recipient now (``handlers.lead``: never of an archived or destroyed record).


async def test_a_notice_of_a_child_archived_before_it_went_is_not_sent(app: Signpost) -> None:
    """Priya looks Amy up; before the notice goes, Amy is archived (her 18th birthday's retention
    run). Signpost no longer signposts her: nobody is told of her again, the lead included; the
    notice is closed unsent, recorded (naming nobody), never retried."""
    await search_as(app, "P002", AMY)
    async with app.ctx.db.write() as session:
        assert await retention.archive(session, [int(AMY)], app.ctx.clock.now()) == 1
    assert await _told(app) == []
    [row] = await _lead_rows(app)
    assert row.dropped_at is not None and row.delivered_at is None
    assert row.last_error == lead.NO_LONGER_SO
    assert await _told(app) == [], "closed, not retried"


async def test_a_notice_of_a_child_destroyed_before_it_went_is_not_sent_and_nothing_of_it_is_kept(
    app: Signpost,
) -> None:
    """Amy destroyed by retention before the notice goes: nothing is sent, and no notice row is
    left that names her or the looker (already so: destruction deletes the notices naming her)."""
    await search_as(app, "P002", AMY)
    async with app.ctx.db.write() as session:
        await retention.destroy(session, app.ctx.keys, [int(AMY)], app.ctx.clock.now())
    assert await _told(app) == []
    assert await _lead_rows(app) == []


async def test_a_notice_of_a_child_shielded_before_it_went_is_still_sent_to_the_lead(app: Signpost) -> None:
    """Amy shielded by the feed after Priya's lookup (which showed Priya the signposts): the lead
    is still told who looked. PRODUCT.md: a shielded record reveals nothing without a grant, and a
    message about a shielded child reaches its lead professional; the notice reveals nothing of
    the child to anyone who does not know it (the lead does), and tells the one person the child's
    safety runs through who already holds her signposts."""
    await search_as(app, "P002", AMY)
    shielded = CHILDREN.replace("Northshire,false", "Northshire,true", 1)
    assert f"{AMY},Amy,Jones" in shielded.split("Northshire,true")[0].splitlines()[-1]
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("children.csv", shielded)], app.ctx.clock.now())
    async with app.ctx.db.read() as session:
        assert (await session.execute(select(Child.shielded).where(Child.ref == int(AMY)))).scalar() is True
    assert await _told(app) == ["P001"]
