"""What an auditor finds after an operator works at the terminal: one event per command, origin
``terminal``, tenant ``signpost``, the local account as who — imports and seeding included."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.cli.common import operator_account
from store.db import Database
from store.people import practitioners
from store.register import demo
from store.tables.audit import AuditEvent
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_main import write_feeds
from tests.factories import AMY, CHILDREN_HEADER, PRACTITIONERS


async def events(db: Database, *actions: str) -> list[AuditEvent]:
    async with db.read() as session:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if actions:
            query = query.where(AuditEvent.action.in_(actions))
        return list((await session.execute(query)).scalars())


def assert_terminal(event: AuditEvent) -> None:
    facts = (event.platform, event.tenant, event.channel, event.user_id, event.actor_id)
    assert facts == ("terminal", "signpost", "terminal", operator_account(), None), event.action


async def test_an_import_writes_one_event_with_who_files_and_counts(cli: Cli, db: Database, tmp_path: Path) -> None:
    """One `import` event: done, who ran it, the file names (never their contents), rows read and
    changed per kind, and the number of rows changed."""
    run = await cli.run("import", *write_feeds(tmp_path))
    assert run.code == 0, run.err
    (event,) = await events(db, "import")
    assert_terminal(event)
    assert event.outcome == "done" and event.result_count == 17
    assert event.detail == (
        "children=6/6 involvements=5/5 practitioners=6/6 (read/changed); "
        "files practitioners.csv, children.csv, involvements.csv"
    )
    assert "Amy" not in event.detail and "Jones" not in event.detail


async def test_a_refused_import_writes_one_invalid_event_and_imports_nothing(
    cli: Cli, db: Database, tmp_path: Path
) -> None:
    """Good practitioners beside bad children: refused, one `invalid` event with the problem count,
    and neither file's rows in the store."""
    (tmp_path / "practitioners.csv").write_text(PRACTITIONERS, encoding="utf-8")
    (tmp_path / "children.csv").write_text(
        f"{CHILDREN_HEADER}\n9990000019,A,B,,2014-01-01,F,,LA,false\n9990000026,,B,,2014-13-01,F,,LA,false\n"
    )
    run = await cli.run("import", str(tmp_path / "practitioners.csv"), str(tmp_path / "children.csv"))
    assert run.code == 1 and run.err.strip().endswith("Nothing was imported: 3 problems above.")
    (event,) = await events(db, "import")
    assert_terminal(event)
    assert (event.outcome, event.result_count) == ("invalid", 0)
    assert event.detail.startswith("3 problems; ") and "files practitioners.csv, children.csv" in event.detail
    async with db.read() as session:
        assert await demo.count_children(session) == 0
        assert await practitioners.get_actor(session, "P001") is None


async def test_seed_demo_writes_one_event_each_time(cli: Cli, db: Database) -> None:
    """A seed is audited with its size and counts; a seed skipped by --if-empty is audited as skipped."""
    assert (await cli.run("seed-demo", "--children", "200")).code == 0
    assert (await cli.run("seed-demo", "--children", "200", "--if-empty")).code == 0
    seeded, skipped = await events(db, "seed_demo")
    for event in (seeded, skipped):
        assert_terminal(event)
        assert event.outcome == "done"
    assert seeded.detail.startswith("children=200; ") and "children=200/200" in seeded.detail
    assert skipped.detail == "skipped: the store already holds 200 children"
    assert await events(db, "import") == []


async def test_every_operator_command_is_audited_as_the_terminal(cli: Cli, db: Database, tmp_path: Path) -> None:
    """Each operator command that changes or discloses something leaves exactly its own event, from
    the terminal origin with the tenant ``signpost``: no hand-spelt platform or tenant survives."""
    today = date.today()
    commands = [
        ("import", *write_feeds(tmp_path)),
        ("totp", "enrol", "P002"),
        ("totp", "reset", "P002"),
        ("practitioner", "unlink", "P001"),
        ("retention", "run"),
        ("keys", "rotate"),
        ("backup", str(tmp_path / "store.backup")),
        ("audit", "export", "--actor", "P001"),
        ("audit", "sar", AMY),
        ("decommission", "schedule", "--switch-off", (today + timedelta(days=40)).isoformat()),
        ("decommission", "cancel"),
        ("decommission", "schedule", "--switch-off", today.isoformat()),
        ("decommission", "destroy"),
    ]
    for command in commands:
        run = await cli.run(*command)
        assert run.code == 0, (command, run.err)
    found = await events(db)
    assert [e.action for e in found] == [
        "import",
        "totp_enrol",
        "totp_reset",
        "unlink",
        "retention",
        "keys_rotate",  # started
        "keys_rotate",  # done
        "backup",  # started
        "backup",  # done
        "export",
        "sar",
        "decommission",
        "decommission",
        "decommission",
        "decommission_destroy",  # started
        "decommission_destroy",  # done
    ]
    for event in found:
        assert_terminal(event)
    assert found[2].detail == "credential removed for P002" and found[3].detail == "P001 all 0"
