"""Step-up as a practitioner meets it: codes before results, single-use codes, throttling, freshness."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from bot.app import Signpost, build
from bot.console.render import render
from bot.slack.render import challenge_fallback
from handlers.clock import FakeClock
from handlers.dispatch.dispatcher import DUPLICATE
from handlers.dispatch.spec import StepUp
from handlers.examples import for_any_store
from handlers.search import LOOKUP_USAGE, SEARCH_USAGE
from handlers.stepup import flow as stepup
from handlers.stepup import totp
from handlers.stepup.flow import StepUpPolicy
from handlers.vocabulary import Outcome, Platform, Principal, Reply
from store.db import Database
from store.delivery.deliveries import stored_key
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.people import credentials, practitioners
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from store.tables.people import ParkedCommand
from tests.factories import AMY, console, load_standard, say
from tests.stepup_helpers import code_now, enrol_and_step_up, totp_from

# -- RFC 6238 and the verifier (pure) ---------------------------------------------------------------

RFC_SEED = b"12345678901234567890"
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))
# RFC 6238 Appendix B, SHA-1 column: (Unix time, 8-digit TOTP).
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("unix", "expected"), RFC_VECTORS)
def test_rfc6238_appendix_b_sha1_vectors(unix: int, expected: str) -> None:
    """Our code generator gives the RFC's published SHA-1 answers (8 digits, as the RFC prints)."""
    moment = datetime.fromtimestamp(unix, UTC)
    assert totp.code_at(RFC_SEED, totp.time_step(moment), digits=8) == expected


@pytest.mark.parametrize(("unix", "expected"), RFC_VECTORS)
def test_verifier_accepts_the_six_digit_rfc_codes_at_their_times(unix: int, expected: str) -> None:
    """The 6-digit code is the RFC value's last six digits, and it matches the time step it came from."""
    moment = datetime.fromtimestamp(unix, UTC)
    assert totp.matching_step(RFC_SEED, expected[-6:], moment) == totp.time_step(moment)


def test_verifier_allows_one_step_of_drift_and_no_more() -> None:
    """A code from 30 s ago matches; one from 60 s ago does not."""
    now = datetime(2026, 11, 2, 9, 0, 10, tzinfo=UTC)
    earlier = totp.code_at(RFC_SEED, totp.time_step(now - timedelta(seconds=30)))
    much_earlier = totp.code_at(RFC_SEED, totp.time_step(now - timedelta(seconds=60)))
    assert totp.matching_step(RFC_SEED, earlier, now) == totp.time_step(now) - 1
    assert totp.matching_step(RFC_SEED, much_earlier, now) is None


def test_base32_secret_is_what_authenticator_apps_read() -> None:
    """pyotp (as an authenticator app) reading our URI computes the same codes as we do."""
    uri = totp.provisioning_uri(RFC_SEED, "P001")
    app = pyotp.parse_uri(uri)
    assert isinstance(app, pyotp.TOTP)
    assert base64.b32decode(totp.base32(RFC_SEED)) == RFC_SEED
    assert app.at(59) == "287082"
    assert "issuer=Signpost" in uri


TYPED_287082 = ["287082", "287082".translate(FULL_WIDTH), "287 082", "287-082", " 287082\n"]


@pytest.mark.parametrize("typed", TYPED_287082)
def test_codes_are_normalised_to_ascii_digits(typed: str) -> None:
    """Full-width digits, a space or a dash in the middle still read as the same six digits."""
    assert totp.normalise(typed) == "287082"


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "12345".translate(FULL_WIDTH)])
def test_malformed_codes_are_rejected_before_verification(typed: str) -> None:
    """Anything that is not six digits never reaches the verifier."""
    with pytest.raises(totp.MalformedCode):
        totp.normalise(typed)


# -- through the dispatcher, on SQLite and PostgreSQL ------------------------------------------------


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


@pytest.fixture
async def strict(db: Database, keys: KeyRing, clock: FakeClock) -> AsyncIterator[Signpost]:
    """An app whose idle window is zero: any later second needs a new code (to replay within a step)."""
    built = build(db, keys, clock, stepup_policy=StepUpPolicy(idle=timedelta(0)))
    await load_standard(built)
    yield built
    await built.ctx.audit.close()


def wrong_code(app: Signpost, authenticator: pyotp.TOTP) -> str:
    now = app.ctx.clock.now()
    valid = {authenticator.at(now + timedelta(seconds=delta)) for delta in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def events(app: Signpost, action: str) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        rows = await session.execute(query)
        return list(rows.scalars())


async def notices(app: Signpost) -> list[NoticeRow]:
    """Step-up's notices (a lead professional told of a lookup is another feature's)."""
    async with app.ctx.db.read() as session:
        found = (await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars()
        return [n for n in found if n.kind != "lead_informed"]


async def challenged_lookup(app: Signpost, who: str = "P002") -> Reply:
    reply = await say(app, who, AMY)
    assert reply.outcome is Outcome.CHALLENGED, reply
    assert reply.challenge is not None and not reply.signposts
    return reply


async def answer(app: Signpost, who: str, reply: Reply, code: str) -> Reply:
    assert reply.challenge is not None
    return await say(app, who, "code", code=code, challenge_id=reply.challenge.challenge_id)


async def test_lookup_without_an_authenticator_asks_kindly_to_enrol(app: Signpost) -> None:
    """No credential: no result, no challenge, a message saying to send enrol."""
    reply = await say(app, "P002", AMY)
    assert reply.outcome is Outcome.REFUSED and reply.challenge is None and not reply.signposts
    assert "enrol" in reply.text
    assert [e.detail for e in await events(app, "lookup")] == ["not enrolled"]


async def test_help_needs_no_code(app: Signpost) -> None:
    """Commands that show no results are not challenged."""
    assert (await say(app, "P002", "help")).outcome is Outcome.INFO


async def test_parked_command_runs_exactly_once_after_a_correct_code(app: Signpost, clock: FakeClock) -> None:
    """A stale practitioner's lookup waits for a code, then runs once; its challenge cannot run it again."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    challenged = await challenged_lookup(app)
    answered = await answer(app, "P002", challenged, code_now(app, authenticator))
    assert answered.outcome is Outcome.ANSWERED and answered.child_ref == "999 000 0018"
    assert len(answered.signposts) == 3
    clock.advance(seconds=30)
    again = await answer(app, "P002", challenged, code_now(app, authenticator))
    assert again.outcome is Outcome.DONE and "send it again" in again.text and not again.signposts
    lookups = await events(app, "lookup")
    assert [(e.outcome, e.detail) for e in lookups] == [("challenged", "stepup required"), ("answered", "")]
    codes = await events(app, "code")
    assert [e.detail for e in codes][-2:] == ["code ok; resumed", "code ok; challenge gone"]
    assert lookups[1].correlation_id == codes[-2].correlation_id  # the code and its resumed lookup


async def test_parked_query_is_sealed_at_rest(app: Signpost, clock: FakeClock) -> None:
    """A parked search (a child's name and birth date) is not readable in the parked table."""
    await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    reply = await say(app, "P002", "Amy Jones 03/04/2014")
    assert reply.outcome is Outcome.CHALLENGED
    async with app.ctx.db.read() as session:
        raw = (await session.execute(select(ParkedCommand.text))).scalars().all()
    assert len(raw) == 1 and raw[0] is not None
    assert b"Amy" not in raw[0] and b"Jones" not in raw[0] and b"2014" not in raw[0]


async def test_code_from_30s_ago_is_accepted_and_from_60s_ago_refused(app: Signpost, clock: FakeClock) -> None:
    """Clock drift of one step is tolerated; two steps is a wrong code (shown inline, try again)."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31, seconds=10)
    challenged = await challenged_lookup(app)
    too_old = authenticator.at(clock.now() - timedelta(seconds=60))
    refused = await answer(app, "P002", challenged, too_old)
    assert refused.outcome is Outcome.CHALLENGED and refused.challenge is not None
    assert refused.challenge.challenge_id == challenged.challenge.challenge_id  # type: ignore[union-attr]
    assert refused.challenge.error is not None and "didn't match" in refused.challenge.error
    accepted = await answer(app, "P002", challenged, authenticator.at(clock.now() - timedelta(seconds=30)))
    assert accepted.outcome is Outcome.ANSWERED


async def test_a_code_counts_once_even_spelt_in_full_width_digits(strict: Signpost, clock: FakeClock) -> None:
    """Within the same 30 s step, the code just used is refused again, in any spelling."""
    authenticator = await enrol_and_step_up(strict, "P002")
    used = code_now(strict, authenticator)
    clock.advance(seconds=1)
    challenged = await challenged_lookup(strict)
    for spelling in (used, used.translate(FULL_WIDTH)):
        reply = await answer(strict, "P002", challenged, spelling)
        assert reply.outcome is Outcome.CHALLENGED and reply.challenge is not None
        assert reply.challenge.error == stepup.REUSED
    clock.advance(seconds=30)
    resumed = await answer(strict, "P002", challenged, code_now(strict, authenticator))
    assert resumed.outcome is Outcome.ANSWERED
    details = [e.detail for e in await events(strict, "code")]
    assert details[-3:] == ["code reused", "code reused", "code ok; resumed"]


async def test_resubmitting_your_own_accepted_code_never_locks_or_alarms(app: Signpost, clock: FakeClock) -> None:
    """Five double submissions of a good code (the README: a double click never counts twice) are
    each answered "already used", count no wrong guess, lock nothing and tell no duty manager."""
    authenticator = await enrol_and_step_up(app, "P002")
    for _ in range(6):
        clock.advance(minutes=31)
        challenged = await challenged_lookup(app)
        code = code_now(app, authenticator)
        assert (await answer(app, "P002", challenged, code)).outcome is Outcome.ANSWERED
        again = await answer(app, "P002", challenged, code)
        assert again.outcome is Outcome.CHALLENGED and again.challenge is not None
        assert again.challenge.error == "That code was already used — wait for the next one your app shows."
    assert await notices(app) == []
    async with app.ctx.db.read() as session:
        cred = await credentials.get(session, "P002")
    assert cred is not None and cred.failures == 0 and cred.locked_until is None
    assert (await say(app, "P002", AMY)).outcome is Outcome.ANSWERED


@pytest.mark.parametrize(
    "delivery",
    ["teams:activity:one-delivery", "slack:trigger:" + "7" * 150, "slack:trigger:" + "7" * 300],
    ids=["short", "longer-than-a-parked-key", "longer-than-a-delivery-key"],
)
async def test_a_search_delivered_again_while_its_code_is_awaited_is_asked_once(
    app: Signpost, clock: FakeClock, delivery: str
) -> None:
    """Teams or Slack sends the same search again (or a button is clicked twice) before the code:
    the same prompt, one parked command and one audit event; once the code is in, the search runs
    once, and the same delivery after it is "already received" — whatever the id's length (one
    between the parked command's column and the deliveries' was kept two ways, and ran twice)."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    before = len(await events(app, "lookup"))
    first = await say(app, "P002", AMY, idempotency_key=delivery)
    again = await say(app, "P002", AMY, idempotency_key=delivery)
    assert first.outcome is again.outcome is Outcome.CHALLENGED
    assert first.challenge is not None and again.challenge is not None
    assert again.challenge.challenge_id == first.challenge.challenge_id
    async with app.ctx.db.read() as session:
        kept = stored_key(delivery)
        parked = (await session.execute(select(ParkedCommand).where(ParkedCommand.idempotency_key == kept))).all()
    assert len(parked) == 1
    assert [e.outcome for e in (await events(app, "lookup"))[before:]] == ["challenged"]
    assert (await answer(app, "P002", again, code_now(app, authenticator))).outcome is Outcome.ANSWERED
    assert (await say(app, "P002", AMY, idempotency_key=delivery)).text == DUPLICATE.text
    assert [e.outcome for e in (await events(app, "lookup"))[before:]] == ["challenged", "answered"]


async def test_a_search_waiting_for_its_code_is_sealed_under_its_birth_dates_key(
    app: Signpost, clock: FakeClock
) -> None:
    """What a challenged name search typed waits sealed as its audit terms are: under the cohort
    key of the date of birth it names (destroyed with that day's children), not the month's."""
    await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    reply = await say(app, "P002", "Amy Jones 03/04/2014")
    assert reply.outcome is Outcome.CHALLENGED
    async with app.ctx.db.read() as session:
        [kek_id] = (await session.execute(select(ParkedCommand.kek_id))).scalars().all()
    assert kek_id == keychain.key_for(app.ctx.keys, keychain.Chain.DAY, keychain.day_slot(date(2014, 4, 3)))
    [event] = (await events(app, "search"))[-1:]
    assert event.outcome == "challenged" and str(event.terms_key).startswith("cohort:")


async def test_a_replayed_good_code_after_four_wrong_ones_does_not_lock(strict: Signpost, clock: FakeClock) -> None:
    """Four wrong codes, then the code just used again in its own step: not the fifth wrong guess,
    so no pause and no duty manager told; the next good code still works."""
    authenticator = await enrol_and_step_up(strict, "P002")
    used = code_now(strict, authenticator)
    clock.advance(seconds=1)
    challenged = await challenged_lookup(strict)
    for _ in range(4):
        assert (await answer(strict, "P002", challenged, wrong_code(strict, authenticator))).outcome is (
            Outcome.CHALLENGED
        )
    replay = await answer(strict, "P002", challenged, used)
    assert replay.outcome is Outcome.CHALLENGED and replay.challenge is not None
    assert replay.challenge.error == stepup.REUSED
    assert await notices(strict) == []
    clock.advance(seconds=30)
    assert (await answer(strict, "P002", challenged, code_now(strict, authenticator))).outcome is Outcome.ANSWERED


async def test_concurrent_double_submission_gives_one_success(app: Signpost, clock: FakeClock) -> None:
    """Two submissions of one code at once (a double click): one runs the lookup, the other is refused."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    challenged = await challenged_lookup(app)
    code = code_now(app, authenticator)
    replies = await asyncio.gather(*(answer(app, "P002", challenged, code) for _ in range(2)))
    outcomes = sorted(r.outcome.value for r in replies)
    assert outcomes == ["answered", "challenged"]
    assert [e.outcome for e in await events(app, "lookup")].count("answered") == 1


async def test_five_wrong_codes_lock_for_15_minutes_and_tell_the_duty_manager(app: Signpost, clock: FakeClock) -> None:
    """The fifth wrong code locks code entry (even a right code is refused) and notifies DM01 only."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    challenged = await challenged_lookup(app)
    for attempt in range(1, 5):
        reply = await answer(app, "P002", challenged, wrong_code(app, authenticator))
        assert reply.outcome is Outcome.CHALLENGED, attempt
    assert reply.challenge is not None and "1 try left" in (reply.challenge.error or "")
    locked = await answer(app, "P002", challenged, wrong_code(app, authenticator))
    assert locked.outcome is Outcome.LOCKED and "15 more minutes" in locked.text
    right_but_locked = await answer(app, "P002", challenged, code_now(app, authenticator))
    assert right_but_locked.outcome is Outcome.REFUSED and "paused" in right_but_locked.text
    assert (await say(app, "P002", AMY)).outcome is Outcome.REFUSED
    sent = await notices(app)
    assert [(n.recipient_id, n.kind) for n in sent] == [("DM01", "stepup_locked")]
    assert "P002" in sent[0].body and "Amy" not in sent[0].body and "Jones" not in sent[0].body
    audited = [(e.outcome, e.detail) for e in await events(app, "code")]
    # The lockout is recorded as such (misuse rules count it); a code refused while locked is not one.
    assert audited[-2:] == [("locked", "code wrong; locked"), ("refused", "stepup locked")]

    clock.advance(minutes=15)
    again = await challenged_lookup(app)
    assert (await answer(app, "P002", again, code_now(app, authenticator))).outcome is Outcome.ANSWERED


async def test_a_good_code_resets_the_count_of_wrong_ones(app: Signpost, clock: FakeClock) -> None:
    """Four wrong, one right, four wrong: never five in a row, so never locked."""
    authenticator = await enrol_and_step_up(app, "P002")
    for _ in range(2):
        clock.advance(minutes=31)
        challenged = await challenged_lookup(app)
        for _ in range(4):
            wrong = await answer(app, "P002", challenged, wrong_code(app, authenticator))
            assert wrong.challenge is not None
        right = await answer(app, "P002", challenged, code_now(app, authenticator))
        assert right.outcome is Outcome.ANSWERED
    assert await notices(app) == []


async def test_one_hundred_wrong_codes_disable_until_re_enrolment(app: Signpost, clock: FakeClock) -> None:
    """Locks come and go every five; the hundredth wrong code disables; only a reset and enrol help."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    challenged = await challenged_lookup(app)
    for attempt in range(1, 101):
        reply = await answer(app, "P002", challenged, wrong_code(app, authenticator))
        if attempt % 5 == 0 and attempt < 100:
            assert reply.outcome is Outcome.LOCKED and "paused" in reply.text, attempt
            clock.advance(minutes=15)
    assert reply.outcome is Outcome.REFUSED and reply.text == stepup.DISABLED_TEXT.text
    assert (await answer(app, "P002", challenged, code_now(app, authenticator))).text == stepup.DISABLED_TEXT.text
    assert (await say(app, "P002", AMY)).text == stepup.DISABLED_TEXT.text
    assert (await say(app, "P002", "enrol")).text == stepup.DISABLED_TEXT.text  # no self-service way round it
    # Only step-up's own notices: the misuse monitor may add its credential alert at any moment.
    kinds = [n.kind for n in await notices(app) if n.kind.startswith("stepup_")]
    assert kinds.count("stepup_locked") == 19 and kinds[-1] == "stepup_disabled"

    async with app.ctx.db.write() as session:
        await credentials.reset(session, "P002")
    clock.advance(minutes=1)
    await enrol_and_step_up(app, "P002")
    assert (await say(app, "P002", AMY)).outcome is Outcome.ANSWERED


async def test_fresh_for_30_minutes_after_last_use(app: Signpost, clock: FakeClock) -> None:
    """Use keeps step-up fresh; 31 minutes idle asks again."""
    await enrol_and_step_up(app, "P002")
    for _ in range(3):
        clock.advance(minutes=29)
        assert (await say(app, "P002", AMY)).outcome is Outcome.ANSWERED
    clock.advance(minutes=31)
    assert (await say(app, "P002", AMY)).outcome is Outcome.CHALLENGED


async def test_fresh_for_12_hours_at_most(app: Signpost, clock: FakeClock) -> None:
    """Even in constant use, a code covers 12 hours; at 12 h + 1 s Signpost asks again."""
    start = clock.now()
    await enrol_and_step_up(app, "P002")
    while clock.now() < start + timedelta(hours=12):
        clock.advance(minutes=20)
        assert (await say(app, "P002", AMY)).outcome is Outcome.ANSWERED
    assert clock.now() == start + timedelta(hours=12)
    clock.advance(seconds=1)
    assert (await say(app, "P002", AMY)).outcome is Outcome.CHALLENGED


async def test_approval_needs_a_code_from_the_last_five_minutes(app: Signpost) -> None:
    """Decisions (StepUp.APPROVAL) are fresh for 5 minutes after the code, whatever the use since."""
    now = app.ctx.clock.now()
    policy = StepUpPolicy()

    def state(code_at: datetime) -> credentials.CredentialState:
        return credentials.CredentialState("P001", "active", 1, 0, None, code_at)

    async with app.ctx.db.read() as session:
        fresh_code = state(now - timedelta(minutes=5))
        fresh = await stepup.is_fresh(session, fresh_code, StepUp.APPROVAL, now, policy, console("P001"), None, None)
        stale_code = state(now - timedelta(minutes=5, seconds=1))
        stale = await stepup.is_fresh(session, stale_code, StepUp.APPROVAL, now, policy, console("P001"), None, None)
    assert fresh and not stale


async def test_a_burst_of_challenged_searches_does_not_starve_the_connection_pool(
    app: Signpost, clock: FakeClock
) -> None:
    """Many more concurrent challenged searches than pooled connections: every one gets its prompt."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    replies = await asyncio.gather(*(say(app, "P002", AMY) for _ in range(40)))
    assert {r.outcome for r in replies} == {Outcome.CHALLENGED}
    answered = await answer(app, "P002", replies[0], code_now(app, authenticator))
    assert answered.outcome is Outcome.ANSWERED
    clock.advance(minutes=20)
    assert (await say(app, "P002", AMY)).outcome is Outcome.ANSWERED
    clock.advance(minutes=20)  # the code is 40 minutes old: "last use" comes from the audit log
    replies = await asyncio.gather(*(say(app, "P002", AMY) for _ in range(40)))
    assert {r.outcome for r in replies} == {Outcome.ANSWERED}


async def test_a_code_typed_as_a_message_is_not_taken(app: Signpost) -> None:
    """Codes come only from the private prompt (Command.code); 'code 123456' as text is refused."""
    await enrol_and_step_up(app, "P002")
    reply = await say(app, "P002", "code 123456")
    assert reply.outcome is Outcome.INVALID and "prompt" in reply.text


async def test_malformed_code_asks_again_without_counting(app: Signpost, clock: FakeClock) -> None:
    """A typo that is not six digits is answered inline and is no wrong-code attempt."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    challenged = await challenged_lookup(app)
    for _ in range(6):
        reply = await answer(app, "P002", challenged, "12345")
        assert reply.challenge is not None and reply.challenge.error == stepup.MALFORMED
    assert (await answer(app, "P002", challenged, code_now(app, authenticator))).outcome is Outcome.ANSWERED


async def test_someone_else_cannot_answer_my_challenge(app: Signpost, clock: FakeClock) -> None:
    """A challenge id is bound to the person it was issued to: another's code runs nothing of mine."""
    await enrol_and_step_up(app, "P002")
    other = await enrol_and_step_up(app, "P003")
    clock.advance(minutes=31)
    mine = await challenged_lookup(app, "P002")
    theirs = await answer(app, "P003", mine, code_now(app, other))
    assert theirs.outcome is Outcome.DONE and not theirs.signposts
    assert [e.actor_id for e in await events(app, "lookup") if e.outcome == "answered"] == []


async def test_code_attempts_are_audited_without_the_code(app: Signpost, clock: FakeClock) -> None:
    """Every attempt is an audit event; no code, seed or terms are in it."""
    authenticator = await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    challenged = await challenged_lookup(app)
    bad = wrong_code(app, authenticator)
    good = code_now(app, authenticator)
    await answer(app, "P002", challenged, bad)
    await answer(app, "P002", challenged, good)
    rows = await events(app, "code")
    assert [e.detail for e in rows] == ["code ok; enrolled", "code wrong", "code ok; resumed"]
    for row in rows:
        assert row.terms is None and bad not in row.detail and good not in row.detail
    enrol_rows = await events(app, "enrol")
    assert len(enrol_rows) == 1 and enrol_rows[0].terms is None


async def test_enrol_says_to_enter_the_code_once_in_the_console_and_in_chat(app: Signpost) -> None:
    """The enrol reply and its code prompt, as the console and Slack show them, ask for the code once."""
    shown = render(await say(app, "P001", "enrol"))
    assert shown.count("6-digit code") == 1 and "Scan the QR code above" in shown
    slack = Principal(Platform.SLACK, "T1", "U1")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, "P002", app.ctx.clock.now())
    reply = await say(app, slack, "enrol")
    assert reply.challenge is not None
    blocks = challenge_fallback(reply.challenge, reply)["blocks"]
    said = " ".join(b["text"]["text"] for b in blocks if b["type"] == "section")  # what is read, not button values
    assert said.count("6-digit code") == 1 and "code prompt" not in said and "Open this link" in said


async def test_chat_enrolment_gives_a_link_and_never_the_seed(app: Signpost) -> None:
    """In Slack or Teams, enrol answers with a one-time link (and a code prompt), not the secret."""
    slack = Principal(Platform.SLACK, "T1", "U1")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, "P001", app.ctx.clock.now())
    reply = await say(app, slack, "enrol")
    assert reply.outcome is Outcome.DONE and reply.enrolment_uri is None
    assert reply.challenge is not None and reply.challenge.prompt == stepup.PROMPT_PENDING
    assert not reply.lines
    (enrol_link,) = reply.links
    link = enrol_link.url
    assert (
        enrol_link.label == stepup.ENROL_LINK_LABEL
        and link.startswith("http://127.0.0.1:3000/enrol/")
        and len(link.rsplit("/", 1)[1]) >= 40
    )
    assert "secret" not in repr(reply).lower() and "otpauth" not in repr(reply)


async def test_enrol_is_refused_when_an_authenticator_works(app: Signpost) -> None:
    """A chat account alone cannot replace a working second factor."""
    await enrol_and_step_up(app, "P002")
    reply = await say(app, "P002", "enrol")
    assert reply.outcome is Outcome.REFUSED and "duty manager" in reply.text


async def test_a_pending_authenticator_is_told_apart_from_a_set_up_link_alone(app: Signpost) -> None:
    """An operator's `signpost totp enrol` hands over a secret (and the console's `enrol` a QR code),
    never a link: the first search told "If you no longer have the set-up link, send: enrol", which
    that practitioner never had (newcomer)."""
    async with app.ctx.db.write() as session:
        await credentials.enrol(session, app.ctx.keys, "P001", totp.new_seed(), app.ctx.clock.now())
    reply = await say(app, "P001", AMY)
    assert reply.outcome is Outcome.CHALLENGED
    assert reply.text == (
        "Please finish setting up your authenticator app first. If you haven't added Signpost to it yet and no "
        "longer have the QR code, secret or set-up link you were given, send: enrol"
    )


async def test_operator_enrolment_is_confirmed_by_the_first_code(app: Signpost) -> None:
    """A pending credential challenges the first search; the first good code activates it and runs it."""
    seed = totp.new_seed()
    async with app.ctx.db.write() as session:
        await credentials.enrol(session, app.ctx.keys, "P001", seed, app.ctx.clock.now())
    reply = await say(app, "P001", AMY)
    assert reply.outcome is Outcome.CHALLENGED and reply.text == stepup.PENDING_TEXT.text
    authenticator = pyotp.TOTP(totp.base32(seed))
    answered = await answer(app, "P001", reply, code_now(app, authenticator))
    assert answered.outcome is Outcome.ANSWERED
    async with app.ctx.db.read() as session:
        state = await credentials.get(session, "P001")
    assert state is not None and state.state == "active"


async def test_enrol_sent_instead_of_an_operator_enrolment_s_first_code_drops_the_search(app: Signpost) -> None:
    """README's example-feed walk-through: after `signpost totp enrol`, the first search asks for the code
    that finishes the set-up; `enrol` sent instead starts a new one, and the search is not run after its
    code: the set-up says to send it again (README says so)."""
    async with app.ctx.db.write() as session:
        await credentials.enrol(session, app.ctx.keys, "P001", totp.new_seed(), app.ctx.clock.now())
    asked = await say(app, "P001", AMY)
    assert asked.outcome is Outcome.CHALLENGED and asked.text == stepup.PENDING_TEXT.text
    enrolled = await say(app, "P001", "enrol")
    done = await answer(app, "P001", enrolled, code_now(app, totp_from(enrolled)))
    assert done.outcome is Outcome.DONE and done.text.endswith("has not run: send it again now."), done.text
    readme = " ".join((Path(__file__).resolve().parents[3] / "README.md").read_text("utf-8").split())
    assert "`enrol` starts a new set-up (a new QR code and secret) and the search is dropped" in readme


async def test_enrolment_says_when_codes_are_asked_for_as_the_policy_does(app: Signpost) -> None:
    """The enrolment reply gives the policy's real periods: 30 minutes idle, 12 hours at most, and a
    code under 5 minutes old for a decision (not "the first time you search each day")."""
    enrolled = await say(app, "P002", "enrol")
    assert enrolled.challenge is not None
    done = await answer(app, "P002", enrolled, code_now(app, totp_from(enrolled)))
    assert done.outcome is Outcome.DONE
    assert done.text == (
        "You're set up. Signpost will ask for a code again after 30 minutes without using it, 12 hours after "
        "your last code at the latest, and before a decision when your last code is more than 5 minutes old. "
        "If you asked anything before setting up, it has not run: send it again now."
    )


async def test_a_search_sent_before_set_up_is_not_run_and_set_up_says_to_send_it_again(app: Signpost) -> None:
    """Without an authenticator a search is refused and kept nowhere; "You're set up." alone left the
    newcomer waiting for its answer. Both answers now say it has not run and is to be sent again."""
    refused = await say(app, "P002", "Amy Jones 03/04/2014")
    assert refused.outcome is Outcome.REFUSED and "has not run" in refused.text, refused.text
    enrolled = await say(app, "P002", "enrol")
    done = await answer(app, "P002", enrolled, code_now(app, totp_from(enrolled)))
    assert done.outcome is Outcome.DONE and done.text.startswith("You're set up."), done.text
    assert done.text.endswith("send it again now."), done.text


async def test_a_malformed_search_is_answered_at_once_without_asking_for_a_code(
    app: Signpost, clock: FakeClock
) -> None:
    """An impossible or future date of birth is told at once, as the search itself tells it: no code
    is asked for first, so no code (and no trip to the phone) is spent on a typo (newcomer). A
    well-formed search still waits for its code."""
    await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)  # the code is no longer fresh
    for text, why in (
        ("Amy Jones 31/02/2014", "That date of birth is not a real date"),
        ("Amy Jones 01/01/2099", "That date of birth is in the future"),
    ):
        reply = await say(app, "P002", text)
        assert reply.outcome is Outcome.INVALID and reply.challenge is None, text
        assert reply.text.startswith(why) and reply.text.endswith(f".\n\n{for_any_store(SEARCH_USAGE)}"), reply.text
    searches = await events(app, "search")
    assert [(e.outcome, e.detail) for e in searches] == [("invalid", "usage"), ("invalid", "usage")]
    assert (await say(app, "P002", "Amy Jones 03/04/2014")).outcome is Outcome.CHALLENGED


async def test_a_mistyped_reference_is_answered_at_once_without_asking_for_a_code(
    app: Signpost, clock: FakeClock
) -> None:
    """A reference failing its check digit gets the lookup's own answer before any code prompt."""
    await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)
    reply = await say(app, "P002", "999 000 0019")
    assert reply.outcome is Outcome.INVALID and reply.challenge is None
    assert reply.text.endswith(for_any_store(LOOKUP_USAGE))  # not the demo store: no example
    assert [(e.outcome, e.detail) for e in await events(app, "lookup")] == [("invalid", "bad check digit")]
    await challenged_lookup(app)


async def test_a_malformed_search_without_an_authenticator_is_told_what_is_wrong_with_it(app: Signpost) -> None:
    """Nobody is sent to enrol an authenticator for a search that could not run anyway."""
    reply = await say(app, "P002", "Amy Jones 31/02/2014")
    assert reply.outcome is Outcome.INVALID and "not a real date" in reply.text and "enrol" not in reply.text
    assert [(e.outcome, e.detail) for e in await events(app, "search")] == [("invalid", "usage")]


async def test_a_request_or_decision_that_could_not_be_made_is_answered_before_any_code(
    app: Signpost, clock: FakeClock
) -> None:
    """A purpose too short, a mistyped reference, a duration past 7 days or a missing request id is
    told at once, with the command's own answer, before anyone is asked for a code."""
    await enrol_and_step_up(app, "P002")
    await enrol_and_step_up(app, "DM01")
    clock.advance(minutes=31)  # neither code is fresh, for a result or a decision
    for who, text, why, action, detail in (
        ("P002", "request 9990000050 s47", "the purpose is too short", "request_access", "usage"),
        (
            "P002",
            "request 9990000051 section 47 enquiry",
            "please check the digits",
            "request_access",
            "bad check digit",
        ),
        ("DM01", "approve 1 9d", "access can be granted for 1 hour to 7 days", "approve", "usage"),
        ("DM01", "deny soon", "please give the request id", "deny", "usage"),
    ):
        reply = await say(app, who, text)
        assert reply.outcome is Outcome.INVALID and reply.challenge is None, text
        assert why in reply.text.lower(), reply.text
        assert [(e.outcome, e.detail) for e in await events(app, action)][-1] == ("invalid", detail), text
    assert (await say(app, "P002", "request 9990000050 section 47 enquiry")).outcome is Outcome.CHALLENGED
    assert (await say(app, "DM01", "approve 1 3d")).outcome is Outcome.CHALLENGED


async def test_a_relayed_message_that_could_not_be_sent_or_read_is_answered_before_any_code(
    app: Signpost, clock: FakeClock
) -> None:
    """A message too short or about a mistyped reference, and a reply or a reading without a
    message number, are told at once, with the command's own answer, before any code is asked for."""
    await enrol_and_step_up(app, "P002")
    clock.advance(minutes=31)  # the code is no longer fresh
    for text, why, detail in (
        ("message 9990000050 call me", "in at least", "usage"),
        ("message 9990000051 please call me about a section 47 enquiry", "please check the digits", "bad check digit"),
        ("reply soon", "please give the message number", "usage"),
        ("relay first", "please give the message number", "usage"),
    ):
        reply = await say(app, "P002", text)
        assert reply.outcome is Outcome.INVALID and reply.challenge is None, text
        assert why in reply.text.lower(), reply.text
        action = "relay_read" if text.startswith("relay") else "relay_message"
        assert [(e.outcome, e.detail) for e in await events(app, action)][-1] == ("invalid", detail), text
    sent = await say(app, "P002", "message 9990000050 please call me about a section 47 enquiry")
    assert sent.outcome is Outcome.CHALLENGED
    assert (await say(app, "P002", "relay 1")).outcome is Outcome.CHALLENGED


async def test_an_admin_command_that_could_not_run_is_answered_before_any_code(app: Signpost, clock: FakeClock) -> None:
    """An admin's `unlink`, `decommission` or `lead-notices` typed without what it needs (or with a
    platform, step or date it cannot read) is told at once, with its usage, as a duty manager's
    `approve x` is: nobody fetches their phone for a typo (newcomer)."""
    await enrol_and_step_up(app, "AD01")
    clock.advance(minutes=31)  # the code is no longer fresh
    for text, why, action in (
        ("unlink", "please give the practitioner id", "unlink"),
        ("unlink P002 skype", "the platform is slack or teams", "unlink"),
        ("decommission", "please say what to do", "decommission"),
        ("decommission frobnicate", "please say what to do", "decommission"),
        ("decommission schedule", "please give the switch-off date", "decommission"),
        ("decommission schedule 31/02/2099", "that is not a real date", "decommission"),
        ("decommission cancel now", "a word too many: nothing goes after decommission cancel", "decommission"),
        ("decommission status please", "a word too many: nothing goes after decommission status", "decommission"),
        ("lead-notices", "name the local authority", "lead_notices"),
    ):
        reply = await say(app, "AD01", text)
        assert reply.outcome is Outcome.INVALID and reply.challenge is None, text
        assert why in reply.text.lower(), reply.text
        assert [(e.outcome, e.detail) for e in await events(app, action)][-1] == ("invalid", "usage"), text
    for text in ("unlink P002 slack", "decommission status", "lead-notices Northshire"):
        assert (await say(app, "AD01", text)).outcome is Outcome.CHALLENGED, text


async def test_a_chat_account_linked_after_the_last_code_gives_a_code_of_its_own(
    app: Signpost, clock: FakeClock
) -> None:
    """A tester's report: a practitioner typed a code at the console; a Slack account linked to them
    a minute later (a registration approved) got signposts, and could approve, with no code of its
    own: the freshness was the practitioner's, whichever account asked. A code typed before an
    account was linked never covers it; once a code is typed in it, it is fresh as ever."""
    authenticator = await enrol_and_step_up(app, "P002")  # typed at the console
    clock.advance(minutes=1)
    slack = Principal(Platform.SLACK, "T1", "U9")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, "P002", clock.now())
    clock.advance(minutes=1)
    asked = await say(app, slack, AMY)
    assert asked.outcome is Outcome.CHALLENGED and asked.challenge is not None and not asked.signposts, asked
    assert (await say(app, "P002", AMY)).signposts  # the console, where the code was typed, is fresh
    answered = await say(
        app, slack, "code", code=code_now(app, authenticator), challenge_id=asked.challenge.challenge_id
    )
    assert answered.outcome is Outcome.ANSWERED and answered.signposts, answered
    clock.advance(minutes=1)
    assert (await say(app, slack, AMY)).signposts


async def test_a_decision_from_a_newly_linked_account_needs_its_own_code(app: Signpost, clock: FakeClock) -> None:
    """Approvals need a code no older than 5 minutes: one typed before the account was linked is not it."""
    code_at = clock.now()
    policy = StepUpPolicy()
    state = credentials.CredentialState("P001", "active", 1, 0, None, code_at)
    slack = Principal(Platform.SLACK, "T1", "U9")

    async def fresh(linked_at: datetime) -> bool:
        async with app.ctx.db.read() as session:
            return await stepup.is_fresh(session, state, StepUp.APPROVAL, code_at, policy, slack, linked_at, None)

    linked_before = await fresh(code_at - timedelta(seconds=1))
    linked_with = await fresh(code_at)
    linked_since = await fresh(code_at + timedelta(seconds=1))
    assert linked_before and linked_with and not linked_since


async def test_a_code_typed_in_one_chat_account_never_covers_another(app: Signpost, clock: FakeClock) -> None:
    """A practitioner with a Slack and a Teams account: a code typed in one covers that one only
    (a second account taken over cannot ride the code typed in the first), and each stays fresh
    through its own use; a code typed at the console covers the accounts linked before it."""
    authenticator = await enrol_and_step_up(app, "P002")  # typed at the console, before either link
    clock.advance(minutes=1)
    slack = Principal(Platform.SLACK, "T1", "U9")
    teams = Principal(Platform.TEAMS, "0f1e2d3c-0000-4000-8000-00000000000a", "aad-p002")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, "P002", clock.now())
        await practitioners.link_identity(session, teams, "P002", clock.now())
    clock.advance(minutes=1)

    async def code_in(account: Principal) -> Reply:
        asked = await say(app, account, AMY)
        assert asked.outcome is Outcome.CHALLENGED and asked.challenge is not None and not asked.signposts, asked
        clock.advance(seconds=30)  # each time step counts once
        return await say(
            app, account, "code", code=code_now(app, authenticator), challenge_id=asked.challenge.challenge_id
        )

    assert (await code_in(slack)).signposts
    assert (await code_in(teams)).signposts, "Slack's code did not cover Teams"
    clock.advance(minutes=25)
    assert (await say(app, slack, AMY)).signposts  # Slack used: fresh for another 30 minutes
    clock.advance(minutes=10)  # 35 minutes after Teams's code, Teams unused since
    assert (await say(app, slack, AMY)).signposts
    assert (await say(app, teams, AMY)).outcome is Outcome.CHALLENGED, "Slack's use kept Teams fresh"

    clock.advance(seconds=30)
    at_console = await say(app, "P002", AMY)  # the console's own code is 36 minutes old: asked again
    assert at_console.challenge is not None
    clock.advance(seconds=30)
    assert (
        await say(
            app, "P002", "code", code=code_now(app, authenticator), challenge_id=at_console.challenge.challenge_id
        )
    ).signposts
    assert (await say(app, teams, AMY)).signposts  # linked before the console's code: covered


async def test_a_console_code_typed_while_the_clock_read_years_on_hides_no_code_typed_in_chat_since(
    app: Signpost, clock: FakeClock
) -> None:
    """A code typed at the console while the host's clock read 2037 covers nothing once the clock
    is put right (``store.skew``); nor may it stand as the practitioner's latest code: it did, and
    hid every code later typed in their Slack account, which was asked for a code after each one."""
    authenticator = await enrol_and_step_up(app, "P002")
    slack = Principal(Platform.SLACK, "T1", "U9")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack, "P002", clock.now())
    right = clock.now()
    clock.set(datetime(2037, 8, 1, 9, 0, tzinfo=UTC))  # the host's clock set years on
    at_console = await say(app, "P002", AMY)
    assert at_console.challenge is not None, at_console
    typed = await say(
        app, "P002", "code", code=code_now(app, authenticator), challenge_id=at_console.challenge.challenge_id
    )
    assert typed.signposts, typed
    clock.set(right + timedelta(minutes=1))  # put right
    asked = await say(app, slack, AMY)
    assert asked.challenge is not None and not asked.signposts, "the 2037 code covered the Slack account"
    clock.advance(seconds=30)
    answered = await say(
        app, slack, "code", code=code_now(app, authenticator), challenge_id=asked.challenge.challenge_id
    )
    assert answered.signposts, answered
    clock.advance(minutes=1)
    again = await say(app, slack, AMY)
    assert again.signposts and again.challenge is None, "the code typed in Slack was hidden by the 2037 one"
