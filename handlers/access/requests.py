"""Shielded records: request access, duty managers approve or deny, time-bound grants.

Roles and the step-up are declared on the Specs and checked once in dispatch; what is left here is
the scope (a duty manager decides only for their own local authority: the child's now,
``notices.authority_now``), nobody deciding their own request, and the first decision winning (one
conditional UPDATE, see store/access.py).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access import found, registration, screening
from handlers.access.notices import (
    approved_notice,
    authority_now,
    decision_buttons,
    denied_notice,
    escalation_targets,
    request_notices,
    requester_text,
    when,
)
from handlers.access.policy import POLICY
from handlers.access.registration import may_decide
from handlers.clock import waited
from handlers.context import Context, NoticeSink
from handlers.dispatch.spec import Request, Result, Spec, StepUp, bad_reference, parsed_by, reference_in
from handlers.grammar import MAX_ID, UsageError, parse_number, parse_practitioner_id
from handlers.refs import InvalidReference, parse_reference
from handlers.search import NO_RECORD
from handlers.vocabulary import (
    NO_SUCH_PRACTITIONER,
    Action,
    Actor,
    NoRequestMade,
    Notice,
    Outcome,
    Platform,
    Principal,
    Reply,
    Role,
    format_ref,
    platform_name,
    plural,
    sentence,
)
from store.people import access as store
from store.people import practitioners
from store.register import children
from store.tables.people import ChatIdentity

REQUEST_USAGE = (
    "request REFERENCE PURPOSE, e.g. request 999 000 1146 section 47 enquiry (the purpose is required; it is "
    "shown to the duty manager who decides, so leave out the child's name, date of birth and postcode, and do not "
    "give the reference again, nor any other child's)"
)
# A purpose or denial reason that names the child: what to leave out, and why.
PURPOSE_REFUSED = (
    "The purpose is shown to the duty manager who decides and kept for the family's subject-access report, so "
    f"please {screening.LEAVE_OUT}, and send it again: the request already says which record it is about."
)
REASON_REFUSED = (
    "The reason is sent to the requester, who may have found the record without being told its reference, so "
    f"please {screening.LEAVE_OUT}, and send it again."
)
APPROVE_USAGE = (
    "approve ID [DURATION], e.g. approve 12 3d / approve 12 36h (an access request: 24h when no duration is "
    "given, 1h to 7d; approve R4 for a registration)"
)
DENY_USAGE = (
    "deny ID [REASON], e.g. deny 12 please ask the lead professional first (the reason is sent to the "
    "requester, so leave out the child's name, date of birth, postcode and reference)"
)
UNLINK_USAGE = "unlink PRACTITIONER_ID [slack|teams], e.g. unlink NS-P0001 slack (every platform when none is given)"
# What the requester is told, by who the request really went to.
SENT_TO = {
    Role.DUTY_MANAGER: (
        "Access request {id} for {ref} sent to a duty manager of the child's local authority. "
        "You'll be told here when it is decided."
    ),
    Role.ADMIN: (
        "Access request {id} for {ref} sent to Signpost's administrators, who decide when no duty manager of "
        "the child's local authority can. You'll be told here when it is decided."
    ),
    None: (
        "Access request {id} for {ref} is recorded, but Signpost has nobody to send it to yet: please contact "
        "your duty manager. You'll be told here when it is decided."
    ),
}
_DURATION = re.compile(r"^([0-9]{1,3})\s*(d|day|days|h|hr|hrs|hour|hours)?$")


def split_reference(args: str) -> tuple[int, str]:
    """'999 000 0050 some purpose' → (9990000050, 'some purpose'): leading digit groups make the ref."""
    tokens = args.split(" ")
    digits, used = "", 0
    for token in tokens:
        if len(digits) >= 10 or not re.fullmatch(r"[0-9-]+", token):
            break
        digits += token.replace("-", "")
        used += 1
    if not digits:
        raise UsageError("please start with the child's reference number")
    return parse_reference(digits), " ".join(tokens[used:]).strip()


def split_target(args: str) -> tuple[int | str, str]:
    """The record and the rest: a search's handle (a button offered after a search by name and date
    of birth, handlers/access/found.py) as its search id, else the reference (``split_reference``)."""
    handled = found.handle_in(args)
    return handled if handled is not None else split_reference(args)


async def target_ref(session: AsyncSession, target: int | str, actor: Actor, now: datetime) -> int | None:
    """The child a target names for this asker: a typed reference as it is, a handle as its search
    found it (None once it is not the asker's, or too old)."""
    if isinstance(target, int):
        return target
    return await found.resolve(session, target, actor.practitioner_id, now)


def handle_gone() -> Result:
    """A handle that names nothing for this asker (someone else's, or too old): said, and nothing else."""
    return Result(Reply(Outcome.INVALID, found.GONE), detail="found handle unresolved")


def parse_duration(text: str) -> timedelta:
    if not text:
        return POLICY.grant_default
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise UsageError("the duration should look like 3d or 36h")
    amount, unit = int(match.group(1)), match.group(2) or "d"
    duration = timedelta(hours=amount) if unit.startswith("h") else timedelta(days=amount)
    if not POLICY.grant_min <= duration <= POLICY.grant_max:
        raise UsageError("access can be granted for 1 hour to 7 days")
    return duration


def parse_id(args: str) -> tuple[str, int, str]:
    """'R4 rest' → ('R', 4, 'rest'); '12 3d' → ('', 12, '3d')."""
    first, _, rest = args.strip().partition(" ")
    kind = "R" if first[:1] in ("R", "r") else ""
    request_id = parse_number(first[len(kind) :], 1, MAX_ID)
    if request_id is None:
        raise UsageError("please give the request id, e.g. 12 (or R4 for a registration)")
    return kind, request_id, rest.strip()


def _request_args(args: str) -> tuple[int | str, str]:
    """The reference (or a search's handle) and the purpose; ``InvalidReference`` or ``UsageError``
    when they will not do."""
    ref, purpose = split_target(args)
    if not purpose:
        raise UsageError(
            f"please say why you need these signposts: a purpose of at least {POLICY.min_reason} characters"
        )
    if len(purpose) < POLICY.min_reason:
        raise UsageError(f"the purpose is too short: please write at least {POLICY.min_reason} characters")
    screening.within_limit(purpose, "purpose")
    return ref, purpose


def _purpose_of(args: str) -> tuple[str, str]:
    """The purpose, as the audit detail and the writer call it (``screening.details_first``)."""
    return "purpose", _request_args(args)[1]


def _record_named(args: str) -> str:
    """What a request stopped for a code keeps of its text (``Spec.stopped_terms``): the record it
    names (a reference, or a search's handle), not the purpose, screened for the child's name only
    once the code is given."""
    target = reference_in(lambda typed: split_target(typed)[0])(args)
    if target is None:
        return ""
    return found.handle(target) if isinstance(target, str) else format_ref(target)


async def request_access(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """Ask the child's duty managers for time-bound access to a shielded record."""
    actor = req.actor
    assert actor is not None
    try:
        target, purpose = _request_args(req.args)
    except InvalidReference as exc:
        return bad_reference(exc)
    ref = await target_ref(session, target, actor, req.now)
    if ref is None:
        return handle_gone()
    withheld = not isinstance(target, int)
    name = found.named(ref, withheld)
    record = await children.find(session, ctx.keys, ref)
    if record is None or record.state != "active":
        return Result(Reply(Outcome.INVALID, NO_RECORD), detail="no record")
    if not record.shielded:
        text = f"{found.capital(name)} is not shielded: search for it to see its signposts."
        return Result(Reply(Outcome.INFO, text), subjects=(ref,), detail=NoRequestMade.NOT_SHIELDED.detail())
    # Screened before it is known whether a request is made: a purpose given again (access granted
    # already, or a request waiting) is kept for the family's report as the first one is, sealed in
    # its audit event, so it must not name the child either.
    refusal = await screening.screen(
        ctx,
        req,
        session,
        ref,
        purpose,
        what="purpose",
        called="purpose",
        refused=PURPOSE_REFUSED,
        usage=REQUEST_USAGE,
        then="Please contact your duty manager.",
        named=name,
    )
    if refusal is not None:
        return refusal
    grant = await store.current_grant(session, actor.practitioner_id, ref, req.now)
    if grant is not None:
        text = f"You already have access to {name} until {when(grant.expires_at)}."
        detail = NoRequestMade.GRANTED.detail(grant.id)
        return Result(Reply(Outcome.INFO, text), subjects=(ref,), terms=purpose, detail=detail)
    waiting = await store.pending_request_for(session, actor.practitioner_id, ref, req.now)
    if waiting is not None:
        text = f"Your access request {waiting.id} for {name} is already waiting for a decision."
        detail = NoRequestMade.WAITING.detail(waiting.id)
        return Result(Reply(Outcome.INFO, text), subjects=(ref,), terms=purpose, detail=detail)
    return await _open(ctx, req, session, ref, record.local_authority, purpose, withheld)


async def _open(
    ctx: Context, req: Request, session: AsyncSession, ref: int, la: str, purpose: str, withheld: bool
) -> Result:
    assert req.actor is not None
    requester = req.actor.practitioner_id
    sealed, key = await ctx.sealer.seal(session, purpose, (ref,), req.now, writer=True)  # a writes Spec
    recipients, more = await escalation_targets(session, la, requester, ctx.reaches)
    new = store.NewRequest(requester, ref, la, sealed, key, ref_withheld=withheld)
    escalate_at = req.now + POLICY.escalate_after if more else None
    request_id = await store.open_request(session, new, req.now, POLICY.request_lifetime, escalate_at)
    who = requester_text(req.actor, requester)
    await ctx.notices.enqueue(session, request_notices(request_id, ref, recipients, 0, who), req.now)
    text = SENT_TO[recipients.role].format(id=request_id, ref=found.named(ref, withheld))
    return Result(Reply(Outcome.DONE, text), subjects=(ref,), terms=purpose, detail=f"request {request_id}")


def _approve_args(args: str) -> tuple[int, timedelta | None]:
    """The request id and the duration of access (None: a registration's); ``UsageError``."""
    kind, request_id, rest = parse_id(args)
    if kind == "R":
        if rest:
            raise UsageError("a registration is approved without a duration")
        return request_id, None
    if _duration_then_more(rest):  # "approve 12 2h thanks": 2h is one, so "should look like 3d" would mislead
        raise UsageError("please give the request id and at most a duration, e.g. 3d, with nothing after it")
    return request_id, parse_duration(rest)


def _duration_then_more(text: str) -> bool:
    """Whether ``text`` is not a duration but begins with one ("2h thanks", "3 days please")."""
    words = text.lower().split()
    whole = _DURATION.match(" ".join(words))
    return whole is None and any(_DURATION.match(" ".join(words[:n])) for n in (1, 2) if n < len(words))


async def approve(ctx: Context, req: Request, session: AsyncSession) -> Result:
    request_id, duration = _approve_args(req.args)
    if duration is None:  # a registration
        return await registration.decide(ctx, req, session, request_id, approve=True, reason="")
    return await _decide(ctx, req, session, request_id, store.APPROVED, duration, "")


def _deny_args(args: str) -> tuple[str, int, str]:
    """The kind, the request id and the reason; ``UsageError`` when they will not do."""
    kind, request_id, reason = parse_id(args)
    screening.within_limit(reason, "reason")
    return kind, request_id, reason


def _reason_of(args: str) -> tuple[str, str]:
    """The denial reason, as the audit detail and the writer call it (``screening.details_first``)."""
    kind, request_id, reason = _deny_args(args)
    return f"reason for {'registration R' if kind == 'R' else 'request '}{request_id}", reason


def _decision_named(args: str) -> str:
    """What a denial stopped for a code keeps of its text (``Spec.stopped_terms``): the request it
    decides, not the reason, screened for the child's name only once the code is given."""
    try:
        kind, request_id, _ = parse_id(args)
    except UsageError:
        return ""
    return f"{kind}{request_id}"


async def deny(ctx: Context, req: Request, session: AsyncSession) -> Result:
    kind, request_id, reason = _deny_args(req.args)
    if kind == "R":
        return await registration.decide(ctx, req, session, request_id, approve=False, reason=reason)
    return await _decide(ctx, req, session, request_id, store.DENIED, POLICY.grant_default, reason)


async def _decide(
    ctx: Context,
    req: Request,
    session: AsyncSession,
    request_id: int,
    state: str,
    duration: timedelta,
    reason: str,
) -> Result:
    actor = req.actor
    assert actor is not None
    row = await store.get_request(session, ctx.keys, request_id)
    no_such = f"There is no access request {request_id} for you to decide."
    if row is None:
        return Result(Reply(Outcome.INVALID, no_such), detail="no such request")
    subjects = (row.child_ref,)
    if not may_decide(actor, await authority_now(session, ctx.keys, row)):
        # Said as for none (audited as refused, naming the child): another authority's duty manager
        # does not learn that a request exists, nor how many there are.
        return Result(
            Reply(Outcome.REFUSED, no_such), subjects=subjects, detail=f"request {request_id} other authority"
        )
    if row.requester_id == actor.practitioner_id:
        text = "Nobody can decide their own access request. Another duty manager will."
        return Result(Reply(Outcome.REFUSED, text), subjects=subjects, detail=f"request {request_id} own request")
    if reason:
        refusal = await screening.screen(
            ctx,
            req,
            session,
            row.child_ref,
            reason,
            what=f"reason for request {request_id}",
            called="reason",
            refused=REASON_REFUSED,
            then=f"You can still deny it without a reason: deny {request_id}.",
        )
        if refusal is not None:
            return refusal
    if not await store.decide_request(session, request_id, state, actor.practitioner_id, req.now):
        return await _too_late(ctx, session, request_id, subjects, req)
    if state == store.APPROVED:
        until = req.now + duration
        grant_id = await store.create_grant(session, row, actor.practitioner_id, req.now, until)
        await ctx.notices.enqueue(
            session, [approved_notice(request_id, row.requester_id, row.child_ref, until, row.ref_withheld)], req.now
        )
        text = (
            f"Request {request_id} approved: {row.requester_id} can see the signposts for "
            f"{format_ref(row.child_ref)} until {when(until)}."
        )
        hours = int(duration.total_seconds() // 3600)
        return Result(
            Reply(Outcome.DONE, text),
            subjects=subjects,
            detail=f"request {request_id} grant {grant_id} {hours}h",
        )
    await ctx.notices.enqueue(
        session, [denied_notice(request_id, row.requester_id, row.child_ref, reason, row.ref_withheld)], req.now
    )
    text = f"Request {request_id} denied; {row.requester_id} has been told."
    return Result(Reply(Outcome.DONE, text), subjects=subjects, terms=reason, detail=f"request {request_id} denied")


async def _too_late(
    ctx: Context, session: AsyncSession, request_id: int, subjects: tuple[int, ...], req: Request
) -> Result:
    """Someone decided first, the requester left, or the request expired: nothing changes, and the
    person is told which."""
    row = await store.get_request(session, ctx.keys, request_id)
    if row is not None and row.state in (store.APPROVED, store.DENIED):
        text = f"Request {request_id} was already {row.state} by {row.decided_by}. Nothing changed."
        detail = f"request {request_id} already {row.state}"
    elif (
        row is not None
        and row.state == store.EXPIRED
        and row.decided_at
        and row.created_at <= row.decided_at < row.expires_at
    ):
        # Closed undecided before its time: only a leaver's are (store.close_for_leaver), and a
        # leaver cannot "ask again". (One opened by a clock ahead, closed before it was opened, expired.)
        text = f"Request {request_id} was closed undecided when {row.requester_id} left their post. Nothing changed."
        detail = f"request {request_id} closed: {row.requester_id} has left"
    else:
        text = f"Request {request_id} expired before anyone decided it. Nothing changed; the requester can ask again."
        detail = f"request {request_id} expired"
    return Result(Reply(Outcome.REFUSED, text), subjects=subjects, detail=detail)


async def pending(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """Open access and registration requests this duty manager may decide, with the purposes given."""
    actor = req.actor
    assert actor is not None
    rows, registrations = await registration.waiting_for(session, ctx.keys, actor, req.now)
    lines: list[str] = []
    ids: list[str] = []
    for row in rows:
        purpose = await ctx.sealer.open(session, row.reason, row.reason_key) if row.reason and row.reason_key else None
        who = requester_text(await practitioners.get_actor(session, row.requester_id), row.requester_id)
        lines.append(
            f"• {row.id}: {format_ref(row.child_ref)} from {who}, asked {when(row.created_at)}, "
            f"waiting {waited(row.created_at, req.now)}; purpose: {purpose or '(not readable)'}"
        )
        ids.append(str(row.id))
    unlinking = await registration.unlinking(session, registrations)
    for reg in registrations:
        lines.append(
            f"• R{reg.id}: {reg.practitioner_id} asks to link a {platform_name(reg.platform)} account, "
            f"{when(reg.created_at)}{registration.UNLINKS if reg.id in unlinking else ''}"
        )
        ids.append(f"R{reg.id}")
    if not lines:
        return Result(Reply(Outcome.INFO, "Nothing is waiting for a decision."), detail="none")
    shown = tuple(button for rid in ids[:5] for button in decision_buttons(rid))
    text = f"{len(lines)} request{'s' if len(lines) != 1 else ''} waiting for a decision:"
    reply = Reply(Outcome.INFO, text, lines=tuple(lines), buttons=shown)
    return Result(
        reply,
        subjects=tuple(r.child_ref for r in rows),
        result_count=len(lines),
        detail=f"{len(lines)} pending",
    )


def _unlink_args(args: str) -> tuple[str, str]:
    """The practitioner id and the platform ("" for every one); ``UsageError`` when they will not do."""
    typed, _, platform = args.strip().partition(" ")
    target = parse_practitioner_id(typed)
    if target is None:
        raise UsageError("please give the practitioner id")
    platform = platform.strip().lower()
    if len(platform.split()) > 1:  # "unlink ID teams now": teams is a platform, so "Slack or Teams" would mislead
        raise UsageError(
            "please give the practitioner id and at most one platform, Slack or Teams, with nothing after it"
        )
    if platform and platform not in (Platform.SLACK.value, Platform.TEAMS.value):
        raise UsageError("the platform is Slack or Teams")
    return target, platform


async def unlink(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """Admin: remove a practitioner's chat links (on one platform, or all)."""
    target, platform = _unlink_args(req.args)
    if await practitioners.get_actor(session, target) is None:  # as `signpost practitioner unlink` says
        return Result(
            Reply(Outcome.INVALID, f"{sentence(NO_SUCH_PRACTITIONER)}."),
            detail="no such practitioner",
        )
    count = await unlink_and_tell(ctx.notices, session, target, platform or None, req.now)
    if count == 0:
        where = f"on {platform_name(platform)}" if platform else "on any platform"
        return Result(Reply(Outcome.INFO, f"{target} has no linked account {where}."), detail="nothing linked")
    where = platform_name(platform) if platform else "every platform"
    return Result(
        Reply(Outcome.DONE, f"Unlinked {target} on {where} ({plural(count, 'account')})."),
        detail=f"unlinked {count}",
    )


async def unlink_and_tell(
    notices: NoticeSink, session: AsyncSession, practitioner_id: str, platform: str | None, now: datetime
) -> int:
    """Remove a practitioner's chat links (on one platform, or all) and tell, in the same transaction,
    each account that lost its link, addressed to it alone (it no longer reaches the practitioner,
    and its holder may not be the one who asked for this), and the practitioner through any links
    left. The one way links are removed by an admin, in chat or at the terminal. Returns how many."""
    found = await session.execute(
        select(ChatIdentity.platform, ChatIdentity.tenant, ChatIdentity.user_id).where(
            ChatIdentity.practitioner_id == practitioner_id,
            *([ChatIdentity.platform == platform] if platform is not None else []),
        )
    )
    accounts = [Principal(Platform(p), tenant, user) for p, tenant, user in found]
    count = await unlink_identities(session, practitioner_id, platform)
    if not count:
        return 0
    where = platform_name(platform) if platform else "every platform"
    told = [
        Notice(
            practitioner_id,
            "unlinked_account",
            f"This {platform_name(account.platform.value)} account is no longer linked to Signpost practitioner id "
            f"{practitioner_id}: an admin removed the link. If you did not expect this, tell your duty manager.",
            account=account,
        )
        for account in accounts
    ]
    told.append(Notice(practitioner_id, "unlinked", f"An admin removed your Signpost link on {where}."))
    await notices.enqueue(session, told, now)
    return count


async def unlink_identities(session: AsyncSession, practitioner_id: str, platform: str | None) -> int:
    stmt = delete(ChatIdentity).where(ChatIdentity.practitioner_id == practitioner_id)
    if platform is not None:
        stmt = stmt.where(ChatIdentity.platform == platform)
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult at runtime


SPECS = (
    *registration.SPECS,
    Spec(
        name="request",
        action=Action.REQUEST_ACCESS,
        run=request_access,
        summary="ask for access to a shielded record",
        usage=REQUEST_USAGE,
        stepup=StepUp.FRESH,
        writes=True,
        check=screening.details_first(
            _purpose_of, called="purpose", usage=REQUEST_USAGE, names=reference_in(lambda args: split_target(args)[0])
        ),
        names_child=reference_in(lambda args: split_target(args)[0]),
        stopped_terms=_record_named,
    ),
    Spec(
        name="approve",
        action=Action.APPROVE,
        run=approve,
        summary="approve an access or registration request",
        usage=APPROVE_USAGE,
        role=Role.DUTY_MANAGER,
        stepup=StepUp.APPROVAL,
        writes=True,
        check=parsed_by(_approve_args),
    ),
    Spec(
        name="deny",
        action=Action.DENY,
        run=deny,
        summary="deny an access or registration request",
        usage=DENY_USAGE,
        role=Role.DUTY_MANAGER,
        stepup=StepUp.APPROVAL,
        writes=True,
        check=screening.details_first(_reason_of, called="reason"),
        stopped_terms=_decision_named,
    ),
    Spec(
        name="pending",
        action=Action.PENDING,
        run=pending,
        summary="requests waiting for your decision",
        usage="pending",
        words=0,
        role=Role.DUTY_MANAGER,
        stepup=StepUp.FRESH,
    ),
    Spec(
        name="unlink",
        action=Action.UNLINK,
        run=unlink,
        summary="remove a practitioner's chat links",
        usage=UNLINK_USAGE,
        role=Role.ADMIN,
        stepup=StepUp.FRESH,
        writes=True,
        check=parsed_by(_unlink_args),
    ),
)
