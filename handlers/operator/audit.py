"""Reading the audit log from the terminal: export, verify, checkpoint, subject access.

An export and a subject access report disclose what the log holds, so each is audited — before
anything is produced (fail closed: no event, no output). Verifying and checkpointing only read
the chain and sign its head; they write no event, so that checking the log never changes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from handlers.context import Context
from handlers.operator.common import Refused, record, terminal_event
from handlers.vocabulary import Action
from store.audit import chain as audit_chain
from store.audit import log as audit_log
from store.audit import sar
from store.audit.log import EventFilter
from store.audit.sar import SarReport
from store.audit.verify import Verdict, verify

EXPORT_FIELDS = audit_log.EXPORT_FIELDS
to_json_line = audit_log.to_json_line


def _filter_detail(where: EventFilter) -> str:
    parts = [
        f"since {where.since.isoformat()}" if where.since else "",
        f"until {where.until.isoformat()}" if where.until else "",
        f"actor {where.actor_id}" if where.actor_id else "",
        "one child" if where.child_ref else "",
    ]
    return ", ".join(p for p in parts if p) or "everything"


async def export(
    ctx: Context,
    who: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: str | None = None,
    child_ref: int | None = None,
) -> AsyncIterator[dict[str, object]]:
    """Audit the export, then the matching events in sequence order (sealed terms never included)."""
    where = EventFilter(since=since, until=until, actor_id=actor_id, child_ref=child_ref)
    subjects = (child_ref,) if child_ref else ()
    await record(
        ctx, terminal_event(Action.EXPORT, ctx.clock.now(), who, subjects=subjects, detail=_filter_detail(where))
    )
    return audit_log.iter_events(ctx.db, where)


async def verify_chain(ctx: Context, checkpoint: tuple[str, str] | None = None) -> Verdict:
    """Re-walk the hash chain, also against a checkpoint kept outside, given as (source, text)."""
    supplied = []
    if checkpoint is not None:
        source, text = checkpoint
        try:
            supplied.append(audit_chain.parse_note(text))
        except audit_chain.CheckpointError as exc:
            raise Refused(f"{source}: {exc}") from None
    return await verify(ctx.db, ctx.keys, supplied)


def public_key_line(ctx: Context) -> str:
    """The public key that verifies checkpoints, as ``origin ed25519 base64``."""
    public = audit_chain.public_key_bytes(ctx.keys)
    return f"{audit_chain.origin_for(ctx.keys)} ed25519 {audit_chain.b64(public)}"


async def checkpoint_note(ctx: Context) -> str:
    """Sign a checkpoint of the chain now; the note to keep elsewhere."""
    made = await audit_chain.make_checkpoint(ctx.db, ctx.keys, ctx.clock.now())
    return made.to_note(audit_chain.public_key_bytes(ctx.keys))


async def subject_access(ctx: Context, who: str, child_ref: int, *, with_names: bool) -> SarReport:
    """Who (organisation, role; names if asked) touched a child, when — audited first."""
    detail = "with names" if with_names else "organisations and roles"
    await record(ctx, terminal_event(Action.SAR, ctx.clock.now(), who, subjects=(child_ref,), detail=detail))
    return await sar.subject_access(ctx.db, ctx.sealer, child_ref, ctx.clock.now(), with_names=with_names)
