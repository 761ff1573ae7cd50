"""Practitioners' credentials and chat links, managed from the terminal (each change audited).

The practitioner concerned is named in the event's detail, not as its actor: the operator acted,
not them, so misuse rules never see a terminal event as the practitioner's own use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import authorities
from handlers.access.requests import unlink_and_tell
from handlers.commands import all_specs
from handlers.context import Context
from handlers.help import SWITCHED_OFF as HELP_SWITCHED_OFF
from handlers.help import destruction_said, first_code_asked_at, may_search
from handlers.lifecycle.flows import SWITCHED_OFF as GATE_SWITCHED_OFF
from handlers.operator.common import Audit, Refused
from handlers.operator.decommissioned import refuse_without_keys
from handlers.stepup import totp
from handlers.stepup.reset import reset_authenticator
from handlers.vocabulary import NO_SUCH_PRACTITIONER, Actor, Role
from store.lifecycle import decommission
from store.people import access, credentials, practitioners
from store.people.credentials import ACTIVE, PENDING
from store.people.practitioners import ACTIVE_STATUS, INACTIVE_STATUS, LinkedIdentity


async def _actor(session: AsyncSession, practitioner_id: str) -> Actor:
    actor = await practitioners.get_actor(session, practitioner_id)
    if actor is None:
        raise Refused(NO_SUCH_PRACTITIONER, reason="no such practitioner")
    return actor


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A pending authenticator: ``uri`` carries the new secret, for the terminal's QR code only."""

    practitioner_id: str
    uri: str
    # A confirmed authenticator it replaced was reset (``reset_authenticator``): the role of those
    # told besides the practitioner; None when it replaced none, or nobody else could be told.
    told: Role | None = None
    replaced: bool = False
    # What their first code is asked at, after "at their first" (``handlers.help.first_code_asked_at``).
    first_code_at: str = "search"


async def totp_enrol(ctx: Context, audit: Audit, practitioner_id: str, *, replace: bool) -> Enrolment:
    """Issue a new authenticator secret; active after the practitioner's first good code. One they
    had confirmed (working, which takes ``replace``, or switched off) goes as a reset does
    (``reset_authenticator``): they hear of it on every contact on record, and their duty managers too."""
    refuse_without_keys(ctx)  # the secret is sealed under the current key
    now = ctx.clock.now()
    seed = totp.new_seed()
    async with ctx.db.write() as session:
        actor = await _actor(session, practitioner_id)
        audit.detail = f"for {actor.practitioner_id}"
        if actor.status != ACTIVE_STATUS:
            # A leaver's authenticator was removed as they left, and one they return to must be
            # new: one issued while they were away would be waiting for them on their return.
            raise Refused(
                f"{actor.practitioner_id} has left; if they are back, run `signpost practitioner return "
                f"{actor.practitioner_id}` first, then enrol them",
                reason="practitioner not active",
            )
        existing = await credentials.get(session, actor.practitioner_id)
        if existing is not None and existing.state == ACTIVE and not replace:
            raise Refused(
                f"{actor.practitioner_id} already has a working authenticator; "
                "add --replace to issue a new one (the old one stops working)",
                reason="already enrolled, no --replace",
            )
        told = None
        if existing is not None and existing.state != PENDING:  # one they confirmed: taken away as a reset is
            told = await reset_authenticator(ctx, session, actor, now, replaced=True)
        await credentials.enrol(session, ctx.keys, actor.practitioner_id, seed, now)
        removed = "" if told is None else f"credential removed for {actor.practitioner_id}; "
        await audit.done_in(session, f"{removed}enrolment started for {actor.practitioner_id}")
    uri = totp.provisioning_uri(seed, actor.practitioner_id)
    told_role = None if told is None else told.role
    at = first_code_asked_at(all_specs(), actor)
    return Enrolment(actor.practitioner_id, uri, told_role, replaced=told is not None, first_code_at=at)


@dataclass(frozen=True, slots=True)
class Reset:
    practitioner_id: str
    existed: bool
    told: Role | None = None  # whom it was told besides the practitioner (``reset_authenticator``)


async def totp_reset(ctx: Context, audit: Audit, practitioner_id: str) -> Reset:
    """Remove a credential (lost phone, locked, disabled), tell the practitioner to enrol again and
    their authority's duty managers that an admin reset it (``reset_authenticator``, as their duty
    manager's ``reset`` in chat)."""
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        actor = await _actor(session, practitioner_id)
        told = await reset_authenticator(ctx, session, actor, now)
        detail = f"{'nothing to reset' if told is None else 'credential removed'} for {actor.practitioner_id}"
        await audit.done_in(session, detail)
    return Reset(actor.practitioner_id, told is not None, None if told is None else told.role)


async def unlink(ctx: Context, audit: Audit, practitioner_id: str, platform: str | None) -> int:
    """Remove a practitioner's chat links (on one platform, or all); how many were removed."""
    target = practitioner_id.strip().upper()
    async with ctx.db.write() as session:
        if await practitioners.get_actor(session, target) is None:
            raise Refused(NO_SUCH_PRACTITIONER, reason="no such practitioner")
        count = await unlink_and_tell(ctx.notices, session, target, platform, ctx.clock.now())
        await audit.done_in(session, f"{target} {platform or 'all'} {count}")
    return count


@dataclass(frozen=True, slots=True)
class Standing:
    """A practitioner's standing after ``leave`` or ``come_back``; ``changed`` is False when it
    already was so (the command is safe to repeat)."""

    practitioner_id: str
    changed: bool
    authenticator_removed: bool = False


async def leave(ctx: Context, audit: Audit, practitioner_id: str) -> Standing:
    """Record that a practitioner has left. From the commit on, every command of theirs is refused
    ("not active"; the dispatch chain), no notice is delivered to them (their waiting decisions and
    warnings go to stand-ins; handlers/stand_in.py), they are told of no lookups, and their
    signposts keep the role, organisation and service but say they are no longer in post instead of
    giving their phone and email. Their authenticator is removed, so a returner enrols again; their
    undecided access requests and the registrations asking to act as them are closed and their
    grants end (``access.close_for_leaver``), so a returner sees no shielded record without a new
    decision; their chat links stay, so their
    account is answered "not active" rather than offered registration."""
    target = practitioner_id.strip().upper()
    async with ctx.db.write() as session:
        actor = await _actor(session, target)
        if actor.status != ACTIVE_STATUS:
            await audit.done_in(session, f"{actor.practitioner_id} had already left")
            return Standing(actor.practitioner_id, changed=False)
        await practitioners.set_status(session, actor.practitioner_id, INACTIVE_STATUS)
        removed = await credentials.reset(session, actor.practitioner_id)
        closed = await access.close_for_leaver(session, actor.practitioner_id, ctx.clock.now())
        said = ["authenticator removed" if removed else "no authenticator"]
        said += [f"{closed.requests} access request(s) closed undecided"] if closed.requests else []
        said += [f"{closed.grants} grant(s) ended"] if closed.grants else []
        said += [f"{closed.registrations} registration(s) closed undecided"] if closed.registrations else []
        await audit.done_in(session, f"{actor.practitioner_id} left; {'; '.join(said)}")
    return Standing(actor.practitioner_id, changed=True, authenticator_removed=removed)


async def come_back(ctx: Context, audit: Audit, practitioner_id: str) -> Standing:
    """Make a practitioner who had left active again (with the roles the register holds). They have
    no authenticator until an admin enrols them (``signpost totp enrol``)."""
    target = practitioner_id.strip().upper()
    async with ctx.db.write() as session:
        actor = await _actor(session, target)
        if actor.status == ACTIVE_STATUS:
            await audit.done_in(session, f"{actor.practitioner_id} was already active")
            return Standing(actor.practitioner_id, changed=False)
        await practitioners.set_status(session, actor.practitioner_id, ACTIVE_STATUS)
        # None should be left (leaving removes it, and none is issued to a leaver), but a store
        # older than that rule may hold one: a returner's authenticator is always a new one.
        removed = await credentials.reset(session, actor.practitioner_id)
        also = "; an authenticator left from before was removed" if removed else ""
        await audit.done_in(session, f"{actor.practitioner_id} active again{also}")
    return Standing(actor.practitioner_id, changed=True)


async def linked(ctx: Context, audit: Audit, authority: str | None) -> list[LinkedIdentity]:
    """Practitioners with chat links (ids, authorities, roles and platforms only), of every
    authority or of the one ``authority`` names (in any case and spacing); audited before they are
    shown. An authority the register does not hold is refused, naming those it does."""
    refuse_without_keys(ctx)  # destroyed at decommissioning: no practitioner is left to list
    async with ctx.db.read() as session:
        if authority is not None:
            try:
                authority = await authorities.resolve(session, authority)
            except authorities.UnknownAuthority as unknown:
                raise Refused(str(unknown), reason="no such authority") from None
        found = await practitioners.linked_identities(session, authority)
    audit.result_count = len(found)
    await audit.done(f"authority {authority}" if authority else "every authority")
    return found


async def practitioner(ctx: Context, practitioner_id: str) -> Actor | None:
    """The practitioner with this id, or None (the console's ``:as`` checks whom it will act as)."""
    async with ctx.db.read() as session:
        return await practitioners.get_actor(session, practitioner_id)


async def may_search_now(ctx: Context, practitioner_id: str) -> bool:
    """Whether a search by this practitioner would run today: they may search, and Signpost is not
    switched off (the console's greeting offers the demo searches only then)."""
    async with ctx.db.read() as session:
        actor = await practitioners.get_actor(session, practitioner_id)
        schedule = await decommission.current(session)
    switch_off = schedule.switch_off if schedule is not None else None
    return may_search(actor) and not decommission.is_switched_off(switch_off, ctx.clock.now().date())


async def first_code_at(ctx: Context, practitioner_id: str) -> str:
    """What Signpost first asks this practitioner for a code at (``handlers.help.first_code_asked_at``):
    a search, or for an admin, who searches nothing, a use of the commands of their role."""
    async with ctx.db.read() as session:
        actor = await practitioners.get_actor(session, practitioner_id)
    return first_code_asked_at(all_specs(), actor)


async def authenticator_state(ctx: Context, practitioner_id: str) -> str | None:
    """This practitioner's authenticator: None when they have none (every search would be answered
    "Send: enrol", handlers/stepup/flow.py), ``PENDING`` when one was issued (an admin's `totp enrol`,
    or an `enrol` not finished) and waits for its first code (the first search asks for it), else
    its state; so that the console's greeting says which before its demo searches."""
    async with ctx.db.read() as session:
        credential = await credentials.get(session, practitioner_id)
    return None if credential is None else credential.state


async def switched_off_said(ctx: Context) -> tuple[str, str] | None:
    """Once Signpost is switched off (destroyed or not): where it stands, as ``help`` says it, and
    what the chat answers every message, as the switch-off gate does; None before. The console
    says both for an identity no longer in the register (README's rehearsal destroys them all)."""
    async with ctx.db.read() as session:
        schedule = await decommission.current(session)
        if schedule is None or not decommission.is_switched_off(schedule.switch_off, ctx.clock.now().date()):
            return None
        destruction = await destruction_said(session)
    return HELP_SWITCHED_OFF + destruction, GATE_SWITCHED_OFF + destruction
