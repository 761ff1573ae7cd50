"""What a command is: its ``Spec`` (what it needs, declared once, and what runs it), the
``Request`` a handler gets and the ``Result`` it answers with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.vocabulary import Actor, Command, Outcome, Reply, Role


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


def refusal(text: str, detail: str) -> Result:
    return Result(Reply(Outcome.REFUSED, text), detail=detail)
