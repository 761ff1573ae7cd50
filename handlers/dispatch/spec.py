"""What a command is: its ``Spec`` (everything the policy chain needs, declared once, and what runs
it), the ``Request`` a handler gets and the ``Result`` it answers with.

The gates in ``handlers.dispatch.chain`` read only a command's Spec; no gate or handler names
another command, and none builds a Spec of its own to borrow a gate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.grammar import UsageError, a_word_too_many
from handlers.refs import InvalidReference
from handlers.vocabulary import (
    BAD_CHECK_DIGIT,
    NOT_ACTIVE_DETAIL,
    Action,
    Actor,
    Command,
    Outcome,
    Reply,
    Role,
    sentence,
)
from store.audit.log import AlsoWrite
from store.keys.crypto import WrappedKey
from store.people.standing import Ahead, Standing

T = TypeVar("T")


class StepUp(StrEnum):
    NONE = "none"
    FRESH = "fresh"  # results: a code within the idle/absolute freshness window
    APPROVAL = "approval"  # decisions: a code no older than the approval window


class Audience(StrEnum):
    """Who may send a command at all, before its role is considered."""

    ANYONE = "anyone"  # even someone not yet registered (help, register)
    REGISTERED = "registered"  # a registered person whose access is active


class WriteApart(Protocol):
    """Run ``work`` in a write transaction, committed when it returns (see ``Request.write``)."""

    def __call__(self, work: Callable[[AsyncSession], Awaitable[T]]) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Request:
    command: Command
    # Who is asking, their step-up credential and the switch-off date, read in one statement in
    # the command's transaction before any gate runs (``store.people.standing``); never cached.
    standing: Standing
    args: str
    now: datetime
    # The dispatcher owns the command's session. A gate or handler that must write while the
    # command only reads (parking a challenge, verifying a code) asks it for a write transaction
    # here: a writing command's own transaction is joined; otherwise the dispatcher hands its read
    # connection back to the pool first and opens a short write transaction.
    write: WriteApart

    @property
    def actor(self) -> Actor | None:
        return self.standing.actor


@dataclass(frozen=True, slots=True)
class Result:
    """A handler's answer plus the facts its audit event records."""

    reply: Reply
    subjects: tuple[int, ...] = ()
    result_count: int = 0
    terms: str = ""  # sealed into the audit event, never stored plain
    detail: str = ""  # short, never personal data
    # An ambiguous search (answered as any search not accepted): its possible matches, as
    # pseudonymous tags that die with each child's key (``store.audit.log.candidate_tag``).
    # Recorded in the event's detail (so a subject access report finds them), never in the log line.
    candidates: tuple[str, ...] = ()
    # The one subject's wrapped data key when the handler read it already: the audit terms are
    # sealed under it without reading it again. Without a subject: the child the terms name but the
    # reply did not show (an archived child's lookup), whose key seals them all the same.
    subject_key: WrappedKey | None = None
    # The terms name a child already destroyed (a lookup of its reference): none are kept, as for a
    # search naming a destroyed cohort (store/audit/log.py, ``WITHHELD``).
    withhold_terms: bool = False
    # A gate that stopped the command read the child its arguments name already (``subject_key``,
    # ``withhold_terms`` say what it found): the dispatcher does not read it again.
    child_named: bool = False
    # What the command also writes, committed with its audit event (the lead professional's notice
    # and its event): in the audit writer's batch for a read-only command, in its own transaction
    # for a writing one. Never written for a duplicate delivery.
    also: AlsoWrite | None = None
    # The same delivery or click again while its code is awaited: the same prompt is shown again,
    # and the first one's audit event stands for both (as a second click on one button is one action).
    repeat: bool = False


Handler = Callable[[Context, Request, AsyncSession], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Spec:
    """A command: everything the policy chain needs (declared once) and what runs it."""

    name: str
    action: Action
    run: Handler
    summary: str = ""
    usage: str = ""
    audience: Audience = Audience.REGISTERED
    # True: only an account not yet linked to a practitioner has use for it (``register``): help
    # does not offer it to anyone acting as a practitioner (the console always is one).
    unlinked_only: bool = False
    role: Role | None = Role.PRACTITIONER  # the role needed besides registration; None: any role
    # False: only holders of ``role`` itself, where ``Actor.may`` lets an admin stand in for a duty
    # manager (``reset``: a practitioner's authenticator is reset by their own duty manager in chat).
    admins_stand_in: bool = True
    stepup: StepUp = StepUp.NONE
    after_switch_off: bool = False  # True: still answered once Signpost is switched off (and then without a code)
    # True: the handler changes data in the dispatcher's write transaction, which its audit event
    # joins. False: the dispatcher reads; anything that must commit on its own goes through
    # ``Request.write`` (``code`` commits the verification before the parked command runs again).
    writes: bool = False
    keyword: bool = True  # reached by its first word (False for lookup/search/usage)
    # The front end should pass the platform's own display name and email for this account (shown
    # to the duty manager who decides a registration; never used to authorize anything).
    wants_profile: bool = False
    audit_terms: bool = True  # False: the text holds nothing worth sealing (or something secret)
    # True: what it answers must not persist in a chat's history (a relayed message, sealed under the
    # child's key, dies with the child). Its replies carry ``Reply.transient``; a front end whose chat
    # keeps the bot's messages does not run it from the chat, but offers a button that opens it privately.
    transient: bool = False
    # The date of birth the command's text carries, if any: its audit terms are then sealed under
    # that date's birth-date key and die with the children born that day.
    born_in: Callable[[str, date], date | None] | None = None
    # The child the arguments name by reference (None: none, or a reference that does not parse),
    # from the text alone: a gate that stops the command with its terms before the handler runs (a
    # code asked for first) has them sealed as the handler's answer would be, under that child's key
    # (``Dispatcher._chain``), not the month's, so they die with the child. A string: the handle of
    # the asker's own search by name and date of birth (handlers/access/found.py), resolved then.
    # The command parked for its code is sealed under the same child's key (handlers/dispatch/stopped.py).
    names_child: Callable[[str], int | str | None] | None = None
    # What of the arguments a gate that stops the command with its terms (a code asked for first)
    # keeps in its audit event, when not all of them (None: all): a command whose free text its handler
    # screens for the child's name once it runs (handlers/access/screening.py) keeps there only the
    # record it names, so a text refused after the code is in no audit event. The command itself is
    # still parked whole until the code comes (at most ``StepUpPolicy.challenge_ttl``, and a backup
    # taken meanwhile keeps it), sealed under the key of the child it names (``names_child``), which
    # dies with that child, or, naming none (a request's id with a reason), under a key retention
    # destroys within two days (store/people/credentials._seal_parked).
    stopped_terms: Callable[[str], str] | None = None
    # The read its handler will make, from the arguments alone (None: none known): made with the
    # asker's standing in one round trip (``store.people.standing.read``) and kept for the handler;
    # with the command's time, which the handler reads as of (``Request.now``).
    read_ahead: Callable[[str, datetime], Ahead | None] | None = None
    # A cheap check of the arguments and the time, without the database or the asker (None: none):
    # the handler's own parse (``parsed_by``), raising ``UsageError`` (or answering the handler's own
    # ``Result``) for text it could not run, so a malformed command is answered before anyone is
    # asked for a code (``chain.check_gate``), and no front end opens a "Checking…" placeholder for it.
    check: Check | None = None
    # The most words its arguments hold (None: any number): one word more is answered as a word too
    # many, with the usage, after ``check`` and before anyone is asked for a code (``chain.check_gate``).
    words: int | None = None
    # Sub-commands (by the first word of the arguments) whose policy differs from the command's.
    subcommands: Mapping[str, Spec] = field(default_factory=dict)

    def allows(self, actor: Actor) -> bool:
        """Whether ``actor``'s roles let them send this command (``role``, ``admins_stand_in``)."""
        if self.role is None:
            return True
        return actor.may(self.role) if self.admins_stand_in else actor.has(self.role)

    def for_args(self, args: str) -> Spec:
        """The Spec that governs this command with these arguments."""
        return self.subcommands.get(args.split(" ", 1)[0].lower(), self)


Check = Callable[[str, datetime], Result | None]


def checked(spec: Spec, args: str, now: datetime) -> Result | None:
    """The command's own check of its arguments (``Spec.check``), then their number (``Spec.words``):
    raising ``UsageError`` (or answering a ``Result``) for text it would not run as typed."""
    result = None if spec.check is None else spec.check(args, now)
    if result is None and spec.words is not None and len(args.split()) > spec.words:
        raise a_word_too_many(spec.usage.split(",", 1)[0] or spec.name)
    return result


def parsed_by(
    parse: Callable[[str], object], *, reference: Callable[[InvalidReference], Result] | None = None
) -> Check:
    """A ``Spec.check`` that is the handler's own parse of its arguments: its ``UsageError`` is
    answered with the command's usage, a mistyped reference with ``reference`` (by default
    ``bad_reference``), exactly as the handler would answer them."""
    answer = reference or bad_reference

    def check(args: str, now: datetime) -> Result | None:
        try:
            parse(args)
        except InvalidReference as exc:
            return answer(exc)
        return None

    return check


def reference_in(parse: Callable[[str], int | str]) -> Callable[[str], int | str | None]:
    """A ``Spec.names_child``: the reference (or a search's handle) ``parse`` finds in the
    arguments, or None for text it refuses (``InvalidReference``, ``UsageError``)."""

    def names(args: str) -> int | str | None:
        try:
            return parse(args)
        except (InvalidReference, UsageError):
            return None

    return names


def bad_reference(exc: InvalidReference) -> Result:
    """A reference that fails its check digit: said so, with nothing it held said back."""
    return Result(Reply(Outcome.INVALID, f"{sentence(str(exc))}."), detail=BAD_CHECK_DIGIT)


class Admit(Enum):
    """A gate's answer that lets the command run now: the gates after it do not apply."""

    ADMIT = "admit"


ADMIT = Admit.ADMIT
# What a gate answers: a Result to stop there, ADMIT to run the handler now, None to go on.
Verdict = Result | Admit | None


def refusal(text: str, detail: str) -> Result:
    return Result(Reply(Outcome.REFUSED, text), detail=detail)


# A practitioner recorded as gone (`signpost practitioner leave`): the answer to everything they send.
NOT_ACTIVE = "Your Signpost access is not active. Please contact your duty manager."


def not_active() -> Result:
    return refusal(NOT_ACTIVE, NOT_ACTIVE_DETAIL)


def usage_answer(spec: Spec, exc: UsageError) -> Result:
    """The answer to text that does not fit the command: what is wrong, then how to write it."""
    text = f"{sentence(str(exc))}.\n\n{spec.usage}" if spec.usage else sentence(str(exc))
    return Result(Reply(Outcome.INVALID, text), detail="usage")
