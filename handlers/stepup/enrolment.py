"""The enrolment page's use cases: is a one-time link live, and spend it to reveal the seed once.

The page (bot/enrol_page.py) only renders; the token, the seed and the audit event stay here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.vocabulary import Action, Origin
from store.audit.log import append, origin_event
from store.lifecycle import decommission
from store.people import credentials, practitioners
from store.people.credentials import PENDING


async def link_is_live(ctx: Context, token: str) -> bool:
    """Whether the one-time link still works; asking spends nothing (a link scanner's GET). From
    the switch-off date no link works: nobody can enrol then (chat refuses enrol and every code)."""
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        if await _switched_off(session, now):
            return False
        return await credentials.token_is_live(session, token, now)


async def _switched_off(session: AsyncSession, now: datetime) -> bool:
    row = await decommission.current(session)
    return row is not None and decommission.is_switched_off(row.switch_off, now.date())


async def reveal(ctx: Context, token: str) -> tuple[str, bytes] | None:
    """Spend the token and decrypt the pending seed it stands for, audited in the same transaction;
    None when the link is dead (unknown, expired, spent, or the credential is no longer pending)."""
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        if await _switched_off(session, now):
            return None
        pid = await credentials.redeem_token(session, token, now)
        if pid is None:
            return None
        cred = await credentials.get(session, pid)
        actor = await practitioners.get_actor(session, pid)
        seed = await credentials.load_seed(session, ctx.keys, pid)
        if cred is None or cred.state != PENDING or seed is None or actor is None:
            return None
        # The seed leaves Signpost here, so its showing is audited (who, when; never the seed).
        record = origin_event(Origin.ENROLMENT_PAGE, Action.ENROL_PAGE, now, actor=actor, detail="secret shown")
        await append(session, [record])
        return pid, seed
