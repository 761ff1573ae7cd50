"""An operator's `retention run` that catches up in several passes reports the whole run."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.lifecycle import flows
from handlers.operator import lifecycle as operator
from handlers.operator.common import audited
from handlers.vocabulary import Action
from store.tables.audit import AuditEvent
from tests.store.lifecycle.lifecycle_data import at, load


async def test_a_run_of_several_passes_reports_every_pass_not_the_last(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A week after the import, with passes of 3 days (366 in service: the same code, shorter for
    the test), one `retention run` takes three passes. The first archives the child turning 18
    and destroys the one turning 24 on 3 November 2026; the summary the operator reads and the
    run's audited totals name those days and counts (they said only the last pass's, "0 were
    destroyed")."""
    monkeypatch.setattr(operator, "MAX_DAYS", 3)
    passes: list[object] = []
    tick = flows.retention_tick

    async def counted(*args: Any, **kwargs: Any) -> Any:
        passes.append(kwargs.get("max_days"))
        return await tick(*args, **kwargs)

    monkeypatch.setattr(flows, "retention_tick", counted)
    await load(signpost)
    signpost.ctx.clock.set(at(date(2026, 11, 9)))  # type: ignore[attr-defined]
    async with audited(signpost.ctx, "ops", Action.RETENTION_RUN) as audit:
        report = await operator.retention_run(signpost.ctx, audit)
    assert len(passes) >= 2 and set(passes) == {3}
    assert report.pending_days == 0
    assert report.first_day is not None and report.first_day <= date(2026, 11, 3)
    assert report.last_day == date(2026, 11, 9)
    assert report.archived >= 1 and report.destroyed >= 1
    summary = report.summary()
    assert f"Retention ({report.first_day:%d/%m/%Y} to 09/11/2026)" in summary
    assert f"{report.destroyed} {'was' if report.destroyed == 1 else 'were'} destroyed at 24" in summary
    async with signpost.ctx.db.read() as session:
        rows = await session.execute(
            select(AuditEvent.outcome, AuditEvent.detail).where(AuditEvent.action == Action.RETENTION_RUN.value)
        )
        events = [(str(outcome), str(detail)) for outcome, detail in rows.all()]
    assert events[-1] == (
        "done",
        f"archived {report.archived}, destroyed {report.destroyed}, sealed in {report.sealed_in}",
    )
