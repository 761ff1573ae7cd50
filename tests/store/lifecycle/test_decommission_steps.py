"""A decommissioning step's log line says it is done only once the step's transaction has committed."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import date
from typing import Any

from structlog.testing import capture_logs

from bot.app import Signpost
from handlers.clock import FakeClock
from store.lifecycle import decommission
from tests.handlers.lifecycle.test_decommission import decommission_row, schedule
from tests.store.lifecycle.lifecycle_data import at, load


class StoppedBeforeCommit(Exception):
    """Raised inside the step's transaction after it was recorded: the transaction rolls back."""


async def recorded(app: Signpost, clock: FakeClock, *, commit: bool) -> tuple[list[MutableMapping[str, Any]], str]:
    """Record the data step in a transaction that commits or fails; the step log lines, and the
    steps the store then says are done."""
    await load(app)
    await schedule(app, "decommission schedule 10/11/2026 20/11/2026")
    clock.set(at(date(2026, 11, 20)))
    row = await decommission_row(app)
    assert row is not None
    ctx = app.ctx
    step = decommission.Step(ctx.db, ctx.keys, ctx.signer, ctx.notices.enqueue, row.id, clock.now())
    with capture_logs() as logs:
        try:
            async with ctx.db.write() as session:
                await decommission._record_step(session, step, "data", 2, {"involvements": 7})
                if not commit:
                    raise StoppedBeforeCommit
        except StoppedBeforeCommit:
            pass
    after = await decommission_row(app)
    assert after is not None
    return [line for line in logs if line["event"] == "decommission_step"], after.steps_done


async def test_a_step_whose_transaction_rolls_back_logs_no_step_line(signpost: Signpost, clock: FakeClock) -> None:
    """A step recorded in a transaction that then fails is not done: no 'decommission_step' line."""
    lines, done = await recorded(signpost, clock, commit=False)
    assert "data" not in done.split(",")
    assert lines == []


async def test_a_step_committed_logs_its_line_once_with_its_counts(signpost: Signpost, clock: FakeClock) -> None:
    """Committed, the step is logged once, by name, with its counts."""
    lines, done = await recorded(signpost, clock, commit=True)
    assert "data" in done.split(",")
    assert [(line["step"], line["involvements"]) for line in lines] == [("data", 7)]
