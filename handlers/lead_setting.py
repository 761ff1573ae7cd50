"""`lead-notices AUTHORITY [off|lead|all]`: who is told when a child of the authority is looked up.

An admin sets it per local authority (default: the lead professional); without a value it says the
current setting. Audited like every command; the change and its event commit together.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp
from handlers.grammar import UsageError
from handlers.vocabulary import Action, Outcome, Reply, Role
from store.people import lead as store
from store.tables.register import LocalAuthority

USAGE = "lead-notices AUTHORITY [off|lead|all], e.g. lead-notices Northshire all"
NO_SUCH_AUTHORITY = "There is no local authority by that name in the register."
MEANING = {
    store.LeadNotices.OFF: "nobody is told",
    store.LeadNotices.LEAD: "the child's lead professional is told",
    store.LeadNotices.ALL: "every practitioner currently working with the child is told",
}


async def lead_notices(ctx: Context, req: Request, session: AsyncSession) -> Result:
    words = req.args.split()
    if not words or len(words) > 2:
        raise UsageError("Name the local authority, and optionally off, lead or all")
    authority, value = words[0], (words[1].lower() if len(words) == 2 else None)
    known = (await session.execute(select(LocalAuthority.name).where(LocalAuthority.name == authority))).scalar()
    if known is None:
        # Not said back: it may be anything, at any length (only a known authority's name is shown).
        return Result(Reply(Outcome.INVALID, NO_SUCH_AUTHORITY), detail="no such authority")
    if value is None:
        current = await store.setting(session, authority)
        text = f"{authority}: {current.value} — when a child is looked up, {MEANING[current]}."
        return Result(Reply(Outcome.INFO, text), detail=f"{authority} {current.value}")
    if value not in store.LeadNotices._value2member_map_:
        raise UsageError("The setting is off, lead or all")
    chosen = store.LeadNotices(value)
    await store.set_setting(session, authority, chosen)
    text = f"{authority} is now {chosen.value}: when a child is looked up, {MEANING[chosen]}."
    return Result(Reply(Outcome.DONE, text), detail=f"{authority} {chosen.value}")


SPECS = (
    Spec(
        name="lead-notices",
        action=Action.LEAD_NOTICES,
        run=lead_notices,
        summary="who is told when a child of an authority is looked up (off, lead or all)",
        usage=USAGE,
        role=Role.ADMIN,
        writes=True,
        stepup=StepUp.FRESH,  # it widens or narrows who is told of every lookup in an authority
        audit_terms=False,
    ),
)
