"""``audited``: exactly one outcome event per operator command, whatever becomes of an outcome the
use case wrote in its own transaction (``Audit.done_in``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.tables.audit import AuditEvent


class Broken(Exception):
    """The command's work failed after its transaction committed."""


async def outcomes(app: Signpost, action: Action) -> list[tuple[str, str]]:
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
        return [(event.outcome, event.detail) for event in (await session.execute(query)).scalars()]


async def test_a_done_in_a_savepoint_rolled_back_is_not_the_outcome(signpost: Signpost) -> None:
    """``done_in`` asked inside a savepoint that rolls back, though the transaction around it
    commits: that ``done`` is gone, so the command's outcome is still ``audited``'s to record —
    here ``failed``, not nothing at all."""
    with pytest.raises(Broken):
        async with audited(signpost.ctx, "ops", Action.PRACTITIONER_LEAVE) as audit:
            async with signpost.ctx.db.write() as session:
                savepoint = await session.begin_nested()
                await audit.done_in(session, "undone with its savepoint")
                await savepoint.rollback()
            raise Broken("after the commit")
    assert await outcomes(signpost, Action.PRACTITIONER_LEAVE) == [("failed", "Broken")]


async def test_a_done_in_a_transaction_closed_unfinished_is_not_the_outcome(signpost: Signpost) -> None:
    """A session closed with its transaction unfinished rolls it back without a rollback event: the
    ``done`` is gone, and a later commit of the same session does not count it recorded."""
    async with audited(signpost.ctx, "ops", Action.PRACTITIONER_LEAVE) as audit, signpost.ctx.db.write() as session:
        await audit.done_in(session, "undone with its transaction")
        await session.close()
    assert await outcomes(signpost, Action.PRACTITIONER_LEAVE) == [("done", "")]


async def test_a_done_in_a_committed_transaction_is_the_one_outcome(signpost: Signpost) -> None:
    async with audited(signpost.ctx, "ops", Action.PRACTITIONER_LEAVE) as audit, signpost.ctx.db.write() as session:
        await audit.done_in(session, "committed")
    assert await outcomes(signpost, Action.PRACTITIONER_LEAVE) == [("done", "committed")]
