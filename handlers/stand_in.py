"""Who is told instead when a notice's recipient is no longer active.

Four sorts of notice must still reach someone when the person they were addressed to has been made
inactive between queueing and delivery; each goes, with the same text and buttons, to whoever the
same query that chose its recipients chooses now (reachable first, ``handlers.recipients``), never
to anyone already told (a stand-in's dedupe key is the one the notice itself would have used for
them, and the outbox never stores a key twice):

- A request waiting for a decision must reach someone who can decide it: an access request goes to
  ``escalation_targets`` (the next duty manager of the child's authority not asked yet, then
  the admins), a registration to ``who_is_told(authority)``, as when it was opened. One decided,
  expired or escalated since has nobody to tell instead.
- A warning about a practitioner must reach someone who can act on it: a misuse alert
  (``misuse_alert``), a step-up lockout (``stepup_locked``, ``stepup_disabled``) and a reset of
  their authenticator (``stepup_reset_by``) go to ``who_is_told(their authority, excluding them)``
  (the admins when the authority has no other duty manager who can be reached), never to the duty
  manager who did the reset. Otherwise an authority whose only duty manager left would hear of
  neither possible misuse, nor a locked-out, perhaps compromised, account, nor a reset nobody asked
  for. The practitioner concerned is read from the alert's claim row (by its key) or from the
  warning's key (``handlers.recipients.WarningKey``); one who has left the register is warned
  about to the admins.

- News for the admins must reach the admins there are: a retention or decommissioning notice
  (``retention``, ``decommission``), queued for every active admin, goes to any active admin who
  does not have it yet (one appointed since, in place of one who left), keyed as theirs would have
  been; the admins who had it keep their one copy. Otherwise an admin replaced between the queueing
  and the sending would leave nobody told that storage awaits compaction or the service is to be
  switched off, or holding its destruction certificate.
- A message relayed blind about a shielded child (``relay_message``) must reach someone who can
  answer it, or its sender must learn that it did not: who may read it is the relay row's list of
  recipients, so the relay decides (``handlers.access.relay.hand_on``). Once none of its recipients
  is active and it is unanswered, the relay's own rule chooses again, as if it were sent now (the
  child's lead professional, or the authority's duty managers, then the admins): they become its
  recipients in place of those who never had it, so nobody outside that rule may read it. With
  nobody to choose, it is closed undelivered and the sender is told (``relay_undelivered``) to
  contact their own duty manager; never who it went to, nor the child's authority. While another
  recipient is active (several duty managers), they still have it and nothing changes.

Any other notice (a decision, an expiry, a lead told of a search, a relay's answer) concerns its
recipient alone: it is not sent to anyone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from functools import partial

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access import registration, relay
from handlers.access.notices import asked_of, authority_now, escalation_targets
from handlers.context import NoticeSink
from handlers.misuse.monitor import alert_of, copy_key
from handlers.recipients import WarningKey, who_is_told
from handlers.stepup.flow import LOCKOUT
from handlers.stepup.reset import MANAGERS_KEY
from handlers.vocabulary import Notice, Platform, Role
from store.audit import misuse
from store.db import after_commit
from store.delivery import outbox
from store.delivery.notices import NOT_ACTIVE as NOT_ACTIVE  # in last_error: names nobody
from store.keys.crypto import KeyRing
from store.people import access
from store.people.practitioners import get_actor, holders

log = structlog.get_logger("signpost.notify")

# The dedupe keys request_notices, registration_notices and relay_notices give each recipient's copy.
# The recipient's id is the rest, whatever it holds (an id may hold colons).
ACCESS_KEY = re.compile(r"access:(?P<request>\d+):(?P<level>\d+):.+")
REGISTRATION_KEY = re.compile(r"registration:(?P<request>\d+):.+")
RELAY_KEY = re.compile(r"relay:(?P<relay>\d+):.+")
# News every active admin is sent, each copy keyed "...:{their id}" (a retention run's later news,
# keyed "...:{id}:{n}", goes to the admins there are then anyway).
FOR_ADMINS = frozenset({"retention", "decommission"})
# The warnings about a practitioner whose keys say whom they are about (a misuse alert's claim row does).
WARNING_KEYS: tuple[WarningKey, ...] = (LOCKOUT, MANAGERS_KEY)


async def drop_for_inactive(
    notices: NoticeSink,
    keys: KeyRing,
    session: AsyncSession,
    dropped: Sequence[tuple[int, Notice]],
    now: datetime,
    reaches: Collection[Platform],
) -> int:
    """Close these notices unsent (their recipients are no longer active) and queue, in the same
    transaction, the stand-ins of those closed here (not one delivered or dropped meanwhile) that
    carry a request still waiting for a decision, a warning about a practitioner or a relayed
    message nobody active has (or its sender's "not delivered").
    How many were closed: each logged and counted as the transaction commits (``dropped_many``),
    and, when it had stand-ins, how many (``notice_stood_in``, ids and a number only)."""
    closed = set(await outbox.dropped_many(session, [notice_id for notice_id, _ in dropped], now, NOT_ACTIVE))
    for notice_id, notice in dropped:
        if notice_id not in closed:  # delivered or dropped meanwhile: what closed it stands
            continue
        told = await notices.enqueue(session, await stand_ins(session, keys, notice, now, reaches), now)
        if told:
            after_commit(session, partial(log.info, "notice_stood_in", notice_id=notice_id, stand_ins=told))
    return len(closed)


async def stand_ins(
    session: AsyncSession, keys: KeyRing, notice: Notice, now: datetime, reaches: Collection[Platform]
) -> list[Notice]:
    """Copies of ``notice`` for whoever decides in its inactive recipient's place (none if nobody
    should); a relayed message goes to whoever it can reach on ``reaches`` (``relay.hand_on``)."""
    key = notice.dedupe_key or ""
    if notice.kind == "access_request" and (found := ACCESS_KEY.fullmatch(key)):
        return await _access_request(session, keys, notice, int(found["request"]), int(found["level"]), reaches)
    if notice.kind == "registration_request" and (found := REGISTRATION_KEY.fullmatch(key)):
        return await _registration(session, notice, int(found["request"]), reaches)
    if notice.kind in FOR_ADMINS and key.endswith(f":{notice.recipient_id}"):
        admins = await holders(session, Role.ADMIN, excluding=(notice.recipient_id,))
        return _readdressed(notice, admins, _after(key.removesuffix(f":{notice.recipient_id}")))
    if notice.kind == "relay_message" and (found := RELAY_KEY.fullmatch(key)):
        return await relay.hand_on(session, keys, int(found["relay"]), now, reaches)
    if (alert := alert_of(notice)) is not None:
        return await _misuse_alert(session, notice, alert, reaches)
    if (warning := next((w for k in WARNING_KEYS if (w := k.read(notice)) is not None), None)) is not None:
        warned = await _warned_about(session, notice.kind, warning.about, reaches, warning.excluding)
        return _readdressed(notice, warned, _after(warning.shared))
    return []


async def _access_request(
    session: AsyncSession, keys: KeyRing, notice: Notice, request_id: int, level: int, reaches: Collection[Platform]
) -> list[Notice]:
    row = await access.get_request(session, keys, request_id)
    if row is None or row.state != access.PENDING or row.escalation_level != level:
        return []  # decided, expired, or already with the next person on the list
    authority = await authority_now(session, keys, row)
    asked = await asked_of(session, row)
    recipients, _ = await escalation_targets(session, authority, row.requester_id, reaches, asked)
    if not recipients:  # past the end of a list that has shrunk: the admins, as at its last level
        recipients = await who_is_told(session, reaches, None, kind=notice.kind, excluding=(row.requester_id,))
    return _readdressed(notice, recipients, _after(f"access:{request_id}:{level}"))


async def _registration(
    session: AsyncSession, notice: Notice, request_id: int, reaches: Collection[Platform]
) -> list[Notice]:
    row = await access.get_registration(session, request_id)
    if row is None or row.state != access.PENDING:
        return []
    authority = await registration.authority_now(session, row)
    managers = await who_is_told(session, reaches, authority, kind=notice.kind, excluding=(row.practitioner_id,))
    return _readdressed(notice, managers, _after(f"registration:{request_id}"))


async def _misuse_alert(
    session: AsyncSession, notice: Notice, alert: str, reaches: Collection[Platform]
) -> list[Notice]:
    concerned = await misuse.raised_about(session, alert)
    if concerned is None:
        return []  # no alert was claimed by that key: nothing Signpost raised
    managers = await _warned_about(session, notice.kind, concerned, reaches)
    return _readdressed(notice, managers, lambda pid: copy_key(alert, pid))


async def _warned_about(
    session: AsyncSession,
    kind: str,
    practitioner_id: str,
    reaches: Collection[Platform],
    excluding: Collection[str] = (),
) -> Iterable[str]:
    """Who is warned about a practitioner: their authority's duty managers but them (and ``excluding``,
    who did what it reports), or the admins (reachable first, ``handlers.recipients``); the admins
    alone for one no longer in the register (their authority is unknown)."""
    actor = await get_actor(session, practitioner_id)
    authority = None if actor is None else actor.local_authority
    left_out = (practitioner_id, *excluding)
    return await who_is_told(session, reaches, authority, kind=kind, excluding=left_out)


def _after(key_prefix: str) -> Callable[[str], str]:
    """The dedupe key of each recipient's copy: the notice's own key, then their id."""
    return lambda pid: f"{key_prefix}:{pid}"


def _readdressed(notice: Notice, recipients: Iterable[str], key_for: Callable[[str], str]) -> list[Notice]:
    return [
        Notice(pid, notice.kind, notice.text, notice.buttons, key_for(pid))
        for pid in recipients
        if pid != notice.recipient_id
    ]
