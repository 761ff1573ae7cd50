"""Misuse rules: each fires on its pattern (alerting the duty managers, once); silent on a normal day.

Lookups need a fresh step-up code, so WHO enrols an authenticator and answers each challenge with a
real code (say_fresh), as a real practitioner would; a lookup asked for a code and then run counts
once (only outcomes that reached the register count)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta

import pyotp
import pytest
from sqlalchemy import select

from bot.app import Signpost, build
from handlers.clock import FakeClock
from handlers.misuse.monitor import sweep
from handlers.vocabulary import Action, Outcome, Platform, Principal
from store.audit import misuse
from store.audit.log import AuditRecord, append
from store.audit.verify import verify
from store.db import Database
from store.keys.crypto import KeyRing
from store.people import practitioners
from store.tables.audit import AuditEvent
from tests.factories import say
from tests.handlers.misuse.misuse_world import DAY, UK, World, alerts, at_uk, history_days, write_days
from tests.statements import statements_sent
from tests.stepup_helpers import ensure_enrolled, say_fresh, wrong_code

WHO = "NS-P0001"
MANAGERS = {"NS-DM01", "NS-DM02"}


@pytest.fixture
def db_url(world_db_url: str) -> str:
    """Each test starts in its own copy of the world's store (tests/handlers/misuse/conftest.py)."""
    return world_db_url


@pytest.fixture
def keys(world_keys: KeyRing) -> KeyRing:
    return world_keys


async def alert_events(app: Signpost) -> list[str]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(AuditEvent.detail).where(AuditEvent.action == "alert"))).scalars())


async def assert_alerted(app: Signpost, world: World, rule: str, words: str) -> None:
    """One alert for this rule about WHO, to each of their duty managers, naming no child; audited once."""
    found = [(r, text) for r, text in await alerts(app) if f"({rule.replace('_', ' ')})" in text]
    assert {r for r, _ in found} == MANAGERS and len(found) == len(MANAGERS), await alerts(app)
    text = found[0][1]
    assert WHO in text and words in text
    leaked = [w for w in world.identity_words() if w in text]
    assert not leaked, f"the alert names a child: {leaked}"
    assert (await alert_events(app)).count(f"{rule}: {WHO}") == 1
    assert (await verify(app.ctx.db, app.ctx.signer.public)).ok


# -- each rule fires on its pattern ---------------------------------------------------------------------


async def test_enumeration_fires_on_many_children_in_an_hour(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    clock.set(at_uk(10))
    for kid in world.in_area("Northshire")[:32]:
        await say_fresh(signpost, WHO, str(kid.ref))
        clock.advance(seconds=80)
    await assert_alerted(signpost, world, "enumeration", "different children looked up")


async def test_enumeration_allows_a_practitioner_whose_usual_pace_is_high(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Above the ceiling but within their own baseline (e.g. a busy front door team): silent."""
    kids = world.in_area("Northshire")
    for day in history_days(DAY, 5):
        clock.set(datetime.combine(day, time(10), UK))
        for kid in kids[:22]:  # each day below the ceiling, so no alert while the baseline forms
            await say_fresh(signpost, WHO, str(kid.ref))
            clock.advance(seconds=100)
    await signpost.ctx.audit.settle()
    clock.set(at_uk(10))
    for kid in kids[30:62]:
        await say_fresh(signpost, WHO, str(kid.ref))
        clock.advance(seconds=80)
    assert await alerts(signpost) == []


async def test_probing_fires_on_many_searches_that_match_nothing(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    clock.set(at_uk(10))
    for n, name in enumerate(
        (
            "Zoe Quill",
            "Ann Vickers",
            "Bo Ember",
            "Cy Marlow",
            "Di Stroud",
            "Ed Pym",
            "Flo Grange",
            "Gus Holt",
            "Hal Nye",
            "Ivo Stark",
        )
    ):
        await say_fresh(signpost, WHO, f"{name} {1 + n}/0{1 + n % 9}/2015")
        clock.advance(minutes=2)
    await assert_alerted(signpost, world, "probing", "found no single match")


async def test_probing_fires_on_references_walked_one_by_one(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Someone walking references (999 000 1000, 1001, …) mostly types ones that fail their check
    digit, and now and then finds a child: guessing, alerted at the eighth failed guess, once."""
    clock.set(at_uk(10))
    outcomes = []
    for n in range(20):
        outcomes.append((await say_fresh(signpost, WHO, f"999 000 {1000 + n}")).outcome)
        await signpost.ctx.audit.settle()
        failed = outcomes.count(Outcome.INVALID)
        assert (await alert_events(signpost)).count(f"probing: {WHO}") == (failed >= 8), (n, outcomes)
        clock.advance(minutes=1)
    assert outcomes.count(Outcome.ANSWERED) >= 1  # the walk did find children
    await sweep(signpost.ctx, clock.now())
    await assert_alerted(signpost, world, "probing", "found no single match")


async def test_sweep_through_names_alphabetically_fires(signpost: Signpost, clock: FakeClock, world: World) -> None:
    clock.set(at_uk(10))
    walk = sorted(world.in_area("Northshire"), key=lambda k: (k.family, k.given))[:40:5]
    for kid in walk:
        await say_fresh(signpost, WHO, f"{kid.given} {kid.family} {kid.dob:%d/%m/%Y}")
        clock.advance(minutes=3)
    await assert_alerted(signpost, world, "sweeps", "walking alphabetically")


async def test_a_sweep_with_searches_of_destroyed_dates_between_its_steps_still_fires(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Searches naming a destroyed cohort keep no terms; slipped between a sweep's steps they do not hide it."""
    clock.set(at_uk(10))
    walk = sorted(world.in_area("Northshire"), key=lambda k: (k.family, k.given))[:40:5]
    for kid in walk:
        await say_fresh(signpost, WHO, f"{kid.given} {kid.family} {kid.dob:%d/%m/%Y}")
        clock.advance(minutes=1)
        await say_fresh(signpost, WHO, "Ann Old 01/01/1990")
        clock.advance(minutes=1)
    await assert_alerted(signpost, world, "sweeps", "walking alphabetically")


async def test_sweep_through_dates_of_birth_fires(signpost: Signpost, clock: FakeClock, world: World) -> None:
    clock.set(at_uk(10))
    for day in range(1, 9):
        await say_fresh(signpost, WHO, f"Lily Brown {day:02d}/03/2016")
        clock.advance(minutes=2)
    await assert_alerted(signpost, world, "sweeps", "through dates of birth")


async def test_out_of_area_lookups_fire(signpost: Signpost, clock: FakeClock, world: World) -> None:
    clock.set(at_uk(10))
    for kid in world.in_area("Southvale")[:5]:
        await say_fresh(signpost, WHO, str(kid.ref))
        clock.advance(minutes=20)
    await assert_alerted(signpost, world, "out_of_area", "outside Northshire")


def not_theirs(world: World, who: str = WHO) -> list[int]:
    """Children in their authority, not shielded, that this practitioner is not involved with."""
    person = next(p for p in world.people if p.pid == who)
    return [k.ref for k in world.in_area(person.la) if k.ref not in person.own]


async def test_after_hours_lookups_fire_for_a_day_worker(signpost: Signpost, clock: FakeClock, world: World) -> None:
    """Weeks of daytime work, then three late lookups of children who are not theirs: alerted."""
    person = next(p for p in world.people if p.pid == WHO)
    assert person.starts.hour == 8
    await write_days(signpost, world, history_days(DAY, 14), [person])
    clock.set(at_uk(23, 10))
    for ref in not_theirs(world)[:3]:
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(minutes=15)
    await assert_alerted(signpost, world, "after_hours", "3 lookups between 23:10 and 23:40 (UK time)")


@pytest.mark.parametrize(("who", "hour", "minute"), [(WHO, 20, 30), ("NS-P0006", 23, 0)])
async def test_a_new_practitioners_first_evening_raises_no_after_hours_alert(
    signpost: Signpost, clock: FakeClock, world: World, who: str, hour: int, minute: int
) -> None:
    """A practitioner with no history (a day worker's first evening, an emergency-duty worker's
    first night) enrols, steps up and makes five lookups, one of a child of theirs: no usual hours
    to be outside yet, so nobody is told (the other rules still guard a new account)."""
    person = next(p for p in world.people if p.pid == who)
    clock.set(at_uk(hour, minute) - timedelta(minutes=5))
    await ensure_enrolled(signpost, who)  # enrolment and the first code, in the evening too
    clock.set(at_uk(hour, minute))
    for ref in [*not_theirs(world, who)[:4], next(r for r in person.own if not world.kids[r].shielded)]:
        assert (await say_fresh(signpost, who, str(ref))).outcome is Outcome.ANSWERED
        clock.advance(minutes=1)
    assert await sweep(signpost.ctx, clock.now()) == []
    assert await alerts(signpost) == []
    assert await alert_events(signpost) == []


async def test_after_hours_lookups_of_their_own_children_raise_no_alert(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """A day worker looking up, late at night, children they are involved with is doing their job."""
    person = next(p for p in world.people if p.pid == WHO)
    await write_days(signpost, world, history_days(DAY, 14), [person])
    clock.set(at_uk(23, 10))
    for ref in [r for r in person.own if not world.kids[r].shielded][:6]:
        assert (await say_fresh(signpost, WHO, str(ref))).outcome is Outcome.ANSWERED
        clock.advance(minutes=5)
    assert await sweep(signpost.ctx, clock.now()) == []
    assert await alerts(signpost) == []
    assert await alert_events(signpost) == []


# Mondays to Fridays before DAY (write_days writes weekdays only): four, then five working days.
FOUR_DAYS = history_days(DAY, 6)  # Tuesday to Sunday
FIVE_DAYS = history_days(DAY, 7)  # Monday to Sunday


@pytest.mark.parametrize(("days", "alerted"), [(FOUR_DAYS, False), (FIVE_DAYS, True)])
async def test_usual_hours_are_judged_only_after_a_working_week(
    signpost: Signpost, clock: FakeClock, world: World, days: list[date], alerted: bool
) -> None:
    """Usual hours need lookups on ``usual_hours_min_days`` (5) days of the baseline: four days of
    daytime work say too little for three late lookups to be unusual; five do."""
    assert [sum(d.weekday() < 5 for d in ds) for ds in (FOUR_DAYS, FIVE_DAYS)] == [4, 5]
    person = next(p for p in world.people if p.pid == WHO)
    await write_days(signpost, world, days, [person])
    clock.set(at_uk(23, 10))
    for ref in not_theirs(world)[:3]:
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(minutes=15)
    await sweep(signpost.ctx, clock.now())
    assert (await alert_events(signpost)).count(f"after_hours: {WHO}") == alerted


async def test_after_hours_lookups_in_one_minute_say_so_not_between_a_time_and_itself(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Lookups whose first and last fall in the same minute read "within a minute at 03:38", never
    "between 03:38 and 03:38"."""
    person = next(p for p in world.people if p.pid == WHO)
    await write_days(signpost, world, history_days(DAY, 14), [person])
    clock.set(at_uk(3, 20))
    await ensure_enrolled(signpost, WHO)  # stepped up before: no code moves the clock past the minute
    clock.set(at_uk(3, 38))
    for ref in not_theirs(world)[:4]:
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(seconds=5)
    await sweep(signpost.ctx, at_uk(3, 39))  # the live check ran at the first lookup, then waits 30 s
    await assert_alerted(signpost, world, "after_hours", "4 lookups within a minute at 03:38 (UK time)")


async def test_shielded_probing_fires_without_access_requests(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    clock.set(at_uk(10))
    shielded = shielded_kids(world, own=False)  # none of them theirs
    assert len(shielded) >= 3
    for ref in shielded[:3]:
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(minutes=30)
    await assert_alerted(signpost, world, "shielded_probing", "without an access request")


async def audit_code_event(
    signpost: Signpost, world: World, hour: int, outcome: Outcome, detail: str, action: Action = Action.CODE
) -> None:
    """One ``code`` event (or ``action``'s) of WHO's at ``hour`` (UK), as the step-up transaction writes it."""
    actor = world.people[0]
    async with signpost.ctx.db.write() as session:
        await append(
            session,
            [
                AuditRecord(
                    at=at_uk(hour),
                    actor_id=WHO,
                    platform="slack",
                    tenant="T1",
                    user_id="U1",
                    actor_role=actor.role,
                    actor_org=actor.org,
                    actor_la=actor.la,
                    channel="modal",
                    action=action,
                    outcome=outcome,
                    subject_refs=(),
                    result_count=0,
                    correlation_id=uuid.uuid4().hex,
                    detail=detail,
                )
            ],
        )


async def test_repeated_step_up_lockouts_fire_in_the_sweep(signpost: Signpost, world: World) -> None:
    """Lockouts are audited inside the step-up transaction (not the live path): the sweep finds them."""
    for hour in (9, 13):
        await audit_code_event(signpost, world, hour, Outcome.LOCKED, "code wrong; locked")
    raised = await sweep(signpost.ctx, at_uk(13, 1))
    assert [(f.rule, f.actor_id) for f in raised] == [("lockouts", WHO)]
    assert await sweep(signpost.ctx, at_uk(13, 2)) == []  # once per window
    await assert_alerted(signpost, world, "lockouts", "step-up code lockouts")


async def test_a_burst_of_authenticator_resets_done_or_refused_fires(signpost: Signpost, world: World) -> None:
    """Three ``reset``s in chat in a day, done or refused, by one person: resets on anyone's word, or
    ids being tried. Two are no alert; the third is one. ``reset`` writes, so its event is audited in its
    own transaction, not through the live path: the sweep finds them, as it finds lockouts."""
    await audit_code_event(signpost, world, 9, Outcome.DONE, "credential removed for NS-P0002", Action.TOTP_RESET)
    await audit_code_event(signpost, world, 10, Outcome.REFUSED, "ADMIN-01 holds the admin role", Action.TOTP_RESET)
    assert await sweep(signpost.ctx, at_uk(10, 1)) == []
    await audit_code_event(signpost, world, 11, Outcome.REFUSED, "not their duty manager: SV-P0001", Action.TOTP_RESET)
    raised = await sweep(signpost.ctx, at_uk(11, 1))
    assert [(f.rule, f.actor_id) for f in raised] == [("resets", WHO)]
    await assert_alerted(signpost, world, "resets", "3 authenticator resets")


async def _locked_out_at_nine_and_ten(
    signpost: Signpost, clock: FakeClock, slack: Principal, authenticator: pyotp.TOTP, ref: int
) -> None:
    """Two step-up lockouts in Slack, at 09:00 and 10:00: five wrong codes each, through the dispatcher."""
    for hour in (9, 10):
        clock.set(at_uk(hour))
        challenged = await say(signpost, slack, str(ref))
        assert challenged.challenge is not None, challenged
        for _ in range(5):
            code = wrong_code(signpost, authenticator)
            reply = await say(signpost, slack, "code", code=code, challenge_id=challenged.challenge.challenge_id)
        assert reply.outcome is Outcome.LOCKED, reply


async def test_two_lockouts_alert_once_while_the_practitioner_carries_on_working(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Two lockouts in Slack (five wrong codes each, through the dispatcher) alert the duty managers
    once. The practitioner then steps up properly and works on for hours, the sweep running each
    time: the same two lockouts are the same episode, not a fresh alert every ten minutes."""
    slack = Principal(Platform.SLACK, "T1", WHO)
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, WHO, signpost.ctx.clock.now())
    clock.set(at_uk(8))
    authenticator = await ensure_enrolled(signpost, WHO)
    kid = world.in_area("Northshire")[0]
    await _locked_out_at_nine_and_ten(signpost, clock, slack, authenticator, kid.ref)
    await sweep(signpost.ctx, at_uk(10, 1))
    await assert_alerted(signpost, world, "lockouts", "2 step-up code lockouts")
    for minutes in range(16, 240, 11):
        clock.set(at_uk(10) + timedelta(minutes=minutes))
        assert (await say_fresh(signpost, slack, str(kid.ref))).outcome is Outcome.ANSWERED
        await sweep(signpost.ctx, clock.now())
    await assert_alerted(signpost, world, "lockouts", "2 step-up code lockouts")


async def test_a_lockout_alert_does_not_hide_a_shared_login_the_same_day(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Two lockouts in Slack alert the duty managers; two hours later the same identity is used from
    Slack and Teams within minutes (a shared login): a second alert, about that, the same day."""
    slack, teams = Principal(Platform.SLACK, "T1", WHO), Principal(Platform.TEAMS, "tenant-1", "U-teams")
    async with signpost.ctx.db.write() as session:
        for principal in (slack, teams):
            await practitioners.link_identity(session, principal, WHO, signpost.ctx.clock.now())
    clock.set(at_uk(8))
    authenticator = await ensure_enrolled(signpost, WHO)
    kid = world.in_area("Northshire")[0]
    await _locked_out_at_nine_and_ten(signpost, clock, slack, authenticator, kid.ref)
    await sweep(signpost.ctx, at_uk(10, 1))
    clock.set(at_uk(12))
    await say(signpost, slack, "help")
    clock.advance(minutes=2)
    await say(signpost, teams, "help")
    await signpost.ctx.audit.settle()
    await sweep(signpost.ctx, clock.now())
    texts = [text for r, text in await alerts(signpost) if r == "NS-DM01"]
    assert len(texts) == 2, texts
    await assert_alerted(signpost, world, "lockouts", "2 step-up code lockouts")
    await assert_alerted(signpost, world, "shared_login", "slack and teams")


async def test_an_alert_stored_under_the_old_credential_rule_holds_lockouts_but_not_a_shared_login(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """A store upgraded mid-episode: its last alert about WHO is a 'credential' one (lockouts and
    shared logins were one rule). The same lockouts are not alerted again; a shared login is."""
    for hour in (9, 13):
        await audit_code_event(signpost, world, hour, Outcome.LOCKED, "code wrong; locked")
    async with signpost.ctx.db.write() as session:
        assert await misuse.claim(session, "misuse:" + "0" * 40, "credential", WHO, at_uk(13, 1))
    assert await sweep(signpost.ctx, at_uk(13, 2)) == []
    slack, teams = Principal(Platform.SLACK, "T1", "U-slack"), Principal(Platform.TEAMS, "tenant-1", "U-teams")
    async with signpost.ctx.db.write() as session:
        for principal in (slack, teams):
            await practitioners.link_identity(session, principal, WHO, at_uk(8))
    clock.set(at_uk(14))
    await say(signpost, slack, "help")
    clock.advance(minutes=2)
    await say(signpost, teams, "help")
    await signpost.ctx.audit.settle()
    assert await sweep(signpost.ctx, clock.now()) == []
    assert (await alert_events(signpost)) == [f"shared_login: {WHO}"]
    await assert_alerted(signpost, world, "shared_login", "slack and teams")


async def test_a_login_shared_all_day_alerts_once_a_day(signpost: Signpost, clock: FakeClock, world: World) -> None:
    """An account used from Slack and Teams all working day is one alert, not one every ten
    minutes; the next morning's use of both is a new episode, and a new alert."""
    slack, teams = Principal(Platform.SLACK, "T1", "U-slack"), Principal(Platform.TEAMS, "tenant-1", "U-teams")
    async with signpost.ctx.db.write() as session:
        for principal in (slack, teams):
            await practitioners.link_identity(session, principal, WHO, at_uk(7))
    for day in (0, 1):
        for minutes in range(0, 11 * 60, 15):
            clock.set(at_uk(8) + timedelta(days=day, minutes=minutes))
            await say(signpost, slack, "help")
            clock.advance(minutes=2)
            await say(signpost, teams, "help")
            await sweep(signpost.ctx, clock.now())
        await signpost.ctx.audit.settle()
        assert (await alert_events(signpost)) == [f"shared_login: {WHO}"] * (day + 1)
    assert len(await alerts(signpost)) == 2 * len(MANAGERS)


async def test_lockouts_are_found_by_their_outcome_not_by_free_text(signpost: Signpost, world: World) -> None:
    """Two refused codes whose detail happens to end in '; locked' are not lockouts; the outcome decides."""
    for hour in (9, 13):
        await audit_code_event(signpost, world, hour, Outcome.REFUSED, "code wrong; locked")
    assert await sweep(signpost.ctx, at_uk(13, 1)) == []
    assert await alerts(signpost) == []


async def test_one_identity_on_two_platforms_at_once_fires(signpost: Signpost, clock: FakeClock, world: World) -> None:
    slack, teams = (
        Principal(Platform.SLACK, "T1", "U-slack"),
        Principal(Platform.TEAMS, "tenant-1", "U-teams"),
    )
    async with signpost.ctx.db.write() as session:
        for principal in (slack, teams):
            await practitioners.link_identity(session, principal, WHO, signpost.ctx.clock.now())
    clock.set(at_uk(10))
    await say(signpost, slack, "help")
    clock.advance(minutes=2)
    await say(signpost, teams, "help")
    await assert_alerted(signpost, world, "shared_login", "slack and teams")


async def test_a_leavers_chat_account_still_in_use_alerts_once(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """A practitioner recorded as gone whose Slack account still sends lookups: each is refused, and
    their authority's duty managers hear of it at the first, once (not once per command), with no
    child's reference in the alert."""
    slack = Principal(Platform.SLACK, "T1", "U-leaver")
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, WHO, clock.now())
        await practitioners.set_status(session, WHO, "inactive")
    clock.set(at_uk(10))
    for kid in world.in_area("Northshire")[:6]:
        assert (await say(signpost, slack, str(kid.ref))).outcome is Outcome.REFUSED
        await signpost.ctx.audit.settle()
        assert (await alert_events(signpost)).count(f"leaver: {WHO}") == 1
        clock.advance(minutes=20)
    await sweep(signpost.ctx, clock.now())
    await assert_alerted(signpost, world, "leaver", "recorded as having left")


async def test_a_leaver_acted_as_at_the_console_raises_no_leaver_alert(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """The console at the host acting as someone who has left (`:as`, a newcomer trying it) is the
    operator's doing, not a chat account someone still holds: refused as ever, but the duty managers
    were told "a chat account of theirs may need unlinking"."""
    async with signpost.ctx.db.write() as session:
        await practitioners.set_status(session, WHO, "inactive")
    clock.set(at_uk(10))
    for kid in world.in_area("Northshire")[:6]:
        assert (await say(signpost, WHO, str(kid.ref))).outcome is Outcome.REFUSED
        await signpost.ctx.audit.settle()
        clock.advance(minutes=20)
    await sweep(signpost.ctx, clock.now())
    assert (await alert_events(signpost)).count(f"leaver: {WHO}") == 0


async def test_a_continuing_pattern_alerts_once_per_window(signpost: Signpost, clock: FakeClock, world: World) -> None:
    clock.set(at_uk(10))
    for kid in world.in_area("Southvale")[:9]:
        await say_fresh(signpost, WHO, str(kid.ref))
        clock.advance(minutes=5)
    assert len([a for a in await alerts(signpost) if "(out of area)" in a[1]]) == len(MANAGERS)
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    assert (await alert_events(signpost)).count(f"out_of_area: {WHO}") == 1


async def test_a_challenged_lookup_and_its_resumed_run_count_once(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Two late lookups, each asked for a code first (idle over 30 minutes), are two lookups, not
    four: below the after-hours threshold of three, so no alert, live or from the sweep."""
    person = next(p for p in world.people if p.pid == WHO)
    await write_days(signpost, world, history_days(DAY, 14), [person])
    clock.set(at_uk(22, 30))
    await ensure_enrolled(signpost, WHO)
    for ref in not_theirs(world)[:2]:  # not theirs: lookups of their own children never count
        clock.advance(minutes=31)
        reply = await say_fresh(signpost, WHO, str(ref))
        assert reply.signposts, reply
    async with signpost.ctx.db.read() as session:
        outcomes = list(
            (
                await session.execute(
                    select(AuditEvent.outcome)
                    .where(AuditEvent.actor_id == WHO, AuditEvent.action == "lookup", AuditEvent.at >= at_uk(22))
                    .order_by(AuditEvent.seq)
                )
            ).scalars()
        )
    assert outcomes == ["challenged", "answered"] * 2  # the pattern this test is about did happen
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    assert await alerts(signpost) == []


async def test_an_ordinary_lookup_costs_the_monitor_one_grouped_read(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Every lookup reaches the live monitor; for a practitioner far below every rule's threshold
    it reads the one grouped count and no rule's own query (issue 15: the enumeration and
    out-of-area rules counted distinct children after every such lookup)."""
    slack = Principal(Platform.SLACK, "T1", WHO)  # chat, where the live monitor listens (not the terminal)
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, WHO, signpost.ctx.clock.now())
    clock.set(at_uk(9))
    await ensure_enrolled(signpost, WHO)  # at the terminal, long before: not "two platforms at once"
    clock.set(at_uk(10))
    kids = world.in_area("Southvale")[:3]  # out of their area, but too few to matter
    await say_fresh(signpost, slack, str(kids[0].ref))
    await signpost.ctx.audit.settle()
    reads: list[str] = []
    for kid in kids[1:]:
        clock.advance(seconds=45)  # past the monitor's recheck: each lookup is checked again
        with statements_sent(signpost.ctx.db) as sent:
            assert (await say_fresh(signpost, slack, str(kid.ref))).outcome is Outcome.ANSWERED
            await signpost.ctx.audit.settle()
        reads += [" ".join(s.sql.split())[:120] for s in sent if s.verb == "SELECT" and "audit_" in s.sql]
    assert any("sum(CASE" in s for s in reads), reads  # the monitor did look
    distinct = [s for s in reads if "count(distinct(audit_subjects" in s]
    assert distinct == [], reads
    assert await alerts(signpost) == []


# -- shielded probing: a stated purpose, or their own work, is not probing ----------------------------


def shielded_kids(world: World, *, own: bool) -> list[int]:
    """Shielded children WHO works with (``own``), or does not."""
    person = next(p for p in world.people if p.pid == WHO)
    return [k.ref for k in world.kids.values() if k.shielded and (k.ref in person.own) == own]


async def test_shielded_children_they_work_with_are_not_shielded_probing(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """A practitioner reaching the shielded children they are involved with (a lead professional
    looking up their own) is doing their job: only the others count towards the three."""
    own, others = shielded_kids(world, own=True), shielded_kids(world, own=False)
    assert len(own) == 2 and len(others) >= 3
    clock.set(at_uk(10))
    for ref in [*own, others[0]]:
        assert (await say_fresh(signpost, WHO, str(ref))).outcome is Outcome.SHIELDED
        clock.advance(minutes=30)
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    assert await alerts(signpost) == []
    for ref in others[1:3]:  # three shielded children who are not theirs: the rule still fires
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(minutes=30)
    await assert_alerted(signpost, world, "shielded_probing", "3 shielded records")


async def test_texts_refused_again_and_again_for_naming_children_fire_identity_guessing(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Each refusal of a purpose that names the child answers a guess about it: three in a day are
    a slip or two; a fourth, about another child, alerts the duty managers (counts only). A refusal
    is written in its command's own transaction (it holds the practitioner's row while it counts), so
    the periodic sweep finds them, as it finds step-up lockouts."""
    first, second = (world.kids[ref] for ref in shielded_kids(world, own=False)[:2])
    clock.set(at_uk(10))
    guesses = [
        (first, f"{first.given} {first.family} needs a visit"),
        (first, f"born {first.dob:%d/%m}, section 47 enquiry"),
        (second, f"the {second.family} family, school admission"),
    ]
    for kid, purpose in guesses:
        reply = await say_fresh(signpost, WHO, f"request {kid.ref} {purpose}")
        assert reply.outcome is Outcome.INVALID and "leave out" in reply.text
        clock.advance(minutes=5)
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    assert await alerts(signpost) == []
    reply = await say_fresh(signpost, WHO, f"request {second.ref} {second.given} {second.family} is at risk")
    assert reply.outcome is Outcome.INVALID
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    await assert_alerted(signpost, world, "identity_guessing", "4 texts about 2 children refused")


async def test_a_relay_message_states_a_purpose_as_an_access_request_does(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """The shielded answer offers Send a message beside Request access: a practitioner who sends the
    child's lead a message about each of three shielded children has said why, and is not alerted."""
    clock.set(at_uk(10))
    for ref in shielded_kids(world, own=False)[:3]:
        assert (await say_fresh(signpost, WHO, str(ref))).outcome is Outcome.SHIELDED
        clock.advance(minutes=5)
        sent = await say_fresh(signpost, WHO, f"message {ref} section 47 enquiry; please call me on 0161 496 0002")
        assert sent.outcome is Outcome.DONE, sent
        clock.advance(minutes=25)
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    assert await alerts(signpost) == []


async def test_access_requests_refused_state_no_purpose_so_shielded_probing_still_fires(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """A request refused (its purpose named the child, or was too short) made no request: no duty
    manager saw a purpose. Three shielded records reached, each "explained" only by a refused
    request, are shielded probing, and alert (the refusals alone are too few for identity guessing)."""
    clock.set(at_uk(10))
    others = [world.kids[ref] for ref in shielded_kids(world, own=False)[:3]]
    purposes = (f"{others[0].given} {others[0].family} needs a visit", "ok", "")  # named; too short; none
    for kid, purpose in zip(others, purposes, strict=True):
        assert (await say_fresh(signpost, WHO, str(kid.ref))).outcome is Outcome.SHIELDED
        clock.advance(minutes=5)
        refused = await say_fresh(signpost, WHO, f"request {kid.ref} {purpose}")
        assert refused.outcome is Outcome.INVALID, refused
        clock.advance(minutes=25)
    await sweep(signpost.ctx, signpost.ctx.clock.now())
    await assert_alerted(signpost, world, "shielded_probing", "3 shielded records")


# -- one episode, one alert ------------------------------------------------------------------------------


async def test_an_episode_across_a_window_boundary_alerts_once_and_a_new_one_alerts_again(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """Three shielded lookups late at night alert once per rule; a command and a sweep just past
    midnight UTC (where a fixed window's bucket ends) find no new lookup and raise nothing. Once the
    after-hours window has passed since its alert, three more late lookups are a new episode."""
    person = next(p for p in world.people if p.pid == WHO)
    await write_days(signpost, world, history_days(DAY, 14), [person])
    clock.set(at_uk(23, 40))  # UK time is UTC in November
    for ref in shielded_kids(world, own=False)[:3]:
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(minutes=3)
    await signpost.ctx.audit.settle()
    episode = sorted(await alert_events(signpost))
    assert episode == [f"after_hours: {WHO}", f"shielded_probing: {WHO}"]
    clock.set(at_uk(23, 46) + timedelta(minutes=15))  # 00:01 the next day
    await say_fresh(signpost, WHO, "help")
    assert await sweep(signpost.ctx, clock.now()) == []
    assert sorted(await alert_events(signpost)) == episode
    assert len(await alerts(signpost)) == 2 * len(MANAGERS)
    clock.set(at_uk(23, 46) + timedelta(hours=2, minutes=10))  # the after-hours alert is 2h10 old
    for ref in not_theirs(world)[:3]:
        await say_fresh(signpost, WHO, str(ref))
        clock.advance(minutes=3)
    await signpost.ctx.audit.settle()
    assert sorted(await alert_events(signpost)) == sorted([*episode, f"after_hours: {WHO}"])


@pytest.fixture
async def second(db_url: str, keys: KeyRing, clock: FakeClock) -> AsyncIterator[Signpost]:
    """Another replica: its own engine and monitor on the same database."""
    other = build(Database.connect(db_url), keys, clock)
    yield other
    await other.close()


async def test_two_replicas_sweeping_at_once_raise_an_alert_once(
    signpost: Signpost, second: Signpost, world: World
) -> None:
    """Both replicas find the same lockouts at the same moment (or a second apart): one alert."""
    for hour in (9, 13):
        await audit_code_event(signpost, world, hour, Outcome.LOCKED, "code wrong; locked")
    raised = await asyncio.gather(
        sweep(signpost.ctx, at_uk(13, 1)), sweep(second.ctx, at_uk(13, 1) + timedelta(seconds=1))
    )
    assert [(f.rule, f.actor_id) for found in raised for f in found] == [("lockouts", WHO)]
    await assert_alerted(signpost, world, "lockouts", "step-up code lockouts")


async def test_a_chat_account_just_approved_is_no_second_session(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """A practitioner working in Slack registers their Teams account and a duty manager approves it:
    using both in the next minutes is onboarding, not a shared login. Once the account has been
    linked for the platform window, using both within it alerts as before."""
    slack, teams = Principal(Platform.SLACK, "T1", "U-slack"), Principal(Platform.TEAMS, "tenant-1", "U-teams")
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, WHO, signpost.ctx.clock.now())
    clock.set(at_uk(10))
    await say(signpost, slack, "help")
    assert (await say(signpost, teams, f"register {WHO}")).outcome is Outcome.DONE
    clock.advance(minutes=1)
    assert (await say_fresh(signpost, "NS-DM01", "approve R1")).outcome is Outcome.DONE
    for principal in (teams, slack, teams):
        clock.advance(minutes=2)
        assert (await say(signpost, principal, "help")).outcome is Outcome.INFO
    assert await sweep(signpost.ctx, clock.now()) == []
    assert await alerts(signpost) == []
    clock.advance(minutes=10)
    await say(signpost, slack, "help")
    clock.advance(minutes=2)
    await say(signpost, teams, "help")
    await assert_alerted(signpost, world, "shared_login", "slack and teams")


async def test_a_leavers_single_command_is_counted_in_the_singular(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """The alert at a leaver's first command read "— 1 commands in the last 24 hours…"; counts in
    alerts take their noun's number (``handlers.vocabulary.plural``)."""
    slack = Principal(Platform.SLACK, "T1", "U-leaver")
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, WHO, clock.now())
        await practitioners.set_status(session, WHO, "inactive")
    clock.set(at_uk(10))
    assert (await say(signpost, slack, str(world.in_area("Northshire")[0].ref))).outcome is Outcome.REFUSED
    await signpost.ctx.audit.settle()
    texts = [text for _, text in await alerts(signpost) if "(leaver)" in text]
    assert texts and all("— 1 command in the last 24 hours from an account" in text for text in texts), texts
