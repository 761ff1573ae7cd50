"""The notices of access control, and who receives them.

A notice leaves Signpost through a chat platform, so it carries only request ids and child
references: never a name, date of birth or postcode (a free-text denial reason is checked for the
child's identity and reference before it is accepted, see ``handlers.access.screening``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access.found import named
from handlers.clock import uk_time
from handlers.recipients import ranked
from handlers.vocabulary import Actor, Button, Input, Notice, Platform, Role, format_ref
from store.delivery.notices import asked_about
from store.keys.crypto import KeyRing
from store.people import access as store
from store.people.practitioners import Holders
from store.register import children
from store.tables.people import AccessRequest

REQUEST_KIND = "access_request"


def when(moment: datetime) -> str:
    return uk_time(store.utc(moment))


# The Deny reason box: an access request's reason goes to a practitioner about a child; a
# registration's to whoever asked to link their chat account, about that account.
DENY_REASON = "Reason (sent to the requester; no child details)"
DENY_REGISTRATION_REASON = "Reason (sent to whoever asked for this registration)"


def decision_buttons(request_id: str) -> tuple[Button, ...]:
    """Approve / Deny for an access request ("12") or a registration ("R4"): the same action ids,
    so every front end routes them alike; the command says which kind of request it is."""
    label = DENY_REGISTRATION_REASON if request_id.startswith("R") else DENY_REASON
    return (
        Button("approve", "Approve", f"approve {request_id}", style="primary"),
        Button(
            "deny",
            "Deny",
            f"deny {request_id}",
            style="danger",
            input=Input(name="reason", label=label, required=False),
        ),
    )


async def authority_now(session: AsyncSession, keys: KeyRing, request: AccessRequest) -> str:
    """The authority whose duty managers decide ``request`` now: the child's as the register says
    it today (a child who moved since the request was opened is their new authority's to decide,
    and the old one's managers neither decide it nor are asked to); the one the request recorded
    only when the child is no longer in the register."""
    record = await children.find(session, keys, request.child_ref)
    return request.local_authority if record is None else record.local_authority


async def escalation_targets(
    session: AsyncSession,
    local_authority: str,
    requester_id: str,
    reaches: Collection[Platform],
    asked: Collection[str] = (),
) -> tuple[Holders, bool]:
    """Who hears about a request next, and whether a further level exists.

    The first duty manager of the child's authority (in id order) who can be reached on ``reaches``
    and has not been ``asked`` already (``asked_of``); once every one has, the admins (those who can
    be reached: ``handlers.recipients.ranked``). Counted by who was asked, not by position, so a
    manager who links or unlinks between escalations is neither asked twice nor skipped. Nobody
    decides their own request, so the requester is left out.
    """
    told = await ranked(session, reaches, local_authority, kind=REQUEST_KIND, excluding=(requester_id,))
    waiting = [pid for pid in told.managers.ids if pid not in asked]
    if waiting:
        return Holders((waiting[0],), Role.DUTY_MANAGER), True
    return told.admins, False


async def asked_of(session: AsyncSession, request: AccessRequest) -> set[str]:
    """Who has been asked to decide ``request`` so far (its notices at every level, stand-ins too)."""
    return await asked_about(session, REQUEST_KIND, request.child_ref, f"access:{request.id}:")


def requester_text(requester: Actor | None, requester_id: str) -> str:
    """Who asked, as a duty manager needs to know them: name, role, organisation and authority."""
    if requester is None:
        return f"{requester_id} (no longer in the register)"
    return f"{requester.name}, {requester.role}, {requester.organisation} ({requester.local_authority})"


def request_notices(
    request_id: int,
    ref: int,
    recipients: Iterable[str],
    level: int,
    who: str = "",
    waited_for: str = "",
) -> list[Notice]:
    """``who``: requester_text() of the person asking; ``waited_for``: how long it has waited (escalations)."""
    by = f" from {who}" if who else ""
    if level == 0:
        text = (
            f"Access request {request_id} for shielded record {format_ref(ref)}{by} needs a decision. "
            "Send 'pending' to read the purpose given."
        )
    else:
        still = f" after {waited_for}" if waited_for else ""
        text = (
            f"Escalated: access request {request_id} for shielded record {format_ref(ref)}{by} is still waiting "
            f"for a decision{still}. Send 'pending' to read the purpose given."
        )
    return [
        Notice(
            pid,
            REQUEST_KIND,
            text,
            decision_buttons(str(request_id)),
            f"access:{request_id}:{level}:{pid}",
        )
        for pid in recipients
    ]


def approved_notice(request_id: int, requester: str, ref: int, until: datetime, withheld: bool = False) -> Notice:
    text = (
        f"Access request {request_id} was approved: you can see the signposts for {named(ref, withheld)} "
        f"until {when(until)}. Search for it again to see them."
    )
    return Notice(requester, "access_approved", text, dedupe_key=f"access:{request_id}:decided")


def denied_notice(request_id: int, requester: str, ref: int, reason: str, withheld: bool = False) -> Notice:
    why = f" Reason: {reason}" if reason else " No reason was given."
    text = f"Access request {request_id} for {named(ref, withheld)} was denied.{why}"
    return Notice(requester, "access_denied", text, dedupe_key=f"access:{request_id}:decided")


def request_expired_notice(request_id: int, requester: str, ref: int, withheld: bool = False) -> Notice:
    text = (
        f"Access request {request_id} for {named(ref, withheld)} expired: nobody decided it within 24 hours. "
        "You can ask again."
    )
    return Notice(requester, "access_expired", text, dedupe_key=f"access:{request_id}:expired")


def grant_expired_notice(grant_id: int, request_id: int, holder: str, ref: int, withheld: bool = False) -> Notice:
    text = (
        f"Your access to {named(ref, withheld)} (request {request_id}) has ended. Searches show it as shielded again."
    )
    return Notice(holder, "grant_expired", text, dedupe_key=f"grant:{grant_id}:expired")
