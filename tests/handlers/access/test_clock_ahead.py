"""Permissions stamped by a clock ahead end when the clock is put right (``store.skew``).

A host whose clock was set years on (an operator's ``faketime``, a bad NTP source) and then put right
left grants, requests and registrations stamped at that clock's date: a grant approved at 2037 read
as in force until 2037 and a day, so a practitioner kept seeing a shielded child's signposts for
years instead of the policy's days; a request stayed waiting, and a registration decidable, as long.
Now one whose start is later than now and ``CLOCK_SKEW`` is not in force, and the expiry jobs close
it through their usual path: audited as the scheduler's, and its holder (or asker) told, as of any
expiry. One stamped within the skew (replicas' clocks a little apart) is judged as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.access import jobs as access_jobs
from handlers.clock import FakeClock
from handlers.vocabulary import Origin, Outcome, Platform, Principal
from store.delivery import notices as store_notices
from store.skew import CLOCK_SKEW
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import AccessGrant, AccessRequest
from tests.access_helpers import audit_events, decide, fresh_say, load_access, notices, request_access, search_as
from tests.factories import AMY, SHIELDED, say
from tests.handlers.access.test_registration import linked_to, registration_asks
from tests.stepup_helpers import code_now, ensure_enrolled

AHEAD = datetime(2037, 8, 1, 9, 0, tzinfo=UTC)  # the clock an operator's faketime set
SLACK_USER = Principal(Platform.SLACK, "T0001", "U0001")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def _grants(app: Signpost) -> list[AccessGrant]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(AccessGrant).order_by(AccessGrant.id))).scalars())


async def _request(app: Signpost, request_id: int) -> AccessRequest:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(AccessRequest).where(AccessRequest.id == request_id))
        return found.scalar_one()


async def test_a_grant_approved_while_the_clock_read_2037_ends_when_the_clock_is_put_right(
    app: Signpost, clock: FakeClock
) -> None:
    """Approved for the default day at 2037: in force on that clock. Put right, the practitioner
    sees the record shielded again at once (not in 2037), the expiry job ends the grant, once,
    audited as the scheduler's ``grant_expired``, and the holder is told as of any expiry. They may
    ask again."""
    real = clock.now()
    clock.set(AHEAD)
    await request_access(app, "P002", SHIELDED)
    assert (await decide(app, "DM02", "approve", 1)).outcome is Outcome.DONE
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.ANSWERED, "in force on its own clock"

    clock.set(real + timedelta(hours=1))
    after = await search_as(app, "P002", SHIELDED)
    assert after.outcome is Outcome.SHIELDED and after.signposts == ()
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 1
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 0, "ended once"
    [grant] = await _grants(app)
    assert grant.state == "expired"
    assert [n.kind for n in await notices(app, "P002")] == ["access_approved", "grant_expired"]
    [event] = await audit_events(app, "grant_expired")
    assert (event.platform, event.outcome, event.subject_refs) == (Origin.SCHEDULER, "done", SHIELDED)
    assert event.detail == f"grant {grant.id}"
    # The approval, undelivered (stamped 2037), is not sent after "has ended".
    async with app.ctx.db.read() as session:
        due = [n.kind for _, n in await store_notices.pending(session, app.ctx.keys, clock.now(), recipients=["P002"])]
    assert "access_approved" not in due and "grant_expired" in due

    again = await request_access(app, "P002", SHIELDED)
    assert again.outcome is Outcome.DONE and "Access request 2" in again.text


async def test_a_grant_made_within_the_clock_skew_and_one_made_now_last_their_time(
    app: Signpost, clock: FakeClock
) -> None:
    """Controls: approved by a clock 59 minutes ahead (replicas a little apart) a grant is in force
    at the right time and is not ended early; one made on the right clock lasts to its end."""
    real = clock.now()
    clock.set(real + CLOCK_SKEW - timedelta(minutes=1))
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1, "2h")
    clock.set(real)
    assert (await search_as(app, "P002", SHIELDED)).outcome is Outcome.ANSWERED
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 0

    clock.set(real + timedelta(hours=3))  # that grant has ended: P001 is approved on the right clock
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 1
    start = clock.now()
    await request_access(app, "P001", SHIELDED)
    await decide(app, "DM02", "approve", 2)
    clock.set(start + timedelta(hours=23, minutes=59))
    assert (await search_as(app, "P001", SHIELDED)).outcome is Outcome.ANSWERED
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 0
    clock.set(start + timedelta(hours=24))
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 1
    assert (await search_as(app, "P001", SHIELDED)).outcome is Outcome.SHIELDED


async def test_a_request_opened_while_the_clock_read_2037_is_not_pending_and_the_expiry_job_closes_it(
    app: Signpost, clock: FakeClock
) -> None:
    """Opened at 2037 and never decided: put right, it is not listed as waiting, an Approve is
    refused as expired and grants nothing, the requester may ask again (not "already waiting"), and
    the expiry job closes it as it closes any: audited, the asks taken back, the requester told."""
    real = clock.now()
    clock.set(AHEAD)
    await request_access(app, "P002", SHIELDED)
    clock.set(real)

    waiting = await fresh_say(app, "DM02", "pending")
    assert "• 1:" not in "".join(waiting.lines) + waiting.text
    late = await decide(app, "DM02", "approve", 1)
    assert late.outcome is Outcome.REFUSED and "expired" in late.text
    assert await _grants(app) == []
    again = await request_access(app, "P002", SHIELDED)
    assert again.outcome is Outcome.DONE and "Access request 2" in again.text

    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 1
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0, "closed once"
    assert ((await _request(app, 1)).state, (await _request(app, 2)).state) == ("expired", "pending")
    [told] = [n for n in await notices(app, "P002") if n.kind == "access_expired"]
    assert told.dedupe_key == "access:1:expired"
    [event] = await audit_events(app, "request_expired")
    assert (event.platform, event.detail, event.subject_refs) == (Origin.SCHEDULER, "request 1", SHIELDED)
    async with app.ctx.db.read() as session:
        asks = await session.execute(
            select(NoticeRow.dedupe_key, NoticeRow.last_error).where(NoticeRow.kind == "access_request")
        )
        by_key = dict(asks.all())
    assert [why for key, why in by_key.items() if key and key.startswith("access:1:")] == [store_notices.CLOSED]
    after = await decide(app, "DM02", "approve", 1)
    assert after.outcome is Outcome.REFUSED and "expired before anyone decided it" in after.text


async def test_a_registration_opened_while_the_clock_read_2037_cannot_be_approved_and_expires(
    app: Signpost, clock: FakeClock
) -> None:
    """An account asks to act as P001 at 2037: put right, the request is not listed, an Approve is
    refused ("already closed: expired") and links nothing, and the expiry job closes it as at the
    end of its 7 days: audited, DM01's ask taken back, the asking account told."""
    real = clock.now()
    clock.set(AHEAD)
    assert (await say(app, SLACK_USER, "register P001")).outcome is Outcome.DONE
    clock.set(real)

    waiting = await fresh_say(app, "DM01", "pending")
    assert "R1" not in waiting.text + "".join(waiting.lines)
    late = await decide(app, "DM01", "approve", "R1")
    assert late.outcome is Outcome.REFUSED and "already closed: expired" in late.text
    assert await linked_to(app, SLACK_USER) is None

    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 1
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0, "closed once"
    [ask] = await registration_asks(app)
    assert ask.delivered_at is None and ask.last_error == store_notices.CLOSED
    [told] = await notices(app, "P001")
    assert (told.kind, told.account) == ("registration_expired", SLACK_USER)
    [event] = await audit_events(app, "registration_expired")
    assert (event.platform, event.detail) == (Origin.SCHEDULER, "registration R1")
    closed = await decide(app, "DM01", "approve", "R1")
    assert closed.outcome is Outcome.REFUSED and "already closed: expired" in closed.text
    assert (await say(app, SLACK_USER, "register P001")).outcome is Outcome.DONE
    assert [e.detail for e in await audit_events(app, "register")][-1] == "registration R2"


async def test_a_code_typed_while_the_clock_read_2037_covers_nothing_and_a_new_code_is_taken(
    app: Signpost, clock: FakeClock
) -> None:
    """A step-up code typed at 2037 was fresh on that clock. Put right, it covers no search (it
    would have for years: its age read as negative), and the code the app shows now is taken, not
    refused as used already (the step accepted at 2037 is later than every step until then)."""
    real = clock.now()
    clock.set(AHEAD)
    assert (await search_as(app, "P001", AMY)).outcome is Outcome.ANSWERED
    clock.set(real)
    challenged = await say(app, "P001", AMY)
    assert challenged.outcome is Outcome.CHALLENGED and challenged.challenge is not None, challenged
    authenticator = await ensure_enrolled(app, "P001")  # the app enrolled at 2037
    code = code_now(app, authenticator)
    answered = await say(app, "P001", "code", code=code, challenge_id=challenged.challenge.challenge_id)
    assert answered.outcome is Outcome.ANSWERED, answered
