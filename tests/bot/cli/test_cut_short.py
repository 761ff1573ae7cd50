"""Operator work cut short (kill -9, a failure part-way) leaves its audit trace, and nothing half done
that looks whole: a key rotation is audited before it changes anything and a rerun finishes it; a
backup is audited before it starts, its pg_dump dies with signpost, and a partial copy never takes
the backup's name."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.operator import lifecycle
from handlers.operator.common import Refused
from store.db import Database
from store.keys import rotation
from store.keys.crypto import KeyRing
from store.tables.audit import AuditEvent
from store.tables.register import ChildKey
from tests.store.lifecycle.lifecycle_data import load


class Killed(BaseException):
    """The process dying at this point: nothing of ours catches it (as nothing runs after a kill -9)."""


async def events(db: Database, action: str) -> list[tuple[str, str]]:
    async with db.read() as session:
        found = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return [(str(outcome), str(detail)) for outcome, detail in found.all()]


def generations_on_disk(keys: KeyRing) -> set[str]:
    assert keys.path is not None
    return {k for k in KeyRing.load(keys.path).keks if k.startswith("k")}


# -- keys rotate ---------------------------------------------------------------------------------


async def test_a_rotation_cut_short_is_audited_before_it_changed_anything_and_a_rerun_finishes_it(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its first batch (key file k1+k2, some rows under generation 2), the rotation has
    already written 'started generation 2'. The rerun says it is finishing generation 2 (not
    starting a third), re-wraps the rest, removes k1 and records generation 2 done."""
    await load(signpost)
    monkeypatch.setattr(rotation, "BATCH", 3)

    def die_after_the_first_batch(done: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        await lifecycle.rotate_keys(signpost.ctx, "ops", on_progress=die_after_the_first_batch)
    assert await events(signpost.ctx.db, "keys_rotate") == [("started", "generation 2")]
    assert generations_on_disk(signpost.ctx.keys) == {"k1", "k2"}
    async with signpost.ctx.db.read() as session:
        under = [kek[:2] for kek in (await session.execute(select(ChildKey.kek_id))).scalars()]
    assert under.count("d2") == 3 and under.count("d1") > 0  # half applied, as the review found it

    report = await lifecycle.rotate_keys(signpost.ctx, "ops")
    assert report.finishing and report.new_generation == 2
    assert await events(signpost.ctx.db, "keys_rotate") == [
        ("started", "generation 2"),
        ("started", "finishing generation 2 (a rotation cut short)"),
        ("done", "generation 2"),
    ]
    assert generations_on_disk(signpost.ctx.keys) == {"k2"}
    async with signpost.ctx.db.read() as session:
        assert {kek[:2] for kek in (await session.execute(select(ChildKey.kek_id))).scalars()} == {"d2"}


async def test_a_rotation_that_fails_is_audited_started_then_failed(signpost: Signpost) -> None:
    """A wrapped key no KEK opens: 'started generation 2', then 'failed generation 2'; the operator
    is told why."""
    await load(signpost)
    async with signpost.ctx.db.write() as session:
        row = (await session.execute(select(ChildKey).limit(1))).scalar_one()
        row.wrapped = b"\0" * 60
    with pytest.raises(Refused, match="could not be opened"):
        await lifecycle.rotate_keys(signpost.ctx, "ops")
    assert await events(signpost.ctx.db, "keys_rotate") == [("started", "generation 2"), ("failed", "generation 2")]
