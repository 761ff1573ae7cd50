"""Reading the audit log from the terminal: export, verify, checkpoint, subject access; and the
checkpoints that leave the host (a folder the scheduler writes, the HTTP endpoint a monitor polls).

Each command is audited through its ``Audit`` (``handlers.operator.common.audited``), and what
discloses the log is audited before anything is produced (fail closed: no event, no output).
Only the auditor's check against a published key (``verify_published``) writes nothing: it needs
no secret, runs on a copy elsewhere, and must work on a store it may not change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from handlers.context import Context
from handlers.lifecycle import flows
from handlers.operator.common import Audit, Refused
from handlers.operator.decommissioned import refuse_without_keys
from handlers.vocabulary import NO_SUCH_PRACTITIONER, Origin, plural
from store.audit import chain as audit_chain
from store.audit import log as audit_log
from store.audit import sar
from store.audit.log import EventFilter
from store.audit.sar import SarReport
from store.audit.signing import PublicKeyError, SigningKeyGone, parse_public_key, public_line
from store.audit.verify import Verdict, verify
from store.db import Database
from store.people import practitioners

EXPORT_FIELDS = audit_log.EXPORT_FIELDS
to_json_line = audit_log.to_json_line


@dataclass(frozen=True, slots=True)
class Export:
    """The events an export found (read as they are written out), and what its filter was."""

    events: AsyncIterator[dict[str, object]]
    actor_known: bool  # the --actor filter names a practitioner in the register

    def nothing_found(self, actor_id: str | None) -> str:
        """What to tell the operator when no event matched: the actor's id only when it is one
        (anything else typed there may be a child's name, and is not repeated)."""
        if actor_id and self.actor_known:
            return f"no audit events for actor {actor_id}"
        if actor_id:
            return f"no audit events for that actor: {NO_SUCH_PRACTITIONER}"
        return "no audit events match"


def _filter_detail(where: EventFilter, actor_known: bool) -> str:
    """The export's filter, for its audit event. An actor id is named only when it is in the
    register: anything else typed there (a child's name, by a slip) is never kept in the audit,
    which nothing destroys."""
    parts = [
        f"since {where.since.isoformat()}" if where.since else "",
        f"until {where.until.isoformat()}" if where.until else "",
        (f"actor {where.actor_id}" if actor_known else "an actor not in the register") if where.actor_id else "",
        "one child" if where.child_ref else "",
    ]
    return ", ".join(p for p in parts if p) or "everything"


async def export(
    ctx: Context,
    audit: Audit,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: str | None = None,
    child_ref: int | None = None,
) -> Export:
    """Audit the export, then the matching events in sequence order (sealed terms never included).
    ``until`` is exclusive: the command line turns a date given to it into the next day's start."""
    if since is not None and until is not None and since >= until:
        raise Refused("--since must be before --until: nothing could match", reason="empty range")
    tag = None
    if child_ref:  # the searches that had the child as a possible match too, while its key lives
        async with ctx.db.read() as session:
            tag = await ctx.sealer.candidate_tag(session, child_ref)
    where = EventFilter(since=since, until=until, actor_id=actor_id, child_ref=child_ref, candidate_tag=tag)
    audit.subjects = (child_ref,) if child_ref else ()
    actor_known = False
    if actor_id:
        async with ctx.db.read() as session:
            actor_known = bool(await practitioners.existing_ids(session, [actor_id]))
    await audit.done(_filter_detail(where, actor_known))
    return Export(audit_log.iter_events(ctx.db, where), actor_known)


def published_key(source: str, text: str) -> bytes:
    """A public key published earlier (read from ``source``), or Refused saying what is wrong."""
    try:
        return parse_public_key(text)
    except PublicKeyError as exc:
        raise Refused(f"{source}: {exc}", reason="not a public key") from None


def _local_public(ctx: Context) -> bytes:
    try:
        return ctx.signer.public
    except SigningKeyGone as exc:
        raise Refused(f"{exc} (--public-key FILE)", reason="signing key destroyed") from None


async def verify_chain(ctx: Context, audit: Audit, checkpoints: Sequence[tuple[str, str]] = ()) -> Verdict:
    """Re-walk the hash chain, also against checkpoints kept outside, each given as (source, text),
    with the public key held here; the verdict is audited before it is shown. (An auditor's check
    uses the key published earlier: ``verify_published``.)"""
    verdict = await verify(ctx.db, _local_public(ctx), _notes(checkpoints))
    audit.result_count = verdict.count
    found = verdict.finding
    agreed = f"{plural(verdict.checkpoints, 'checkpoint')} compared"
    await audit.done(f"intact, {agreed}" if found is None else f"altered: {found.problem} at seq {found.seq}, {agreed}")
    return verdict


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
            raise Refused(f"{source}: {exc}", reason="bad checkpoint") from None
    return supplied


async def public_key_line(ctx: Context, audit: Audit) -> str:
    """The public key that verifies checkpoints, as ``origin ed25519 base64`` (also after decommissioning)."""
    line = public_line(_local_public(ctx))
    await audit.done("public key")
    return line


async def checkpoint_note(ctx: Context, audit: Audit) -> str:
    """Sign a checkpoint of the chain now (and store it); the note to keep elsewhere. A
    decommissioning cut short after its certificate is finished first (its signing seed must not
    sign again), so this is then refused."""
    await flows.finish_destruction(ctx, ctx.clock.now(), origin=Origin.TERMINAL, who=audit.who)
    try:
        made = await audit_chain.make_checkpoint(ctx.db, ctx.signer, ctx.clock.now())
    except SigningKeyGone as exc:
        raise Refused(str(exc), reason="signing key destroyed") from None
    await audit.done(f"checkpoint at size {made.size}")
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


async def subject_access(ctx: Context, audit: Audit, child_ref: int, *, with_names: bool) -> SarReport:
    """Who (organisation, role; names if asked) touched a child, when — audited before it is shown.
    The reference is the event's subject even when no child holds it (yet): a child imported under
    it later finds in their own report that a report about their reference was produced."""
    refuse_without_keys(ctx)  # destroyed at decommissioning: nothing to report, no reference kept
    audit.subjects = (child_ref,)
    audit.detail = "with names" if with_names else "organisations and roles"
    report = await sar.subject_access(ctx.db, ctx.sealer, child_ref, ctx.clock.now(), with_names=with_names)
    if not report.in_register:
        audit.detail += "; not in the register"
    elif report.shielded:
        audit.detail += "; shielded: organisations, areas, names and purposes withheld"
    await audit.done(audit.detail)
    return report
