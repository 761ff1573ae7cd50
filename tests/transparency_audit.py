"""A known October 2026 audit for the transparency report tests: what happened, and what must be published.

Events are written with ``store.audit.log.append`` (the one path every audit event takes into the
chain), as the dispatcher and the scheduler write them: chat events carry the practitioner, their role
and authority; scheduler and terminal events carry an origin and no authority. Events just before and
just after October must not be counted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.app import Signpost
from handlers.vocabulary import Action, Actor, Origin, Outcome
from store.audit import chain as audit_chain
from store.audit.log import AuditRecord, append, origin_event
from store.register.feeds import Feed, import_feeds
from tests.factories import PRACTITIONERS, standard_feeds

MONTH = "2026-10"
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # the FakeClock's start: October is the last complete month

# Six more teachers in Northshire, so some practitioner counts reach 5 and are published as numbers.
# Not "T01": every report carries the time it was made, and "…T01:…" is one in an hour of each night.
TEACHERS = [f"TCH0{i}" for i in range(1, 7)]
EXTRA = "".join(
    f"{pid},Tess{i},Lane{i},Teacher,Hill Primary School,Northshire,0161 496 01{i:02d},t{i}@hill.example,practitioner\n"
    for i, pid in enumerate(TEACHERS, start=1)
)
ROLES = {
    "P001": ("Social worker", "Northshire"),
    "P002": ("School nurse", "Northshire"),
    "P003": ("Teacher", "Northshire"),
    "DM01": ("Duty manager", "Northshire"),
    "S001": ("Health visitor", "Southvale"),
    **{pid: ("Teacher", "Northshire") for pid in TEACHERS},
}
# Every identifying string of the synthetic people: none may appear in anything published.
PERSONAL = (
    *ROLES,
    "AD01",
    "Sam",
    "Carter",
    "Priya",
    "Shah",
    "Lee Hart",
    "Dana",
    "Moss",
    "Tess1",
    "Lane1",
    "@",
    "9990000018",
    "999 000 0018",
    "9990000050",
    "U1",
)


def chat(
    pid: str, action: Action, outcome: Outcome, at: datetime, detail: str = "", subjects: tuple[int, ...] = ()
) -> AuditRecord:
    role, la = ROLES[pid]
    return AuditRecord(
        at=at,
        actor_id=pid,
        platform="slack",
        tenant="T1",
        user_id="U1" + pid,
        actor_role=role,
        actor_org="Some organisation",
        actor_la=la,
        channel="direct",
        action=action.value,
        outcome=outcome.value,
        subject_refs=(9990000018,) if outcome is Outcome.ANSWERED else subjects,
        result_count=1,
        correlation_id=uuid.uuid4().hex,
        detail=detail,
    )


@dataclass
class KnownAudit:
    head_at_month_end: audit_chain.Head
    checkpoint: audit_chain.Checkpoint


async def load_people(app: Signpost) -> None:
    feeds = [Feed("practitioners.csv", PRACTITIONERS + EXTRA), *standard_feeds()[1:]]
    await import_feeds(app.ctx.db, app.ctx.keys, feeds, NOW)


async def write_known_audit(app: Signpost) -> KnownAudit:
    """The October audit below, plus noise either side; returns the chain head at the end of October."""
    day = OCT + timedelta(days=9, hours=10)
    before, after = OCT - timedelta(seconds=1), OCT + timedelta(days=31)
    records: list[AuditRecord] = []
    # Outside October: never counted.
    records += [chat("P001", Action.LOOKUP, Outcome.ANSWERED, before) for _ in range(10)]
    # Keyed lookups. Northshire: 7 answered (published), 3 no match (suppressed), 5 shielded. Southvale: 2 answered.
    records += [chat("P001", Action.LOOKUP, Outcome.ANSWERED, day) for _ in range(4)]
    records += [chat("P002", Action.LOOKUP, Outcome.ANSWERED, day) for _ in range(3)]
    records += [chat("P002", Action.LOOKUP, Outcome.NO_MATCH, day) for _ in range(3)]
    records += [chat(t, Action.LOOKUP, Outcome.SHIELDED, day) for t in TEACHERS[:5]]
    records += [chat("S001", Action.LOOKUP, Outcome.ANSWERED, day) for _ in range(2)]
    records += [chat("P001", Action.LOOKUP, Outcome.REFUSED, day) for _ in range(6)]  # not a reached outcome
    # Demographic searches: 6 answered in Northshire (by the six teachers), 1 ambiguous in Southvale.
    records += [chat(t, Action.SEARCH, Outcome.ANSWERED, day) for t in TEACHERS]
    records.append(chat("S001", Action.SEARCH, Outcome.AMBIGUOUS, day))
    # Access requests decided by Northshire's duty manager: 6 approved, 1 denied; 5 expired undecided.
    # A decision on an access request names the child; one on a registration names none.
    shielded = (9990000050,)
    records += [
        chat("DM01", Action.APPROVE, Outcome.DONE, day, f"request {i} grant {i} 24h", shielded) for i in range(6)
    ]
    records.append(chat("DM01", Action.DENY, Outcome.DONE, day, "request 6 denied", shielded))
    records.append(chat("DM01", Action.APPROVE, Outcome.REFUSED, day, "request 6 already denied", shielded))
    # Registrations decided by the same duty manager: 5 approved, 2 denied. Not access requests.
    records += [chat("DM01", Action.APPROVE, Outcome.DONE, day, f"registration R{i}") for i in range(1, 6)]
    records += [chat("DM01", Action.DENY, Outcome.DONE, day, f"registration R{i}") for i in range(6, 8)]
    records += [
        origin_event(Origin.SCHEDULER, Action.REQUEST_EXPIRED, day, subjects=(9990000050,), detail=f"request {i}")
        for i in range(5)
    ]
    # Misuse alerts: enumeration by P001 five times (Northshire), after hours once by S001 (Southvale).
    alert = "signpost-misuse-monitor"
    records += [origin_event(Origin.SCHEDULER, Action.ALERT, day, who=alert, detail="enumeration: P001")] * 5
    records.append(origin_event(Origin.SCHEDULER, Action.ALERT, day, who=alert, detail="after_hours: S001"))
    # Lead professionals told about Northshire lookups, one event a lookup as handlers.lead writes it:
    # 10 lookups told one lead each, one (an authority telling everyone) two leads and a colleague:
    # 12 leads and 1 other practitioner. No relay messages.
    looker = Actor("P002", "Priya Shah", "School nurse", "Northshire School Health", "Northshire", frozenset())
    told = [("1 lead, 0 other (lead)", 1)] * 10 + [("2 lead, 1 other (all)", 3)]
    records += [
        origin_event(Origin.SCHEDULER, Action.LEAD_PROFESSIONAL_INFORMED, day, actor=looker, result_count=n, detail=d)
        for d, n in told
    ]
    # Retention: 7 archived, 4 destroyed (suppressed) over two runs. Subject-access reports: 2 (suppressed).
    records.append(origin_event(Origin.SCHEDULER, Action.RETENTION, day, detail="archived 3 destroyed 4 sealed 0"))
    records.append(origin_event(Origin.SCHEDULER, Action.RETENTION, day, detail="archived 4 destroyed 0 sealed 0"))
    records += [origin_event(Origin.TERMINAL, Action.SAR, day, who="operator", subjects=(9990000018,))] * 2
    async with app.ctx.db.write() as session:
        await append(session, records)
    checkpoint = await audit_chain.make_checkpoint(app.ctx.db, app.ctx.signer, OCT + timedelta(days=20))
    last = [chat("P003", Action.HELP, Outcome.INFO, OCT + timedelta(days=30, hours=23))]  # active, not a lookup
    async with app.ctx.db.write() as session:
        await append(session, last)
        head = await audit_chain.current_head(session)
    # After October: not counted, and a checkpoint signed in November is not October's.
    async with app.ctx.db.write() as session:
        await append(session, [chat("P001", Action.LOOKUP, Outcome.ANSWERED, after) for _ in range(10)])
    await audit_chain.make_checkpoint(app.ctx.db, app.ctx.signer, after + timedelta(hours=1))
    return KnownAudit(head, checkpoint)
