"""After `decommission destroy` on PostgreSQL, the server's own WAL still holds what was deleted:
the completion message and `decommission status` say what is left there and what finishes it."""

from __future__ import annotations

from datetime import date

from bot.app import Signpost
from handlers.clock import FakeClock
from tests.handlers.lifecycle.test_decommission import destroy, schedule, status
from tests.store.lifecycle.lifecycle_data import at, load


async def test_on_postgresql_destruction_says_the_servers_wal_is_left_and_how_to_finish(
    signpost: Signpost, clock: FakeClock
) -> None:
    """PostgreSQL recycles its pg_wal segments without wiping them, so practitioners' contact
    details stay there after VACUUM FULL: the completion message and the status say so, and to
    drop the database and destroy the server's data volume. SQLite's WAL is truncated: not said."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    clock.set(at(date(2026, 11, 3)))
    done, now = await destroy(signpost), await status(signpost)
    assert "decommissioning complete" in done and "all personal data has been destroyed" in now
    for said in (done, now):
        if signpost.ctx.db.dialect == "postgresql":
            assert "pg_wal" in said and "data volume" in said, said
        else:
            assert "pg_wal" not in said, said
