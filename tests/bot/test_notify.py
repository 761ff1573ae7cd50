"""The notice outbox runner and the scheduler: delivery, retries, unreachable people, replicas."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text
from structlog.testing import capture_logs

from bot.app import Signpost, build
from bot.console.notices import ConsoleDeliverer
from bot.delivery import DeliveryFailed
from bot.notify import CLAIM_CHUNK, FAILING_AFTER, Outbox, email_sent, emails_due
from bot.scheduler import SCHEDULER_KEY, Scheduler, Task, add_scheduler
from bot.slack.front import SlackDeliverer, add_slack, web_client
from bot.web import create_app
from handlers import every_contact
from handlers.access import jobs as access_jobs
from handlers.clock import FakeClock
from handlers.context import Context
from handlers.operator import people
from handlers.operator.common import audited
from handlers.stand_in import NOT_ACTIVE
from handlers.vocabulary import Action, Button, Notice, Outcome, Platform, Principal
from store.db import Database
from store.delivery import outbox
from store.keys.crypto import KeyRing
from store.people import practitioners
from store.tables.delivery import Notice as NoticeRow
from store.tables.delivery import NoticeClaim
from tests.access_helpers import decide, fresh_say, load_access, request_access
from tests.bot.conftest import slack_settings
from tests.factories import AMY, SHIELDED, say
from tests.fakes.slack_api import FakeSlackApi
from tests.statements import sqlite_plan, statements_sent
from tests.stepup_helpers import code_now, ensure_enrolled


class FakePlatform:
    """A chat platform that records what it is given, and can be told to fail the next sends."""

    def __init__(self, platform: Platform, sent: list[tuple[Principal, Notice]], failures: int = 0) -> None:
        self.platform = platform
        self.sent = sent
        self.failures = failures

    async def deliver(self, to: Principal, notice: Notice) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryFailed("platform unavailable")
        await asyncio.sleep(0)  # a real platform call yields to the loop
        self.sent.append((to, notice))


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


@pytest.fixture
async def second(db_url: str, keys: KeyRing, clock: FakeClock) -> AsyncIterator[Signpost]:
    other = build(Database.connect(db_url), keys, clock)
    yield other
    await other.close()


async def _enqueue(app: Signpost, *found: Notice) -> None:
    async with app.ctx.db.write() as session:
        await app.ctx.notices.enqueue(session, list(found), app.ctx.clock.now())


async def _link(app: Signpost, principal: Principal, practitioner_id: str) -> None:
    async with app.ctx.db.write() as session:
        await practitioners.link_identity(session, principal, practitioner_id, app.ctx.clock.now())


async def _row(app: Signpost) -> NoticeRow:
    async with app.ctx.db.read() as session:
        return (await session.execute(select(NoticeRow).order_by(NoticeRow.id).limit(1))).scalar_one()


APPROVE = Button("approve", "Approve", "approve 7", style="primary")


async def test_console_prints_a_notice_only_while_acting_as_its_recipient(app: Signpost) -> None:
    out = io.StringIO()
    acting = ["P002"]
    box = Outbox(app.ctx, [ConsoleDeliverer(lambda: acting[0], lambda text: print(text, file=out))])
    await _enqueue(app, Notice("DM02", "access_request", "Access request 7 needs a decision.", (APPROVE,), "n1"))

    first = await box.deliver_due()
    assert (first.delivered, first.waiting) == (0, 1) and out.getvalue() == ""
    acting[0] = "DM02"
    second_pass = await box.deliver_due()
    assert second_pass.delivered == 1
    assert out.getvalue() == "[notice] Access request 7 needs a decision.\n  [Approve] type: approve 7\n"
    await box.deliver_due()
    assert out.getvalue().count("[notice]") == 1, "delivered once"


async def test_a_failed_platform_is_retried_later_with_backoff(app: Signpost, clock: FakeClock) -> None:
    sent: list[tuple[Principal, Notice]] = []
    slack = Principal(Platform.SLACK, "T1", "U1")
    await _link(app, slack, "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=1)])
    await _enqueue(app, Notice("P001", "test", "Access request 7 was approved.", dedupe_key="n1"))

    assert (await box.deliver_due()).retried == 1
    row = await _row(app)
    assert (row.attempts, row.last_error, row.delivered_at) == (1, "slack: DeliveryFailed", None)
    assert (await box.deliver_due()).delivered == 0, "not due again before the backoff"
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 1
    assert [(to, n.text) for to, n in sent] == [(slack, "Access request 7 was approved.")]
    assert (await _row(app)).delivered_at is not None


async def test_the_next_linked_platform_is_tried_when_one_fails(app: Signpost) -> None:
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-1"), "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=5), FakePlatform(Platform.TEAMS, sent)])
    await _enqueue(app, Notice("P001", "test", "hello", dedupe_key="n1"))
    assert (await box.deliver_due()).delivered == 1
    assert [to.platform for to, _ in sent] == [Platform.TEAMS]


async def test_a_new_link_is_told_on_every_linked_account_not_just_the_first(app: Signpost) -> None:
    """ "An account was linked to your id" reaches each chat account the practitioner has, so a link they
    did not ask for is seen wherever they are; ordinary notices still go to the first that answers."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-1"), "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent), FakePlatform(Platform.TEAMS, sent)])
    await _enqueue(
        app,
        Notice("P001", "registration_approved", "A Slack account was linked", dedupe_key="r1"),
        Notice("P001", "test", "hello", dedupe_key="n1"),
    )
    assert (await box.deliver_due()).delivered == 2
    told = sorted((to.platform.value, n.kind) for to, n in sent)
    assert told == [("slack", "registration_approved"), ("slack", "test"), ("teams", "registration_approved")]


async def test_an_authenticator_reset_is_told_on_every_linked_account(app: Signpost) -> None:
    """DM01 resets P001's authenticator: the notice reaches P001's Slack and Teams accounts both (the
    one that asked may be a taken one), and the same words wait for the mailer at the secure email."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-1"), "P001")
    await ensure_enrolled(app, "P001")
    assert (await fresh_say(app, "DM01", "reset P001")).outcome is Outcome.DONE
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent), FakePlatform(Platform.TEAMS, sent)])
    await box.deliver_due()
    told = sorted(to.platform.value for to, n in sent if to.user_id in {"U1", "aad-1"} and n.kind == "stepup_reset")
    assert told == ["slack", "teams"]
    mail = [(due.address, due.notice.text) for due in await emails_due(app.ctx)]
    assert [(address, text.split(".")[0]) for address, text in mail] == [
        ("sam.carter@northshire.example", "Your Signpost authenticator was reset by your duty manager")
    ]


async def test_a_new_link_and_a_reset_reach_every_account_and_the_email_through_one_home(app: Signpost) -> None:
    """P001, on Teams, links a Slack account (DM01 approves), then DM01 resets P001's authenticator: each
    notice reaches both chat accounts and waits for the mailer with the same words, because both are
    made by the one home (``handlers.every_contact``) whose kinds the outbox sends to every account."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-1"), "P001")
    slack = Principal(Platform.SLACK, "T1", "U1")
    assert (await say(app, slack, "register P001")).outcome is Outcome.DONE
    assert (await decide(app, "DM01", "approve", "R1")).outcome is Outcome.DONE
    await ensure_enrolled(app, "P001")
    assert (await fresh_say(app, "DM01", "reset P001")).outcome is Outcome.DONE
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent), FakePlatform(Platform.TEAMS, sent)])
    await box.deliver_due()

    told = sorted((n.kind, to.platform.value) for to, n in sent if to.user_id in {"U1", "aad-1"})
    kinds = [every_contact.LINKED, every_contact.RESET]
    assert told == sorted((kind, platform) for kind in kinds for platform in ("slack", "teams"))
    chat = {n.kind: n.text for _, n in sent if n.kind in kinds}
    mail = [(due.address, due.notice.text) for due in await emails_due(app.ctx)]
    assert mail == [("sam.carter@northshire.example", chat[kind]) for kind in kinds]
    assert frozenset(kinds) == every_contact.EVERY_ACCOUNT


def _dms(fake_slack: FakeSlackApi) -> list[tuple[str, str]]:
    """Each direct message Slack was asked to post: (the user whose DM it went to, its text)."""
    users = {c.answer["channel"]["id"]: c.body["users"] for c in fake_slack.of("conversations.open")}
    return [(users[c.body["channel"]], c.body["text"]) for c in fake_slack.of("chat.postMessage")]


async def test_an_account_replaced_by_a_new_link_is_told_once_in_its_own_dm(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """R1 links UNEW to P001 in place of UOLD, through the dispatcher: UOLD, no longer linked, is told so
    in its own DM (the real owner, if an intruder's account took their place), UNEW that it was linked;
    a later pass sends neither again."""
    old, new = Principal(Platform.SLACK, "T1", "UOLD"), Principal(Platform.SLACK, "T9", "UNEW")
    await _link(app, old, "P001")
    assert (await say(app, new, "register P001")).outcome is Outcome.DONE
    assert (await decide(app, "DM01", "approve", "R1")).outcome is Outcome.DONE
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])

    await box.deliver_due()
    clock.advance(hours=2)
    await box.deliver_due()
    sent = _dms(fake_slack)
    assert sorted(user for user, _ in sent) == ["UNEW", "UOLD"], "each told once"
    [(_, replaced)] = [(user, text) for user, text in sent if user == "UOLD"]
    assert replaced.startswith(
        "Your Slack account is no longer linked to Signpost practitioner id P001: another Slack account "
        "was linked in its place (registration R1, approved by DM01 at "
    )
    assert replaced.endswith("If you did not ask for this, tell your duty manager at once.")
    assert "UNEW" not in replaced and "T9" not in replaced, "ids of the practitioner and the request only"
    [(_, linked)] = [(user, text) for user, text in sent if user == "UNEW"]
    assert linked.startswith("A Slack account was linked to your Signpost practitioner id P001")


async def test_a_notice_for_one_account_goes_there_alone_linked_or_not_while_its_practitioner_is_active(
    app: Signpost,
) -> None:
    """Addressed to a Teams account no longer linked (its user id holds a colon): sent there, not to
    the practitioner's linked accounts; not sent at all once the practitioner is inactive."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-2"), "P002")
    gone = Principal(Platform.TEAMS, "tenant", "29:aad-1")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent), FakePlatform(Platform.TEAMS, sent)])
    await _enqueue(
        app,
        Notice("P001", "registration_replaced", "no longer linked", dedupe_key="r1", account=gone),
        Notice("P002", "registration_replaced", "no longer linked", dedupe_key="r2", account=gone),
    )
    await _set_status(app, "P002", "inactive")

    report = await box.deliver_due()
    assert (report.delivered, report.dropped) == (1, 1)
    assert [(to, n.recipient_id, n.account) for to, n in sent] == [(gone, "P001", gone)]


async def test_a_person_on_no_platform_is_reported_once_in_the_admin_log_and_kept(
    app: Signpost, clock: FakeClock
) -> None:
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, [])])
    await _enqueue(app, Notice("P003", "access_approved", "Access request 7 was approved.", dedupe_key="n1"))
    with capture_logs() as logs:
        assert (await box.deliver_due()).unreachable == 1
        clock.advance(minutes=5)
        assert (await box.deliver_due()).unreachable == 1
    warnings = [entry for entry in logs if entry["event"] == "notice_recipient_unreachable"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning" and warnings[0]["kind"] == "access_approved"
    assert set(warnings[0]) == {"event", "log_level", "notice_id", "kind"}, "ids only, no personal data"
    row = await _row(app)
    assert row.delivered_at is None and row.attempts == 2, "kept for a later link"

    await _link(app, Principal(Platform.SLACK, "T1", "U3"), "P003")
    clock.advance(hours=1)
    assert (await box.deliver_due()).delivered == 1


async def test_two_replicas_deliver_every_notice_exactly_once(app: Signpost, second: Signpost) -> None:
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _enqueue(app, *[Notice("P001", "test", f"notice {i}", dedupe_key=f"n{i}") for i in range(20)])
    boxes = [Outbox(a.ctx, [FakePlatform(Platform.SLACK, sent)]) for a in (app, second)]
    reports = await asyncio.gather(*(box.deliver_due() for box in boxes))
    assert sum(r.delivered for r in reports) == 20
    assert sorted(n.text for _, n in sent) == sorted(f"notice {i}" for i in range(20))


async def test_a_pass_claims_and_records_notices_in_chunks_not_two_writes_a_notice(app: Signpost) -> None:
    """120 due notices: every one delivered once, with a handful of write statements per chunk of
    ``CLAIM_CHUNK`` (claim, record), not a claim and a record transaction for each notice (issue 15:
    one looked-up child tells its lead, so a notice per enquiry)."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _enqueue(app, *[Notice("P001", "test", f"notice {i}", dedupe_key=f"c{i}") for i in range(120)])
    with statements_sent(app.ctx.db) as statements:
        report = await Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)]).deliver_due()
    writes = [statement.sql for statement in statements if statement.verb in {"INSERT", "UPDATE", "DELETE"}]
    assert report.delivered == 120 and len(sent) == 120
    chunks = -(-120 // CLAIM_CHUNK)
    assert len(writes) <= 4 * chunks, writes  # before: two write transactions a notice (240+)


async def test_the_scheduler_runs_a_task_once_per_interval_across_replicas(
    app: Signpost, second: Signpost, clock: FakeClock
) -> None:
    runs: list[datetime] = []

    async def job(ctx: Context, now: datetime) -> None:
        runs.append(now)

    tasks = [Task("count", timedelta(minutes=1), job)]
    schedulers = [Scheduler(a.ctx, tasks, worker=name) for a, name in ((app, "a"), (second, "b"))]
    await asyncio.gather(*(s.run_due() for s in schedulers))
    assert len(runs) == 1
    clock.advance(seconds=30)
    await asyncio.gather(*(s.run_due() for s in schedulers))
    assert len(runs) == 1
    clock.advance(seconds=30)
    await asyncio.gather(*(s.run_due() for s in schedulers))
    assert len(runs) == 2


async def test_a_failing_task_is_logged_and_does_not_stop_the_others(app: Signpost) -> None:
    ran: list[str] = []

    async def broken(ctx: Context, now: datetime) -> None:
        raise RuntimeError("boom")

    async def fine(ctx: Context, now: datetime) -> None:
        ran.append("fine")

    scheduler = Scheduler(
        app.ctx, [Task("broken", timedelta(minutes=1), broken), Task("fine", timedelta(minutes=1), fine)]
    )
    with capture_logs() as logs:
        assert await scheduler.run_due() == ["fine"]
    assert ran == ["fine"]
    assert [(e["event"], e["task"], e["error"]) for e in logs] == [("scheduled_task_failed", "broken", "RuntimeError")]


async def test_access_notices_reach_slack_as_direct_messages_through_the_fake_web_api(
    app: Signpost, fake_slack: FakeSlackApi
) -> None:
    """A request's notice goes to the duty manager's Slack DM with Approve/Deny, and no child identity."""
    duty = Principal(Platform.SLACK, "T0001", "U0DUTY")
    await _link(app, duty, "DM02")
    await request_access(app, "P002", SHIELDED, "section 47 enquiry")  # a purpose naming her is refused
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).delivered == 1
    [opened] = fake_slack.of("conversations.open")
    assert opened.body["users"] == "U0DUTY"
    [posted] = fake_slack.of("chat.postMessage")
    assert (
        "Access request 1 for shielded record 999 000 0050 from Priya Shah, School nurse, "
        "Northshire School Health (Northshire) needs a decision" in posted.body["text"]
    )
    actions = [e for b in posted.body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in actions] == ["approve", "deny"]
    for word in ("Mia", "Stone", "30/06/2015", "2015-06-30", "S1 4ZZ"):
        assert word not in posted.raw


async def test_a_step_up_lockout_reaches_the_duty_manager_through_the_same_outbox(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Five wrong codes: the duty manager's Slack DM says whose code entry paused, with no code,
    no child and no query in it, delivered by the outbox that carries the access notices."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U0DUTY"), "DM01")
    authenticator = await ensure_enrolled(app, "P002")
    clock.advance(minutes=31)  # no longer fresh: the next search asks for a code
    challenged = await say(app, "P002", AMY)
    assert challenged.challenge is not None
    now = clock.now()
    valid = {authenticator.at(now + timedelta(seconds=delta)) for delta in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    for _ in range(5):
        reply = await say(app, "P002", "code", code=wrong, challenge_id=challenged.challenge.challenge_id)
    assert reply.outcome is Outcome.LOCKED and "paused" in reply.text  # the lockout is audited as such

    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).delivered == 1
    [opened] = fake_slack.of("conversations.open")
    assert opened.body["users"] == "U0DUTY"
    [posted] = fake_slack.of("chat.postMessage")
    assert "paused code entry for practitioner P002" in posted.body["text"]
    for secret in (wrong, code_now(app, authenticator), AMY, "Amy", "Jones", authenticator.secret):
        assert secret not in posted.raw
    assert (await box.deliver_due()).delivered == 0, "delivered once"


async def test_a_slack_failure_keeps_the_notice_for_a_later_retry(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    await _link(app, Principal(Platform.SLACK, "T0001", "U0DUTY"), "DM02")
    await request_access(app, "P002", SHIELDED)
    fake_slack.fail("chat.postMessage", "internal_error")
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).retried == 1
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 1
    assert len(fake_slack.of("chat.postMessage")) == 2


async def test_the_server_runs_the_scheduler_and_delivers_notices_by_slack(
    app: Signpost, fake_slack: FakeSlackApi
) -> None:
    """`signpost run` wiring: the scheduler starts with the aiohttp app and uses Slack's deliverer."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U0DUTY"), "DM02")
    await request_access(app, "P002", SHIELDED)
    web_app = create_app(app, slack_settings(fake_slack), [add_slack, add_scheduler])
    client = TestClient(TestServer(web_app, host="127.0.0.1"))
    await client.start_server()
    try:
        [posted] = await fake_slack.wait_for("chat.postMessage")
        assert "Access request 1" in posted.body["text"]
        assert isinstance(web_app[SCHEDULER_KEY], Scheduler)
    finally:
        await client.close()


async def _set_status(app: Signpost, practitioner_id: str, status: str) -> None:
    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, practitioner_id, status)


async def _rows(app: Signpost) -> list[NoticeRow]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeRow).order_by(NoticeRow.id))).scalars())


async def test_an_access_request_for_a_manager_made_inactive_goes_to_the_next_not_to_them(
    app: Signpost, fake_slack: FakeSlackApi
) -> None:
    """DM02 is told of a request, then made inactive before it is sent: nothing reaches DM02's
    Slack; the notice is recorded as not sent, with a reason naming nobody, and the request goes to
    the next duty manager of the child's authority (DM03), once."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U0DM02"), "DM02")
    await _link(app, Principal(Platform.SLACK, "T0001", "U0DM03"), "DM03")
    await request_access(app, "P002", SHIELDED)
    await _set_status(app, "DM02", "inactive")
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])

    first = await box.deliver_due()
    assert (first.delivered, first.dropped) == (0, 1)
    second = await box.deliver_due()
    assert second.delivered == 1
    assert (await box.deliver_due()).delivered == 0, "told once"
    assert [c.body["users"] for c in fake_slack.of("conversations.open")] == ["U0DM03"]
    [posted] = fake_slack.of("chat.postMessage")
    assert "Access request 1 for shielded record 999 000 0050" in posted.body["text"]
    dm02, dm03 = await _rows(app)
    assert (dm02.recipient_id, dm02.delivered_at, dm02.last_error) == ("DM02", None, "not sent: recipient not active")
    assert dm02.dropped_at is not None
    assert (dm03.recipient_id, dm03.dedupe_key, dm03.delivered_at is not None) == ("DM03", "access:1:0:DM03", True)


async def test_a_registration_whose_only_manager_was_made_inactive_goes_to_the_admins(app: Signpost) -> None:
    """Northshire's one duty manager (DM01) is made inactive while P003's registration waits to
    be sent: the admins are asked instead, as they would be had DM01 been inactive at the start."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "UDM01"), "DM01")
    await _link(app, Principal(Platform.SLACK, "T1", "UAD01"), "AD01")
    await say(app, Principal(Platform.SLACK, "T1", "UNEW"), "register P003")
    await _set_status(app, "DM01", "inactive")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)])

    assert (await box.deliver_due()).dropped == 1
    assert (await box.deliver_due()).delivered == 1
    assert [(to.user_id, n.kind, n.dedupe_key) for to, n in sent] == [
        ("UAD01", "registration_request", "registration:1:AD01")
    ]
    assert "asks to act as practitioner P003" in sent[0][1].text


async def test_a_notice_about_themselves_is_not_sent_to_someone_inactive_nor_to_anyone_else(app: Signpost) -> None:
    """A decision, an expiry: concerns its recipient alone. Made inactive, they are not told, and
    nobody is told in their place."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _enqueue(app, Notice("P001", "access_approved", "Access request 7 was approved.", dedupe_key="n1"))
    await _set_status(app, "P001", "inactive")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)])
    with capture_logs() as logs:
        assert (await box.deliver_due()).dropped == 1
    assert (await box.deliver_due()).dropped == 0, "recorded once, not tried again"
    assert sent == []
    [row] = await _rows(app)
    assert row.dropped_at is not None and row.last_error == "not sent: recipient not active"
    [entry] = [e for e in logs if e["event"] == "notice_dropped"]
    assert set(entry) == {"event", "log_level", "notice_id", "kind", "reason"}, "ids only"
    assert [e for e in logs if e["event"] == "notice_stood_in"] == [], "nobody stands in for news about themselves"


async def test_the_mailer_gets_an_email_notice_only_while_its_recipient_is_active(app: Signpost) -> None:
    """A registration's "your id was linked" e-mail is handed to the operator's mailer with the recorded
    address, once; one whose recipient was made inactive before the mailer ran is not handed over at
    all, but recorded not sent (a reason naming nobody), and nobody else is sent it."""
    slack = Principal(Platform.SLACK, "T1", "UNEW")
    await say(app, slack, "register P001")
    await say(app, Principal(Platform.SLACK, "T1", "UOTHER"), "register P003")
    await decide(app, "DM01", "approve", "R1")
    await decide(app, "DM01", "approve", "R2")
    await _set_status(app, "P003", "inactive")

    with capture_logs() as logs:
        due = await emails_due(app.ctx)

    assert [(e.address, e.notice.recipient_id, e.notice.kind) for e in due] == [
        ("sam.carter@northshire.example", "P001", "email")
    ]
    assert "A Slack account was linked to your Signpost practitioner id P001" in due[0].notice.text
    [p003] = [r for r in await _rows(app) if r.kind == "email" and r.recipient_id == "P003"]
    assert (p003.delivered_at, p003.dropped_at is not None, p003.last_error) == (None, True, NOT_ACTIVE)
    assert [e["notice_id"] for e in logs if e["event"] == "notice_dropped"] == [p003.id]
    await email_sent(app.ctx, due[0].notice_id)
    assert await emails_due(app.ctx) == [], "sent once; the dropped one is not offered again"
    assert [r.recipient_id for r in await _rows(app) if r.kind == "email"] == ["P001", "P003"]


async def _linked_by_email(app: Signpost, user_id: str, practitioner_id: str, request: str) -> None:
    """A registration approved: its "your id was linked" e-mail is queued for the mailer."""
    await say(app, Principal(Platform.SLACK, "T1", user_id), f"register {practitioner_id}")
    await decide(app, "DM01", "approve", request)


async def test_an_email_notice_the_mailer_has_not_taken_for_a_week_is_closed_not_sent(
    app: Signpost, clock: FakeClock
) -> None:
    """The operator's mailer did not run for a week: "your id was linked" is not e-mailed a week
    late, out of the blue, as no chat notice is. It is closed as not sent (a reason naming nobody,
    logged with ids only); one queued since is still handed over."""
    await _linked_by_email(app, "UNEW", "P001", "R1")
    clock.advance(days=7, seconds=1)
    await _linked_by_email(app, "UOTHER", "P003", "R2")

    with capture_logs() as logs:
        due = await emails_due(app.ctx)

    assert [e.notice.recipient_id for e in due] == ["P003"]
    [old] = [r for r in await _rows(app) if r.kind == "email" and r.recipient_id == "P001"]
    assert (old.delivered_at, old.dropped_at is not None) == (None, True)
    assert old.last_error == "not sent: not taken by the mailer for 7 days"
    [entry] = [e for e in logs if e["event"] == "notice_dropped"]
    assert entry == {
        "event": "notice_dropped",
        "log_level": "info",
        "notice_id": old.id,
        "kind": "email",
        "reason": "not sent: not taken by the mailer for 7 days",
    }
    assert [e.notice.recipient_id for e in await emails_due(app.ctx)] == ["P003"], "closed once, not offered"


@pytest.mark.sqlite_only
async def test_the_mailers_week_is_closed_through_the_pending_index(app: Signpost, clock: FakeClock) -> None:
    """Closing week-old e-mail notices searches ``ix_notices_pending`` (undelivered, due before the
    bound), never the table: one statement at every call of the mailer."""
    await _linked_by_email(app, "UNEW", "P001", "R1")
    clock.advance(days=8)
    with statements_sent(app.ctx.db) as sent:
        assert await emails_due(app.ctx) == []
    [closing] = [statement for statement in sent if statement.verb == "UPDATE"]
    plan = await sqlite_plan(app.ctx.db, closing)
    assert "ix_notices_pending" in plan and "SCAN" not in plan, plan


async def test_an_email_the_mailer_sends_as_its_week_runs_out_is_recorded_as_sent(
    app: Signpost, clock: FakeClock
) -> None:
    """The mailer took the e-mail a second before its week was up and sent it after another call
    had closed it as a week old: the record says it was sent, as it was."""
    await _linked_by_email(app, "UNEW", "P001", "R1")
    clock.advance(days=7, seconds=-1)
    [taken] = await emails_due(app.ctx)
    clock.advance(seconds=2)
    assert await emails_due(app.ctx) == []
    await email_sent(app.ctx, taken.notice_id)
    [row] = [r for r in await _rows(app) if r.kind == "email"]
    assert (row.delivered_at is not None, row.dropped_at, row.last_error) == (True, None, None)


async def test_a_new_link_notice_is_retried_on_the_account_that_failed_and_not_resent_to_the_other(
    app: Signpost, clock: FakeClock
) -> None:
    """ "An account was linked to your id" must reach every linked account: Slack fails once and
    Teams takes it, so it stays due for Slack alone; Teams is not told twice."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-1"), "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=1), FakePlatform(Platform.TEAMS, sent)])
    await _enqueue(app, Notice("P001", "registration_approved", "A Slack account was linked", dedupe_key="r1"))

    first = await box.deliver_due()
    assert (first.delivered, first.retried) == (0, 1)
    row = await _row(app)
    assert (row.delivered_at, row.reached, row.last_error) == (None, "teams", "slack: DeliveryFailed")
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 1
    clock.advance(hours=2)
    assert (await box.deliver_due()).delivered == 0
    assert sorted(to.platform.value for to, _ in sent) == ["slack", "teams"], "each account told once"
    assert (await _row(app)).delivered_at is not None


class FakeTimer:
    """The outbox's monotonic timer, moved by hand (sends take no real time to measure)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


class SlowPlatform(FakePlatform):
    """Each send takes ``cost`` seconds of the fake timer."""

    def __init__(self, platform: Platform, sent: list[tuple[Principal, Notice]], timer: FakeTimer, cost: float):
        super().__init__(platform, sent)
        self.timer, self.cost = timer, cost

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.timer.seconds += self.cost
        await super().deliver(to, notice)


class CountingPlatform(FakePlatform):
    """Counts the sends it is asked for (and fails those ``failures`` says)."""

    calls = 0

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.calls += 1
        await super().deliver(to, notice)


async def _claims(app: Signpost) -> list[int]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(NoticeClaim.notice_id))).scalars())


async def test_a_send_that_hangs_is_abandoned_within_the_claim_and_recorded_as_failed(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Slack holds the call: the send is given up at half the claim's hold, recorded as a failure
    and its claim let go, so no other replica takes over a notice this one still sends; it goes
    out later, once."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U0DUTY"), "DM02")
    await request_access(app, "P002", SHIELDED)
    fake_slack.hold("conversations.open")
    deliverer = SlackDeliverer(web_client(slack_settings(fake_slack)))
    box = Outbox(app.ctx, [deliverer], hold=timedelta(seconds=1), timer=FakeTimer())
    async with asyncio.timeout(30):  # a guard only: before, the pass waited as long as Slack held it
        report = await box.deliver_due()
    assert (report.delivered, report.retried) == (0, 1)
    row = await _row(app)
    assert (row.delivered_at, row.attempts, row.last_error) == (None, 1, "slack: timed out")
    assert await _claims(app) == [], "let go, not left to run out"

    fake_slack.release("conversations.open")
    clock.advance(seconds=30)
    assert (await Outbox(app.ctx, [deliverer]).deliver_due()).delivered == 1
    assert len(fake_slack.of("chat.postMessage")) == 1


async def test_a_pass_stops_at_its_budget_and_leaves_the_rest_due_unclaimed(app: Signpost) -> None:
    """Sends that take a second each, a 10-second budget: ten go out, the other 110 are neither
    tried nor counted as attempts nor left claimed, and the next pass carries on."""
    sent: list[tuple[Principal, Notice]] = []
    timer = FakeTimer()
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _enqueue(app, *[Notice("P001", "test", f"notice {i}", dedupe_key=f"b{i}") for i in range(120)])
    box = Outbox(app.ctx, [SlowPlatform(Platform.SLACK, sent, timer, 1.0)], budget=timedelta(seconds=10), timer=timer)

    assert (await box.deliver_due()).delivered == 10
    rows = await _rows(app)
    assert sum(r.delivered_at is not None for r in rows) == 10
    assert all(r.attempts == 0 for r in rows if r.delivered_at is None)
    assert await _claims(app) == []
    assert (await box.deliver_due()).delivered == 10
    assert [n.text for _, n in sent] == [f"notice {i}" for i in range(20)]


async def test_a_failing_platform_is_tried_a_few_times_a_pass_not_once_per_due_notice(app: Signpost) -> None:
    """Slack is down: after ``FAILING_AFTER`` failures in a row the pass pushes Slack's remaining
    notices back (backoff) untried, and still delivers those that go by Teams. A recipient's later
    notices wait behind their first, which failed: neither tried nor pushed back."""
    sent: list[tuple[Principal, Notice]] = []
    on_slack = ["P001", "P003", "DM01", "DM02", "DM03", "AD01"]  # one more than FAILING_AFTER
    for n, pid in enumerate(on_slack):
        await _link(app, Principal(Platform.SLACK, "T1", f"U{n}"), pid)
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-2"), "P002")
    await _enqueue(app, *[Notice(on_slack[i % 6], "test", f"notice {i}", dedupe_key=f"s{i}") for i in range(120)])
    await _enqueue(app, Notice("P002", "test", "by Teams", dedupe_key="t1"))
    slack = CountingPlatform(Platform.SLACK, sent, failures=10_000)
    report = await Outbox(app.ctx, [slack, FakePlatform(Platform.TEAMS, sent)]).deliver_due()

    assert slack.calls == FAILING_AFTER  # before: 120
    assert (report.retried, report.held, report.delivered) == (6, 114, 1)
    assert [n.text for _, n in sent] == ["by Teams"]
    rows = [r for r in await _rows(app) if r.recipient_id != "P002"]
    firsts, later = rows[:6], rows[6:]
    assert [r.last_error for r in firsts] == ["slack: DeliveryFailed"] * FAILING_AFTER + [
        "slack: not tried, failing in this pass"
    ]
    assert all(r.attempts == 1 and r.delivered_at is None for r in firsts), "pushed back with backoff"
    assert all(r.attempts == 0 and r.last_error is None for r in later), "held behind them, untried"


@pytest.mark.parametrize("where", ["chat", "terminal"])
async def test_an_account_unlinked_by_an_admin_is_told_so_itself(app: Signpost, where: str) -> None:
    """An admin removes P003's Slack link, in chat or at the terminal (one way for both): that Slack
    account is told, addressed to it alone (it no longer reaches P003 through a link, and its holder
    may not be the one who asked), and P003 is told on the Teams account still linked. The Teams
    account is not told it lost a link it still has."""
    slack, teams = Principal(Platform.SLACK, "T1", "U3"), Principal(Platform.TEAMS, "tenant-1", "29:u3")
    await _link(app, slack, "P003")
    await _link(app, teams, "P003")
    if where == "chat":
        assert (await fresh_say(app, "AD01", "unlink P003 slack")).outcome is Outcome.DONE
    else:
        async with audited(app.ctx, "operator", Action.UNLINK) as audit:
            assert await people.unlink(app.ctx, audit, "P003", "slack") == 1
    sent: list[tuple[Principal, Notice]] = []
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent), FakePlatform(Platform.TEAMS, sent)])
    assert (await box.deliver_due()).delivered == 2
    told = {(to, notice.kind, notice.text) for to, notice in sent}
    assert len(sent) == 2 and told == (
        {
            (
                slack,
                "unlinked_account",
                "This Slack account is no longer linked to Signpost practitioner id P003: an admin removed the "
                "link. If you did not expect this, tell your duty manager.",
            ),
            (teams, "unlinked", "An admin removed your Signpost link on Slack."),
        }
    )
    assert (await box.deliver_due()).delivered == 0, "told once"


async def test_a_notice_with_no_linked_platform_for_a_week_is_dropped_not_sent_months_later(
    app: Signpost, clock: FakeClock
) -> None:
    """An admin unlinks P003 everywhere; "you were unlinked" then has nowhere to go. Retried for a
    week, it is then dropped (recorded, with a reason naming nobody), so when P003 links again
    months later they are not told of it out of the blue."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U3"), "P003")
    reply = await fresh_say(app, "AD01", "unlink P003")
    assert reply.outcome is Outcome.DONE
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)])
    assert (await box.deliver_due()).unreachable == 1
    clock.advance(days=6, hours=23)
    assert (await box.deliver_due()).unreachable == 1, "kept a while, for a link soon after"
    clock.advance(hours=2)
    with capture_logs() as logs:
        assert (await box.deliver_due()).dropped == 1
    [row] = [r for r in await _rows(app) if r.kind == "unlinked"]
    assert row.dropped_at is not None and row.last_error == "not sent: no linked platform for 7 days"
    assert [(e["event"], e["kind"]) for e in logs if e["event"] == "notice_dropped"] == [("notice_dropped", "unlinked")]

    clock.advance(days=90)
    await _link(app, Principal(Platform.SLACK, "T1", "U3"), "P003")
    assert (await box.deliver_due()).delivered == 0
    assert [notice.kind for _, notice in sent] == ["unlinked_account"], "only the unlinked account, at once"


async def test_a_delivery_pass_that_hangs_does_not_hold_up_the_other_tasks(app: Signpost, clock: FakeClock) -> None:
    """In the server, delivery runs apart: while a pass waits on a platform, the one-minute tasks
    keep their schedule, and no second pass starts beside the first in this process."""
    ran: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def hanging_pass(ctx: Context, now: datetime) -> None:
        started.set()
        await release.wait()
        ran.append("deliver")

    async def expire(ctx: Context, now: datetime) -> None:
        ran.append("expire")

    tasks = [
        Task("deliver_notices", timedelta(seconds=5), hanging_pass, apart=True),
        Task("expire_grants", timedelta(minutes=1), expire),
    ]
    scheduler = Scheduler(app.ctx, tasks)
    assert await scheduler.run_due(background=True) == ["deliver_notices", "expire_grants"]
    await started.wait()
    clock.advance(minutes=1)
    assert await scheduler.run_due(background=True) == ["expire_grants"], "the pass still going is not started again"
    release.set()
    await scheduler.settle()
    assert ran == ["expire", "expire", "deliver"]
    clock.advance(seconds=5)
    assert await scheduler.run_due(background=True) == ["deliver_notices"]
    await scheduler.settle()


async def test_people_slack_cannot_reach_do_not_make_the_platform_look_down(
    app: Signpost, fake_slack: FakeSlackApi
) -> None:
    """Six accounts Slack no longer knows, one after another, then one it does: Slack answered
    each time, so it is not taken for down and the seventh is delivered in the same pass."""
    people = ["P001", "P002", "P003", "DM01", "DM02", "DM03", "AD01"]
    for n, pid in enumerate(people):
        await _link(app, Principal(Platform.SLACK, "T0001", f"U{n}"), pid)
    await _enqueue(app, *[Notice(pid, "test", f"notice {n}", dedupe_key=f"p{n}") for n, pid in enumerate(people)])
    fake_slack.fail("conversations.open", "user_not_found", times=FAILING_AFTER + 1)
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    report = await box.deliver_due()
    assert (report.retried, report.delivered) == (FAILING_AFTER + 1, 1)
    [posted] = fake_slack.of("chat.postMessage")
    assert posted.body["text"].startswith("notice 6")


@pytest.mark.parametrize(
    ("method", "error", "reason"),
    [
        ("conversations.open", "user_disabled", "slack: PersonUnreachable"),  # Slack cannot reach this person
        ("chat.postMessage", "internal_error", "slack: DeliveryFailed"),  # Slack itself is failing
    ],
)
async def test_a_notice_slack_fails_for_a_week_is_recorded_failed_not_retried_for_ever(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock, method: str, error: str, reason: str
) -> None:
    """Retried with a bound: a notice Slack has refused for 7 days since it was queued (an account
    deactivated, or an outage that long) is closed, recorded as failed with the last reason (naming
    nobody), and logged; it is not retried every hour for ever, to arrive months later out of the
    blue the day Slack takes it (a request lives 24 hours, a grant 7 days at most)."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U0P1"), "P001")
    await _enqueue(app, Notice("P001", "grant_expired", "Your access grant 7 has expired.", dedupe_key="g7"))
    fake_slack.fail(method, error, times=3)
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).retried == 1
    clock.advance(days=6, hours=23)
    assert (await box.deliver_due()).retried == 1, "kept a while: Slack may take it soon after"
    clock.advance(hours=2)
    with capture_logs() as logs:
        report = await box.deliver_due()
    assert (report.retried, report.dropped, report.delivered) == (0, 1, 0)
    row = await _row(app)
    assert row.delivered_at is None and row.dropped_at is not None
    assert row.last_error == f"not sent: failing for 7 days ({reason})"
    assert [(e["event"], e["kind"]) for e in logs if e["event"] == "notice_dropped"] == [
        ("notice_dropped", "grant_expired")
    ]

    clock.advance(days=90)  # Slack takes messages again
    assert (await box.deliver_due()).delivered == 0
    tried = 2 if method == "chat.postMessage" else 0  # each a refused send within its week, none after
    assert len(fake_slack.of("chat.postMessage")) == tried


async def test_an_approval_not_yet_delivered_when_its_grant_ends_is_not_sent_after_it(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Slack fails the approval of a one-hour grant; by the time it takes messages again the grant
    has ended. The holder is told it ended, and not afterwards that it "was approved until" a time
    already past: the approval is closed unsent (recorded, with a reason naming nobody)."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U0P2"), "P002")
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1, "1h")
    fake_slack.fail("chat.postMessage", "internal_error")
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    assert (await box.deliver_due()).retried == 1
    clock.advance(hours=2)
    assert await access_jobs.expire_grants(app.ctx, clock.now()) == 1
    clock.advance(hours=1)
    await box.deliver_due()
    told = [call.body["text"] for call in fake_slack.of("chat.postMessage")][1:]  # after the failed send
    assert len(told) == 1 and "has ended" in told[0], told
    [approved] = [row for row in await _rows(app) if row.kind == "access_approved"]
    assert approved.delivered_at is None and approved.dropped_at is not None
    assert approved.last_error == "not sent: the grant ended before it was delivered"


async def test_a_recipients_notices_arrive_in_the_order_they_were_queued_after_an_outage(
    app: Signpost, clock: FakeClock
) -> None:
    """Slack fails P001's first notice twice (its backoff grows); a second is queued meanwhile,
    when Slack is back. The second waits behind the first: P001 reads them in the order they were
    queued, never "access has ended" before "approved"."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=2)])
    await _enqueue(app, Notice("P001", "access_approved", "Request 7 approved.", dedupe_key="first"))
    assert (await box.deliver_due()).retried == 1
    clock.advance(seconds=30)
    assert (await box.deliver_due()).retried == 1  # due again in a minute
    clock.advance(seconds=10)
    await _enqueue(app, Notice("P001", "grant_expired", "Your access has ended.", dedupe_key="second"))
    await box.deliver_due()  # Slack takes messages again; the first is not due yet
    clock.advance(minutes=1)
    await box.deliver_due()
    await box.deliver_due()
    assert [n.text for _, n in sent] == ["Request 7 approved.", "Your access has ended."]


async def test_a_notice_failing_in_a_pass_holds_back_its_recipients_later_ones_in_that_pass(
    app: Signpost, clock: FakeClock
) -> None:
    """Both due in one pass: the first fails, so the second is not sent before it (it is not
    pushed back either); another recipient's notice still goes. Then both, in order."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.SLACK, "T1", "U2"), "P002")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent, failures=1)])
    await _enqueue(
        app,
        Notice("P001", "test", "one", dedupe_key="o1"),
        Notice("P001", "test", "two", dedupe_key="o2"),
        Notice("P002", "test", "other", dedupe_key="o3"),
    )
    report = await box.deliver_due()
    assert (report.retried, report.delivered, report.held) == (1, 1, 1)
    assert [n.text for _, n in sent] == ["other"]
    assert (await box.deliver_due()).delivered == 0, "the second waits for the first's retry"
    clock.advance(seconds=30)
    assert (await box.deliver_due()).delivered == 2
    assert [n.text for _, n in sent] == ["other", "one", "two"]


async def test_a_console_notice_its_recipient_never_comes_to_for_a_week_is_dropped(
    app: Signpost, clock: FakeClock
) -> None:
    """The console acts as P002 only: DM02's notice waits for them to come to it, as a Slack
    notice waits for a link, for a week from when it was queued; then it is dropped (recorded,
    with a reason naming nobody, and logged), not kept to be read at every pass for ever nor
    printed months later the day the console acts as DM02."""
    out: list[str] = []
    acting = ["P002"]
    box = Outbox(app.ctx, [ConsoleDeliverer(lambda: acting[0], out.append)])
    await _enqueue(app, Notice("DM02", "access_request", "Access request 7 needs a decision.", dedupe_key="c1"))
    assert (await box.deliver_due()).waiting == 1
    clock.advance(days=6, hours=23)
    assert (await box.deliver_due()).waiting == 1, "kept a while: DM02 may come to the console"
    clock.advance(hours=2)
    with capture_logs() as logs:
        report = await box.deliver_due()
    assert (report.waiting, report.dropped) == (0, 1)
    row = await _row(app)
    assert row.delivered_at is None and row.dropped_at is not None
    assert row.last_error == "not sent: not at the console for 7 days"
    assert [(e["event"], e["kind"]) for e in logs if e["event"] == "notice_dropped"] == [
        ("notice_dropped", "access_request")
    ]
    acting[0] = "DM02"
    assert (await box.deliver_due()).delivered == 0 and out == []


async def test_every_console_notice_a_week_old_is_dropped_in_one_pass(app: Signpost, clock: FakeClock) -> None:
    """Three notices for DM02, whom the console has not acted as for a week: all three go in the
    same pass (each waited its own week), not one a pass."""
    box = Outbox(app.ctx, [ConsoleDeliverer(lambda: "P002", lambda text: None)])
    await _enqueue(app, *[Notice("DM02", "test", f"notice {n}", dedupe_key=f"w{n}") for n in range(3)])
    assert (await box.deliver_due()).waiting == 3
    clock.advance(days=7, hours=1)
    assert (await box.deliver_due()).dropped == 3


async def test_the_console_prints_its_persons_notice_behind_a_full_pass_of_others(app: Signpost) -> None:
    """More notices for DM02 than a pass reads, all older than P002's: the console, acting as
    P002, still prints P002's (it reads its person's first), and DM02's stay waiting for them."""
    out: list[str] = []
    box = Outbox(app.ctx, [ConsoleDeliverer(lambda: "P002", out.append)])
    others = [Notice("DM02", "test", f"notice {n}", dedupe_key=f"h{n}") for n in range(3)]
    await _enqueue(app, *others, Notice("P002", "test", "yours", dedupe_key="mine"))
    report = await box.deliver_due(limit=3)
    assert (report.delivered, report.waiting, out) == (1, 3, ["[notice] yours"])


_BACKLOG = ("P001", "P002", "P003", "DM01")  # fewer than FAILING_AFTER: each first notice is tried


async def _a_week_of_outage(app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock) -> Outbox:
    """Ten notices for each of four people on Slack, queued when Slack went down: a pass tries each
    person's first (refused), the rest wait behind it. Then a week and an hour go by."""
    for n, pid in enumerate(_BACKLOG):
        await _link(app, Principal(Platform.SLACK, "T0001", f"U{n}"), pid)
    await _enqueue(
        app, *[Notice(pid, "test", f"old {pid} {i}", dedupe_key=f"b{pid}{i}") for pid in _BACKLOG for i in range(10)]
    )
    fake_slack.down = True
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    report = await box.deliver_due()
    assert (report.retried, report.held) == (4, 36)
    clock.advance(days=7, hours=1)
    return box


async def test_a_weeks_backlog_is_closed_in_one_pass_in_a_few_statements(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Slack is still down a week later: every notice queued over a week ago is closed as failed in
    the next pass (not one a person a pass, each waiting behind the last), with a reason naming
    nobody, in a few statements however many there are; Slack is not asked to take any of them."""
    box = await _a_week_of_outage(app, fake_slack, clock)
    before = len(fake_slack.calls)
    with statements_sent(app.ctx.db) as statements, capture_logs() as logs:
        report = await box.deliver_due()
    assert report.dropped == 40
    assert len(fake_slack.calls) == before, "none sent a week late"
    rows = await _rows(app)
    assert all(r.dropped_at is not None and r.delivered_at is None for r in rows)
    tried = {r.last_error for r in rows if r.attempts > 1}
    assert tried == {"not sent: failing for 7 days (slack: DeliveryFailed)"}, "the first of each, refused"
    assert {r.last_error for r in rows if r.attempts == 1} == {"not sent: waiting for 7 days"}
    assert sum(e["event"] == "notice_dropped" for e in logs) == 40
    writes = [s.sql for s in statements if s.verb in {"INSERT", "UPDATE", "DELETE"}]
    assert len(writes) <= 3, writes


async def test_after_a_weeks_outage_slack_gets_only_the_fresh_notices_however_long_the_backlog(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """Slack takes messages again after a week: the fresh notices (one for someone the backlog
    was for, one for someone else) go in the first pass, though the week-old backlog is longer than
    a pass; the backlog is closed, never sent (none is of use a week late)."""
    box = await _a_week_of_outage(app, fake_slack, clock)
    fake_slack.down = False
    await _link(app, Principal(Platform.SLACK, "T0001", "U9"), "DM02")
    await _enqueue(
        app,
        Notice("P001", "test", "fresh P001", dedupe_key="f1"),
        Notice("DM02", "test", "fresh DM02", dedupe_key="f2"),
    )
    report = await box.deliver_due(limit=5)
    assert (report.delivered, report.dropped) == (2, 40)
    assert sorted(c.body["text"] for c in fake_slack.of("chat.postMessage")) == ["fresh DM02", "fresh P001"]


async def test_a_pass_stopped_after_slack_took_a_notice_records_it_and_does_not_send_it_again(
    app: Signpost, fake_slack: FakeSlackApi, clock: FakeClock
) -> None:
    """The server stops (the pass is cancelled) while Slack holds P002's notice, after it took
    P001's: P001's is recorded delivered as the pass stops, so it is not sent again once the claim
    runs out; P002's, whose fate the pass never learnt, goes in the next pass."""
    await _link(app, Principal(Platform.SLACK, "T0001", "U1"), "P001")
    await _link(app, Principal(Platform.SLACK, "T0001", "U2"), "P002")
    await _enqueue(
        app, Notice("P001", "test", "to P001", dedupe_key="k1"), Notice("P002", "test", "to P002", dedupe_key="k2")
    )
    box = Outbox(app.ctx, [SlackDeliverer(web_client(slack_settings(fake_slack)))])
    fake_slack.hold("chat.postMessage")
    going = asyncio.create_task(box.deliver_due())
    await fake_slack.wait_for_waiting("chat.postMessage", 1)
    fake_slack.release("chat.postMessage")
    fake_slack.hold("chat.postMessage")  # P001's goes through; P002's is held
    await fake_slack.wait_for_waiting("chat.postMessage", 2)
    going.cancel()
    with pytest.raises(asyncio.CancelledError):
        await going
    assert [r.delivered_at is not None for r in await _rows(app)] == [True, False]
    assert await _claims(app) == [], "P002's let go at once: nobody else waits two minutes for it"

    fake_slack.release("chat.postMessage")
    clock.advance(minutes=3)
    assert (await box.deliver_due()).delivered == 1
    told = [c.body["text"] for c in fake_slack.of("chat.postMessage")]
    assert told.count("to P001") == 1 and told[-1] == "to P002"


class StoppedAsItTakes(FakePlatform):
    """A platform that takes the notice, with the server told to stop as it answers: the pass's
    cancellation lands at its next wait, after the send, while the chunk's record is still to come."""

    async def deliver(self, to: Principal, notice: Notice) -> None:
        await super().deliver(to, notice)
        going = asyncio.current_task()
        assert going is not None
        going.cancel()


async def test_a_pass_stopped_as_the_platform_takes_the_chunks_last_notice_records_it(
    app: Signpost, clock: FakeClock
) -> None:
    """The stop lands after Slack took the chunk's last notice, while the chunk is being recorded
    (waiting for the database): it is recorded delivered all the same, and never sent again once
    the claim runs out."""
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T0001", "U1"), "P001")
    await _enqueue(app, Notice("P001", "test", "to P001", dedupe_key="k1"))
    box = Outbox(app.ctx, [StoppedAsItTakes(Platform.SLACK, sent)])
    with pytest.raises(asyncio.CancelledError):
        await box.deliver_due()
    assert len(sent) == 1
    assert [r.delivered_at is not None for r in await _rows(app)] == [True]
    assert await _claims(app) == []

    clock.advance(minutes=3)
    again = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)])
    assert (await again.deliver_due()).delivered == 0
    assert len(sent) == 1, "not sent twice"


class StoppedAtTheSecondSend(FakePlatform):
    """Takes the first send asked of any platform sharing ``asked``; the server is told to stop
    during the second, which nothing takes."""

    def __init__(self, platform: Platform, sent: list[tuple[Principal, Notice]], asked: list[Platform]) -> None:
        super().__init__(platform, sent)
        self.asked = asked

    async def deliver(self, to: Principal, notice: Notice) -> None:
        self.asked.append(self.platform)
        if len(self.asked) < 2:
            await super().deliver(to, notice)
            return
        going = asyncio.current_task()
        assert going is not None
        going.cancel()
        await asyncio.sleep(0)


async def test_a_pass_stopped_between_the_accounts_of_a_new_link_notice_keeps_those_told(
    app: Signpost, clock: FakeClock
) -> None:
    """ "An account was linked to your id" goes to every linked account: one platform took it when
    the server stopped during the other's send. The one that took it is recorded, so the next pass
    tells the other alone, not the first a second time."""
    sent: list[tuple[Principal, Notice]] = []
    asked: list[Platform] = []
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _link(app, Principal(Platform.TEAMS, "tenant", "aad-1"), "P001")
    await _enqueue(app, Notice("P001", "registration_approved", "A Slack account was linked", dedupe_key="r1"))
    stopping = [StoppedAtTheSecondSend(p, sent, asked) for p in (Platform.SLACK, Platform.TEAMS)]
    with pytest.raises(asyncio.CancelledError):
        await Outbox(app.ctx, stopping).deliver_due()
    assert [to.platform for to, _ in sent] == asked[:1]

    clock.advance(minutes=3)
    await Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent), FakePlatform(Platform.TEAMS, sent)]).deliver_due()
    assert sorted(to.platform.value for to, _ in sent) == ["slack", "teams"], "each account told once"
    assert (await _row(app)).delivered_at is not None


@pytest.mark.postgres_only
async def test_a_notice_closed_as_a_week_old_is_not_claimed_by_another_replica_meanwhile(
    app: Signpost, clock: FakeClock
) -> None:
    """Two replicas on one PostgreSQL: one closes the week-old notices while the other claims its
    chunk. The notice is either closed or claimed to be sent, never both (sent, and recorded as
    not sent)."""
    await _link(app, Principal(Platform.SLACK, "T1", "U1"), "P001")
    await _enqueue(app, Notice("P001", "test", "to P001", dedupe_key="k1"))
    clock.advance(days=7, seconds=1)
    now = clock.now()
    notice_id = (await _row(app)).id
    why = outbox.Expiry({}, "not sent: waiting for 7 days", "not sent: failing for 7 days")
    async with app.ctx.db.write() as closing:
        assert await outbox.close_expired(closing, now - timedelta(days=7), now, why)

        async def other_replica() -> Mapping[int, int]:
            async with app.ctx.db.write() as claiming:
                return (await outbox.claim_many(claiming, [notice_id], "other", now, timedelta(minutes=2))).attempts

        claiming = asyncio.create_task(other_replica())
        while not claiming.done() and not await _waiting_for_a_lock(app):
            await asyncio.sleep(0.01)  # until it has claimed, or waits for the closing to end
    claimed = await claiming
    row = await _row(app)
    assert not (claimed and row.dropped_at is not None), "claimed to send, and closed unsent"
    assert row.dropped_at is not None and claimed == {}


async def _waiting_for_a_lock(app: Signpost) -> bool:
    async with app.ctx.db.read() as session:
        found = await session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
        return bool(found.scalar_one())


def _delivered(app: Signpost) -> float:
    """``signpost_notices_total{state="delivered"}``, as /metrics shows it."""
    return app.metrics.registry.get_sample_value("signpost_notices_total", {"state": "delivered"}) or 0.0


async def test_an_email_the_mailer_sends_after_it_was_closed_is_not_counted_delivered(app: Signpost) -> None:
    """The mailer took P001's e-mail, then P001 left before it reported the e-mail sent: the record
    stays closed as not sent (counted dropped once), so /metrics must not count it delivered as
    well. The one the mailer sends while it is still open is counted delivered, once."""
    await _linked_by_email(app, "UNEW", "P001", "R1")
    await _linked_by_email(app, "UOTHER", "P003", "R2")
    first, second = await emails_due(app.ctx)
    await _set_status(app, first.notice.recipient_id, "inactive")
    await emails_due(app.ctx)  # the mailer's next call closes the leaver's e-mail
    before = _delivered(app)

    await email_sent(app.ctx, first.notice_id)
    await email_sent(app.ctx, second.notice_id)
    await email_sent(app.ctx, second.notice_id)  # reported twice: delivered once

    assert _delivered(app) - before == 1
    rows = {r.id: r for r in await _rows(app)}
    assert rows[first.notice_id].delivered_at is None and rows[first.notice_id].dropped_at is not None
    assert rows[second.notice_id].delivered_at is not None


async def test_a_delivered_notice_keeps_no_text_so_a_reason_typed_into_it_is_not_left_in_the_store(
    app: Signpost,
) -> None:
    """A duty manager's reason goes out in a notice as typed: once delivered, the row keeps its
    times and key but no text (it could name anyone, and the store and its backups would hold it in
    clear for the month closed notices are kept). A notice still waiting keeps its text."""
    asker = Principal(Platform.SLACK, "T1", "UASKER")
    await say(app, asker, "register P001")
    reason = "ask Hill Primary about Zara Bloom first"
    assert (await decide(app, "DM01", "deny", "R1", reason)).outcome is Outcome.DONE
    sent: list[tuple[Principal, Notice]] = []
    await _link(app, Principal(Platform.SLACK, "T1", "UDM01"), "DM01")
    box = Outbox(app.ctx, [FakePlatform(Platform.SLACK, sent)])
    await box.deliver_due()
    assert any(reason in notice.text and to == asker for to, notice in sent), "the asker was told the reason"
    rows = await _rows(app)
    delivered = [r for r in rows if r.delivered_at is not None]
    assert delivered and all("Zara" not in r.body and json.loads(r.body)["text"] == "" for r in delivered)
    assert all(r.dedupe_key for r in delivered), "a delivered notice's key stays, so it is never sent twice"
    waiting = [r for r in rows if r.delivered_at is None and r.dropped_at is None]
    assert all(json.loads(r.body)["text"] for r in waiting), "a notice not yet sent keeps its text"
