"""A keyed lookup of an archived child is in the child's subject access report while its key lives.

The lookup is answered "no record" (an archived child says nothing about itself to searches), so the
child is not its event's subject; its audit terms are sealed under the child's key. The family's
report said "No one has looked up this record" although someone had. The event is now filed under
the child's tag (``store.audit.candidates``), which only the child's key computes: after the child
is destroyed at 24, no report finds it again.
"""

from __future__ import annotations

from datetime import date

from bot.app import Signpost
from handlers.vocabulary import Outcome
from store.audit.sar import SarReport, subject_access
from tests.stepup_helpers import say_fresh
from tests.store.lifecycle.lifecycle_data import TURNS_24, at, load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)


async def report(app: Signpost, ref: int, day: date) -> SarReport:
    return await subject_access(app.ctx.db, app.ctx.sealer, ref, at(day))


async def test_a_lookup_of_an_archived_child_is_in_its_report_until_it_is_destroyed(signpost: Signpost) -> None:
    await load(signpost)
    await retention_on(signpost, NOV_2)  # Tara is 18 or over: archived
    reply = await say_fresh(signpost, "P001", str(TURNS_24))
    assert reply.outcome is Outcome.NO_MATCH
    [entry] = [e for e in (await report(signpost, int(TURNS_24), NOV_2)).entries if e.action == "lookup"]
    assert entry.outcome == "no_match"
    assert "nothing shown" in entry.line()
    assert (await retention_on(signpost, NOV_3)).destroyed == 1
    assert [e for e in (await report(signpost, int(TURNS_24), NOV_3)).entries if e.action == "lookup"] == []
