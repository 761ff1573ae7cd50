"""Step-up: a fresh authenticator code before any result or decision.

- ``StepUpGate`` is a link of the dispatch chain. For a Spec declaring ``StepUp.FRESH`` or
  ``StepUp.APPROVAL`` it checks the actor's last good code against the freshness policy; if it is
  stale it parks the command server-side and answers with a ``Challenge`` holding only an opaque id.
- ``code`` verifies a code (RFC 6238, each time step accepted once, throttled in the database) and
  then runs the parked command exactly once, through the Dispatcher again, so the resumed command
  passes the whole policy chain and gets its own audit event.
- ``enrol`` starts enrolment: a one-time link for chat (the seed never travels through Slack or
  Teams), or, for the local console only, the otpauth URI so the terminal can draw the QR code.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp
from handlers.dispatch.stopped import child_named
from handlers.recipients import MOMENT, WarningKey, who_is_told
from handlers.stepup import totp
from handlers.stepup.policy import StepUpPolicy as StepUpPolicy  # its home before; imported from here
from handlers.stepup.reset import guarded_role, how_to_reset
from handlers.vocabulary import (
    Action,
    Actor,
    Challenge,
    Command,
    Link,
    Notice,
    Outcome,
    Platform,
    Principal,
    Reply,
    Role,
    ThenEnrol,
    plural,
)
from store.people import credentials
from store.people.credentials import ACTIVE, DISABLED, PENDING, CredentialState, Failure
from store.people.practitioners import Holders
from store.skew import ahead_after, stamped_ahead

Resume = Callable[[Command], Awaitable[Reply]]


def spoken(span: timedelta) -> str:
    """A policy period as a person says it: "30 minutes", "12 hours", "1 hour"."""
    minutes = int(span // timedelta(minutes=1))
    return plural(minutes // 60, "hour") if minutes % 60 == 0 else plural(minutes, "minute")


# Each message telling the person to send enrol is a ThenEnrol (its lead, then "send: enrol"): a front end
# where enrol cannot work (a piped console) says what works there instead (handlers/vocabulary.py).
NOT_ENROLLED = ThenEnrol(
    "Signpost checks a 6-digit code from an authenticator app before it shows anything, and you "
    "haven't set one up yet, so this request has not run."
)
DISABLED_TEXT = ThenEnrol(
    "Code checks are switched off for you after too many wrong codes, so Signpost can't show results. "
    "Ask your duty manager or a Signpost admin to reset your authenticator, then"
)
LOCKED_TEXT = "Too many wrong codes in a row, so code entry is paused for {minutes} more minute{s}."
# Said once, when the lock starts, and only of whoever the notice really went to.
TOLD = {
    Role.DUTY_MANAGER: "Your duty manager has been told.",
    Role.ADMIN: "Signpost's administrators have been told.",
    None: "Signpost could not tell anyone: please contact your duty manager.",
}
CHALLENGE_TEXT = "Please confirm it's you: Signpost needs a code from your authenticator app first."
PENDING_TEXT = ThenEnrol(
    "Please finish setting up your authenticator app first. If you haven't added Signpost to it yet and no "
    "longer have the QR code, secret or set-up link you were given,"
)
PROMPT = "Enter the 6-digit code your authenticator app shows now."
PROMPT_APPROVAL = "Decisions need a fresh code: enter the 6-digit code your authenticator app shows now."
PROMPT_PENDING = "Enter the 6-digit code your authenticator app shows, to finish setting it up."
WRONG = "That code didn't match. Use the code your app shows now ({left} tr{ies} left before a pause)."
# Shown under Slack's code input too, which keeps 150 characters.
ENROL_WRONG = (
    "That code didn't match. Use the code your app shows now for the account you just added "
    "({left} tr{ies} left, then the set-up starts again)."
)
ENROL_DISCARDED = ThenEnrol(
    "That set-up didn't work after {tries} wrong codes, so Signpost has cancelled it. "
    "To start again with a new QR code,"
)
REUSED = "That code was already used — wait for the next one your app shows."
MALFORMED = "A code is 6 digits. Please try again."
NO_CODE = (
    "Codes go only into the private code prompt Signpost shows you, never into a message. "
    "Send your request again and answer the prompt."
)
# A code keeps you fresh for ``idle`` after each use, ``absolute`` at most; decisions want a newer one.
ENROLLED = (
    "You're set up. Signpost will ask for a code again after {idle} without using it, {absolute} after "
    "your last code at the latest, and before a decision when your last code is more than {approval} old. "
    # A search sent before set-up was refused, not kept (``blocked``): the newcomer waits for it otherwise.
    "If you asked anything before setting up, it has not run: send it again now."
)
STALE_CHALLENGE = "Code accepted. The request it was for has expired or already ran: please send it again."
# Its key went while it waited (store/people/credentials.claim): said, never run as an empty search.
LOST = (
    "Your request could not be kept while it waited for the code (Signpost's daily deletion of old "
    "records ran meanwhile), so it has not run: please send it again."
)
REQUEST_LOST = f"Code accepted. {LOST}"
STEPPED_UP = "Code accepted: you can search for the next 30 minutes."
ALREADY_ENROLLED = ThenEnrol(
    "You already have an authenticator app set up. If you've lost it or changed phone, ask {who} to reset it, then"
)
# Who resets it (``reset.guarded_role``): a duty manager's or an admin's only an admin, on the host.
RESETS_IT = {False: "your duty manager", True: "a Signpost admin"}
# The code prompt (PROMPT_PENDING) follows each of these and asks for the code: they do not ask again.
ENROL_CHAT = (
    "Open this link within 10 minutes to set up your authenticator app. It works once and shows a QR code to scan."
)
ENROL_LINK_LABEL = "Set up authenticator"
ENROL_CONSOLE = "Scan the QR code above with your authenticator app (or add the secret by hand)."


def last_code(
    cred: CredentialState, linked_at: datetime | None, account_code_at: datetime | None, now: datetime
) -> datetime | None:
    """The last good code that covers the account asking: at the console (``linked_at`` None) the
    console's own; in a chat account, the last code typed in it, or one typed at the console since
    it was linked (the console runs on the host, for whoever holds the store and its key file: a
    code typed there proves the person as well as any, and no chat account can reach it). A code
    typed in another chat account never covers this one, however fresh: a second account taken over
    cannot ride the practitioner's code in the first, nor a newly linked account an earlier code.

    A code's time stamped by a clock ahead of ``now``'s (``store.skew``) covers nothing, and is
    passed over: were it taken as the latest, a console code typed while the clock read 2037 would
    hide every code later typed in chat, and the account would be asked for a code after each one."""
    console, own = (
        at if at is None or not stamped_ahead(at, now) else None for at in (cred.stepped_up_at, account_code_at)
    )
    if linked_at is None:
        return console
    if console is not None and console < linked_at:
        console = None
    return max((at for at in (console, own) if at is not None), default=None)


async def is_fresh(
    session: AsyncSession,
    cred: CredentialState,
    stepup: StepUp,
    now: datetime,
    policy: StepUpPolicy,
    asking: Principal,
    linked_at: datetime | None,
    account_code_at: datetime | None,
) -> bool:
    """Whether the last good code covering ``asking`` (``last_code``: its account's own, or the
    console's since the account was linked at ``linked_at``; None: the console) still covers a
    command needing ``stepup``.

    "Last use" (in this account) is read from the audit log only when the code itself is older
    than the idle window.
    """
    last = last_code(cred, linked_at, account_code_at, now)
    if cred.state != ACTIVE or last is None:
        return False
    since_code = now - last
    if stepup is StepUp.APPROVAL:
        return since_code <= policy.approval
    if since_code > policy.absolute:
        return False
    if since_code <= policy.idle:
        return True
    return await credentials.used_since(session, cred.practitioner_id, asking, now - policy.idle)


def minutes_left(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def locked_reply(
    locked_until: datetime, now: datetime, told: Holders | None = None, outcome: Outcome = Outcome.REFUSED
) -> Reply:
    """The refusal while code entry is paused; ``told`` (when the lock has just started) says who knows."""
    minutes = minutes_left(locked_until, now)
    text = LOCKED_TEXT.format(minutes=minutes, s="" if minutes == 1 else "s")
    return Reply(outcome, text if told is None else f"{text} {TOLD[told.role]}")


def challenged(text: str | ThenEnrol, challenge: Challenge) -> Reply:
    """The reply that asks for a code: ``text`` (which may tell them to send enrol) and the prompt."""
    if isinstance(text, ThenEnrol):
        return text.reply(Outcome.CHALLENGED, challenge)
    return Reply(Outcome.CHALLENGED, text, challenge=challenge)


def blocked(cred: CredentialState | None, now: datetime) -> Result | None:
    """The answer when no code could help right now (no credential, disabled, locked)."""
    if cred is None:
        return Result(NOT_ENROLLED.reply(Outcome.REFUSED), detail="not enrolled")
    if cred.state == DISABLED:
        return Result(DISABLED_TEXT.reply(Outcome.REFUSED), detail="stepup disabled")
    if cred.locked_until is not None and cred.locked_at(now):
        return Result(locked_reply(cred.locked_until, now), detail="stepup locked")
    return None


class StepUpGate:
    """The dispatch-chain link that asks for a code before results and decisions."""

    def __init__(self, policy: StepUpPolicy) -> None:
        self.policy = policy

    async def __call__(self, ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
        if spec.stepup is StepUp.NONE or req.actor is None:
            return None
        cred = req.standing.credential  # read with the actor, in this command's transaction
        stop = blocked(cred, req.now)
        if stop is not None or cred is None:
            return stop
        standing = req.standing
        asking = req.command.principal
        if await is_fresh(
            session, cred, spec.stepup, req.now, self.policy, asking, standing.linked_at, standing.account_code_at
        ):
            return None
        return await self._challenge(ctx, spec, req, session, cred)

    async def _challenge(
        self, ctx: Context, spec: Spec, req: Request, session: AsyncSession, cred: CredentialState
    ) -> Result:
        command = req.command
        # The date of birth the command names, and the child it names by reference: what was typed
        # is parked, and its audit event's terms sealed, under the one key that dies with them.
        born = spec.born_in(req.args, req.now.date()) if (req.args and spec.born_in) else None
        child = await child_named(ctx, spec, req, session) if req.args else None

        async def park(w: AsyncSession) -> str:
            return await credentials.park(
                w,
                ctx.keys,
                principal=command.principal,
                practitioner_id=cred.practitioner_id,
                spec_name=spec.name,
                channel=command.channel,
                text=command.text,
                now=req.now,
                ttl=self.policy.challenge_ttl,
                idempotency_key=command.idempotency_key,
                born=born,
                child_kek=None if child is None or child.key is None else child.key.kek_id,
                child_destroyed=child is not None and child.destroyed,
            )

        text: str | ThenEnrol
        if cred.state == PENDING:
            text, prompt = PENDING_TEXT, PROMPT_PENDING
        else:
            text, prompt = CHALLENGE_TEXT, PROMPT_APPROVAL if spec.stepup is StepUp.APPROVAL else PROMPT
        key = command.idempotency_key
        if key is not None:
            # A double click, or a delivery the platform sent again, while its code is awaited:
            # the same prompt again, not a second parked command nor a second audit event.
            waiting = await credentials.waiting(session, cred.practitioner_id, command.principal, key, req.now)
            if waiting is not None:
                again = challenged(text, Challenge(waiting, prompt))
                return Result(again, detail="stepup required; asked again", repeat=True)
        # A writing command parks in its own transaction; a reading one in a short write
        # transaction the dispatcher opens once it has handed its read connection back.
        challenge_id = await req.write(park)
        reply = challenged(text, Challenge(challenge_id, prompt))
        # The query is sealed into the audit event like any other (misuse shows even without a code).
        if child is None:
            return Result(reply, terms=req.args, detail="stepup required", child_named=True)
        return Result(
            reply,
            terms=req.args,
            detail="stepup required",
            subject_key=child.key,
            withhold_terms=child.destroyed,
            child_named=True,
        )


class CodeCommand:
    """``code``: verify a code, then run the parked command it was asked for, exactly once.

    Not a ``writes`` Spec on purpose: the verification commits in its own short transaction
    (``Request.write``) *before* the parked command is dispatched again, because that command must see the new
    freshness (a gate on another connection cannot see uncommitted rows) and, on SQLite, may
    itself need the single write lock.
    """

    def __init__(self, resume: Resume, policy: StepUpPolicy) -> None:
        self.resume = resume
        self.policy = policy

    async def __call__(self, ctx: Context, req: Request, session: AsyncSession) -> Result:
        command = req.command
        if command.code is None:
            return Result(Reply(Outcome.INVALID, NO_CODE), detail="no code")
        actor = req.actor
        assert actor is not None  # the identity gate ran
        # Committed before the parked command runs again (it must see the new freshness).
        outcome = await req.write(lambda writer: self._verify(ctx, writer, actor, command, req.now))
        if isinstance(outcome, Result):
            return outcome
        parked, was_pending = outcome
        return await self._continue(command, parked, was_pending)

    async def _verify(
        self, ctx: Context, w: AsyncSession, actor: Actor, command: Command, now: datetime
    ) -> Result | tuple[credentials.Parked | None, bool]:
        pid = actor.practitioner_id
        cred = await credentials.get(w, pid)
        stop = blocked(cred, now)
        if stop is not None or cred is None:
            return stop or Result(NOT_ENROLLED.reply(Outcome.REFUSED), detail="not enrolled")
        prompt = PROMPT_PENDING if cred.state == PENDING else PROMPT
        try:
            code = totp.normalise(command.code or "")
        except totp.MalformedCode:
            return self._retry(command.challenge_id, prompt, MALFORMED, "code malformed")
        seed = await credentials.load_seed(w, ctx.keys, pid)
        at = authenticators_now(ctx, now)
        step = None if seed is None else totp.matching_step(seed, code, at, self.policy.window)
        ahead = ahead_step(at)
        if step is not None and await credentials.accept_step(w, pid, step, now, command.principal, ahead):
            parked = None
            if command.challenge_id:
                parked = await credentials.claim(w, ctx.keys, command.challenge_id, command.principal, now)
            return parked, cred.state == PENDING
        if step is not None and await _already_accepted(w, pid, step, ahead):
            # This practitioner's own good code, sent again (a double click, a retried submit): it
            # is not a guess, so it neither counts towards a lockout nor alarms the duty managers.
            return self._retry(command.challenge_id, prompt, REUSED, "code reused")
        if cred.state == PENDING:
            return await self._enrolment_typo(w, pid, command.challenge_id, now)
        p = self.policy
        failure = await credentials.record_failure(
            w, pid, now, lock_after=p.lock_after, lock_for=p.lock_for, disable_after=p.disable_after
        )
        managers = Holders((), None)
        if failure is not None and (failure.newly_locked or failure.newly_disabled):  # only these are told
            kind = "stepup_disabled" if failure.newly_disabled else "stepup_locked"
            managers = await who_is_told(w, ctx.reaches, actor.local_authority, kind=kind, excluding=(pid,))
        await ctx.notices.enqueue(w, managers_notices(managers, actor, failure, p), now)
        return self._failed(command.challenge_id, prompt, failure, now, managers)

    async def _enrolment_typo(self, w: AsyncSession, pid: str, challenge_id: str | None, now: datetime) -> Result:
        """A wrong first code while setting up: asked again on the same prompt, never a lockout
        (no pause, no duty manager told, no ``locked`` event for the misuse rules); after
        ``enrol_tries`` the set-up is discarded, its links and waiting requests with it."""
        tries = self.policy.enrol_tries
        # Counted in the one failure count (a good code resets it), with bounds it never reaches.
        failure = await credentials.record_failure(
            w, pid, now, lock_after=tries + 1, lock_for=timedelta(0), disable_after=tries + 1
        )
        if failure is None:
            return Result(NOT_ENROLLED.reply(Outcome.REFUSED), detail="not enrolled")
        if failure.failures >= tries:
            await credentials.reset(w, pid)
            said = ENROL_DISCARDED.format(tries=tries)
            return Result(said.reply(Outcome.REFUSED), detail="enrolment code wrong; set-up discarded")
        left = tries - failure.failures
        error = ENROL_WRONG.format(left=left, ies="y" if left == 1 else "ies")
        return self._retry(challenge_id, PROMPT_PENDING, error, "enrolment code wrong")

    def _retry(self, challenge_id: str | None, prompt: str, error: str, detail: str) -> Result:
        if challenge_id is None:
            return Result(Reply(Outcome.INVALID, error), detail=detail)
        # The error is the reply's one line (no generic "Code not accepted." before it); the
        # challenge carries it too, for a front end that shows it beside the code input instead.
        challenge = Challenge(challenge_id, prompt, error=error)
        return Result(Reply(Outcome.CHALLENGED, error, challenge=challenge), detail=detail)

    def _failed(
        self,
        challenge_id: str | None,
        prompt: str,
        failure: Failure | None,
        now: datetime,
        told: Holders,
    ) -> Result:
        if failure is None:
            return Result(NOT_ENROLLED.reply(Outcome.REFUSED), detail="not enrolled")
        what = "code wrong"
        if failure.newly_disabled:
            return Result(DISABLED_TEXT.reply(Outcome.REFUSED), detail=f"{what}; disabled")
        if failure.newly_locked and failure.locked_until is not None:
            # The lockout itself is audited as such (misuse rules count these), not as a refusal.
            return Result(locked_reply(failure.locked_until, now, told, Outcome.LOCKED), detail=f"{what}; locked")
        left = self.policy.lock_after - failure.failures % self.policy.lock_after
        error = WRONG.format(left=left, ies="y" if left == 1 else "ies")
        return self._retry(challenge_id, prompt, error, what)

    def enrolled_text(self) -> str:
        """What a newly enrolled person is told about when codes are asked for, from this policy."""
        p = self.policy
        return ENROLLED.format(idle=spoken(p.idle), absolute=spoken(p.absolute), approval=spoken(p.approval))

    async def _continue(self, command: Command, parked: credentials.Parked | None, was_pending: bool) -> Result:
        if parked is not None and parked.lost and not parked.expired:
            said = f"{self.enrolled_text()} {LOST}" if was_pending else REQUEST_LOST
            return Result(Reply(Outcome.DONE, said), detail="code ok; request lost")
        if parked is not None and parked.spec_name is not None and not parked.expired:
            resumed = Command(
                principal=command.principal,
                text=parked.text,
                correlation_id=command.correlation_id,  # the two audit events share it
                channel=parked.channel,
                idempotency_key=parked.idempotency_key,
            )
            return Result(await self.resume(resumed), detail="code ok; resumed")
        if was_pending:
            return Result(Reply(Outcome.DONE, self.enrolled_text()), detail="code ok; enrolled")
        if command.challenge_id is None:
            return Result(Reply(Outcome.DONE, STEPPED_UP), detail="code ok")
        if parked is None or parked.expired:
            return Result(Reply(Outcome.DONE, STALE_CHALLENGE), detail="code ok; challenge gone")
        return Result(Reply(Outcome.DONE, STEPPED_UP), detail="code ok")


def ahead_step(at: datetime) -> int:
    """The time step a last accepted step later than was accepted by a clock ahead of ``at``'s
    (``store.skew``): it refuses no code (``credentials.accept_step``)."""
    return totp.time_step(ahead_after(at))


async def _already_accepted(w: AsyncSession, practitioner_id: str, step: int, ahead: int) -> bool:
    """Whether ``step`` (the step the code matched) is at or before the last step accepted for this
    practitioner (and that one no later than ``ahead``, ``ahead_step``): the code is one they
    already used successfully. Read after a refused accept, so a concurrent double submission sees
    the step its twin just accepted."""
    cred = await credentials.get(w, practitioner_id)
    return cred is not None and 0 < cred.last_step <= ahead and step <= cred.last_step


def managers_notices(
    managers: Iterable[str], actor: Actor, failure: Failure | None, policy: StepUpPolicy
) -> list[Notice]:
    """Tell the duty managers when a practitioner's code entry locks or is disabled (no child data)."""
    if failure is None or not (failure.newly_locked or failure.newly_disabled):
        return []
    pid = actor.practitioner_id
    who = f"{pid} ({actor.role}, {actor.organisation})"
    if failure.newly_disabled:
        kind = "stepup_disabled"
        text = (
            f"Signpost switched off code checks for practitioner {who} after {failure.failures} wrong "
            f"codes in a row. They can't see results until their authenticator is reset and they enrol again. "
            f"{how_to_reset(actor)}"
        )
    else:
        kind = "stepup_locked"
        minutes = int(policy.lock_for.total_seconds() // 60)
        text = (
            f"Signpost paused code entry for practitioner {who} for {minutes} minutes after "
            f"{failure.failures} wrong codes in a row. If that wasn't them, someone else may be "
            "using their chat account."
        )
    key = LOCKOUT.shared(kind, actor.practitioner_id, f"{failure.failures}:{failure.locked_until}")
    return [Notice(recipient_id=m, kind=kind, text=text, dedupe_key=f"{key}:{m}") for m in managers]


# The key ``managers_notices`` gives each copy of a lockout (``WarningKey``): the failures and the end
# of the lock (None once disabled) after the practitioner concerned, so a stand-in reads them back.
LOCKOUT = WarningKey({"stepup_locked", "stepup_disabled"}, rf"\d+:(?:None|{MOMENT})")


class EnrolCommand:
    """``enrol``: a new pending credential, and a private way to see its secret exactly once."""

    def __init__(self, base_url: str, policy: StepUpPolicy) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy

    async def __call__(self, ctx: Context, req: Request, session: AsyncSession) -> Result:
        assert req.actor is not None  # the identity gate ran
        pid = req.actor.practitioner_id
        cred = await credentials.get(session, pid)
        if cred is not None and cred.state == ACTIVE:
            who = RESETS_IT[guarded_role(req.actor) is not None]
            return Result(ALREADY_ENROLLED.format(who=who).reply(Outcome.REFUSED), detail="already enrolled")
        if cred is not None and cred.state == DISABLED:
            return Result(DISABLED_TEXT.reply(Outcome.REFUSED), detail="stepup disabled")
        seed = totp.new_seed()
        await credentials.enrol(session, ctx.keys, pid, seed, req.now)
        challenge = Challenge(await self._park(ctx, session, req, pid), PROMPT_PENDING)
        principal = req.command.principal
        if principal.platform is Platform.CONSOLE:
            # The console is a local terminal: it draws the QR code itself. No chat platform
            # ever receives the seed; they get a one-time link to Signpost's own page.
            uri = totp.provisioning_uri(seed, pid)
            reply = Reply(Outcome.DONE, ENROL_CONSOLE, challenge=challenge, enrolment_uri=uri)
            return Result(reply, detail="enrolment started")
        token = await credentials.issue_token(session, pid, req.now, self.policy.link_ttl)
        link = f"{self.base_url}/enrol/{token}"
        reply = Reply(Outcome.DONE, ENROL_CHAT, links=(Link(ENROL_LINK_LABEL, link),), challenge=challenge)
        return Result(reply, detail="enrolment started")

    async def _park(self, ctx: Context, session: AsyncSession, req: Request, pid: str) -> str:
        # Nothing to resume: the challenge only lets the front end show a code prompt.
        return await credentials.park(
            session,
            ctx.keys,
            principal=req.command.principal,
            practitioner_id=pid,
            spec_name=None,
            channel=req.command.channel,
            text="",
            now=req.now,
            ttl=self.policy.link_ttl,
        )


def make_specs(resume: Resume, base_url: str, policy: StepUpPolicy | None = None) -> tuple[Spec, ...]:
    """The ``enrol`` and ``code`` commands; ``resume`` dispatches a parked command again."""
    policy = policy or StepUpPolicy()
    return (
        Spec(
            name="enrol",
            action=Action.ENROL,
            run=EnrolCommand(base_url, policy),
            summary="set up the authenticator app Signpost asks codes from",
            usage="enrol",
            words=0,
            role=None,  # any registered person, whatever their roles
            writes=True,
            audit_terms=False,
        ),
        Spec(
            name="code",
            action=Action.CODE,
            run=CodeCommand(resume, policy),
            role=None,  # any registered person, whatever their roles
            audit_terms=False,  # the verification commits apart, through Request.write
        ),
    )


def authenticators_now(ctx: Context, now: datetime) -> datetime:
    """The time a code is checked against: the command's, unless a rehearsal moved Signpost's time
    (``Context.authenticators``), when authenticator apps still follow the real one."""
    return now if ctx.authenticators is None else ctx.authenticators.now()


async def shown_step(
    ctx: Context, session: AsyncSession, practitioner_id: str, codes: Iterable[str], now: datetime
) -> int | None:
    """The latest time step whose code, among ``codes`` (six ASCII digits each), ``practitioner_id``'s
    authenticator app shows now: one the code prompt would take (``CodeCommand``: the same time, the
    same window), used already or not; None when none is, and without a credential. The seed is read
    (decrypted) once, and only when there is a code to compare."""
    wanted = list(codes)
    if not wanted:
        return None
    seed = await credentials.load_seed(session, ctx.keys, practitioner_id)
    if seed is None:
        return None
    at, window = authenticators_now(ctx, now), ctx.policy.stepup.window
    steps = [step for code in wanted if (step := totp.matching_step(seed, code, at, window)) is not None]
    return max(steps, default=None)


async def spend_shown(ctx: Context, req: Request, session: AsyncSession, codes: Iterable[str]) -> bool:
    """Whether any of ``codes`` is one the asker's app shows now (``shown_step``), for screening free
    text (handlers/access/screening.py). A code found is spent, as if used at the prompt
    (``credentials.spend_step``): it was written where others may read it, and free text must be no
    way to try codes, which the prompt stops after ``lock_after`` wrong ones in a row (a code learnt
    so is refused as used)."""
    actor = req.actor
    if actor is None:
        return False
    step = await shown_step(ctx, session, actor.practitioner_id, codes, req.now)
    if step is None:
        return False
    ahead = ahead_step(authenticators_now(ctx, req.now))
    await req.write(lambda w: credentials.spend_step(w, actor.practitioner_id, step, ahead))
    return True
