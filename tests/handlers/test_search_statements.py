"""A search's statements are built once, not per search (issue 15: CPU per answered search).

Building a statement through the ORM on every call costs about as much CPU as running it, and a
search runs about ten. Every SELECT a search runs (its gates, the probe, the answer, the audit-term
key, the audit writer's reads and the misuse listeners') is built once at import and reused, so
the second round of the same searches executes no SELECT object the first round did not.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.sql import Select

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal
from store.people import practitioners
from tests.factories import load_standard, ready, say

SLACK = Principal(Platform.SLACK, "T1", "U-p002")  # as deployed: searches come from a chat platform

SEARCHES = (
    ("Amy Jones 03/04/2014 M1 2AB", Outcome.ANSWERED),  # a match: the child's key seals the terms
    ("Zak Nobody 05/06/2013", Outcome.NO_MATCH),  # no match: sealed under the birth date's key
    ("Amy Jones 2014-04-03", Outcome.ANSWERED),
)


async def _round(app: Signpost) -> None:
    for text, outcome in SEARCHES:
        reply = await say(app, SLACK, text)
        assert reply.outcome is outcome, text
    await app.ctx.audit.settle()  # the misuse listeners have heard the round's events


async def test_a_search_builds_no_select_per_call(signpost: Signpost, clock: FakeClock) -> None:
    await load_standard(signpost)
    await ready(signpost, "P002")
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, SLACK, "P002", clock.now())
    clock.advance(minutes=11)  # still stepped up; past the "two platforms at once" window
    seen: list[Any] = []
    built: Counter[str] = Counter()

    def record(conn: Any, clause: Any, *rest: Any) -> None:
        if isinstance(clause, (Select, str)):
            seen.append(clause)

    event.listen(signpost.ctx.db.engine.sync_engine, "before_execute", record)
    await _round(signpost)  # the first round: anything lazily built is built now
    first = {id(clause) for clause in seen}
    kept = list(seen)  # ids stay unique while the objects live
    seen.clear()
    await _round(signpost)
    for clause in seen:
        if id(clause) not in first:
            built[str(clause).split("\n")[0][:80]] += 1
    assert kept and seen
    assert not built, f"SELECTs built per search: {dict(built)}"
