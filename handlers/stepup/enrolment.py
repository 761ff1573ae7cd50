"""The enrolment page's use cases: is a one-time link live, and spend it to reveal the seed once.

The page (bot/enrol_page.py) only renders; the token, the seed and the audit event stay here.
"""

from __future__ import annotations

from handlers.context import Context
from handlers.vocabulary import Action, Origin
from store.audit.log import append, origin_event
from store.people import credentials, practitioners
from store.people.credentials import PENDING


async def link_is_live(ctx: Context, token: str) -> bool:
    """Whether the one-time link still works; asking spends nothing (a link scanner's GET)."""
    async with ctx.db.read() as session:
        return await credentials.token_is_live(session, token, ctx.clock.now())


async def reveal(ctx: Context, token: str) -> tuple[str, bytes] | None:
    """Spend the token and decrypt the pending seed it stands for, audited in the same transaction;
    None when the link is dead (unknown, expired, spent, or the credential is no longer pending)."""
    now = ctx.clock.now()
    async with ctx.db.write() as session:
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
