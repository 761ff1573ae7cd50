"""Step-up credentials: encrypted TOTP seeds, throttling state, enrolment tokens, parked commands.

- A seed is sealed with the key-encryption key from the key file (AES-GCM) with the practitioner
  id bound in as associated data, so a ciphertext copied onto another practitioner's row fails
  to decrypt.
- Throttling lives in the database (shared by every process and kept across restarts); every
  change to it is one conditional UPDATE, so concurrent submissions cannot both succeed.
- Enrolment tokens are stored only as SHA-256 digests, marked spent when redeemed (single use) and
  deleted when a dead one is pressed again (that press audited once).
- A command waiting for a code is parked here, its text sealed (it may hold a child's name),
  under an opaque challenge id that is all a front end ever holds.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from handlers.vocabulary import REACHED_OUTCOMES, Platform, Principal
from store.audit.log import cohort_destroyed
from store.db import Database
from store.delivery.deliveries import stored_key
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.prepared import Prepared
from store.skew import ahead_after, stamped_ahead
from store.tables.audit import AuditEvent
from store.tables.people import CHALLENGE_ID_LENGTH, ChatIdentity, EnrolmentToken, ParkedCommand, TotpCredential

PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time Signpost stores is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# -- credentials -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialState:
    """A credential's policy state (never its seed)."""

    practitioner_id: str
    state: str
    last_step: int
    failures: int
    locked_until: datetime | None
    stepped_up_at: datetime | None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def state_of(row: Any) -> CredentialState:
    """From a credential row, or a row holding ``CREDENTIAL_COLUMNS``."""
    return CredentialState(
        practitioner_id=row.practitioner_id,
        state=row.state,
        last_step=row.last_step,
        failures=row.failures,
        locked_until=aware(row.locked_until),
        stepped_up_at=aware(row.stepped_up_at),
    )


def seed_aad(practitioner_id: str) -> bytes:
    return b"signpost:totp-seed:" + practitioner_id.encode("utf-8")


_CREDENTIALS = TotpCredential.__table__
# The step-up state (never the seed): what ``state_of`` reads.
CREDENTIAL_COLUMNS = tuple(
    _CREDENTIALS.c[name]
    for name in ("practitioner_id", "state", "last_step", "failures", "locked_until", "stepped_up_at")
)
# Built once, in Core, and always fresh from the database. (The step-up gate reads the asker's
# credential with their standing: ``store.people.standing``.)
_GET = Prepared(select(*CREDENTIAL_COLUMNS).where(_CREDENTIALS.c.practitioner_id == bindparam("id")))


async def get(session: AsyncSession, practitioner_id: str) -> CredentialState | None:
    row = await _GET.first(session, {"id": practitioner_id})
    return None if row is None else state_of(row)


async def load_seed(session: AsyncSession, keys: KeyRing, practitioner_id: str) -> bytes | None:
    """Decrypt a practitioner's seed; raises DecryptionError if the ciphertext is not theirs."""
    row = (
        await session.execute(
            select(TotpCredential.kek_id, TotpCredential.seed).where(TotpCredential.practitioner_id == practitioner_id)
        )
    ).first()
    if row is None:
        return None
    return keys.unwrap(row.kek_id, row.seed, seed_aad(practitioner_id))


async def enrol(session: AsyncSession, keys: KeyRing, practitioner_id: str, seed: bytes, now: datetime) -> None:
    """Replace any credential with a new pending one; earlier enrolment links die with it."""
    await reset(session, practitioner_id, keep_parked=True)
    kek_id, sealed = keys.wrap(seed, seed_aad(practitioner_id))
    session.add(
        TotpCredential(
            practitioner_id=practitioner_id,
            state=PENDING,
            kek_id=kek_id,
            seed=sealed,
            last_step=0,
            failures=0,
            created_at=now,
        )
    )
    await session.flush()


async def reset(session: AsyncSession, practitioner_id: str, *, keep_parked: bool = False) -> bool:
    """Remove a credential and its enrolment links (and, unless kept, parked commands), and with
    it every code its chat accounts were given: none of them covers anything after a reset."""
    removed = await session.execute(
        delete(TotpCredential)
        .where(TotpCredential.practitioner_id == practitioner_id)
        .returning(TotpCredential.practitioner_id)
    )
    existed = removed.first() is not None
    await session.execute(
        update(ChatIdentity)
        .where(ChatIdentity.practitioner_id == practitioner_id, ChatIdentity.stepped_up_at.is_not(None))
        .values(stepped_up_at=None)
    )
    await session.execute(delete(EnrolmentToken).where(EnrolmentToken.practitioner_id == practitioner_id))
    if not keep_parked:
        await session.execute(delete(ParkedCommand).where(ParkedCommand.practitioner_id == practitioner_id))
    return existed


def _unused(step: int, ahead_step: int) -> ColumnElement[bool]:
    """``step`` is later than the last step accepted (or spent), or that one is later than
    ``ahead_step`` (the step of ``store.skew.ahead_after`` the time codes are checked against):
    accepted while the host's clock read later than now, it was never shown by an authenticator
    at a time this clock has reached, and would refuse every code as used until that date."""
    t = TotpCredential
    return (t.last_step < step) | (t.last_step > ahead_step)


async def accept_step(
    session: AsyncSession, practitioner_id: str, step: int, now: datetime, typed_in: Principal, ahead_step: int
) -> bool:
    """Record a good code typed in the account ``typed_in``, atomically: only a time step later
    than the last accepted one counts (``_unused``).

    The condition sits in the UPDATE itself, so of two concurrent submissions of one code exactly
    one changes the row (PostgreSQL re-checks the WHERE after the first commits; SQLite writers
    are serialised). A success confirms a pending credential and resets the failure count. When
    it was typed is kept where it was typed: on the credential for the console, on the linked
    chat account for a chat (``ChatIdentity.stepped_up_at``); a code covers its own account only
    (``handlers.stepup.flow.is_fresh``).
    """
    t = TotpCredential
    console = typed_in.platform is Platform.CONSOLE
    result = await session.execute(
        update(t)
        .where(
            t.practitioner_id == practitioner_id,
            _unused(step, ahead_step),
            t.state.in_((PENDING, ACTIVE)),
            or_(t.locked_until.is_(None), t.locked_until <= now),
        )
        .values(
            last_step=step,
            failures=0,
            locked_until=None,
            state=ACTIVE,
            confirmed_at=func.coalesce(t.confirmed_at, now),
            stepped_up_at=now if console else t.stepped_up_at,
        )
        .returning(t.practitioner_id)
    )
    if result.first() is None:
        return False
    if not console:
        i = ChatIdentity
        await session.execute(
            update(i)
            .where(
                i.platform == typed_in.platform.value,
                i.tenant == typed_in.tenant,
                i.user_id == typed_in.user_id,
                i.practitioner_id == practitioner_id,
            )
            .values(stepped_up_at=now)
        )
    return True


async def spend_step(session: AsyncSession, practitioner_id: str, step: int, ahead_step: int) -> None:
    """Count ``step`` as used without a good code at the prompt (a code written into free text,
    handlers.stepup.flow.spend_shown): its code, and any earlier one, is refused as used already,
    as after ``accept_step``; nothing else changes (neither freshness, failures nor state)."""
    t = TotpCredential
    await session.execute(
        update(t).where(t.practitioner_id == practitioner_id, _unused(step, ahead_step)).values(last_step=step)
    )


@dataclass(frozen=True, slots=True)
class Failure:
    failures: int
    locked_until: datetime | None
    state: str
    newly_locked: bool
    newly_disabled: bool


async def record_failure(
    session: AsyncSession,
    practitioner_id: str,
    now: datetime,
    *,
    lock_after: int,
    lock_for: timedelta,
    disable_after: int,
) -> Failure | None:
    """Count one wrong code; every ``lock_after`` in a row locks, ``disable_after`` disables."""
    t = TotpCredential
    count = t.failures + 1
    result = await session.execute(
        update(t)
        .where(t.practitioner_id == practitioner_id, t.state != DISABLED)
        .values(
            failures=count,
            locked_until=case((count % lock_after == 0, now + lock_for), else_=t.locked_until),
            state=case((count >= disable_after, DISABLED), else_=t.state),
        )
        .returning(t.failures, t.locked_until, t.state)
    )
    row = result.first()
    if row is None:
        return None
    failures, locked_until, state = row
    return Failure(
        failures=failures,
        locked_until=aware(locked_until),
        state=state,
        newly_locked=failures % lock_after == 0 and state != DISABLED,
        newly_disabled=state == DISABLED,
    )


async def used_since(session: AsyncSession, practitioner_id: str, account: Principal, since: datetime) -> bool:
    """Whether the audit log shows a result for this practitioner, asked for from ``account``,
    at or after ``since`` (use in another of their accounts keeps none of this one fresh).

    The idle window is read from the audit trail (one seek on its (actor_id, at) index) rather
    than kept by writing on every search: a search stays a read, and a burst of them never
    queues for the write lock.
    """
    found = await session.execute(
        select(AuditEvent.seq)
        .where(
            AuditEvent.actor_id == practitioner_id,
            AuditEvent.at >= since,
            AuditEvent.platform == account.platform.value,
            AuditEvent.tenant == account.tenant,
            AuditEvent.user_id == account.user_id,
            # Outcomes only a stepped-up command gives: the audit log's record of them is the "last use".
            AuditEvent.outcome.in_(REACHED_OUTCOMES),
        )
        .limit(1)
    )
    return found.first() is not None


# -- enrolment tokens ------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue_token(session: AsyncSession, practitioner_id: str, now: datetime, ttl: timedelta) -> str:
    """A new unguessable one-time token; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    session.add(
        EnrolmentToken(
            token_hash=token_digest(token),
            practitioner_id=practitioner_id,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return token


def _token_dead(created_at: datetime, expires_at: datetime, now: datetime) -> bool:
    """Spent (its expiry set to its creation), past its expiry, or issued by a clock ahead of
    ``now``'s (``store.skew``: a link made while the host's clock read years on is dead once the
    clock is put right, not live until that date)."""
    created, expiry = aware(created_at), aware(expires_at)
    if created is None or expiry is None:
        return True
    return expires_at == created_at or expiry <= now or stamped_ahead(created, now)


async def token_is_live(session: AsyncSession, token: str, now: datetime) -> bool:
    """Whether a token would redeem now, without spending it (a page that only offers the button)."""
    row = await _token_row(session, token_digest(token))
    return row is not None and not _token_dead(row[1], row[2], now)


async def _token_row(session: AsyncSession, digest: str) -> Row[str, datetime, datetime] | None:
    """The enrolment token's (practitioner id, created at, expires at) by its hash, or None."""
    e = EnrolmentToken
    query = select(e.practitioner_id, e.created_at, e.expires_at).where(e.token_hash == digest)
    return (await session.execute(query)).first()


async def redeem_token(session: AsyncSession, token: str, now: datetime) -> str | None:
    """Spend a token (so it works once); the practitioner id, or None if dead. A spent token's row
    is kept, marked spent (its expiry set to its creation), so that the next press of it can be
    told apart from a guess and recorded under its practitioner (``retire_dead_token``, which
    removes it); else removed with the practitioner's credential (``reset``)."""
    e = EnrolmentToken
    digest = token_digest(token)
    row = await _token_row(session, digest)
    if row is None:
        return None
    practitioner_id, created_at, expires_at = row
    if _token_dead(created_at, expires_at, now):
        return None
    spent = await session.execute(
        update(e)
        .where(e.token_hash == digest, e.expires_at == expires_at)
        .values(expires_at=e.created_at)
        .returning(e.practitioner_id)
    )
    return practitioner_id if spent.first() is not None else None  # else another press spent it first


async def retire_dead_token(session: AsyncSession, token: str, now: datetime) -> tuple[str, str] | None:
    """For a token that no longer redeems: the practitioner it was issued to and why it is dead
    ("link already used", "link expired"), removing its row so that this is answered once per token
    (the caller audits it in the same transaction; a later press is an unknown token, as anyone
    could press a dead link without end). None for a token never issued, removed since (by an
    earlier press, even a concurrent one), or still live."""
    e = EnrolmentToken
    digest = token_digest(token)
    row = await _token_row(session, digest)
    if row is None:
        return None
    practitioner_id, created_at, expires_at = row
    spent = expires_at == created_at
    if not _token_dead(created_at, expires_at, now):
        return None
    gone = await session.execute(
        delete(e).where(e.token_hash == digest, e.expires_at == expires_at).returning(e.practitioner_id)
    )
    if gone.first() is None:
        return None
    return practitioner_id, "link already used" if spent else "link expired"


# -- parked commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parked:
    """A claimed parked command. ``spec_name`` None: it only confirmed an enrolment. ``lost``: what
    was typed can no longer be read, as retention destroyed its key while it waited (``text`` is
    empty then); it must be sent again, not run as nothing."""

    spec_name: str | None
    channel: str
    text: str
    idempotency_key: str | None
    expired: bool
    lost: bool = False


def _parked_aad(challenge_id: str, principal: Principal) -> bytes:
    return f"signpost:parked:{challenge_id}:{principal}".encode()


def _seal_parked(
    keys: KeyRing,
    text: str,
    aad: bytes,
    now: datetime,
    born: date | None,
    child_kek: str | None = None,
    child_destroyed: bool = False,
) -> tuple[str, bytes]:
    """What was typed, sealed so that it dies with what it names: a command naming a child by
    reference under the key that child's data key is wrapped under (its birth day's cohort key:
    ``child_kek``), so destroying the child makes it unreadable, as it does the challenged event's
    terms (under the month's key, a backup taken while a request naming a child waited for its code
    kept its purpose readable for two years after the child was destroyed); a search naming a date
    of birth under that date's cohort key, destroyed with every child born that day at 24. A
    child's key is used with a date of birth only when it is that date's cohort key, as the audit
    log does.

    Anything else (a request's or a relay's id with a reason or a message that may name the child,
    a practitioner's id), a child already destroyed (``child_destroyed``) or a date whose cohort is
    destroyed already: under the key retention destroys next but one (``_soon_destroyed``). A
    command waits ten minutes at most, so a backup's copy is unreadable within two days, never two
    years, and the command still runs when its code comes (on any replica). This month's key only
    with no day chain to take a slot from, the master key only where no month key is held either
    (a ring without its chains).

    A key can still go while its command waits (a child who turns 24 at midnight): ``claim`` says
    the command is lost then."""
    today = now.date()
    named = child_kek is not None and not child_destroyed and _cohort_key(keys, child_kek)
    if born is not None and not child_destroyed and not cohort_destroyed(keys, born, today):
        slot = keychain.day_slot(born)
    elif named:
        slot = None
    else:
        slot = _soon_destroyed(keys, today)
    cohort = None if slot is None else keychain.key_for(keys, keychain.Chain.DAY, slot)
    if named and cohort in (None, child_kek):
        cohort = child_kek
    if cohort is not None:
        return cohort, keychain.wrap_under(keys, cohort, text.encode("utf-8"), aad)
    month = keychain.month_key(keys, f"{now:%Y-%m}")
    if month is None:
        return keys.wrap(text.encode("utf-8"), aad)
    return month, keychain.wrap_under(keys, month, text.encode("utf-8"), aad)


def _cohort_key(keys: KeyRing, kek_id: str) -> bool:
    """Whether ``kek_id`` is a birth day's cohort key this ring holds: retention destroys it with
    the children born that day. Not the master key, which wraps the data key of a child in a store
    from before cohort keys until seal-in moves it, and which nothing destroys."""
    return kek_id in keys.keks and kek_id[:1] == "d"  # a day chain's id (keychain.kek_id)


def _soon_destroyed(keys: KeyRing, today: date) -> int | None:
    """The day-chain slot retention punctures the day after tomorrow: the cohort turning 24
    tomorrow is destroyed then, perhaps while a command waits for its code; the next one a day
    later. Counted from ``today``, not from the key file's cutoff: after days without a run the
    cutoff lags, and the run that catches up destroys every cohort up to today's at once.
    None when there is no day chain."""
    cutoff = keychain.cutoff_of(keys, keychain.Chain.DAY)
    if cutoff is None:
        return None
    return max(cutoff, keychain.day_slot(keychain.first_retained_dob(today))) + 1


async def park(
    session: AsyncSession,
    keys: KeyRing,
    *,
    principal: Principal,
    practitioner_id: str,
    spec_name: str | None,
    channel: str,
    text: str,
    now: datetime,
    ttl: timedelta,
    idempotency_key: str | None = None,
    born: date | None = None,
    child_kek: str | None = None,
    child_destroyed: bool = False,
) -> str:
    """Store a command until a code arrives; returns its opaque challenge id. ``born``: the date
    of birth the command names, whose cohort key seals it; ``child_kek``: the key the data key of
    the child it names by reference is wrapped under, which seals it instead; ``child_destroyed``:
    that child is destroyed already (``_seal_parked``)."""
    await drop_expired(session, now)
    challenge_id = secrets.token_urlsafe(24)
    aad = _parked_aad(challenge_id, principal)
    kek_id, sealed = _seal_parked(keys, text, aad, now, born, child_kek, child_destroyed) if text else (None, None)
    session.add(
        ParkedCommand(
            challenge_id=challenge_id,
            practitioner_id=practitioner_id,
            platform=principal.platform.value,
            tenant=principal.tenant,
            user_id=principal.user_id,
            spec_name=spec_name,
            channel=channel,
            idempotency_key=None if idempotency_key is None else stored_key(idempotency_key),
            kek_id=kek_id,
            text=sealed,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    return challenge_id


async def drop_expired(session: AsyncSession, now: datetime) -> int:
    """Delete parked commands whose code never came (each park does it, and so does the scheduler
    every minute: what was typed is not kept past its time), and those parked by a clock ahead of
    ``now``'s (``store.skew``; read through the expiry's index: a start ahead is an expiry ahead, and
    none is parked for more than minutes); returns how many."""
    p = ParkedCommand
    ahead = (p.expires_at > ahead_after(now)) & (p.created_at > ahead_after(now))
    result = await session.execute(delete(p).where((p.expires_at < now) | ahead))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # CursorResult has rowcount


async def forget_expired_parked(db: Database, now: datetime) -> int:
    """The scheduler's minute task: ``drop_expired`` in a write transaction of its own."""
    async with db.write() as session:
        return await drop_expired(session, now)


async def waiting(
    session: AsyncSession, practitioner_id: str, principal: Principal, idempotency_key: str, now: datetime
) -> str | None:
    """The challenge id of this delivery or click when it is parked already and its code is still
    awaited (the same button clicked again, the same request delivered again), else None."""
    p = ParkedCommand
    found = await session.execute(
        select(p.challenge_id)
        .where(
            p.practitioner_id == practitioner_id,  # indexed; a person has a handful parked at most
            p.platform == principal.platform.value,
            p.tenant == principal.tenant,
            p.user_id == principal.user_id,
            p.idempotency_key == stored_key(idempotency_key),
            p.expires_at > now,
            p.created_at <= ahead_after(now),
        )
        .order_by(p.created_at.desc())
        .limit(1)
    )
    return found.scalar()


def _could_be_parked(challenge_id: str) -> bool:
    """Whether ``challenge_id`` could name a parked command: an id ``park`` made is printable and fits
    its column. One sent back holding a NUL (a forged modal or card) cannot even be asked of
    PostgreSQL, which refuses the query; it names nothing, as an unknown id does."""
    return challenge_id.isprintable() and len(challenge_id) <= CHALLENGE_ID_LENGTH


async def is_parked(session: AsyncSession, challenge_id: str, principal: Principal) -> bool:
    if not _could_be_parked(challenge_id):
        return False
    p = ParkedCommand
    found = await session.execute(select(p.challenge_id).where(*_belongs(challenge_id, principal)))
    return found.first() is not None


def _belongs(challenge_id: str, principal: Principal) -> tuple[ColumnElement[bool], ...]:
    p = ParkedCommand
    return (
        p.challenge_id == challenge_id,
        p.platform == principal.platform.value,
        p.tenant == principal.tenant,
        p.user_id == principal.user_id,
    )


async def claim(
    session: AsyncSession, keys: KeyRing, challenge_id: str, principal: Principal, now: datetime
) -> Parked | None:
    """Take a parked command out (a DELETE, so of two claims only one gets it); None if absent.
    Its key destroyed while it waited (``_seal_parked``): taken out all the same, and ``lost``."""
    if not _could_be_parked(challenge_id):
        return None
    p = ParkedCommand
    result = await session.execute(
        delete(p)
        .where(*_belongs(challenge_id, principal))
        .returning(p.spec_name, p.channel, p.idempotency_key, p.kek_id, p.text, p.created_at, p.expires_at)
    )
    row = result.first()
    if row is None:
        return None
    spec_name, channel, idempotency_key, kek_id, sealed, created_at, expires_at = row
    expiry, created = aware(expires_at), aware(created_at)
    expired = expiry is None or expiry <= now or created is None or stamped_ahead(created, now)
    if sealed is None or kek_id is None:
        return Parked(spec_name, channel, "", idempotency_key, expired)
    if kek_id not in keys.keks:  # destroyed; a key held that fails to open it still raises (tampering)
        return Parked(spec_name, channel, "", idempotency_key, expired, lost=True)
    text = keys.unwrap(kek_id, sealed, _parked_aad(challenge_id, principal)).decode("utf-8")
    return Parked(spec_name, channel, text, idempotency_key, expired)
