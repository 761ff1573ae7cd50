"""`signpost db check` on a backup taken before a child's destruction, put back beside the key file
as it is after it (forensic review): the check passed it with "every wrapped key is under a key
SIGNPOST_KEY_FILE holds", of a store holding a record whose birth-date key retention had destroyed.
Nothing leaked (the record cannot be opened), but the line was untrue and the operator was not told
that the next retention run finishes the destruction."""

from __future__ import annotations

from pathlib import Path

from bot.app import Signpost
from store.keys.binding import bind
from store.register.feeds import Feed, import_feeds
from tests.bot.cli.conftest import Cli
from tests.bot.cli.restored_store import BACKED_UP, back_up_then_destroy
from tests.factories import CHILDREN, PRACTITIONERS
from tests.store.keys.test_backup import restored
from tests.store.lifecycle.lifecycle_data import LIFECYCLE_CHILDREN, TURNS_24

HELD = "every wrapped key is under a key SIGNPOST_KEY_FILE holds"


async def test_db_check_of_a_store_older_than_its_key_file_says_records_are_under_destroyed_keys(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    tara = next(row for row in LIFECYCLE_CHILDREN.splitlines() if row.startswith(TURNS_24))
    register = [Feed("practitioners.csv", PRACTITIONERS), Feed("children.csv", f"{CHILDREN}{tara}\n")]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, register, BACKED_UP)
    await bind(signpost.ctx.db, signpost.ctx.keys, BACKED_UP.date())  # as `signpost run` records it
    before = await cli.run("db", "check")
    assert before.code == 0 and HELD in before.out, before
    taken = await back_up_then_destroy(signpost, tmp_path)
    async with restored(db_url, taken) as old:
        url = old.engine.url.render_as_string(hide_password=False)
        checked = await cli.run("db", "check", env={"SIGNPOST_DATABASE_URL": url})
    assert HELD not in checked.out, checked
    assert (
        "child_keys: 1 wrapped key under a birth-date key retention has destroyed, so nothing can open it "
        "(a store older than its key file: a backup put back?): `signpost retention run` finishes the destruction"
    ) in checked.out, checked
    assert checked.code == 1 and "Traceback" not in checked.err, checked
    assert TURNS_24 not in checked.out + checked.err
