"""One in-process periodic runner for every replica: grant expiry, escalation, request expiry,
relayed messages handed on, notice delivery (and whatever later features register). Once Signpost
is switched off only the tasks declaring ``after_switch_off`` run (``standard_tasks`` says which, and why).

A task is (name, interval, async fn(ctx, now)). Replicas share each task's next run time in the
database (store/schedule.py): one claims a due run, the others find it not due. The tasks claim
their own rows too, so even two runs that overlap change and tell everything once.

The tasks run one after another, except, in the server (``run_forever``), a task marked ``apart``
(notice delivery, which waits on chat platforms): it runs beside the others, one run at a time in
this process, so a platform that hangs delays neither grant expiry nor escalation, the misuse sweep
or the checkpoints. Called directly (the console, tests), ``run_due`` runs every task in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from aiohttp import web

from bot.app import Signpost
from bot.config import Settings
from bot.delivery import Deliverer, deliverers_among
from bot.notify import Outbox, worker_name
from handlers.access import jobs as access_jobs
from handlers.context import Context
from handlers.lifecycle import flows as lifecycle
from handlers.misuse import monitor as misuse
from handlers.operator import audit as operator_audit
from store.audit import chain as audit_chain
from store.delivery import deliveries, schedule
from store.people import credentials

log = structlog.get_logger("signpost.scheduler")
TaskFn = Callable[[Context, datetime], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Task:
    """``after_switch_off``: whether it still runs once Signpost is switched off (``standard_tasks``
    says why for each); one that declares nothing does not (fail closed, as the CLI's commands)."""

    name: str
    interval: timedelta
    run: TaskFn
    apart: bool = False  # runs beside the others (its next run waits for this one to end)
    after_switch_off: bool | None = None


class Scheduler:
    """Runs each task at most once per interval across all replicas."""

    def __init__(
        self, ctx: Context, tasks: Sequence[Task], worker: str | None = None, *, stopping: asyncio.Event | None = None
    ) -> None:
        self.ctx = ctx
        self.tasks = list(tasks)
        self.worker = worker or worker_name()
        # Set at a graceful stop (``finish``): no task run starts after it. Shared with the Outbox,
        # whose pass then begins no further notice (``add_scheduler``).
        self.stopping = stopping or asyncio.Event()
        self._local_due: dict[str, datetime] = {}  # saves a database round trip per tick
        self._apart: dict[str, asyncio.Task[bool]] = {}  # the runs of ``apart`` tasks going on
        self._inline: str | None = None  # the task run by ``run_due`` itself right now, if any
        self._forever: asyncio.Task[None] | None = None
        ctx.metrics.tasks([task.name for task in self.tasks])

    async def run_due(self, now: datetime | None = None, *, background: bool = False) -> list[str]:
        """Run every task that is due now and not taken by another replica; returns their names.
        With ``background``, an ``apart`` task's run is started beside the others (its name is
        returned once started), and not started again while it goes on."""
        now = now or self.ctx.clock.now()
        ran = []
        switched_off: bool | None = None  # read once a pass, and only when a due task asks
        for task in self.tasks:
            if self.stopping.is_set():
                break  # stopping: nothing more is started
            due = self._local_due.get(task.name, now)
            if now < due and not schedule.stamped_ahead(due, now, task.interval):  # a clock put back
                continue
            if task.after_switch_off is not True:
                if switched_off is None:
                    switched_off = await lifecycle.switched_off(self.ctx, now)
                if switched_off:
                    self._local_due[task.name] = now + task.interval  # asked again then (no cache)
                    continue
            going = self._apart.get(task.name)
            if going is not None and not going.done():
                continue  # its last run goes on: not claimed, so another replica may take this one
            self._local_due[task.name] = now + task.interval
            async with self.ctx.db.write() as session:
                claimed = await schedule.claim_run(session, task.name, self.worker, now, task.interval)
            if not claimed:
                continue
            if task.apart and background:
                self._apart[task.name] = asyncio.get_running_loop().create_task(
                    self._run(task, now), name=f"scheduler:{task.name}"
                )
                ran.append(task.name)
            else:
                self._inline = task.name
                try:
                    if await self._run(task, now):
                        ran.append(task.name)
                finally:
                    self._inline = None
        return ran

    async def _run(self, task: Task, now: datetime) -> bool:
        """One run of a task, timed and counted; whether it succeeded."""
        started = time.perf_counter()
        try:
            await task.run(self.ctx, now)
            result = "ok"
        except Exception as exc:
            # Logged without traceback text (it could quote data); the next run tries again.
            log.error("scheduled_task_failed", task=task.name, error=type(exc).__name__)
            result = "failed"
        self.ctx.metrics.task_run(task.name, result, time.perf_counter() - started)
        return result == "ok"

    async def settle(self) -> None:
        """Wait for the runs of ``apart`` tasks going on (tests; a stop waits for them too, ``finish``)."""
        await asyncio.gather(*self._apart.values())

    def going(self) -> list[str]:
        """The tasks whose runs are going on in this process now."""
        inline = [self._inline] if self._inline is not None else []
        return inline + [name for name, run in self._apart.items() if not run.done()]

    async def _stop_apart(self) -> None:
        for going in self._apart.values():
            going.cancel()
        await asyncio.gather(*self._apart.values(), return_exceptions=True)

    async def run_forever(self, tick: float = 1.0) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    await self.run_due(background=True)
                except Exception as exc:
                    # A pass that could not read or claim (the database restarted, a pooled
                    # connection ended): the next tick tries again, on a fresh connection.
                    log.error("scheduler_pass_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), tick)
            await asyncio.gather(*self._apart.values())  # stopping: the runs going on end as they would
        finally:
            await self._stop_apart()  # cancelled: a pass cut short re-sends at most (its claims run out)

    def start(self, tick: float = 1.0) -> asyncio.Task[None]:
        """Run in the background of the current event loop (``finish`` stops it; cancelling it cuts
        the runs going on short)."""
        self._forever = asyncio.get_running_loop().create_task(self.run_forever(tick), name="scheduler")
        return self._forever

    async def finish(self, seconds: float) -> list[str]:
        """A graceful stop: no task run starts any more (a notice delivery pass begins no further
        notice), and the runs going on are waited for, up to ``seconds``; those still going then
        are cancelled, as a plain cancel does. Returns the names of those cancelled (none: all ended)."""
        self.stopping.set()
        if self._forever is None or self._forever.done():
            return []
        done, _ = await asyncio.wait({self._forever}, timeout=seconds)
        if done:
            return []
        cut = self.going()
        self._forever.cancel()
        await asyncio.gather(self._forever, return_exceptions=True)
        return cut


def deliver_notices(box: Outbox) -> TaskFn:
    async def run(ctx: Context, now: datetime) -> object:
        return await box.deliver_due(now)

    return run


def standard_tasks(box: Outbox, checkpoint_dir: Path | None = None) -> list[Task]:
    """Access control's and retention's periodic work, plus notice delivery through ``box``; with
    ``checkpoint_dir`` (SIGNPOST_CHECKPOINT_DIR), signed checkpoints written there for shipping.

    Each declares whether it runs once Signpost is switched off (PRODUCT.md: from the switch-off
    date it answers no searches, and all personal data is destroyed within 60 days). What the
    decommissioning needs runs on: its own tick (notices, destruction, the purge), retention
    (children still reach 18 and 24 before the destroy-by date), notice delivery (the admins'
    switch-off, stalled and certificate notices; the purge waits for the certificate's), forgetting
    (delivery ids, parked commands) and the audit chain's signed checkpoints (the certificate cites its
    final hash). What would ask or tell someone about a service that no longer answers does not: no
    request can be decided any more (every chat command is refused), so none escalates or expires
    with a notice, no grant's end is announced, no relayed message is handed on, and no misuse sweep
    alerts duty managers (no search is answered to be misused; every lookup stays in the audit log)."""
    tasks = [
        Task("expire_grants", timedelta(minutes=1), access_jobs.expire_grants, after_switch_off=False),
        Task("escalate_requests", timedelta(minutes=1), access_jobs.escalate_requests, after_switch_off=False),
        Task("expire_requests", timedelta(minutes=1), access_jobs.expire_requests, after_switch_off=False),
        Task("hand_on_relays", RELAY_CHECK_EVERY, access_jobs.hand_on_relays, after_switch_off=False),
        Task("deliver_notices", timedelta(seconds=5), deliver_notices(box), apart=True, after_switch_off=True),
        Task("retention", timedelta(hours=1), lifecycle.scheduled_retention, after_switch_off=True),
        Task("decommission", timedelta(minutes=10), lifecycle.decommission_tick, after_switch_off=True),
        Task("misuse_sweep", timedelta(minutes=1), misuse.sweep, after_switch_off=False),
        Task("audit_checkpoint", timedelta(minutes=1), audit_checkpoint, after_switch_off=True),
        Task("prune_deliveries", timedelta(hours=1), prune_deliveries, after_switch_off=True),
        Task("drop_expired_parked", timedelta(minutes=1), drop_expired_parked, after_switch_off=True),
    ]
    if checkpoint_dir is not None:
        export = export_checkpoint_to(checkpoint_dir)
        tasks.append(Task("export_checkpoint", EXPORT_EVERY, export, after_switch_off=True))
    return tasks


# An unanswered relayed message is looked at again this often: reading or answering it checks who may
# at once, so this bounds only how long a message nobody can take waits for whoever may now.
RELAY_CHECK_EVERY = timedelta(minutes=5)
EXPORT_EVERY = timedelta(minutes=5)  # the most an insider can rewrite unseen is what came after the newest file


async def audit_checkpoint(ctx: Context, now: datetime) -> object:
    """A signed checkpoint when the chain grew and the latest is five minutes old."""
    if not ctx.signer.can_sign:
        return None  # decommissioned: the signing seed is destroyed
    return await audit_chain.checkpoint_if_due(ctx.db, ctx.signer, now)


def export_checkpoint_to(folder: Path) -> TaskFn:
    async def run(ctx: Context, now: datetime) -> object:
        written = await operator_audit.export_checkpoint(ctx, folder)
        if written is not None:
            log.info("checkpoint_exported", file=written.name)
        return written

    return run


async def prune_deliveries(ctx: Context, now: datetime) -> object:
    """Forget delivery and click ids once no platform would retry them (``deliveries.KEEP``)."""
    return await deliveries.forget_old(ctx.db, now)


async def drop_expired_parked(ctx: Context, now: datetime) -> object:
    """Delete commands whose code never came once their time is up, not at the next park."""
    return await credentials.forget_expired_parked(ctx.db, now)


SCHEDULER_KEY = web.AppKey("scheduler", Scheduler)


def deliverers_on(app: web.Application) -> list[Deliverer]:
    """The Deliverer of every front end on the app (each exposes one as ``.deliverer``)."""
    return deliverers_among(app.values())


def add_scheduler(app: web.Application, signpost: Signpost, settings: Settings) -> None:
    """RouteAdder (add it after the front ends): the scheduler runs while the server runs. `signpost
    run` stops it gracefully first (``Scheduler.finish``, within SIGNPOST_DRAIN_SECONDS); the clean-up
    here cancels whatever is left (embedded use)."""
    tasks: list[asyncio.Task[None]] = []

    async def start(app: web.Application) -> None:
        # Before anything else: a destruction killed after its certificate was signed has left key
        # material (the signing seed) that nothing should use; it goes now, not at the next tick.
        await lifecycle.finish_destruction(signpost.ctx, signpost.ctx.clock.now())
        stopping = asyncio.Event()  # once set (SIGTERM), a delivery pass begins no further notice
        box = Outbox(signpost.ctx, deliverers_on(app), stopping=stopping.is_set)
        tasks_run = standard_tasks(box, settings.checkpoint_dir)
        app[SCHEDULER_KEY] = scheduler = Scheduler(signpost.ctx, tasks_run, stopping=stopping)
        tasks.append(scheduler.start())

    async def stop(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
