"""Who may decide is read as things are when the decision is made, not as they were when it was asked.

A child moves between authorities and a practitioner changes post: the feeds say so, and from
then on the duty managers of the authority responsible *now* decide (and see) what is waiting,
never those of the authority that was responsible when the request was opened.
"""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.access import jobs as access_jobs
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal
from store.people import access as store
from store.people import practitioners
from store.register.feeds import Feed, import_feeds
from tests.access_helpers import decide, fresh_say, load_access, notices, request_access, search_as
from tests.factories import CHILDREN, PRACTITIONERS, SHIELDED, say

SLACK_USER = Principal(Platform.SLACK, "T0001", "U0001")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def move_shielded_child_to_northshire(app: Signpost) -> None:
    moved = CHILDREN.replace("S1 4ZZ,Southvale,true", "S1 4ZZ,Northshire,true")
    assert moved != CHILDREN
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("children.csv", moved)], app.ctx.clock.now())


async def move_p001_to_southvale(app: Signpost) -> None:
    moved = PRACTITIONERS.replace(
        "P001,Sam,Carter,Social worker,Northshire Children's Services,Northshire,",
        "P001,Sam,Carter,Social worker,Southvale Children's Services,Southvale,",
    )
    assert moved != PRACTITIONERS
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("practitioners.csv", moved)], app.ctx.clock.now())


async def test_once_the_child_moves_only_its_new_authority_decides_and_sees_the_request(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    await move_shielded_child_to_northshire(app)

    for verb in ("approve", "deny"):
        stale = await decide(app, "DM02", verb, 1)
        assert stale.outcome is Outcome.REFUSED and "for you to decide" in stale.text
    old = await fresh_say(app, "DM02", "pending")
    assert "Nothing is waiting" in old.text, "the purpose is not shown to an authority no longer responsible"
    new = await fresh_say(app, "DM01", "pending")
    assert "• 1:" in "\n".join(new.lines)

    approved = await decide(app, "DM01", "approve", 1)
    assert approved.outcome is Outcome.DONE
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.ANSWERED


async def test_an_escalation_after_the_child_moves_goes_to_its_new_authority(app: Signpost, clock: FakeClock) -> None:
    await request_access(app, "P001", SHIELDED)
    await move_shielded_child_to_northshire(app)
    clock.advance(minutes=31)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    escalated = [n.recipient_id for n in await notices(app) if n.kind == "access_request" and "Escalated" in n.text]
    assert escalated and set(escalated) <= {"DM01", "AD01"}, escalated


async def test_once_the_practitioner_moves_only_their_new_authority_decides_their_registration(
    app: Signpost,
) -> None:
    assert (await say(app, SLACK_USER, "register P001")).outcome is Outcome.DONE
    await move_p001_to_southvale(app)

    stale = await decide(app, "DM01", "approve", "R1")
    assert stale.outcome is Outcome.REFUSED and "for you to decide" in stale.text
    old = await fresh_say(app, "DM01", "pending")
    assert "R1" not in "\n".join(old.lines)
    new = await fresh_say(app, "DM02", "pending")
    assert "R1" in "\n".join(new.lines)
    assert (await decide(app, "DM02", "approve", "R1")).outcome is Outcome.DONE


async def test_a_registration_for_a_practitioner_no_longer_active_links_nothing(app: Signpost) -> None:
    assert (await say(app, SLACK_USER, "register P001")).outcome is Outcome.DONE
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "P001", "inactive")
    refused = await decide(app, "DM01", "approve", "R1")
    assert refused.outcome is Outcome.REFUSED and "not active" in refused.text
    async with app.ctx.db.read() as session:
        assert await store.identity_owner(session, "slack", "T0001", "U0001") is None
        row = await store.get_registration(session, 1)
    assert row is not None and row.state == store.PENDING
