"""`lead-notices AUTHORITY [off|lead|all]`: who is told when a child of the authority is looked up.

An admin sets it per local authority (default: the lead professional); without a value it says the
current setting. The authority is read in any case and spacing ("west vale", ``handlers.authorities``).
Audited like every command; the change and its event commit together.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import authorities
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp, parsed_by
from handlers.grammar import UsageError
from handlers.vocabulary import Action, Outcome, Reply, Role
from store.people import lead as store

USAGE = "lead-notices AUTHORITY [off|lead|all], e.g. lead-notices Northshire all"
MEANING = {
    store.LeadNotices.OFF: "nobody is told",
    store.LeadNotices.LEAD: "the child's lead professional is told",
    store.LeadNotices.ALL: "every practitioner currently working with the child is told",
}


def _named(args: str) -> None:
    """``UsageError`` when no authority is named (``Spec.check``: answered before any code is asked for)."""
    if not args.split():
        raise UsageError("Name the local authority, and optionally off, lead or all")


async def lead_notices(ctx: Context, req: Request, session: AsyncSession) -> Result:
    _named(req.args)
    words = req.args.split()
    *named, last = words
    value = last.lower() if named and last.lower() in store.LeadNotices._value2member_map_ else None
    names = await authorities.known(session)
    # The authority's name may have spaces ("West Vale"): all the words but a setting after them.
    authority = authorities.find(names, " ".join(named if value else words))
    if authority is None:
        if named and authorities.find(names, " ".join(named)) is not None:
            raise UsageError("The setting is off, lead or all")  # "Northshire sometimes"
        if _setting_then_more(names, named):  # "Northshire off now": not "no local authority by that name"
            raise UsageError(
                "Give the local authority and at most one setting, off, lead or all, with nothing after it"
            )
        # Not said back: it may be anything, at any length (only the known authorities' names are shown).
        return Result(Reply(Outcome.INVALID, authorities.unknown(names)), detail="no such authority")
    if value is None:
        current = await store.setting(session, authority)
        text = f"{authority}: {current.value} — when a child is looked up, {MEANING[current]}."
        return Result(Reply(Outcome.INFO, text), detail=f"{authority} {current.value}")
    chosen = store.LeadNotices(value)
    await store.set_setting(session, authority, chosen)
    text = f"{authority} is now {chosen.value}: when a child is looked up, {MEANING[chosen]}."
    return Result(Reply(Outcome.DONE, text), detail=f"{authority} {chosen.value}")


def _setting_then_more(names: list[str], named: list[str]) -> bool:
    """Whether the words before the last are an authority and a setting (a word more after a whole command)."""
    *authority, setting = named or [""]
    return (
        bool(authority)
        and setting.lower() in store.LeadNotices._value2member_map_
        and authorities.find(names, " ".join(authority)) is not None
    )


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
        check=parsed_by(_named),
    ),
)
