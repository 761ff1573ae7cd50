"""Notices are stored before delivery, so that none is lost if a front end is down."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from handlers.vocabulary import Button, Input, Notice, Platform, Principal, ThenEnrol
from store.db import DIALECT_INSERTS, dialect_insert
from store.delivery import drops
from store.keys.crypto import KeyRing
from store.prepared import Prepared
from store.register.children import first_held
from store.skew import ahead_after, due_then_ahead
from store.tables.delivery import Notice as NoticeRow
from store.tables.delivery import NoticeClaim
from store.tables.people import AccessGrant, AccessRequest, RelayMessage


def encode(notice: Notice) -> str:
    doc: dict[str, Any] = {"text": notice.text, "buttons": [asdict(b) for b in notice.buttons]}
    if notice.then_enrol is not None:  # its text tells them to send enrol (vocabulary.ThenEnrol): its lead
        doc["then_enrol"] = notice.then_enrol.lead
    return json.dumps(doc)


def decode(row: NoticeRow) -> Notice:
    doc = json.loads(row.body)
    buttons = tuple(Button(**{**b, "input": Input(**b["input"]) if b.get("input") else None}) for b in doc["buttons"])
    lead = doc.get("then_enrol")  # absent from a notice stored before it was kept, or asking nothing of the kind
    then_enrol = None if lead is None else ThenEnrol(lead)
    if then_enrol is not None and then_enrol.text != doc["text"]:
        # Stored by a version that worded it otherwise: delivered as written, unmarked, rather than
        # refused (which would stop the batch and every notice queued behind it).
        then_enrol = None
    account = _account(row.account)
    return Notice(row.recipient_id, row.kind, doc["text"], buttons, row.dedupe_key, account, then_enrol)


def _account(stored: str | None) -> Principal | None:
    """The chat account a notice is addressed to, as ``str(Principal)`` stored it (a Teams user
    id may hold a colon: it is last)."""
    if stored is None:
        return None
    platform, tenant, user_id = stored.split(":", 2)
    return Principal(Platform(platform), tenant, user_id)


# The notices that carry a child's reference, by their dedupe key (handlers/lead.py,
# handlers/access/notices.py, handlers/access/relay.py, and stand-ins' copies, which keep the key's
# front): a lookup's notice names the child itself; an access request's, a grant's and a relayed
# message's name the row that names it.
_LEAD_KEY = re.compile(r"lead:[^:]*:(?P<ref>[0-9]+):.*")
_ROW_KEY = re.compile(r"(?P<family>access|grant|relay):(?P<id>[0-9]+)(:.*)?")
_ROW_FAMILIES: dict[str, Any] = {"access": AccessRequest, "grant": AccessGrant, "relay": RelayMessage}


async def children_named(session: AsyncSession, notices: Sequence[Notice]) -> dict[str, int]:
    """The child each notice names, by dedupe key (a notice naming none is not in it).

    Stored with the notice (``notices.child_ref``), so that destroying the child deletes every
    notice that carries its reference, told who looked it up, who asked to see it and why it was
    refused, or who it was a lead professional for (``store.tables.child_rows``). A lookup's notice
    needs no query; the others one per family of rows."""
    found: dict[str, int] = {}
    ids: dict[str, dict[int, list[str]]] = {}
    for notice in notices:
        key = notice.dedupe_key or ""
        if (lead := _LEAD_KEY.fullmatch(key)) is not None:
            found[key] = int(lead["ref"])
        elif (row := _ROW_KEY.fullmatch(key)) is not None:
            ids.setdefault(row["family"], {}).setdefault(int(row["id"]), []).append(key)
    for family, keyed in ids.items():
        table = _ROW_FAMILIES[family]
        rows = await session.execute(select(table.id, table.child_ref).where(table.id.in_(sorted(keyed))))
        for row_id, ref in rows.all():
            found.update((key, ref) for key in keyed[row_id])
    return found


def _enqueue_one(insert: Any) -> Prepared:
    """One notice, unless its dedupe key is stored already: the new row's id, or no row."""
    table = NoticeRow.__table__
    columns = (
        "recipient_id",
        "kind",
        "body",
        "dedupe_key",
        "created_at",
        "not_before",
        "attempts",
        "account",
        "child_ref",
    )
    statement = insert(table).values({name: bindparam(name) for name in columns})
    return Prepared(statement.on_conflict_do_nothing(index_elements=[table.c.dedupe_key]).returning(table.c.id))


_ENQUEUE_ONE = {dialect: _enqueue_one(insert) for dialect, insert in DIALECT_INSERTS.items()}


def _enqueue_many(insert: Any) -> Any:
    """Notices as executemany parameters, those whose dedupe key is stored already left out: the
    new ones' keys back (one multi-row statement, "insertmanyvalues", compiled once)."""
    table = NoticeRow.__table__
    return insert(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key]).returning(table.c.dedupe_key)


_ENQUEUE_MANY = {dialect: _enqueue_many(insert) for dialect, insert in DIALECT_INSERTS.items()}


def _row(notice: Notice, now: datetime, named: dict[str, int]) -> dict[str, Any]:
    return {
        "recipient_id": notice.recipient_id,
        "kind": notice.kind,
        "body": encode(notice),
        "dedupe_key": notice.dedupe_key,
        "created_at": now,
        "not_before": now,
        "attempts": 0,
        "account": None if notice.account is None else str(notice.account),
        "child_ref": named.get(notice.dedupe_key or ""),
    }


class NoticeStore:
    """The notice outbox. ``enqueue`` joins the caller's transaction; a dedupe key makes it idempotent."""

    async def enqueue_new(self, session: AsyncSession, dated: Sequence[tuple[Notice, datetime]]) -> set[str]:
        """Store notices, each queued at its own time, in one statement; the dedupe keys of those
        that were new. Each must have a dedupe key (by which it is told apart)."""
        if not dated:
            return set()
        assert all(notice.dedupe_key for notice, _ in dated)
        named = await children_named(session, [notice for notice, _ in dated])
        rows = [_row(notice, at, named) for notice, at in dated]
        statement = _ENQUEUE_MANY[session.get_bind().dialect.name]
        return set((await session.execute(statement, rows)).scalars())

    async def enqueue(self, session: AsyncSession, notices: Sequence[Notice], now: datetime) -> int:
        """Store ``notices``; how many were new (one whose dedupe key is already stored is not)."""
        if not notices:
            return 0
        named = await children_named(session, notices)
        rows = [_row(n, now, named) for n in notices]
        if len(rows) == 1:  # the usual case (one lead told): a prepared insert
            return len(await _ENQUEUE_ONE[session.get_bind().dialect.name].all(session, rows[0]))
        # Core's insert with the rows as executemany parameters: SQLAlchemy sends them as one
        # multi-row statement ("insertmanyvalues") and compiles it once. ``.values(rows)`` would be
        # a statement with no cache key, compiled afresh on every lookup that tells a lead.
        table = NoticeRow.__table__
        stmt = dialect_insert(session)(table).on_conflict_do_nothing(index_elements=[table.c.dedupe_key])
        return len((await session.execute(stmt.returning(table.c.id), rows)).all())


def _post(insert: Any) -> Any:
    """Notices as executemany parameters; one whose dedupe key is stored and still pending takes
    the new text and time, one already delivered or dropped is left alone: the keys of those stored."""
    table = NoticeRow.__table__
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.dedupe_key],
        set_={"body": statement.excluded.body, "not_before": statement.excluded.not_before},
        where=table.c.delivered_at.is_(None) & table.c.dropped_at.is_(None),
    ).returning(table.c.dedupe_key)


_POST = {dialect: _post(insert) for dialect, insert in DIALECT_INSERTS.items()}


async def post(session: AsyncSession, notices: Sequence[Notice], now: datetime, not_before: datetime) -> set[str]:
    """Store notices (each with a dedupe key) due at ``not_before``, or rewrite those still
    pending under the same keys; the keys stored. A key missing from the answer names a notice
    already delivered or dropped: its new text needs a key of its own.

    For news that grows while work goes on: each step rewrites one held notice in its own
    transaction, so whatever has committed is told even if the work dies before it can say so."""
    if not notices:
        return set()
    assert all(notice.dedupe_key for notice in notices)
    named = await children_named(session, notices)
    rows = [{**_row(notice, now, named), "not_before": not_before} for notice in notices]
    return set((await session.execute(_POST[session.get_bind().dialect.name], rows)).scalars())


EMAIL_KIND = "email"
"""Notices of this kind go to the recipient's recorded secure email, not to chat: the chat outbox
leaves them for the operator's mailer, which takes them from ``bot.notify.emails_due`` (each with its
active recipient's recorded address) and records each sent with ``bot.notify.email_sent``."""


async def pending_email(session: AsyncSession, keys: KeyRing, limit: int = 100) -> list[tuple[int, Notice]]:
    """Email notices not yet sent, oldest first, whoever they are for: a mailer takes them through
    ``bot.notify.emails_due``, which leaves out (and closes) those whose recipient is not active.
    None naming a child destroyed whatever its row says (``pending``)."""
    due = select(NoticeRow).where(
        NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None), NoticeRow.kind == EMAIL_KIND
    )
    return [
        (row.id, decode(row)) for row in await first_held(session, keys, due, NoticeRow.child_ref, NoticeRow.id, limit)
    ]


HELD_AT_MOST = timedelta(hours=1)
"""The furthest ahead a notice is ever held (``not_before``): a retry's longest backoff
(``outbox.LONGEST_RETRY``), the longest wait a platform's Retry-After is honoured for
(``bot.delivery.WAIT_AT_MOST``), a retention run's notice held ``UNTOLD_AFTER``. One held further
than this and ``store.skew.CLOCK_SKEW`` was held by a clock ahead of this one (set years on, then put
right): it is due now, not at that clock's date."""


def claim_held(claimed_until: Any, now: datetime) -> ColumnElement[bool]:
    """A worker's claim on a notice (``NoticeClaim.claimed_until``) still holds at ``now``: its time
    has not run out, and it was not made by a clock ahead (held further than any hold, at most
    ``HELD_AT_MOST``): a worker that died holding one while the host's clock read years on does not
    keep its notice from being sent, or dropped, until that date."""
    return (claimed_until > now) & (claimed_until <= ahead_after(now, HELD_AT_MOST))  # type: ignore[no-any-return]


async def pending(
    session: AsyncSession, keys: KeyRing, now: datetime, limit: int = 100, recipients: Sequence[str] | None = None
) -> list[tuple[int, Notice]]:
    """Chat notices due, oldest first; none naming a child destroyed whatever its row says
    (``destroyed_since``): on a store restored from a backup older than a child's destruction, a
    notice queued about it (who asked to see it, a message about it) is never delivered; it stays
    unsent until the next retention run deletes it with the child's rows (``notices.child_ref``).

    None queued after a notice to the same recipient that waits for a retry (``waiting_before``):
    a recipient's notices are sent in the order they were queued, so after an outage nobody reads
    "your access has ended" before the "approved" that failed first, and a fresh notice does not
    overtake one whose backoff has grown. Left out here, before the batch is counted, so that
    notices held back never fill a pass. With ``recipients``: theirs only.

    Those held by a clock ahead (``HELD_AT_MOST``) are due too, after the others: each read through
    its own range of ``ix_notices_pending`` (an OR of the two would read every undelivered notice)."""
    first = waiting_before(now)

    async def read(held: Any, n: int) -> list[NoticeRow]:
        due = (
            select(NoticeRow)
            .outerjoin(first, first.c.recipient_id == NoticeRow.recipient_id)
            .where(
                NoticeRow.delivered_at.is_(None),
                NoticeRow.dropped_at.is_(None),
                held,
                NoticeRow.kind != EMAIL_KIND,
                or_(first.c.first_id.is_(None), NoticeRow.id < first.c.first_id),
            )
        )
        if recipients is not None:
            due = due.where(NoticeRow.recipient_id.in_(list(recipients)))
        return list(await first_held(session, keys, due, NoticeRow.child_ref, NoticeRow.id, n))

    now_due, ahead = NoticeRow.not_before <= now, NoticeRow.not_before > ahead_after(now, HELD_AT_MOST)
    rows = await due_then_ahead(read, now_due, ahead, limit)
    return [(row.id, decode(row)) for row in rows]


def waiting_before(now: datetime) -> Any:
    """Each recipient's first chat notice waiting for a retry at ``now`` (id ``first_id``): tried
    and failed (``attempts``), not due again yet, and taken by no platform so far (one every account
    must see that some platform has taken is read already: it holds nothing back). A notice held
    unsent on purpose until a time (``post``) was never tried and holds nothing back either; nor
    does one held by a clock ahead (``HELD_AT_MOST``), which is due. Read through
    ``ix_notices_pending`` (undelivered notices due later: few, but for an outage)."""
    waiting = aliased(NoticeRow)
    return (
        select(waiting.recipient_id, func.min(waiting.id).label("first_id"))
        .where(
            waiting.delivered_at.is_(None),
            waiting.not_before > now,
            waiting.not_before <= ahead_after(now, HELD_AT_MOST),
            waiting.dropped_at.is_(None),
            waiting.attempts > 0,
            waiting.reached.is_(None),
            waiting.kind != EMAIL_KIND,
        )
        .group_by(waiting.recipient_id)
        .subquery()
    )


DECIDED = "not sent: decided before it was delivered"  # recorded in last_error: names nobody
CLOSED = "not sent: closed undecided before it was delivered"  # expired, or its requester left
ENDED = "not sent: the grant ended before it was delivered"  # an approval the holder would read too late
HANDED_ON = "not sent: passed to someone else before it was delivered"  # a relayed message handed on
# A relayed message's recipient who can no longer take it while another still can (nothing handed on).
NO_LONGER_THEIRS = "not sent: its recipient could no longer take it before it was delivered"
NOT_ACTIVE = "not sent: recipient not active"  # its recipient made inactive (handlers/stand_in.py)
DESTROYED = "not sent: the child's record was destroyed"  # the notice names a child retention destroyed


async def asked_about(session: AsyncSession, kind: str, child_ref: int, keys_from: str) -> set[str]:
    """Everyone a ``kind`` notice whose dedupe key starts with ``keys_from`` (``access:12:``) was
    addressed to, sent or not: who has been asked already. Read through the ``child_ref`` index
    (such a notice names its child, ``children_named``)."""
    result = await session.execute(
        select(NoticeRow.recipient_id).where(
            NoticeRow.child_ref == child_ref,
            NoticeRow.kind == kind,
            NoticeRow.dedupe_key.startswith(keys_from, autoescape=True),
        )
    )
    return set(result.scalars())


async def drop_decided(session: AsyncSession, kind: str, keys_from: str, now: datetime, why: str = DECIDED) -> int:
    """The undelivered notices of ``kind`` asking for a decision that has now been made, or can no
    longer be (their dedupe keys start with ``keys_from``, e.g. ``access:12:``): dropped, recorded
    as such (``why``), so that no duty manager is asked, after it, to decide what someone already
    has or nobody can. Read through ``ix_notices_pending`` (undelivered notices only). Returns how many
    were closed: one a worker is sending is closed by it, with ``why``, unless the send goes through
    (``_drop``)."""
    return await _drop(session, kind, NoticeRow.dedupe_key.startswith(keys_from, autoescape=True), now, why)


async def drop_keyed(session: AsyncSession, kind: str, dedupe_keys: Collection[str], now: datetime, why: str) -> int:
    """The undelivered notices of ``kind`` with exactly these dedupe keys, dropped as ``drop_decided``
    drops them (a relayed message's notices to recipients it no longer belongs to). Returns how many."""
    if not dedupe_keys:
        return 0
    return await _drop(session, kind, NoticeRow.dedupe_key.in_(sorted(dedupe_keys)), now, why)


async def waiting_keyed(session: AsyncSession, kind: str, dedupe_keys: Collection[str]) -> set[str]:
    """Which of these dedupe keys name a notice of ``kind`` still waiting to be sent (neither
    delivered nor dropped): read through the dedupe key's unique index, so that a scheduled look
    need not take the write lock to drop nothing (``drop_keyed``)."""
    return await _keyed(session, kind, dedupe_keys, NoticeRow.dropped_at.is_(None))


async def dropped_keyed(
    session: AsyncSession, kind: str, dedupe_keys: Collection[str], why: Collection[str]
) -> set[str]:
    """Which of these dedupe keys name a notice of ``kind`` dropped unsent for one of the reasons
    ``why``: read through the dedupe key's unique index (a scheduled look takes the write lock only
    when one is to be sent after all, ``renew``)."""
    return await _keyed(
        session, kind, dedupe_keys, NoticeRow.dropped_at.is_not(None), NoticeRow.last_error.in_(sorted(why))
    )


async def closed_unsent_keyed(
    session: AsyncSession, kind: str, dedupe_keys: Collection[str], but: Collection[str]
) -> set[str]:
    """Which of these dedupe keys name a notice of ``kind`` closed unsent for any reason but those
    ``but`` names (its week ran out unsent: no linked platform, a platform refusing it …): its
    recipient was never reached with it. Read through the dedupe key's unique index."""
    return await _keyed(
        session, kind, dedupe_keys, NoticeRow.dropped_at.is_not(None), NoticeRow.last_error.not_in(sorted(but))
    )


async def _keyed(
    session: AsyncSession, kind: str, dedupe_keys: Collection[str], *where: ColumnElement[bool]
) -> set[str]:
    """Which of these dedupe keys name an undelivered notice of ``kind`` that also meets ``where``:
    one read through the dedupe key's unique index."""
    if not dedupe_keys:
        return set()
    result = await session.execute(
        select(NoticeRow.dedupe_key).where(
            NoticeRow.dedupe_key.in_(sorted(dedupe_keys)),
            NoticeRow.kind == kind,
            NoticeRow.delivered_at.is_(None),
            *where,
        )
    )
    return {key for key in result.scalars() if key is not None}


async def renew(session: AsyncSession, notices: Sequence[Notice], now: datetime, why: Collection[str]) -> set[str]:
    """Send after all those of these notices whose dedupe key names one dropped unsent for one of
    the reasons ``why`` (its recipient could no longer take what it carried, and now can again):
    reopened with the new text as if queued ``now`` (its week counts afresh, ``bot.notify``), never
    one delivered or dropped for another reason. The keys reopened; one statement per distinct
    text (a relayed message's notices share theirs), none when no key is given.

    The outbox refuses a key it holds (``enqueue``), so a recipient told nothing because the
    message was taken from them would otherwise never be told when it comes back to them."""
    by_body: dict[str, list[str]] = {}
    for notice in notices:
        assert notice.dedupe_key
        by_body.setdefault(encode(notice), []).append(notice.dedupe_key)
    renewed: set[str] = set()
    for body, dedupe_keys in sorted(by_body.items()):
        result = await session.execute(
            update(NoticeRow)
            .where(
                NoticeRow.dedupe_key.in_(sorted(dedupe_keys)),
                NoticeRow.delivered_at.is_(None),
                NoticeRow.dropped_at.is_not(None),
                NoticeRow.last_error.in_(sorted(why)),
            )
            .values(
                body=body,
                created_at=now,
                not_before=now,
                dropped_at=None,
                attempts=0,
                last_error=None,
                reached=None,
            )
            .returning(NoticeRow.dedupe_key)
            .execution_options(synchronize_session=False)
        )
        renewed.update(key for key in result.scalars() if key is not None)
    return renewed


async def _drop(session: AsyncSession, kind: str, keyed: ColumnElement[bool], now: datetime, why: str) -> int:
    """Drop the undelivered notices of ``kind`` that ``keyed`` names; how many were closed here.

    Claim-first, as ``store.delivery.outbox.close_expired`` closes: one statement claims each
    (taking over a claim whose hold ran out) and, on one a worker holds because it is sending it,
    leaves ``drop_wanted`` (``why``) instead; those claimed here are closed and let go. The worker
    records a send that went through as delivered, and closes any other with ``why``
    (``outbox.let_go``), so that a notice dropped mid-send is neither "not sent" while it is read,
    nor put back in the queue to go out late after an outage. On PostgreSQL a worker claiming one
    meanwhile waits for this transaction, then finds it closed; one recording its send waits for
    the claim's row, then reads the wish. The mark is on the claim, not the notice, so this never
    waits for a notice's row that a worker holds while it records (no deadlock between them: each
    takes claims, by id, before notices).

    One statement when nothing is to be closed here, three otherwise; the notices are found as
    before, through ``ix_notices_pending`` and the dedupe key. Each closed here is logged and
    counted once the caller commits (``drops.close``)."""
    claims = NoticeClaim.__table__
    marker = f"dropping:{uuid.uuid4().hex}"
    held = claim_held(claims.c.claimed_until, now)
    take = dialect_insert(session)(claims).from_select(
        [claims.c.notice_id, claims.c.claimed_by, claims.c.claimed_until],
        select(NoticeRow.id, literal(marker, String), literal(now, claims.c.claimed_until.type))
        .where(NoticeRow.delivered_at.is_(None), NoticeRow.dropped_at.is_(None), NoticeRow.kind == kind, keyed)
        .order_by(NoticeRow.id),
    )
    take = take.on_conflict_do_update(
        index_elements=[claims.c.notice_id],
        set_={
            "claimed_by": case((held, claims.c.claimed_by), else_=take.excluded.claimed_by),
            "claimed_until": case((held, claims.c.claimed_until), else_=take.excluded.claimed_until),
            "drop_wanted": case((held, func.coalesce(claims.c.drop_wanted, literal(why, String))), else_=None),
        },
    ).returning(claims.c.notice_id, claims.c.claimed_by)
    ours = sorted(int(row.notice_id) for row in await session.execute(take) if row.claimed_by == marker)
    if not ours:
        return 0
    closed = await drops.close(session, NoticeRow.id.in_(ours), now, why, attempted=False)
    await session.execute(delete(NoticeClaim).where(NoticeClaim.notice_id.in_(ours)))
    return len(closed)


SENT_BODY = json.dumps({"text": "", "buttons": [], "sent": True})
"""What a delivered notice keeps instead of its text: nothing reads it once sent, and the text may
hold what a person typed (a denial's reason, a relayed message's first words) that must not lie in
the store in clear for ``KEEP_CLOSED``, nor in every backup taken meanwhile. Its times, attempts
and key stay for an operator looking into its delivery; pruning then empties or deletes it."""


async def mark_delivered(session: AsyncSession, notice_id: int, now: datetime) -> None:
    await session.execute(
        update(NoticeRow)
        .where(NoticeRow.id == notice_id, NoticeRow.dropped_at.is_(None))
        .values(delivered_at=now, body=SENT_BODY)
    )


# -- pruning -----------------------------------------------------------------------------------

KEEP_CLOSED = timedelta(days=30)
"""How long a notice is kept once delivered or dropped. By then nothing it was about can still be
acted on (a request lives 24 hours, a grant 7 days at most, a notice waits 7 days for a link), and
an operator has had a month to look into a complaint about its delivery (its attempts, last error
and times); what happened stays in the audit log. After that the copy only lengthens how long a
backup holds a reference beside a looker's contact."""

PRUNED_BODY = json.dumps({"text": "", "buttons": []})
"""What a pruned notice that must keep its dedupe key is left with instead of its text."""


def dies_with_its_day(dedupe_key: str | None) -> bool:
    """Whether a closed notice can go altogether, key and all, once ``KEEP_CLOSED`` has passed.

    A notice without a key was never deduplicated. A lookup's key names its day (``lead:<day>:…``,
    ``handlers.lead.dedupe_key``), so no later lookup can raise it again, and a lookup's notice has
    no stand-in (``handlers.stand_in``). Every other key is long-lived: a decommissioning's
    "switched off" is raised on every tick until destruction, a stand-in is keyed as its recipient's
    own copy would have been, whenever it is made. Its row stays, emptied (``PRUNED_BODY``), so
    that the outbox still refuses the key: pruning never sends a notice twice."""
    return dedupe_key is None or _LEAD_KEY.fullmatch(dedupe_key) is not None


def closed_between(start: datetime | None, end: datetime) -> ColumnElement[bool]:
    """Notices delivered or dropped in [``start``, ``end``) (no lower bound without ``start``),
    through ``ix_notices_pending`` (``delivered_at`` first) and ``ix_notices_dropped_at``.

    Asked with both bounds and no LIMIT: SQLite then searches both indexes (a "multi-index OR");
    with ``ORDER BY id LIMIT`` it walked the primary key instead, the whole table past the range."""
    delivered, dropped = NoticeRow.delivered_at < end, NoticeRow.dropped_at < end
    if start is not None:
        delivered &= NoticeRow.delivered_at >= start
        dropped &= NoticeRow.dropped_at >= start
    return or_(delivered, dropped)


async def closed_in(session: AsyncSession, start: datetime, end: datetime) -> list[tuple[int, str | None]]:
    """The id and dedupe key of every notice closed in [``start``, ``end``), by id."""
    found = select(NoticeRow.id, NoticeRow.dedupe_key).where(closed_between(start, end)).order_by(NoticeRow.id)
    return [(int(row.id), row.dedupe_key) for row in await session.execute(found)]


async def first_closed(session: AsyncSession, start: datetime | None, end: datetime) -> datetime | None:
    """When the first notice closed in [``start``, ``end``) was closed (None: none was): two
    index lookups, so that a prune steps over days when none was."""
    firsts = []
    for column in (NoticeRow.delivered_at, NoticeRow.dropped_at):
        window = column < end if start is None else (column >= start) & (column < end)
        firsts.append((await session.execute(select(func.min(column)).where(window))).scalar_one_or_none())
    return min((moment for moment in firsts if moment is not None), default=None)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What ``prune`` did: rows deleted, and rows emptied down to their dedupe key."""

    deleted: int = 0
    emptied: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.deleted + other.deleted, self.emptied + other.emptied)


async def prune(session: AsyncSession, closed: Sequence[tuple[int, str | None]]) -> Pruned:
    """Prune these closed notices (id and dedupe key, as ``closed_in`` gives them): those that
    ``dies_with_its_day`` are deleted, the others keep their key and bookkeeping, their text and
    chat account gone. Two statements whatever the number; the deleted bytes are zeroed by
    SQLite's secure_delete and vacuumed by retention's compaction."""
    gone = [notice_id for notice_id, key in closed if dies_with_its_day(key)]
    kept = [notice_id for notice_id, key in closed if not dies_with_its_day(key)]
    deleted = emptied = 0
    if gone:
        deleted = _count(await session.execute(delete(NoticeRow).where(NoticeRow.id.in_(gone))))
    if kept:
        emptied = _count(
            await session.execute(
                update(NoticeRow)
                .where(NoticeRow.id.in_(kept), NoticeRow.body != PRUNED_BODY)
                .values(body=PRUNED_BODY, account=None)
                .execution_options(synchronize_session=False)
            )
        )
    return Pruned(deleted, emptied)


async def count_closed(session: AsyncSession, start: datetime | None, end: datetime) -> int:
    """How many notices were closed in [``start``, ``end``) (a dry run's count of what would go)."""
    found = select(func.count()).select_from(NoticeRow).where(closed_between(start, end))
    return int((await session.execute(found)).scalar_one())


def _count(result: Any) -> int:
    return int(result.rowcount or 0)
