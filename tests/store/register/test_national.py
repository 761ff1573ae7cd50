"""The synthetic national register: valid references, the same files for the same seed, names as
skewed as real ones, households, and feeds that `signpost import` takes as they are."""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import Signpost
from store.register import children
from store.register.feeds import Feed, FeedRejected, import_feeds
from store.register.national import FIRST_SERIAL, NationalRegister, write_feeds
from store.register.refs import is_valid
from store.register.sealers import SealerDied
from store.register.terms import index_terms
from store.tables.register import Child, Involvement

ROOT = Path(__file__).resolve().parents[3]


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


def test_every_reference_is_a_valid_distinct_ten_digit_number(tmp_path: Path) -> None:
    """Modulus-11 references from serial 100 000 000: ten digits, unique, and room for 800 million more."""
    written = write_feeds(NationalRegister(3000), tmp_path)
    refs = [row[0] for row in rows(tmp_path / "children.csv")]
    assert len(refs) == written.children == 3000
    assert all(is_valid(ref) for ref in refs)
    assert len(set(refs)) == len(refs)
    assert int(refs[0]) // 10 >= FIRST_SERIAL
    assert {ref for ref, *_ in rows(tmp_path / "involvements.csv")} <= set(refs)


def test_the_same_seed_gives_the_same_files_and_another_seed_does_not(tmp_path: Path) -> None:
    """Deterministic: a benchmark run can be repeated byte for byte."""
    for folder, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_feeds(NationalRegister(500, seed=seed), tmp_path / folder)
    for name in ("practitioners.csv", "children.csv", "involvements.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "children.csv").read_bytes() != (tmp_path / "c" / "children.csv").read_bytes()


def test_names_are_many_and_skewed_like_real_ones(tmp_path: Path) -> None:
    """Zipf-like: the commonest family name is about 1-3 % of children, the median one far rarer,
    and thousands of names occur (a demographic search is not ambiguous by construction)."""
    write_feeds(NationalRegister(20000), tmp_path)
    children = rows(tmp_path / "children.csv")
    family = Counter(row[2] for row in children)
    given = Counter(row[1].split()[0] for row in children)
    for counts in (family, given):
        top = counts.most_common(1)[0][1]
        assert 0.005 * len(children) < top < 0.05 * len(children)
        assert top >= 10 * statistics.median(counts.values())
        assert len(counts) > 1000


def test_siblings_share_family_name_and_postcode(tmp_path: Path) -> None:
    """Households: about half the children have a sibling at the same address with the same family name."""
    write_feeds(NationalRegister(5000), tmp_path)
    households = Counter((row[2], row[6], row[7]) for row in rows(tmp_path / "children.csv"))
    with_sibling = sum(n for n in households.values() if n > 1)
    assert 0.35 * 5000 < with_sibling < 0.8 * 5000


def test_involvements_are_about_two_a_child_with_practitioners_of_the_childs_authority(tmp_path: Path) -> None:
    """1.9 to 2.7 involvements a child on average, none naming a practitioner the feed lacks."""
    written = write_feeds(NationalRegister(5000), tmp_path)
    assert 1.9 <= written.involvements / written.children <= 2.7
    authority_of = {row[0]: row[5] for row in rows(tmp_path / "practitioners.csv")}
    child_authority = {row[0]: row[7] for row in rows(tmp_path / "children.csv")}
    for ref, pid, *_ in rows(tmp_path / "involvements.csv"):
        assert authority_of[pid] == child_authority[ref]


@pytest.mark.parametrize("sealers", [0, 2])
async def test_the_feeds_import_as_written(signpost: Signpost, tmp_path: Path, sealers: int) -> None:
    """`signpost import` takes the generated files as they are (streamed from disk), every row good,
    whether children are sealed in the importing process or by worker processes: each child's
    identity opens with its own key and it is found by its blind terms."""
    written = write_feeds(NationalRegister(300), tmp_path)
    feeds = [Feed.from_path(path) for path in written.files]
    now = signpost.ctx.clock.now()
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, now, chunk=50, sealers=sealers)
    assert report.rows == {
        "practitioners": written.practitioners,
        "children": 300,
        "involvements": written.involvements,
    }
    last = rows(tmp_path / "children.csv")[-1]
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Child))).scalar_one() == 300
        stored = (await session.execute(select(func.count()).select_from(Involvement))).scalar_one()
        assert stored == written.involvements
        identity = (await children.load_identities(session, signpost.ctx.keys, [int(last[0])]))[int(last[0])]
        found = await children.candidates(session, signpost.ctx.keys, index_terms(identity))
    assert (identity.given_names, identity.family_name, identity.date_of_birth.isoformat()) == (
        last[1],
        last[2],
        last[4],
    )
    assert int(last[0]) in found


def _spoil(path: Path, lines: dict[int, tuple[int, str]]) -> None:
    """Set one field of some rows of a feed (line number -> (column, value)); line 1 is the header."""
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    for line, (column, value) in lines.items():
        table[line - 1][column] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)


@pytest.mark.parametrize("sealers", [0, 2])
async def test_problems_found_while_sealing_are_each_reported_with_their_line_and_nothing_is_written(
    signpost: Signpost, tmp_path: Path, sealers: int
) -> None:
    """Whether children are sealed by worker processes or in the importer, every problem in every
    chunk is reported, in line order, with the line it is on and no value from the row, a repeat
    names its first line, and nothing is imported. (The child whose reference the repeat took is
    then unknown to its involvements: more problems.)"""
    written = write_feeds(NationalRegister(300), tmp_path)
    children_csv = tmp_path / "children.csv"
    first = rows(children_csv)[0]  # on line 2
    _spoil(children_csv, {7: (8, "maybe"), 120: (4, "2015-02-30"), 121: (6, "NOT A CODE"), 250: (0, first[0])})
    feeds = [Feed.from_path(path) for path in written.files]
    with pytest.raises(FeedRejected) as caught:
        await import_feeds(
            signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now(), chunk=50, sealers=sealers
        )
    problems = [str(problem) for problem in caught.value.report.problems if problem.file == "children.csv"]
    assert problems == [
        "children.csv:7: shielded: must be true or false (or yes/no, 1/0)",
        "children.csv:120: date_of_birth: is not a real date",
        "children.csv:121: postcode: is not a UK postcode",
        "children.csv:250: child_ref: repeats the row on line 2",
    ]
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(Child))).scalar_one() == 0


async def test_a_sealing_worker_that_dies_fails_the_import_and_nothing_is_written(
    signpost: Signpost, tmp_path: Path
) -> None:
    """A worker killed mid-import (the OOM killer, say) fails the import at once, whatever the worker
    was doing: its transaction rolls back with nothing of it written, no worker is left running, and
    the same feeds import again."""
    written = write_feeds(NationalRegister(300), tmp_path)
    feeds = [Feed.from_path(path) for path in written.files]
    now = signpost.ctx.clock.now()

    killed: list[int] = []

    def kill_the_workers(_: int) -> None:  # whatever they are doing: mid-task, mid-reply or idle
        if not killed:
            killed.extend(worker.pid or 0 for worker in multiprocessing.active_children())
            for pid in killed:
                with contextlib.suppress(ProcessLookupError):  # gone between the listing and the kill
                    os.kill(pid, signal.SIGKILL)

    with pytest.raises(SealerDied):
        await import_feeds(
            signpost.ctx.db, signpost.ctx.keys, feeds, now, chunk=50, sealers=2, on_progress=kill_the_workers
        )
    assert killed and not multiprocessing.active_children()
    async with signpost.ctx.db.read() as session:
        for table in (Child, Involvement):
            assert (await session.execute(select(func.count()).select_from(table))).scalar_one() == 0
    report = await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, now, chunk=50, sealers=2)
    assert report.changed["children"] == 300


IMPORTER = """
import asyncio, multiprocessing, sys, time
from datetime import UTC, datetime
from pathlib import Path

from store.db import Database
from store.keys.crypto import KeyRing
from store.register.feeds import Feed, FeedRejected, import_feeds
from store.register.national import NationalRegister, write_feeds


async def main(folder: Path) -> None:
    keys = KeyRing.generate(folder / "import.key")
    keys.save()
    db = await Database.open(f"sqlite+aiosqlite:///{folder}/import.db")
    written = write_feeds(NationalRegister(300), folder)

    def sealed(_: int) -> None:  # the first chunk is back from the workers: name them, then hang
        print(" ".join(str(worker.pid) for worker in multiprocessing.active_children()), flush=True)
        time.sleep(600)

    feeds = [Feed.from_path(path) for path in written.files]
    await import_feeds(db, keys, feeds, datetime.now(UTC), chunk=50, sealers=2, on_progress=sealed)


asyncio.run(main(Path(sys.argv[1])))
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whichever process adopted it)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_an_importer_killed_outright_takes_its_sealing_workers_with_it(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) gives the importer no chance to stop its pool: the workers, which
    hold the blind-index key, must notice on their own and end, not wait for ever on their queue.
    (Processes and pipes, not the database, are what is tested: one backend is enough.)"""
    importer = subprocess.Popen(
        [sys.executable, "-c", IMPORTER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    workers: list[int] = []
    try:
        assert importer.stdout is not None
        workers = [int(pid) for pid in importer.stdout.readline().split()]
        assert len(workers) == 2 and all(_running(pid) for pid in workers)
        importer.kill()
        importer.wait()
        deadline = time.monotonic() + 60  # they go at once; the margin is for a loaded machine
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if _running(pid)], "sealing workers outlived their importer"
    finally:
        importer.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
