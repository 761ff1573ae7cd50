"""Events that no chat user sent carry their Origin, and misuse rules about chat sessions ignore them.

A practitioner who uses Slack and then opens the enrolment page in a browser, and an admin who does a
Slack lookup and then runs `signpost match` at the terminal, used Signpost from one chat platform
only: neither is "one identity used from two platforms at once", so their duty managers hear
nothing. Through the real enrolment page (aiohttp on loopback) and the batch use case the match
command runs, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import pyotp
import pytest
from aiohttp import web
from sqlalchemy import select, update

from bot import enrol_page
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.misuse.monitor import sweep
from handlers.reconcile import run_batch
from handlers.roll import Roll, read_roster
from handlers.vocabulary import ORIGINS, Action, Origin, Outcome, Platform, Principal, is_origin
from store.audit.log import ORIGIN_TENANT, origin_event
from store.people import practitioners
from store.tables.audit import AuditEvent
from store.tables.delivery import Notice
from store.tables.people import Practitioner
from tests.factories import AMY, BEN, CHILDREN_HEADER, NO_INVOLVEMENTS, TWIN_A, TWIN_B, load_standard, say
from tests.stepup_helpers import ensure_enrolled

SAM = Principal(Platform.SLACK, "T1", "U-sam")  # P001, a social worker in Northshire (duty manager DM01)
ALEX = Principal(Platform.SLACK, "T1", "U-alex")  # AD01, the service admin


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    async with signpost.ctx.db.write() as session:
        for principal, pid in ((SAM, "P001"), (ALEX, "AD01")):  # linked long ago: not an account just approved
            await practitioners.link_identity(session, principal, pid, signpost.ctx.clock.now() - timedelta(days=30))
    return signpost


@pytest.fixture
async def server(app: Signpost) -> AsyncIterator[str]:
    """Signpost's one aiohttp application with the enrolment page, on a free loopback port."""
    runner = web.AppRunner(create_app(app, load_settings(), [enrol_page.add_routes]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def told(app: Signpost) -> list[tuple[str, str]]:
    """(recipient, kind) of every notice queued, once the live misuse checks have caught up; the lead
    professional's "your child was looked up" notice is a feature of its own, not an alert."""
    await app.ctx.audit.settle()
    async with app.ctx.db.read() as session:
        found = (await session.execute(select(Notice))).scalars()
        return [(n.recipient_id, n.kind) for n in found if n.kind != "lead_informed"]


async def events(app: Signpost, action: Action) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
        return list((await session.execute(query)).scalars())


async def enrol_through_the_page(app: Signpost, who: Principal, server: str) -> None:
    """Send enrol from Slack, open the link in a browser, confirm in Slack with the page's secret."""
    reply = await say(app, who, "enrol")
    assert reply.challenge is not None and len(reply.links) == 1, reply
    async with (
        aiohttp.ClientSession() as http,
        http.post(server + urlsplit(reply.links[0].url).path) as page,
    ):  # the page's button
        assert page.status == 200
        text = await page.text()
    start = text.index('<code id="secret">') + len('<code id="secret">')
    secret = text[start : text.index("</code>", start)].replace(" ", "")
    code = pyotp.TOTP(secret).at(app.ctx.clock.now())
    confirmed = await say(app, who, "code", code=code, challenge_id=reply.challenge.challenge_id)
    assert confirmed.outcome is Outcome.DONE, confirmed


async def test_a_slack_user_who_enrols_through_the_page_raises_no_alert(
    app: Signpost, server: str, clock: FakeClock
) -> None:
    """Slack, then the browser page, then Slack again within minutes: no alert, nobody told."""
    assert (await say(app, SAM, "help")).outcome is Outcome.INFO
    clock.advance(minutes=1)
    await enrol_through_the_page(app, SAM, server)
    clock.advance(minutes=1)
    assert (await say(app, SAM, AMY)).outcome is Outcome.ANSWERED

    assert await sweep(app.ctx, clock.now()) == []
    assert await told(app) == []
    assert await events(app, Action.ALERT) == []
    [shown] = await events(app, Action.ENROL_PAGE)
    assert (shown.platform, shown.tenant, shown.actor_id) == (Origin.ENROLMENT_PAGE, ORIGIN_TENANT, "P001")


PRIYA = Principal(Platform.SLACK, "T1", "U-priya")  # P002, a school nurse in Northshire (involved with Amy)


@pytest.mark.parametrize(
    ("who", "pid", "refs"),
    [(PRIYA, "P002", [BEN, TWIN_A, AMY, TWIN_B, NO_INVOLVEMENTS]), (SAM, "P001", [AMY] * 7)],
    ids=["P002-five-children", "P001-their-own-child"],
)
async def test_a_new_practitioners_first_evening_after_enrolling_raises_no_alert(
    app: Signpost, server: str, clock: FakeClock, who: Principal, pid: str, refs: list[str]
) -> None:
    """Enrolled at 20:25 UK time (Slack, the page, the first code), then lookups from 20:30: a
    new practitioner has no usual hours yet to be outside of, so their duty manager hears nothing."""
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, PRIYA, "P002", clock.now() - timedelta(days=30))
    clock.set(datetime(2026, 11, 2, 20, 25, tzinfo=UTC))  # UK time is UTC in November
    await enrol_through_the_page(app, who, server)
    clock.set(datetime(2026, 11, 2, 20, 30, tzinfo=UTC))
    for ref in refs:
        assert (await say(app, who, ref)).outcome is Outcome.ANSWERED
        clock.advance(seconds=50)

    assert await sweep(app.ctx, clock.now()) == []
    assert await told(app) == []
    assert await events(app, Action.ALERT) == []
    assert [e.actor_id for e in await events(app, Action.LOOKUP)] == [pid] * len(refs)


async def test_an_admin_who_matches_a_roll_after_a_slack_lookup_raises_no_alert(
    app: Signpost, clock: FakeClock
) -> None:
    """A Slack lookup and, two minutes later, `signpost match` at the terminal: no alert, nobody told."""
    async with app.ctx.db.write() as session:  # an admin who also works cases, so may look up
        await session.execute(update(Practitioner).where(Practitioner.id == "AD01").values(roles="admin;practitioner"))
    await ensure_enrolled(app, "AD01")  # in the console, long enough before to be outside the window
    clock.advance(minutes=15)
    assert (await say(app, ALEX, AMY)).outcome is Outcome.ANSWERED
    clock.advance(minutes=2)
    roll = f"{CHILDREN_HEADER}\n,Amy,Jones,,2014-04-03,,,,\n"
    with await run_batch(app.ctx, "AD01", read_roster(Roll("roll.csv", roll)), 5, "corr-roll") as answers:
        assert [a.decision.value for a in answers] == ["match"]

    assert await sweep(app.ctx, clock.now()) == []
    assert await told(app) == []
    assert await events(app, Action.ALERT) == []
    [batch] = await events(app, Action.MATCH_BATCH)
    assert (batch.platform, batch.tenant, batch.actor_id, batch.user_id) == (
        Origin.BATCH,
        ORIGIN_TENANT,
        "AD01",
        "AD01",
    )


async def test_two_chat_platforms_at_once_still_alert_beside_an_origin_event(
    app: Signpost, server: str, clock: FakeClock
) -> None:
    """The rule still sees chat: Slack, the enrolment page, then the console within minutes alerts DM01."""
    await enrol_through_the_page(app, SAM, server)
    clock.advance(minutes=2)
    await say(app, "P001", "help")  # the console: a chat front end of its own
    assert ("DM01", "misuse_alert") in await told(app)
    [alert] = await events(app, Action.ALERT)
    assert alert.detail == "shared_login: P001"
    assert (alert.platform, alert.tenant, alert.user_id) == (Origin.SCHEDULER, ORIGIN_TENANT, "misuse-monitor")


@pytest.mark.parametrize("origin", list(Origin))
def test_every_origin_is_its_own_platform_under_one_tenant(origin: Origin) -> None:
    """The factory stores the origin as platform and channel, the one tenant, and no chat platform clashes."""
    at = datetime(2026, 11, 2, 10, tzinfo=UTC)
    record = origin_event(origin, Action.BACKUP, at, who="ops")
    assert (record.platform, record.tenant, record.channel, record.user_id) == (origin, "signpost", origin, "ops")
    assert is_origin(record.platform) and not any(is_origin(p) for p in Platform)
    assert {o.value for o in Origin} == ORIGINS
