"""Fixtures for the Teams front end: a fake connector on loopback and the app with Teams mounted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Signpost
from tests.bot.teams_support import DANA, PRIYA, TeamsApp, link, settings
from tests.factories import load_standard
from tests.fakes.teams_connector import FakeConnector

try:  # step-up (issue 4): searches need a fresh code once it lands
    from tests.stepup_helpers import enrol_and_step_up  # type: ignore[import-not-found]
except ImportError:  # not merged yet: nothing to do

    async def enrol_and_step_up(app: Signpost, practitioner_id: str) -> None:
        return None


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = await FakeConnector().start()
    yield fake
    await fake.close()


@pytest.fixture
async def loaded(signpost: Signpost) -> Signpost:
    """The standard synthetic feeds, PRIYA linked to P002 and DANA to DM01, both stepped up."""
    await load_standard(signpost)
    await link(signpost, PRIYA, "P002")
    await link(signpost, DANA, "DM01")
    await enrol_and_step_up(signpost, "P002")
    await enrol_and_step_up(signpost, "DM01")
    return signpost


@pytest.fixture
async def teams(loaded: Signpost) -> AsyncIterator[TeamsApp]:
    """Signpost's web app with Teams in (explicit) anonymous development mode."""
    app = await TeamsApp.start(loaded, settings())
    yield app
    await app.close()
