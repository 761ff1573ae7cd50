"""Audit events as the service writes them, for benchmarks that fill a log: built by the dispatcher's
own factory (``chat_event``), so a benchmark's events change when the service's do."""

from __future__ import annotations

import uuid
from datetime import datetime

from handlers.dispatch.dispatcher import chat_event
from handlers.dispatch.spec import Result
from handlers.vocabulary import Action, Actor, Command, Outcome, Platform, Principal, Reply, Role
from store.audit.log import AuditRecord


def practitioner(i: int, role: str, organisation: str) -> tuple[Command, Actor]:
    """The ``i``-th of 125 Northshire practitioners asking over Slack (500 chat accounts)."""
    principal = Principal(Platform.SLACK, "T0123456", f"U{i % 500:08d}")
    command = Command(principal=principal, text="", correlation_id=uuid.uuid4().hex)
    actor = Actor(
        practitioner_id=f"NS-P{1 + i % 125:04d}",
        name="",
        role=role,
        organisation=organisation,
        local_authority="Northshire",
        roles=frozenset({Role.PRACTITIONER}),
    )
    return command, actor


def lookup_event(i: int, at: datetime, child: int, terms: bytes, detail: str = "") -> AuditRecord:
    """A keyed lookup answered with three signposts, its terms sealed under the child's key."""
    command, actor = practitioner(i, "Social worker", "Northshire Children's Services")
    result = Result(Reply(Outcome.ANSWERED, ""), subjects=(child,), result_count=3, detail=detail)
    return chat_event(command, actor, Action.LOOKUP, result, at, terms, f"child:{child}")


def search_event(i: int, at: datetime, tags: list[str], terms: bytes) -> AuditRecord:
    """A search answered "more than one record could match": no subject, its possible matches as
    tags, its terms sealed under the month's key."""
    command, actor = practitioner(i, "Teacher", "Hill Primary School")
    result = Result(Reply(Outcome.AMBIGUOUS, ""), candidates=tuple(tags))
    return chat_event(command, actor, Action.SEARCH, result, at, terms, f"period:{at:%Y-%m}")
