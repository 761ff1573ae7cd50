"""The batch use case reads its roll as a stream: matched while the rest of the file is still
unread, and never answered when the file it matches is not the file it checked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.reconcile import BatchFailed, run_batch
from handlers.roll import ROWS_PER_CHUNK, Roll, chunks, read_roster
from store.tables.audit import AuditEvent
from tests.bot.cli.test_match import ROLL, roll_csv
from tests.factories import CHILDREN_HEADER
from tests.fuzzy_register import load_fuzzy


def read_position(path: Path) -> int | None:
    """How far this process has read ``path`` through its one open descriptor on it (Linux's
    /proc), or None when the file is not open."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as info:
                    return int(info.readline().split()[1])  # "pos:\t<offset>"
        except OSError:  # a descriptor closed meanwhile
            continue
    return None


async def match_events(app: Signpost) -> list[tuple[str, str, int]]:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent).where(AuditEvent.action == "match_batch"))
        return [(e.outcome, e.detail, e.result_count) for e in found.scalars()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the file position from /proc")
async def test_rows_are_matched_while_the_rest_of_the_roll_is_unread(signpost: Signpost, tmp_path: Path) -> None:
    """When the first chunk's answers are made, the file has been read only a little way: the
    roll is never held whole (the reader that did read it all before matching anything)."""
    await load_fuzzy(signpost)
    path = tmp_path / "roll.csv"
    path.write_text(CHILDREN_HEADER + "\n" + ",,,,,,,,\n" * 20_000, encoding="utf-8")
    positions: list[int | None] = []

    def at_chunk(rows: int) -> None:
        if rows:  # 0: matching begins
            positions.append(read_position(path))

    roster = read_roster(Roll.from_path(path))
    with await run_batch(signpost.ctx, "AD01", roster, 5, "corr-stream", at_chunk) as answers:
        assert answers.rows == 20_000 and sum(1 for _ in answers) == 20_000
    size = path.stat().st_size
    first = positions[0]
    assert first is not None, "the roll was not open while its rows were matched"
    assert first < size // 10, f"{first:,} of {size:,} bytes read before the first chunk was matched"
    assert len(positions) == -(-20_000 // ROWS_PER_CHUNK)


async def test_a_roll_written_to_while_it_is_matched_is_not_answered(signpost: Signpost, tmp_path: Path) -> None:
    """The roll is read twice (checked, then matched): a row added between the two is neither
    matched unseen nor answered; the batch is audited failed, naming no row."""
    await load_fuzzy(signpost)
    path = tmp_path / "roll.csv"
    path.write_text(roll_csv(ROLL * 60), encoding="utf-8")  # three chunks

    def append_a_row(rows: int) -> None:
        if rows:
            with path.open("a", encoding="utf-8") as more:
                more.write(",Amy,Thornton,,2014-04-03,,,,\n")

    roster = read_roster(Roll.from_path(path))
    with pytest.raises(BatchFailed, match=r"roll\.csv changed while it was being matched"):
        await run_batch(signpost.ctx, "AD01", roster, 5, "corr-changed", append_a_row)
    assert await match_events(signpost) == [("failed", "roll changed", 0)]


async def test_a_rolls_file_name_is_kept_nowhere_in_its_audit_event(signpost: Signpost, tmp_path: Path) -> None:
    """A roll's file name may name a child (``Amelia-Thornton-03-04-2014.csv``): its audit event
    keeps the file's digest, which finds the file, and never the name, which with one child matched
    would be sealed under that child's key and so outlive the child in any backup of its key."""
    await load_fuzzy(signpost)
    path = tmp_path / "Amelia-Thornton-03-04-2014.csv"
    path.write_text(roll_csv(ROLL[:1]), encoding="utf-8")
    with await run_batch(signpost.ctx, "AD01", read_roster(Roll.from_path(path)), 5, "corr-name", None) as answers:
        assert answers.rows == 1
    async with signpost.ctx.db.read() as session:
        [event] = (await session.execute(select(AuditEvent).where(AuditEvent.action == "match_batch"))).scalars()
        assert event.terms is not None and event.terms_key is not None
        terms = await signpost.ctx.sealer.open(session, event.terms, event.terms_key)
    assert terms is not None and "sha256=" in terms, terms
    assert "Amelia" not in terms and "Thornton" not in terms and ".csv" not in terms, terms
    assert "Amelia" not in (event.detail or ""), event.detail


def test_a_roll_of_two_exports_joined_reads_the_second_header_as_a_header(tmp_path: Path) -> None:
    """Two exports joined into one file (the second saved with a byte-order mark, its columns in
    another order): an import reads the header again as a header, and so does a roll, each row
    by the header above it. It was refused, the header counted as a row of bad values."""
    second_header = "given_names,family_name,child_ref,aliases,date_of_birth,sex,postcode,local_authority,shielded"
    path = tmp_path / "joined.csv"
    path.write_text(
        f"{CHILDREN_HEADER}\n,Amelia,Thornton,,2014-04-03,,,,\n"
        f"\ufeff{second_header}\nKai,Morton,,,2015-02-14,,NE4 7YH,,\n",
        encoding="utf-8",
    )
    roster = read_roster(Roll.from_path(path))
    assert roster.rows == 2
    rows = [row for chunk in chunks(roster) for row in chunk]
    assert [(row.line, row.query.family_name) for row in rows] == [(2, "Thornton"), (4, "Morton")]
