"""The benchmark's register: N synthetic children with involvements, and practitioners who ask.

The generator is pluggable (``--generator module:function``): any function taking
``(children, seed)`` and yielding ``store.register.terms.Identity`` values, lazily or not. The
default is the matching benchmark's household generator (UK-style name frequencies, households,
twins). Children go in through ``store.register.children.insert_new``, the bulk path of a first
load (sealed per child under its own data key, blind-index terms, name counts), in chunks; each
child gets 1–3 involvements (about 1.9) with practitioners of the same authority, written as plain
inserts (a first load: nothing to update).

The practitioners who ask each get a Slack identity and enrol an authenticator through the real
dispatcher (``enrol`` then ``code`` with a TOTP code), so they are freshly stepped up: keyed
enquiries are answered without a code prompt for the next 30 minutes.
"""

from __future__ import annotations

import importlib
import itertools
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import cast

import pyotp
from sqlalchemy import insert, text

from bot.app import Signpost
from handlers.grammar import UsageError, parse_demographic
from handlers.matching.terms import Query
from handlers.stepup import totp
from handlers.vocabulary import Command, Outcome, Platform, Principal, Role
from store.keys import keychain
from store.people import credentials, practitioners
from store.people.practitioners import PractitionerRow
from store.register import children
from store.register.children import ChildRow
from store.register.refs import references
from store.register.terms import Identity
from store.tables.register import Involvement, LocalAuthority

AUTHORITY = "Benchshire"
TEAM = "T0001"
CHUNK = 50_000
WORKERS = 2000  # practitioners involved with the children
SERVICES = ("Early Help", "School Nursing", "Youth Justice", "CAMHS", "Family Support", "Social Care")
Generate = Callable[[int, int], Iterable[Identity]]


def matching_identities(children_wanted: int, seed: int) -> Iterator[Identity]:
    """The matching benchmark's labelled generator (households, name frequencies), identities only."""
    from benchmarks.matching.generate import Generator

    return (child.identity for child in Generator(seed).register(children_wanted))


def load_generator(spec: str) -> Generate:
    """``module:function`` to the generator function it names."""
    module, _, name = spec.partition(":")
    found = getattr(importlib.import_module(module), name or "identities")
    if not callable(found):
        raise SystemExit(f"--generator {spec}: not a function")
    return cast(Generate, found)


@dataclass
class Register:
    children: int = 0
    involvements: int = 0
    generate_load_s: float = 0.0
    refs: list[int] = field(default_factory=list)  # every active child's reference, shuffled
    demographic: list[str] = field(default_factory=list)  # typed searches about a sample (``typed_searches``)


def asker_id(n: int) -> str:
    return f"BENCH-A{n:04d}"


def slack_user(n: int) -> str:
    return f"UBENCH{n:04d}"


def _person(pid: str, role: str, roles: frozenset[Role]) -> PractitionerRow:
    return PractitionerRow(
        pid, "Bench", pid[-4:], role, "Bench Trust", AUTHORITY, "0100 000 0000", "b@b.example", roles
    )


def _involvements(rng: random.Random, ref: int) -> list[dict[str, object]]:
    count = rng.choices((1, 2, 3), weights=(35, 40, 25))[0]
    workers = rng.sample(range(WORKERS), count)
    rows: list[dict[str, object]] = []
    for i, worker in enumerate(workers):
        started = date(2020, 1, 1) + timedelta(days=rng.randrange(2000))
        ended = started + timedelta(days=rng.randrange(30, 400)) if i and rng.random() < 0.3 else None
        rows.append(
            {
                "child_ref": ref,
                "practitioner_id": f"BENCH-W{worker:05d}",
                "service": SERVICES[rng.randrange(len(SERVICES))],
                "started": started,
                "ended": ended,
                "lead_professional": i == 0,
            }
        )
    return rows


async def build_register(
    app: Signpost, generate: Generate, size: int, seed: int, now: datetime, demographic_sample: int = 5000
) -> Register:
    """Load ``size`` children with involvements; returns their references and a demographic sample."""
    rng = random.Random(seed)
    started = time.perf_counter()
    db = app.ctx.db
    async with db.write() as session:
        session.add(LocalAuthority(name=AUTHORITY, first_seen=now))
    async with db.write() as session:
        workers = [_person(f"BENCH-W{n:05d}", "Key Worker", frozenset({Role.PRACTITIONER})) for n in range(WORKERS)]
        await practitioners.upsert_practitioners(session, workers, now)
    async with db.write() as session:  # reachable on Slack: told when their children are looked up
        for n in range(WORKERS):
            principal = Principal(Platform.SLACK, TEAM, f"UWORK{n:05d}")
            await practitioners.link_identity(session, principal, f"BENCH-W{n:05d}", now)
    register = Register()
    sample_every = max(1, size // demographic_sample)
    sampled: list[Identity] = []
    identities = iter(generate(size, seed))
    refs = references(900_000_000)
    while True:
        batch = list(itertools.islice(identities, CHUNK))
        if not batch:
            break
        # Children 24 or over are never stored (insert_new would leave them out): not asked about either.
        live = [identity for identity in batch if not keychain.due_for_destruction(identity.date_of_birth, now.date())]
        rows = [ChildRow(next(refs), identity, AUTHORITY, False) for identity in live]
        links = [link for row in rows for link in _involvements(rng, row.ref)]
        async with db.write() as session:
            stored = await children.insert_new(session, app.ctx.keys, rows, now)
            await session.execute(insert(Involvement.__table__), links)  # type: ignore[arg-type]
        for i, row in enumerate(rows):
            if children.initial_state(row.identity.date_of_birth, now.date()) != "active":
                continue  # stored archived (18 or over): ordinary enquiries do not find it, so not asked
            register.refs.append(row.ref)
            if (register.children + i) % sample_every == 0:
                sampled.append(row.identity)
        register.children += stored
        register.involvements += len(links)
    if db.dialect == "postgresql":
        async with db.write() as session:
            await session.execute(text("ANALYZE"))
    register.generate_load_s = time.perf_counter() - started
    rng.shuffle(register.refs)
    register.demographic = typed_searches(sampled, seed, now.date())
    return register


def typed_searches(children: Sequence[Identity], seed: int, today: date) -> list[str]:
    """What practitioners type when they search by name, one text per sampled child.

    The matching benchmark's corruptions (``benchmarks.matching.generate``), as its labelled queries
    make them: 80 % describe the sampled child with one or two realistic mistakes (typos, phonetic
    and keyboard slips, nicknames, swapped names, a new surname, a wrong digit or year of the date,
    a moved house; the postcode full, outward only or missing), 20 % a child who is not registered
    (a stranger, an unregistered sibling or twin, a namesake), so searches meet the candidates,
    ambiguity and "no record" answers real ones do. Only what the chat accepts is kept: a date of
    birth and at least one name (``parse_demographic``); the rest would be usage errors, not searches.
    """
    from benchmarks.matching.generate import Child, Generator

    generator = Generator(seed + 1)
    register = [Child(identity, n) for n, identity in enumerate(children)]
    texts: list[str] = []
    for labelled in generator.queries(register, len(register)):
        text = search_text(labelled.query)
        if text is None:
            continue
        try:
            parse_demographic(text, today)
        except UsageError:
            continue
        texts.append(text)
    return texts


def search_text(query: Query) -> str | None:
    """A query as typed in chat: names, date of birth (DD/MM/YYYY), postcode if any."""
    if query.date_of_birth is None:
        return None
    words = [*query.given_names.split(), *query.family_name.split(), f"{query.date_of_birth:%d/%m/%Y}"]
    return " ".join([*words, *(query.postcode or "").split()])


async def warm_term_keys(app: Signpost, now: datetime) -> int:
    """Make the audit-term key of every birth date a stored child can have, as a register that has
    been searched for a while holds them: a search's terms are sealed under its date of birth's key
    (``store.audit.log.TermSealer``), and the first search naming a date makes that key in a write
    transaction of its own. On a fresh database about one search in five paid for that (a cold-start
    cost, not a search's); returns the keys made."""
    today = now.date()
    first = date(today.year - keychain.DESTROY_AT_AGE - 1, 1, 1)
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    async with app.ctx.db.write() as session:
        return await app.ctx.sealer.make_cohort_keys(session, days, now)


async def enrol_askers(app: Signpost, users: Iterable[int], now: datetime) -> None:
    """One practitioner per Slack user, linked, enrolled and stepped up (fresh for 30 minutes)."""
    numbers = list(users)
    async with app.ctx.db.write() as session:
        rows = [_person(asker_id(n), "Social Worker", frozenset({Role.PRACTITIONER})) for n in numbers]
        await practitioners.upsert_practitioners(session, rows, now)
    for n in numbers:
        async with app.ctx.db.write() as session:
            principal = Principal(Platform.SLACK, TEAM, slack_user(n))
            await practitioners.link_identity(session, principal, asker_id(n), now)
        await step_up_in_slack(app, principal, asker_id(n))


async def step_up_in_slack(app: Signpost, who: Principal, practitioner_id: str) -> None:
    """Enrol and answer the first code in Slack, where the asker then asks (stepped up at the
    terminal instead, every asker's identity was "used from two platforms": a misuse alert and its
    notices each, 8-10 % of the bot's samples). The authenticator takes its seed from the store, as
    the enrolment page the link opens shows it."""
    enrolled = await app.dispatcher.handle(Command(who, "enrol", uuid.uuid4().hex))
    assert enrolled.challenge is not None, enrolled.text
    async with app.ctx.db.read() as session:
        seed = await credentials.load_seed(session, app.ctx.keys, practitioner_id)
    assert seed is not None
    authenticator = pyotp.parse_uri(totp.provisioning_uri(seed, practitioner_id))
    assert isinstance(authenticator, pyotp.TOTP)
    code = authenticator.at(app.ctx.clock.now())  # the time the bot keeps
    challenge = enrolled.challenge.challenge_id
    reply = await app.dispatcher.handle(Command(who, "code", uuid.uuid4().hex, code=code, challenge_id=challenge))
    assert reply.outcome is Outcome.DONE, reply.text
