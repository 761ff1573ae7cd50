"""Registration: a chat identity is linked only once a duty manager of its authority approves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from bot.app import Signpost, build
from handlers.access import jobs as access_jobs
from handlers.access import registration
from handlers.access.policy import POLICY
from handlers.access.screening import CODE_REFUSED
from handlers.clock import FakeClock
from handlers.vocabulary import Origin, Outcome, Platform, Principal, Reply
from store.db import Database, alembic_config
from store.delivery import notices as store_notices
from store.keys.crypto import KeyRing
from store.people import access as store
from store.tables.delivery import Notice as NoticeRow
from tests.access_helpers import audit_events, decide, fresh_say, load_access, notices, search_as
from tests.factories import AMY, say
from tests.stepup_helpers import code_now, ensure_enrolled

SLACK_USER = Principal(Platform.SLACK, "T0001", "U0001")
OTHER_SLACK_USER = Principal(Platform.SLACK, "T0001", "U0002")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def search_linked(app: Signpost, principal: Principal, practitioner_id: str, text: str) -> Reply:
    """Search from a chat account once its practitioner has an authenticator.

    Registration needs no code (the account has no practitioner yet), but results do. The person
    enrols once (in the console here) and steps up with a real code; that makes the practitioner
    fresh on every account linked to them, so the chat search is answered without a challenge.
    """
    await ensure_enrolled(app, practitioner_id)
    return await say(app, principal, text)


async def test_unregistered_identity_is_refused_and_told_how_to_register(app: Signpost) -> None:
    reply = await search_as(app, SLACK_USER, AMY)
    assert reply.outcome is Outcome.REFUSED and "register" in reply.text
    assert reply.signposts == ()


async def test_registration_approved_links_the_identity(app: Signpost) -> None:
    asked = await say(app, SLACK_USER, "register P001")
    assert asked.outcome is Outcome.DONE and "R1" not in asked.text, "the number is for the duty manager"
    assert (await search_as(app, SLACK_USER, AMY)).outcome is Outcome.REFUSED, "not linked before approval"

    [notice] = await notices(app)
    assert notice.recipient_id == "DM01" and notice.kind == "registration_request"
    assert "P001" in notice.text and "T0001/U0001" in notice.text
    assert [(b.action_id, b.command) for b in notice.buttons] == [
        ("approve", "approve R1"),
        ("deny", "deny R1"),
    ]

    approved = await decide(app, "DM01", "approve", "R1")
    assert approved.outcome is Outcome.DONE
    # Decided before the notice went out (read with `pending`): it is not sent, asking for it again.
    async with app.ctx.db.read() as session:
        [asking] = (await session.execute(select(NoticeRow).where(NoticeRow.kind == "registration_request"))).scalars()
    assert asking.delivered_at is None and asking.dropped_at is not None
    assert asking.last_error == store_notices.DECIDED
    reply = await search_linked(app, SLACK_USER, "P001", AMY)
    assert reply.outcome is Outcome.ANSWERED and reply.signposts
    assert [n.kind for n in await notices(app, "P001")] == ["registration_approved", "email"]


async def test_the_duty_manager_sees_who_the_platform_says_the_account_is_beside_the_register(app: Signpost) -> None:
    """Not just T0001/U0001: the chat account's reported name and email beside the practitioner's
    recorded name, role, organisation and email, so a sock-puppet stands out."""
    await say(app, SLACK_USER, "register P001", display_name="Mallory Fake", email="mallory@evil.example")
    [notice] = await notices(app, "DM01")
    assert "Slack reports this account as: Mallory Fake, email mallory@evil.example" in notice.text
    assert (
        "The register records P001 as: Sam Carter, Social worker, Northshire Children's Services, "
        "email sam.carter@northshire.example"
    ) in notice.text
    await say(app, OTHER_SLACK_USER, "register P002")
    [_, second] = await notices(app, "DM01")
    assert "Slack reports this account as: not reported, email not reported" in second.text


@pytest.mark.parametrize(
    ("name", "email", "shown"),
    [
        ("Sam Carter\u202e, email sam.carter@northshire.example", "x@evil.example", "Sam Carter?, email sam.carter"),
        ("Sam\u2066 Carter\x00", "sam\u200b@evil.example", "Sam? Carter?, email sam?@evil.example"),
        ("Sam\nThe register records P001 as: Sam Carter", None, "Sam?The register records"),
        ("\ud800", "", "?, email not reported"),
    ],
    ids=["direction override", "isolate, NUL and zero-width space", "line break", "half a character"],
)
async def test_a_reported_name_or_email_shows_its_hidden_characters_as_question_marks(
    app: Signpost, name: str, email: str | None, shown: str
) -> None:
    """The name and email a chat platform reports are typed by the account's owner (a Slack
    profile, a Teams activity): a direction override reversed what the duty manager read on the
    line they check for a sock-puppet, a line break began a false "register records" line, and a
    NUL or half a character reached their chat as it was."""
    await say(app, SLACK_USER, "register P001", display_name=name, email=email)
    [notice] = await notices(app, "DM01")
    reported = notice.text.split("\n")[1]
    assert reported.startswith("Slack reports this account as: ") and shown in reported, ascii(notice.text)
    assert len(notice.text.split("\n")) == 4 and all(line.isprintable() for line in notice.text.split("\n"))


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Sam Carter \U0001f469\u200d\U0001f4bb", "Sam Carter \U0001f469\u200d\U0001f4bb, email"),
        (
            "\u0645\u0647\u0631\u200c\u0646\u0627\u0632 Carter",
            "\u0645\u0647\u0631\u200c\u0646\u0627\u0632 Carter, email",
        ),
        ("Sa\u200dm Carter\u200d", "Sa?m Carter?, email"),
        ("Sam\ue000 Carter\u0378", "Sam? Carter?, email"),
    ],
    ids=["emoji sequence", "Persian non-joiner", "joiners that join nothing", "private use and unassigned"],
)
async def test_a_reported_name_keeps_the_joiners_that_join_and_marks_the_rest(
    app: Signpost, name: str, shown: str
) -> None:
    """A joiner inside an emoji sequence or a Persian name shows as itself (store.characters):
    before, the duty manager read "Sam Carter 👩?💻". One between ASCII letters or at the end, a
    private-use or an unassigned character still shows as ``?``."""
    await say(app, SLACK_USER, "register P001", display_name=name, email="sam@evil.example")
    [notice] = await notices(app, "DM01")
    assert f"Slack reports this account as: {shown} sam@evil.example" in notice.text, ascii(notice.text)


async def test_a_long_reported_name_is_cut_so_the_notice_can_still_be_sent(app: Signpost) -> None:
    """Teams sends the display name in every activity, uncut: a 30,000-character one made a
    notice Teams refused (413) at every attempt, so no duty manager ever saw the request."""
    await say(app, SLACK_USER, "register P001", display_name="N" * 30_000, email="e" * 30_000 + "@x.example")
    [notice] = await notices(app, "DM01")
    assert len(notice.text) < 1500 and "The register records P001 as: Sam Carter" in notice.text
    assert "N" * 100 + "…" in notice.text and "e" * 100 + "…" in notice.text


async def test_a_linked_account_is_told_to_the_practitioner_by_chat_and_by_recorded_email(app: Signpost) -> None:
    """Approval notifies every contact on record: a chat notice through the outbox and an "email"
    notice that the chat outbox leaves for the operator's mailer."""
    await say(app, SLACK_USER, "register P001")
    await decide(app, "DM01", "approve", "R1")
    told = await notices(app, "P001")
    assert [n.kind for n in told] == ["registration_approved", "email"]
    for notice in told:
        assert "A Slack account was linked to your Signpost practitioner id P001" in notice.text
        assert "If this was not you, tell your duty manager" in notice.text
    async with app.ctx.db.read() as session:
        chat_due = await store_notices.pending(session, app.ctx.keys, app.ctx.clock.now())
        mail_due = await store_notices.pending_email(session, app.ctx.keys)
    assert "email" not in [n.kind for _, n in chat_due]
    assert [(n.recipient_id, n.kind) for _, n in mail_due] == [("P001", "email")]


async def test_registration_denied_leaves_the_identity_unlinked(app: Signpost) -> None:
    await say(app, SLACK_USER, "register P001")
    denied = await decide(app, "DM01", "deny", "R1", "not known to us")
    assert denied.outcome is Outcome.DONE
    assert (await search_as(app, SLACK_USER, AMY)).outcome is Outcome.REFUSED
    # The account that asked (linked to nobody) is told, and so are the practitioner's own accounts.
    told = await notices(app, "P001")
    assert [n.account for n in told] == [SLACK_USER, None]
    assert all(n.kind == "registration_denied" and "not known to us" in n.text for n in told)
    late = await decide(app, "DM01", "approve", "R1")
    assert late.outcome is Outcome.REFUSED and "already denied" in late.text


async def test_unknown_and_inactive_ids_get_the_same_answer_and_no_request(app: Signpost) -> None:
    """An unlinked caller cannot tell a missing id from an inactive one."""
    from store.people import practitioners

    async with app.ctx.db.write() as session:
        await practitioners.set_status(session, "P003", "inactive")
    unknown = await say(app, SLACK_USER, "register NOPE99")
    inactive = await say(app, SLACK_USER, "register P003")
    assert unknown.outcome is inactive.outcome is Outcome.DONE, "answered as an active id is"
    assert unknown.text.replace("NOPE99", "P003") == inactive.text
    assert await notices(app) == []


async def test_asking_again_while_waiting_does_not_open_another_request(app: Signpost) -> None:
    first = await say(app, SLACK_USER, "register P001")
    again = await say(app, SLACK_USER, "register P001")
    assert (again.outcome, again.text) == (first.outcome, first.text), "answered alike: see test_registration_existence"
    assert len(await notices(app)) == 1
    assert [e.detail for e in await audit_events(app, "register")] == ["registration R1", "registration R1 waiting"]


async def test_relinking_needs_a_new_approval_and_replaces_the_old_link(app: Signpost) -> None:
    """One identity per platform: the new account works only once approved, then the old one stops."""
    await say(app, SLACK_USER, "register P001")
    await decide(app, "DM01", "approve", "R1")
    await say(app, OTHER_SLACK_USER, "register P001")
    assert (await search_linked(app, OTHER_SLACK_USER, "P001", AMY)).outcome is Outcome.REFUSED
    assert (await search_linked(app, SLACK_USER, "P001", AMY)).outcome is Outcome.ANSWERED
    await decide(app, "DM01", "approve", "R2")
    assert (await search_linked(app, OTHER_SLACK_USER, "P001", AMY)).outcome is Outcome.ANSWERED
    assert (await search_linked(app, SLACK_USER, "P001", AMY)).outcome is Outcome.REFUSED
    told = [(n.kind, n.account) for n in await notices(app, "P001")]
    assert told[-3:] == [("registration_approved", None), ("email", None), ("registration_replaced", SLACK_USER)]
    assert ("registration_replaced", SLACK_USER) not in told[:-3], "only when an account is replaced"


async def test_a_duty_manager_is_warned_that_approving_unlinks_the_account_linked_now(app: Signpost) -> None:
    """Someone asking to take over a practitioner's working account is the case a duty manager must
    check most: the ask, `pending` and Home say that approving unlinks the account linked now (and
    which), the approval says it was unlinked and told. A first link says none of it."""
    await say(app, SLACK_USER, "register P001")
    [first_ask] = [n for n in await notices(app, "DM01") if n.kind == "registration_request"]
    assert "approving unlinks" not in first_ask.text
    first = await decide(app, "DM01", "approve", "R1")
    assert "unlinked" not in first.text
    await say(app, OTHER_SLACK_USER, "register P001")
    [ask] = [n for n in await notices(app, "DM01") if n.kind == "registration_request"][1:]
    assert "P001 has another Slack account linked now (T0001/U0001, since " in ask.text, ask.text
    assert "approving unlinks it" in ask.text
    waiting = await fresh_say(app, "DM01", "pending")
    [r2] = [line for line in waiting.lines if line.startswith("• R2")]
    assert r2.endswith(registration.UNLINKS), r2
    home = await fresh_say(app, "DM01", "home")
    assert any(line.startswith("• Registration R2") and line.endswith(registration.UNLINKS) for line in home.lines)
    approved = await decide(app, "DM01", "approve", "R2")
    assert approved.text.endswith("The account linked before was unlinked and told."), approved.text


async def test_a_registration_asked_before_another_was_approved_is_told_again_that_it_now_unlinks(
    app: Signpost,
) -> None:
    """Two accounts ask to act as P001, which has no Slack link: both asks say nothing of one.
    Approving the first links it; the duty managers are then told that approving the second now
    unlinks that account, with its buttons; deciding the second drops that word if still unsent."""
    await say(app, SLACK_USER, "register P001")
    await say(app, OTHER_SLACK_USER, "register P001")
    await decide(app, "DM01", "approve", "R1")
    later = [n for n in await notices(app, "DM01") if n.kind == "registration_request"][2:]
    assert [n.dedupe_key for n in later] == ["registration:2:after:1:DM01"], later
    assert "R1 was approved meanwhile" in later[0].text
    assert "P001 has another Slack account linked now (T0001/U0001, since " in later[0].text
    assert [b.command for b in later[0].buttons] == ["approve R2", "deny R2"]
    await decide(app, "DM01", "deny", "R2", "not them")
    async with app.ctx.db.read() as session:
        [row] = (
            await session.execute(select(NoticeRow).where(NoticeRow.dedupe_key == "registration:2:after:1:DM01"))
        ).scalars()
    assert row.dropped_at is not None and row.delivered_at is None


async def test_duty_manager_of_another_authority_cannot_decide_a_registration(app: Signpost) -> None:
    await say(app, SLACK_USER, "register S001")
    recipients = [n.recipient_id for n in await notices(app)]
    assert recipients == ["DM02", "DM03"], "every Southvale duty manager hears of a Southvale practitioner"
    refused = await decide(app, "DM01", "approve", "R1")
    none = await decide(app, "DM01", "approve", "R2")
    # Said as for none: another authority's duty manager learns neither that it exists nor whom it is about.
    assert refused.outcome is Outcome.REFUSED and none.outcome is Outcome.INVALID
    assert refused.text == none.text.replace("R2", "R1") and "S001" not in refused.text
    assert (await search_as(app, SLACK_USER, AMY)).outcome is Outcome.REFUSED


async def test_nobody_approves_their_own_registration(app: Signpost) -> None:
    await say(app, SLACK_USER, "register DM02")
    assert [n.recipient_id for n in await notices(app)] == ["DM03"]
    own = await decide(app, "DM02", "approve", "R1")
    assert own.outcome is Outcome.REFUSED and "own" in own.text
    assert (await decide(app, "DM03", "approve", "R1")).outcome is Outcome.DONE


async def test_registering_needs_no_code_but_deciding_does(app: Signpost) -> None:
    """An unlinked account has no practitioner to step up, so ``register`` asks for no code; the
    duty manager's decision is an approval and needs a code no older than 5 minutes."""
    asked = await say(app, SLACK_USER, "register P001")
    assert asked.outcome is Outcome.DONE and asked.challenge is None
    await ensure_enrolled(app, "DM01")
    app.ctx.clock.advance(minutes=6)  # type: ignore[attr-defined]  # tests run on FakeClock
    challenged = await say(app, "DM01", "approve R1")
    assert challenged.outcome is Outcome.CHALLENGED and challenged.challenge is not None
    assert (await search_linked(app, SLACK_USER, "P001", AMY)).outcome is Outcome.REFUSED, "not approved yet"
    assert (await decide(app, "DM01", "approve", "R1")).outcome is Outcome.DONE
    assert (await search_linked(app, SLACK_USER, "P001", AMY)).outcome is Outcome.ANSWERED


async def test_denial_reason_is_sealed_in_the_audit_on_a_month_with_no_key_yet(app: Signpost) -> None:
    """Denying is a writing command whose terms name no child: on the month's first sealing it is
    answered at once (the month's key is made in its own transaction) and the reason opens again."""
    # Asked the day before the month begins (within a registration's 7 days of the denial).
    app.ctx.clock.set(datetime(2027, 1, 31, 9, 0, tzinfo=UTC))  # type: ignore[attr-defined]  # FakeClock
    await say(app, SLACK_USER, "register P001")
    await ensure_enrolled(app, "DM01")
    app.ctx.clock.set(datetime(2027, 2, 1, 9, 0, tzinfo=UTC))  # type: ignore[attr-defined]  # FakeClock
    denied = await decide(app, "DM01", "deny", "R1", "not known to us")
    assert denied.outcome is Outcome.DONE
    [event] = [e for e in await audit_events(app, "deny") if e.outcome == "done"]
    assert event.terms is not None and event.terms_key == "period:2027-02"
    async with app.ctx.db.read() as session:
        assert await app.ctx.sealer.open(session, event.terms, event.terms_key) == "not known to us"


async def test_registration_and_its_decisions_are_audited_once_each(app: Signpost) -> None:
    await say(app, SLACK_USER, "register P001")
    await decide(app, "P002", "approve", "R1")
    await decide(app, "DM01", "approve", "R1")
    register = await audit_events(app, "register")
    assert [(e.platform, e.user_id, e.outcome, e.actor_id) for e in register] == [("slack", "U0001", "done", None)]
    approvals = await audit_events(app, "approve")
    assert [(e.actor_id, e.outcome) for e in approvals] == [("P002", "refused"), ("DM01", "done")]


async def test_registering_from_the_console_explains_the_console_acts_as_an_id(app: Signpost) -> None:
    reply = await say(app, "P001", "register P001")
    assert reply.outcome is Outcome.INVALID and ":as" in reply.text


async def test_register_without_an_id_shows_the_usage(app: Signpost) -> None:
    reply = await say(app, SLACK_USER, "register")
    assert reply.outcome is Outcome.INVALID and "register PRACTITIONER_ID" in reply.text


async def registration_asks(app: Signpost) -> list[NoticeRow]:
    """The duty managers' Approve / Deny asks for registrations, as stored (delivered, dropped or due)."""
    async with app.ctx.db.read() as session:
        stmt = select(NoticeRow).where(NoticeRow.kind == "registration_request").order_by(NoticeRow.id)
        return list((await session.execute(stmt)).scalars())


async def linked_to(app: Signpost, principal: Principal) -> str | None:
    async with app.ctx.db.read() as session:
        return await store.identity_owner(session, principal.platform.value, principal.tenant, principal.user_id)


async def test_a_registration_nobody_decides_expires_after_seven_days_and_the_asker_is_told_once(
    app: Signpost, clock: FakeClock
) -> None:
    """An account asks to act as P001 and no duty manager decides: a minute before the 7 days
    nothing happens; at 7 days the expiry job closes it, once, audited as the scheduler's
    ``registration_expired``. DM01's ask is withdrawn (not sent, recorded as closed), the asking
    account alone is told it expired and how to ask again, and DM01's late Approve is refused
    ("already closed: expired") and links nothing. The account may then ask again."""
    assert POLICY.registration_lifetime == timedelta(days=7)
    assert (await say(app, SLACK_USER, "register P001")).outcome is Outcome.DONE
    clock.advance(days=7, minutes=-1)
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0
    clock.advance(minutes=1)
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 1
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0, "closed once"

    [ask] = await registration_asks(app)
    assert ask.delivered_at is None and ask.last_error == store_notices.CLOSED
    [told] = await notices(app, "P001")
    assert (told.kind, told.account) == ("registration_expired", SLACK_USER)
    assert "R1" in told.text and "expired" in told.text and "register P001" in told.text
    assert "7 days" in told.text
    [event] = await audit_events(app, "registration_expired")
    assert (event.platform, event.outcome, event.detail) == (Origin.SCHEDULER, "done", "registration R1")
    assert event.subject_refs == ""

    late = await decide(app, "DM01", "approve", "R1")
    assert late.outcome is Outcome.REFUSED and "already closed: expired" in late.text
    assert [(e.outcome, e.detail) for e in await audit_events(app, "approve")] == [
        ("refused", "registration R1 already closed: expired")
    ]
    assert await linked_to(app, SLACK_USER) is None
    assert (await search_as(app, SLACK_USER, AMY)).outcome is Outcome.REFUSED
    assert [n.kind for n in await notices(app, "P001")] == ["registration_expired"], "told once, nothing more"

    again = await say(app, SLACK_USER, "register P001")
    assert again.outcome is Outcome.DONE
    assert [e.detail for e in await audit_events(app, "register")][-1] == "registration R2", "a new request"


async def test_past_its_seven_days_a_registration_cannot_be_approved_even_before_the_job_runs(
    app: Signpost, clock: FakeClock
) -> None:
    """Between its lifetime's end and the next run of the expiry job (a minute at most, longer
    while the scheduler is down) a registration is already closed: not listed as waiting, and an
    Approve is refused as expired, linking nothing."""
    await say(app, SLACK_USER, "register P001")
    await ensure_enrolled(app, "DM01")
    clock.advance(days=7)
    waiting = await fresh_say(app, "DM01", "pending")
    assert "R1" not in waiting.text + "".join(waiting.lines)
    late = await decide(app, "DM01", "approve", "R1")
    assert late.outcome is Outcome.REFUSED and "already closed: expired" in late.text
    assert await linked_to(app, SLACK_USER) is None


async def test_a_registration_decided_in_time_is_not_expired(app: Signpost, clock: FakeClock) -> None:
    """Approved on its sixth day, a registration stays approved when its 7 days pass: the expiry
    job closes nothing, audits nothing and tells nobody, and the account stays linked."""
    await say(app, SLACK_USER, "register P001")
    await say(app, OTHER_SLACK_USER, "register P002")
    clock.advance(days=6)
    assert (await decide(app, "DM01", "approve", "R1")).outcome is Outcome.DONE
    assert (await decide(app, "DM01", "deny", "R2")).outcome is Outcome.DONE
    clock.advance(days=30)
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 0
    assert await audit_events(app, "registration_expired") == []
    assert "registration_expired" not in [n.kind for n in await notices(app)]
    assert await linked_to(app, SLACK_USER) == "P001"


EXPIRY_INDEX = "ix_registration_requests_state_created_at"


def _before_registration_expiry(connection: Connection) -> None:
    """Take the store back to before registrations expired (that revision alone is undone)."""
    command.downgrade(alembic_config(connection), "0025_registration_expiry-1")


async def registration_indexes(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("registration_requests"))
    return {str(index["name"]) for index in found}


async def test_a_store_upgraded_with_a_registration_waiting_for_months_closes_it_at_the_first_run(
    app: Signpost, clock: FakeClock
) -> None:
    """A registration asked for in a store from before registrations expired (no index on them by
    state and age), left waiting three months: `db upgrade` adds the index, and the expiry job's
    first run closes it, takes back the duty manager's ask, tells the asking account and audits it;
    a late Approve links nothing."""
    await say(app, SLACK_USER, "register P001")
    db = app.ctx.db
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(signpost_write=True)
        await conn.run_sync(_before_registration_expiry)
        await conn.commit()
    assert EXPIRY_INDEX not in await registration_indexes(db)  # what a store from before looks like
    clock.advance(days=90)
    await db.migrate()
    assert EXPIRY_INDEX in await registration_indexes(db)
    assert await access_jobs.expire_requests(app.ctx, clock.now()) == 1
    [ask] = await registration_asks(app)
    assert ask.last_error == store_notices.CLOSED
    assert [(n.kind, n.account) for n in await notices(app, "P001")] == [("registration_expired", SLACK_USER)]
    assert [e.detail for e in await audit_events(app, "registration_expired")] == ["registration R1"]
    assert (await decide(app, "DM01", "approve", "R1")).outcome is Outcome.REFUSED
    assert await linked_to(app, SLACK_USER) is None


@pytest.fixture
async def second(db_url: str, keys: KeyRing, clock: FakeClock) -> AsyncIterator[Signpost]:
    """Another replica: its own engine and dispatcher on the same database."""
    other = build(Database.connect(db_url), keys, clock)
    yield other
    await other.close()


async def test_two_managers_approving_one_registration_at_once_link_it_once(app: Signpost, second: Signpost) -> None:
    """DM02 and DM03 click Approve on R1 at the same moment, on two replicas: one decision, one
    link, one audit event that says so, and the practitioner told once."""
    await say(app, SLACK_USER, "register S001")
    await ensure_enrolled(app, "DM02")
    await ensure_enrolled(app, "DM03")
    first, other = await asyncio.gather(decide(app, "DM02", "approve", "R1"), decide(second, "DM03", "approve", "R1"))
    assert sorted([first.outcome.value, other.outcome.value]) == ["done", "refused"], (first, other)
    async with app.ctx.db.read() as session:
        assert await store.identity_owner(session, "slack", "T0001", "U0001") == "S001"
    assert [n.kind for n in await notices(app, "S001")] == ["registration_approved", "email"]
    decided = [(e.actor_id, e.outcome) for e in await audit_events(app, "approve")]
    assert sorted(outcome for _, outcome in decided) == ["done", "refused"]


async def test_an_admin_is_shown_the_registrations_waiting_in_pending_and_on_home(app: Signpost) -> None:
    """Admins decide registrations for any authority (where no duty manager can, they are the ones
    asked), yet `pending` listed none to them, and an admin who is no practitioner had no Home tab
    at all ("Only a practitioner can use 'home'"): only a notice could be clicked."""
    await say(app, SLACK_USER, "register P001")
    waiting = await fresh_say(app, "AD01", "pending")
    assert any(line.startswith("• R1: P001 asks to link a Slack account") for line in waiting.lines), waiting.lines
    assert [b.command for b in waiting.buttons] == ["approve R1", "deny R1"]
    home = await fresh_say(app, "AD01", "home")
    assert home.outcome is Outcome.INFO
    assert home.lines[0] == "Requests waiting for your decision: 1", home.lines  # no lookups: admins make none
    assert home.lines[1].startswith("• Registration R1: a Slack account asks to act as P001"), home.lines
    assert [b.command for b in home.buttons] == ["approve R1", "deny R1"]


async def test_a_registration_denial_reason_holding_the_deciders_current_code_is_refused(app: Signpost) -> None:
    """The reason goes to the account that asked: the duty manager's current code may not go with it."""
    await say(app, SLACK_USER, "register P001")
    authenticator = await ensure_enrolled(app, "DM01")
    code = code_now(app, authenticator)
    refused = await decide(app, "DM01", "deny", "R1", f"not known to us, verification {code}")
    assert refused.outcome is Outcome.INVALID and refused.text.startswith(CODE_REFUSED), refused.text
    assert code not in refused.text and await notices(app, "P001") == []
    [event] = [e for e in await audit_events(app, "deny") if e.outcome == "invalid"]
    assert event.detail == "code refused: reason for registration R1"
    assert (await decide(app, "DM01", "deny", "R1", "not known to us")).outcome is Outcome.DONE
