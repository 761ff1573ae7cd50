"""Backups taken before decommissioning's destruction still hold practitioners' names and contact
details and the involvements, in clear: wiping the key file does not reach them (a forensic
review). So `signpost backup` is refused once switched off, its own message says what is in clear,
and every "destroyed" message names the backups the audit log records, to be deleted."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from store.db import Database
from store.lifecycle.decommission import BackupTaken, left_in_backups
from store.tables.delivery import Notice
from tests.bot.cli.conftest import Cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def today() -> str:
    """The command's day as it prints it, read when the test runs (not when the module is
    collected: a run that crosses midnight must not send yesterday as today)."""
    return date.today().strftime("%d/%m/%Y")


FEEDS = [str(EXAMPLES / name) for name in ("practitioners.csv", "children.csv", "involvements.csv")]
EMAIL = b"tess.example@ex.example"  # a practitioner's, in examples/practitioners.csv


async def test_a_backup_says_practitioners_contact_details_and_involvements_are_in_clear_in_it(
    cli: Cli, tmp_path: Path
) -> None:
    """It said "It holds wrapped keys only", yet `grep -a` found a practitioner's e-mail in it."""
    assert (await cli.run("import", *FEEDS)).code == 0
    written = await cli.run("backup", str(tmp_path / "before.bak"))
    assert written.code == 0, written.err
    assert EMAIL in (tmp_path / "before.bak").read_bytes()  # what the message must own up to
    said = " ".join(written.out.split())
    assert "practitioners' names and contact details" in said and "in clear" in said, said
    assert "involvements" in said, said


async def test_once_switched_off_a_backup_is_refused_audited_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    """`backup after-switchoff.bak` ran after switch-off and printed "wrapped keys only"; the copy
    outlived the destruction with practitioners' e-mails and phones in clear."""
    assert (await cli.run("import", *FEEDS)).code == 0
    assert (await cli.run("decommission", "schedule", "--switch-off", today(), "--at-once")).code == 0
    target = tmp_path / "after-switchoff.bak"
    refused = await cli.run("backup", str(target))
    assert refused.code == 2, (refused.out, refused.err)
    assert refused.said.startswith(f"signpost: Signpost was decommissioned on {today()}"), refused.said
    assert "`signpost backup`" in refused.said and "Still working:" in refused.said
    assert "backup" not in refused.said.split("Still working:")[1], refused.said
    assert not target.exists()
    exported = await cli.run("audit", "export")
    last = [e for e in map(json.loads, exported.out.splitlines()) if e["action"] == "backup"][-1]
    assert (last["outcome"], last["detail"]) == ("refused", "switched off")


async def test_destroyed_says_backups_taken_before_still_hold_contact_details_and_names_them(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """`decommission status`, the completion message and the admins' certificate notice said "all
    personal data has been destroyed" while the backup taken before held names, phones, e-mails."""
    assert (await cli.run("import", *FEEDS)).code == 0
    backup = await cli.run("backup", str(tmp_path / "nightly-0412.bak"))
    assert backup.code == 0, backup.err
    # Named as the backup's own output named it (its label and SHA-256), never by the file name
    # typed, which the audit does not keep.
    label, digest = re.search(r"audited as (backup [0-9a-f]{12}), sha256 ([0-9a-f]{16})", backup.out).groups()  # type: ignore[union-attr]
    assert (await cli.run("decommission", "schedule", "--switch-off", today(), "--at-once")).code == 0
    destroyed = await cli.run("decommission", "destroy")
    assert destroyed.code == 0, destroyed.err
    status = await cli.run("decommission", "status")
    async with db.read() as session:
        bodies = (
            await session.execute(select(Notice.body).where(Notice.dedupe_key.like("%:step:certificate:%")))
        ).all()
    notices = [json.loads(body)["text"] for (body,) in bodies]
    assert notices, "the admins' certificate notice"
    for said in (destroyed.out, status.out, *notices):
        said = " ".join(said.split())
        assert f"{label} (sha256 {digest})" in said and date.today().strftime("%d/%m/%Y") in said, said
        assert "nightly-0412" not in said, said
        assert "practitioners' names and contact details" in said and "in clear" in said, said
        assert "must be deleted" in said, said
        assert "all personal data has been destroyed." not in said, said
    assert EMAIL in (tmp_path / "nightly-0412.bak").read_bytes()  # which is why it is said


def test_many_backups_are_named_latest_first_ten_and_the_rest_counted_with_how_to_list_them() -> None:
    """A nightly backup for years would make the admins' notice endless: the latest 10 by name and
    date, the rest counted, with the command that lists every one; none recorded: any other copy."""
    taken = [BackupTaken(f"nightly-{day:02d}.bak", datetime(2026, 11, day, 2, tzinfo=UTC)) for day in range(1, 13)]
    said = left_in_backups(taken)
    assert "nightly-12.bak (12/11/2026)" in said and "nightly-03.bak (03/11/2026)" in said, said
    assert "nightly-02.bak" not in said and "2 earlier (`signpost audit export`" in said, said
    assert "records 12" in said and "must be deleted" in said, said
    none = left_in_backups([])
    assert "No `signpost backup` is recorded" in none and "any other copy" in none and "in clear" in none
