"""`signpost import`'s summary says how many children in the register name a local authority no
practitioner belongs to: a children feed whose local_authority column is out of line (a child's name
there) is imported, as a feed arriving before the practitioners feed must be, and the operator sees
the count, never a name."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from store.db import Database
from store.tables.audit import AuditEvent
from tests import misaligned
from tests.bot.cli.conftest import Cli
from tests.factories import CHILDREN, INVOLVEMENTS, PRACTITIONERS

ONE = (
    "1 child in the register names a local authority no practitioner belongs to: such an authority is not shown "
    "in the transparency report or in chat until a practitioner of it is imported. With the practitioners feed "
    "imported, check the children feed's local_authority column (a row out of line puts other text there)."
)


def write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text, encoding="utf-8")
    return str(tmp / name)


async def test_the_summary_counts_children_of_an_authority_no_practitioner_belongs_to(
    cli: Cli, tmp_path: Path, db: Database
) -> None:
    """The misaligned row is imported and counted in one plain line, naming nobody (nor in the audit);
    once the row is corrected to Northshire the line is gone."""
    paths = [
        write(tmp_path, "practitioners.csv", PRACTITIONERS),
        write(tmp_path, "children.csv", CHILDREN + misaligned.CHILD_ROW),
        write(tmp_path, "involvements.csv", INVOLVEMENTS),
    ]
    imported = await cli.run("import", *paths)
    assert imported.code == 0, imported.err
    assert "children: 7 rows read, 7 new or changed" in imported.out
    assert ONE in imported.out.splitlines()
    assert misaligned.shown_parts(imported.out + imported.err) == []
    async with db.read() as session:
        details = " ".join((await session.execute(select(AuditEvent.detail))).scalars())
    assert misaligned.shown_parts(details) == []

    corrected = misaligned.CHILD_ROW.replace(misaligned.NAME_AS_AUTHORITY, "Northshire")
    again = await cli.run("import", write(tmp_path, "children.csv", CHILDREN + corrected))
    assert again.code == 0, again.err
    assert "children: 7 rows read, 1 new or changed" in again.out
    assert "no practitioner belongs to" not in again.out


def test_children_imported_before_any_practitioner_are_counted_until_the_practitioners_feed_comes(
    cli: Cli, tmp_path: Path
) -> None:
    """Real feeds may come in any order: children first is imported, and every child is counted
    (their authorities have no practitioner yet); with the practitioners feed, none is."""
    first = cli("import", write(tmp_path, "children.csv", CHILDREN))
    assert first.code == 0, first.err
    assert "6 children in the register name a local authority no practitioner belongs to:" in first.out
    then = cli("import", write(tmp_path, "practitioners.csv", PRACTITIONERS))
    assert then.code == 0, then.err
    assert "no practitioner belongs to" not in then.out
