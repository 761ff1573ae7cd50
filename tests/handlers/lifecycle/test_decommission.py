"""Decommissioning: scheduling in chat, notices once, switch-off refusals, destruction, certificate."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.app import Signpost, build
from bot.config import load_settings
from bot.notify import Outbox
from bot.scheduler import add_scheduler
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.lifecycle.flows import decommission_tick, retention_tick
from handlers.operator import lifecycle as operator
from handlers.operator.common import Failed, Refused, audited
from handlers.vocabulary import CUT_SHORT, Action, Notice, Outcome, Platform, Principal
from store.db import Database
from store.keys.backup import backup
from store.keys.crypto import DecryptionError, KeyRing
from store.lifecycle import decommission, retention
from store.people import conversations, practitioners
from store.register import children
from store.tables import Personal, tables_holding
from store.tables.audit import AuditEvent, AuditSubject, MisuseAlert
from store.tables.delivery import Notice as NoticeRow
from store.tables.lifecycle import Decommission
from store.tables.people import (
    ChatIdentity,
    Practitioner,
    TeamsConversation,
    TotpCredential,
)
from store.tables.register import Child, ChildKey, ChildTerm, Involvement
from tests.factories import AMY, SHIELDED, console, say
from tests.stepup_helpers import ensure_enrolled, say_fresh
from tests.store.keys.test_backup import _open_or_none, restored
from tests.store.lifecycle.lifecycle_data import MARKER, at, load

ADMINS = ("AD01", "AD02")


async def schedule(app: Signpost, text: str, admin: str = "AD01") -> None:
    """An admin schedules in chat: ``decommission`` asks for a fresh code, answered with a real one."""
    reply = await say_fresh(app, admin, text)
    assert reply.outcome is Outcome.DONE, reply


class RecordingPlatform:
    """A chat platform that takes every notice and records who got what."""

    def __init__(self, platform: Platform, sent: list[tuple[Principal, Notice]]) -> None:
        self.platform = platform
        self.sent = sent

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.sent.append((to, notice))


async def rows_left(app: Signpost) -> dict[str, int]:
    """Rows in every table classified as holding children's or people's data (from the metadata)."""
    async with app.ctx.db.read() as session:
        return {
            table.name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in tables_holding(Personal.CHILD, Personal.PERSON)
        }


async def leave_stepup_and_access_traces(app: Signpost) -> None:
    """What real use leaves behind: enrolled and half-enrolled authenticators, a one-time enrolment
    link, a command parked for a code, an approved access request with its grant, and a
    registration request from an unlinked chat account."""
    assert (await say_fresh(app, "P001", f"request {SHIELDED} safeguarding enquiry")).outcome is Outcome.DONE
    assert (await say_fresh(app, "AD01", "approve 1")).outcome is Outcome.DONE  # admins decide any authority
    slack_p002 = Principal(Platform.SLACK, "T1", "U-P002")
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, slack_p002, "P002", app.ctx.clock.now())
    assert (await say(app, slack_p002, "enrol")).links  # a one-time link; P002 does not finish
    assert (await say(app, slack_p002, AMY)).outcome is Outcome.CHALLENGED  # parked, text sealed
    stranger = Principal(Platform.SLACK, "T1", "U-NEW")
    assert (await say(app, stranger, "register P003")).outcome is Outcome.DONE


async def notices(app: Signpost, kind: str = "decommission") -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeRow).where(NoticeRow.kind == kind))).scalars())


async def decommission_row(app: Signpost) -> Decommission | None:
    async with app.ctx.db.read() as session:
        return await decommission.current(session)


async def test_admin_schedules_in_chat_and_every_admin_is_told(signpost: Signpost) -> None:
    """An admin schedules the switch-off in chat (60 days' destruction by default); each admin gets
    one notice; a practitioner may not schedule."""
    await load(signpost)
    refused = await say(signpost, "P001", "decommission schedule 15/12/2026")
    assert refused.outcome is Outcome.REFUSED
    # AD01 holds the admin role only: it can still enrol, and the command asks for its code.
    unenrolled = await say(signpost, "AD01", "decommission schedule 15/12/2026")
    assert unenrolled.outcome is Outcome.REFUSED and "Send: enrol" in unenrolled.text
    assert await decommission_row(signpost) is None
    await ensure_enrolled(signpost, "AD01")
    reply = await say_fresh(signpost, "AD01", "decommission schedule 15/12/2026")
    assert reply.outcome is Outcome.DONE
    assert "15/12/2026" in reply.text and "13/02/2027" in reply.text
    sent = await notices(signpost)
    assert sorted(n.recipient_id for n in sent) == list(ADMINS)
    assert all("15/12/2026" in n.body for n in sent)
    status = await say_fresh(signpost, "AD02", "decommission status")
    assert status.outcome is Outcome.INFO and "in 43 days" in status.text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("decommission schedule 01/11/2026", "in the past"),
        ("decommission schedule 31/12/2199", "more than 5 years away"),
        ("decommission schedule 15/12/2026 20/02/2027", "at most 60 days"),
        ("decommission schedule 15/12/2026 14/12/2026", "after the switch-off"),
        ("decommission schedule 31/02/2027", "not a real date"),
        ("decommission schedule", "switch-off date"),
        # Today would switch Signpost off at once, for good: only with "at once" (below).
        ("decommission schedule 02/11/2026", "would take effect at once"),
        ("decommission schedule 02/11/2026 20/12/2026", "To switch off today regardless, add: at once"),
        ("decommission explode", "say what to do"),
    ],
)
async def test_bad_schedules_are_refused_kindly(signpost: Signpost, text: str, problem: str) -> None:
    """Dates in the past, destruction later than 60 days, impossible dates: a clear answer, nothing stored."""
    await load(signpost)
    reply = await say_fresh(signpost, "AD01", text)
    assert reply.outcome is Outcome.INVALID and problem in reply.text
    assert await decommission_row(signpost) is None


async def test_a_switch_off_today_needs_at_once_and_then_takes_effect_at_once(signpost: Signpost) -> None:
    """Scheduling today's date, which cannot be cancelled once begun, asks for "at once"; with it,
    searches are refused from that moment and the answer says so."""
    await load(signpost)
    refused = await say_fresh(signpost, "AD01", "decommission schedule 02/11/2026")
    assert refused.outcome is Outcome.INVALID and await decommission_row(signpost) is None
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED
    done = await say_fresh(signpost, "AD01", "decommission schedule 02/11/2026 At Once")
    assert done.outcome is Outcome.DONE and done.text.startswith("Signpost is switched off now, at once (02/11/2026)")
    assert (await say(signpost, "P001", AMY)).outcome is Outcome.SWITCHED_OFF


async def test_from_switch_off_every_search_is_refused_and_audited(signpost: Signpost, clock: FakeClock) -> None:
    """On and after the switch-off date searches, registrations, requests, enrolments and codes get
    the switched-off answer (audited) without being asked for a code; help and the admins' status
    and certificate still answer, with no code (nobody can enrol or answer one any more)."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026")
    clock.set(at(date(2026, 11, 9)))
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED
    clock.set(at(date(2026, 11, 10)))  # a day on: P001's and AD01's codes are no longer fresh
    for text in (
        AMY,
        "Amy Jones 03/04/2014",
        "register P003",
        f"request {AMY} safeguarding",
        "enrol",
        "history",
    ):
        reply = await say(signpost, "P001", text)
        assert reply.outcome is Outcome.SWITCHED_OFF and not reply.signposts and "switched off" in reply.text
        assert reply.challenge is None and reply.enrolment_uri is None
    code = await say(signpost, "P001", "code", code="123456")
    assert code.outcome is Outcome.SWITCHED_OFF and code.challenge is None
    cancel = await say(signpost, "AD01", "decommission cancel")
    assert cancel.outcome is Outcome.SWITCHED_OFF and cancel.challenge is None
    assert (await say(signpost, "nobody", "help")).outcome is Outcome.INFO
    status = await say(signpost, "AD01", "decommission status")
    assert status.outcome is Outcome.INFO and status.challenge is None
    assert "was switched off on 10/11/2026" in status.text
    assert "no destruction certificate yet" in (await say(signpost, "AD01", "decommission certificate")).text
    # Only admins: the role gate still answers a practitioner's status before anything else.
    assert (await say(signpost, "P001", "decommission status")).outcome is Outcome.REFUSED
    async with signpost.ctx.db.read() as session:
        rows = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.outcome).where(AuditEvent.outcome == "switched_off")
            )
        ).all()
    assert ("lookup", "switched_off") in rows and ("search", "switched_off") in rows


async def test_cancel_before_switch_off_keeps_the_service_on(signpost: Signpost, clock: FakeClock) -> None:
    """A cancelled schedule tells the admins, never switches anything off, and a new one may follow."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026")
    reply = await say_fresh(signpost, "AD02", "decommission cancel")
    assert reply.outcome is Outcome.DONE
    assert sum("cancelled by AD02" in n.body for n in await notices(signpost)) == 2
    clock.set(at(date(2026, 11, 12)))
    assert await decommission_tick(signpost.ctx, clock.now()) is None
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED
    await schedule(signpost, "decommission schedule 01/12/2026")  # AD01's code is stale: asked again


async def test_each_notice_once_across_two_runners_and_a_restart(
    signpost: Signpost, db_url: str, clock: FakeClock
) -> None:
    """Scheduling, 30/7/1-day warnings and switch-off reach each admin exactly once, with two
    runners ticking at the same moments and again after both restart."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 15/12/2026")
    moments = [date(2026, 11, d) for d in (2, 14, 15, 16)] + [date(2026, 12, d) for d in (7, 8, 9, 13, 14, 15, 16)]

    async def two_runners() -> None:
        apps = [
            build(Database.connect(db_url), KeyRing.load_or_create(signpost.ctx.keys.path), clock)  # type: ignore[arg-type]
            for _ in range(2)
        ]
        try:
            for moment in moments:
                clock.set(at(moment))
                await asyncio.gather(*(decommission_tick(app.ctx, clock.now()) for app in apps))
        finally:
            for app in apps:
                await app.close()

    await two_runners()
    await two_runners()  # a restart: new processes, same database, same moments again
    sent = await notices(signpost)
    keys = Counter(n.dedupe_key for n in sent)
    assert set(keys.values()) == {1}
    expected = {
        f"decommission:1:{what}:{admin}"
        for what in ("scheduled", "30d", "7d", "1d", "switched_off")
        for admin in ADMINS
    }
    assert set(keys) == expected


async def test_destruction_deletes_personal_data_and_certificate_verifies(
    signpost: Signpost, clock: FakeClock, tmp_path: Path
) -> None:
    """At the destroy-by date: keys gone from store and key file, personal data deleted (step-up
    and access-control rows too), storage compacted, the audit log intact, and a signed
    certificate sent to every admin, which an admin can still read in chat."""
    await load(signpost)
    published = signpost.ctx.signer.public  # the key published before decommissioning
    await retention_tick(signpost.ctx, clock.now())
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED
    await leave_stepup_and_access_traces(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026 20/11/2026")
    before = await rows_left(signpost)
    traces = ("totp_credentials", "enrolment_tokens", "parked_commands", "access_requests", "access_grants")
    assert all(before[table] for table in (*traces, "registration_requests"))  # the checks below can fail
    clock.set(at(date(2026, 11, 19)))
    assert await decommission_tick(signpost.ctx, clock.now()) is None  # switched off, not yet destroyed
    clock.set(at(date(2026, 11, 20)))
    cert = await decommission_tick(signpost.ctx, clock.now())
    assert cert is not None and decommission.verify(cert, published)
    destroyed = cert["certificate"]["destroyed"]
    assert destroyed["child_keys"] == 10 and destroyed["children"] == 10 and destroyed["practitioners"] == 7
    assert destroyed["key_encryption_keys"] == 1 and destroyed["key_chains"] == 3 and destroyed["involvements"] == 7
    # Every child and person table is emptied and counted, but for what still reaches the admins
    # until the purge, and children (counted by identities destroyed now, not by rows).
    emptied = {table: n for table, n in before.items() if table not in {*decommission.REACHING_ADMINS, "children"}}
    assert {table: destroyed[table] for table in emptied} == emptied
    assert {table for table, n in (await rows_left(signpost)).items() if n} <= decommission.REACHING_ADMINS
    async with signpost.ctx.db.read() as session:
        for model in (ChildKey, ChildTerm, Involvement):
            assert (await session.execute(select(func.count()).select_from(model))).scalar_one() == 0
        assert (
            await session.execute(select(func.count()).select_from(Child).where(Child.identity.is_not(None)))
        ).scalar_one() == 0
        names = (await session.execute(select(Practitioner.family_name, Practitioner.email))).all()
        assert set(names) == {("", "")}
        events = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
        summary = await decommission.audit_summary(session)
    assert events >= 3 and cert["certificate"]["audit"]["last_seq"] <= summary["last_seq"]
    on_disk = KeyRing.load_or_create(signpost.ctx.keys.path)  # type: ignore[arg-type]
    assert on_disk.keks == {} and on_disk.index_key == b"" and on_disk.signing_seed == b""
    sent = await notices(signpost)
    finals = [n for n in sent if n.dedupe_key and ":step:certificate:" in n.dedupe_key]
    assert sorted(n.recipient_id for n in finals) == list(ADMINS)
    assert cert["signature"] in json.loads(finals[0].body)["text"]
    steps = {n.dedupe_key.split(":")[3] for n in sent if n.dedupe_key and ":step:" in n.dedupe_key}
    assert steps == {"keys", "data", "compact", "certificate"}
    assert "decommissioning complete" in (await say(signpost, "AD01", "decommission certificate")).text


async def test_tampered_certificate_does_not_verify(signpost: Signpost, clock: FakeClock) -> None:
    """Changing any count in the certificate breaks its Ed25519 signature."""
    await load(signpost)
    published = signpost.ctx.signer.public  # the key published before decommissioning
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    clock.set(at(date(2026, 11, 3)))
    cert = await decommission_tick(signpost.ctx, clock.now())
    assert cert is not None and decommission.verify(cert, published)
    cert["certificate"]["destroyed"]["children"] -= 1
    assert not decommission.verify(cert, published)


async def test_two_runners_destroy_once(signpost: Signpost, db_url: str, clock: FakeClock) -> None:
    """Two processes reaching the destroy-by date together produce one destruction and one certificate."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    clock.set(at(date(2026, 11, 3)))
    other = build(Database.connect(db_url), KeyRing.load_or_create(signpost.ctx.keys.path), clock)  # type: ignore[arg-type]
    try:
        results = await asyncio.gather(
            decommission_tick(signpost.ctx, clock.now()), decommission_tick(other.ctx, clock.now())
        )
    finally:
        await other.close()
    assert sum(r is not None for r in results) == 1
    finals = [n for n in await notices(signpost) if n.dedupe_key and ":step:certificate:" in n.dedupe_key]
    assert len(finals) == len(ADMINS)


async def test_nothing_personal_survives_in_files_after_decommissioning(
    signpost: Signpost, clock: FakeClock, tmp_path: Path
) -> None:
    """After destruction no marker, wrapped key, sealed TOTP seed, name or e-mail address is in the
    database files (SQLite file and WAL) or in a backup taken afterwards."""
    await load(signpost)
    await retention_tick(signpost.ctx, clock.now())
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    async with signpost.ctx.db.read() as session:
        wrapped = list((await session.execute(select(ChildKey.wrapped))).scalars())
        seeds = list((await session.execute(select(TotpCredential.seed))).scalars())
    assert seeds  # AD01 enrolled to schedule
    clock.set(at(date(2026, 11, 3)))
    assert await decommission_tick(signpost.ctx, clock.now()) is not None
    target = tmp_path / "after.backup"
    await backup(signpost.ctx.db, target)
    blobs = [target.read_bytes()]
    if signpost.ctx.db.dialect == "sqlite":
        path = Path(str(signpost.ctx.db.engine.url.database))
        blobs += [p.read_bytes() for p in (path, Path(str(path) + "-wal")) if p.exists()]
    for blob in blobs:
        for needle in (
            MARKER.encode(),
            b"sam.carter@northshire.example",
            b"0161 496 0001",
            b"Priya",
            *wrapped,
            *seeds,
        ):
            assert needle not in blob


async def test_retention_and_notices_stop_after_destruction(signpost: Signpost, clock: FakeClock) -> None:
    """Once destroyed, later ticks create no keys, touch nothing, and send nothing new; a day on,
    the purge has taken the undelivered certificate notices and the admins' chat links too."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    clock.set(at(date(2026, 11, 3)))
    await decommission_tick(signpost.ctx, clock.now())
    assert await notices(signpost)  # the certificate notices wait for delivery (nothing delivers here)
    clock.set(at(date(2026, 11, 4)))
    report = await retention_tick(signpost.ctx, clock.now())
    assert await decommission_tick(signpost.ctx, clock.now()) is None
    assert not report.did_work and await notices(signpost) == []
    assert KeyRing.load_or_create(signpost.ctx.keys.path).keks == {}  # type: ignore[arg-type]
    after = await say(signpost, console("P001"), AMY)  # the identity gate answers first: P001 is gone
    assert after.outcome in (Outcome.REFUSED, Outcome.SWITCHED_OFF) and not after.signposts
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(ChatIdentity))).first() is None


async def test_full_decommissioning_leaves_no_row_of_any_child_or_person_table(
    signpost: Signpost, clock: FakeClock
) -> None:
    """With a row in every child and person table (Teams conversation references, chat links,
    enrolment links, parked commands, registrations, access requests and grants, notices, TOTP
    seeds, misuse alerts...), destruction keeps only the admins' means of being reached; once the
    certificate is delivered to them the purge leaves no row in any of those tables, while the audit
    rows remain and the certificate, still stored, verifies."""
    await load(signpost)
    published = signpost.ctx.signer.public  # the key published before decommissioning
    await retention_tick(signpost.ctx, clock.now())
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED
    await say_fresh(signpost, "P001", "Zed Nobody 01/01/2015")  # terms of no single child: a month key
    await leave_stepup_and_access_traces(signpost)
    relayed = await say_fresh(signpost, "P003", f"message {SHIELDED} please call me about a school referral")
    assert relayed.outcome is Outcome.DONE, relayed.text  # a blind-relay message, sealed under the child's key
    now = clock.now()
    slack_ad01 = Principal(Platform.SLACK, "T1", "U-AD01")
    teams_ad02 = Principal(Platform.TEAMS, "tenant-1", "aad-ad02")
    teams_p003 = Principal(Platform.TEAMS, "tenant-1", "aad-p003")
    async with signpost.ctx.db.write() as session:
        for principal, who in ((slack_ad01, "AD01"), (teams_ad02, "AD02"), (teams_p003, "P003")):
            await practitioners.link_identity(session, principal, who, now)
        for principal in (teams_ad02, teams_p003):
            reference = {"conversation": {"id": f"a:{principal.user_id}"}, "serviceUrl": "http://127.0.0.1:9/"}
            await conversations.save(session, principal.tenant, principal.user_id, reference, now)
        session.add(MisuseAlert(dedupe_key="volume:P001:2026-11-02", rule="volume", actor_id="P001", raised_at=now))
    await schedule(signpost, "decommission schedule 10/11/2026 20/11/2026")
    before = await rows_left(signpost)
    assert {table for table, n in before.items() if n == 0} == set()  # every such table has a row to destroy
    async with signpost.ctx.db.read() as session:
        audit_before = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
        subjects_before = (await session.execute(select(func.count()).select_from(AuditSubject))).scalar_one()

    clock.set(at(date(2026, 11, 20)))
    cert = await decommission_tick(signpost.ctx, clock.now())
    assert cert is not None and decommission.verify(cert, published)
    assert "teams_conversations" in cert["certificate"]["purged_after_delivery"]
    waiting = await rows_left(signpost)  # only what reaches the admins is left, until delivery
    assert {table for table, n in waiting.items() if n} == {
        "practitioners",
        "chat_identities",
        "teams_conversations",
        "notices",
    }
    async with signpost.ctx.db.read() as session:
        assert set((await session.execute(select(TeamsConversation.user_id))).scalars()) == {"aad-ad02"}
    assert await decommission_tick(signpost.ctx, clock.now()) is None  # not delivered yet: no purge

    sent: list[tuple[Principal, Notice]] = []
    box = Outbox(signpost.ctx, [RecordingPlatform(Platform.SLACK, sent), RecordingPlatform(Platform.TEAMS, sent)])
    assert (await box.deliver_due(clock.now())).delivered >= len(ADMINS)
    certificates = {to: n.text for to, n in sent if n.dedupe_key and ":step:certificate:" in n.dedupe_key}
    assert set(certificates) == {slack_ad01, teams_ad02}
    assert all(cert["signature"] in text for text in certificates.values())

    assert await decommission_tick(signpost.ctx, clock.now()) is None  # delivered: the purge runs
    assert await rows_left(signpost) == dict.fromkeys(before, 0)
    async with signpost.ctx.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one() >= audit_before
        assert (await session.execute(select(func.count()).select_from(AuditSubject))).scalar_one() == subjects_before
        stored = await decommission.current(session)
    assert stored is not None and stored.certificate is not None
    assert json.loads(stored.certificate) == cert and decommission.verify(json.loads(stored.certificate), published)
    assert "purge" in stored.steps_done


async def test_certificate_notices_dropped_rather_than_delivered_are_not_waited_for(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A certificate notice the outbox dropped (its admin can no longer be reached) will never be
    delivered: the purge runs at the next tick, not an hour later."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026 20/11/2026")
    clock.set(at(date(2026, 11, 20)))
    assert await decommission_tick(signpost.ctx, clock.now()) is not None
    async with signpost.ctx.db.write() as session:
        certificate = NoticeRow.dedupe_key.like("decommission:%:step:certificate:%")
        dropped = await session.execute(update(NoticeRow).where(certificate).values(dropped_at=clock.now()))
        assert dropped.rowcount >= 1  # type: ignore[attr-defined]
    assert await decommission_tick(signpost.ctx, clock.now()) is None
    async with signpost.ctx.db.read() as session:
        stored = await decommission.current(session)
    assert stored is not None and "purge" in stored.steps_done
    assert sum((await rows_left(signpost)).values()) == 0


async def test_a_backup_taken_before_decommissioning_opens_nothing_afterwards(
    signpost: Signpost, clock: FakeClock, tmp_path: Path, db_url: str
) -> None:
    """A backup taken just before destruction, restored beside the key file as it is afterwards:
    no child's identity decrypts and no search's sealed terms open (the key file lost every KEK)."""
    await load(signpost)
    await retention_tick(signpost.ctx, clock.now())
    assert (await say_fresh(signpost, "P001", AMY)).outcome is Outcome.ANSWERED
    await say_fresh(signpost, "P001", "Zed Nobody 01/01/2015")  # terms of no single child
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    taken = tmp_path / "before-decommissioning.backup"
    await backup(signpost.ctx.db, taken)
    async with signpost.ctx.db.read() as session:
        refs = list((await session.execute(select(Child.ref))).scalars())
        sealed_terms = (await session.execute(select(func.count()).where(AuditEvent.terms.is_not(None)))).scalar_one()
    assert refs and sealed_terms
    clock.set(at(date(2026, 11, 3)))
    assert await decommission_tick(signpost.ctx, clock.now()) is not None
    keys_after = signpost.ctx.keys  # the key file as it is now
    async with restored(db_url, taken) as old, old.read() as session:
        try:
            found = await children.load_identities(session, keys_after, refs)
        except (DecryptionError, KeyError):
            found = {}
        assert found == {}
        sealer = type(signpost.ctx.sealer)(old, keys_after)
        events = (await session.execute(select(AuditEvent).where(AuditEvent.terms.is_not(None)))).scalars().all()
        assert len(events) == sealed_terms
        assert [await _open_or_none(sealer, session, e) for e in events] == [None] * len(events)
    assert MARKER.encode() not in taken.read_bytes()


class Killed(BaseException):
    """The process dying at this point: nothing of ours catches it (as nothing runs after a kill -9)."""


async def destroy_events(app: Signpost) -> list[tuple[str, str]]:
    async with app.ctx.db.read() as session:
        found = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail)
            .where(AuditEvent.action == "decommission_destroy")
            .order_by(AuditEvent.seq)
        )
        return [(str(outcome), str(detail)) for outcome, detail in found.all()]


async def destroy(signpost: Signpost) -> str:
    """`signpost decommission destroy` as the command line runs it: the use case inside its audit."""
    async with audited(signpost.ctx, "ops", Action.DECOMMISSION_DESTROY) as audit:
        return await operator.decommission_destroy(signpost.ctx, audit)


async def status(signpost: Signpost) -> str:
    """`signpost decommission status` as the command line runs it."""
    async with audited(signpost.ctx, "ops", Action.DECOMMISSION) as audit:
        return await operator.decommission_status(signpost.ctx, audit)


async def certificate(signpost: Signpost) -> dict[str, Any]:
    """`signpost decommission certificate`, inside its audit."""
    async with audited(signpost.ctx, "ops", Action.DECOMMISSION) as audit:
        return await operator.decommission_certificate(signpost.ctx, audit)


async def test_a_destruction_cut_short_is_audited_started_not_done_and_every_refusal_is_audited(
    signpost: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`decommission destroy` killed after its first step leaves 'started', never 'done'; a retry
    while the dead run's lease holds is refused and audited; after the lease the retry records the
    dead run failed, cut short, resumes (audited as resuming after the keys step) and only then
    'done'. A destroy before switch-off, or after completion, is refused and audited too."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026 20/11/2026")
    with pytest.raises(Refused, match="after the switch-off date"):
        await destroy(signpost)
    clock.set(at(date(2026, 11, 12)))
    row = await decommission_row(signpost)
    assert row is not None
    sid = f"schedule {row.id}"

    def killed(*args: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setitem(decommission._STEP_FUNCTIONS, "data", killed)
        with pytest.raises(Killed):
            await destroy(signpost)
    assert await destroy_events(signpost) == [("refused", "before switch-off"), ("started", sid)]
    after_crash = await decommission_row(signpost)
    assert after_crash is not None and (after_crash.state, after_crash.steps_done) == ("destroying", "keys")

    clock.advance(minutes=5)  # the dead run's lease still holds
    with pytest.raises(Refused, match="another Signpost process"):
        await destroy(signpost)
    clock.advance(minutes=15)
    assert "decommissioning complete" in await destroy(signpost)
    async with signpost.ctx.db.read() as session:
        last = (await session.execute(select(func.max(AuditEvent.seq)))).scalar_one()
    certified = await certificate(signpost)
    assert certified["certificate"]["audit"]["last_seq"] == last  # the 'done' event is covered too
    with pytest.raises(Refused, match="already been destroyed"):
        await destroy(signpost)
    assert await destroy_events(signpost) == [
        ("refused", "before switch-off"),
        ("started", sid),
        ("refused", f"{sid}; claimed by another process"),
        ("failed", f"{sid}: {CUT_SHORT}"),  # the dead run's outcome, recorded as the retry claims the work
        ("started", f"{sid}, resuming after keys"),
        ("done", sid),
        ("refused", f"{sid}; already destroyed"),
    ]


async def switched_off_with_a_reader(
    app: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> sqlite3.Connection:
    """A store switched off today, and an open SQLite reader holding its snapshot (so compaction
    cannot finish); the caller closes it."""
    monkeypatch.setattr(retention, "COMPACTION_WAIT", 0.2)  # the reader never lets go: do not wait 10 s
    await load(app)
    await schedule(app, "decommission schedule 02/11/2026 03/11/2026 at once")
    clock.set(at(date(2026, 11, 3)))
    reader = sqlite3.connect(str(app.ctx.db.engine.url.database))
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM practitioners").fetchone()  # holds its snapshot
    return reader


@pytest.mark.sqlite_only
async def test_a_reader_holding_an_old_snapshot_stops_destruction_before_the_certificate(
    signpost: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader's open snapshot keeps SQLite's checkpoint from overwriting the deleted pages, yet the
    compact step was recorded and the certificate signed. Now `destroy` fails in one line saying
    compaction was not done and what to do, audited failed, with keys and data kept done and no
    certificate; once the reader is gone, `destroy` carries on at once (the lease was released)."""
    reader = await switched_off_with_a_reader(signpost, clock, monkeypatch)
    try:
        with pytest.raises(Failed) as stopped:
            await destroy(signpost)
    finally:
        reader.close()
    said = str(stopped.value)
    assert "\n" not in said and said.startswith("Destruction stopped before the certificate: storage compaction")
    assert "Another connection held the database open" in said and "`signpost decommission destroy` again" in said
    row = await decommission_row(signpost)
    assert row is not None and (row.steps_done, row.certificate) == ("keys,data", None)
    sid = f"schedule {row.id}"
    assert await destroy_events(signpost) == [("started", sid), ("failed", f"{sid}; compaction not done")]
    assert "storage is not compacted yet" in await status(signpost)
    assert "decommissioning complete" in await destroy(signpost)
    assert (await destroy_events(signpost))[-2:] == [("started", f"{sid}, resuming after keys,data"), ("done", sid)]


@pytest.mark.sqlite_only
async def test_the_tick_stopped_before_the_certificate_is_audited_and_tells_the_admins_once_a_day(
    signpost: Signpost, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the destroy-by date the scheduler's tick destroys; when its compaction is not done it
    stopped silently (one log line every 10 minutes). Now each such tick is audited failed, and
    every admin is told why and what to do, once a day; the next tick after the reader has gone
    finishes."""
    reader = await switched_off_with_a_reader(signpost, clock, monkeypatch)
    try:
        assert await decommission_tick(signpost.ctx, clock.now()) is None
        clock.advance(minutes=10)
        assert await decommission_tick(signpost.ctx, clock.now()) is None
    finally:
        reader.close()
    row = await decommission_row(signpost)
    assert row is not None and (row.steps_done, row.certificate) == ("keys,data", None)
    sid = f"schedule {row.id}"
    failed = ("failed", f"{sid}; compaction not done")
    assert (await destroy_events(signpost))[-4:] == [
        ("started", sid),
        failed,
        ("started", f"{sid}, resuming after keys,data"),
        failed,
    ]
    stalled = [n for n in await notices(signpost) if n.dedupe_key and ":stalled:" in n.dedupe_key]
    assert sorted(n.recipient_id for n in stalled) == sorted(ADMINS)  # once each, not once a tick
    assert all("storage compaction was not done" in n.body for n in stalled)
    clock.advance(minutes=10)
    assert await decommission_tick(signpost.ctx, clock.now()) is not None  # the certificate


async def destroyed_with_the_seed_left(app: Signpost, clock: FakeClock) -> bytes:
    """A completed destruction whose signing seed is back in the key file: what a run killed after
    it recorded completion, before the seed went, left (as earlier versions did). Returns the seed."""
    await load(app)
    seed = app.ctx.keys.signing_seed
    await schedule(app, "decommission schedule 02/11/2026 03/11/2026 at once")
    clock.set(at(date(2026, 11, 3)))
    assert await decommission_tick(app.ctx, clock.now()) is not None
    path = app.ctx.keys.path
    assert path is not None and seed
    document = json.loads(path.read_text("utf-8"))
    document["signing_seed"] = base64.b64encode(seed).decode()
    path.write_text(json.dumps(document), "utf-8")
    return seed


def seed_on_disk(app: Signpost) -> str:
    assert app.ctx.keys.path is not None
    return str(json.loads(app.ctx.keys.path.read_text("utf-8"))["signing_seed"])


async def test_a_destroyed_store_with_its_signing_seed_left_is_finished_by_the_next_tick_and_says_so(
    signpost: Signpost, clock: FakeClock
) -> None:
    """State destroyed, seed still in the key file: status says destruction is not finished and
    names the seed; the next tick destroys it (the public key stays) and audits what it destroyed;
    then status says all is destroyed, and a later tick does nothing more."""
    await destroyed_with_the_seed_left(signpost, clock)
    said = await status(signpost)
    assert "NOT finished" in said and "signing seed (key file)" in said
    clock.advance(minutes=10)
    assert await decommission_tick(signpost.ctx, clock.now()) is None
    assert seed_on_disk(signpost) == "" and KeyRing.load(signpost.ctx.keys.path).signing_public  # type: ignore[arg-type]
    assert "all personal data has been destroyed" in await status(signpost)
    row = await decommission_row(signpost)
    assert row is not None
    finished = [e for e in await destroy_events(signpost) if "finished" in e[1]]
    assert finished == [
        ("done", f"schedule {row.id}: finished, destroyed what was left after the certificate: signing seed (key file)")
    ]
    assert await decommission_tick(signpost.ctx, clock.now()) is None
    assert len([e for e in await destroy_events(signpost) if "finished" in e[1]]) == 1


async def test_decommission_destroy_finishes_a_destroyed_store_with_its_signing_seed_left(
    signpost: Signpost, clock: FakeClock
) -> None:
    """`signpost decommission destroy` on that store destroys the seed and says so (not "already
    destroyed"); run again, it is refused as all is done."""
    await destroyed_with_the_seed_left(signpost, clock)
    said = await destroy(signpost)
    assert said.startswith("Destroyed what a destruction cut short left: signing seed (key file).")
    assert seed_on_disk(signpost) == ""
    with pytest.raises(Refused, match="already been destroyed"):
        await destroy(signpost)


async def test_a_server_starting_finishes_a_destroyed_store_with_its_signing_seed_left(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A server starting up destroys the seed before it serves, whatever the scheduler's next run."""
    await destroyed_with_the_seed_left(signpost, clock)
    client = TestClient(TestServer(create_app(signpost, load_settings(), [add_scheduler]), host="127.0.0.1"))
    await client.start_server()
    try:  # checked while it runs: closing cancels its scheduler's work, perhaps mid-transaction
        assert seed_on_disk(signpost) == ""
        assert [e for e in await destroy_events(signpost) if "finished" in e[1]]
    finally:
        await client.close()


async def test_a_replica_started_before_destruction_keeps_no_key_in_memory_after_its_next_tick(
    signpost: Signpost, db_url: str, clock: FakeClock
) -> None:
    """Another replica loaded the keys before destruction; once it ran, that replica's next tick
    drops its copies: it can sign nothing more (no checkpoint) and holds no KEK."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 02/11/2026 03/11/2026 at once")
    other = build(Database.connect(db_url), KeyRing.load_or_create(signpost.ctx.keys.path), clock)  # type: ignore[arg-type]
    try:
        assert other.ctx.signer.can_sign
        clock.set(at(date(2026, 11, 3)))
        assert await decommission_tick(signpost.ctx, clock.now()) is not None
        assert await decommission_tick(other.ctx, clock.now()) is None
        assert not other.ctx.signer.can_sign and other.ctx.keys.keks == {} and other.ctx.keys.index_key == b""
    finally:
        await other.close()


async def test_a_warning_sent_late_says_how_many_days_are_really_left(signpost: Signpost, clock: FakeClock) -> None:
    """Switch-off on 15/12/2026; the scheduler is down on the 7-day mark (8 December) and ticks
    again on 10 December: the admins are warned then, once, and told 5 days, not 7."""
    await load(signpost)
    await ensure_enrolled(signpost, "AD01")
    await schedule(signpost, "decommission schedule 15/12/2026")
    clock.set(at(date(2026, 12, 10)))
    await decommission_tick(signpost.ctx, clock.now())
    await decommission_tick(signpost.ctx, clock.now())
    warned = [n for n in await notices(signpost) if "will be switched off" in n.body]
    assert sorted(n.recipient_id for n in warned) == list(ADMINS)
    assert all("in 5 days, on 15/12/2026" in n.body for n in warned), [n.body for n in warned]


async def test_a_switch_off_at_once_is_told_as_done_not_as_scheduled(signpost: Signpost) -> None:
    """Switched off today "at once", the admins were told Signpost "is scheduled to be switched off
    on" today: it already was, so the notice says so."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 02/11/2026 at once")
    (told,) = {json.loads(n.body)["text"] for n in await notices(signpost)}
    assert told.startswith("Signpost was switched off on 02/11/2026, at once, by AD01. "), told
    assert "scheduled to be" not in told, told


async def test_help_after_destruction_says_the_data_was_destroyed_not_being_destroyed(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Once destruction is complete, help said personal data "is being destroyed as announced":
    it says when it was destroyed (before then, it is still being destroyed)."""
    await load(signpost)
    await schedule(signpost, "decommission schedule 10/11/2026 20/11/2026")
    clock.set(at(date(2026, 11, 12)))
    before = await say(signpost, "AD01", "help")
    assert "is being destroyed" in before.text and "destroyed by 20/11/2026" in before.text, before.text
    refused = await say(signpost, "AD01", "decommission cancel")  # the switch-off gate's answer says the same
    assert refused.outcome is Outcome.SWITCHED_OFF and "is being destroyed by 20/11/2026" in refused.text
    clock.set(at(date(2026, 11, 20)))
    assert await decommission_tick(signpost.ctx, clock.now()) is not None
    refused = await say(signpost, "AD01", "decommission cancel")
    assert refused.outcome is Outcome.SWITCHED_OFF and "was destroyed on 20/11/2026" in refused.text, refused.text
    for day in (20, 25):
        clock.set(at(date(2026, 11, day)))
        after = await say(signpost, "nobody", "help")
        assert after.outcome is Outcome.INFO
        assert "its personal data was destroyed on 20/11/2026" in after.text, after.text
        assert "being destroyed" not in after.text, after.text
