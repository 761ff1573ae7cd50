"""The enrolment page's use cases: is a one-time link live, and spend it to reveal the seed once.

The page (bot/enrol_page.py) only renders; the token, the seed and the audit event stay here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.vocabulary import Action, Origin, Outcome
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


async def reveal(ctx: Context, token: str) -> tuple[str, bytes] | str:
    """Spend the token and decrypt the pending seed it stands for, audited in the same transaction;
    else why the link is dead, for the page's log line (a fixed reason, never the token): unknown,
    expired, spent, or the credential no longer pending. A press of a link that was used, or has
    expired, is audited too (``enrol_page``, refused, "link already used" or "link expired", nothing
    of the token) under the practitioner it was issued to: someone else may have opened their link
    first. That is once per link: its row goes in the same transaction, so the presses after are an
    unknown token, which names no one and is only logged (else anyone holding a dead link could
    grow the permanent audit without end)."""
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        if await _switched_off(session, now):
            return "switched_off"
        pid = await credentials.redeem_token(session, token, now)
        if pid is None:
            return await _refused(session, token, now)
        cred = await credentials.get(session, pid)
        actor = await practitioners.get_actor(session, pid)
        seed = await credentials.load_seed(session, ctx.keys, pid)
        if cred is None or cred.state != PENDING or seed is None or actor is None:
            return "link_not_live"
        # The seed leaves Signpost here, so its showing is audited (who, when; never the seed).
        record = origin_event(Origin.ENROLMENT_PAGE, Action.ENROL_PAGE, now, actor=actor, detail="secret shown")
        await append(session, [record])
        return pid, seed


async def _refused(session: AsyncSession, token: str, now: datetime) -> str:
    dead = await credentials.retire_dead_token(session, token, now)
    actor = None if dead is None else await practitioners.get_actor(session, dead[0])
    if dead is None or actor is None:
        return "link_not_live"
    why = dead[1]
    record = origin_event(
        Origin.ENROLMENT_PAGE, Action.ENROL_PAGE, now, actor=actor, outcome=Outcome.REFUSED, detail=why
    )
    await append(session, [record])
    return "link_used" if why == "link already used" else "link_expired"
