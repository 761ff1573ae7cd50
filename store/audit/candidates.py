"""Possible matches: the children an ambiguous search had as weak candidates.

Such a search's audit event records its candidates in its ``detail`` as tags that only each child's
own data key computes (``candidate_tag``), never their references. The event is hashed into the
chain and never rewritten, so the tags are also filed in ``audit_candidates`` (tag, event sequence
number), an index a subject access report or an export about one child reads instead of scanning
every ambiguous search's detail:

- ``file``: every event's tags, by ``store.audit.log.append``, in the transaction that writes it
  (the one place events are written, so none is left out);
- ``refile``: a corrected date of birth gives the child a fresh data key and so a new tag
  (``store.register.children.rekey``); the old tag's events are filed under the new one too, in
  the same transaction, so the child's report still shows them;
- ``backfill``: the events written before the table existed (its migration).

The table holds tags and sequence numbers only, and is append-only as the events are. Once a
child's key is destroyed nobody can compute any of its tags, old or new, so its rows point at
nothing anyone can name, and no report or export finds them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection, Select, Table, bindparam, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import Action, Outcome
from store.keys.crypto import child_aad
from store.tables.audit import AuditCandidate, AuditEvent

if TYPE_CHECKING:  # store.audit.log imports this module
    from store.audit.log import AuditRecord

CANDIDATES_AT_MOST = 5
"""How many of an ambiguous search's candidates (heaviest first) its event records."""
CANDIDATES_PREFIX = "possible matches: "
"""How an ambiguous search's event ``detail`` starts when it records candidates, then their tags."""
_CANDIDATE_LABEL = b"signpost:audit-candidate:"

_CANDIDATES = cast(Table, AuditCandidate.__table__)
_EVENTS = cast(Table, AuditEvent.__table__)
BACKFILL_CHUNK = 5000  # events read, and their rows inserted, at a time


def candidate_tag(data_key: bytes, ref: int) -> str:
    """A child's pseudonymous tag as a search's possible match: HMAC-SHA256 under the child's own
    data key (domain-separated from everything else that key does), 64 bits in hex.

    Not the reference, as an answered search's subject is: a child whose data key is destroyed
    (at 24, or a correction that destroys it) leaves tags nothing can compute again, so neither
    the store, the audit export nor a backup taken after can say the child was ever a candidate,
    while the event (and its place in the hash chain) stays whole. The same child always gets the
    same tag while its key lives (a subject access report finds its events by it); a new data key
    (``children.rekey``, after a corrected date of birth) gives a new tag, and ``refile`` files
    the earlier events under it, so they are still found."""
    return hmac.new(data_key, _CANDIDATE_LABEL + child_aad(ref), hashlib.sha256).hexdigest()[:16]


def candidates_detail(tags: Sequence[str]) -> str:
    """An ambiguous search event's ``detail``: its candidates' tags, sorted (not in rank order), or ""."""
    return CANDIDATES_PREFIX + " ".join(sorted(tags)) if tags else ""


def tags_in(action: str, outcome: str, detail: str | None) -> list[str]:
    """The tags an event records as possible matches (none unless it is an ambiguous search)."""
    if action != Action.SEARCH.value or outcome != Outcome.AMBIGUOUS.value:
        return []
    if not detail or not detail.startswith(CANDIDATES_PREFIX):
        return []
    return list(dict.fromkeys(detail[len(CANDIDATES_PREFIX) :].split()))


def _rows(events: Iterable[tuple[int, str, str, str | None]]) -> list[dict[str, object]]:
    """The rows filing ``events``, each given as (seq, action, outcome, detail)."""
    return [
        {"tag": tag, "seq": seq} for seq, action, outcome, detail in events for tag in tags_in(action, outcome, detail)
    ]


async def file(session: AsyncSession, seqs: Sequence[int], events: Sequence[AuditRecord]) -> int:
    """File the possible matches of ``events`` (just inserted as ``seqs``), and the children they
    named without showing (``AuditRecord.named``), in ``session``'s transaction; returns how many
    rows. Nothing is written for a batch without any."""
    rows = _rows((seq, e.action, e.outcome, e.detail) for seq, e in zip(seqs, events, strict=True))
    rows += [{"tag": tag, "seq": seq} for seq, e in zip(seqs, events, strict=True) for tag in e.named]
    if rows:
        await session.execute(insert(_CANDIDATES), rows)
    return len(rows)


def possible_match_seqs(tag: str) -> Select[tuple[int]]:
    """The sequence numbers of the searches that had the child of ``tag`` as a possible match
    (an index lookup: the table's key starts with the tag)."""
    return select(_CANDIDATES.c.seq).where(_CANDIDATES.c.tag == tag)


async def refile(session: AsyncSession, old_tag: str, new_tag: str) -> None:
    """File every event of ``old_tag`` under ``new_tag`` too (a child's fresh data key), in
    ``session``'s transaction: one statement, nothing read into the process."""
    statement = insert(_CANDIDATES).from_select(
        ["tag", "seq"],
        select(literal(new_tag, _CANDIDATES.c.tag.type), _CANDIDATES.c.seq).where(_CANDIDATES.c.tag == old_tag),
    )
    await session.execute(statement)


def backfill(connection: Connection, chunk: int = BACKFILL_CHUNK) -> int:
    """File the possible matches of every event already written (the table's migration, on its
    synchronous connection), ``chunk`` events at a time in sequence order; returns how many rows.
    Only ambiguous searches are read (the events' details are left as they are)."""
    events = _EVENTS.c
    query = (
        select(events.seq, events.action, events.outcome, events.detail)
        .where(
            events.action == Action.SEARCH.value,
            events.outcome == Outcome.AMBIGUOUS.value,
            events.detail.startswith(CANDIDATES_PREFIX, autoescape=True),
            events.seq > bindparam("after"),
        )
        .order_by(events.seq)
        .limit(chunk)
    )
    after, filed = 0, 0
    while True:
        found = connection.execute(query, {"after": after}).all()
        if not found:
            return filed
        rows = _rows((row.seq, row.action, row.outcome, row.detail) for row in found)
        if rows:
            connection.execute(insert(_CANDIDATES), rows)
        filed += len(rows)
        after = found[-1].seq
