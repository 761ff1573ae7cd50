"""Resetting a practitioner's authenticator (lost phone, code entry paused, code checks switched off).

``reset_authenticator`` is the one way it is done, whoever does it: the credential goes (with its
enrolment links and waiting requests: ``store.people.credentials.reset``) and the practitioner is
told to send ``enrol`` for a new QR code. An admin does it on the host (`signpost totp reset`,
handlers/operator/people.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import NoticeSink
from handlers.vocabulary import Notice, Role
from store.people import credentials

NOTICE_KIND = "stepup_reset"
RESET_NOTICE = "Your Signpost authenticator was reset by {by}. To see results again, send: enrol"
RESET_BY = {Role.ADMIN: "an administrator", Role.DUTY_MANAGER: "your duty manager"}


async def reset_authenticator(
    notices: NoticeSink, session: AsyncSession, practitioner_id: str, now: datetime, *, by: Role
) -> bool:
    """Remove a practitioner's authenticator and tell them, in this transaction, that ``by`` (an
    admin, their duty manager) reset it and to send ``enrol``; False (and nobody told) when they had none."""
    existed = await credentials.reset(session, practitioner_id)
    if existed:
        told = Notice(practitioner_id, NOTICE_KIND, RESET_NOTICE.format(by=RESET_BY[by]))
        await notices.enqueue(session, [told], now)
    return existed
