"""Who is asking, read in one statement (issue 15): ``store.people.standing``.

Every command's policy chain needs whether its delivery was answered before, the practitioner
behind the chat identity, their step-up credential and the live switch-off date. The four are read
together, fresh in the command's own transaction: one statement where there were four, with the
same answers as each read alone.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.stepup.flow import ahead_step
from handlers.vocabulary import Command, Outcome, Platform, Principal
from store.delivery import deliveries
from store.lifecycle import decommission
from store.people import credentials, practitioners, standing
from tests.factories import AMY, console, load_standard, ready

SLACK = Principal(Platform.SLACK, "T1", "U-p002")
STRANGER = Principal(Platform.SLACK, "T1", "U-nobody")
HOT_TABLES = ("chat_identities", "practitioners", "totp_credentials", "decommissions", "deliveries")


async def _linked(app: Signpost, clock: FakeClock) -> None:
    await load_standard(app)
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, SLACK, "P002", clock.now())


async def test_a_stranger_has_no_actor_no_credential_and_nothing_seen(signpost: Signpost, clock: FakeClock) -> None:
    await _linked(signpost, clock)
    async with signpost.ctx.db.read() as session:
        found = await standing.read(session, STRANGER, "slack:command:never")
    assert found == standing.Standing(
        actor=None, credential=None, switch_off=None, seen=False, linked_at=None, account_code_at=None
    )


async def test_each_fact_is_what_its_own_read_gives(signpost: Signpost, clock: FakeClock) -> None:
    """The actor, the credential, the switch-off and the delivery, each against the read of its own home."""
    linked_at = clock.now()
    await _linked(signpost, clock)
    async with signpost.ctx.db.read() as session:
        before = await standing.read(session, SLACK, "slack:command:1")
    assert before.actor == await _actor(signpost, "P002") and before.actor is not None
    assert before.credential is None and before.switch_off is None and not before.seen
    assert before.linked_at == linked_at  # when the chat account was linked (the console has none)

    await ready(signpost, "P002")  # enrolled and stepped up (at the console)
    switch_off = clock.now().date() + timedelta(days=40)
    async with signpost.ctx.db.write() as session:
        await decommission.schedule(session, switch_off, None, "AD01", clock.now())
        assert await deliveries.claim(session, "slack:command:1", clock.now())
    async with signpost.ctx.db.read() as session:
        after = await standing.read(session, SLACK, "slack:command:1")
        own = await credentials.get(session, "P002")
        elsewhere = await standing.read(session, SLACK, "slack:command:2")
        at_console = await standing.read(session, console("P002"))
    assert own is not None and own.stepped_up_at is not None
    assert after == standing.Standing(
        before.actor, own, switch_off, seen=True, linked_at=linked_at, account_code_at=None
    )
    assert after.credential is not None and after.credential.stepped_up_at == own.stepped_up_at
    assert elsewhere == standing.Standing(
        before.actor, own, switch_off, seen=False, linked_at=linked_at, account_code_at=None
    )
    assert at_console == standing.Standing(
        before.actor, own, switch_off, seen=False, linked_at=None, account_code_at=None
    )

    # A code typed in the Slack account is that account's, and the console's own stays as it was.
    clock.advance(seconds=30)
    async with signpost.ctx.db.write() as session:
        assert await credentials.accept_step(
            session, "P002", own.last_step + 1, clock.now(), SLACK, ahead_step(clock.now())
        )
    async with signpost.ctx.db.read() as session:
        typed = await standing.read(session, SLACK, "slack:command:3")
        still = await standing.read(session, console("P002"))
    assert typed.account_code_at == clock.now() and typed.credential is not None
    assert typed.credential.stepped_up_at == own.stepped_up_at
    assert still.account_code_at is None and still.credential == typed.credential


async def test_a_long_delivery_id_is_found_by_its_stored_key(signpost: Signpost, clock: FakeClock) -> None:
    await _linked(signpost, clock)
    long_id = "teams:activity:" + "x" * 300
    async with signpost.ctx.db.write() as session:
        assert await deliveries.claim(session, long_id, clock.now())
    async with signpost.ctx.db.read() as session:
        assert (await standing.read(session, SLACK, long_id)).seen


async def test_a_keyed_enquiry_reads_who_is_asking_in_one_statement(signpost: Signpost, clock: FakeClock) -> None:
    """Delivery, identity, practitioner, credential and switch-off: one statement of the enquiry's
    read, not four (each a round trip; on SQLite, a hop to the driver's thread)."""
    await _linked(signpost, clock)
    await ready(signpost, "P002")
    statements: list[str] = []

    def record(_conn: Any, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = signpost.ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        command = Command(SLACK, AMY, uuid.uuid4().hex, idempotency_key=f"slack:command:{uuid.uuid4().hex}")
        reply = await signpost.dispatcher.handle(command)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert reply.outcome is Outcome.ANSWERED
    read = statements[: next(i for i, s in enumerate(statements) if "FROM children" in s)]
    asking = [s for s in read if any(f" {table}" in s for table in HOT_TABLES)]
    assert len(asking) == 1, asking
    assert all(f" {table}" in asking[0] for table in HOT_TABLES)


async def _actor(app: Signpost, practitioner_id: str) -> Any:
    async with app.ctx.db.read() as session:
        return await practitioners.get_actor(session, practitioner_id)
