"""Process wiring: settings → database, keys, clock, audit → one Dispatcher shared by every front end."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.clock import Clock, SystemClock
from handlers.commands import all_specs
from handlers.context import Context, Policy
from handlers.dispatch import Dispatcher
from handlers.misuse import MisuseMonitor
from store.audit import AuditLog, TermSealer
from store.crypto import KeyRing
from store.db import Database
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
    )
    ctx.audit.on_commit(MisuseMonitor(ctx).after_commit)  # misuse rules as events are written
    return Signpost(ctx, Dispatcher.build(ctx, all_specs()))


async def open_signpost(database_url: str, keys: KeyRing, clock: Clock | None = None) -> Signpost:
    db = await Database.open(database_url)
    return build(db, keys, clock)
