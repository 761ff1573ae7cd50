"""The child a command stopped before its handler names, by which the key of what is kept of it is chosen.

A gate that stops a command and keeps what was typed (the step-up gate: the command parked until
its code comes, and its terms in the challenged audit event) keeps it under the key of the child the
command names by reference (``Spec.names_child``), so both die with that child: the parked row under
the key its data key is wrapped under (its birth day's cohort key), the audit terms under that
cohort's terms key (store/audit/log.TermSealer, ``known``). Under the month's key, a backup taken
while the command waited kept text naming a destroyed child readable for two years. A command that
names no child here (a deny or a reply, by its request's or relay's id) is parked under a key
retention destroys within two days (store/people/credentials._seal_parked, which makes the choice
from what this finds).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.access.found import resolve as resolve_handle
from handlers.context import Context
from handlers.dispatch.spec import Request, Spec
from store.register import children


async def child_named(ctx: Context, spec: Spec, req: Request, session: AsyncSession) -> children.Named | None:
    """The child ``req``'s arguments name by reference (for a search's handle, the child the asker's
    own search found, if still theirs): its wrapped data key, or that it is destroyed. None when
    the command names no child, or a reference no child was ever registered at. One read by
    primary key (and, for a handle, one read of that search's event)."""
    ref = spec.names_child(req.args) if spec.names_child else None
    if isinstance(ref, str):
        ref = None if req.actor is None else await resolve_handle(session, ref, req.actor.practitioner_id, req.now)
    if ref is None:
        return None
    return await children.named(session, ctx.keys, ref)
