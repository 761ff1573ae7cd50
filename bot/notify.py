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
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from bot.delivery import Deliverer, DeliveryFailed
from handlers.context import Context
from handlers.stand_in import NOT_ACTIVE, drop_for_inactive
from handlers.vocabulary import Notice, Principal
from store.delivery import notices, outbox

log = structlog.get_logger("signpost.notify")
CLAIM_HOLD = timedelta(minutes=2)
CLAIM_CHUNK = 50  # notices claimed, sent and recorded together
DUE_LIMIT = 500  # a pass's most: every looked-up child may tell its lead, so tens a second at peak
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
    dropped: int = 0  # not sent on purpose: the recipient is no longer active


def worker_name() -> str:
    """Which process holds a claim (for operators reading the claims table)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


class Outbox:
    """Delivers due notices through one Deliverer per platform."""

    def __init__(self, ctx: Context, deliverers: Sequence[Deliverer], worker: str | None = None) -> None:
        self.ctx = ctx
        self.deliverers = {d.platform: d for d in deliverers}
        self.worker = worker or worker_name()

    async def deliver_due(self, now: datetime | None = None, limit: int = DUE_LIMIT) -> DeliveryReport:
        """One pass over the due notices (at most ``limit``); returns what happened to them.

        In chunks of ``CLAIM_CHUNK``: one write transaction claims a chunk, its notices are sent,
        and one more records how each went; so a notice costs a few statements, not two write
        transactions of its own (one looked-up child tells its lead: a notice per enquiry). As
        before, a crash after a send and before its record re-sends that notice once the claim's
        hold has run out (never loses it); a chunk whose sends outlast half the hold stops and
        lets the rest go, so no other replica takes over a claim while this one still sends.
        """
        now = now or self.ctx.clock.now()
        report = DeliveryReport()
        async with self.ctx.db.read() as session:
            due = await notices.pending(session, now, limit)
            people = await outbox.identities(session, sorted({n.recipient_id for _, n in due}), list(self.deliverers))
        for start in range(0, len(due), CLAIM_CHUNK):
            chunk = due[start : start + CLAIM_CHUNK]
            await self._chunk(chunk, people, now, report)
        return report

    async def _chunk(
        self,
        chunk: Sequence[tuple[int, Notice]],
        people: dict[str, list[Principal]],
        now: datetime,
        report: DeliveryReport,
    ) -> None:
        async with self.ctx.db.write() as session:
            attempts = await outbox.claim_many(
                session, [notice_id for notice_id, _ in chunk], self.worker, now, CLAIM_HOLD
            )
        claimed = time.monotonic()
        outcomes: list[tuple[int, Notice, int, str]] = []
        for notice_id, notice in chunk:
            if notice_id not in attempts:
                continue  # another worker has it, or it was just delivered
            if time.monotonic() - claimed > CLAIM_HOLD.total_seconds() / 2:
                outcomes.append((notice_id, notice, attempts[notice_id], "unsent"))
                continue
            if notice.recipient_id not in people:  # inactive, or no longer in the register
                outcomes.append((notice_id, notice, attempts[notice_id], NOT_ACTIVE))
                continue
            outcome = await self._send(notice_id, notice, people[notice.recipient_id])
            outcomes.append((notice_id, notice, attempts[notice_id], outcome))
        async with self.ctx.db.write() as session:
            sent = [notice_id for notice_id, _, _, outcome in outcomes if outcome == "delivered"]
            await outbox.delivered_many(session, sent, now)
            report.delivered += len(sent)
            if sent:
                self.ctx.metrics.notices("delivered", len(sent))
            let_go = [notice_id for notice_id, _, _, outcome in outcomes if outcome in {"absent", "unsent"}]
            await outbox.release_many(session, let_go)
            report.waiting += sum(1 for *_, outcome in outcomes if outcome == "absent")
            dropped = [(i, n) for i, n, _, outcome in outcomes if outcome == NOT_ACTIVE]
            if dropped:
                await drop_for_inactive(self.ctx.notices, session, dropped, now)
                report.dropped += len(dropped)
                self.ctx.metrics.notices("dropped", len(dropped))
            for notice_id, notice, tried, outcome in outcomes:
                if outcome in {"delivered", "absent", "unsent", NOT_ACTIVE}:
                    continue
                if outcome == NO_PLATFORM:
                    report.unreachable += 1
                    if tried == 0:  # report once, not at every retry
                        log.warning("notice_recipient_unreachable", notice_id=notice_id, kind=notice.kind)
                else:
                    report.retried += 1
                self.ctx.metrics.notices("failed")
                await outbox.retry_later(session, notice_id, tried, now, outcome)

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
