"""A backup restored when every child it holds has been destroyed since (a review of a rule tried
and backed out at stop 57): the current key file opens none of its children's birth-date keys,
because retention destroyed them all, not because the key file is wrong. `db check` must say the
records are under destroyed keys and `retention run` must finish the destruction — not refuse it
and send the operator to restore an older key file, which would open the destroyed children."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select

from bot.app import Signpost
from store.db import Database
from store.keys import witness
from store.keys.binding import bind
from store.register.feeds import Feed, import_feeds
from store.tables.lifecycle import Meta
from store.tables.register import Child, ChildKey
from tests.bot.cli.conftest import Cli, clock_checked
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
        run = await cli.run("retention", "run", *clock_checked(), env=env)
        assert run.code == 0, run.err
        assert "1 was destroyed" in run.out + run.err, (run.out, run.err)
        assert (await _held(url)) == ([(int(TURNS_24), "destroyed")], 0)
        after = await cli.run("db", "check", env=env)
        assert after.code == 0, after.out + after.err


async def test_a_backup_from_before_witnesses_whose_every_child_was_destroyed_since_is_said_and_accepted(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """The same backup taken before the store recorded its chains' witnesses: nothing stored can
    prove or disprove the key file's chains, and that is what is said (not "does not match", which
    sends the operator to an older key file that would open the destroyed children); retention run
    --accept-key-file records them and finishes the destruction."""
    tara = next(row for row in LIFECYCLE_CHILDREN.splitlines() if row.startswith(TURNS_24))
    register = [Feed("practitioners.csv", PRACTITIONERS), Feed("children.csv", f"{CHILDREN_HEADER}\n{tara}\n")]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, register, BACKED_UP)
    await bind(signpost.ctx.db, signpost.ctx.keys, BACKED_UP.date())
    async with signpost.ctx.db.write() as session:
        await session.execute(delete(Meta).where(Meta.key.like(f"{witness.PREFIX}%")))
    taken = await back_up_then_destroy(signpost, tmp_path)
    async with restored(db_url, taken) as old:
        url = old.engine.url.render_as_string(hide_password=False)
        env = {"SIGNPOST_DATABASE_URL": url}
        check = await cli.run("db", "check", env=env)
        assert "does not match" not in check.out + check.err, check.out + check.err
        assert "cannot be checked against this store" in check.out + check.err, check.out + check.err
        refused = await cli.run("retention", "run", *clock_checked(), env=env)
        assert refused.code != 0 and "does not match" not in refused.said, refused.said
        lines = [line for line in refused.said.splitlines() if "cannot be checked against this store" in line]
        assert len(lines) == 1 and "--accept-key-file" in lines[0], refused.said
        assert (await _held(url)) == ([(int(TURNS_24), "active")], 1)
        run = await cli.run("retention", "run", *clock_checked(), "--accept-key-file", env=env)
        assert run.code == 0, run.err
        assert "1 was destroyed" in run.out + run.err, (run.out, run.err)
        assert (await _held(url)) == ([(int(TURNS_24), "destroyed")], 0)
        after = await cli.run("db", "check", env=env)
        assert after.code == 0, after.out + after.err
