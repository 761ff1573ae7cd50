"""What the notice-delivery tests share: a Signpost with the access-request register loaded, and
P001 (a duty manager) linked to a Slack account, so that notices to P001 have somewhere to go."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from tests.access_helpers import load_access

SLACK = Principal(Platform.SLACK, "T1", "U1")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, SLACK, "P001", signpost.ctx.clock.now())
    return signpost
