"""A backup taken before decommissioning, put back beside the key file its destruction emptied: the
store holds sealed records no key can open now. `db check`, `decommission status` and `console`
said the key file "does not belong to this store (it was sealed under another key file): use the
key file kept with it", pointing the operator at an old key file that may not exist, for what may
be this very store's backup (a forensic tester). They say what is true, in one line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from store.keys.binding import EMPTIED_SEALED, NOT_OURS
from tests.bot.cli.conftest import Cli
from tests.store.keys.test_backup import restored

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FEEDS = [str(EXAMPLES / name) for name in ("practitioners.csv", "children.csv", "involvements.csv")]


async def test_a_backup_from_before_decommissioning_beside_the_emptied_key_file_is_named_for_what_it_is(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    assert (await cli.run("import", *FEEDS)).code == 0
    taken = tmp_path / "before.bak"
    assert (await cli.run("backup", str(taken))).code == 0
    today = date.today().strftime("%d/%m/%Y")  # the command's day, read when the test runs
    assert (await cli.run("decommission", "schedule", "--switch-off", today, "--at-once")).code == 0
    destroyed = await cli.run("decommission", "destroy")
    assert destroyed.code == 0, destroyed.err
    async with restored(db_url, taken) as old:
        env = {"SIGNPOST_DATABASE_URL": old.engine.url.render_as_string(hide_password=False)}
        checked = await cli.run("db", "check", env=env)
        status = await cli.run("decommission", "status", env=env)
        console = await cli.run("console", env=env)
    assert checked.code == 1, checked
    assert EMPTIED_SEALED in checked.out and NOT_OURS not in checked.out, checked.out
    for run in (status, console):
        assert run.code == 2 and "Traceback" not in run.err, run
        assert len(run.said.splitlines()) == 1 and run.said.endswith(EMPTIED_SEALED), run.said
    for each in (checked, status, console):
        assert "use the key file kept with it" not in each.out + each.err
