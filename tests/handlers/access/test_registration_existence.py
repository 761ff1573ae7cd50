"""`register PRACTITIONER_ID` must not tell a stranger whether an id is in the register: one answer
whatever the id (active, unknown or inactive), no request number, and the rule that one chat account
has one registration waiting answers alike too. Through the dispatcher on both backends."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import Outcome, Platform, Principal, Reply
from store.people import practitioners
from store.tables.people import RegistrationRequest
from tests.access_helpers import audit_events, load_access, notices
from tests.factories import say

FIRST = Principal(Platform.SLACK, "T0001", "U0001")
SECOND = Principal(Platform.SLACK, "T0001", "U0002")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


def _as_for(reply: Reply, typed: str) -> tuple[Outcome, str]:
    """The answer with the id the person typed taken out: what is left must not depend on it."""
    return reply.outcome, reply.text.replace(typed, "ID")


async def _registrations(app: Signpost) -> list[tuple[str, str]]:
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(RegistrationRequest).order_by(RegistrationRequest.id))).scalars()
        return [(row.user_id, row.practitioner_id) for row in rows]


async def test_an_active_an_unknown_and_an_inactive_id_get_one_answer(app: Signpost) -> None:
    """The answer is the same (save the id typed), names no request number, and is kind: the person
    is told they will hear here, and whom to ask."""
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "P003", "inactive")
    third = Principal(Platform.SLACK, "T0001", "U0003")
    known = await say(app, FIRST, "register P001")
    unknown = await say(app, SECOND, "register NOPE99")
    inactive = await say(app, third, "register P003")
    assert _as_for(known, "P001") == _as_for(unknown, "NOPE99") == _as_for(inactive, "P003")
    assert known.outcome is Outcome.DONE
    for reply in (known, unknown, inactive):
        assert not re.search(r"\bR[0-9]+\b", reply.text), reply.text
    assert "told here" in known.text and "ask your duty manager" in known.text
    assert await _registrations(app) == [("U0001", "P001")], "only the active id opens a request"
    assert len(await notices(app)) == 1, "its duty manager is asked"
    details = [e.detail for e in await audit_events(app, "register")]
    assert details == ["registration R1", "not in register", "not in register"], "the unknown attempts audited"


async def test_one_waiting_registration_per_account_tells_nothing_either(app: Signpost) -> None:
    """An account whose first id was real has a registration waiting; one whose first id was unknown
    has none. Their next `register` (any id) is answered alike, so the rule tells nothing of the first."""
    first_real = await say(app, FIRST, "register P001")
    first_unknown = await say(app, SECOND, "register NOPE99")
    again_real = await say(app, FIRST, "register P002")
    again_unknown = await say(app, SECOND, "register P002")
    assert _as_for(first_real, "P001") == _as_for(first_unknown, "NOPE99")
    assert again_real.text == again_unknown.text and again_real.outcome is again_unknown.outcome
    assert await _registrations(app) == [("U0001", "P001"), ("U0002", "P002")], "the waiting one stands"
    assert [e.detail for e in await audit_events(app, "register")][2] == "registration R1 waiting"
