"""Wrong codes while setting up an authenticator (the first code after scanning the QR code).

Typing the first code wrong is common (a code read as it changed, an earlier set-up's QR code
scanned): it is no sign that someone else holds the chat account, who could start a set-up of their
own with ``enrol`` anyway. So enrolment's wrong codes never lock code entry, never tell the duty
managers and never count towards the misuse monitor's lockout rule; they are bounded on their own
(``StepUpPolicy.enrol_tries``: then the set-up is discarded and the person starts again), and each
one is audited, as every command is."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from bot.app import Signpost
from bot.slack.render import CODE_BLOCK, challenge_errors
from handlers.clock import FakeClock
from handlers.misuse.monitor import sweep
from handlers.stepup import flow as stepup
from handlers.vocabulary import Outcome, Reply
from store.people import credentials
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from tests.factories import AMY, load_standard, say
from tests.stepup_helpers import code_now, totp_from


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    return signpost


def not_the_code(app: Signpost, authenticator: pyotp.TOTP) -> str:
    now = app.ctx.clock.now()
    valid = {authenticator.at(now + timedelta(seconds=delta)) for delta in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def code_events(app: Signpost) -> list[tuple[str, str]]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(select(AuditEvent).where(AuditEvent.action == "code").order_by(AuditEvent.seq))
        return [(e.outcome, e.detail or "") for e in rows.scalars()]


async def step_up_notices(app: Signpost) -> list[str]:
    async with app.ctx.db.read() as session:
        return [n.kind for n in (await session.execute(select(NoticeRow))).scalars() if n.kind != "lead_informed"]


async def enrolling(app: Signpost, who: str = "P002") -> tuple[Reply, pyotp.TOTP]:
    enrolled = await say(app, who, "enrol")
    assert enrolled.challenge is not None
    return enrolled, totp_from(enrolled)


async def typed(app: Signpost, who: str, prompt: Reply, code: str) -> Reply:
    assert prompt.challenge is not None
    return await say(app, who, "code", code=code, challenge_id=prompt.challenge.challenge_id)


async def test_a_new_user_mistyping_the_first_code_is_asked_again_and_never_locked_or_reported(
    app: Signpost, clock: FakeClock
) -> None:
    """Five wrong first codes (where an ordinary step-up locks): each is answered on the same prompt,
    audited as an enrolment code, no lockout, no notice to anyone, no misuse alert; the right code
    then finishes the set-up."""
    prompt, authenticator = await enrolling(app)
    for attempt in range(1, 6):
        reply = await typed(app, "P002", prompt, not_the_code(app, authenticator))
        assert reply.outcome is Outcome.CHALLENGED, (attempt, reply)
        assert reply.challenge is not None and reply.challenge.prompt == stepup.PROMPT_PENDING
        assert "pause" not in reply.text and "didn't match" in reply.text
        assert challenge_errors(reply.challenge) == {CODE_BLOCK: reply.text}  # whole under Slack's input
    assert await code_events(app) == [("challenged", "enrolment code wrong")] * 5
    clock.advance(minutes=1)
    await sweep(app.ctx, clock.now())
    assert await step_up_notices(app) == []
    done = await typed(app, "P002", prompt, code_now(app, authenticator))
    assert done.outcome is Outcome.DONE and done.text.startswith("You're set up.")
    # Set up: the ordinary count of wrong codes starts from nothing.
    async with app.ctx.db.read() as session:
        state = await credentials.get(session, "P002")
    assert state is not None and state.state == "active" and state.failures == 0 and state.locked_until is None


async def test_enrolment_tries_are_bounded_on_their_own_then_the_set_up_starts_again(
    app: Signpost, clock: FakeClock
) -> None:
    """After ``enrol_tries`` wrong first codes the set-up is discarded: told to send enrol again, its
    secret no longer works, and still nobody is alarmed. A new set-up then works at once."""
    tries = stepup.StepUpPolicy().enrol_tries
    prompt, authenticator = await enrolling(app)
    for _ in range(tries - 1):
        assert (await typed(app, "P002", prompt, not_the_code(app, authenticator))).outcome is Outcome.CHALLENGED
    ended = await typed(app, "P002", prompt, not_the_code(app, authenticator))
    assert ended.outcome is Outcome.REFUSED and ended.challenge is None
    assert "send: enrol" in ended.text
    assert (await code_events(app))[-1] == ("refused", "enrolment code wrong; set-up discarded")
    async with app.ctx.db.read() as session:
        assert await credentials.get(session, "P002") is None
    late = await typed(app, "P002", prompt, code_now(app, authenticator))
    assert late.outcome is Outcome.REFUSED and late.text == stepup.NOT_ENROLLED.text
    assert [e for e in await code_events(app) if e[0] == "locked"] == []
    clock.advance(minutes=1)
    await sweep(app.ctx, clock.now())
    assert await step_up_notices(app) == []
    again, fresh = await enrolling(app)
    assert (await typed(app, "P002", again, code_now(app, fresh))).outcome is Outcome.DONE
    assert (await say(app, "P002", AMY)).outcome is Outcome.ANSWERED


async def test_a_pending_search_is_not_lost_to_enrolment_typos(app: Signpost) -> None:
    """A search asked with a pending authenticator waits through a mistyped first code and runs once
    the right one is given (the wrong one counted as an enrolment code, not a lockout try)."""
    _, authenticator = await enrolling(app)
    challenged = await say(app, "P002", AMY)
    assert challenged.outcome is Outcome.CHALLENGED and challenged.text == stepup.PENDING_TEXT.text
    wrong = await typed(app, "P002", challenged, not_the_code(app, authenticator))
    assert wrong.outcome is Outcome.CHALLENGED and "pause" not in wrong.text
    assert (await typed(app, "P002", challenged, code_now(app, authenticator))).outcome is Outcome.ANSWERED
