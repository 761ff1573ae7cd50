"""A misuse alert goes to the duty managers it can reach: one with no account linked on a platform
this server delivers on (here Slack alone, ``ctx.reaches``) is skipped for one who has."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Platform, Principal
from store.keys.crypto import KeyRing
from store.people import practitioners
from tests.handlers.misuse.misuse_world import World, alerts, at_uk
from tests.stepup_helpers import say_fresh

WHO = "NS-P0001"


@pytest.fixture
def db_url(world_db_url: str) -> str:
    return world_db_url


@pytest.fixture
def keys(world_keys: KeyRing) -> KeyRing:
    return world_keys


async def test_an_alert_skips_an_unlinked_duty_manager_for_a_linked_one(
    signpost: Signpost, clock: FakeClock, world: World
) -> None:
    """NS-DM01 has no Slack account, NS-DM02 has: the out-of-area alert about WHO goes to NS-DM02 alone."""
    signpost.ctx.reaches = frozenset({Platform.SLACK})
    async with signpost.ctx.db.write() as session:
        principal = Principal(Platform.SLACK, "T0001", "UDM02")
        await practitioners.link_identity(session, principal, "NS-DM02", clock.now())
    clock.set(at_uk(10))
    for kid in world.in_area("Southvale")[:5]:
        await say_fresh(signpost, WHO, str(kid.ref))
        clock.advance(minutes=20)
    found = [(r, text) for r, text in await alerts(signpost) if "(out of area)" in text]
    assert [r for r, _ in found] == ["NS-DM02"]
    assert WHO in found[0][1]
