"""`signpost retention run` killed (kill -9) as it writes the key file after a day's commit (PostgreSQL
forensics review): the store has destroyed the children of cohorts whose birth-date and term keys the
key file still holds, so a backup taken before opens them with it. `signpost db check` said OK, and
`signpost keys rotate` carried those keys into the new generation; only the next retention run
removed them. The check now says so, with what to do, and the rotation is refused until it is done."""

from __future__ import annotations

import re
import signal
from datetime import date

from sqlalchemy import select

from bot.app import Signpost
from store.keys import keychain
from store.keys.binding import bind
from store.keys.crypto import KeyRing
from store.keys.keychain import Chain
from store.tables.register import ChildKey
from tests.bot.cli.conftest import Cli, clock_checked
from tests.bot.cli.test_cut_short import events, generations_on_disk, killed_at_rename, needs_strace
from tests.store.lifecycle.lifecycle_data import TURNS_24, load, retention_on

NOV_2 = date(2026, 11, 2)

LAGGING = re.compile(
    r"SIGNPOST_KEY_FILE still holds the birth-date and search-term keys of ([\d,]+) days? of births whose "
    r"children retention has destroyed \(a retention run stopped before it wrote the key file\), so a backup "
    r"taken before opens those children with it: run `signpost retention run` to finish the destruction"
)
ROTATE_REFUSED = (
    "cannot rotate, nothing was changed: the key file still holds birth-date and search-term keys of children "
    "retention has destroyed, which a rotation would carry into the new generation: run `signpost retention run` "
    "to finish the destruction, then rotate again"
)


def _cutoffs(keys: KeyRing) -> tuple[int | None, int | None]:
    assert keys.path is not None
    on_disk = KeyRing.load(keys.path)
    return keychain.cutoff_of(on_disk, Chain.DAY), keychain.cutoff_of(on_disk, Chain.TERM)


@needs_strace
async def test_a_retention_run_killed_as_it_writes_the_key_file_is_named_by_db_check_and_stops_a_rotation(
    signpost: Signpost, cli: Cli, keys: KeyRing
) -> None:
    assert keys.path is not None
    await load(signpost)  # 2 November 2026; TURNS_24 is 24 on the 3rd
    await retention_on(signpost, NOV_2)
    await bind(signpost.ctx.db, keys, NOV_2)  # as `signpost run` records it
    async with signpost.ctx.db.read() as session:
        taken = (await session.execute(select(ChildKey.kek_id).where(ChildKey.child_ref == int(TURNS_24)))).one()
    assert (await cli.run("db", "check")).code == 0
    before = _cutoffs(keys)

    # The real `signpost retention run` (today's date: its first batch of days destroys TURNS_24),
    # killed -9 as it puts the key file punctured through that batch in its place.
    assert killed_at_rename(keys.path, 1, "retention", "run", *clock_checked()) == -signal.SIGKILL
    assert _cutoffs(keys) == before  # the key file as the kill left it: every cohort key still there
    async with signpost.ctx.db.read() as session:
        gone = (await session.execute(select(ChildKey.kek_id).where(ChildKey.child_ref == int(TURNS_24)))).first()
    assert gone is None and taken  # destroyed in the store (committed before the key file's write)

    checked = await cli.run("db", "check")
    assert checked.code == 1 and "Traceback" not in checked.err, checked
    lag = LAGGING.search(checked.out)
    assert lag is not None and int(lag.group(1).replace(",", "")) >= 1, checked.out
    assert "2002" not in checked.out + checked.err and TURNS_24 not in checked.out + checked.err

    generations = generations_on_disk(keys)
    rotated = await cli.run("keys", "rotate")
    assert rotated.code == 2 and ROTATE_REFUSED in rotated.said, rotated
    assert _cutoffs(keys) == before and generations_on_disk(keys) == generations  # nothing changed
    assert (await events(signpost.ctx.db, "keys_rotate"))[-1][0] == "refused"

    finished = await cli.run("retention", "run", *clock_checked())
    assert finished.code == 0, finished
    day, term = _cutoffs(keys)
    assert day is not None and term is not None and before[0] is not None and day > before[0] and term == day
    again = await cli.run("db", "check")
    assert again.code == 0 and LAGGING.search(again.out) is None, again
    assert (await cli.run("keys", "rotate")).code == 0
