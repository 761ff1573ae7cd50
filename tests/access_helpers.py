"""Shared steps for the access-control tests.

Every approve/deny goes through ``decide`` and every search that must show signposts through
``search_as``, so the step-up (TOTP) can be added in one place: ``step_up`` is that place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import func, select

from bot.app import Signpost
from handlers.vocabulary import Notice, Principal, Reply
from store.delivery.notices import decode
from store.register.feeds import Feed, import_feeds
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice as NoticeRow
from tests.factories import PRACTITIONERS_HEADER, load_standard, say
from tests.stepup_helpers import answer_challenges, ensure_enrolled, say_fresh

# Southvale (the shielded child's authority) gets two duty managers; DM01 is Northshire's.
_SOUTHVALE_DM = "Duty manager,Southvale Children's Services,Southvale"
EXTRA_PRACTITIONERS = f"""{PRACTITIONERS_HEADER}
DM02,Jo,Bell,{_SOUTHVALE_DM},0113 496 0100,jo.bell@southvale.example,duty_manager;practitioner
DM03,Ray,Lowe,{_SOUTHVALE_DM},0113 496 0101,ray.lowe@southvale.example,duty_manager;practitioner
"""


async def load_access(app: Signpost) -> None:
    """The standard synthetic feeds plus Southvale's duty managers."""
    await load_standard(app)
    await import_feeds(app.ctx.db, app.ctx.keys, [Feed("practitioners.csv", EXTRA_PRACTITIONERS)], app.ctx.clock.now())


async def step_up(app: Signpost, practitioner_id: str) -> None:
    """Make sure the person has an authenticator enrolled (codes are answered as challenges come)."""
    await ensure_enrolled(app, practitioner_id)


async def decide(app: Signpost, manager: str | Principal, verb: str, request_id: int | str, *extra: str) -> Reply:
    """A duty manager (or anyone) approves or denies: ``decide(app, "DM02", "approve", 1, "3d")``."""
    return await say_fresh(app, manager, " ".join([verb, str(request_id), *extra]))


async def search_as(app: Signpost, user: str | Principal, text: str) -> Reply:
    """A search (by reference or demographics) that may show signposts."""
    return await say_fresh(app, user, text)


async def fresh_say(app: Signpost, user: str | Principal, text: str, **extra: object) -> Reply:
    """Any other command that declares a step-up (request, pending, unlink)."""
    await step_up(app, user if isinstance(user, str) else user.user_id)
    return await answer_challenges(app, user, await say(app, user, text, **extra))


async def request_access(app: Signpost, user: str, ref: str, purpose: str = "section 47 enquiry") -> Reply:
    return await fresh_say(app, user, f"request {ref} {purpose}".strip())


async def notices(app: Signpost, recipient: str | None = None) -> list[Notice]:
    """Every stored notice (optionally for one person), oldest first."""
    async with app.ctx.db.read() as session:
        stmt = select(NoticeRow).order_by(NoticeRow.id)
        if recipient is not None:
            stmt = stmt.where(NoticeRow.recipient_id == recipient)
        rows = list((await session.execute(stmt)).scalars())
    return [decode(row) for row in rows]


def bodies(found: Sequence[Notice]) -> list[str]:
    return [json.dumps({"text": n.text, "buttons": [b.command for b in n.buttons]}) for n in found]


async def audit_events(app: Signpost, action: str | None = None) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        stmt = select(AuditEvent).order_by(AuditEvent.seq)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        return list((await session.execute(stmt)).scalars())


async def audit_count(app: Signpost) -> int:
    async with app.ctx.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one())
