"""Process wiring: settings → database, keys, clock, audit → one Dispatcher shared by every front end."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bot.metrics import PrometheusRecorder
from handlers.clock import Clock, SystemClock
from handlers.commands import all_specs
from handlers.context import Context, Policy
from handlers.dispatch.chain import policy_chain
from handlers.dispatch.dispatcher import Dispatcher
from handlers.metrics import CountedNotices
from handlers.misuse.monitor import MisuseMonitor
from handlers.stepup import flow as stepup
from handlers.stepup.flow import StepUpPolicy
from handlers.vocabulary import Command, Reply
from store.audit.log import AuditLog, TermSealer
from store.audit.signing import Signer
from store.db import Database
from store.delivery import drops
from store.delivery.notices import NoticeStore
from store.keys.crypto import KeyRing
from store.keys.keychain import ensure_chains
from store.people.access import GrantTable

DEFAULT_BASE_URL = "http://127.0.0.1:3000"


@dataclass
class Signpost:
    """A running Signpost: the context and its dispatcher."""

    ctx: Context
    dispatcher: Dispatcher

    @property
    def metrics(self) -> PrometheusRecorder:
        assert isinstance(self.ctx.metrics, PrometheusRecorder)  # build() wires one
        return self.ctx.metrics

    async def close(self) -> None:
        await self.ctx.audit.close()
        await self.ctx.db.close()


def build(
    db: Database,
    keys: KeyRing,
    clock: Clock | None = None,
    policy: Policy | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
    stepup_policy: StepUpPolicy | None = None,
    signer: Signer | None = None,
    metrics: PrometheusRecorder | None = None,
) -> Signpost:
    """Wire one Signpost. ``base_url`` is where browsers reach this server (enrolment links);
    ``signer`` signs audit checkpoints (by default with the key file's signing seed)."""
    metrics = metrics or PrometheusRecorder()
    clock = clock or SystemClock()
    notices = CountedNotices(NoticeStore(), metrics)
    ctx = Context(
        db=db,
        keys=keys,
        clock=clock,
        audit=AuditLog(db, clock.now, notices),
        sealer=TermSealer(db, keys),
        notices=notices,
        signer=signer or Signer(keys),
        policy=_with_stepup(policy or Policy(), stepup_policy),
        grants=GrantTable(),
        metrics=metrics,
    )
    ctx.audit.on_batch(metrics.audit_batch)
    drops.count_with(db, lambda count: metrics.notices("dropped", count))  # each notice closed unsent
    metrics.watch_audit(lambda: ctx.audit.waiting)
    ensure_chains(keys, ctx.clock.now().date())  # birth-date and month keys (store/keychain.py)
    stepup_policy = ctx.policy.stepup  # one set of numbers: the gate's and ``Context.policy``'s

    async def resume(command: Command) -> Reply:
        # A parked command runs through the dispatcher again: the whole chain, its own audit event.
        return await dispatcher.handle(command)

    built = stepup.make_specs(resume, base_url, stepup_policy)
    ctx.audit.on_commit(MisuseMonitor(ctx).after_commit)  # misuse rules as events are written
    dispatcher = Dispatcher.build(ctx, all_specs(*built), policy_chain(stepup_policy))
    return Signpost(ctx, dispatcher)


def _with_stepup(policy: Policy, stepup_policy: StepUpPolicy | None) -> Policy:
    return policy if stepup_policy is None else replace(policy, stepup=stepup_policy)


async def open_signpost(database_url: str, keys: KeyRing, clock: Clock | None = None) -> Signpost:
    db = await Database.open(database_url)
    return build(db, keys, clock)
