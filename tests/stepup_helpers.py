"""Make a practitioner fresh for step-up through the real path: enrol, then answer with a code."""

from __future__ import annotations

from datetime import timedelta

import pyotp

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Principal, Reply
from tests.factories import AMY, say


def totp_from(reply: Reply) -> pyotp.TOTP:
    """The authenticator an app would build from a console enrolment reply."""
    assert reply.enrolment_uri is not None, reply
    totp = pyotp.parse_uri(reply.enrolment_uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp


def code_now(app: Signpost, totp: pyotp.TOTP) -> str:
    """The code an authenticator app shows at the app's (fake) current time."""
    return totp.at(app.ctx.clock.now())


async def enrol_and_step_up(app: Signpost, practitioner_id: str) -> pyotp.TOTP:
    """Enrol ``practitioner_id`` in the console and confirm with a first code (now fresh).

    Returns the authenticator, so a test can compute later codes with ``code_now``. A later
    step-up in the same 30-second step needs the clock moved on (each time step counts once).
    """
    enrolled = await say(app, practitioner_id, "enrol")
    assert enrolled.challenge is not None, enrolled
    totp = totp_from(enrolled)
    challenge_id = enrolled.challenge.challenge_id
    reply = await say(app, practitioner_id, "code", code=code_now(app, totp), challenge_id=challenge_id)
    assert reply.outcome is Outcome.DONE, reply
    return totp


def _enrolled(app: Signpost) -> dict[str, pyotp.TOTP]:
    """Authenticators enrolled through these helpers, kept on the app under test itself."""
    found: dict[str, pyotp.TOTP] = vars(app).setdefault("_test_authenticators", {})
    return found


def _used_steps(app: Signpost, practitioner_id: str) -> set[int]:
    steps: dict[str, set[int]] = vars(app).setdefault("_test_used_steps", {})
    return steps.setdefault(practitioner_id, set())


def wrong_code(app: Signpost, authenticator: pyotp.TOTP) -> str:
    """A code the authenticator does not show now, nor a step either side."""
    now = app.ctx.clock.now()
    valid = {authenticator.at(now + timedelta(seconds=delta)) for delta in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def five_wrong_codes(app: Signpost, clock: FakeClock, who: str) -> Reply:
    """Enrol, let the step-up go stale, then answer a search's challenge wrongly five times (a lockout)."""
    authenticator = await enrol_and_step_up(app, who)
    clock.advance(minutes=31)
    challenged = await say(app, who, AMY)
    assert challenged.challenge is not None, challenged
    for _ in range(5):
        reply = await say(
            app, who, "code", code=wrong_code(app, authenticator), challenge_id=challenged.challenge.challenge_id
        )
    return reply


async def ensure_enrolled(app: Signpost, practitioner_id: str) -> pyotp.TOTP:
    """Enrol and step up once per app; later calls return the same authenticator."""
    enrolled = _enrolled(app)
    if practitioner_id not in enrolled:
        enrolled[practitioner_id] = await enrol_and_step_up(app, practitioner_id)
        _used_steps(app, practitioner_id).add(_step(app))
    return enrolled[practitioner_id]


async def try_enrol(app: Signpost, practitioner_id: str) -> pyotp.TOTP | None:
    """Like ensure_enrolled, for someone who may not be able to enrol (unknown, inactive, a
    switched-off service): then nothing happens and None comes back."""
    enrolled = _enrolled(app)
    if practitioner_id in enrolled:
        return enrolled[practitioner_id]
    reply = await say(app, practitioner_id, "enrol")
    if reply.challenge is None or reply.enrolment_uri is None:
        return None
    totp = totp_from(reply)
    answer = await say(
        app, practitioner_id, "code", code=code_now(app, totp), challenge_id=reply.challenge.challenge_id
    )
    if answer.outcome is not Outcome.DONE:
        return None
    enrolled[practitioner_id] = totp
    _used_steps(app, practitioner_id).add(_step(app))
    return totp


def _step(app: Signpost) -> int:
    return int(app.ctx.clock.now().timestamp()) // 30


async def answer_challenges(app: Signpost, who: str | Principal, reply: Reply) -> Reply:
    """Answer step-up challenges with real codes, as a person with an authenticator would.

    Each time step counts once, so when this step's code was already used the (fake) clock moves
    on to the next step first.
    """
    practitioner_id = who if isinstance(who, str) else who.user_id
    while reply.challenge is not None:
        found = await try_enrol(app, practitioner_id)
        if found is None:
            return reply
        totp = found
        used = _used_steps(app, practitioner_id)
        if _step(app) in used:
            app.ctx.clock.advance(seconds=30)  # type: ignore[attr-defined]  # tests run on FakeClock
        used.add(_step(app))
        reply = await say(app, who, "code", code=code_now(app, totp), challenge_id=reply.challenge.challenge_id)
    return reply


async def say_fresh(app: Signpost, who: str | Principal, text: str) -> Reply:
    """Send ``text`` and answer any step-up challenge it raises; returns the command's own reply."""
    await try_enrol(app, who if isinstance(who, str) else who.user_id)
    return await answer_challenges(app, who, await say(app, who, text))
