"""A code whose verification has committed (a wrong code counted towards the lockout) and whose
event is still waiting on the store when the command is stopped (Ctrl-C in the console, a drain that
gave up) is still audited once: closing Signpost writes what its audit writer was handed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.app import Signpost
from store.tables.audit import AuditEvent
from store.tables.people import TotpCredential
from tests.bot.slack.test_slow_audit import audit_held
from tests.factories import load_standard, say
from tests.stepup_helpers import ensure_enrolled


async def failures_of(signpost: Signpost, practitioner_id: str) -> int:
    async with signpost.ctx.db.read() as session:
        found = await session.scalar(
            select(TotpCredential.failures).where(TotpCredential.practitioner_id == practitioner_id)
        )
    return int(found or 0)


async def code_events(signpost: Signpost) -> list[tuple[str, str]]:
    async with signpost.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == "code"))
    return [(outcome, detail) for outcome, detail in found]


# Only PostgreSQL can hold the audit table alone: SQLite's one write lock would hold the code's
# verification back as well, and nothing would have committed to be left unaudited.
@pytest.mark.postgres_only
async def test_a_wrong_code_stopped_while_its_event_waits_is_still_audited(signpost: Signpost) -> None:
    await load_standard(signpost)
    await ensure_enrolled(signpost, "P002")
    before = await code_events(signpost)
    async with audit_held(signpost):
        command = asyncio.ensure_future(say(signpost, "P002", "code", code="000000"))
        while not signpost.ctx.audit.waiting:  # verified, and its event handed to the writer
            await asyncio.sleep(0.01)
        command.cancel()  # Ctrl-C
        await asyncio.gather(command, return_exceptions=True)
        closing = asyncio.ensure_future(signpost.ctx.audit.close())
        await asyncio.sleep(0)
    await closing
    assert await failures_of(signpost, "P002") == 1
    assert (await code_events(signpost))[len(before) :] == [("invalid", "code wrong")]
