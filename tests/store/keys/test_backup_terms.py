"""An old backup's blind-index terms of a child destroyed since cannot be tested with the current key file.

The forensic review's attack, repeated: with a backup taken before a child's destruction and the key
file as it is now, try every date of birth over the register's years, and a list of names and
postcode districts, against the child's terms in the backup, under every key the key file yields
(the index key and every term key it can derive).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.app import Signpost
from store.keys import keychain
from store.keys.backup import backup
from store.keys.crypto import KeyRing
from store.register.children import retention_term
from store.register.terms import FULL_DATE_KINDS, Identity, index_terms, phonetic_key, term_kind
from store.tables.register import ChildTerm
from tests.store.keys.test_backup import NOV_2, NOV_3, current_key_material, restored
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_24, load, retention_on

BORN = date(2002, 11, 3)  # TURNS_24: Tara (alias Tara Vale), M2 3CD
YEAR_GONE = date(2026, 12, 31)  # the last cohort of 2002 turns 24: the 2002 year key goes
GIVEN = ["AMY", "OLIVIA", "TARA", "SOPHIE", "EMILY", "JACK", "OMAR", "LENA", "MARC", "IVY", "MIA", "ZARA"]
FAMILY = ["JONES", "SMITH", "VALE", "PATEL", "FROST", "STONE", "BROWN", "TAYLOR", "WILSON", "KHAN"]
DISTRICTS = [f"{area}{n}" for area in ("M", "B", "L", "LS", "SK") for n in range(1, 41)]


def every_day(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def every_key(ring: KeyRing) -> list[bytes]:
    """Every key a key file yields for blind terms: the index key and each term key it can derive."""
    return [ring.index_key, *ring.term_keys.days.values(), *ring.term_keys.years.values()]


def hits(ring: KeyRing, guesses: Iterable[str], held: set[int], keys: list[bytes]) -> set[str]:
    """The guessed terms found among ``held`` under any of ``keys``."""
    return {guess for guess in guesses for key in keys if ring.term_keys.blind(key, guess) in held}


def true_terms() -> set[str]:
    """The child's own terms, as an attacker who guessed everything right would write them."""
    identity = Identity("Tara", MARKER, ("Tara Vale",), BORN, "F", "M2 3CD")
    return {*index_terms(identity), retention_term(BORN)}


def dob_found(ring: KeyRing, held: set[int]) -> set[str]:
    """Retention's exact-date term for every day of 27 years, each under its own day key, the index
    key and every year key."""
    shared = [ring.index_key, *ring.term_keys.years.values()]
    found: set[str] = set()
    for day in every_day(date(2000, 1, 1), date(2026, 12, 31)):
        own = ring.term_keys.days.get(day)
        found |= hits(ring, [retention_term(day)], held, [*shared, *([own] if own else [])])
    return found


def place_found(ring: KeyRing, held: set[int]) -> set[str]:
    """One name's sound-alike key + outward postcode (``no:``), names and districts by list, under the
    index key and every year key."""
    guesses = [f"no:{phonetic_key(name)}|{out}" for name in GIVEN + FAMILY for out in DISTRICTS]
    return hits(ring, guesses, held, [ring.index_key, *ring.term_keys.years.values()])


async def backup_terms(db_url: str, backup_file: Path) -> set[int]:
    async with restored(db_url, backup_file) as old, old.read() as session:
        rows = await session.execute(select(ChildTerm.term).where(ChildTerm.child_ref == int(TURNS_24)))
        return set(rows.scalars())


async def test_an_old_backup_gives_up_no_date_name_or_district_of_a_child_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """Backup, then retention destroys the child's cohort (3 November 2026) and, later, the last day of
    its birth year (31 December 2026). With the key file as it is then, no key it yields (index key,
    every term key) finds any of the child's own terms in the old backup, and brute force over every
    date in 27 years and 1,100 name/district pairs finds nothing; with the key file of backup time
    the same attack finds all its terms, its date of birth, first name and district, so it is the
    punctured keys that protect it. In between (the cohort gone, its year not yet), the full-date
    terms are already untestable and the year-keyed ones not yet: the rule the README states."""
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    held = await backup_terms(db_url, backup_file)
    assert signpost.ctx.keys.path is not None
    then = KeyRing.load_or_create(signpost.ctx.keys.path)
    keychain.install(then, NOV_2)
    assert {then.term_keys.blind(key, term) for term in true_terms() for key in every_key(then)} & held == held
    assert dob_found(then, held) == {retention_term(BORN)}  # control: the attack works with a live key
    assert place_found(then, held) == {"no:TR|M2"}  # Tara, in M2

    await retention_on(signpost, NOV_3)  # the child's cohort is destroyed
    cohort_gone = current_key_material(signpost.ctx.keys, NOV_3)
    assert BORN not in cohort_gone.term_keys.days and BORN.year in cohort_gone.term_keys.years
    assert dob_found(cohort_gone, held) == set()
    year_keyed = {term for term in true_terms() if term_kind(term) not in FULL_DATE_KINDS}
    assert hits(cohort_gone, true_terms(), held, every_key(cohort_gone)) == year_keyed  # until 2002 ends
    assert place_found(cohort_gone, held) == {"no:TR|M2"}

    while (await retention_on(signpost, YEAR_GONE)).pending_days:  # every day of 2002 is destroyed
        pass
    year_gone = current_key_material(signpost.ctx.keys, YEAR_GONE)
    assert BORN.year not in year_gone.term_keys.years
    assert hits(year_gone, true_terms(), held, every_key(year_gone)) == set()
    assert dob_found(year_gone, held) == set()
    assert place_found(year_gone, held) == set()
