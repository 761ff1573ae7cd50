"""A store restored from a backup taken before a child's destruction, beside the key file as it is
after it (the forensic reviews): what the three restored-store tests share. The child is TURNS_24
(17 when the backup is taken in 2020, 24 on 3 November 2026), shielded, with P001 its lead."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from bot.app import Signpost
from store.keys import keychain
from store.keys.backup import backup
from store.keys.keychain import Chain
from store.register.feeds import Feed, import_feeds
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_24

BACKED_UP = datetime(2020, 11, 2, 9, 0, tzinfo=UTC)
DESTROYED = date(2026, 11, 3)  # TURNS_24's 24th birthday
SHIELDED_TARA = f"{TURNS_24},Tara,{MARKER},Tara Vale,2002-11-03,F,M2 3CD,Northshire,true\n"
LEAD = f"{TURNS_24},P001,Children's social care,2020-01-10,,true\n"


async def import_shielded_tara(signpost: Signpost) -> None:
    """The standard register and TURNS_24, shielded, with P001 its lead, imported at BACKED_UP
    (the app's clock set there too)."""
    signpost.ctx.clock.set(BACKED_UP)  # type: ignore[attr-defined]
    register = [
        Feed("practitioners.csv", PRACTITIONERS),
        Feed("children.csv", CHILDREN + SHIELDED_TARA),
        Feed("involvements.csv", INVOLVEMENTS.splitlines()[0] + "\n" + LEAD),
    ]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, register, BACKED_UP)


async def back_up_then_destroy(signpost: Signpost, tmp_path: Path) -> Path:
    """The store backed up now, then TURNS_24's cohort birth-date key destroyed as the run on its
    24th birthday destroys it; the backup's path."""
    taken = tmp_path / "2020.backup"
    await backup(signpost.ctx.db, taken)
    cutoff = keychain.day_slot(keychain.first_retained_dob(DESTROYED))
    assert keychain.puncture(signpost.ctx.keys, Chain.DAY, cutoff, DESTROYED) > 0
    return taken
