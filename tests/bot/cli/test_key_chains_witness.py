"""A key file of the right store whose birth-date, search-term or month chain is wrong (32 bytes of
other state, an entry renamed or removed) must not make `signpost retention run` destroy live
children: each chain is checked against the store's witness of it (store/keys/witness.py), and the
operator is told in one line, naming no key, that the key file does not match the store."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.app import Signpost
from store.db import Database
from store.keys import witness
from store.keys.binding import bind
from store.keys.crypto import KeyRing
from store.tables.lifecycle import Meta
from store.tables.register import Child, ChildKey
from tests.bot.cli.conftest import Cli, clock_checked
from tests.factories import load_standard
from tests.spread import BACKENDS, spread

Entries = dict[str, str]  # the key file's KEK map: id → base64


def _random_state(chain: str) -> Callable[[Entries], None]:
    def edit(keks: Entries) -> None:
        entry = next(k for k in keks if k.startswith(f"~{chain}:"))
        keks[entry] = base64.b64encode(secrets.token_bytes(32)).decode()

    return edit


def _renamed(chain: str, gen: int = 0, cutoff: int = 0) -> Callable[[Entries], None]:
    def edit(keks: Entries) -> None:
        entry = next(k for k in keks if k.startswith(f"~{chain}:"))
        _, was_gen, was_cutoff = entry.split(":")
        keks[f"~{chain}:{int(was_gen) + gen}:{int(was_cutoff) + cutoff}"] = keks.pop(entry)

    return edit


def _removed(chain: str) -> Callable[[Entries], None]:
    def edit(keks: Entries) -> None:
        del keks[next(k for k in keks if k.startswith(f"~{chain}:"))]

    return edit


EDITS = {
    "term state": _random_state("term"),
    "day state": _random_state("day"),
    "month state": _random_state("month"),
    "term cutoff": _renamed("term", cutoff=3),
    "day cutoff": _renamed("day", cutoff=400),
    "term cutoff back": _renamed("term", cutoff=-5),
    "term generation": _renamed("term", gen=1),
    "day generation": _renamed("day", gen=1),
    "term removed": _removed("term"),
    "day removed": _removed("day"),
}


def _edit(path: Path, edit: Callable[[Entries], None]) -> list[str]:
    """Edit the key file's chain entries as a hand (or a disk) might; every state's forms a
    message could show it in."""
    doc = json.loads(path.read_text("utf-8"))
    edit(doc["keks"])
    path.write_text(json.dumps(doc), "utf-8")
    states = [base64.b64decode(v) for k, v in doc["keks"].items() if k.startswith("~")]
    return [form for s in states for form in (s.hex(), base64.b64encode(s).decode().rstrip("="))]


async def _held(url: str) -> tuple[int, int]:
    db = await Database.open(url)
    try:
        async with db.read() as session:
            wrapped = (await session.execute(select(func.count()).select_from(ChildKey))).scalar_one()
            live = (
                await session.execute(select(func.count()).select_from(Child).where(Child.state != "destroyed"))
            ).scalar_one()
    finally:
        await db.close()
    return int(wrapped), int(live)


async def _forget_witnesses(url: str) -> None:
    """The store as one written before witnesses were recorded."""
    db = await Database.open(url)
    try:
        async with db.write() as session:
            await session.execute(delete(Meta).where(Meta.key.like(f"{witness.PREFIX}%")))
    finally:
        await db.close()


# Against a witness, a chain's state, cutoff or generation edited is an input refused by the key
# file and the witnesses read (witness._judged, before any query of the keys), before retention
# touches a row: each such edit on one store (tests/spread.py). A chain removed is refused by a
# query of the store's keys, and a store written before witnesses proves each chain by queries that
# differ with the edit: each of those on both stores.
# Such a store holds no key under the month chain until a search seals terms (audit_term_keys):
# nothing can be lost by that chain then, and it is recorded as it is.
REMOVED = ("term removed", "day removed")
CASES = [
    *spread("edit, recorded", {f"{e}-witnessed": (e, True) for e in EDITS if e not in REMOVED}).args[1],
    *(
        pytest.param(
            backend, edit, recorded, id=f"{backend}-{edit}-{'witnessed' if recorded else 'written-before-witnesses'}"
        )
        for edit, recorded in [(e, True) for e in REMOVED] + [(e, False) for e in EDITS if e != "month state"]
        for backend in BACKENDS
    ),
]


@pytest.mark.parametrize("backend, edit, recorded", CASES, indirect=["backend"])
async def test_a_key_file_with_a_chain_not_the_stores_destroys_nothing(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing, edit: str, recorded: bool
) -> None:
    """Retention refuses, in one line naming no key, and leaves every live child's wrapped key;
    `db check` says the key file does not match the store."""
    await load_standard(signpost)
    await bind(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    if not recorded:
        await _forget_witnesses(db_url)
    before = await _held(db_url)
    assert before[0] > 0 and before[1] > 0
    assert keys.path is not None
    secrets_shown = _edit(keys.path, EDITS[edit])
    # A store with no witness whose ids the key file's term chain makes none of: the key file's day
    # chain still opens a live child's key, so the term chain is disproved, not left uncheckable.
    said = "does not match this store"
    run = await cli.run("retention", "run", *clock_checked())
    assert run.code != 0, run.out + run.err
    refused = [line for line in run.said.splitlines() if said in line]
    assert len(refused) == 1 and refused[0].startswith("signpost: "), run.said
    assert not any(form in run.out + run.err for form in secrets_shown)
    assert await _held(db_url) == before
    check = await cli.run("db", "check")
    assert check.code != 0
    assert said in check.out + check.err, check.out + check.err
    assert not any(form in check.out + check.err for form in secrets_shown)


async def test_the_right_key_file_runs_retention_and_checks_clean(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing
) -> None:
    """The key file left as it is: retention runs (recording the chains' witnesses on the way) and
    `db check` passes, before and after a store's witnesses are first recorded."""
    await load_standard(signpost)
    await _forget_witnesses(db_url)
    run = await cli.run("retention", "run", *clock_checked())
    assert run.code == 0, run.err
    check = await cli.run("db", "check")
    assert check.code == 0, check.out + check.err
    again = await cli.run("retention", "run", *clock_checked())
    assert again.code == 0, again.err


def _stray_first(entry: Callable[[Entries], str]) -> Callable[[Entries], None]:
    """A chain entry of a generation the key file holds no key for, put first in the KEK map."""

    def edit(keks: Entries) -> None:
        stray = entry(keks)
        rest = dict(keks)
        keks.clear()
        keks[stray] = base64.b64encode(secrets.token_bytes(32)).decode()
        keks.update(rest)

    return edit


def _term_cutoff(keks: Entries) -> str:
    return next(k for k in keks if k.startswith("~term:")).split(":")[2]


STRAYS = {
    "term of no generation": _stray_first(lambda keks: f"~term:7:{_term_cutoff(keks)}"),
    "day of no generation": _stray_first(lambda keks: "~day:7:100"),
}


@spread("edit", list(STRAYS))  # refused from the key file alone (witness._stray): each on one store
async def test_a_chain_of_a_generation_the_key_file_does_not_hold_destroys_nothing(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing, edit: str
) -> None:
    """An added chain entry of a generation with no master key in the key file (first in the map,
    and as far along as the genuine term chain) is refused in one line; nothing is destroyed."""
    await load_standard(signpost)
    await bind(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    before = await _held(db_url)
    assert keys.path is not None
    secrets_shown = _edit(keys.path, STRAYS[edit])
    run = await cli.run("retention", "run", *clock_checked())
    assert run.code != 0, run.out + run.err
    refused = [line for line in run.said.splitlines() if "does not match this store" in line]
    assert len(refused) == 1 and refused[0].startswith("signpost: "), run.said
    assert "unexpected error" not in run.said
    assert not any(form in run.out + run.err for form in secrets_shown)
    assert await _held(db_url) == before
    check = await cli.run("db", "check")
    assert check.code != 0 and "does not match this store" in check.out + check.err, check.out + check.err


async def _forget_witness(url: str, chain: str) -> None:
    db = await Database.open(url)
    try:
        async with db.write() as session:
            await session.execute(delete(Meta).where(Meta.key.like(f"{witness.PREFIX}{chain}:%")))
    finally:
        await db.close()


def _both_shifted(keks: Entries) -> None:
    _renamed("term", cutoff=-5000)(keks)
    _renamed("day", cutoff=-5000)(keks)


SHIFTS: dict[str, tuple[tuple[str, ...], Callable[[Entries], None]]] = {
    "term chain at a lower cutoff": (("term",), _renamed("term", cutoff=-8000)),
    "day and term chains shifted together": (("term", "day"), _both_shifted),
}


@pytest.mark.parametrize("edit", list(SHIFTS))
async def test_an_unwitnessed_chain_at_another_slot_proves_nothing(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing, edit: str
) -> None:
    """A chain whose witness is gone, renamed to another cutoff with the same state, still makes the
    store's ids, but at other slots: it is refused (the proof checks that a child opened under the
    id made at a slot was born that day), and nothing is destroyed."""
    await load_standard(signpost)
    await bind(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    forgotten, change = SHIFTS[edit]
    for chain in forgotten:
        await _forget_witness(db_url, chain)
    before = await _held(db_url)
    assert keys.path is not None
    _edit(keys.path, change)
    check = await cli.run("db", "check")
    assert check.code != 0 and "does not match this store" in check.out + check.err, check.out + check.err
    run = await cli.run("retention", "run", *clock_checked())
    assert run.code != 0, run.out + run.err
    assert "does not match this store" in run.said, run.said
    assert await _held(db_url) == before


async def test_an_untagged_stores_term_chain_is_not_recorded_unproven(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing
) -> None:
    """A store whose birth-date ids do not depend on the term chain (a key file from before tags),
    written before witnesses: a term chain of other bytes is not recorded as the store's on the way
    (nothing proves it), so the genuine key file put back is not then locked out."""
    assert keys.path is not None
    keys.cohort_ids_from = 0
    keys.save()
    await load_standard(signpost)
    await bind(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    await _forget_witnesses(db_url)
    genuine = keys.path.read_text("utf-8")
    _edit(keys.path, _random_state("term"))
    await cli.run("retention", "run", *clock_checked())
    keys.path.write_text(genuine, "utf-8")
    check = await cli.run("db", "check")
    assert "does not match this store" not in check.out + check.err, check.out + check.err
    run = await cli.run("retention", "run", *clock_checked())
    assert run.code == 0, run.said


async def test_accepting_a_damaged_term_chain_on_a_store_of_live_children_is_refused(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing
) -> None:
    """A store written before witnesses, its search-term chain replaced: the chain makes none of
    the store's ids, as for a backup whose every child was destroyed since, but the key file's own
    day chain still opens a live child's key, so `--accept-key-file` is refused and destroys nothing."""
    await load_standard(signpost)
    await bind(signpost.ctx.db, keys, signpost.ctx.clock.now().date())
    await _forget_witnesses(db_url)
    before = await _held(db_url)
    assert before[0] > 0 and before[1] > 0
    assert keys.path is not None
    secrets_shown = _edit(keys.path, EDITS["term state"])
    run = await cli.run("retention", "run", *clock_checked(), "--accept-key-file")
    assert run.code != 0, run.out + run.err
    refused = [line for line in run.said.splitlines() if "does not match this store" in line]
    assert len(refused) == 1 and refused[0].startswith("signpost: "), run.said
    assert not any(form in run.out + run.err for form in secrets_shown)
    assert await _held(db_url) == before
    check = await cli.run("db", "check")
    assert check.code != 0 and "does not match this store" in check.out + check.err, check.out + check.err


async def test_accept_key_file_with_as_of_is_refused_before_anything_is_recorded(
    signpost: Signpost, cli: Cli, db_url: str, keys: KeyRing
) -> None:
    """`--as-of` belongs to a dry run: a real run with it is refused before the key file's chains
    are accepted, so nothing is recorded as the store's by a run that never ran."""
    await load_standard(signpost)
    await _forget_witnesses(db_url)
    run = await cli.run("retention", "run", "--accept-key-file", "--as-of", "2027-01-01")
    assert run.code != 0 and "--as-of" in run.said, run.said
    assert await _witnesses(db_url) == 0


async def test_accept_key_file_with_a_catch_up_date_not_today_is_refused_before_anything_is_recorded(
    signpost: Signpost, cli: Cli, db_url: str
) -> None:
    """`--catch-up-to` a date the host's clock disagrees with refuses the run, and so before the key
    file's chains are accepted, as `--as-of` is: a run that never ran records nothing."""
    await load_standard(signpost)
    await _forget_witnesses(db_url)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    run = await cli.run("retention", "run", "--accept-key-file", "--catch-up-to", f"{yesterday:%d/%m/%Y}")
    assert run.code != 0 and f"not {yesterday:%d/%m/%Y}: nothing was changed" in run.said, run.said
    assert await _witnesses(db_url) == 0


async def _witnesses(db_url: str) -> int:
    """How many of the key file's chain witnesses the store holds (none until they are recorded)."""
    db = await Database.open(db_url)
    try:
        async with db.read() as session:
            return (
                await session.execute(select(func.count()).select_from(Meta).where(Meta.key.like(f"{witness.PREFIX}%")))
            ).scalar_one()
    finally:
        await db.close()
