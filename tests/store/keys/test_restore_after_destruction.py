"""A backup taken before a destruction, restored with the key file as it is afterwards (README,
"Backups": "or a later copy of it"), must not keep the destroyed child's rows alive: retention on the
restored store finishes the destruction (the child's cohort key is already gone, so the blind index
cannot find it, but its rows are still there: involvements in clear by reference)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.app import Signpost
from store.keys.backup import backup
from store.lifecycle import retention
from store.tables.register import Child, ChildKey, Involvement
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import TURNS_24, at, load, retention_on

NOV_2, NOV_3 = date(2026, 11, 2), date(2026, 11, 3)


async def test_retention_on_a_restored_old_backup_destroys_the_child_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    await load(signpost)
    await retention_on(signpost, NOV_2)
    backup_file = tmp_path / "before.backup"
    await backup(signpost.ctx.db, backup_file)
    await retention_on(signpost, NOV_3)  # TURNS_24 destroyed in the live store, its cohort key punctured
    keys = current_key_material(signpost.ctx.keys, NOV_3)
    async with restored(db_url, backup_file) as old:
        for day in (NOV_3, NOV_3 + timedelta(days=1)):
            await retention.run(old, keys, at(day))
        async with old.read() as session:
            state = (await session.execute(select(Child.state).where(Child.ref == int(TURNS_24)))).scalar_one()
            involvements = (
                await session.execute(
                    select(func.count()).select_from(Involvement).where(Involvement.child_ref == int(TURNS_24))
                )
            ).scalar_one()
            wrapped = await session.get(ChildKey, int(TURNS_24))
        assert (state, involvements, wrapped is None) == ("destroyed", 0, True)
