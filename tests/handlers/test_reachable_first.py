"""Notices someone must act on go to those they can reach: an authority's duty managers linked on a
platform this server delivers on, else the admins who are, and only when nobody at all is, the old
list (queued for when they link), with one warning that names nobody.

The server here delivers on Slack alone (``ctx.reaches``, as ``bot.web.create_app`` sets it for a
chat front end): a practitioner with no linked Slack account cannot be reached. In the standard
register DM01 is Northshire's only duty manager and AD01 the only admin; ``load_access`` gives
Southvale two duty managers, DM02 and DM03.
"""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from bot.app import Signpost
from bot.notify import Outbox
from handlers.access import jobs as access_jobs
from handlers.access.requests import unlink_identities
from handlers.clock import FakeClock
from handlers.vocabulary import Notice, Outcome, Platform, Principal
from store.people import practitioners
from tests.access_helpers import load_access, notices, request_access
from tests.factories import SHIELDED, say
from tests.stepup_helpers import five_wrong_codes

NEW_ACCOUNT = Principal(Platform.SLACK, "T0001", "U0NEW")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    signpost.ctx.reaches = frozenset({Platform.SLACK})
    return signpost


async def link(app: Signpost, practitioner_id: str) -> None:
    async with app.ctx.db.write() as session:
        principal = Principal(Platform.SLACK, "T0001", f"U{practitioner_id}")
        await practitioners.link_identity(session, principal, practitioner_id, app.ctx.clock.now())


async def sent(app: Signpost, kind: str) -> list[str]:
    return [n.recipient_id for n in await notices(app) if n.kind == kind]


async def test_a_lockout_whose_duty_manager_is_unlinked_tells_a_linked_admin(app: Signpost, clock: FakeClock) -> None:
    """P001 (Northshire) is locked out; DM01 has no Slack account, AD01 has: AD01 is told, and P001 hears so."""
    await link(app, "AD01")
    locked = await five_wrong_codes(app, clock, "P001")
    assert locked.outcome is Outcome.LOCKED
    assert "Signpost's administrators have been told." in locked.text
    assert await sent(app, "stepup_locked") == ["AD01"]
    [notice] = [n for n in await notices(app, "AD01") if n.kind == "stepup_locked"]
    assert "P001" in notice.text and "Sam" not in notice.text


async def test_a_lockout_still_goes_to_a_linked_duty_manager_not_the_admins(app: Signpost, clock: FakeClock) -> None:
    await link(app, "DM01")
    await link(app, "AD01")
    locked = await five_wrong_codes(app, clock, "P001")
    assert "Your duty manager has been told." in locked.text
    assert await sent(app, "stepup_locked") == ["DM01"]


async def test_a_lockout_nobody_can_be_reached_for_is_queued_as_before_with_one_warning(
    app: Signpost, clock: FakeClock
) -> None:
    """Nobody linked: DM01 gets it queued (for when they link), and one warning names nobody."""
    with capture_logs() as logs:
        await five_wrong_codes(app, clock, "P001")
    assert await sent(app, "stepup_locked") == ["DM01"]
    warnings = [e for e in logs if e["event"] == "notice_nobody_reachable" and e["kind"] == "stepup_locked"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert set(warnings[0]) == {"event", "log_level", "kind", "role", "queued"}, "kinds and a number, no id"
    assert (warnings[0]["role"], warnings[0]["queued"]) == ("duty_manager", 1)


async def test_an_access_request_first_asks_a_linked_duty_manager_skipping_an_unlinked_one(
    app: Signpost, clock: FakeClock
) -> None:
    """DM02 (first by id) has no Slack account, DM03 has: DM03 is asked first; the escalation goes
    on to the admins (nobody linked there: AD01, queued), never to the unreachable DM02."""
    await link(app, "DM03")
    asked = await request_access(app, "P002", SHIELDED)
    assert asked.outcome is Outcome.DONE and "sent to a duty manager" in asked.text
    assert await sent(app, "access_request") == ["DM03"]
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 0, "nobody after the admins"
    assert await sent(app, "access_request") == ["DM03", "AD01"]


async def test_an_escalation_asks_a_duty_manager_who_linked_since_never_the_same_one_twice(
    app: Signpost, clock: FakeClock
) -> None:
    """Only DM03 linked: DM03 is asked. DM02 links before the escalation: DM02 is asked next (not
    DM03 again, as the position in a list that grew would say), then the admins."""
    await link(app, "DM03")
    await request_access(app, "P002", SHIELDED)
    await link(app, "DM02")
    for _ in range(2):
        clock.advance(minutes=30)
        assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    assert await sent(app, "access_request") == ["DM03", "DM02", "AD01"]


async def test_an_escalation_still_asks_a_reachable_duty_manager_when_one_asked_has_unlinked(
    app: Signpost, clock: FakeClock
) -> None:
    """DM02 and DM03 linked: DM02 is asked, then unlinks. The escalation asks DM03, who can still be
    reached and was not asked, before the admins."""
    for pid in ("DM02", "DM03"):
        await link(app, pid)
    await request_access(app, "P002", SHIELDED)
    async with app.ctx.db.write() as session:
        assert await unlink_identities(session, "DM02", None) == 1
    clock.advance(minutes=30)
    assert await access_jobs.escalate_requests(app.ctx, clock.now()) == 1
    assert await sent(app, "access_request") == ["DM02", "DM03"]


class Slack:
    """A chat platform that takes every notice and records whose it was."""

    platform = Platform.SLACK

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.sent.append((notice.recipient_id, notice.kind))


async def test_a_stand_in_for_a_request_skips_an_unlinked_duty_manager(app: Signpost) -> None:
    """DM03, asked first, leaves before delivery; DM02 is still unlinked: the request stands in with
    AD01, who can be reached, not with DM02, who cannot."""
    await link(app, "DM03")
    await link(app, "AD01")
    await request_access(app, "P002", SHIELDED)
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "DM03", "inactive")
    slack = Slack()
    box = Outbox(app.ctx, [slack])
    await box.deliver_due()
    await box.deliver_due()  # the stand-in, queued by the first pass
    assert await sent(app, "access_request") == ["DM03", "AD01"]
    assert [to for to, kind in slack.sent if kind == "access_request"] == ["AD01"]


async def test_an_access_request_with_no_linked_duty_manager_goes_to_a_linked_admin(app: Signpost) -> None:
    await link(app, "AD01")
    asked = await request_access(app, "P002", SHIELDED)
    assert "sent to Signpost's administrators" in asked.text
    assert await sent(app, "access_request") == ["AD01"]


async def test_a_registration_goes_to_the_linked_duty_manager_only(app: Signpost) -> None:
    """S001 (Southvale) registers a Slack account: only DM03, the linked duty manager, is asked."""
    await link(app, "DM03")
    asked = await say(app, NEW_ACCOUNT, "register S001")
    assert asked.outcome is Outcome.DONE
    assert await sent(app, "registration_request") == ["DM03"]
