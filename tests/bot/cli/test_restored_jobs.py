"""A store restored from a backup taken while rows about a child were in flight (an access request
waiting, a grant running, a relayed message and the notices they queued), beside a key file that
has destroyed the child's birth-date key since (forensic review). Before the next retention run the
scheduled jobs run on it as on any store (escalation and expiry of requests, expiry of grants and
registrations, notice delivery), and the operator builds the transparency report and a subject
access report: none may fail on the child, nor deliver or print anything that names it or says it
was held. Then `signpost retention run` finishes the destruction: the child's rows are gone as on
a store that never went back, the audit records it and still verifies, and searches say no record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.app import Signpost, build
from bot.console.notices import ConsoleDeliverer
from bot.notify import Outbox
from handlers.access import jobs
from handlers.access.policy import POLICY
from handlers.vocabulary import Outcome, format_ref
from store.db import Database
from store.tables import child_rows
from store.tables.register import Child, ChildTerm
from tests.access_helpers import notices
from tests.bot.cli.conftest import Cli, clock_checked
from tests.bot.cli.restored_store import BACKED_UP, DESTROYED, back_up_then_destroy, import_shielded_tara
from tests.factories import AMY, CHILDREN_HEADER
from tests.stepup_helpers import say_fresh
from tests.store.keys.test_backup import current_key_material, restored
from tests.store.lifecycle.lifecycle_data import MARKER, TURNS_24

EVERYONE = ("P001", "P002", "P003", "DM01", "AD01")
REF = format_ref(int(TURNS_24))


async def _backup_with_rows_in_flight(signpost: Signpost, tmp_path: Path) -> Path:
    """P003 holds a grant for a day, P002's request waits undecided, P002's message to the lead is
    relayed, their notices queued: then the backup, then the child's birth-date key destroyed."""
    await import_shielded_tara(signpost)
    first = await say_fresh(signpost, "P003", f"request {TURNS_24} section 47 enquiry")
    approved = await say_fresh(signpost, "DM01", "approve 1 1d")
    asked = await say_fresh(signpost, "P002", f"request {TURNS_24} section 47 enquiry")
    told = await say_fresh(signpost, "P002", f"message {TURNS_24} worried about her, please call 0161 496 0002")
    replies = (first, approved, asked, told)
    assert [r.outcome for r in replies] == [Outcome.DONE] * 4, [r.text for r in replies]
    assert await notices(signpost)  # queued, not yet delivered, when the backup is taken
    return await back_up_then_destroy(signpost, tmp_path)


async def _rows_about(db: Database, ref: int) -> dict[str, int]:
    """How many rows of each table declaring a child column name ``ref`` (child_terms included)."""
    counted: dict[str, int] = {}
    async with db.read() as session:
        for table, column in child_rows():
            query = select(func.count()).select_from(table).where(table.c[column] == ref)
            counted[f"{table.name}.{column}"] = int((await session.execute(query)).scalar_one())
    return counted


async def test_retention_on_a_restored_store_finishes_the_destruction(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """`signpost retention run`, the first on the restored store: every row naming the child goes
    (its index rows, wrapped key, involvement, requests, grant, relay, notices), its row keeps only
    its reference, the audit says one was destroyed and still verifies; a match, a search and a
    lookup find no record of it, and the store still answers for the children it holds."""
    taken = await _backup_with_rows_in_flight(signpost, tmp_path)
    signpost.ctx.clock.set(BACKED_UP + timedelta(minutes=5))  # type: ignore[attr-defined]
    now_keys = current_key_material(signpost.ctx.keys, DESTROYED)
    roll = tmp_path / "roll.csv"
    roll.write_text(
        f"{CHILDREN_HEADER}\n,Tara,{MARKER},,2002-11-03,F,M2 3CD,,\n,Amy,Jones,,2014-04-03,F,M1 2AB,,\n",
        encoding="utf-8",
    )
    async with restored(db_url, taken) as old:
        env = {"SIGNPOST_DATABASE_URL": old.engine.url.render_as_string(hide_password=False)}
        before = await _rows_about(old, int(TURNS_24))
        ran = await cli.run("retention", "run", *clock_checked(), env=env)
        after = await _rows_about(old, int(TURNS_24))
        async with old.read() as session:
            row = (await session.execute(select(Child).where(Child.ref == int(TURNS_24)))).scalar_one()
            kept = (row.state, row.identity, row.row_mac, row.shielded)
        app = build(old, now_keys, signpost.ctx.clock)
        try:
            left = [n.text for n in await notices(app) if REF in n.text]
            by_ref = await say_fresh(app, "P001", TURNS_24)
            by_name = await say_fresh(app, "P001", f"Tara {MARKER} 03/11/2002 M2 3CD")
            amy = await say_fresh(app, "P001", AMY)
        finally:
            await app.ctx.audit.close()
        verified = await cli.run("audit", "verify", env=env)
        exported = await cli.run("audit", "export", "--format", "csv", env=env)
        matched = await cli.run("match", str(roll), "--as", "AD01", env=env)
    assert ran.code == 0, ran.err + ran.out
    assert before[f"{ChildTerm.__tablename__}.child_ref"] and before["notices.child_ref"], before
    assert after == dict.fromkeys(after, 0), after
    assert kept == ("destroyed", None, None, False)
    assert not left, left
    assert verified.code == 0, verified.err
    assert "cohorts destroyed before: archived 0 destroyed 1" in exported.out, exported.out[-2000:]
    assert matched.code == 0, matched.err
    assert [line.split(",")[1] for line in matched.out.splitlines()[1:]] == ["no_match", "match"], matched.out
    assert (by_ref.outcome, by_name.outcome, amy.outcome) == (Outcome.NO_MATCH, Outcome.NO_MATCH, Outcome.ANSWERED)
    assert by_ref.text.startswith("No record") and not by_ref.signposts


async def test_scheduled_jobs_on_a_restored_store_leave_the_child_destroyed_since_alone(
    signpost: Signpost, cli: Cli, db_url: str, tmp_path: Path
) -> None:
    """Before that run, the request waiting about the child is due to escalate, then to expire,
    the grant to end, and the relayed message to be looked at again: rows that are as deleted
    (README, "Backups") are not acted on, audited (a subject access report would list Signpost
    closing what it no longer holds) nor told of;
    nothing delivered names the child; the transparency report and the subject access report of
    the child are produced as on any store."""
    taken = await _backup_with_rows_in_flight(signpost, tmp_path)
    escalating = BACKED_UP + POLICY.escalate_after + timedelta(minutes=1)
    expiring = BACKED_UP + timedelta(days=2)  # past the request's lifetime and the grant's end
    now_keys = current_key_material(signpost.ctx.keys, DESTROYED)
    async with restored(db_url, taken) as old:
        env = {"SIGNPOST_DATABASE_URL": old.engine.url.render_as_string(hide_password=False)}
        app = build(old, now_keys, signpost.ctx.clock)
        try:
            escalated = await jobs.escalate_requests(app.ctx, escalating)
            expired = await jobs.expire_requests(app.ctx, expiring)
            ended = await jobs.expire_grants(app.ctx, expiring)
            handed = await jobs.hand_on_relays(app.ctx, expiring)
            signpost.ctx.clock.set(expiring)  # type: ignore[attr-defined]
            printed: list[str] = []
            for who in EVERYONE:
                await Outbox(app.ctx, [ConsoleDeliverer(lambda: who, printed.append)]).deliver_due()  # noqa: B023
        finally:
            await app.ctx.audit.close()
        report = await cli.run("report", "transparency", "--month", "2020-11", "--format", "json", env=env)
        sar = await cli.run("audit", "sar", TURNS_24, env=env)
        verified = await cli.run("audit", "verify", env=env)
    assert (escalated, expired, ended, handed) == (0, 0, 0, 0)
    assert not [text for text in printed if REF in text], printed
    for run in (report, sar, verified):
        assert run.code == 0 and "Traceback" not in run.err and "command_crashed" not in run.err, run.err
    assert REF not in report.out and TURNS_24 not in report.out
    assert "expired" not in sar.out and "escalated" not in sar.out, sar.out
