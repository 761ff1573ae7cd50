"""Parse → policy chain (identity, role, step-up, …) → handler → audit → reply.

Cross-cutting concerns wrap every handler once, here. The chain fails closed: if any gate or the
audit write fails, the person gets a generic error and no result.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.grammar import Parsed, UsageError, parse
from handlers.vocabulary import Actor, Command, Outcome, Reply, Role, sentence
from store.audit.log import AuditRecord, AuditWriteFailed, append
from store.delivery import deliveries
from store.people import practitioners

log = structlog.get_logger("signpost.dispatch")


class StepUp(StrEnum):
    NONE = "none"
    FRESH = "fresh"  # results: a code within the idle/absolute freshness window
    APPROVAL = "approval"  # decisions: a code no older than the approval window


@dataclass(frozen=True, slots=True)
class Request:
    command: Command
    actor: Actor | None
    args: str
    now: datetime


@dataclass(frozen=True, slots=True)
class Result:
    """A handler's answer plus the facts its audit event records."""

    reply: Reply
    subjects: tuple[int, ...] = ()
    result_count: int = 0
    terms: str = ""  # sealed into the audit event, never stored plain
    detail: str = ""  # short, never personal data


Handler = Callable[[Context, Request, AsyncSession], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Spec:
    """A command: what it needs (declared once) and what runs it."""

    name: str
    action: str
    run: Handler
    summary: str = ""
    usage: str = ""
    role: Role | None = Role.PRACTITIONER  # None: anyone, even someone not yet registered
    stepup: StepUp = StepUp.NONE
    writes: bool = False  # True: the handler changes data; its audit event joins that transaction
    keyword: bool = True  # reached by its first word (False for lookup/search/usage)
    audit_terms: bool = True  # False: the text holds nothing worth sealing (or something secret)


class Gate(Protocol):
    """One link of the policy chain: return a Result to stop here, None to go on."""

    async def __call__(self, ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None: ...


def refusal(text: str, detail: str) -> Result:
    return Result(Reply(Outcome.REFUSED, text), detail=detail)


NOT_REGISTERED = (
    "You're not registered with Signpost yet. Ask your duty manager to approve you, "
    "or send: register YOUR_PRACTITIONER_ID"
)


async def identity_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    if spec.role is None:
        return None
    if req.actor is None:
        return refusal(NOT_REGISTERED, "unknown identity")
    if req.actor.status != "active":
        return refusal("Your Signpost access is not active. Please contact your duty manager.", "inactive")
    return None


def satisfies(actor: Actor, role: Role) -> bool:
    """Admins stand in for duty managers: escalated requests reach them with Approve/Deny."""
    return actor.has(role) or (role is Role.DUTY_MANAGER and actor.has(Role.ADMIN))


async def role_gate(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> Result | None:
    if spec.role is None or req.actor is None or satisfies(req.actor, spec.role):
        return None
    return refusal(f"Only a {spec.role.replace('_', ' ')} can use '{spec.name}'.", f"needs {spec.role}")


ERROR_TEXT = "Sorry, something went wrong on our side. It has been logged with reference {ref}."
AUDIT_FAILED_TEXT = "Signpost could not record this request, so it cannot answer it. Please try again shortly."
# The answer to a redelivered request or a second click: front ends show nothing new for it.
DUPLICATE = Reply(Outcome.INFO, "Already received: Signpost acted on this once and will not repeat it.")


@dataclass
class Dispatcher:
    ctx: Context
    specs: dict[str, Spec]
    gates: list[Gate] = field(default_factory=lambda: [identity_gate, role_gate])
    claims: deliveries.ClaimLog = field(init=False)

    def __post_init__(self) -> None:
        self.claims = deliveries.ClaimLog(self.ctx.db)

    @classmethod
    def build(cls, ctx: Context, specs: Sequence[Spec], extra_gates: Sequence[Gate] = ()) -> Dispatcher:
        return cls(ctx, {s.name: s for s in specs}, [identity_gate, role_gate, *extra_gates])

    @property
    def keywords(self) -> frozenset[str]:
        return frozenset(name for name, spec in self.specs.items() if spec.keyword)

    async def handle(self, command: Command) -> Reply:
        """Answer one command; exactly one audit event is durable before this returns."""
        started = time.perf_counter()
        bound = log.bind(correlation_id=command.correlation_id, platform=command.principal.platform.value)
        now = self.ctx.clock.now()
        parsed = parse(command.text, self.keywords)
        spec = self.specs.get(parsed.name) or self.specs["usage"]
        try:
            reply, outcome_detail = await self._run(spec, command, parsed, now)
        except AuditWriteFailed:
            bound.error("audit_write_failed", action=spec.action)
            reply, outcome_detail = Reply(Outcome.FAILED, AUDIT_FAILED_TEXT), "audit failed"
        bound.info(
            "command",
            action=spec.action,
            outcome=reply.outcome.value,
            detail=outcome_detail,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return reply

    async def _run(self, spec: Spec, command: Command, parsed: Parsed, now: datetime) -> tuple[Reply, str]:
        key = command.idempotency_key
        try:
            if spec.writes:
                async with self.ctx.db.write() as session:
                    # Claimed in the command's transaction: the claim and the change stand or fall together.
                    if key and not await deliveries.claim(session, key, now):
                        return DUPLICATE, "duplicate"
                    result, actor = await self._chain(spec, command, parsed, now, session)
                    if key and result.reply.outcome is Outcome.CHALLENGED:
                        await deliveries.release(session, key)
                    record = await self._record(session, spec, command, actor, result, now, writer=True)
                    await append(session, [record])
                return result.reply, result.detail
            if key and not await self.claims.claim(key, now):
                return DUPLICATE, "duplicate"
            async with self.ctx.db.read() as session:
                result, actor = await self._chain(spec, command, parsed, now, session)
                record = await self._record(session, spec, command, actor, result, now)
            if key and result.reply.outcome is Outcome.CHALLENGED:
                # Only asked for a code: the same click may act once the person has one.
                await self.claims.release(key)
        except AuditWriteFailed:
            raise
        except Exception:
            log.exception("command_failed", correlation_id=command.correlation_id, action=spec.action)
            result = Result(Reply(Outcome.FAILED, ERROR_TEXT.format(ref=command.correlation_id[:8])), detail="error")
            actor = None
            async with self.ctx.db.read() as session:
                record = await self._record(session, spec, command, actor, result, now, with_terms=False)
        await self.ctx.audit.record(record)
        return result.reply, result.detail

    async def _chain(
        self, spec: Spec, command: Command, parsed: Parsed, now: datetime, session: AsyncSession
    ) -> tuple[Result, Actor | None]:
        actor = await practitioners.resolve(session, command.principal)
        req = Request(command, actor, parsed.args, now)
        for gate in self.gates:
            stopped = await gate(self.ctx, spec, req, session)
            if stopped is not None:
                return stopped, actor
        try:
            return await spec.run(self.ctx, req, session), actor
        except UsageError as exc:
            text = f"{sentence(str(exc))}.\n\n{spec.usage}" if spec.usage else sentence(str(exc))
            return Result(Reply(Outcome.INVALID, text), detail="usage"), actor

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
        sealed, terms_key = await self.ctx.sealer.seal(session, terms, result.subjects, now, writer=writer)
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
            action=spec.action,
            outcome=result.reply.outcome.value,
            subject_refs=result.subjects,
            result_count=result.result_count,
            correlation_id=command.correlation_id,
            detail=result.detail,
            terms=sealed,
            terms_key=terms_key,
        )
