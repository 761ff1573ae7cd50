"""Everything a handler may use, passed explicitly (no globals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.clock import Clock
from handlers.matching.decide import MatchPolicy
from handlers.metrics import NoRecorder, Recorder
from handlers.stepup.policy import StepUpPolicy
from handlers.vocabulary import Actor, Notice, Platform
from store.audit.log import AuditLog, TermSealer
from store.audit.signing import Signer
from store.db import Database
from store.keys.crypto import KeyRing
from store.register import children


class GrantChecker(Protocol):
    """When an actor's current grant to see a shielded child ends; ``None`` without one."""

    async def grant_expires_at(
        self, session: AsyncSession, actor: Actor, child_ref: int, now: datetime
    ) -> datetime | None: ...


class NoGrants:
    """Until access requests exist, nobody sees a shielded child's signposts."""

    async def grant_expires_at(
        self, session: AsyncSession, actor: Actor, child_ref: int, now: datetime
    ) -> datetime | None:
        return None


class NoticeSink(Protocol):
    """Stores notices (in the caller's transaction) for delivery through people's front ends."""

    async def enqueue(self, session: AsyncSession, notices: list[Notice], now: datetime) -> int:
        """Store ``notices``; returns how many were new (a repeated dedupe key is not)."""
        ...

    async def enqueue_new(self, session: AsyncSession, dated: Sequence[tuple[Notice, datetime]]) -> set[str]:
        """Store notices (each with a dedupe key) queued at their own times; the keys of the new ones."""
        ...


class Population:
    """The register's size for match scoring, counted at most every ``ttl`` (a full count is costly)."""

    def __init__(self, ttl: timedelta = timedelta(minutes=10)) -> None:
        self.ttl = ttl
        self._value: int | None = None
        self._at: datetime | None = None

    async def get(self, session: AsyncSession, now: datetime) -> int:
        if self._value is None or self._at is None or now - self._at > self.ttl:
            self._value = max(1, await children.count_active(session))
            self._at = now
        return self._value

    def forget(self) -> None:
        """Count again next time (after an import or a retention run)."""
        self._value = None


@dataclass
class Policy:
    """Configurable policy numbers (defaults from the product brief)."""

    match: MatchPolicy = field(default_factory=MatchPolicy)
    candidate_limit: int = 200
    # The step-up gate's numbers (``bot.app.build`` gives the gate these same ones).
    stepup: StepUpPolicy = field(default_factory=StepUpPolicy)


@dataclass
class Context:
    db: Database
    keys: KeyRing
    clock: Clock
    audit: AuditLog
    sealer: TermSealer
    notices: NoticeSink
    signer: Signer  # signs audit checkpoints and the destruction certificate (store/audit/signing.py)
    policy: Policy = field(default_factory=Policy)
    grants: GrantChecker = field(default_factory=NoGrants)
    population: Population = field(default_factory=Population)
    metrics: Recorder = field(default_factory=NoRecorder)  # what /metrics counts (bot/metrics.py)
    # The platforms notices go out on, so that who "can be reached" (``store.delivery.outbox.reachable``)
    # is judged where a choice is made, as the outbox will judge it: the console (every active
    # practitioner) until the chat front ends served say theirs (``bot.web.create_app``), or a command
    # on the host, the chat platforms configured for the server that will deliver (``bot.cli.common.reaches``).
    reaches: frozenset[Platform] = frozenset({Platform.CONSOLE})
    # The time authenticator apps keep, that a code is checked against: ``clock`` itself, unless a
    # rehearsal moved Signpost's time (the console's dev clock), when the apps' codes still follow
    # the real one.
    authenticators: Clock | None = None
