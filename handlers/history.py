"""`history`: a practitioner's own last lookups: when, which reference, the outcome. Never terms."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handlers.clock import uk_time
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp
from handlers.grammar import UsageError, parse_number
from handlers.vocabulary import LOOKUP_ACTIONS, Action, Outcome, Reply, format_ref
from store.audit.chain import utc
from store.audit.log import cohort_period
from store.tables.audit import AuditEvent
from store.tables.register import ChildKey

DEFAULT_COUNT = 10
MAX_COUNT = 50
USAGE = "history [N]"

OUTCOME_WORDS = {
    "answered": "signposts shown",
    # A search not accepted was answered the same whatever its candidates (handlers/search.py,
    # ``not_found_text``): its line says the same too, or history would tell what the answer did not.
    "no_match": "no match",
    "ambiguous": "no match",
    "shielded": "shielded record",
    "refused": "refused",
    "invalid": "not run: a detail could not be used",  # read, and refused before it ran
    "failed": "failed",
    # Asked for a code that never came (one that came is listed once, as the lookup it ran).
    "challenged": "not run: no code given",
}
# A refusal by the step-up gate (its audit detail) stopped the lookup before it ran: said as what it was.
STOPPED_WORDS = {
    "not enrolled": "not run: needed enrolment",
    "stepup locked": "not run: code entry was paused",
    "stepup disabled": "not run: authenticator disabled",
}
# A reference is shown only where the reply itself gave it, or the practitioner typed it: never for
# an ambiguous or unmatched search, whose candidates the practitioner was not shown, nor for a
# shielded record found by name and date of birth (its finder is not to learn its reference; its
# buttons carry a handle instead, handlers/access/found.py).
REVEALED = frozenset({"answered", "shielded"})
REVEALED_BY_NAME = frozenset({"answered"})


def parse_count(args: str) -> int:
    if not args.strip():
        return DEFAULT_COUNT
    if len(args.split()) > 1:  # "history 3 4": 3 would do, so "from 1 to 50" would mislead
        raise UsageError(f"give one number of lookups, from 1 to {MAX_COUNT}, with nothing after it")
    count = parse_number(args, 1, MAX_COUNT)
    if count is None:
        raise UsageError(f"give a number of lookups from 1 to {MAX_COUNT}")
    return count


def history_line(at: datetime, action: str, outcome: str, subject_refs: str, detail: str = "") -> str:
    """One row: local time · reference (or a dash) · how it was asked · outcome."""
    refs = subject_refs.split()
    revealed = REVEALED if action == Action.LOOKUP else REVEALED_BY_NAME
    shown = format_ref(refs[0]) if outcome in revealed and len(refs) == 1 else "—"
    when = uk_time(utc(at))
    how = "by reference" if action == Action.LOOKUP else "by name and date of birth"
    said = STOPPED_WORDS.get(detail) if outcome == Outcome.REFUSED else None
    return f"{when} · {shown} · {how} · {said or OUTCOME_WORDS.get(outcome, outcome)}"


# A lookup run once its code came: its event shares the ``code`` command's correlation id
# (handlers/stepup/flow.py), and stands for the "challenged" event that parked it.
_CODE = aliased(AuditEvent)
_RESUMED = (
    select(_CODE.seq)
    .where(_CODE.correlation_id == AuditEvent.correlation_id, _CODE.action == Action.CODE)
    .exists()
    .label("resumed")
)


async def lookups(session: AsyncSession, practitioner_id: str, count: int) -> list[str]:
    """The newest ``count`` lookups as history lines, each once: a lookup parked for a code and
    run when the code came is its run's line alone (matched, newest first, to the latest earlier
    parking of the same query: a lookup by its child's birth-day cohort, as both are sealed; a
    search by name by its kind alone, since it is parked under its birth date's key and answered
    under the child's); one whose code never came is listed as such."""
    query = (
        select(
            AuditEvent.at,
            AuditEvent.action,
            AuditEvent.outcome,
            AuditEvent.subject_refs,
            AuditEvent.detail,
            AuditEvent.terms_key,
            _RESUMED,
        )
        .where(AuditEvent.actor_id == practitioner_id, AuditEvent.action.in_(LOOKUP_ACTIONS))
        .order_by(AuditEvent.at.desc(), AuditEvent.seq.desc())
    )
    lines: list[str] = []
    runs = Counter[tuple[str, str | None]]()  # resumed runs not yet matched to their parking
    page, offset = 2 * count, 0
    while len(lines) < count:
        rows = (await session.execute(query.limit(page).offset(offset))).all()
        cohorts = await _cohorts_of(session, [row.terms_key for row in rows if row.action == Action.LOOKUP])
        for at, action, outcome, refs, detail, terms_key, resumed in rows:
            # The same query: a lookup's run is sealed under its child's key ("child:<ref>", its
            # subject) and its parking under the cohort terms key of the child's birth day (it names
            # no reference): both read as that cohort's.
            same = (action, cohorts.get(terms_key, terms_key) if action == Action.LOOKUP else None)
            if resumed:
                runs[same] += 1
            elif outcome == Outcome.CHALLENGED and runs[same]:
                runs[same] -= 1
                continue  # its run is listed
            lines.append(history_line(at, action, outcome, refs, detail))
            if len(lines) == count:
                break
        if len(rows) < page:
            break
        offset += page
    return lines


async def _cohorts_of(session: AsyncSession, terms_keys: list[str | None]) -> dict[str | None, str]:
    """For each ``child:<ref>`` among ``terms_keys``, the ``cohort:`` terms key of that child's birth
    day (its data key's cohort), in one read; a child whose key is gone keeps its own."""
    refs = {int(key.partition(":")[2]) for key in terms_keys if key and key.startswith("child:")}
    if not refs:
        return {}
    rows = await session.execute(select(ChildKey.child_ref, ChildKey.kek_id).where(ChildKey.child_ref.in_(refs)))
    return {f"child:{ref}": f"cohort:{cohort_period(kek_id)}" for ref, kek_id in rows.all()}


async def show_history(ctx: Context, req: Request, session: AsyncSession) -> Result:
    assert req.actor is not None
    count = parse_count(req.args)
    lines = await lookups(session, req.actor.practitioner_id, count)
    if not lines:
        return Result(Reply(Outcome.INFO, "You have not looked up any child yet."), detail="empty")
    text = (
        "Your last lookup (UK time):" if len(lines) == 1 else f"Your last {len(lines)} lookups, newest first (UK time):"
    )
    return Result(Reply(Outcome.INFO, text, lines=tuple(lines)), result_count=len(lines))


SPECS = (
    Spec(
        name="history",
        action=Action.HISTORY,
        run=show_history,
        summary=f"your own last N lookups (default {DEFAULT_COUNT}): when, which reference, what came back",
        usage=USAGE,
        stepup=StepUp.FRESH,  # it lists child references
        audit_terms=False,
    ),
)
