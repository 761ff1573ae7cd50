"""`signpost retention run` with more than a month of days due changes nothing until the operator
has checked the host's clock and typed today's date (`--catch-up-to`), which must be the clock's."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from store.db import Database
from store.lifecycle import retention
from store.tables.lifecycle import RetentionState
from tests.bot.cli.conftest import Cli
from tests.bot.cli.test_match import audit_events, setup_store

pytestmark = pytest.mark.fresh_keys  # `signpost` works to the real date (tests/conftest.py keys)


async def _last_day(db_url: str, moved_to: date | None = None) -> date | None:
    """The last day retention processed (first moved to ``moved_to``: as after weeks of downtime)."""
    db = await Database.open(db_url)
    try:
        if moved_to is not None:
            async with db.write() as session:
                await session.execute(update(RetentionState).values(last_day=moved_to))
        async with db.read() as session:
            return await retention.last_day(session)
    finally:
        await db.close()


async def test_more_than_a_month_due_waits_for_todays_date_typed(cli: Cli, db_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(setup_store, cli, tmp_path)
    assert (await cli.run("retention", "run")).code == 0
    today = datetime.now(UTC).date()
    gone = today - timedelta(days=retention.UNCHECKED_DAYS + 9)
    assert await _last_day(db_url, moved_to=gone) == gone

    plain = await cli.run("retention", "run")
    assert plain.code != 0
    assert plain.said.splitlines()[-1] == (
        f"signpost: retention stopped, nothing changed: the host's clock says today is {today:%d/%m/%Y}, "
        f"{retention.UNCHECKED_DAYS + 9} days after the last day retention processed ({gone:%d/%m/%Y}), and a "
        f"run acts on more than {retention.UNCHECKED_DAYS} days at once only when someone has checked the clock: "
        "if it is wrong, put it right; if it is right, run `signpost retention run --catch-up-to DD/MM/YYYY` at "
        "the terminal with today's date as you know it (`--dry-run` first says what the run would archive and "
        "destroy)"
    )
    other_day = today - timedelta(days=1)
    mistyped = await cli.run("retention", "run", "--catch-up-to", f"{other_day:%d/%m/%Y}")
    assert mistyped.code != 0
    assert mistyped.said.splitlines()[-1] == (
        f"signpost: The host's clock says today is {today:%d/%m/%Y}, not {other_day:%d/%m/%Y}: nothing was "
        "changed. Put the clock right first (retention takes today's date from it), then run again."
    )
    dry = await cli.run("retention", "run", "--dry-run", "--catch-up-to", f"{today:%d/%m/%Y}")
    assert dry.code != 0 and dry.said.endswith("--catch-up-to only works without --dry-run")
    assert await _last_day(db_url) == gone

    confirmed = await cli.run("retention", "run", "--catch-up-to", f"{today:%d/%m/%Y}")
    assert confirmed.code == 0, confirmed.said
    assert f"Retention ({gone + timedelta(days=1):%d/%m/%Y} to {today:%d/%m/%Y})" in confirmed.out
    assert await _last_day(db_url) == today
    runs = [e for e in await asyncio.to_thread(audit_events, cli) if e["action"] == "retention_run"]
    assert [(e["outcome"], e["detail"]) for e in runs][2:] == [
        ("started", ""),
        ("refused", "clock unchecked"),
        ("refused", "--catch-up-to not today"),
        ("refused", "--catch-up-to"),
        ("started", ""),
        ("done", "archived 0, destroyed 0, sealed in 0"),
    ], runs
