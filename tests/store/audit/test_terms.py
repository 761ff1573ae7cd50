"""Sealed query terms: a month's key can be made inside a write transaction (SQLite has one writer)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import Signpost


async def test_sealing_in_a_write_transaction_creates_the_months_key_there(signpost: Signpost) -> None:
    """A changing command sealing terms that touch no single child, first in its month: no deadlock."""
    sealer, at = signpost.ctx.sealer, datetime(2027, 1, 5, 10, tzinfo=UTC)
    async with signpost.ctx.db.write() as session:
        sealed, key = await sealer.seal(session, "approve 12", (), at)
    assert key == "period:2027-01" and sealed is not None
    async with signpost.ctx.db.read() as session:
        assert await sealer.open(session, sealed, key) == "approve 12"


async def test_a_rolled_back_months_key_is_not_reused(signpost: Signpost) -> None:
    """If the transaction that made the key rolls back, later terms get a key that really exists."""
    sealer, at = signpost.ctx.sealer, datetime(2027, 2, 5, 10, tzinfo=UTC)
    try:
        async with signpost.ctx.db.write() as session:
            await sealer.seal(session, "first", (), at)
            raise RuntimeError("the command failed")
    except RuntimeError:
        pass
    async with signpost.ctx.db.read() as session:
        sealed, key = await sealer.seal(session, "second", (), at)
    assert key is not None and sealed is not None
    async with signpost.ctx.db.read() as session:
        assert await sealer.open(session, sealed, key) == "second"
