"""Who is told instead when a notice's recipient is no longer active.

A request waiting for a decision must still reach someone who can decide it. An access request
or a registration addressed to someone who has since been made inactive goes, with the same text
and buttons, to whoever the same query chooses now: ``escalation_targets`` at the notice's level
for an access request (the next duty manager of the child's authority, then the admins), and
``holders(duty_manager, authority)`` for a registration, as when it was opened. Those already told
are not told again (the stand-in's dedupe key is the one the request itself would have used for
them). A request decided, expired or escalated since has nobody to tell instead. Any other notice
(a decision, an expiry, a relay) concerns its recipient alone: it is not sent to anyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access.notices import escalation_targets
from handlers.context import NoticeSink
from handlers.vocabulary import Notice, Role
from store.delivery import outbox
from store.people import access
from store.people.practitioners import holders

log = structlog.get_logger("signpost.notify")
NOT_ACTIVE = "not sent: recipient not active"  # recorded in last_error: names nobody

# The dedupe keys request_notices and registration_notices give each recipient's copy.
ACCESS_KEY = re.compile(r"access:(?P<request>\d+):(?P<level>\d+):[^:]+")
REGISTRATION_KEY = re.compile(r"registration:(?P<request>\d+):[^:]+")


async def drop_for_inactive(
    notices: NoticeSink, session: AsyncSession, dropped: Sequence[tuple[int, Notice]], now: datetime
) -> None:
    """Close these notices unsent (their recipients are no longer active) and queue, in the same
    transaction, the stand-ins of any that carry a request still waiting for a decision."""
    await outbox.dropped_many(session, [notice_id for notice_id, _ in dropped], now, NOT_ACTIVE)
    for notice_id, notice in dropped:
        told = await notices.enqueue(session, await stand_ins(session, notice), now)
        log.info("notice_dropped", notice_id=notice_id, kind=notice.kind, reason=NOT_ACTIVE, stand_ins=told)


async def stand_ins(session: AsyncSession, notice: Notice) -> list[Notice]:
    """Copies of ``notice`` for whoever decides in its inactive recipient's place (none if nobody should)."""
    key = notice.dedupe_key or ""
    if notice.kind == "access_request" and (found := ACCESS_KEY.fullmatch(key)):
        return await _access_request(session, notice, int(found["request"]), int(found["level"]))
    if notice.kind == "registration_request" and (found := REGISTRATION_KEY.fullmatch(key)):
        return await _registration(session, notice, int(found["request"]))
    return []


async def _access_request(session: AsyncSession, notice: Notice, request_id: int, level: int) -> list[Notice]:
    row = await access.get_request(session, request_id)
    if row is None or row.state != access.PENDING or row.escalation_level != level:
        return []  # decided, expired, or already with the next person on the list
    recipients, _ = await escalation_targets(session, row.local_authority, level, row.requester_id)
    if not recipients:  # past the end of a list that has shrunk: the admins, as at its last level
        recipients = await holders(session, Role.ADMIN, excluding=(row.requester_id,))
    return _readdressed(notice, recipients, f"access:{request_id}:{level}")


async def _registration(session: AsyncSession, notice: Notice, request_id: int) -> list[Notice]:
    row = await access.get_registration(session, request_id)
    if row is None or row.state != access.PENDING:
        return []
    managers = await holders(session, Role.DUTY_MANAGER, row.local_authority, excluding=(row.practitioner_id,))
    return _readdressed(notice, managers, f"registration:{request_id}")


def _readdressed(notice: Notice, recipients: Iterable[str], key_prefix: str) -> list[Notice]:
    return [
        Notice(pid, notice.kind, notice.text, notice.buttons, f"{key_prefix}:{pid}")
        for pid in recipients
        if pid != notice.recipient_id
    ]
