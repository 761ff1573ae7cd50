"""Subject access: every time Signpost returned or touched one child's record, for the family.

Each entry says when, which organisation and role (the person's name only when asked for), what
was done, the outcome, and the purpose. Signpost asks for a purpose only when a practitioner
requests access to a shielded record, so the purpose of an entry is the reason given in that
practitioner's latest access request for this child at or before it (read from the request's
sealed audit terms); ordinary enquiries have no recorded purpose and say so. A request that was
refused (its purpose named the child, say) kept no purpose: it says so, never borrowing another's.

An ambiguous search (answered as any search not accepted) records its possible matches (the
heaviest few, weak ones too) as tags that only the child's own data key computes
(``store.audit.candidates``): the report finds them by the child's tag, through the index that
files them (also under the new tag a corrected date of birth gives), and says "a possible match,
not answered". Once the child is destroyed nothing computes its tags again, so those searches are
in no report and nothing else says the child was a candidate. A keyed lookup of an archived child
(answered "no record", so the child is not its subject) is filed under the child's tag the same
way: the report lists it ("nothing shown") until the child is destroyed.

A shielded child's report (shielded now, in the register) withholds what could say where the child
is or who works with them (``WITHHELD``, ``withhold``): each entry's organisation, local authority and
person's name, and any purpose a practitioner gave in their own words. It keeps the role, when, what
and the outcome, and begins by saying so (``SHIELDED_NOTICE``). Nothing releases them in this report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Action, NoRequestMade, Origin, format_ref, is_origin
from store.audit.candidates import possible_match_seqs
from store.audit.chain import utc
from store.audit.log import TermSealer
from store.db import Database
from store.keys.crypto import DecryptionError
from store.tables.audit import AuditEvent, AuditSubject
from store.tables.people import Practitioner
from store.tables.register import Child

REQUEST_ACTIONS = frozenset({"request_access", "request", "access_request"})
REFUSED_OUTCOMES = frozenset({"invalid", "refused"})
NO_PURPOSE = "not asked (ordinary enquiry)"
# An access request whose purpose was not kept: refused (it named the child, or the day's checks of
# this person's texts about the child were used up), or answered without a request being made.
REQUEST_REFUSED = "not kept (the request was refused)"
REQUEST_NOT_MADE = "not kept (no request was made)"
# An access request that made none, by why (its audit detail: ``NoRequestMade``). Asked again, the
# purpose given then is its own (kept since it was recorded); the requester's later entries keep
# the purpose of the request that was made, the one a duty manager decided.
NOT_SHIELDED = "asked for access, but the record is not shielded: no request was made"
REPEATED_WHILE_WAITING = (
    "asked for access again while their earlier request was waiting for a decision: no new request was made"
)
REPEATED_WHILE_GRANTED = "asked for access again while access already granted was in force: no new request was made"
NO_REQUEST_WORDS = {
    NoRequestMade.NOT_SHIELDED: NOT_SHIELDED,
    NoRequestMade.WAITING: REPEATED_WHILE_WAITING,
    NoRequestMade.GRANTED: REPEATED_WHILE_GRANTED,
}
OPERATOR_PURPOSE = "operating Signpost (e.g. answering a subject access request)"
PURPOSE_GONE = "recorded, but no longer readable (its key has been destroyed)"
_LEADING_REF = re.compile(r"^\s*[\d ]{10,14}\s*")

# Who acted, for an event that no chat user sent: read from its origin (its stored platform).
ORIGIN_ROLES = {
    Origin.TERMINAL: "administrator at the terminal",
    Origin.SCHEDULER: "Signpost itself (scheduled work, no person involved)",
    Origin.ENROLMENT_PAGE: "the practitioner, setting up their authenticator app",
    Origin.BATCH: "administrator matching a list of children (batch match)",
}
ORIGIN_PURPOSES = {
    Origin.TERMINAL: OPERATOR_PURPOSE,
    Origin.SCHEDULER: "none needed (Signpost's own scheduled work, e.g. an access grant ending)",
    Origin.BATCH: "not asked (a list matched against the register)",
}
# Events written before origins existed spelt them by hand; the audit log keeps them for ever.
LEGACY_ORIGINS = {"cli": Origin.TERMINAL, "system": Origin.SCHEDULER, "web": Origin.ENROLMENT_PAGE}

POSSIBLE_MATCH = "a possible match, not answered (nothing shown)"
# Every action a child's report can hold, in words a family reads: each ``Action`` is either here
# or in ``NEVER_ABOUT_A_CHILD`` (tests/store/audit/test_sar.py holds a new one to that choice).
ACTION_WORDS: dict[str, str] = {
    "lookup": "looked up by reference",
    "search": "found by name and date of birth",
    "request_access": "requested access (purpose given)",
    "request": "requested access (purpose given)",
    "access_request": "requested access (purpose given)",
    "grant_expired": "access grant expired",
    "request_escalated": "access request passed to another duty manager",
    "request_expired": "access request expired undecided",
    "approve": "approved an access request",
    "deny": "denied an access request",
    # Also when it was asked for before a child with this reference was in the register: it was
    # produced about this reference all the same, and the family may know it was asked for.
    "sar": "a subject access report about this reference was produced (a list like this one)",
    "export": "exported the audit",
    "match_batch": "matched against a list of children the service sent (batch match)",
    # Written when the notice is queued, in the lookup's transaction: a notice whose recipient has left
    # before it goes is dropped, not sent, so the entry says queued, not told.
    "lead_professional_informed": "notice to the lead professional queued (who looked this record up)",
    "relay_message": "a message through Signpost's relay (contents not shown here)",
    "relay_handed_on": "a relayed message passed to another professional, its recipients no longer able to take it",
    "relay_read": "a message relayed through Signpost about this record read by its writer or recipient",
    # A duty manager's or an admin's: the entry's role says whose.
    "relay_traffic": "counted in a review of relayed messages (counts and senders, no contents)",
    "pending": "listed among access requests waiting for a decision (seen by a duty manager)",
    # Follows the entry whose answer it was: Slack or Teams did not deliver it (``Dispatcher.not_shown``).
    "answer_not_shown": "the answer was not shown to the practitioner",
}
# Actions whose events never name a child (help, enrolment, operator housekeeping): no words needed.
NEVER_ABOUT_A_CHILD = frozenset(
    {
        Action.USAGE,
        Action.HELP,
        Action.HOME,
        Action.HISTORY,
        Action.ENROL,
        Action.CODE,
        Action.REGISTER,
        Action.REGISTRATION_EXPIRED,
        Action.UNLINK,
        Action.PRACTITIONER_LEAVE,
        Action.PRACTITIONER_RETURN,
        Action.DECOMMISSION,
        Action.DECOMMISSION_DESTROY,
        Action.ALERT,
        Action.RETENTION,
        Action.ENROL_PAGE,
        Action.TOTP_ENROL,
        Action.TOTP_RESET,
        Action.BACKUP,
        Action.KEYS_ROTATE,
        Action.IMPORT,
        Action.SEED_DEMO,
        Action.RETENTION_RUN,
        Action.PRACTITIONER_LIST,
        Action.AUDIT_VERIFY,
        Action.AUDIT_CHECKPOINT,
        Action.TRANSPARENCY_REPORT,
        Action.GRANT_RUNTIME,
        Action.LEAD_NOTICES,
        Action.UNTRUSTED_SOURCE,
    }
)
UNWORDED = "something else Signpost recorded about this record"  # never reached: see NEVER_ABOUT_A_CHILD
# A decision refused (the request already decided or expired, not theirs to decide, its reason
# screened out) changed nothing: "denied an access request; refused" read as if access was denied.
DECIDE_ACTIONS = ("approve", "deny")
TRIED_TO_DECIDE = "tried to decide an access request"
NOTHING_DECIDED = "nothing changed (no decision was made)"
# Where the outcome changes what was done: a search that found no one child did not find this one.
ACTION_WORDS_BY_OUTCOME = {
    ("search", "ambiguous"): "searched for by name and date of birth",
    # An access request that made none, whatever its detail says (``NO_REQUEST_WORDS`` tells why).
    **{(action, "info"): "asked for access: no request was made" for action in REQUEST_ACTIONS},
    **{(action, outcome): TRIED_TO_DECIDE for action in DECIDE_ACTIONS for outcome in REFUSED_OUTCOMES},
}
# Events Signpost writes itself about a practitioner's act: their purpose, whatever their origin.
DECIDING = "deciding another practitioner's request for access (duty manager)"
ACTION_PURPOSES = {
    "lead_professional_informed": "telling the child's lead professional who looked the record up",
    "approve": DECIDING,
    "deny": DECIDING,
    # A duty manager's or an admin's own duties, not an enquiry about the child.
    "pending": "reviewing the access requests waiting for a decision",
    "relay_traffic": "reviewing relayed messages for misuse",
}
# Where an action's outcome means something else than a lookup's: a batch match shows the service
# each candidate's reference and a confidence, never contact details.
ACTION_OUTCOME_WORDS = {
    ("match_batch", "answered"): "reference listed as a candidate (no contact details)",
    ("sar", "done"): "it shows who reached the record and when, nothing else of it",
    ("pending", "info"): "reference and the purpose given shown, nothing else of the record",
    **{(action, outcome): NOTHING_DECIDED for action in DECIDE_ACTIONS for outcome in REFUSED_OUTCOMES},
    # A relay message is sent only when it is "done": refused, not understood or answered otherwise
    # (the writer had access already, say), nothing reached anyone.
    ("relay_message", "done"): "sent",
    # The answering entry (just before it) says what the answer held; this one, that it was not delivered.
    ("answer_not_shown", "failed"): "the chat platform did not deliver it; nothing of it was seen",
    # A search that could not tell which child was meant: this child was one of its possible
    # matches (or the only one, on evidence too weak to answer), and nothing was shown.
    ("search", "ambiguous"): POSSIBLE_MATCH,
    # A request that names a child is refused only for its purpose (screening): it was understood.
    **{(action, "invalid"): "refused, nothing shown" for action in REQUEST_ACTIONS},
}
NOT_SENT = {"relay_message"}
OUTCOME_WORDS = {
    "answered": "contact details shown",
    "no_match": "nothing shown",
    "ambiguous": "nothing shown (not sure which child)",
    "shielded": "nothing shown (shielded)",
    "refused": "refused",
    "done": "done",
    "failed": "failed, nothing shown",
    "invalid": "not understood, nothing shown",
    "challenged": "a code was asked for first, nothing shown",
    "locked": "refused (code entry paused), nothing shown",
    "info": "information given, nothing of the record shown",
    "started": "started",
    "switched_off": "refused (the service is switched off)",
}

# What a shielded child's report withholds, and why, said once for the text and the JSON report.
WITHHELD = ("organisation", "local authority", "name", "purpose given")
WITHHELD_WORD = "withheld"
SHIELDED_NOTICE = (
    "This record is shielded: each entry's organisation, local authority, person's name and the purpose "
    "they gave are withheld, because they could reveal where the child is or who works with them. "
    "Review this release with your data protection officer before it is handed over "
    "(UK GDPR Art. 15(4); DPA 2018 Sch. 2 Part 3, serious harm)."
)
# Purposes in Signpost's own words (none a practitioner typed): they name no one and no place.
OWN_PURPOSES = frozenset(
    {
        NO_PURPOSE,
        REQUEST_REFUSED,
        REQUEST_NOT_MADE,
        OPERATOR_PURPOSE,
        PURPOSE_GONE,
        *ORIGIN_PURPOSES.values(),
        *ACTION_PURPOSES.values(),
    }
)


@dataclass(frozen=True, slots=True)
class SarEntry:
    seq: int
    at: str  # ISO 8601, UTC
    organisation: str
    role: str
    local_authority: str
    action: str  # the internal names: a report shows them in words (``what_was_done``, ``what_came_of_it``)
    outcome: str
    purpose: str
    practitioner: str | None = None  # name and id, only when asked for
    done_as: str | None = None  # what was done, when the event's detail says more than its action and outcome

    def what_was_done(self) -> str:
        """The action in a family's words (``action`` is its internal name, never shown to them)."""
        if self.done_as is not None:
            return self.done_as
        return ACTION_WORDS_BY_OUTCOME.get((self.action, self.outcome)) or ACTION_WORDS.get(self.action, UNWORDED)

    def what_came_of_it(self) -> str:
        """The outcome in a family's words (``outcome`` is its internal name, never shown to them)."""
        outcome = ACTION_OUTCOME_WORDS.get((self.action, self.outcome))
        if outcome is None and self.action in NOT_SENT:
            outcome = "not sent"
        return outcome or OUTCOME_WORDS.get(self.outcome, self.outcome)

    def for_family(self) -> dict[str, object]:
        """The entry as the JSON report gives it: the text report's words, field by field."""
        fields = asdict(self)
        del fields["done_as"]  # said as the action
        return {**fields, "action": self.what_was_done(), "outcome": self.what_came_of_it()}

    def withheld(self) -> SarEntry:
        """The entry as a shielded child's report shows it: ``WITHHELD`` gone, the rest kept."""
        purpose = self.purpose if self.purpose in OWN_PURPOSES else WITHHELD_WORD
        return replace(
            self,
            organisation=WITHHELD_WORD,
            local_authority=WITHHELD_WORD,
            practitioner=None if self.practitioner is None else WITHHELD_WORD,
            purpose=purpose,
        )

    def line(self) -> str:
        if self.organisation == WITHHELD_WORD:
            return self._line(f"{self.role} (organisation, area and name withheld)")
        who = f"{self.role}, {self.organisation}" + (f" ({self.local_authority})" if self.local_authority else "")
        if self.practitioner:
            who = f"{self.practitioner} — {who}"
        return self._line(who)

    def _line(self, who: str) -> str:
        when = datetime.fromisoformat(self.at).strftime("%d/%m/%Y %H:%M UTC")
        return f"{when}  {who}\n    {self.what_was_done()}; {self.what_came_of_it()}; purpose: {self.purpose}"


@dataclass(frozen=True, slots=True)
class SarReport:
    child_ref: str
    produced_at: str
    with_names: bool
    entries: tuple[SarEntry, ...]
    in_register: bool = True  # False: no child has this reference (mistyped, or not imported)
    shielded: bool = False  # True: the text and JSON withhold ``WITHHELD`` (``entries`` keep them)

    def shown(self) -> tuple[SarEntry, ...]:
        """The entries as the family's report gives them: withheld for a shielded child."""
        return tuple(e.withheld() for e in self.entries) if self.shielded else self.entries

    def to_json(self) -> str:
        notice: dict[str, object] = (
            {"shielded": True, "notice": SHIELDED_NOTICE, "withheld": list(WITHHELD)} if self.shielded else {}
        )
        return json.dumps(
            {
                **notice,
                "child_ref": self.child_ref,
                "produced_at": self.produced_at,
                "with_names": self.with_names,
                "in_register": self.in_register,
                "entries": [e.for_family() for e in self.shown()],
            },
            indent=2,
            ensure_ascii=False,
        )

    def to_text(self) -> str:
        who = "role" if self.shielded else "organisation and role"
        head = [
            *([SHIELDED_NOTICE] if self.shielded else []),
            f"Subject access report for the child with reference {self.child_ref}",
            f"Produced {datetime.fromisoformat(self.produced_at):%d/%m/%Y %H:%M} UTC from Signpost's audit log.",
            f"Every time Signpost returned or touched this record: when, who ({who}), "
            "what was done, what was shown, and the purpose given.",
            "",
        ]
        if not self.in_register:
            head.append(f"No child with reference {self.child_ref} is in the register: check the reference.")
            if not self.entries:
                return "\n".join([*head, "No event in the audit log mentions this reference."]) + "\n"
            head.extend(["Events in the audit log that mention this reference:", ""])
        elif not self.entries:
            return "\n".join([*head, "No one has looked up this record."]) + "\n"
        body = [e.line() for e in self.shown()]
        return "\n".join([*head, *body, "", f"{len(self.entries)} entries."]) + "\n"


@dataclass(frozen=True, slots=True)
class _Row:
    seq: int
    at: datetime
    actor_id: str | None
    actor_org: str | None
    actor_role: str | None
    actor_la: str | None
    user_id: str
    platform: str
    action: str
    outcome: str
    terms: bytes | None
    terms_key: str | None
    detail: str | None

    def no_request(self) -> NoRequestMade | None:
        """Why an access request made none (None: it made one, was refused, or is no request)."""
        if self.action not in REQUEST_ACTIONS or self.outcome != "info":
            return None
        return NoRequestMade.of(self.detail)


async def subject_access(
    db: Database, sealer: TermSealer, child_ref: int, now: datetime, *, with_names: bool = False
) -> SarReport:
    """The report for one child: every audit event that returned or touched them, oldest first."""
    async with db.read() as session:
        tag = await sealer.candidate_tag(session, child_ref)  # None once the child's key is destroyed
        rows = await _events(session, child_ref, tag)
        names = await _names(session, {r.actor_id for r in rows if r.actor_id}) if with_names else {}
        purposes = await _purposes(session, sealer, rows)
        held = (await session.execute(select(Child.ref, Child.shielded).where(Child.ref == child_ref))).first()
    entries = tuple(_entry(row, purposes.get(row.seq, _default_purpose(row)), names, with_names) for row in rows)
    shielded = held is not None and bool(held.shielded)  # shielded now, whatever it was when each entry was made
    return SarReport(format_ref(child_ref), utc(now).isoformat(), with_names, entries, held is not None, shielded)


async def _events(session: AsyncSession, child_ref: int, tag: str | None) -> list[_Row]:
    """The events naming the child as a subject, and (with its ``tag``) the searches that had it as
    a possible match (``possible_match_seqs``), once each, oldest first: two index lookups."""
    fields = [getattr(AuditEvent, name) for name in _Row.__dataclass_fields__]
    result = await session.execute(
        select(*fields)
        .join(AuditSubject, AuditSubject.seq == AuditEvent.seq)
        .where(AuditSubject.child_ref == child_ref)
        .order_by(AuditEvent.seq)
    )
    rows = {row.seq: _Row(*row) for row in result}
    if tag is not None:
        matches = possible_match_seqs(tag).subquery()
        for row in await session.execute(select(*fields).join(matches, matches.c.seq == AuditEvent.seq)):
            rows.setdefault(row.seq, _Row(*row))
    return [rows[seq] for seq in sorted(rows)]


async def _names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    result = await session.execute(
        select(Practitioner.id, Practitioner.given_name, Practitioner.family_name).where(Practitioner.id.in_(ids))
    )
    return {pid: f"{given} {family} ({pid})" for pid, given, family in result}


async def _purposes(session: AsyncSession, sealer: TermSealer, rows: Sequence[_Row]) -> dict[int, str]:
    """Each entry's purpose: the actor's latest access-request reason for this child, at or before it."""
    latest: dict[str, str] = {}
    purposes: dict[int, str] = {}
    for row in rows:
        if row.actor_id is None:
            continue
        repeated = row.no_request() in (NoRequestMade.WAITING, NoRequestMade.GRANTED)
        if repeated:
            # Its own purpose (none kept before they were); not carried on: no request was made of it.
            purposes[row.seq] = await _reason(session, sealer, row) if row.terms is not None else REQUEST_NOT_MADE
            continue
        if row.action in REQUEST_ACTIONS and row.terms is not None:
            # Only a request that was made carries its purpose on to the requester's later entries.
            latest[row.actor_id] = await _reason(session, sealer, row)
        elif row.action in REQUEST_ACTIONS and row.outcome in REFUSED_OUTCOMES:
            purposes[row.seq] = REQUEST_REFUSED  # its own purpose was refused: not an earlier one's
            continue
        if row.actor_id in latest:
            purposes[row.seq] = latest[row.actor_id]
        elif row.action in REQUEST_ACTIONS:
            purposes[row.seq] = REQUEST_NOT_MADE
    return purposes


async def _reason(session: AsyncSession, sealer: TermSealer, row: _Row) -> str:
    if row.terms is None or row.terms_key is None:
        return NO_PURPOSE
    try:
        terms = await sealer.open(session, row.terms, row.terms_key)
    except DecryptionError:
        terms = None
    if terms is None:
        return PURPOSE_GONE
    reason = _LEADING_REF.sub("", terms).strip()
    return reason or NO_PURPOSE


def _origin(platform: str) -> Origin | None:
    """The origin of an event no chat user sent (also in the spellings used before origins); else None."""
    return Origin(platform) if is_origin(platform) else LEGACY_ORIGINS.get(platform)


def _default_purpose(row: _Row) -> str:
    """The purpose of an entry with no access request behind it: by origin, else an ordinary enquiry."""
    if row.action in ACTION_PURPOSES:
        return ACTION_PURPOSES[row.action]
    origin = _origin(row.platform)
    if origin is not None and origin in ORIGIN_PURPOSES:
        return ORIGIN_PURPOSES[origin]
    return NO_PURPOSE if row.actor_id else OPERATOR_PURPOSE


def _entry(row: _Row, purpose: str, names: dict[str, str], with_names: bool) -> SarEntry:
    origin = _origin(row.platform)
    if row.actor_id is None:
        # Not a registered practitioner: an operator at the terminal, or Signpost's own scheduled work.
        org, role = "Signpost operations", ORIGIN_ROLES[origin] if origin else "unregistered"
    else:
        org, role = row.actor_org or "unknown organisation", row.actor_role or "unknown role"
        if origin is Origin.BATCH:
            role = f"{role}, matching a list of children (batch match)"
    person = None
    if with_names:
        if row.actor_id:
            person = names.get(row.actor_id, "(no longer in the practitioner register)")
        elif origin is Origin.SCHEDULER:
            person = "Signpost (automatic)"
        else:
            person = f"terminal user {row.user_id}"
    return SarEntry(
        seq=row.seq,
        at=utc(row.at).isoformat(),
        organisation=org,
        role=role,
        local_authority=row.actor_la or "",
        action=row.action,
        outcome=row.outcome,
        purpose=purpose,
        practitioner=person,
        done_as=NO_REQUEST_WORDS.get(no_request) if (no_request := row.no_request()) else None,
    )
