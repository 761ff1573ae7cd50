"""A pooled PostgreSQL connection ended under Signpost (``pg_terminate_backend``, a server restart):
the next command is run once more on a fresh connection, answered for real and audited once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Command, Outcome
from store.tables.audit import AuditEvent
from tests.databases import terminate_backends
from tests.factories import AMY, console, load_standard, ready, say

pytestmark = pytest.mark.postgres_only


async def events_since(app: Signpost, seq: int) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        found = await session.execute(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq))
        return list(found.scalars())


async def last_seq(app: Signpost) -> int:
    events = await events_since(app, 0)
    return events[-1].seq if events else 0


@pytest.mark.parametrize(
    ("text", "action"),
    [
        (AMY, "lookup"),  # a reading, its event written by the audit writer
        ("help", "help"),
        ("enrol", "enrol"),  # a command that writes: its event in its own transaction
    ],
)
async def test_the_first_command_after_the_backends_are_killed_gets_its_answer_and_one_event(
    signpost: Signpost, db_url: str, text: str, action: str
) -> None:
    """Every pooled connection ended by the server: the command is not told it failed, and its one
    event is written (none for a failed first try, no second for the try that answered)."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    await say(signpost, "P002", "help")  # the pool holds connections now
    before = await last_seq(signpost)
    assert await terminate_backends(db_url) >= 1
    reply = await say(signpost, "P002", text)
    assert reply.outcome is not Outcome.FAILED, reply.text
    if text == AMY:
        assert reply.outcome is Outcome.ANSWERED and reply.signposts
    mine = [e for e in await events_since(signpost, before) if e.platform == "console"]
    assert [(e.action, e.outcome) for e in mine] == [(action, reply.outcome.value)]


async def test_an_event_whose_batch_meets_a_dead_connection_first_is_written_once(
    signpost: Signpost, db_url: str
) -> None:
    """A request refused before any handler (an untrusted source) goes straight to the audit writer:
    its batch, the first to meet a dead connection, runs once more on a fresh one."""
    await say(signpost, "P002", "help")  # the pool holds connections now
    before = await last_seq(signpost)
    assert await terminate_backends(db_url) >= 1
    command = Command(console("NOBODY"), "", "corr-after-kill")
    await signpost.dispatcher.refuse_unheard(command, "untrusted tenant")
    mine = [(e.action, e.correlation_id) for e in await events_since(signpost, before)]
    assert mine == [("untrusted_source", "corr-after-kill")]
