"""Registration: a chat identity asks to be linked to a practitioner; a duty manager decides.

Until a duty manager of the practitioner's local authority approves, the identity is not linked
and can do nothing but register. A practitioner holds at most one identity per platform:
approving a new one replaces the old link (so re-linking always needs a fresh approval), and the
account replaced is told so itself (it is no longer among the practitioner's links).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access import screening
from handlers.access.notices import decision_buttons, when
from handlers.access.policy import POLICY
from handlers.context import Context
from handlers.dispatch.spec import Audience, Request, Result, Spec
from handlers.every_contact import LINKED, every_contact
from handlers.grammar import UsageError, parse_practitioner_id
from handlers.recipients import who_is_told
from handlers.vocabulary import (
    Action,
    Actor,
    Notice,
    Outcome,
    Platform,
    Principal,
    Reply,
    Role,
    platform_name,
    plural,
)
from store.characters import marked
from store.delivery.notices import drop_decided
from store.keys.crypto import KeyRing
from store.people import access as store
from store.people import practitioners
from store.people.practitioners import Link
from store.tables.people import AccessRequest, ChatIdentity, RegistrationRequest

REGISTER_USAGE = "register PRACTITIONER_ID, e.g. register NS-P0001 (your id in the practitioner register)"
# The one answer to ``register ID``, whatever the id: whether it is an active practitioner, unknown
# or inactive, and whether this account has a registration waiting already, so that nobody learns
# from it which ids are in the register. No request number either (only the duty manager needs it).
# The real practitioner hears here once a duty manager decides, or asks their own. The id is not said
# back (``NO_SUCH_PRACTITIONER``'s rule): the one word typed may be a child's name.
ASKED = (
    "If the id you gave is an active practitioner's in the Signpost register, their duty managers have been asked to "
    "approve linking this {platform} account to it, and you'll be told here when one decides. This account can "
    "have one registration waiting at a time: if it asked in the last {days}, that request stands instead. If you "
    "hear nothing, or may have mistyped the id, please ask your duty manager."
)


def lifetime_cutoff(now: datetime) -> datetime:
    """``now`` less the registration lifetime: one opened then or before is past it (closed)."""
    return now - POLICY.registration_lifetime


async def waiting_for(
    session: AsyncSession, keys: KeyRing, actor: Actor, now: datetime
) -> tuple[list[AccessRequest], list[RegistrationRequest]]:
    """The access requests and registrations ``actor`` may decide, oldest first: a duty manager's
    authority's, every authority's for an admin (``may_decide``); never their own, which nobody
    decides. The one list ``pending`` and the Home tab show."""
    scope = None if actor.has(Role.ADMIN) else actor.local_authority
    requests = await store.pending_requests(session, keys, scope, now)
    registrations = await store.pending_registrations(session, scope, lifetime_cutoff(now), now)
    return (
        [row for row in requests if row.requester_id != actor.practitioner_id],
        [row for row in registrations if row.practitioner_id != actor.practitioner_id],
    )


UNLINKS = "; approving unlinks the account linked now"


async def unlinking(session: AsyncSession, rows: Sequence[RegistrationRequest]) -> set[int]:
    """The registrations among ``rows`` whose approval would unlink an account the practitioner has
    linked on that platform now (``UNLINKS`` marks them where they are listed): one read for all."""
    links = await practitioners.links_on(session, [(row.practitioner_id, row.platform) for row in rows])
    return {row.id for row in rows if (row.practitioner_id, row.platform) in links}


def lifetime_text() -> str:
    """The registration lifetime as the asker is told it ("7 days")."""
    return plural(POLICY.registration_lifetime.days, "day")


async def authority_now(session: AsyncSession, row: RegistrationRequest) -> str:
    """The authority whose duty managers decide registration ``row`` now: the practitioner's as the
    register says it today (one who changed post since asking is their new authority's to decide);
    the one the request recorded only when the practitioner is no longer in the register."""
    return authority_of(row, await practitioners.get_actor(session, row.practitioner_id))


def authority_of(row: RegistrationRequest, target: Actor | None) -> str:
    """``authority_now`` with the practitioner (``target``) read already."""
    return row.local_authority if target is None else target.local_authority


def may_decide(actor: Actor, local_authority: str) -> bool:
    """Duty managers decide for their own local authority; admins for any."""
    if actor.has(Role.ADMIN):
        return True
    return actor.has(Role.DUTY_MANAGER) and actor.local_authority == local_authority


UNREPORTED = "not reported"
REPORTED_SHOWN = 100  # characters of a reported name or email shown (a name, an address: far fewer)


def as_reported(value: str | None) -> str:
    """A name or email as the chat platform reported it, for the deciding duty manager: typed by
    the account's owner (a Slack profile, a Teams account), so every character that does not show
    as itself on one line (a direction override that reverses what follows, a line break that
    starts a false line, a NUL, half a character: ``store.characters``) is shown as ``?`` (another
    space as a space), and a long one is cut."""
    if not value:
        return UNREPORTED
    if len(value) > REPORTED_SHOWN:
        value = value[:REPORTED_SHOWN] + "…"
    if value.isprintable():
        return value
    return "".join(" " if unicodedata.category(c) == "Zs" else c for c in marked(value))


def replacing(practitioner_id: str, replaces: Link | None) -> str:
    """The line that warns a deciding duty manager of an account approving would unlink ("" for none)."""
    if replaces is None:
        return ""
    old = replaces.account
    return (
        f"{practitioner_id} has another {platform_name(old.platform)} account linked now ({old.tenant}/{old.user_id}, "
        f"since {when(replaces.linked_at)}): approving unlinks it. If {practitioner_id} has not told you they "
        "changed accounts, ask them first.\n"
    )


def registration_notices(
    request_id: int, req: Request, target: Actor, email: str, managers: Iterable[str], replaces: Link | None = None
) -> list[Notice]:
    """What the deciding duty manager needs to tell a real practitioner from a sock-puppet: who the
    chat platform says the account is, beside who the register says the practitioner is; and, when
    the practitioner has an account on that platform linked already (``replaces``), that approving
    unlinks it: someone asking to take over a working account is the case to check most."""
    p, command = req.command.principal, req.command
    text = (
        f"Registration request R{request_id}: the {platform_name(p.platform)} account {p.tenant}/{p.user_id} "
        f"asks to act as practitioner {target.practitioner_id} (asked {when(req.now)}).\n"
        f"{platform_name(p.platform)} reports this account as: {as_reported(command.display_name)}, "
        f"email {as_reported(command.email)}.\n"
        f"The register records {target.practitioner_id} as: {target.name}, {target.role}, {target.organisation}, "
        f"email {email or UNREPORTED}.\n"
        f"{replacing(target.practitioner_id, replaces)}"
        "Approve only if they are the same person."
    )
    return [
        Notice(
            pid,
            "registration_request",
            text,
            decision_buttons(f"R{request_id}"),
            f"registration:{request_id}:{pid}",
        )
        for pid in managers
    ]


async def register(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """Open a registration request for the calling identity (anyone may ask; a duty manager decides)."""
    # Who is asking first: the console, or an account already linked, has no use for an id, so a bare
    # `register` is not asked for one only to be told so once it is given.
    principal = req.command.principal
    if principal.platform is Platform.CONSOLE:
        text = "The console acts directly as a practitioner id from the register: use ':as PRACTITIONER_ID'."
        return Result(Reply(Outcome.INVALID, text), detail="console")
    if req.actor is not None:
        text = f"This account is already registered as {req.actor.practitioner_id}."
        return Result(Reply(Outcome.INFO, text), detail="already linked")
    wanted = parse_practitioner_id(req.args)
    if wanted is None:
        raise UsageError("please give your practitioner id")
    platform = platform_name(principal.platform)
    asked = Reply(Outcome.DONE, ASKED.format(platform=platform, days=lifetime_text()))
    waiting = await store.pending_registration_for(session, principal, lifetime_cutoff(req.now), req.now)
    if waiting is not None:
        return Result(asked, detail=f"registration R{waiting.id} waiting")
    target = await practitioners.get_actor(session, wanted)
    if target is None or target.status != store.ACTIVE:
        return Result(asked, detail="not in register")
    request_id = await store.open_registration(
        session, principal, target.practitioner_id, target.local_authority, req.now
    )
    managers = await who_is_told(
        session, ctx.reaches, target.local_authority, kind="registration_request", excluding=(target.practitioner_id,)
    )
    email = await practitioners.recorded_email(session, target.practitioner_id)
    links = await practitioners.links_on(session, [(target.practitioner_id, principal.platform.value)])
    replaces = links.get((target.practitioner_id, principal.platform.value))
    notices = registration_notices(request_id, req, target, email or "", managers, replaces)
    await ctx.notices.enqueue(session, notices, req.now)
    return Result(asked, detail=f"registration R{request_id}")


async def decide(
    ctx: Context, req: Request, session: AsyncSession, request_id: int, approve: bool, reason: str
) -> Result:
    """Approve or deny registration R<id>; the first decision wins."""
    actor = req.actor
    assert actor is not None
    row = await store.get_registration(session, request_id)
    no_such = f"There is no registration request R{request_id} for you to decide."
    if row is None:
        return Result(Reply(Outcome.INVALID, no_such), detail="no such request")
    target = await practitioners.get_actor(session, row.practitioner_id)
    if not may_decide(actor, authority_of(row, target)):
        # Said as for none (audited as refused): another authority's duty manager learns neither
        # that it exists nor whom it is about.
        return Result(Reply(Outcome.REFUSED, no_such), detail=f"registration R{request_id} other authority")
    if row.practitioner_id == actor.practitioner_id:
        text = "Nobody can decide their own registration. Another duty manager will."
        return Result(Reply(Outcome.REFUSED, text), detail=f"registration R{request_id} own request")
    if approve and row.state == store.PENDING and (target is None or target.status != store.ACTIVE):
        # As ``register`` refuses them: no account is linked to a practitioner who cannot act. One
        # closed already (a leaver's is, when they leave) is told how it was closed, below.
        text = f"{row.practitioner_id} is not active in the register, so R{request_id} cannot be approved."
        return Result(Reply(Outcome.REFUSED, text), detail=f"registration R{request_id} practitioner not active")
    if approve:
        owner = await store.identity_owner(session, row.platform, row.tenant, row.user_id)
        if owner is not None and owner != row.practitioner_id:
            # Fail closed: re-pointing an account at another practitioner needs an unlink first.
            text = f"That account is linked to another practitioner now; an admin must unlink it first (R{row.id})."
            return Result(Reply(Outcome.REFUSED, text), detail=f"registration R{row.id} identity taken")
    # The reason goes to the account that asked, and to the practitioner. A backstop: ``deny`` refused
    # a reason with any child's details in its own check already (``screening.details_first``).
    what = f"reason for registration R{request_id}"
    refusal = await screening.refuse_uncounted(ctx, req, session, reason, called="reason", what=what)
    if refusal is not None:
        return refusal
    state = store.APPROVED if approve else store.DENIED
    decided = await store.decide_registration(
        session, request_id, state, actor.practitioner_id, req.now, lifetime_cutoff(req.now)
    )
    if not decided:
        now_row = await store.get_registration(session, request_id)
        done = _closed_as(now_row)
        by = f" by {now_row.decided_by}" if now_row and now_row.decided_by else ""
        text = f"Registration R{request_id} was already {done}{by}. Nothing changed."
        return Result(Reply(Outcome.REFUSED, text), detail=f"registration R{request_id} already {done}")
    await drop_decided(session, "registration_request", f"registration:{request_id}:", req.now)
    if approve:
        return await _link(ctx, req, session, row)
    text = f"Registration R{request_id} for the {platform_name(row.platform)} account was denied."
    why = f" Reason: {reason}" if reason else ""
    key = f"registration:{row.id}:decided"
    # The account that asked is linked to nobody, so the practitioner's links never reach it (it
    # was told "you'll be told here"): its copy is addressed to it. The practitioner's own accounts
    # are told too, so that someone asking to act as them does not go unseen.
    asker = Principal(Platform(row.platform), row.tenant, row.user_id)
    told = [
        Notice(row.practitioner_id, "registration_denied", text + why, dedupe_key=f"{key}:asker", account=asker),
        Notice(row.practitioner_id, "registration_denied", text + why, dedupe_key=key),
    ]
    await ctx.notices.enqueue(session, told, req.now)
    # The reason is sealed like any terms (no child: with the month's key, made in this transaction).
    return Result(
        Reply(Outcome.DONE, f"Registration R{request_id} denied."),
        terms=reason,
        detail=f"registration R{request_id}",
    )


def _closed_as(row: RegistrationRequest | None) -> str:
    """How a registration that can no longer be decided was closed, for the duty manager who tried."""
    if row is None:
        return "decided"
    if row.state == store.PENDING:  # past its lifetime; the expiry job has not marked it yet
        return "closed: expired"
    if row.state != store.EXPIRED:
        return row.state
    if row.decided_at is not None and not store.utc(row.created_at) <= store.utc(row.decided_at) < lifetime_ends(row):
        return "closed: expired"  # nobody decided it within its lifetime, or it was opened by a clock ahead
    return f"closed: {row.practitioner_id} has left"  # closed undecided when the practitioner left


def lifetime_ends(row: RegistrationRequest) -> datetime:
    """When ``row``'s lifetime ends."""
    return store.utc(row.created_at) + POLICY.registration_lifetime


def expired_notice(row: RegistrationRequest) -> Notice:
    """For the account that asked, addressed to it alone (it is linked to nobody): its registration
    expired undecided, nothing was linked, and how to ask again."""
    text = (
        f"Your registration request R{row.id} to act as practitioner {row.practitioner_id} expired: no duty "
        f"manager decided it within {lifetime_text()}, and this {platform_name(row.platform)} account was not "
        f"linked. To ask again, send: register {row.practitioner_id}"
    )
    asker = Principal(Platform(row.platform), row.tenant, row.user_id)
    key = f"registration:{row.id}:expired"
    return Notice(row.practitioner_id, "registration_expired", text, dedupe_key=key, account=asker)


async def _link(ctx: Context, req: Request, session: AsyncSession, row: RegistrationRequest) -> Result:
    replaced = await session.execute(
        delete(ChatIdentity)
        .where(ChatIdentity.practitioner_id == row.practitioner_id, ChatIdentity.platform == row.platform)
        .returning(ChatIdentity.tenant, ChatIdentity.user_id)
    )
    principal = Principal(Platform(row.platform), row.tenant, row.user_id)
    old = [Principal(principal.platform, r.tenant, r.user_id) for r in replaced]
    await practitioners.link_identity(session, principal, row.practitioner_id, req.now)
    approved = (
        f"(registration R{row.id}, approved by {req.actor.practitioner_id if req.actor else 'a duty manager'} "
        f"at {when(req.now)})"
    )
    text = (
        f"A {platform_name(row.platform)} account was linked to your Signpost practitioner id {row.practitioner_id} "
        f"{approved}. If this was not you, tell your duty manager at once."
    )
    key = f"registration:{row.id}:decided"
    # Every contact on record (``every_contact``), so a link nobody asked for does not go unseen; and
    # the account the new one replaces, which is no longer linked and so not among them.
    told = [
        *every_contact(row.practitioner_id, LINKED, text, dedupe_key=key),
        *(_replaced_notice(row, account, approved) for account in old if account != principal),
        *await _now_unlinking(ctx, session, row, principal, req.now),
    ]
    await ctx.notices.enqueue(session, told, req.now)
    unlinked = " The account linked before was unlinked and told." if any(a != principal for a in old) else ""
    reply = Reply(
        Outcome.DONE,
        f"Registration R{row.id} approved: {row.practitioner_id} is linked on {platform_name(row.platform)}.{unlinked}",
    )
    return Result(reply, detail=f"registration R{row.id}")


async def _now_unlinking(
    ctx: Context, session: AsyncSession, row: RegistrationRequest, linked: Principal, now: datetime
) -> list[Notice]:
    """For the duty managers asked to decide the practitioner's other open registrations on that
    platform: approving one of those now unlinks the account ``row`` has just linked, which their
    ask (made before it) could not say (``replacing``). Keyed as the ask, so that deciding it drops
    this too if it has not gone out."""
    others = await store.pending_registrations_to_act_as(
        session, row.practitioner_id, row.platform, lifetime_cutoff(now), now
    )
    others = [other for other in others if other.id != row.id]
    if not others:
        return []
    # Every one asks to act as the same practitioner: one authority now, one set of managers.
    managers = await who_is_told(
        session,
        ctx.reaches,
        await authority_now(session, row),
        kind="registration_request",
        excluding=(row.practitioner_id,),
    )
    found: list[Notice] = []
    replaces = Link(linked, now)
    for other in others:
        text = (
            f"Registration request R{other.id}, asking to act as {row.practitioner_id}, would now replace an "
            f"account: R{row.id} was approved meanwhile.\n{replacing(row.practitioner_id, replaces)}"
            "Approve only if they are the same person."
        )
        found += [
            Notice(
                pid,
                "registration_request",
                text,
                decision_buttons(f"R{other.id}"),
                f"registration:{other.id}:after:{row.id}:{pid}",
            )
            for pid in managers
        ]
    return found


def _replaced_notice(row: RegistrationRequest, account: Principal, approved: str) -> Notice:
    """For the account that lost its link to the new one, addressed to it alone (its owner may be
    the one who did not ask for this, and no longer reached through the practitioner's links)."""
    name = platform_name(row.platform)
    text = (
        f"Your {name} account is no longer linked to Signpost practitioner id {row.practitioner_id}: another "
        f"{name} account was linked in its place {approved}. If you did not ask for this, tell your duty manager "
        "at once."
    )
    key = f"registration:{row.id}:replaced"
    return Notice(row.practitioner_id, "registration_replaced", text, dedupe_key=key, account=account)


SPECS = (
    Spec(
        name="register",
        action=Action.REGISTER,
        run=register,
        summary="ask a duty manager to link this chat account to your practitioner id",
        usage=REGISTER_USAGE,
        words=1,
        audience=Audience.ANYONE,  # someone not yet registered asks to be
        unlinked_only=True,
        role=None,
        writes=True,
        wants_profile=True,
    ),
)
