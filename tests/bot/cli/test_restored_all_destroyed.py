"""A backup restored when every child it holds has been destroyed since (a review of a rule tried
and backed out at stop 57): the current key file opens none of its children's birth-date keys,
because retention destroyed them all, not because the key file is wrong. `db check` must say the
records are under destroyed keys and `retention run` must finish the destruction — not refuse it
and send the operator to restore an older key file, which would open the destroyed children."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.app import Signpost
from store.db import Database
from store.keys.binding import bind
from store.register.feeds import Feed, import_feeds
from store.tables.register import Child, ChildKey
from tests.bot.cli.conftest import Cli
from tests.bot.cli.restored_store import BACKED_UP, back_up_then_destroy
from tests.factories import CHILDREN_HEADER, PRACTITIONERS
from tests.store.keys.test_backup import restored
from tests.store.lifecycle.lifecycle_data import LIFECYCLE_CHILDREN, TURNS_24


async def _held(url: str) -> tuple[list[tuple[int, str]], int]:
    db = await Database.open(url)
    try:
        async with db.read() as session:
            rows = [
                (int(ref), str(state)) for ref, state in (await session.execute(select(Child.ref, Child.state))).all()
            ]
            wrapped = (await session.execute(select(func.count()).select_from(ChildKey))).scalar_one()
    finally:
        await db.close()
    return rows, int(wrapped)


async def test_a_restored_backup_whose_every_child_was_destroyed_since_is_finished_by_retention(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    tara = next(row for row in LIFECYCLE_CHILDREN.splitlines() if row.startswith(TURNS_24))
    register = [Feed("practitioners.csv", PRACTITIONERS), Feed("children.csv", f"{CHILDREN_HEADER}\n{tara}\n")]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, register, BACKED_UP)
    await bind(signpost.ctx.db, signpost.ctx.keys, BACKED_UP.date())
    taken = await back_up_then_destroy(signpost, tmp_path)
    async with restored(db_url, taken) as old:
        url = old.engine.url.render_as_string(hide_password=False)
        env = {"SIGNPOST_DATABASE_URL": url}
        assert (await _held(url)) == ([(int(TURNS_24), "active")], 1)  # brought back, under a destroyed key
        before = await cli.run("db", "check", env=env)
        assert "does not match" not in before.out + before.err, before.out
        run = await cli.run("retention", "run", env=env)
        assert run.code == 0, run.err
        assert "1 was destroyed" in run.out + run.err, (run.out, run.err)
        assert (await _held(url)) == ([(int(TURNS_24), "destroyed")], 0)
        after = await cli.run("db", "check", env=env)
        assert after.code == 0, after.out + after.err
