"""The one vocabulary every layer shares: who acts (``Principal``, ``Origin``), what they do
(``Action``), how it ended (``Outcome``), and the platform-neutral ``Command``/``Reply`` model.

Front ends (bot/) turn a Slack payload, a Teams activity or a terminal line into a ``Command`` and
render the ``Reply``; handlers never see a platform payload, and never build a Block Kit or card.
This module imports nothing of Signpost's, so bot/, handlers/ and store/ may all import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")
"""The zone people read times and days in: a feed's dates, a time shown (``handlers.clock``), the day
an involvement ends (``store.register.current``)."""


class Platform(StrEnum):
    CONSOLE = "console"
    SLACK = "slack"
    TEAMS = "teams"


class Origin(StrEnum):
    """Where an audit event that no chat user sent comes from. Misuse rules decide from this.

    Chat commands (Slack, Teams, the console) carry a ``Principal``; everything else is recorded
    with one of these as its platform, through the one factory in ``store.audit.log``.
    """

    TERMINAL = "terminal"  # an operator at the server's command line (`signpost …`)
    SCHEDULER = "scheduler"  # Signpost itself: retention, expiry, escalation, misuse sweeps
    ENROLMENT_PAGE = "enrolment_page"  # a browser on the one-time enrolment page
    BATCH = "batch"  # `signpost match`: a roll reconciled against the register


# Every origin's stored platform value. An event whose platform is one of these was not sent from a
# chat session, so rules about chat sessions (one identity on two platforms at once) ignore it.
ORIGINS = frozenset(origin.value for origin in Origin)


def is_origin(platform: str) -> bool:
    """Whether an audit event's platform names an ``Origin`` (no chat user sent it)."""
    return platform in ORIGINS


class Action(StrEnum):
    """Every audited action, by the name stored in ``audit_events.action``."""

    LOOKUP = "lookup"
    SEARCH = "search"
    USAGE = "usage"
    HELP = "help"
    HOME = "home"
    HISTORY = "history"
    ENROL = "enrol"
    CODE = "code"
    REGISTER = "register"
    REQUEST_ACCESS = "request_access"
    PENDING = "pending"
    APPROVE = "approve"
    DENY = "deny"
    UNLINK = "unlink"
    PRACTITIONER_LEAVE = "practitioner_leave"  # an admin recorded that a practitioner has left
    PRACTITIONER_RETURN = "practitioner_return"  # an admin made a practitioner who had left active again
    DECOMMISSION = "decommission"
    DECOMMISSION_DESTROY = "decommission_destroy"
    ALERT = "alert"
    GRANT_EXPIRED = "grant_expired"
    REQUEST_ESCALATED = "request_escalated"
    REQUEST_EXPIRED = "request_expired"
    REGISTRATION_EXPIRED = "registration_expired"  # a registration nobody decided in time was closed
    RETENTION = "retention"
    MATCH_BATCH = "match_batch"
    ENROL_PAGE = "enrol_page"
    TOTP_ENROL = "totp_enrol"
    TOTP_RESET = "totp_reset"
    EXPORT = "export"
    SAR = "sar"
    BACKUP = "backup"
    KEYS_ROTATE = "keys_rotate"
    IMPORT = "import"
    SEED_DEMO = "seed_demo"
    # Operator commands at the terminal that had no event of their own (each has exactly one outcome)
    RETENTION_RUN = "retention_run"  # `signpost retention run`: its steps are `retention` events, as the scheduler's
    PRACTITIONER_LIST = "practitioner_list"
    AUDIT_VERIFY = "audit_verify"
    AUDIT_CHECKPOINT = "audit_checkpoint"
    TRANSPARENCY_REPORT = "transparency_report"
    GRANT_RUNTIME = "grant_runtime"
    LEAD_NOTICES = "lead_notices"  # an admin set who is told when an authority's child is looked up
    LEAD_PROFESSIONAL_INFORMED = "lead_professional_informed"  # issue 18: the lead professional was told
    RELAY_MESSAGE = "relay_message"  # issue 18: a message relayed blind about a shielded child
    RELAY_READ = "relay_read"  # issue 18: a relayed message (or its answer) read by its sender or recipient
    RELAY_TRAFFIC = "relay_traffic"  # issue 18: a duty manager reviewed relay traffic (counts, no contents)
    RELAY_HANDED_ON = "relay_handed_on"  # a relayed message none of whose recipients could take it, passed on (or not)
    UNTRUSTED_SOURCE = "untrusted_source"  # a front end refused a request's channel or tenant
    # A reply whose event says what the person was told never reached them (the platform refused
    # it, or could not be reached): refers to that event (``Dispatcher.not_shown``).
    ANSWER_NOT_SHOWN = "answer_not_shown"


class Role(StrEnum):
    PRACTITIONER = "practitioner"
    DUTY_MANAGER = "duty_manager"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, by stable platform ids only — never a display name or email."""

    platform: Platform
    tenant: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.tenant}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Command:
    """One message or button click from a person, in platform-neutral form.

    ``text`` is what the person typed (or the command a button stands for, plus any input the
    front end collected for it). ``code`` carries a step-up code from a private input, never
    typed into a channel; it is never audited or logged.
    """

    principal: Principal
    text: str
    correlation_id: str
    channel: str = "direct"  # direct | channel | button | modal | terminal | batch
    code: str | None = None
    challenge_id: str | None = None
    idempotency_key: str | None = None  # a platform's delivery/click id, so retries act once
    # The chat account's display name and email as the platform reports them, when the front end
    # knows them: shown to a duty manager deciding a registration, never used to authorize anyone
    # (only ``principal`` is), never audited or logged.
    display_name: str | None = None
    email: str | None = None


class Outcome(StrEnum):
    ANSWERED = "answered"  # signposts returned
    NO_MATCH = "no_match"
    AMBIGUOUS = "ambiguous"
    SHIELDED = "shielded"
    REFUSED = "refused"  # unknown user, wrong role, not allowed
    INVALID = "invalid"  # malformed command or reference
    FAILED = "failed"  # something went wrong on our side
    CHALLENGED = "challenged"  # step-up code needed first
    LOCKED = "locked"  # a wrong code paused code entry: a step-up lockout (refused, and counted as one)
    DONE = "done"  # a non-search command did what was asked
    # Long operator work (an import, a seed, a retention run, a backup, a key rotation, destruction)
    # has begun: recorded durably before anything changes, and followed by its outcome event (none:
    # it was cut short).
    STARTED = "started"
    INFO = "info"  # help, history and other read-only information
    SWITCHED_OFF = "switched_off"


CUT_SHORT = "a run cut short before its outcome, recorded failed by the next run"
"""The detail (after the dead run's own) of the ``failed`` event the next run records for a run that
ended without one (killed), under the dead run's correlation id: ``handlers.operator.common``."""


# Lookups that reach the register (history, misuse rules, the App Home read these).
LOOKUP_ACTIONS = frozenset({Action.LOOKUP, Action.SEARCH})
# Outcomes that mean the register was consulted and answered something.
REACHED_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.SHIELDED, Outcome.NO_MATCH, Outcome.AMBIGUOUS})
# The audit detail of a reference refused for failing its check digit (outcome ``invalid``): it
# reached nothing, but a lookup of one is a guessed reference to the probing rule.
BAD_CHECK_DIGIT = "bad check digit"
# The audit detail of a command refused because its sender is recorded as gone (``refused``): a
# leaver's chat account still in use, which the misuse rules report.
NOT_ACTIVE_DETAIL = "inactive"


class NoRequestMade(StrEnum):
    """Why an access request (outcome ``info``) made none, as its audit detail says: the record is
    not shielded, or the requester asked again while their request waits or their access is granted.
    A subject-access report words each apart (``store.audit.sar``); ids only, nothing personal."""

    NOT_SHIELDED = "not shielded"
    WAITING = "waiting"
    GRANTED = "granted"

    def detail(self, number: int = 0) -> str:
        """The audit detail: ``not shielded``, ``request 4 waiting``, ``grant 7 in force``."""
        if self is NoRequestMade.WAITING:
            return f"request {number} waiting"
        if self is NoRequestMade.GRANTED:
            return f"grant {number} in force"
        return self.value

    @classmethod
    def of(cls, detail: str | None) -> NoRequestMade | None:
        """Which of them an access request's audit detail records (events written before this too)."""
        words = (detail or "").split()
        if words == ["not", "shielded"]:
            return cls.NOT_SHIELDED
        if len(words) == 3 and words[0] == "request" and words[1].isdigit() and words[2] == "waiting":
            return cls.WAITING
        if len(words) == 4 and words[0] == "grant" and words[1].isdigit() and words[2:] == ["in", "force"]:
            return cls.GRANTED
        return None


@dataclass(frozen=True, slots=True)
class Signpost:
    """One practitioner's contact details for one involvement. Never case data."""

    practitioner_name: str
    role: str
    organisation: str
    service: str
    phone: str
    email: str
    lead_professional: bool
    started: date
    ended: date | None = None  # the end date, past or planned (None: no end recorded)
    in_post: bool = True  # False once the practitioner has left (``signpost practitioner leave``)
    # Current as of the enquiry's day (``store.register.current``, the one rule): True with an
    # ``ended`` still to come, a planned end, which front ends show as "current, ends DD/MM/YYYY".
    current: bool = True

    @property
    def status(self) -> str:
        """How every front end words it: "current", "current, ends 31/07/2027" or "ended 31/07/2027"."""
        if self.ended is None:
            return "current"
        return f"current, ends {self.ended:%d/%m/%Y}" if self.current else f"ended {self.ended:%d/%m/%Y}"

    @property
    def contact(self) -> tuple[str, str] | None:
        """Phone and email, or None when the practitioner has left: their own contact details no
        longer reach anyone, and the front ends say ``LEFT_POST`` instead."""
        return (self.phone, self.email) if self.in_post else None

    @property
    def reached_by(self) -> tuple[str, ...]:
        """The phone and email the feed gave (one may be empty), in that order; () once they have left."""
        return tuple(way for way in (self.phone, self.email) if way) if self.in_post else ()


# What a signpost shows in place of a leaver's phone and email (every front end says the same).
LEFT_POST = "No longer in this post: contact the organisation"


@dataclass(frozen=True, slots=True)
class Input:
    """A value the front end must collect before a button's command is sent (e.g. a reason)."""

    name: str
    label: str
    required: bool = True
    max_length: int = 500

    @property
    def placeholder(self) -> str:
        """How a text-only surface shows it after the command, as the usage texts name it:
        ``PURPOSE``, or ``[REASON]`` when it may be left out."""
        return self.name.upper() if self.required else f"[{self.name.upper()}]"


@dataclass(frozen=True, slots=True)
class Button:
    """An action offered to the person. Clicking it sends ``command`` (+ the input's value)."""

    action_id: str  # stable id, e.g. "request_access", "approve", "deny"
    label: str
    command: str
    style: str | None = None  # "primary" | "danger" | None
    input: Input | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A web page the person opens (e.g. their one-time enrolment page): a link button, never bare text."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Challenge:
    """Ask for a step-up code; the parked command runs when a valid code arrives."""

    challenge_id: str
    prompt: str
    # After a refused code: what went wrong. It is also the reply's text, so a front end shows it
    # once — as the reply's text, or beside the code input where the reply's text is not shown.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Audited:
    """The audit event a reply answers for, set by the dispatcher on a reply whose event says what
    the person was told (``Dispatcher.not_shown`` decides which): what a front end that could not
    show the reply hands back, so the audit can say the answer was not shown. Ids only, as the
    event holds them; never what was asked or answered."""

    event: int  # the event's sequence number in the audit log
    request_id: str  # the request's correlation id, which the event holds
    subjects: tuple[int, ...]  # the children it named
    principal: Principal
    channel: str
    actor: Actor | None


SEND_ENROL = "send: enrol"
"""The instruction to set up an authenticator, as every message asking its reader to do so ends
(``Send: enrol`` as a sentence of its own). Written only by ``ThenEnrol``."""


@dataclass(frozen=True, slots=True)
class ThenEnrol:
    """A message that ends by telling its reader to send ``enrol`` (set up an authenticator): ``lead``,
    then ``SEND_ENROL``. The one way such a message is made: a ``Reply`` or ``Notice`` built from it
    (``reply``; ``handlers.every_contact``) carries it (``then_enrol``) beside its text, so a front end where ``enrol``
    cannot work (a console whose output is no terminal refuses it) says in its place what does
    (``instead``), and every other front end shows the text as it is."""

    lead: str  # up to the instruction: a full sentence, or a clause the instruction ends ("…, then")

    @property
    def text(self) -> str:
        return self.instead(SEND_ENROL)

    def instead(self, way: str) -> str:
        """The message with ``way`` ("start …", lower case) where the instruction to send enrol was."""
        return f"{self.lead} {sentence(way) if self.lead.endswith('.') else way}"

    def format(self, **values: object) -> ThenEnrol:
        """Its lead's ``{placeholders}`` filled (``str.format``)."""
        return ThenEnrol(self.lead.format(**values))

    def reply(self, outcome: Outcome, challenge: Challenge | None = None) -> Reply:
        return Reply(outcome, self.text, challenge=challenge, then_enrol=self)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the person sees, privately. ``text`` is plain text (front ends may style it).

    A command the person can send is written after ``send:`` (``send: enrol``) or quoted after
    ``Send`` (``Send 'pending'``), so each front end can show it the way its platform types commands.
    """

    outcome: Outcome
    text: str
    child_ref: str | None = None
    signposts: tuple[Signpost, ...] = ()
    buttons: tuple[Button, ...] = ()
    challenge: Challenge | None = None
    lines: tuple[str, ...] = ()  # extra rows (history, pending requests …)
    links: tuple[Link, ...] = ()  # pages to open (the enrolment link): shown as link buttons
    # Each line starts with something the person can send (help): a front end shows it the way its
    # platform types commands (``/signpost enrol`` in Slack, ``enrol`` elsewhere).
    lines_are_commands: bool = False
    enrolment_uri: str | None = None  # otpauth URI with the seed: set ONLY for the local console
    # Set when what this reply shows must not persist in a chat's history (a relayed message is sealed
    # under the child's key and must die with it): the command that shows it again. The dispatcher
    # sets it from ``Spec.transient``. A front end whose chat keeps what the bot posts (Teams) shows
    # such a reply only in a private window, and posts in its place a button that opens one with this
    # command; Slack's answers are ephemeral or modal, and never replace a message with it.
    transient: str | None = None
    # The audit event this reply answers for, when the event says what the person was told: set
    # by the dispatcher only, never shown. A front end that cannot show the reply passes it back
    # (``Dispatcher.not_shown``); a duplicate, a code prompt or a refusal has none.
    audited: Audited | None = None
    # Set on a message that ends telling the person to send ``enrol`` (made only by ``ThenEnrol``):
    # its text is ``then_enrol.text``, and a front end where enrol cannot work says what does instead.
    then_enrol: ThenEnrol | None = None

    def __post_init__(self) -> None:
        said_by(self.text, self.then_enrol)


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to one person outside a conversation. Never child identity: refs and ids only.

    ``account``: the one chat account to tell, linked or not (an account that has just lost its
    link is told so); otherwise every account linked to the recipient, or the first that answers.
    Either way only while the recipient is an active practitioner.
    """

    recipient_id: str
    kind: str
    text: str
    buttons: tuple[Button, ...] = ()
    dedupe_key: str | None = None
    account: Principal | None = None
    then_enrol: ThenEnrol | None = None  # as ``Reply.then_enrol``: its text tells them to send enrol

    def __post_init__(self) -> None:
        said_by(self.text, self.then_enrol)


def said_by(text: str, then_enrol: ThenEnrol | None) -> None:
    """A message marked as asking its reader to enrol has that message's text, so what a front end
    puts in the instruction's place replaces the instruction itself."""
    if then_enrol is not None and text != then_enrol.text:
        raise ValueError("a message marked then_enrol must have its text")


@dataclass(frozen=True, slots=True)
class Actor:
    """A registered practitioner acting through a linked identity."""

    practitioner_id: str
    name: str
    role: str
    organisation: str
    local_authority: str
    roles: frozenset[Role]
    status: str = "active"
    phone: str = ""  # with the fields above, their contact signpost (what a lead professional is told)
    email: str = ""

    def has(self, role: Role) -> bool:
        return role in self.roles

    def may(self, role: Role) -> bool:
        """May use a command that needs ``role``: admins stand in for duty managers (escalated
        requests reach them with Approve/Deny; ``relays`` shows them every authority)."""
        return self.has(role) or (role is Role.DUTY_MANAGER and self.has(Role.ADMIN))


# Who may use a command needing each role (Actor.may), for the role gate's refusal.
MAY_USE = {
    Role.PRACTITIONER: "a practitioner",
    Role.DUTY_MANAGER: "a duty manager or an admin",
    Role.ADMIN: "an admin",
}
# Where admins do not stand in for the role (a command's ``Spec.admins_stand_in``).
MAY_USE_ALONE = {**MAY_USE, Role.DUTY_MANAGER: "a duty manager"}
# What a command nobody sends by its name does (a search is typed as a reference or a name and date),
# or one whose name alone says too little.
_DOES = {
    Action.LOOKUP: "search for a child",
    Action.SEARCH: "search for a child",
    Action.TOTP_RESET: "reset a practitioner's authenticator",
}


def only_who_may(role: Role, name: str, action: Action, *, admins: bool = True) -> str:
    """The answer to someone whose roles do not allow a command: who may ("Only a practitioner can
    search for a child.", "Only an admin can use 'lead-notices'."), and what to do next; ``admins``
    False where admins do not stand in for duty managers."""
    does = _DOES.get(action) or f"use '{name}'"
    return f"Only {(MAY_USE if admins else MAY_USE_ALONE)[role]} can {does}. {WHAT_YOU_CAN_DO}"


WHAT_YOU_CAN_DO = "Send help to see what you can do."
# The one answer to an id the register does not hold, wherever it was typed (a command's argument,
# the console's --as and :as, chat): what was typed is never said back, for it may be a child's name,
# date of birth and postcode typed by a slip, and the terminal's stderr is many an operator's log.
NO_SUCH_PRACTITIONER = "there is no practitioner with that id in the register"


def format_ref(ref: int | str) -> str:
    """10-digit reference in the familiar 3-3-4 grouping."""
    digits = f"{int(ref):010d}"
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 row``, ``3 rows``, ``1,200 children``: a count with its noun, never ``row(s)``; thousands
    separated, as the command line's progress lines write them (bot/cli/progress.py)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def sentence(text: str) -> str:
    """``text`` with its first letter upper case, for a message that is shown on its own."""
    return text[:1].upper() + text[1:]


PLATFORM_NAMES = {"slack": "Slack", "teams": "Teams", "console": "console"}


def platform_name(platform: str) -> str:
    """How a person spells a platform in a sentence: Slack, Teams."""
    return PLATFORM_NAMES.get(platform, platform)
