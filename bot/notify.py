"""The notice outbox runner: stored notices out to people, through the front ends they are linked on.

Each due notice is claimed in the database first (store/outbox.py), so several replicas can run
this at once without sending anything twice. A notice is delivered when any of the recipient's
identities takes it (one every account must see, ``handlers.every_contact.EVERY_ACCOUNT``: when
each has, the platforms that took it recorded so that a retry goes to the others only; one addressed
to a single account, ``Notice.account``: when that account has, linked or not); if a platform fails it is retried
later with backoff, for a week from when it was queued (then closed as failed, ``FAILED_FOR``; each
pass first closes every notice a week old, all at once, ``_close_expired``); a
person linked on no platform this process can reach is reported in the admin log (ids only, never
personal data) and kept for a week (``UNREACHABLE_FOR``), so a later link or another replica can
still deliver it; a console notice waits for the console to act as its recipient for a week too
(``ABSENT_FOR``). A recipient's notices go in the order they were queued (``HELD``,
``notices.pending``). Only active practitioners are told: a notice for anyone
else is dropped (and a lookup's notice to one no longer working with the child as it says,
``handlers.lead.no_longer_so``), recorded as such, and a request, a warning about a practitioner or a relayed message
it carried goes to whoever is told in their place (handlers/stand_in.py). E-mail notices follow the
same rules (``emails_due``: only to the active, and never a week late), for the operator's mailer
that sends them. A notice dropped while this runner sends it (a request decided meanwhile,
``notices.drop_decided``) is recorded delivered if the send went through, else closed as the drop
said, never retried (``_record``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from bot.delivery import Deliverer, DeliveryFailed, OnePersonAtATime, PersonUnreachable
from handlers import lead
from handlers.context import Context
from handlers.every_contact import EVERY_ACCOUNT  # seen by every linked account, not the first that answers
from handlers.stand_in import NOT_ACTIVE, drop_for_inactive
from handlers.vocabulary import Notice, Platform, Principal
from store.db import is_deadlock
from store.delivery import notices, outbox

log = structlog.get_logger("signpost.notify")

# Tries of a pass's record when PostgreSQL ends a deadlock by rolling it back (``Outbox._record``).
RECORD_TRIES = 5
CLAIM_HOLD = timedelta(minutes=2)
# A pass sends for at most this long (no send outlasts it either), then leaves the rest due for the
# next: the scheduler's other tasks (grant expiry, escalation, the misuse sweep, checkpoints) wait
# for a pass, so a platform that hangs must not hold them for minutes.
PASS_BUDGET = timedelta(seconds=30)
# After this many failures in a row on one platform in a pass, its remaining notices are pushed back
# (backoff) untried: an outage costs a few timed-out sends a pass, not one for every due notice.
FAILING_AFTER = 5
CLAIM_CHUNK = 50  # notices claimed, sent and recorded together
DUE_LIMIT = 500  # a pass's most: every looked-up child may tell its lead, so tens a second at peak
NO_PLATFORM = "no linked platform"
NOT_TRIED = "not tried, failing in this pass"
# A platform that rate-limited the app (HTTP 429) and said how long to wait (``DeliveryFailed.wait``):
# nothing more goes to that workspace (Slack) or tenant (Teams) on it until then, in this pass or the
# next, as each platform asks (a call before then prolongs the limit). Slack's limits are per app per
# workspace, per method (chat.postMessage's per channel and workspace-wide too); Bot Framework's
# per chat and per app per tenant: a notice takes a method or two, and a 429 does not say which
# limit it was, so the whole workspace or tenant waits. Each such notice is due again when the wait ends.
RATE_LIMITED = "not tried, rate limited"
# A recipient's notices go in the order they were queued: one queued after another to the same
# recipient that did not go in this pass is not tried (nor pushed back); it stays due, and the next
# pass reads it only once the one before it has gone (``notices.pending``).
HELD = "held"
# A notice that still finds its recipient linked on no platform this long after it was queued is
# dropped (recorded): none is of use a week late (a grant lasts 7 days at most, a request 24 hours),
# and one kept would go out months later, out of the blue, the day they link again.
UNREACHABLE_FOR = timedelta(days=7)
STALE = "not sent: no linked platform for 7 days"
# The same bound for a notice a platform keeps refusing (an account deactivated, a long outage): retried
# with backoff for a week from when it was queued, then closed as failed with the last reason (which
# names no one), not retried hourly for ever to arrive months later. Within the week it may still arrive.
FAILED_FOR = "not sent: failing for 7 days"
# And for a notice whose recipient the console (which acts as one person at a time) has not acted as
# for a week since it was queued: kept all that time to be printed when it switches to them, then
# dropped as a Slack or Teams notice is, not read at every pass for ever nor printed months late.
ABSENT_FOR = "not sent: not at the console for 7 days"
# And for one never tried in its week (held behind an earlier one that kept failing, or no pass ran).
WAITED_FOR = "not sent: waiting for 7 days"


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
    held: int = 0  # not tried: an earlier notice to the same recipient did not go in this pass


@dataclass
class Attempt:
    """One claimed notice in a pass: what happened to it, and (for a notice every account must
    see) the platforms that had taken it before (``told``) and have now (``reached``)."""

    notice_id: int
    notice: Notice
    tried: int  # attempts before this one
    told: frozenset[str]
    outcome: str = "unsent"
    reached: frozenset[str] = frozenset()
    wait: timedelta | None = None  # every platform that failed it said to wait this long at least

    def __post_init__(self) -> None:
        self.reached = self.told


def worker_name() -> str:
    """Which process holds a claim (for operators reading the claims table)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


@dataclass
class Pass:
    """One pass's time limits (on the Outbox's timer), each platform's failures in a row, and the
    recipients whose notices wait behind one that did not go in this pass (``held``)."""

    ends: float  # no send goes on after this (PASS_BUDGET)
    now: datetime
    # Until when each (platform, workspace or tenant) rate-limited the app (``RATE_LIMITED``): the
    # Outbox's, kept from pass to pass.
    limited: dict[tuple[Platform, str], datetime]
    failures: dict[Platform, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    # Lookup notices whose recipient no longer works with the child as they say (``lead.no_longer_so``).
    gone: set[int] = field(default_factory=set)

    def failing(self, platform: Platform) -> bool:
        return self.failures.get(platform, 0) >= FAILING_AFTER

    def count(self, platform: Platform, failed: bool) -> None:
        self.failures[platform] = self.failures.get(platform, 0) + 1 if failed else 0

    def limited_for(self, to: Principal) -> timedelta | None:
        """How long is left of a rate limit on this identity's workspace or tenant, if any."""
        until = self.limited.get((to.platform, to.tenant))
        return until - self.now if until is not None and until > self.now else None

    def limit(self, to: Principal, wait: timedelta) -> None:
        key = (to.platform, to.tenant)
        self.limited[key] = max(self.limited.get(key, self.now), self.now + wait)


class Outbox:
    """Delivers due notices through one Deliverer per platform.

    ``timer`` (seconds, monotonic) measures how long sends take against the claim's hold and the
    pass's budget; tests give a fake one. ``stopping``: whether the server is stopping (SIGTERM);
    once it is, a pass finishes the send in flight and begins no further one (the rest stay due).
    """

    def __init__(
        self,
        ctx: Context,
        deliverers: Sequence[Deliverer],
        worker: str | None = None,
        *,
        hold: timedelta = CLAIM_HOLD,
        budget: timedelta = PASS_BUDGET,
        timer: Callable[[], float] = time.monotonic,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.ctx = ctx
        self.stopping = stopping
        self.deliverers = {d.platform: d for d in deliverers}
        self.worker = worker or worker_name()
        self.hold = hold
        self.budget = budget
        self.timer = timer
        self.limited: dict[tuple[Platform, str], datetime] = {}  # ``Pass.limited``

    async def deliver_due(self, now: datetime | None = None, limit: int = DUE_LIMIT) -> DeliveryReport:
        """One pass over the due notices (at most ``limit``); returns what happened to them.

        In chunks of ``CLAIM_CHUNK``: one write transaction claims a chunk, its notices are sent,
        and one more records how each went; so a notice costs a few statements, not two write
        transactions of its own (one looked-up child tells its lead: a notice per enquiry). As
        before, a crash after a send and before its record re-sends that notice once the claim's
        hold has run out (never loses it); a pass cancelled part way records what went first.
        Every send ends (or is abandoned, as a failure) within
        half the hold from its chunk's claim, so no other replica takes over a claim while this one
        still sends; and within the pass's budget, after which no chunk is claimed and no send
        begins (the rest stay due for the next pass).
        """
        now = now or self.ctx.clock.now()
        report = DeliveryReport()
        self.limited = {key: until for key, until in self.limited.items() if until > now}
        run = Pass(self.timer() + self.budget.total_seconds(), now, self.limited)
        await self._close_expired(now, report)
        async with self.ctx.db.read() as session:
            due = await self._due(session, now, limit)
            people = await outbox.identities(session, sorted({n.recipient_id for _, n in due}), list(self.deliverers))
            told = await outbox.reached(session, [notice_id for notice_id, n in due if n.kind in EVERY_ACCOUNT])
            run.gone = await lead.no_longer_so(session, due, now)
        for start in range(0, len(due), CLAIM_CHUNK):
            if self.timer() >= run.ends or self.stopping():
                break  # left unclaimed, due for the next pass (stopping: the next process's)
            chunk = due[start : start + CLAIM_CHUNK]
            await self._chunk(chunk, people, told, now, report, run)
        return report

    async def _close_expired(self, now: datetime, report: DeliveryReport) -> None:
        """Before anything is read to send: every notice queued over ``UNREACHABLE_FOR`` ago and still
        unsent is closed, whatever held it (its recipient linked nowhere, ``STALE``; a platform refusing
        it, ``FAILED_FOR`` with the last refusal; not at the console, ``ABSENT_FOR``; never tried,
        ``WAITED_FOR``), in a few statements however many, so that after a long outage a week-old
        backlog is neither sent a week late, nor closed one a recipient a pass, nor fills the pass
        that should send the fresh ones. Logged each (id, kind and reason, never the refusal) and
        counted, as every notice closed unsent is (``store.delivery.drops``)."""
        cutoff = now - UNREACHABLE_FOR
        async with self.ctx.db.read() as session:
            if not await outbox.any_expired(session, cutoff, now):
                return
        console = any(isinstance(d, OnePersonAtATime) for d in self.deliverers.values())
        why = outbox.Expiry({NO_PLATFORM: STALE}, ABSENT_FOR if console else WAITED_FOR, FAILED_FOR)
        async with self.ctx.db.write() as session:
            closed = await outbox.close_expired(session, cutoff, now, why)  # logged and counted there
        report.dropped += len(closed)

    async def _due(self, session: Any, now: datetime, limit: int) -> list[tuple[int, Notice]]:
        """The notices due (at most ``limit``), oldest first; and before them, at most ``limit``
        more for whoever a deliverer reaching one person at a time has there now (the console):
        a week of others' notices waiting for the console to act as them never fills the pass."""
        present = sorted({d.present() for d in self.deliverers.values() if isinstance(d, OnePersonAtATime)})
        first = await notices.pending(session, self.ctx.keys, now, limit, present) if present else []
        taken = {notice_id for notice_id, _ in first}
        rest = [(i, n) for i, n in await notices.pending(session, self.ctx.keys, now, limit) if i not in taken]
        return sorted(first + rest, key=lambda due: due[0])

    async def _chunk(
        self,
        chunk: Sequence[tuple[int, Notice]],
        people: dict[str, list[Principal]],
        told: dict[int, frozenset[str]],
        now: datetime,
        report: DeliveryReport,
        run: Pass,
    ) -> None:
        async with self.ctx.db.write() as session:
            claimed = await outbox.claim_many(
                session, [notice_id for notice_id, _ in chunk], self.worker, now, self.hold
            )
        report.dropped += len(claimed.closed)  # logged and counted as they were closed (store.delivery.drops)
        attempts = claimed.attempts
        # Half the hold is left for recording, and for replicas' clocks that disagree a little.
        ends = min(self.timer() + self.hold.total_seconds() / 2, run.ends)
        outcomes: list[Attempt] = []
        try:
            for notice_id, notice in chunk:
                if notice_id not in attempts:
                    run.held.add(notice.recipient_id)  # another worker has it: not overtaken here
                    continue
                attempt = Attempt(notice_id, notice, attempts[notice_id], told.get(notice_id, frozenset()))
                outcomes.append(attempt)
                if self.timer() >= ends or self.stopping():
                    attempt.outcome = "unsent"  # let go at once, due again
                elif notice.recipient_id not in people:  # inactive, or no longer in the register
                    attempt.outcome = NOT_ACTIVE
                elif notice_id in run.gone:
                    attempt.outcome = lead.NO_LONGER_SO
                elif notice.recipient_id in run.held:
                    attempt.outcome = HELD
                else:
                    await self._send(attempt, self._accounts(notice, people[notice.recipient_id]), ends, run)
                    if attempt.outcome not in {"delivered", "absent"} and not attempt.reached:
                        # Its later notices wait (``notices.pending``). Not at the console: its later
                        # ones are not either, so each stays due, and waits its own week.
                        run.held.add(notice.recipient_id)
        finally:
            # Stopped part way (the server stops), in the loop or as the record waits for the
            # database: those a platform took are recorded, not sent again once the claim runs out;
            # the rest, the one in flight too ("unsent": it may have arrived), are let go at once.
            await self._record_through(outcomes, now, report)

    async def _record_through(self, outcomes: Sequence[Attempt], now: datetime, report: DeliveryReport) -> None:
        """``_record``, run to its end even when the pass is cancelled meanwhile: the stop waits for
        it (shielded, so a cancellation does not roll it back), then goes on."""
        recording = asyncio.ensure_future(self._record(outcomes, now, report))
        try:
            await asyncio.shield(recording)
        except asyncio.CancelledError:
            await asyncio.shield(recording)
            raise

    def _accounts(self, notice: Notice, linked: list[Principal]) -> list[Principal]:
        """Where a notice goes: the one account it is addressed to, if any, whether or not it is
        still linked (on a platform this process reaches); otherwise the recipient's linked ones."""
        if notice.account is None:
            return linked
        return [notice.account] if notice.account.platform in self.deliverers else []

    async def _record(self, outcomes: Sequence[Attempt], now: datetime, report: DeliveryReport) -> None:
        """``_record_once``, again when PostgreSQL chose its transaction to end a deadlock (a job
        dropping several notices in one transaction takes their claims in its own order, not by id):
        sends that went through are always recorded, never sent again once their claims run out.
        The report, metrics and log lines count the transaction that committed, once."""
        for attempt in range(1, RECORD_TRIES + 1):
            tally = DeliveryReport()
            after: list[Callable[[], None]] = []
            try:
                await self._record_once(outcomes, now, tally, after)
            except Exception as exc:
                if attempt == RECORD_TRIES or not is_deadlock(exc):
                    raise
                log.warning("notice_record_deadlock_retried", attempt=attempt, notices=len(outcomes))
                continue
            for name in vars(tally):
                setattr(report, name, getattr(report, name) + getattr(tally, name))
            for effect in after:
                effect()
            return

    async def _record_once(
        self,
        outcomes: Sequence[Attempt],
        now: datetime,
        report: DeliveryReport,
        after: list[Callable[[], None]],
    ) -> None:
        """How each attempt went, in the one transaction that releases the chunk's claims.

        The claims are let go first, all in one statement (a drop takes claims before notices
        too, so neither waits for the other): those a drop found claimed meanwhile (a request
        decided, a relayed message handed on, ``notices.drop_decided``) are closed with its
        reason unless their send went through, which is recorded as delivered, as it was read.
        Neither retried nor left due: a stale "please decide" never goes out after an outage."""
        async with self.ctx.db.write() as session:
            wanted = await outbox.let_go(session, [a.notice_id for a in outcomes])
            sent = [a.notice_id for a in outcomes if a.outcome == "delivered"]
            await outbox.delivered_many(session, sent, now, release=False)
            report.delivered += len(sent)
            if sent:
                after.append(lambda: self.ctx.metrics.notices("delivered", len(sent)))
            unwanted = {a.notice_id: a for a in outcomes if a.notice_id in wanted and a.outcome != "delivered"}
            # Each notice closed unsent here is logged and counted as this transaction commits (and
            # not for an attempt PostgreSQL rolled back): ``store.delivery.drops``.
            closed = await outbox.close_for_drops(session, {i: wanted[i] for i in unwanted}, now)
            report.dropped += len(closed)
            rest = [a for a in outcomes if a.notice_id not in unwanted]
            dropped = [(a.notice_id, a.notice) for a in rest if a.outcome == NOT_ACTIVE]
            if dropped:
                report.dropped += await drop_for_inactive(
                    self.ctx.notices, self.ctx.keys, session, dropped, now, self.ctx.reaches
                )
            stale = [a.notice_id for a in rest if a.outcome == lead.NO_LONGER_SO]
            report.dropped += len(await outbox.dropped_many(session, stale, now, lead.NO_LONGER_SO))
            # One queued over UNREACHABLE_FOR ago was closed before the pass read it (``_close_expired``).
            for a in rest:
                if a.outcome == "unsent" and a.reached != a.told:  # stopped between its accounts
                    await outbox.keep_reached(session, a.notice_id, ",".join(sorted(a.reached)))
            report.waiting += sum(1 for a in rest if a.outcome == "absent")
            report.held += sum(1 for a in rest if a.outcome == HELD)
            for a in rest:
                if a.outcome in {"delivered", "absent", "unsent", HELD, NOT_ACTIVE, lead.NO_LONGER_SO}:
                    continue
                if a.outcome == NO_PLATFORM:
                    report.unreachable += 1
                    if a.tried == 0:  # report once, not at every retry
                        after.append(
                            lambda a=a: log.warning(  # type: ignore[misc]
                                "notice_recipient_unreachable", notice_id=a.notice_id, kind=a.notice.kind
                            )
                        )
                else:
                    report.retried += 1
                after.append(lambda: self.ctx.metrics.notices("failed"))
                reached = ",".join(sorted(a.reached)) if a.reached != a.told else None
                await outbox.retry_later(
                    session, a.notice_id, a.tried, now, a.outcome, reached=reached, release=False, wait=a.wait
                )

    async def _send(self, attempt: Attempt, identities: list[Principal], ends: float, run: Pass) -> None:
        """Try the notice on the person's identities, each send abandoned at ``ends``; sets the
        attempt's outcome ('delivered', 'absent', NO_PLATFORM, or a failure's non-personal reason)
        and, for a notice every account must see, the platforms that have taken it (those are not
        sent it again). A platform failing in this pass is not tried: a failure, retried later."""
        notice = attempt.notice
        every = notice.kind in EVERY_ACCOUNT
        if every:
            identities = [p for p in identities if p.platform.value not in attempt.told]
            if not identities and attempt.told:
                attempt.outcome = "delivered"  # every account still linked has it
                return
        if not identities:
            attempt.outcome = NO_PLATFORM
            return
        failure = ""
        waits: list[timedelta | None] = []  # each failed platform's, None where it said nothing
        for principal in identities:
            platform = principal.platform
            if run.failing(platform):
                failure = f"{platform}: {NOT_TRIED}"
                waits.append(None)
                continue
            if (left := run.limited_for(principal)) is not None:
                failure = f"{platform}: {RATE_LIMITED}"
                waits.append(left)
                continue
            try:
                async with asyncio.timeout(max(ends - self.timer(), 0)):
                    await self.deliverers[platform].deliver(principal, notice)
                run.count(platform, failed=False)
                if not every:
                    attempt.outcome = "delivered"
                    return
                attempt.reached |= {principal.platform.value}
            except NotPresent:
                continue
            except TimeoutError:  # it may have arrived: "may arrive twice, never not at all"
                failure = f"{platform}: timed out"
                run.count(platform, failed=True)
                waits.append(None)
            except PersonUnreachable as exc:  # the platform answered: not counted against it
                failure = f"{platform}: {type(exc).__name__}"
                waits.append(None)
            except DeliveryFailed as exc:
                failure = f"{platform}: {type(exc).__name__}"
                run.count(platform, failed=True)
                wait = exc.wait_from(run.now)
                if wait is not None:
                    run.limit(principal, wait)
                waits.append(wait)
            except Exception as exc:  # a bug in one deliverer must not stop the others
                # No traceback: an exception's text might quote the notice or a platform payload.
                log.error(
                    "notice_deliverer_error",
                    notice_id=attempt.notice_id,
                    platform=platform.value,
                    error=type(exc).__name__,
                )
                failure = f"{platform}: {type(exc).__name__}"
                run.count(platform, failed=True)
                waits.append(None)
        if failure:
            attempt.outcome = failure  # retried later, on the accounts that did not take it
            known = [w for w in waits if w is not None]
            attempt.wait = min(known) if known and len(known) == len(waits) else None
        elif attempt.reached != attempt.told:
            attempt.outcome = "delivered"
        else:
            attempt.outcome = "absent"


NO_ADDRESS = "not sent: no recorded email"  # recorded in last_error: names nobody
# An e-mail notice the operator's mailer has not taken within a week of when it was queued (the
# mailer did not run): closed, as a chat notice is (``UNREACHABLE_FOR``), not e-mailed a week late.
MAILER_WAITED_FOR = "not sent: not taken by the mailer for 7 days"


@dataclass(frozen=True, slots=True)
class Email:
    """An e-mail notice to send now, with its recipient's recorded secure email."""

    notice_id: int
    address: str
    notice: Notice


async def emails_due(ctx: Context, now: datetime | None = None, limit: int = 100) -> list[Email]:
    """The e-mail notices (``notices.EMAIL_KIND``) for the operator's mailer to send now, oldest first,
    each with the address to send it to; the mailer calls ``email_sent`` once it has.

    The same rule as the chat outbox, in the same transaction: a notice whose recipient is no longer
    active is closed unsent (recorded, with whatever it carried handed on, handlers/stand_in.py), and
    one for a practitioner with no recorded email is closed as such: neither is returned. And first,
    as a chat notice is closed after ``UNREACHABLE_FOR``, every one queued that long ago and not
    taken yet (``MAILER_WAITED_FOR``): nobody is e-mailed "your id was linked" a week late, out of
    the blue, because the mailer did not run. Logged each (id, kind and reason) and counted.
    """
    now = now or ctx.clock.now()
    async with ctx.db.write() as session:  # each closed unsent logged and counted as it commits
        await outbox.close_expired_email(session, now - UNREACHABLE_FOR, now, MAILER_WAITED_FOR)
        due = await notices.pending_email(session, ctx.keys, limit)
        found = await outbox.addresses(session, sorted({n.recipient_id for _, n in due}))
        gone = [(notice_id, n) for notice_id, n in due if n.recipient_id not in found]
        if gone:
            await drop_for_inactive(ctx.notices, ctx.keys, session, gone, now, ctx.reaches)
        blank = [(notice_id, n) for notice_id, n in due if found.get(n.recipient_id) == ""]
        await outbox.dropped_many(session, [notice_id for notice_id, _ in blank], now, NO_ADDRESS)
    return [Email(notice_id, found[n.recipient_id], n) for notice_id, n in due if found.get(n.recipient_id)]


async def email_sent(ctx: Context, notice_id: int, now: datetime | None = None) -> None:
    """Record that the mailer has sent this e-mail notice (one closed meanwhile stays closed, but
    for one closed as a week old after the mailer took it: it was sent)."""
    async with ctx.db.write() as session:
        recorded = await outbox.email_delivered(session, notice_id, now or ctx.clock.now(), MAILER_WAITED_FOR)
    if recorded:  # one already delivered, or closed and staying closed, is not counted again
        ctx.metrics.notices("delivered")
