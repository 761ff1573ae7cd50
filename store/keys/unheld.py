"""Wrapped keys under a key-encryption key the key file does not hold: what a replica that kept
serving through a rotation (with its own copy of the key file, on another host) sealed with the keys
it still had in memory. Nothing here can open them, and a rotation cannot re-wrap them.

Counted per table of ``WRAPPED_KEY_TABLES`` (one grouped read of each table's KEK ids, never a row's
content), for `signpost db check` and for `signpost keys rotate`, which refuses before it changes
anything. Where a remedy exists it is said: a TOTP seed goes with `signpost totp reset` of its
practitioner (named: an id, no personal data), who enrols again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from handlers.vocabulary import plural
from store.db import Database
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.keys.keychain import Chain
from store.keys.rotation import WRAPPED_KEY_TABLES

TOTP = "totp_credentials"
NAMED_AT_MOST = 10  # practitioners named in one line; the rest counted


@dataclass(frozen=True, slots=True)
class Unheld:
    """``rows`` wrapped keys of ``table`` under a KEK the key file does not hold."""

    table: str
    rows: int
    practitioners: tuple[str, ...] = ()  # TOTP seeds: whose, for `signpost totp reset`

    def said(self) -> str:
        """The table and the count, for the operator (``remedy`` says what to do, if anything)."""
        return f"{self.table}: {plural(self.rows, 'wrapped key')} under a key-encryption key the key file does not hold"

    def remedy(self) -> str:
        """What to do about them, where something can be done ("" otherwise)."""
        if not self.practitioners:
            return ""
        shown = ", ".join(f"`signpost totp reset {who}`" for who in self.practitioners[:NAMED_AT_MOST])
        more = len(self.practitioners) - NAMED_AT_MOST
        return f"run {shown}{f' and {more} more' if more > 0 else ''}; each practitioner enrols again"


def held(ring: KeyRing, kek_id: str, generations: set[int] | None = None) -> bool:
    """Whether the key file holds the KEK ``kek_id`` names: a master KEK by its id, a derived one
    by its generation (a punctured day of a held generation is destroyed on purpose, not lost).
    ``generations``: ``keychain.generations(ring)``, when the caller asks of many ids."""
    if kek_id[:1] == "k":
        return kek_id in ring.keks
    gen = keychain.generation_of(kek_id, keychain.generation(ring))
    return gen is not None and gen in (keychain.generations(ring) if generations is None else generations)


async def unheld(db: Database, ring: KeyRing) -> list[Unheld]:
    """Every table holding wrapped keys the key file cannot open, with how many."""
    found: list[Unheld] = []
    generations = keychain.generations(ring)  # once, not once per distinct key id (thousands)
    async with db.read() as session:
        for spec in WRAPPED_KEY_TABLES:
            kek = spec.table.c[spec.kek_id]
            counts = (await session.execute(select(kek, func.count()).where(kek.is_not(None)).group_by(kek))).all()
            lost = [str(kek_id) for kek_id, _ in counts if not held(ring, str(kek_id), generations)]
            if not lost:
                continue
            rows = sum(n for kek_id, n in counts if str(kek_id) in lost)
            whose: tuple[str, ...] = ()
            if spec.table.name == TOTP:
                named = select(spec.table.c.practitioner_id).where(kek.in_(lost)).order_by(spec.table.c.practitioner_id)
                whose = tuple(str(p) for p in (await session.execute(named)).scalars())
            found.append(Unheld(spec.table.name, rows, whose))
    return found


@dataclass(frozen=True, slots=True)
class Destroyed:
    """``rows`` wrapped keys of ``table`` under birth-date keys of the key file's generation that
    retention has destroyed: records a store older than its key file holds (a backup put back), which
    nothing can open and the next retention run removes."""

    table: str
    rows: int

    def said(self) -> str:
        return (
            f"{self.table}: {plural(self.rows, 'wrapped key')} under a birth-date key retention has destroyed, "
            f"so nothing can open {'it' if self.rows == 1 else 'them'} (a store older than its key file: "
            "a backup put back?): `signpost retention run` finishes the destruction"
        )


async def under_destroyed(db: Database, ring: KeyRing, today: date) -> list[Destroyed]:
    """Every table holding wrapped keys under a birth-date key the key file's generation has
    destroyed (below its day chain's cutoff: not among the keys ``keychain.install`` derives), with
    how many. Retention destroys a day's key only after the rows under it are gone, so a live store
    has none. Only the current generation's ids are asked of, and only when the key file holds its
    birth-date chain (else nothing can be told from it)."""
    current = keychain.generation(ring)
    if not any(s.chain is Chain.DAY and s.gen == current for s in keychain.states(ring)):
        return []
    keychain.install(ring, today)  # in memory only: the keys from the cutoff to the horizon
    found: list[Destroyed] = []
    async with db.read() as session:
        for spec in WRAPPED_KEY_TABLES:
            kek = spec.table.c[spec.kek_id]
            counts = (await session.execute(select(kek, func.count()).where(kek.like("d%")).group_by(kek))).all()
            rows = sum(
                n
                for kek_id, n in counts
                if keychain.generation_of(str(kek_id), current) == current and str(kek_id) not in ring.keks
            )
            if rows:
                found.append(Destroyed(spec.table.name, rows))
    return found
