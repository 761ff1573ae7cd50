"""A small synthetic authority and a realistic working day of lookups, for the misuse rules' tests.

The day: practitioners work their own hours (two emergency-duty workers work evenings into the
night), look up mostly children they work with, sometimes others in their authority and rarely one
elsewhere; some searches are by name and date of birth (a few mistyped or ambiguous); a shielded
hit is usually followed by an access request; one practitioner is locked out once.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.app import Signpost
from store.audit.log import AuditRecord, append
from store.delivery import notices as notice_store
from store.register.feeds import Feed, import_feeds
from store.register.synthetic import SyntheticRegister, feeds_text
from store.tables.delivery import Notice

UK = ZoneInfo("Europe/London")
DAY = date(2026, 11, 2)  # a Monday; the FakeClock starts on it


@dataclass(frozen=True)
class Kid:
    ref: int
    given: str
    family: str
    dob: date
    postcode: str
    la: str
    shielded: bool


@dataclass(frozen=True)
class Person:
    pid: str
    la: str
    role: str
    org: str
    platform: str
    starts: time
    hours: int
    own: tuple[int, ...]


@dataclass
class World:
    register: SyntheticRegister
    kids: dict[int, Kid]
    people: list[Person]

    def in_area(self, la: str, *, shielded: bool = False) -> list[Kid]:
        return [k for k in self.kids.values() if k.la == la and k.shielded == shielded]

    def identity_words(self) -> set[str]:
        """Every way an alert could name a child: references (both spellings), names, births, postcodes."""
        words: set[str] = set()
        for k in self.kids.values():
            digits = f"{k.ref:010d}"
            words |= {
                digits,
                f"{digits[:3]} {digits[3:6]} {digits[6:]}",
                k.postcode,
                k.dob.isoformat(),
                f"{k.dob:%d/%m/%Y}",
                f"{k.given} {k.family}",
            }
        return words


async def load_world(app: Signpost, children: int = 400, per_authority: int = 6) -> World:
    """Import the synthetic authority's feeds into the app's store; the World describes what it holds."""
    world = plan_world(children, per_authority)
    feeds = [Feed(name, text) for name, text in feeds_text(world.register).items()]
    await import_feeds(app.ctx.db, app.ctx.keys, feeds, app.ctx.clock.now())
    return world


def plan_world(children: int = 400, per_authority: int = 6) -> World:
    """The synthetic authority's children and practitioners (seeded: the same every time), unwritten."""
    register = SyntheticRegister(children=children, practitioners_per_authority=per_authority)
    kids = {
        ref: Kid(ref, row[1], row[2], date.fromisoformat(row[4]), row[6], row[7], row[8] == "true")
        for ref, row in register.children()
    }
    own: dict[str, list[int]] = {}
    for row in register.involvements():
        own.setdefault(row[1], []).append(int(row[0]))
    rows = {row[0]: row for row in register.practitioners()}
    rng = random.Random(7)
    people = []
    for n, (pid, la) in enumerate(register.practitioner_ids()):
        night = n % 12 == 5  # one emergency-duty worker in every dozen
        people.append(
            Person(
                pid=pid,
                la=la,
                role=rows[pid][3],
                org=rows[pid][4],
                platform=("slack", "teams")[n % 2],
                starts=time(18, 0) if night else time(8, rng.choice((0, 15, 30, 45))),
                hours=7 if night else rng.choice((8, 9)),
                own=tuple(own.get(pid, ())),
            )
        )
    return World(register, kids, people)


def _record(
    person: Person, at: datetime, action: str, outcome: str, subjects: tuple[int, ...], detail: str = ""
) -> AuditRecord:
    return AuditRecord(
        at=at,
        actor_id=person.pid,
        platform=person.platform,
        tenant="T1",
        user_id=f"U-{person.pid}",
        actor_role=person.role,
        actor_org=person.org,
        actor_la=person.la,
        channel="direct",
        action=action,
        outcome=outcome,
        subject_refs=subjects,
        result_count=len(subjects),
        correlation_id=uuid.uuid4().hex,
        detail=detail,
    )


def _enquiry(world: World, person: Person, at: datetime, rng: random.Random) -> list[tuple[AuditRecord, str]]:
    """One enquiry (and the access request that follows a shielded hit), with the text it was typed as."""
    roll = rng.random()
    if person.own and roll < 0.75:
        kid = world.kids[rng.choice(person.own)]
    elif roll < 0.96:
        kid = rng.choice([k for k in world.kids.values() if k.la == person.la])
    else:
        kid = rng.choice([k for k in world.kids.values() if k.la != person.la])
    by_name = rng.random() < 0.4
    text = f"{kid.given} {kid.family} {kid.dob:%d/%m/%Y}" if by_name else f"{kid.ref}"
    action = "search" if by_name else "lookup"
    if kid.shielded:
        hit = [(_record(person, at, action, "shielded", (kid.ref,)), text)]
        if rng.random() < 0.8:
            asked = _record(person, at + timedelta(minutes=2), "request_access", "done", (kid.ref,))
            hit.append((asked, "assessment visit tomorrow"))
        return hit
    if by_name and rng.random() < 0.15:
        if rng.random() < 0.66:  # a typo: nothing matches
            return [(_record(person, at, action, "no_match", ()), text.replace(kid.family, kid.family + "e"))]
        other = rng.choice(list(world.kids))
        return [(_record(person, at, action, "ambiguous", (kid.ref, other)), text)]
    return [(_record(person, at, action, "answered", (kid.ref,)), text)]


def working_day(world: World, person: Person, day: date, rng: random.Random) -> list[tuple[AuditRecord, str]]:
    start = datetime.combine(day, person.starts, UK)
    minutes = sorted(rng.randint(0, person.hours * 60 - 1) for _ in range(rng.randint(3, 18)))
    events: list[tuple[AuditRecord, str]] = []
    for m in minutes:
        events += _enquiry(world, person, start + timedelta(minutes=m, seconds=rng.randint(0, 59)), rng)
    if rng.random() < 0.1:
        events.append((_record(person, start + timedelta(minutes=minutes[0]), "history", "info", ()), ""))
    return events


async def write_days(
    app: Signpost, world: World, days: list[date], people: list[Person] | None = None, seed: int = 2026
) -> list[AuditRecord]:
    """Write the working days (weekdays only) of these people, in time order, with sealed terms."""
    return await write_events(app, plan_days(world, days, people, seed))


def plan_days(
    world: World, days: list[date], people: list[Person] | None = None, seed: int = 2026
) -> list[tuple[AuditRecord, str]]:
    """The working days' events (and the text each was typed as), in time order; seeded, unwritten."""
    rng = random.Random(seed)
    events: list[tuple[AuditRecord, str]] = []
    for day in days:
        if day.weekday() >= 5:
            continue
        for person in people or world.people:
            events += working_day(world, person, day, rng)
    if world.people and DAY in days:  # one practitioner mistypes their code five times, once
        person = world.people[3]
        at = datetime.combine(DAY, time(11, 5), UK)
        events.append((_record(person, at, "code", "locked", (), detail="code wrong; locked"), ""))
    events.sort(key=lambda pair: pair[0].at)
    return events


async def write_events(app: Signpost, events: list[tuple[AuditRecord, str]]) -> list[AuditRecord]:
    """Append the events with their typed text sealed, as the bot would have written them."""
    written: list[AuditRecord] = []
    for start in range(0, len(events), 500):
        chunk: list[AuditRecord] = []
        async with app.ctx.db.read() as session:
            for record, text in events[start : start + 500]:
                sealed, key = await app.ctx.sealer.seal(session, text, record.subject_refs, record.at)
                chunk.append(replace(record, terms=sealed, terms_key=key))
        async with app.ctx.db.write() as session:
            await append(session, chunk)
        written += chunk
    return written


def history_days(before: date, count: int) -> list[date]:
    return [before - timedelta(days=n) for n in range(count, 0, -1)]


def at_uk(hour: int, minute: int = 0) -> datetime:
    """A time on DAY, UK local."""
    return datetime.combine(DAY, time(hour, minute), UK)


async def alerts(app: Signpost) -> list[tuple[str, str]]:
    """(recipient, text) of every misuse alert notice, once the live checks have caught up."""
    await app.ctx.audit.settle()
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(Notice).where(Notice.kind == "misuse_alert"))).scalars()
        return [(row.recipient_id, notice_store.decode(row).text) for row in rows]
