"""The notice outbox runner: stored notices out to people, through the front ends they are linked on.

Each due notice is claimed in the database first (store/outbox.py), so several replicas can run
this at once without sending anything twice. A notice is delivered when any of the recipient's
identities takes it; if a platform fails it is retried later with backoff; a person linked on no
platform this process can reach is reported in the admin log (ids only, never personal data) and
kept, so a later link or another replica can still deliver it. Nothing is lost.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from bot.delivery import Deliverer, DeliveryFailed
from handlers.context import Context
from handlers.vocabulary import Notice, Principal
from store.delivery import notices, outbox

log = structlog.get_logger("signpost.notify")
CLAIM_HOLD = timedelta(minutes=2)
NO_PLATFORM = "no linked platform"
# Notices every linked chat account must see (not just the first that answers): a new link to a
# practitioner's id is told everywhere they can be reached, so a link they did not ask for is seen.
EVERY_ACCOUNT = frozenset({"registration_approved"})


class NotPresent(DeliveryFailed):
    """The person is not at this front end right now (the console acts as one person at a time).

    The notice stays due, without backoff, and is shown when they are there.
    """


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0  # a platform failed: due again after backoff
    unreachable: int = 0  # linked on no platform we can reach
    waiting: int = 0  # not present right now (console)


def worker_name() -> str:
    """Which process holds a claim (for operators reading the claims table)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


class Outbox:
    """Delivers due notices through one Deliverer per platform."""

    def __init__(self, ctx: Context, deliverers: Sequence[Deliverer], worker: str | None = None) -> None:
        self.ctx = ctx
        self.deliverers = {d.platform: d for d in deliverers}
        self.worker = worker or worker_name()

    async def deliver_due(self, now: datetime | None = None, limit: int = 100) -> DeliveryReport:
        """One pass over the due notices; returns what happened to them."""
        now = now or self.ctx.clock.now()
        report = DeliveryReport()
        async with self.ctx.db.read() as session:
            due = await notices.pending(session, now, limit)
            people = await outbox.identities(session, sorted({n.recipient_id for _, n in due}), list(self.deliverers))
        for notice_id, notice in due:
            await self._one(notice_id, notice, people.get(notice.recipient_id, []), now, report)
        return report

    async def _one(
        self,
        notice_id: int,
        notice: Notice,
        identities: list[Principal],
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        async with self.ctx.db.write() as session:
            attempts = await outbox.claim(session, notice_id, self.worker, now, CLAIM_HOLD)
        if attempts is None:
            return  # another worker has it, or it was just delivered
        outcome = await self._send(notice_id, notice, identities)
        async with self.ctx.db.write() as session:
            if outcome == "delivered":
                await outbox.delivered(session, notice_id, now)
                report.delivered += 1
                self.ctx.metrics.notices("delivered")
            elif outcome == "absent":
                await outbox.release(session, notice_id)
                report.waiting += 1
            else:
                if outcome == NO_PLATFORM:
                    report.unreachable += 1
                    if attempts == 0:  # report once, not at every retry
                        log.warning("notice_recipient_unreachable", notice_id=notice_id, kind=notice.kind)
                else:
                    report.retried += 1
                self.ctx.metrics.notices("failed")
                await outbox.retry_later(session, notice_id, attempts, now, outcome)

    async def _send(self, notice_id: int, notice: Notice, identities: list[Principal]) -> str:
        """'delivered', 'absent', NO_PLATFORM, or the (non-personal) reason of a failure."""
        if not identities:
            return NO_PLATFORM
        failure = ""
        reached = False
        for principal in identities:
            try:
                await self.deliverers[principal.platform].deliver(principal, notice)
                if notice.kind not in EVERY_ACCOUNT:
                    return "delivered"
                reached = True
            except NotPresent:
                continue
            except DeliveryFailed as exc:
                failure = f"{principal.platform}: {type(exc).__name__}"
            except Exception as exc:  # a bug in one deliverer must not stop the others
                # No traceback: an exception's text might quote the notice or a platform payload.
                log.error(
                    "notice_deliverer_error",
                    notice_id=notice_id,
                    platform=principal.platform.value,
                    error=type(exc).__name__,
                )
                failure = f"{principal.platform}: {type(exc).__name__}"
        if reached:
            return "delivered"
        return failure or "absent"
