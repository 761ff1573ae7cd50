"""Misuse rules stay silent on a realistic day: an authority's two weeks of ordinary work, then the day.

The store (tests/handlers/misuse/conftest.py) is built once per backend and copied per test; the
day's events are computed again from the same seed, so each rule is checked after every event and
every hour of it without writing it again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.app import Signpost
from handlers.misuse.monitor import RULES, MisusePolicy, evaluate
from store.audit.log import AuditRecord
from store.keys.crypto import KeyRing
from tests.handlers.misuse.misuse_world import alerts, at_uk


@pytest.fixture
def db_url(normal_day_db_url: str) -> str:
    return normal_day_db_url


@pytest.fixture
def keys(world_keys: KeyRing) -> KeyRing:
    return world_keys


@pytest.mark.parametrize("rule", sorted(RULES))
async def test_rule_stays_silent_on_a_normal_day(signpost: Signpost, normal_day: list[AuditRecord], rule: str) -> None:
    """Two weeks of ordinary work, then the day checked after every one of its events and every hour."""
    today = normal_day
    assert len(today) > 150
    policy = MisusePolicy()
    fired = []
    for record in today:
        assert record.actor_id is not None
        fired += await evaluate(signpost.ctx, policy, record.actor_id, [rule], record.at + timedelta(seconds=1))
    for hours in range(26):
        now = at_uk(0) + timedelta(hours=hours)
        active = {r.actor_id for r in today if now - policy.sweep_lookback <= r.at <= now and r.actor_id}
        for actor_id in active:
            fired += await evaluate(signpost.ctx, policy, actor_id, [rule], now)
    assert fired == []
    assert await alerts(signpost) == []
