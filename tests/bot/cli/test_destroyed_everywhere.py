"""Forensics as a tester does it: destroy a child with `signpost`, then grep the bytes of the store's
files and of a backup taken afterwards for what only that child's row held."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

from sqlalchemy.engine import make_url

from store.register.feeds import REDATED_NOTE
from tests.bot.cli.conftest import Cli
from tests.factories import CHILDREN_HEADER, PRACTITIONERS
from tests.store.keys.test_backup import restored

REF = "9434765919"
MARKER = "Qzlamarker Vale"  # a child's name, put under local_authority by a row out of line


def _children(tmp_path: Path, name: str, born: int) -> str:
    feed = tmp_path / name
    row = f"{REF},Zeb,Qzfamily,,{born}-03-04,M,ZZ9 9QX,{MARKER},false"
    feed.write_text(f"{CHILDREN_HEADER}\n{row}\n", encoding="utf-8")
    return str(feed)


def _files_holding(marker: bytes, *paths: Path) -> list[str]:
    found = []
    for path in paths:
        for each in path.parent.glob(path.name + "*"):
            if marker in each.read_bytes():
                found.append(each.name)
    return found


def _plain_dump(db_url: str, tmp_path: Path) -> Path:
    """The whole PostgreSQL database as pg_dump writes it in plain SQL (what an auditor would grep)."""
    url = make_url(db_url)
    target = tmp_path / "plain.sql"
    args = ["pg_dump", "--no-owner", f"--file={target}", "--dbname", str(url.database)]
    for flag, value in (("--host", url.host), ("--port", url.port), ("--username", url.username)):
        if value is not None:
            args += [flag, str(value)]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    return target


async def test_a_name_under_local_authority_goes_with_the_destroyed_child(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """A children row out of line put a name under local_authority: no practitioner belongs to that
    "authority", so it is never shown, but it was kept in clear on the destroyed child's row and in
    the authorities' table, in the store and in every backup taken after the destruction. Destroying
    the child takes it from both: the store's files and a backup then hold no byte of it."""
    practitioners = tmp_path / "practitioners.csv"
    practitioners.write_text(PRACTITIONERS, encoding="utf-8")
    assert (await cli.run("import", str(practitioners), _children(tmp_path, "children.csv", 2016))).code == 0
    year = date.today().year - 30
    destroyed = await cli.run("import", "--destroy-redated", _children(tmp_path, "redated.csv", year))
    assert destroyed.code == 0, destroyed.err
    assert "1 record already held destroyed" in destroyed.out
    backup = tmp_path / "after.backup"
    assert (await cli.run("backup", str(backup))).code == 0
    stores = [Path(db_url.split("///", 1)[1])] if db_url.startswith("sqlite") else []
    assert _files_holding(MARKER.encode(), backup, *stores) == []


async def test_a_name_under_local_authority_is_gone_after_decommissioning(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """Decommissioning deletes every child's row, but the authorities' table is no personal table:
    the name a row out of line put there outlived it, in the store and in a backup taken after."""
    practitioners = tmp_path / "practitioners.csv"
    practitioners.write_text(PRACTITIONERS, encoding="utf-8")
    assert (await cli.run("import", str(practitioners), _children(tmp_path, "children.csv", 2016))).code == 0
    today = date.today().strftime("%d/%m/%Y")
    assert (await cli.run("decommission", "schedule", "--switch-off", today, "--at-once")).code == 0
    destroyed = await cli.run("decommission", "destroy")
    assert destroyed.code == 0, destroyed.err
    # A backup after switch-off is refused (it would only outlive the destruction): the store's own
    # bytes are searched, its files on SQLite, a plain dump of the database on PostgreSQL.
    backup = tmp_path / "after.backup"
    assert (await cli.run("backup", str(backup))).code == 2 and not backup.exists()
    stores = [Path(db_url.split("///", 1)[1])] if db_url.startswith("sqlite") else [_plain_dump(db_url, tmp_path)]
    assert _files_holding(MARKER.encode(), *stores) == []


async def test_a_record_destroyed_for_a_corrected_date_is_out_of_an_earlier_backups_reach_after_a_rotation(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """`import --destroy-redated` punctures no key (the earlier date's lives on for the other
    children born that day): a backup taken before it, restored beside the key file, served the child
    again (forensic review). The import says so and what to do; once the key file is rotated, that
    backup is refused before anything of it is read."""
    practitioners = tmp_path / "practitioners.csv"
    practitioners.write_text(PRACTITIONERS, encoding="utf-8")
    assert (await cli.run("import", str(practitioners), _children(tmp_path, "children.csv", 2016))).code == 0
    before = tmp_path / "before.backup"
    assert (await cli.run("backup", str(before))).code == 0
    year = date.today().year - 30
    destroyed = await cli.run("import", "--destroy-redated", _children(tmp_path, "redated.csv", year))
    assert destroyed.code == 0, destroyed.err
    note = REDATED_NOTE.format(records="1 record")
    assert note in " ".join(destroyed.out.split()), destroyed.out
    assert MARKER not in destroyed.out + destroyed.err and REF not in destroyed.out + destroyed.err
    roll = tmp_path / "roll.csv"
    roll.write_text(f"{CHILDREN_HEADER}\n,Zeb,Qzfamily,,2016-03-04,M,ZZ9 9QX,,\n", encoding="utf-8")
    async with restored(db_url, before) as old:
        env = {"SIGNPOST_DATABASE_URL": old.engine.url.render_as_string(hide_password=False)}
        served = await cli.run("match", str(roll), "--as", "AD01", env=env)
        assert (await cli.run("keys", "rotate")).code == 0
        refused = await cli.run("match", str(roll), "--as", "AD01", env=env)
    assert served.code == 0 and f"2,match,1,{REF}" in served.out, (served.code, served.out, served.err)
    assert refused.code == 2 and "needs key generation 1, which the key file no longer holds" in refused.err
    assert REF not in refused.out
