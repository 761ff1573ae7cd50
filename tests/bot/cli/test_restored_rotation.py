"""`signpost keys rotate` on a store restored from a backup taken before a retention destruction,
beside the key file as it is after it (a forensic review): a child key whose birth-date cohort's
key is destroyed cannot be re-wrapped. Rotation failed every time with "child_keys: no key for d2…
in the new generation" and nothing else; it now says what to do, and doing it works."""

from __future__ import annotations

from pathlib import Path

from bot.app import Signpost
from tests.bot.cli.conftest import Cli, clock_checked
from tests.bot.cli.test_restored_minor import _old_backup_of_a_minor
from tests.store.keys.test_backup import restored


async def test_rotating_a_restored_store_holding_a_destroyed_cohort_says_to_run_retention_first(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    taken = await _old_backup_of_a_minor(signpost, tmp_path)
    async with restored(db_url, taken) as old:
        env = {"SIGNPOST_DATABASE_URL": old.engine.url.render_as_string(hide_password=False)}
        refused = await cli.run("keys", "rotate", env=env)
        assert refused.code == 2, (refused.out, refused.err)
        said = " ".join(refused.said.split())
        assert "`signpost retention run`" in said and "destroyed" in said, said
        assert len(refused.said.splitlines()) == 1 and "Traceback" not in refused.err
        assert (await cli.run("retention", "run", *clock_checked(), env=env)).code == 0
        rotated = await cli.run("keys", "rotate", env=env)
        assert rotated.code == 0, rotated.err
