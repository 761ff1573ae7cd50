"""A backup taken while a child was under 18, restored after its 24th birthday beside the key file
as it is then (forensic review): the child's row is still "active" there, its blind-index rows are
still there and its birth year's term key still lives (README, "Blind-index rows"), but its
birth-date key is gone. Until the next retention run finishes the destruction, a search or a batch
match whose name and birth year hit it must treat it as the destroyed child it is: not crash on it
(`signpost match` stopped with DecryptionError, and a chat search failed), which told whoever typed
the name that a child by that name and year had been held and destroyed since."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from bot.app import Signpost, build
from handlers.vocabulary import Outcome
from store.register import children
from store.register.feeds import Feed, import_feeds
from store.tables.register import Child, Involvement
from tests.bot.cli.conftest import Cli, clock_checked
from tests.bot.cli.restored_store import BACKED_UP, DESTROYED, back_up_then_destroy, import_shielded_tara
from tests.factories import AMY, CHILDREN, CHILDREN_HEADER, PRACTITIONERS
from tests.stepup_helpers import say_fresh
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import LIFECYCLE_CHILDREN, MARKER, TURNS_24

BORN = date(2002, 11, 3)  # TURNS_24's date of birth: 17 in 2020, 24 on 3 November 2026


async def _old_backup_of_a_minor(signpost: Signpost, tmp_path: Path) -> Path:
    """The register imported and backed up in 2020 (TURNS_24 is 17: active), then its cohort's
    birth-date key destroyed as the run on its 24th birthday destroys it."""
    tara = next(row for row in LIFECYCLE_CHILDREN.splitlines() if row.startswith(TURNS_24))
    register = [Feed("practitioners.csv", PRACTITIONERS), Feed("children.csv", f"{CHILDREN}{tara}\n")]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, register, BACKED_UP)
    async with signpost.ctx.db.read() as session:
        held = await children.load_identities(session, signpost.ctx.keys, [int(TURNS_24)])
    assert held[int(TURNS_24)].family_name == MARKER  # held, and active, when the backup is taken
    return await back_up_then_destroy(signpost, tmp_path)


async def test_a_match_on_a_restored_backup_passes_over_a_child_destroyed_since(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    taken = await _old_backup_of_a_minor(signpost, tmp_path)
    roll = tmp_path / "roll.csv"
    roll.write_text(
        f"{CHILDREN_HEADER}\n"
        f",Tara,{MARKER},,{BORN.isoformat()},F,M2 3CD,,\n"  # the destroyed child, as the feed had it
        f",Tara,{MARKER},,2002-06-30,F,M2 3CD,,\n"  # its names and birth year: year-keyed terms only
        f",Amy,Jones,,2014-04-03,F,M1 2AB,,\n",  # a child still held: matched as ever
        encoding="utf-8",
    )
    async with restored(db_url, taken) as old:
        url = old.engine.url.render_as_string(hide_password=False)
        result = await cli.run("match", str(roll), "--as", "AD01", env={"SIGNPOST_DATABASE_URL": url})
    assert result.code == 0, result.err
    assert "Traceback" not in result.err and "command_crashed" not in result.err
    assert TURNS_24 not in result.out
    answers = [line.split(",") for line in result.out.splitlines()[1:]]
    assert [(line, decision) for line, decision, *_ in answers] == [
        ("2", "no_match"),
        ("3", "no_match"),
        ("4", "match"),
    ]
    assert [row[3] for row in answers if row[0] == "4"] == [AMY]


async def test_a_search_on_a_restored_backup_finds_no_child_destroyed_since(
    signpost: Signpost, db_url: str, tmp_path: Path
) -> None:
    """The chat's commands on that restored store, before any retention run: a search by name and a
    date of that birth year (year-keyed terms hit the destroyed child), a lookup by its reference
    (its row says "active"), an access request and a message about it: "no record", as for any
    child destroyed, never a failure, its signposts, nor "not shielded"."""
    taken = await _old_backup_of_a_minor(signpost, tmp_path)
    signpost.ctx.clock.set(datetime(2026, 11, 3, 10, 0, tzinfo=UTC))  # type: ignore[attr-defined]
    now_keys = current_key_material(signpost.ctx.keys, DESTROYED)
    async with restored(db_url, taken) as old:
        app = build(old, now_keys, signpost.ctx.clock)
        try:
            by_name = await say_fresh(app, "P001", f"Tara {MARKER} 30/06/2002 M2 3CD")
            by_ref = await say_fresh(app, "P001", TURNS_24)
            asked = await say_fresh(app, "P001", f"request {TURNS_24} section 47 enquiry")
            told = await say_fresh(app, "P001", f"message {TURNS_24} worried, please call 0161 496 0001")
            amy = await say_fresh(app, "P001", AMY)
        finally:
            await app.ctx.audit.close()
    assert (by_name.outcome, by_ref.outcome) == (Outcome.NO_MATCH, Outcome.NO_MATCH), (by_name.text, by_ref.text)
    assert not by_ref.signposts
    assert (asked.outcome, told.outcome) == (Outcome.INVALID, Outcome.INVALID), (asked.text, told.text)
    assert (
        by_ref.text.startswith("No record") and asked.text.startswith("No record") and told.text.startswith("No record")
    )
    assert amy.outcome is Outcome.ANSWERED  # the store still answers for the children it holds


async def test_a_backup_of_a_restored_store_is_refused_until_retention_has_destroyed_what_it_brought_back(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """A store put back from a backup taken before a child's destruction, beside the key file as it
    is after: `signpost backup` wrote a new backup, dated after the destruction, still holding the
    destroyed child's row "active" and its involvements in clear (who worked with that reference).
    It is refused, audited, with what to do, until `signpost retention run` has destroyed it."""
    await import_shielded_tara(signpost)
    taken = await back_up_then_destroy(signpost, tmp_path)
    after = tmp_path / "after.backup"
    async with restored(db_url, taken) as old:
        env = {"SIGNPOST_DATABASE_URL": old.engine.url.render_as_string(hide_password=False)}
        refused = await cli.run("backup", str(after), env=env)
        assert refused.code == 2, (refused.out, refused.err)
        assert "signpost retention run" in refused.said and TURNS_24 not in refused.said, refused.said
        assert not after.exists()
        exported = await cli.run("audit", "export", env=env)
        last = [e for e in map(json.loads, exported.out.splitlines()) if e["action"] == "backup"][-1]
        assert (last["outcome"], last["detail"]) == ("refused", "destroyed since")
        assert (await cli.run("retention", "run", *clock_checked(), env=env)).code == 0
        written = await cli.run("backup", str(after), env=env)
        assert written.code == 0, written.err
    async with restored(db_url, after) as copy, copy.read() as session:
        state = (await session.execute(select(Child.state).where(Child.ref == int(TURNS_24)))).scalar_one()
        kept = (await session.execute(select(Involvement).where(Involvement.child_ref == int(TURNS_24)))).all()
    assert (state, kept) == ("destroyed", [])
