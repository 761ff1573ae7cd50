"""The scheduler's retention tick destroys a child whose birth-date key the key file has already
punctured while its rows are still in the store (a backup from before its destruction, restored):
the blind index cannot find it any more, so no day of the run would."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import func, select

from bot.app import Signpost
from handlers.vocabulary import Origin
from store.keys import keychain
from store.keys.keychain import Chain
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from store.tables.register import Child, ChildKey, Involvement
from tests.store.lifecycle.lifecycle_data import TURNS_24, load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)


async def test_the_scheduled_tick_destroys_a_child_of_a_punctured_cohort_whose_rows_remain(signpost: Signpost) -> None:
    """The key file punctured through 3 November (as a later copy of it is) while the store is as
    it was on the 2nd: the tick on the 3rd destroys the child who turned 24 that day, wrapped key,
    involvements and identity, audits it as the scheduler's with its count, and tells the admins."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    cutoff = keychain.day_slot(keychain.first_retained_dob(NOV_3))
    assert keychain.puncture(signpost.ctx.keys, Chain.DAY, cutoff, NOV_3) == 1  # the key file only
    report = await retention_on(signpost, NOV_3)
    async with signpost.ctx.db.read() as session:
        child = await session.get(Child, int(TURNS_24))
        wrapped = await session.get(ChildKey, int(TURNS_24))
        involved = (
            await session.execute(select(func.count()).where(Involvement.child_ref == int(TURNS_24)))
        ).scalar_one()
        steps = (
            await session.execute(
                select(AuditEvent.platform, AuditEvent.detail).where(AuditEvent.action == "retention")
            )
        ).all()
        told = [json.loads(body)["text"] for body in (await session.execute(select(NoticeRow.body))).scalars()]
    assert child is not None and (child.state, child.identity, wrapped, involved) == ("destroyed", None, None, 0)
    assert report.destroyed == 1
    assert (Origin.SCHEDULER.value, "cohorts destroyed before: archived 0 destroyed 1") in [tuple(s) for s in steps]
    assert any("1 was destroyed at 24" in text for text in told)
