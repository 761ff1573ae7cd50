"""Make a practitioner fresh for step-up through the real path: enrol, then answer with a code."""

from __future__ import annotations

import pyotp

from bot.app import Signpost
from handlers.model import Outcome, Reply
from tests.factories import say


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
