"""Blind relay messages about shielded children: stored sealed under the child's data key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.keys.crypto import DecryptionError, KeyRing, open_sealed, relay_aad, seal
from store.register.children import data_key_for, first_held, still_held
from store.tables.base import UtcDateTime
from store.tables.people import RelayMessage
from store.tables.register import Child


async def seal_for_child(session: AsyncSession, keys: KeyRing, ref: int, text: str, part: str) -> bytes | None:
    """``text`` sealed under the child's data key (None once that key is gone)."""
    data_key = await data_key_for(session, keys, ref)
    return None if data_key is None else seal(data_key, text.encode(), relay_aad(ref, part))


async def open_for_child(session: AsyncSession, keys: KeyRing, ref: int, sealed: bytes, part: str) -> str | None:
    """The text back, or None when the child's data key has been destroyed."""
    data_key = await data_key_for(session, keys, ref)
    if data_key is None:
        return None
    try:
        return open_sealed(data_key, sealed, relay_aad(ref, part)).decode()
    except DecryptionError:
        return None


@dataclass(frozen=True, slots=True)
class Relay:
    id: int
    child_ref: int
    local_authority: str
    sender_id: str
    recipients: tuple[str, ...]
    recipient_role: str
    text: bytes
    reply: bytes | None
    replied_by: str | None
    created_at: datetime
    replied_at: datetime | None
    ref_withheld: bool = False  # the sender found the record by name and date of birth: never shown its reference


def _relay(row: RelayMessage) -> Relay:
    return Relay(
        row.id,
        row.child_ref,
        row.local_authority,
        row.sender_id,
        tuple(p for p in row.recipients.split(";") if p),
        row.recipient_role,
        row.text,
        row.reply,
        row.replied_by,
        row.created_at,
        row.replied_at,
        row.ref_withheld,
    )


async def sent_since(session: AsyncSession, sender_id: str, ref: int, since: datetime) -> int:
    """Messages this sender has sent about this child since ``since`` (the rate limit's count)."""
    stmt = select(func.count()).where(
        RelayMessage.sender_id == sender_id, RelayMessage.child_ref == ref, RelayMessage.created_at >= since
    )
    return int((await session.execute(stmt)).scalar_one())


async def create(
    session: AsyncSession,
    ref: int,
    local_authority: str,
    sender_id: str,
    recipients: Sequence[str],
    recipient_role: str,
    sealed: bytes,
    now: datetime,
    *,
    ref_withheld: bool = False,
) -> int:
    values = {
        "child_ref": ref,
        "local_authority": local_authority,
        "sender_id": sender_id,
        "recipients": ";".join(recipients),
        "recipient_role": recipient_role,
        "text": sealed,
        "created_at": now,
        "ref_withheld": ref_withheld,
    }
    result = await session.execute(insert(RelayMessage).values(**values).returning(RelayMessage.id))
    return int(result.scalar_one())


async def get(session: AsyncSession, keys: KeyRing, relay_id: int) -> Relay | None:
    """One relay, or None: none by that id, or its child destroyed whatever its row says (a store
    restored from a backup older than the destruction, ``destroyed_since``): as once retention has
    deleted it, never opened under a key the key file has destroyed."""
    # Read afresh, not from the session's identity map: ``readdress`` may have changed it since.
    one = select(RelayMessage).where(RelayMessage.id == relay_id).execution_options(populate_existing=True)
    found = await still_held(session, keys, one, RelayMessage.child_ref)
    return _relay(found[0]) if found else None


async def readdress(
    session: AsyncSession,
    relay_id: int,
    was: Sequence[str],
    recipients: Sequence[str],
    recipient_role: str,
    local_authority: str,
) -> bool:
    """Make ``recipients`` (chosen as ``recipient_role`` for the child of ``local_authority``) the
    only ones who may read and answer an unanswered relay, unless its recipients are no longer
    ``was`` (another worker readdressed it first): whether this did. No recipients (role "none"):
    nobody may, it was not delivered."""
    result = await session.execute(
        update(RelayMessage)
        .where(RelayMessage.id == relay_id, RelayMessage.recipients == ";".join(was), RelayMessage.reply.is_(None))
        .values(recipients=";".join(recipients), recipient_role=recipient_role, local_authority=local_authority)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]  # CursorResult at runtime


async def unanswered(session: AsyncSession, keys: KeyRing, after_id: int, limit: int) -> list[Relay]:
    """Up to ``limit`` unanswered relays that went to someone, by id after ``after_id``: those whose
    recipients may have stopped being able to take them (a queue read a page at a time)."""
    stmt = select(RelayMessage).where(
        RelayMessage.id > after_id, RelayMessage.reply.is_(None), RelayMessage.recipients != ""
    )
    rows = await first_held(session, keys, stmt, RelayMessage.child_ref, RelayMessage.id, limit)
    return [_relay(row) for row in rows]


async def answer(
    session: AsyncSession, relay_id: int, by: str, sealed: bytes, now: datetime, *, was: Sequence[str]
) -> bool:
    """Store the reply once, while the relay's recipients are still ``was`` (those the answerer was
    judged among): False when it was already answered, or handed on (``readdress``, committed by
    another worker since ``was`` was read) to someone else."""
    result = await session.execute(
        update(RelayMessage)
        .where(RelayMessage.id == relay_id, RelayMessage.recipients == ";".join(was), RelayMessage.reply.is_(None))
        .values(reply=sealed, replied_by=by, replied_at=now)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]  # CursorResult at runtime


@dataclass(frozen=True, slots=True)
class Traffic:
    """Relay traffic from one sender about one child, by the role its recipients were chosen as:
    counts and ages only. Never who received it: the relay is blind (the recipients' ids stay in
    the row, for ``taking``, and never leave the store through here)."""

    child_ref: int
    sender_id: str
    recipient_role: str
    messages: int
    answered: int
    waiting: int  # delivered (to someone) and not yet answered
    oldest_waiting: datetime | None
    last_sent: datetime


async def traffic(session: AsyncSession, authority: str | None, since: datetime) -> list[Traffic]:
    """Relay traffic about the authority's children (every authority: None) since ``since``, in one
    statement: the children's authority as it is now, whatever it was when each message was sent."""
    waiting = (RelayMessage.replied_at.is_(None)) & (RelayMessage.recipients != "")
    stmt = (
        select(
            RelayMessage.child_ref,
            RelayMessage.sender_id,
            RelayMessage.recipient_role,
            func.count(),
            func.count(RelayMessage.replied_at),
            func.count(case((waiting, 1))),
            func.min(case((waiting, RelayMessage.created_at)), type_=UtcDateTime()),
            func.max(RelayMessage.created_at, type_=UtcDateTime()),
        )
        .where(RelayMessage.created_at >= since)
        .group_by(RelayMessage.child_ref, RelayMessage.sender_id, RelayMessage.recipient_role)
    )
    if authority is not None:
        # The child's authority as the register says it now (a child who moved is reviewed where it
        # is, ``relays`` in README), not the relay's own: the children of the authority through
        # ``ix_children_local_authority``, then their relays through ``ix_relay_messages_child_created_at``.
        stmt = stmt.join(Child, Child.ref == RelayMessage.child_ref).where(Child.local_authority == authority)
    rows = [
        Traffic(ref, s, role, int(n), int(a), int(w), oldest, last)
        for ref, s, role, n, a, w, oldest, last in await session.execute(stmt)
    ]
    return sorted(rows, key=lambda t: (t.child_ref, t.sender_id, t.recipient_role))
