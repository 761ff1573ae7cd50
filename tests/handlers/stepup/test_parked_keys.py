"""A search parked for its code whose birth-date key retention destroys before the code comes.

A parked search naming a date of birth is sealed under that date's cohort key (or, for a date
whose children are destroyed already, under a key retention destroys within two days), so it can
outlive its key: the child turns 24 at midnight while the code is typed, or retention catches up
several missed days at once. The practitioner's code is still accepted and they are asked, kindly,
to send the search again; never an error, never a "no match" for a search that did not run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.lifecycle.flows import retention_tick
from handlers.stepup.flow import LOST, REQUEST_LOST
from handlers.vocabulary import Outcome, Reply
from store.keys import keychain
from store.keys.crypto import DecryptionError
from store.people import credentials
from store.people.credentials import _parked_aad
from store.tables.audit import AuditEvent
from store.tables.people import ParkedCommand
from tests.factories import console, load_standard, say
from tests.stepup_helpers import code_now, enrol_and_step_up, totp_from
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_24, load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)
DESTROYED_SEARCH = f"Tara {MARKER} 03/11/2002"  # 24 on 3 November 2026: destroyed by the 3rd's run
TURNS_24_AT_MIDNIGHT = f"Tara {MARKER} 04/11/2002"  # 24 on 4 November: destroyed by the 4th's run


def set_clock(app: Signpost, moment: datetime) -> None:
    clock = app.ctx.clock
    assert isinstance(clock, FakeClock)
    clock.set(moment)


async def after_the_3rds_run(app: Signpost) -> pyotp.TOTP:
    """The lifecycle children loaded, retention run through 3 November, P002 enrolled then."""
    await load(app)
    await retention_on(app, NOV_2)
    await retention_on(app, NOV_3)
    return await enrol_and_step_up(app, "P002")


async def park(app: Signpost, text: str) -> tuple[str, str]:
    """P002 (no longer fresh) sends ``text``: it waits for a code. Its challenge id and key id."""
    parked = await say(app, "P002", text)
    assert parked.outcome is Outcome.CHALLENGED and parked.challenge is not None, parked
    async with app.ctx.db.read() as session:
        found = await session.execute(select(ParkedCommand.kek_id).where(ParkedCommand.text.is_not(None)))
        (kek_id,) = found.scalars().all()
    assert kek_id is not None
    return parked.challenge.challenge_id, kek_id


async def answer(app: Signpost, totp: pyotp.TOTP, challenge_id: str) -> Reply:
    return await say(app, "P002", "code", code=code_now(app, totp), challenge_id=challenge_id)


async def events(app: Signpost, since: int) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent).where(AuditEvent.seq > since).order_by(AuditEvent.seq))
        return list(found.scalars().all())


async def last_seq(app: Signpost) -> int:
    async with app.ctx.db.read() as session:
        return max((await session.execute(select(AuditEvent.seq))).scalars().all() or [0])


async def test_a_parked_search_whose_childs_key_goes_at_midnight_is_asked_for_again(signpost: Signpost) -> None:
    """Parked at 23:58 naming a child who turns 24 at midnight; the first retention run of the new
    day destroys that birth date's key before the code comes at 00:03. The code is accepted (the
    practitioner is fresh), the search did not run and they are asked to send it again: no error,
    no "no match" for a search never made. The code's event says so; nothing personal anywhere."""
    totp = await after_the_3rds_run(signpost)
    set_clock(signpost, datetime(2026, 11, 3, 23, 58, tzinfo=UTC))
    challenge_id, kek_id = await park(signpost, TURNS_24_AT_MIDNIGHT)
    assert kek_id == keychain.key_for(signpost.ctx.keys, keychain.Chain.DAY, keychain.day_slot(date(2002, 11, 4)))
    set_clock(signpost, datetime(2026, 11, 4, 0, 2, tzinfo=UTC))
    assert (await retention_tick(signpost.ctx, signpost.ctx.clock.now())).did_work
    assert kek_id not in signpost.ctx.keys.keks
    set_clock(signpost, datetime(2026, 11, 4, 0, 3, tzinfo=UTC))
    before = await last_seq(signpost)
    with capture_logs() as logs:
        reply = await answer(signpost, totp, challenge_id)
    assert (reply.outcome, reply.text) == (Outcome.DONE, REQUEST_LOST), reply
    assert (reply.challenge, reply.child_ref, reply.signposts) == (None, None, ())
    [event] = await events(signpost, before)
    assert (event.action, event.outcome, event.detail) == ("code", "done", "code ok; request lost")
    assert (event.terms, event.result_count, event.subject_refs) == (None, 0, "")
    assert [(e["event"], e.get("detail")) for e in logs] == [("command", "code ok; request lost")]
    assert MARKER not in repr(logs) and "2002" not in repr(logs)
    again = await say(signpost, "P002", TURNS_24_AT_MIDNIGHT)  # fresh now: it runs at once
    assert again.outcome is Outcome.NO_MATCH, again


async def test_a_search_parked_while_enrolling_whose_key_goes_is_asked_for_again(signpost: Signpost) -> None:
    """The same at the code that finishes enrolment: the practitioner is set up, and told the
    search they sent meanwhile did not run and should be sent again."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    await retention_on(signpost, NOV_3)
    set_clock(signpost, datetime(2026, 11, 3, 23, 58, tzinfo=UTC))
    enrolled = await say(signpost, "P002", "enrol")
    challenge_id, _ = await park(signpost, TURNS_24_AT_MIDNIGHT)
    set_clock(signpost, datetime(2026, 11, 4, 0, 2, tzinfo=UTC))
    await retention_tick(signpost.ctx, signpost.ctx.clock.now())
    reply = await answer(signpost, totp_from(enrolled), challenge_id)
    assert reply.outcome is Outcome.DONE and reply.text.startswith("You're set up.") and reply.text.endswith(LOST)
    again = await say(signpost, "P002", TURNS_24_AT_MIDNIGHT)
    assert again.outcome is Outcome.NO_MATCH, again


async def test_a_parked_search_survives_retention_catching_up_several_days(signpost: Signpost) -> None:
    """The service was down from the 4th to the 6th; at 08:58 on the 6th a search naming a child
    destroyed on the 3rd waits for its code while the first run since catches up the 4th, 5th and
    6th at once. Its key is one that run does not reach (today's next but one, not the lagging key
    file's), so the code runs the search, which finds nobody and keeps none of its terms."""
    totp = await after_the_3rds_run(signpost)
    set_clock(signpost, datetime(2026, 11, 6, 8, 58, tzinfo=UTC))
    challenge_id, kek_id = await park(signpost, DESTROYED_SEARCH)
    set_clock(signpost, datetime(2026, 11, 6, 9, 0, tzinfo=UTC))
    report = await retention_tick(signpost.ctx, signpost.ctx.clock.now())
    assert (report.first_day, report.last_day) == (date(2026, 11, 4), date(2026, 11, 6))
    assert kek_id in signpost.ctx.keys.keks
    reply = await answer(signpost, totp, challenge_id)
    assert reply.outcome is Outcome.NO_MATCH, reply
    await retention_on(signpost, date(2026, 11, 8))
    assert kek_id not in signpost.ctx.keys.keks  # gone with the 8th's run: two days on, not two years


async def test_a_parked_search_catch_up_destroys_the_key_of_is_asked_for_again(signpost: Signpost) -> None:
    """Should the key go anyway (a catch-up run past it), the same kind answer as at midnight."""
    totp = await after_the_3rds_run(signpost)
    set_clock(signpost, datetime(2026, 11, 6, 8, 58, tzinfo=UTC))
    challenge_id, kek_id = await park(signpost, DESTROYED_SEARCH)
    set_clock(signpost, datetime(2026, 11, 6, 9, 0, tzinfo=UTC))
    keychain.puncture(signpost.ctx.keys, keychain.Chain.DAY, keychain.day_slot(date(2002, 11, 10)), NOV_3)
    assert kek_id not in signpost.ctx.keys.keks
    before = await last_seq(signpost)
    reply = await answer(signpost, totp, challenge_id)
    assert (reply.outcome, reply.text) == (Outcome.DONE, REQUEST_LOST), reply
    assert [e.detail for e in await events(signpost, before)] == ["code ok; request lost"]


async def test_a_parked_search_that_expires_before_its_key_is_gone_is_forgotten(signpost: Signpost) -> None:
    """A parked search lives ten minutes (the challenge's time to live), its key a day or more:
    after ten minutes the code is accepted and the request is said to have expired, as ever."""
    totp = await after_the_3rds_run(signpost)
    set_clock(signpost, datetime(2026, 11, 3, 12, 0, tzinfo=UTC))
    challenge_id, kek_id = await park(signpost, DESTROYED_SEARCH)
    set_clock(signpost, datetime(2026, 11, 3, 12, 0, tzinfo=UTC) + timedelta(minutes=10, seconds=30))
    reply = await answer(signpost, totp, challenge_id)
    assert reply.outcome is Outcome.DONE and "expired" in reply.text, reply
    assert kek_id in signpost.ctx.keys.keks


# A request and a message naming, by reference, the child who turns 24 on 3 November (synthetic).
NAMING_THE_CHILD = (
    f"request {TURNS_24} section 47 enquiry about Tara {MARKER}",
    f"message {TURNS_24} section 47 enquiry about Tara {MARKER}, call me on 01632 960 123",
)


@pytest.mark.parametrize("text", NAMING_THE_CHILD, ids=("request", "message"))
async def test_a_parked_command_naming_a_child_dies_with_the_child(signpost: Signpost, text: str) -> None:
    """Parked at 23:58 on 2 November, a request (or message) naming by reference the child who turns
    24 at midnight is sealed under that child's key, not the month's: once retention destroys the
    child, the row a backup taken meanwhile keeps cannot be opened with any key left, and the code
    that comes after is accepted and asks for the command again."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    totp = await enrol_and_step_up(signpost, "P002")
    set_clock(signpost, datetime(2026, 11, 2, 23, 58, tzinfo=UTC))
    challenge_id, kek_id = await park(signpost, text)
    assert kek_id != keychain.month_key(signpost.ctx.keys, "2026-11")
    async with signpost.ctx.db.read() as session:  # the row as a backup taken now keeps it
        (sealed,) = (await session.execute(select(ParkedCommand.text).where(ParkedCommand.text.is_not(None)))).one()
    assert sealed is not None
    aad = _parked_aad(challenge_id, console("P002"))
    assert signpost.ctx.keys.unwrap(kek_id, sealed, aad).decode() == text  # readable while the child is held
    set_clock(signpost, datetime(2026, 11, 3, 0, 2, tzinfo=UTC))
    assert (await retention_tick(signpost.ctx, signpost.ctx.clock.now())).did_work
    keys = signpost.ctx.keys
    assert kek_id not in keys.keks
    for kid in keys.keks:  # every key that remains, the master and the month keys too
        with pytest.raises(DecryptionError):
            keys.unwrap(kid, sealed, aad)
    set_clock(signpost, datetime(2026, 11, 3, 0, 3, tzinfo=UTC))
    before = await last_seq(signpost)
    reply = await answer(signpost, totp, challenge_id)
    assert (reply.outcome, reply.text) == (Outcome.DONE, REQUEST_LOST), reply
    assert [e.detail for e in await events(signpost, before)] == ["code ok; request lost"]


@pytest.mark.parametrize(
    ("text", "child_kek"),
    [
        # A store from before birth-day keys: the child's data key is under the master key until
        # seal-in moves it, and nothing ever destroys the master key.
        ("request 999 000 0050 section 47 enquiry", "master"),
        # A decision or a relayed reply names a request or a relay, not a child, yet its reason may
        # name the child (only the code-checked screen catches that).
        ("deny 1 we spoke to the school already", None),
    ],
    ids=["child-under-the-master-key", "names-no-child"],
)
async def test_a_command_naming_no_cohort_key_is_parked_under_a_key_destroyed_within_two_days(
    signpost: Signpost, text: str, child_kek: str | None
) -> None:
    """Parked under the key retention destroys next but one, not the month's (destroyed 24 months
    on) nor the master key: a command waits ten minutes at most, so a backup taken meanwhile keeps
    nothing readable past two days."""
    await load_standard(signpost)
    keys, now = signpost.ctx.keys, signpost.ctx.clock.now()
    async with signpost.ctx.db.write() as session:
        await credentials.park(
            session,
            keys,
            principal=console("P002"),
            practitioner_id="P002",
            spec_name=text.split()[0],
            channel="console",
            text=text,
            now=now,
            ttl=timedelta(minutes=10),
            child_kek=keys.current_kek_id if child_kek == "master" else None,
        )
    async with signpost.ctx.db.read() as session:
        (kek_id,) = (await session.execute(select(ParkedCommand.kek_id))).scalars().all()
    slot = credentials._soon_destroyed(keys, now.date())
    assert slot is not None
    assert kek_id == keychain.key_for(keys, keychain.Chain.DAY, slot)
    assert kek_id not in (keys.current_kek_id, keychain.month_key(keys, f"{now:%Y-%m}"))
