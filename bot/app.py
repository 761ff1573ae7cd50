"""Process wiring: settings → database, keys, clock, audit → one Dispatcher shared by every front end."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.clock import Clock, SystemClock
from handlers.commands import all_specs
from handlers.context import Context, Policy
from handlers.dispatch import Dispatcher
from handlers.lifecycle import decommission_gate
from store.access import GrantTable
from store.audit import AuditLog, TermSealer
from store.crypto import KeyRing
from store.db import Database
from store.keychain import ensure_chains
from store.notices import NoticeStore


@dataclass
class Signpost:
    """A running Signpost: the context and its dispatcher."""

    ctx: Context
    dispatcher: Dispatcher

    async def close(self) -> None:
        await self.ctx.audit.close()
        await self.ctx.db.close()


def build(db: Database, keys: KeyRing, clock: Clock | None = None, policy: Policy | None = None) -> Signpost:
    ctx = Context(
        db=db,
        keys=keys,
        clock=clock or SystemClock(),
        audit=AuditLog(db),
        sealer=TermSealer(db, keys),
        notices=NoticeStore(),
        policy=policy or Policy(),
        grants=GrantTable(),
    )
    ensure_chains(keys, ctx.clock.now().date())  # birth-date and month keys (store/keychain.py)
    return Signpost(ctx, Dispatcher.build(ctx, all_specs(), extra_gates=[decommission_gate]))


async def open_signpost(database_url: str, keys: KeyRing, clock: Clock | None = None) -> Signpost:
    db = await Database.open(database_url)
    return build(db, keys, clock)
