"""`signpost` on a store whose blind index another version wrote: the process that migrates the store
rebuilds an older index before it answers anything, so searches go on finding its children; one a
newer version wrote is left be, and the older code refuses to answer from it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.app import build
from handlers.operator import lifecycle as operator
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.db import Database
from store.keys import keychain
from store.keys.crypto import KeyRing
from store.lifecycle import decommission, retention
from store.register import children
from store.register.terms import TERMS_VERSION
from store.tables.lifecycle import Decommission, Meta
from store.tables.register import Child, ChildTerm
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_cut_short import switched_off_today
from tests.bot.cli.test_match import EXPECTED_DECISIONS, ROLL, audit_events, roll_csv, setup_store
from tests.factories import NEWER_INDEX, record_index_version
from tests.fuzzy_register import FUZZY_CHILDREN
from tests.store.register.test_terms_rebuild import write_version_2_index

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)


@pytest.mark.parametrize("migrate_on_start", ["1", "0"])
async def test_a_store_indexed_by_an_older_version_is_rebuilt_at_start_and_still_answers(
    cli: Cli, db_url: str, keys: KeyRing, tmp_path: Path, migrate_on_start: str
) -> None:
    """Imported, then its index put back as version 2 wrote it (every term under the index key): the
    next `signpost match` logs the rebuild (a count only) and decides every row as before — also in
    a replica started with SIGNPOST_MIGRATE_ON_START=0 (the schema migrated apart, by `signpost db
    upgrade`, which holds no key to index with), which found no child at all."""
    await asyncio.to_thread(setup_store, cli, tmp_path)  # the command runs its own event loop
    db = await Database.open(db_url)
    try:
        keychain.ensure_chains(keys, datetime.now(UTC).date())
        await write_version_2_index(db, keys)
        (tmp_path / "roll.csv").write_text(roll_csv(ROLL), encoding="utf-8")
        result = await cli.run(
            "match",
            str(tmp_path / "roll.csv"),
            "--top",
            "3",
            "--as",
            "AD01",
            env={"SIGNPOST_MIGRATE_ON_START": migrate_on_start},
        )
        assert result.code == 0, result.err
        decisions = {row[0]: row[1] for row in list(csv.reader(io.StringIO(result.out)))[1:]}
        assert [decisions[str(line)] for line in range(2, len(ROLL) + 2)] == EXPECTED_DECISIONS  # file lines
        logged = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
        rebuilt = [e["children"] for e in logged if e.get("event") == "index_terms_rebuilt"]
        assert len(rebuilt) == 1 and rebuilt[0] == FUZZY_CHILDREN.count("\n") - 1  # every row but the header
        async with db.read() as session:
            assert await children.terms_version(session) == TERMS_VERSION
    finally:
        await db.close()


class Killed(BaseException):
    """The process dying at this point: nothing of ours catches it (as nothing runs after a kill -9)."""


async def _destroy_killed_after_the_keys(db_url: str, keys: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    """`decommission destroy` killed once its first step destroyed the keys (key file and wrapped
    keys), before its second deleted the data: the children and their index are still there."""

    async def killed(*args: object) -> None:
        raise Killed

    assert keys.path is not None
    app = build(Database.connect(db_url), KeyRing.load(keys.path))
    try:
        with monkeypatch.context() as patch:
            patch.setitem(decommission._STEP_FUNCTIONS, "data", killed)
            with pytest.raises(Killed):
                async with audited(app.ctx, "ops", Action.DECOMMISSION_DESTROY) as audit:
                    await operator.decommission_destroy(app.ctx, audit)
    finally:
        await app.close()


async def _index(db: Database) -> tuple[int, str | None]:
    """How many blind-index rows the store holds, and the terms version it records for them."""
    async with db.read() as session:
        rows = await session.scalar(select(func.count()).select_from(ChildTerm))
        return rows or 0, await children.terms_version(session)


async def test_a_store_whose_keys_decommissioning_destroyed_is_not_reindexed_and_its_destruction_finishes(
    cli: Cli, db: Database, keys: KeyRing, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A destruction cut short after its keys step, on a store whose index an older version wrote. No
    rebuild is tried at start (it could open no identity): `decommission status` changes nothing and
    says how far destruction got, and `decommission destroy` (the dead run's lease run out) finishes
    it, its data step counting the index it deletes. A rebuild had deleted that index unaudited first,
    and the destruction's notices and certificate counted none of it."""
    await switched_off_today(cli, tmp_path)
    await _destroy_killed_after_the_keys(db_url, keys, monkeypatch)
    assert keys.path is not None and keychain.decommissioned(KeyRing.load(keys.path))
    async with db.write() as session:
        await session.merge(Meta(key=children.TERMS_META, value="2"))
        await session.execute(update(Decommission).values(lease_until=datetime.now(UTC) - timedelta(minutes=1)))
    terms, _ = await _index(db)
    assert terms > 0

    status = await cli.run("decommission", "status")
    assert status.code == 0, status.err
    assert "steps done: keys" in status.out and "has been destroyed" not in status.out
    assert await _index(db) == (terms, "2")
    finished = await cli.run("decommission", "destroy")
    assert finished.code == 0, finished.err
    assert "decommissioning complete" in finished.out
    assert "all personal data has been destroyed" in (await cli.run("decommission", "status")).out
    async with db.read() as session:
        row = (await session.execute(select(Decommission))).scalar_one()
    assert json.loads(row.counts)[ChildTerm.__tablename__] == terms
    logged = [json.loads(line) for line in (status.err + finished.err).splitlines() if line.startswith("{")]
    assert "index_terms_rebuilt" not in {e.get("event") for e in logged}


async def test_match_and_retention_on_an_index_a_newer_version_wrote_refuse_in_one_line(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """Mid rolling upgrade, `signpost match` of the older code would answer every row "no match"
    from an index a newer Signpost rebuilt (a start leaves a newer index be): it says in one line
    that nothing was matched and why (versions only), exits non-zero, writes no CSV, and is audited
    as one failed batch. `signpost retention run` stops the same way, its day still due."""
    await asyncio.to_thread(setup_store, cli, tmp_path)
    db = await Database.open(db_url)
    try:
        await record_index_version(db, NEWER_INDEX)
    finally:
        await db.close()
    (tmp_path / "roll.csv").write_text(roll_csv(ROLL), encoding="utf-8")
    matched = await cli.run("match", str(tmp_path / "roll.csv"), "--as", "AD01")
    assert matched.code != 0 and matched.out == ""
    assert matched.said == (
        f"signpost: nothing was matched: the search index is version {NEWER_INDEX} and this Signpost reads "
        f"version {TERMS_VERSION} (Signpost is being updated); run the match again once every replica runs "
        "the same version"
    )
    logged = [json.loads(line) for line in matched.err.splitlines() if line.startswith("{")]
    assert [(e["stored"], e["reads"]) for e in logged if e["event"] == "index_not_current"] == [
        (NEWER_INDEX, TERMS_VERSION)
    ]
    batches = [e for e in await asyncio.to_thread(audit_events, cli) if e["action"] == "match_batch"]
    assert [(e["outcome"], e["detail"], e["result_count"]) for e in batches] == [("failed", "index not current", 0)]
    due = await cli.run("retention", "run")
    stopped = due.said.splitlines()[-1]  # after its progress lines
    assert due.code != 0 and stopped.startswith("signpost: retention stopped: the search index is version")
    assert stopped.endswith("the days not done stay due for the next run")
    db = await Database.open(db_url)
    try:
        assert (await retention.due(db, datetime.now(UTC).date())).days == 1  # today's, never run
    finally:
        await db.close()
    runs = [e for e in await asyncio.to_thread(audit_events, cli) if e["action"] == "retention_run"]
    assert [e["outcome"] for e in runs] == ["started", "failed"]


async def test_a_store_with_no_child_yet_records_the_index_version_without_a_log_line(cli: Cli, db_url: str) -> None:
    """A new store has nothing to re-index: its first command records the version and logs no
    "rebuilt" line (an operator reading it would look for a rebuild that never happened)."""
    assert (await cli.run("db", "upgrade")).code == 0
    first = await cli.run("practitioner", "list")
    assert first.code == 0, first.err
    logged = [json.loads(line) for line in first.err.splitlines() if line.startswith("{")]
    assert "index_terms_rebuilt" not in {e.get("event") for e in logged}
    db = await Database.open(db_url)
    try:
        async with db.read() as session:
            assert await children.terms_version(session) == TERMS_VERSION
    finally:
        await db.close()


async def test_an_import_on_an_index_a_newer_version_wrote_is_refused_in_one_line_and_writes_nothing(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """Mid rolling upgrade, an operator runs `signpost import` with the older Signpost: its terms in
    the newer index would leave every child it adds unfindable by name, for good (the version stays
    the newer one, so nothing rebuilds them). Refused in one line, exit non-zero, audited failed,
    nothing imported; the newer Signpost imports the same file."""
    await asyncio.to_thread(setup_store, cli, tmp_path)
    db = await Database.open(db_url)
    try:
        await record_index_version(db, NEWER_INDEX)
        async with db.read() as session:
            held = (await session.execute(select(func.count()).select_from(Child))).scalar_one()
    finally:
        await db.close()
    feed = tmp_path / "children.csv"
    feed.write_text(FUZZY_CHILDREN, encoding="utf-8")
    imported = await cli.run("import", str(feed))
    assert imported.code != 0
    assert imported.said.splitlines()[-1] == (
        f"signpost: nothing was imported: the search index is version {NEWER_INDEX} and this Signpost reads "
        f"version {TERMS_VERSION} (Signpost is being updated); run the import with the newer Signpost"
    )
    outcomes = [
        (e["outcome"], e["detail"]) for e in await asyncio.to_thread(audit_events, cli) if e["action"] == "import"
    ]
    assert outcomes[-1][0] == "failed" and "index not current" in str(outcomes[-1][1])
    db = await Database.open(db_url)
    try:
        async with db.read() as session:
            assert (await session.execute(select(func.count()).select_from(Child))).scalar_one() == held
            assert await children.terms_version(session) == NEWER_INDEX
    finally:
        await db.close()
