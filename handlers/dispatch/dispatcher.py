"""Parse → policy chain (identity, role, switch-off, step-up) → handler → audit → reply.

Cross-cutting concerns wrap every handler once, here. The chain fails closed: if any gate or the
audit write fails, the person gets a generic error and no result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access.screening import MAX_TEXT
from handlers.context import Context
from handlers.dispatch.chain import BASE, Gate
from handlers.dispatch.spec import (
    ADMIT,
    Audience,
    Request,
    Result,
    Spec,
    StepUp,
    WriteApart,
    checked,
    usage_answer,
)
from handlers.dispatch.stopped import child_named
from handlers.examples import for_this_store
from handlers.grammar import MAX_COMMAND_TEXT, MAX_COMMAND_WORDS, TOO_LONG, Parsed, UsageError, parse
from handlers.metrics import record_command
from handlers.vocabulary import (
    LOOKUP_ACTIONS,
    REACHED_OUTCOMES,
    Action,
    Actor,
    Audited,
    Command,
    Outcome,
    Reply,
)
from store.audit.log import AuditRecord, AuditWriteFailed, append, candidates_detail, write_also
from store.db import once_more_if_lost
from store.delivery import deliveries
from store.lifecycle.decommission import is_switched_off
from store.people import standing

log = structlog.get_logger("signpost.dispatch")
T = TypeVar("T")


ERROR_TEXT = "Sorry, something went wrong on our side. It has been logged with reference {ref}."
AUDIT_FAILED_TEXT = "Signpost could not record this request, so it cannot answer it. Please try again shortly."
# The answer to a redelivered request or a second click: front ends show nothing new for it.
DUPLICATE = Reply(Outcome.INFO, "Already received: Signpost acted on this once and will not repeat it.")
# A transient command typed where its answer must not stay (``Dispatcher.offer``): what its event says.
OFFERED_DETAIL = "offered in a private window, not opened: nothing shown"
OFFERED_TEXT = "Signpost shows this in a private window, so it is not kept in this chat."
# Outcomes whose event says the person was told something (an answer, a change made, information):
# the others (refused, not understood, failed, a code asked for) say already that nothing was shown.
TOLD_OUTCOMES = REACHED_OUTCOMES | {Outcome.DONE, Outcome.INFO}
NOT_SHOWN_REASON = re.compile(r"[^A-Za-z0-9_.:-]")  # a reason code keeps these only (no payload gets in)


class _ToRecord(NamedTuple):
    """A reading's answer, and the event the audit writer is to record for it."""

    result: Result
    actor: Actor | None
    record: AuditRecord


async def usage_for_this_store(session: AsyncSession, result: Result) -> Result:
    """A gate's or a handler's answer to text that did not fit, its examples as this store's people
    should read them (handlers/examples.py): the demo's only on the demo store."""
    if result.reply.outcome is not Outcome.INVALID:
        return result
    text = await for_this_store(session, result.reply.text)
    return result if text == result.reply.text else replace(result, reply=replace(result.reply, text=text))


TOO_LONG_TEXT = (
    f"That message is too long for a command: Signpost reads at most {MAX_COMMAND_TEXT:,} characters "
    f"and {MAX_COMMAND_WORDS:,} words at a time (a purpose, a reason or a message at most {MAX_TEXT:,} "
    "characters). Send help to see what you can ask."
)


async def refuse_too_long(ctx: Context, req: Request, session: AsyncSession) -> Result:
    """The answer to text too long to be a command (``grammar.too_long``): none of it was read."""
    return Result(Reply(Outcome.REFUSED, TOO_LONG_TEXT), detail=TOO_LONG)


# Every dispatcher's, whatever commands it serves: answered to anyone, also once switched off, with
# no code asked, and audited without its text (``audit_terms``), which ``parse`` did not keep.
TOO_LONG_SPEC = Spec(
    name=TOO_LONG,
    action=Action.USAGE,
    run=refuse_too_long,
    audience=Audience.ANYONE,
    role=None,
    after_switch_off=True,
    keyword=False,
    audit_terms=False,
)


def asked_for_code(spec: Spec, result: Result) -> bool:
    """Whether a command that declares a step-up was stopped to ask for a code, not run: its
    delivery is not claimed, so the same click may act once the person has one. A ``code`` that
    is asked again (wrong, malformed, reused) was an attempt all the same: its delivery is claimed
    with its event, so a redelivery (Teams sends a slow invoke again) is neither counted towards a
    lockout nor audited a second time."""
    return result.reply.outcome is Outcome.CHALLENGED and spec.stepup is not StepUp.NONE


def tells_about_a_child(action: Action, result: Result) -> bool:
    """Whether a reply that is not shown must be recorded as such (``Dispatcher.not_shown``): its
    event names a child (an answer, a shielded record, a decision, a relayed message read) or is a
    lookup or search that reached the register, and says the person was told. Help, the App Home,
    enrolment and the person's own history name no child: their events stand as they are."""
    if result.reply.outcome not in TOLD_OUTCOMES:
        return False
    return bool(result.subjects) or action in LOOKUP_ACTIONS


@dataclass
class Dispatcher:
    ctx: Context
    specs: dict[str, Spec]
    gates: Sequence[Gate] = BASE
    # Delivery ids being answered in this process, until their claims are durable with their events.
    _answering: set[str] = field(init=False, default_factory=set)

    @classmethod
    def build(cls, ctx: Context, specs: Sequence[Spec], gates: Sequence[Gate] = BASE) -> Dispatcher:
        """``gates``: the policy chain, in order (``handlers.dispatch.chain.policy_chain``)."""
        return cls(ctx, {s.name: s for s in specs}, tuple(gates))

    @property
    def keywords(self) -> frozenset[str]:
        return frozenset(name for name, spec in self.specs.items() if spec.keyword)

    def resolve(self, text: str) -> tuple[Spec, Parsed]:
        """The command this text asks for, and the Spec that governs it (no database)."""
        parsed = parse(text, self.keywords)
        if parsed.name == TOO_LONG:
            return TOO_LONG_SPEC, parsed
        spec = self.specs.get(parsed.name) or self.specs["usage"]
        return spec.for_args(parsed.args), parsed

    def may_need_code(self, text: str) -> bool:
        """Whether answering this text may take a step-up code first: its command declares a step-up
        and its arguments pass the command's own check (``Spec.check``, ``Spec.words``).

        From the text alone, without the database, so that a front end can open a placeholder at
        once (Slack's trigger id expires in 3 seconds); the answer may still be the result itself.
        """
        spec, parsed = self.resolve(text)
        if spec.stepup is StepUp.NONE:
            return False
        return not self._refused_at_once(spec, parsed.args)

    def steps_up(self, text: str) -> bool:
        """Whether this text's command declares a step-up (a search, a lookup, a decision), however
        its arguments are written: a front end answers such a command in its ack when it can."""
        spec, _ = self.resolve(text)
        return spec.stepup is not StepUp.NONE

    def answered_at_once(self, text: str) -> bool:
        """Whether this text's command is answered by its own check, without running (a word too
        many, a malformed reference): a front end that would refuse running it can leave it be."""
        spec, parsed = self.resolve(text)
        return self._refused_at_once(spec, parsed.args)

    def _refused_at_once(self, spec: Spec, args: str) -> bool:
        """Whether the command's own check answers this text at once (a malformed search): it is
        then answered before any code, and a front end need not open a placeholder for it."""
        try:
            return checked(spec, args, self.ctx.clock.now()) is not None
        except UsageError:
            return True

    def writes(self, text: str) -> bool:
        """Whether this text asks for a change (a decision, a request, a message), not just a reading.

        A front end replaces a clicked notice with the outcome of a change; a reading (a relayed
        message shown with ``relay 7``) is shown privately and leaves the notice as it was.
        """
        spec, _ = self.resolve(text)
        return spec.writes

    def transient(self, text: str) -> bool:
        """Whether this text's answer must not persist in a chat's history (``Spec.transient``).

        From the text alone: a front end whose chat keeps what the bot posts (Teams) then runs it
        only where nothing is kept (a dialog), so it is audited when it is shown, not when offered.
        """
        spec, _ = self.resolve(text)
        return spec.transient

    async def offer(self, command: Command) -> Reply:
        """A transient command (``Spec.transient``: ``relay 7``) typed where its answer must not be
        shown, a chat that keeps what the bot posts (Teams): not run. The reply offers it (marked
        ``Reply.transient``, which such a front end shows as a button opening a private window that
        runs it: each opening is a reading, audited then). Its event says so: the command's action,
        information given, ``OFFERED_DETAIL``, naming no child (nothing of one was read or shown).
        Any other text, or a transient one its own check refuses (a typo), is handled as ever."""
        spec, parsed = self.resolve(command.text)
        if not spec.transient or self._refused_at_once(spec, parsed.args):
            return await self.handle(command)
        started = time.perf_counter()
        actor = None
        try:
            async with self.ctx.db.read() as session:
                asking = await standing.read(session, command.principal)
        except Exception as exc:  # as a command whose standing cannot be read: recorded without one
            log.warning("offered_actor_unread", correlation_id=command.correlation_id, error=type(exc).__name__)
        else:
            actor = asking.actor
            if actor is None or is_switched_off(asking.switch_off, self.ctx.clock.now().date()):
                # Nothing to offer to someone not registered, nor once Signpost is switched off: the
                # gates answer it as they answer any command ("register first", "switched off").
                return await self.handle(command)
        try:
            result = Result(Reply(Outcome.INFO, OFFERED_TEXT, transient=command.text), detail=OFFERED_DETAIL)
            await self.ctx.audit.record(
                chat_event(command, actor, spec.action, result, self.ctx.clock.now()),
                claim=deliveries.account_key(command),
            )
        except deliveries.AlreadyClaimed:
            return DUPLICATE
        except AuditWriteFailed:
            log.error("audit_write_failed", action=spec.action, correlation_id=command.correlation_id)
            result = Result(Reply(Outcome.FAILED, AUDIT_FAILED_TEXT), detail="audit failed")
        self._counted(command, spec.action, result.reply.outcome, result.detail, started)
        return result.reply

    def wants_profile(self, text: str) -> bool:
        """Whether the front end should look up and pass the account's display name and email."""
        spec, _ = self.resolve(text)
        return spec.wants_profile

    async def handle(self, command: Command) -> Reply:
        """Answer one command; exactly one audit event is durable before this returns. A delivery
        seen before has its first one: a duplicate (``DUPLICATE``), or a challenged one asked again
        while its code is awaited (the same prompt, ``Result.repeat``)."""
        started = time.perf_counter()
        bound = log.bind(correlation_id=command.correlation_id, platform=command.principal.platform.value)
        now = self.ctx.clock.now()
        spec, parsed = self.resolve(command.text)
        try:
            reply, outcome_detail = await self._run(spec, command, parsed, now)
        except AuditWriteFailed:
            bound.error("audit_write_failed", action=spec.action)
            reply, outcome_detail = Reply(Outcome.FAILED, AUDIT_FAILED_TEXT), "audit failed"
        if spec.transient and reply is not DUPLICATE and reply.transient is None:
            # The one place a transient command's reply is marked; a resumed one (after ``code``)
            # keeps its mark through the code command's reply.
            reply = replace(reply, transient=command.text)
        self._counted(command, spec.action, reply.outcome, outcome_detail, started)
        return reply

    def _counted(self, command: Command, action: Action, outcome: Outcome, detail: str, started: float) -> None:
        """The command's metric and its one ``command`` log line (fixed text and codes only)."""
        elapsed = time.perf_counter() - started
        record_command(self.ctx.metrics, action, outcome, elapsed)
        log.info(
            "command",
            correlation_id=command.correlation_id,
            platform=command.principal.platform.value,
            action=action,
            outcome=outcome.value,
            detail=detail,
            ms=round(elapsed * 1000, 2),
        )

    async def _run(self, spec: Spec, command: Command, parsed: Parsed, now: datetime) -> tuple[Reply, str]:
        key = deliveries.account_key(command)
        if key is None:
            return await self._attempt(spec, command, parsed, now, None)
        if key in self._answering:
            # The same delivery is being answered right now: its claim is not durable yet.
            return DUPLICATE, "duplicate"
        self._answering.add(key)
        try:
            return await self._attempt(spec, command, parsed, now, key)
        except deliveries.AlreadyClaimed:
            return DUPLICATE, "duplicate"  # answered first by another replica; its event stands
        finally:
            self._answering.discard(key)

    async def _attempt(
        self, spec: Spec, command: Command, parsed: Parsed, now: datetime, key: str | None
    ) -> tuple[Reply, str]:
        claim = key
        try:
            # The one home of the retry on a lost connection: every command's unit of work runs
            # here, and again on a fresh connection if the pool gave it a dead one before it asked
            # for any commit (``once_more_if_lost``). What it did was never committed, and nothing
            # leaves it but through the store (notices wait in the outbox, reports for ``after_commit``).
            answer = await once_more_if_lost(
                lambda: self._answer(spec, command, parsed, now, key), correlation_id=command.correlation_id
            )
        except AuditWriteFailed:
            raise
        except Exception:
            log.exception("command_failed", correlation_id=command.correlation_id, action=spec.action)
            result = Result(Reply(Outcome.FAILED, ERROR_TEXT.format(ref=command.correlation_id[:8])), detail="error")
            actor, claim = None, None  # nothing was done: a retry of the same delivery may try again
            async with self.ctx.db.read() as session:
                record = await self._record(session, spec, command, actor, result, now, with_terms=False)
        else:
            if not isinstance(answer, _ToRecord):
                return answer
            result, actor, record = answer
            if asked_for_code(spec, result):
                claim = None  # only asked for a code: the same click may act once the person has one
        # The claim commits in the event's transaction: never "seen" without the event.
        seq = await self.ctx.audit.record(record, claim=claim, also=result.also)
        return answered(spec.action, command, result, seq, actor), result.detail

    async def _answer(
        self, spec: Spec, command: Command, parsed: Parsed, now: datetime, key: str | None
    ) -> tuple[Reply, str] | _ToRecord:
        """The command's unit of work: the answer, audited already (a command that writes: its
        event in its own transaction), or the answer with the event the audit writer is to record."""
        if spec.writes:
            async with self.ctx.db.write() as session:
                # Claimed in the command's transaction: the claim and the change stand or fall together.
                if key and not await deliveries.claim(session, key, now):
                    return DUPLICATE, "duplicate"
                asking = await standing.read(session, command.principal)
                result, actor = await self._chain(spec, command, parsed, now, session, joined(session), asking)
                if key and asked_for_code(spec, result):
                    await deliveries.release(session, key)
                if result.repeat:
                    return result.reply, result.detail  # its first event stands for it
                record = await self._record(session, spec, command, actor, result, now, writer=True)
                [also] = await write_also(session, self.ctx.notices, [result.also])
                *_, seq = await append(session, [*also, record])
            return answered(spec.action, command, result, seq, actor), result.detail
        async with self.ctx.db.read() as session:
            ahead = None if spec.read_ahead is None else spec.read_ahead(parsed.args, now)
            asking = await standing.read(session, command.principal, key, ahead)
            if asking.seen:
                return DUPLICATE, "duplicate"
            result, actor = await self._chain(spec, command, parsed, now, session, self._apart(session), asking)
            if result.repeat:
                return result.reply, result.detail  # its first event stands for it
            record = await self._record(session, spec, command, actor, result, now)
        return _ToRecord(result, actor, record)

    def _apart(self, session: AsyncSession) -> WriteApart:
        """A read-only command's way to write: its read connection goes back to the pool *before*
        a write one is taken, so a morning burst of challenged searches does not hold every pooled
        connection while each waits for another (the session takes a fresh connection if it is
        used again, to seal the audit terms)."""

        async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
            await session.close()
            async with self.ctx.db.write() as writer:
                return await work(writer)

        return write

    async def refuse_unheard(
        self,
        command: Command,
        detail: str,
        *,
        action: Action = Action.UNTRUSTED_SOURCE,
        outcome: Outcome = Outcome.REFUSED,
        logged: bool = True,
        verified: bool = False,
    ) -> None:
        """Audit a request its front end refused before any handler saw it: an untrusted channel or
        tenant (the principal is what the request claimed, unverified), or a signed click whose
        button cannot be read (``usage``, invalid). ``detail`` is fixed text, never input, and the
        command's text is not recorded. Counted in the metrics like any answered command.

        ``verified``: the request came over an authenticated path (a verified signature or token,
        the app's own Socket Mode link), so its principal is who sent it: the event names the
        practitioner linked to it, if any, found as every command's is (``standing.read``), and a
        query by practitioner finds it. Unverified (the default), it names no practitioner: the
        identity is only what the request claimed. If the link cannot be read, the event is still
        written, naming no practitioner (as a command that failed before its standing was read)."""
        started = time.perf_counter()
        actor = None
        if verified:
            try:
                async with self.ctx.db.read() as session:
                    actor = (await standing.read(session, command.principal)).actor
            except Exception as exc:  # as a command whose standing cannot be read: recorded without one
                log.warning("refused_actor_unread", correlation_id=command.correlation_id, error=type(exc).__name__)
        result = Result(Reply(outcome, ""), detail=detail)
        record = chat_event(command, actor, action, result, self.ctx.clock.now())
        await self.ctx.audit.record(record)
        record_command(self.ctx.metrics, action, outcome, time.perf_counter() - started)
        if logged:  # else the front end has logged it, in its own terms
            log.warning("request_refused_unheard", correlation_id=command.correlation_id, detail=detail)

    async def not_shown(self, reply: Reply, reason: str) -> None:
        """Record that ``reply`` never reached the person: its front end could not deliver it (the
        platform refused it, or could not be reached). One ``answer_not_shown`` event, failed, under
        the same request id and naming the same children as the event that answered
        (``Reply.audited``), with ``reason``: a short code (a platform's error code, an HTTP status),
        never anything the reply or the request held. A reply without ``audited`` (a duplicate, a
        code prompt, help, "busy") records nothing. Called only when a delivery failed, once for
        it; never raises (the front end has logged the failure; a failed write is logged here)."""
        audited = reply.audited
        if audited is None:
            return
        code = NOT_SHOWN_REASON.sub("_", reason)[:60] or "unknown"
        detail = f"the answer to event {audited.event} was not shown to the practitioner: {code}"
        command = Command(audited.principal, "", audited.request_id, channel=audited.channel)
        result = Result(Reply(Outcome.FAILED, ""), subjects=audited.subjects, detail=detail)
        record = chat_event(command, audited.actor, Action.ANSWER_NOT_SHOWN, result, self.ctx.clock.now())
        try:
            await self.ctx.audit.record(record)
        except AuditWriteFailed:
            log.error("audit_write_failed", action=Action.ANSWER_NOT_SHOWN.value, correlation_id=audited.request_id)

    async def _chain(
        self,
        spec: Spec,
        command: Command,
        parsed: Parsed,
        now: datetime,
        session: AsyncSession,
        write: WriteApart,
        asking: standing.Standing,
    ) -> tuple[Result, Actor | None]:
        actor = asking.actor
        req = Request(command, asking, parsed.args, now, write)
        for gate in self.gates:
            verdict = await gate(self.ctx, spec, req, session)
            if verdict is ADMIT:
                break
            if verdict is not None:
                return await usage_for_this_store(session, await self._stopped(spec, req, session, verdict)), actor
        try:
            result = await spec.run(self.ctx, req, session)
        except UsageError as exc:
            result = usage_answer(spec, exc)
        return await usage_for_this_store(session, result), actor

    async def _stopped(self, spec: Spec, req: Request, session: AsyncSession, stopped: Result) -> Result:
        """A gate's answer to a command it stopped before the handler ran. When it keeps the
        command's terms (a code asked for first) and they name a child by reference
        (``Spec.names_child``), they are sealed as the handler's answer would seal them: under the
        child's key, so they die with it; none kept for a child already destroyed; a reference that
        names no child as before. The gate that parks the command has read that child already
        (``stopped.child_named``, and parked it under the same key); otherwise it is read here
        (handlers/dispatch/stopped.py). A command whose free text is screened once it runs keeps
        only what ``Spec.stopped_terms`` says."""
        if stopped.terms and spec.stopped_terms is not None:
            stopped = replace(stopped, terms=spec.stopped_terms(req.args))
        if not stopped.terms or stopped.child_named:
            return stopped
        found = await child_named(self.ctx, spec, req, session)
        if found is None:
            return stopped
        return replace(stopped, subject_key=found.key, withhold_terms=found.destroyed)

    async def _record(
        self,
        session: AsyncSession,
        spec: Spec,
        command: Command,
        actor: Actor | None,
        result: Result,
        now: datetime,
        *,
        with_terms: bool = True,
        writer: bool = False,
    ) -> AuditRecord:
        terms = result.terms if (with_terms and spec.audit_terms) else ""
        # writer: ``session`` holds the write transaction, so a month key is made inside it.
        born = spec.born_in(terms, now.date()) if (terms and spec.born_in) else None
        sealed, terms_key = await self.ctx.sealer.seal(
            session,
            terms,
            result.subjects,
            now,
            writer=writer,
            apart=not writer,  # read-only: its session may go back to the pool before a key is made
            born=born,
            known=result.subject_key,
            withhold=result.withhold_terms,
        )
        record = chat_event(command, actor, spec.action, result, now, sealed, terms_key)
        known = result.subject_key
        reached = result.reply.outcome in REACHED_OUTCOMES  # not a command stopped before its handler
        if known is not None and reached and not result.subjects and not result.withhold_terms:
            # A child named but not shown (archived): its report finds the event by its tag.
            tag = self.ctx.sealer.tag_of(known)
            record = replace(record, named=(tag,)) if tag else record
        return record


def chat_event(
    command: Command,
    actor: Actor | None,
    action: Action,
    result: Result,
    now: datetime,
    terms: bytes | None = None,
    terms_key: str | None = None,
) -> AuditRecord:
    """The audit event of a chat command (the origin factory's counterpart for chat users): who asked,
    by their platform ids and the register's record of them, what they asked and how it ended."""
    principal = command.principal
    return AuditRecord(
        at=now,
        actor_id=actor.practitioner_id if actor else None,
        platform=principal.platform.value,
        tenant=principal.tenant,
        user_id=principal.user_id,
        actor_role=actor.role if actor else None,
        actor_org=actor.organisation if actor else None,
        actor_la=actor.local_authority if actor else None,
        channel=command.channel,
        action=action.value,
        outcome=result.reply.outcome.value,
        subject_refs=result.subjects,
        result_count=result.result_count,
        correlation_id=command.correlation_id,
        detail=result.detail or candidates_detail(result.candidates),
        terms=terms,
        terms_key=terms_key,
    )


def answered(action: Action, command: Command, result: Result, seq: int, actor: Actor | None) -> Reply:
    """The reply, carrying the event it answers for when that event says the person was told
    about a child (``tells_about_a_child``). A reply that carries one already keeps it: a search
    resumed by a code answers for the search's event, which names the child, not the code's."""
    reply = result.reply
    if reply.audited is not None or reply is DUPLICATE or not tells_about_a_child(action, result):
        return reply
    event = Audited(seq, command.correlation_id, result.subjects, command.principal, command.channel, actor)
    return replace(reply, audited=event)


def joined(session: AsyncSession) -> WriteApart:
    """A writing command's way to write: its own transaction, which the audit event joins."""

    async def write(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await work(session)

    return write
