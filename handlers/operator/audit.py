"""Reading the audit log from the terminal: export, verify, checkpoint, subject access; and the
checkpoints that leave the host (a folder the scheduler writes, the HTTP endpoint a monitor polls).

An export and a subject access report disclose what the log holds, so each is audited — before
anything is produced (fail closed: no event, no output). Verifying and checkpointing only read
the chain and sign its head; they write no event, so that checking the log never changes it.
Verifying needs only the public key, so it works after decommissioning destroyed every secret.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

from handlers.context import Context
from handlers.operator.common import Refused, record, terminal_event
from handlers.vocabulary import Action
from store.audit import chain as audit_chain
from store.audit import log as audit_log
from store.audit import sar
from store.audit.log import EventFilter
from store.audit.sar import SarReport
from store.audit.signing import PublicKeyError, SigningKeyGone, parse_public_key, public_line
from store.audit.verify import Verdict, verify
from store.db import Database

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


def published_key(source: str, text: str) -> bytes:
    """A public key published earlier (read from ``source``), or Refused saying what is wrong."""
    try:
        return parse_public_key(text)
    except PublicKeyError as exc:
        raise Refused(f"{source}: {exc}") from None


def _local_public(ctx: Context) -> bytes:
    try:
        return ctx.signer.public
    except SigningKeyGone as exc:
        raise Refused(f"{exc} (--public-key FILE)") from None


async def verify_chain(
    ctx: Context, checkpoints: Sequence[tuple[str, str]] = (), public_key: tuple[str, str] | None = None
) -> Verdict:
    """Re-walk the hash chain, also against checkpoints kept outside, each given as (source, text).

    Signatures are checked with ``public_key`` (source, text) — the key published earlier: what an
    auditor should use — or else with the public key held here."""
    if public_key is not None:
        return await verify_published(ctx.db, checkpoints, public_key)
    return await verify(ctx.db, _local_public(ctx), _notes(checkpoints))


async def verify_published(
    db: Database, checkpoints: Sequence[tuple[str, str]], public_key: tuple[str, str]
) -> Verdict:
    """The auditor's check: the chain against checkpoints kept outside, signatures against the key
    published earlier. Nothing of the key file is needed, so it runs on a copy, elsewhere, by
    someone who holds no secret of this Signpost."""
    return await verify(db, published_key(*public_key), _notes(checkpoints))


def _notes(checkpoints: Sequence[tuple[str, str]]) -> list[audit_chain.Checkpoint]:
    supplied = []
    for source, text in checkpoints:
        try:
            supplied.append(audit_chain.parse_note(text))
        except audit_chain.CheckpointError as exc:
            raise Refused(f"{source}: {exc}") from None
    return supplied


def public_key_line(ctx: Context) -> str:
    """The public key that verifies checkpoints, as ``origin ed25519 base64`` (also after decommissioning)."""
    return public_line(_local_public(ctx))


async def checkpoint_note(ctx: Context) -> str:
    """Sign a checkpoint of the chain now (and store it); the note to keep elsewhere."""
    try:
        made = await audit_chain.make_checkpoint(ctx.db, ctx.signer, ctx.clock.now())
    except SigningKeyGone as exc:
        raise Refused(str(exc)) from None
    return made.to_note(ctx.signer.public)


async def fresh_checkpoint_note(ctx: Context) -> str | None:
    """A checkpoint of the head as it is now, signed now (for a monitor); None once nothing can sign."""
    if not ctx.signer.can_sign:
        return None
    made = await audit_chain.fresh_checkpoint(ctx.db, ctx.signer, ctx.clock.now())
    return made.to_note(ctx.signer.public)


async def export_checkpoint(ctx: Context, folder: Path) -> Path | None:
    """Sign (and store) a checkpoint and write it to ``folder`` as a new file, for the operator to
    ship off the host; None when nothing was appended since the newest file there, or nothing can sign."""
    if not ctx.signer.can_sign:
        return None
    made = await audit_chain.make_checkpoint(ctx.db, ctx.signer, ctx.clock.now())
    return audit_chain.export_note(folder, made, ctx.signer.public)


async def subject_access(ctx: Context, who: str, child_ref: int, *, with_names: bool) -> SarReport:
    """Who (organisation, role; names if asked) touched a child, when — audited first."""
    detail = "with names" if with_names else "organisations and roles"
    await record(ctx, terminal_event(Action.SAR, ctx.clock.now(), who, subjects=(child_ref,), detail=detail))
    return await sar.subject_access(ctx.db, ctx.sealer, child_ref, ctx.clock.now(), with_names=with_names)
