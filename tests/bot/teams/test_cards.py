"""Adaptive Card flows in Teams: buttons as Action.Execute invokes and Action.Submit messages.

Step-up, enrolment, access requests and decisions run the real ``code``, ``enrol``, ``request``
and ``approve`` commands with real authenticator codes. The approval-card plumbing tests (which
commands a click dispatches, with which click id) keep small recording stand-ins for approve and
deny (``StandIns``), registered on the real Dispatcher, so they can see exactly what the Teams
front end sent; the real decision flow is tested at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot import enrol_page
from bot.app import Signpost
from bot.teams.front import ERROR_TEXT, TEAMS_KEY, teams_route_adder
from handlers.access.requests import unlink_identities
from handlers.commands import all_specs
from handlers.context import Context
from handlers.dispatch.dispatcher import Dispatcher
from handlers.dispatch.spec import Request, Result, Spec
from handlers.stepup import flow as stepup
from handlers.vocabulary import Action, Button, Command, Notice, Outcome, Reply, Role
from store.delivery.notices import pending
from store.people import credentials
from store.register.feeds import Feed, import_feeds
from tests.access_helpers import EXTRA_PRACTITIONERS
from tests.bot.teams.teams_support import (
    DANA,
    PRIYA,
    TeamsApp,
    TeamsUser,
    actions_of,
    another_code,
    audit_events,
    invoke,
    later,
    message,
    settings,
    submit,
    teams_events,
    texts_of,
)
from tests.bot.teams.teams_support import link as link_teams
from tests.factories import AMY, SHIELDED
from tests.fakes.teams_connector import FakeConnector
from tests.stepup_helpers import code_now, ensure_enrolled

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

TOM = TeamsUser(
    "29:1tom", "00000000-0000-4000-8000-000000000003", "Tom Reed"
)  # linked to P003 by the tests that use him


@dataclass
class StandIns:
    """Recording stand-ins for approve and deny: they keep what reached them, and decide once.

    They declare ``writes`` as the real decisions do: a front end answers a change on the clicked
    card, and opens a dialog only for a reading.
    """

    seen: list[Command] = field(default_factory=list)
    decisions: dict[str, str] = field(default_factory=dict)

    def decide(self, verdict: str) -> Any:
        async def run(ctx: Context, req: Request, session: AsyncSession) -> Result:
            self.seen.append(req.command)
            earlier = self.decisions.get(req.args)
            if earlier is not None:
                return Result(Reply(Outcome.INFO, f"Request {req.args} was already {earlier}. Nothing changed."))
            self.decisions[req.args] = verdict
            return Result(Reply(Outcome.DONE, f"Request {req.args} {verdict}."))

        return run

    def specs(self) -> list[Spec]:
        return [
            Spec("approve", Action.APPROVE, self.decide("approved"), role=Role.DUTY_MANAGER, writes=True),
            Spec("deny", Action.DENY, self.decide("denied"), role=Role.DUTY_MANAGER, writes=True),
        ]


@pytest.fixture
def stand_ins() -> StandIns:
    return StandIns()


@pytest.fixture
async def staged(loaded: Signpost, stand_ins: StandIns) -> Signpost:
    """The loaded app whose Dispatcher also knows the stand-in commands."""
    return Signpost(loaded.ctx, Dispatcher.build(loaded.ctx, [*all_specs(), *stand_ins.specs()]))


@pytest.fixture
async def teams_staged(staged: Signpost) -> Any:
    app = await TeamsApp.start(staged, settings())
    yield app
    await app.close()


def only_action(card: dict[str, Any], verb: str) -> dict[str, Any]:
    [action] = [a for a in actions_of(card) if a.get("verb") == verb]
    return action


async def invoke_card(teams: TeamsApp, body: dict[str, Any]) -> dict[str, Any]:
    """Post an invoke; return the card Teams would put in place of the clicked one."""
    response = await teams.post(body)
    assert response.status == 200
    doc = await response.json()
    assert doc["statusCode"] == 200 and doc["type"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = doc["value"]
    return card


# Request access: the button that exists today (shielded result).


async def test_request_access_button_is_an_execute_behind_a_reason_form(
    teams_staged: TeamsApp, connector: FakeConnector
) -> None:
    """A shielded answer offers Request access: a ShowCard with the reason input and Action.Execute."""
    await teams_staged.post(message(PRIYA, SHIELDED, connector.url))
    [reply] = connector.sent
    assert reply.card is not None
    show, message_card = reply.card["actions"]
    assert show["type"] == "Action.ShowCard" and show["title"] == "Request access"
    assert message_card["type"] == "Action.ShowCard" and message_card["title"] == "Send a message"  # issue 18
    [reason] = [e for e in show["card"]["body"] if e["type"] == "Input.Text"]
    assert reason["id"] == "purpose" and reason["isRequired"] is True
    send = only_action(reply.card, "request_access")
    assert send["type"] == "Action.Execute"
    assert send["data"]["button"]["command"] == f"request {int(SHIELDED)}"
    assert send["fallback"]["type"] == "Action.Submit" and send["fallback"]["data"] == send["data"]


async def test_clicking_a_button_dispatches_its_command_with_the_input_and_click_id(
    teams_staged: TeamsApp, connector: FakeConnector, staged: Signpost
) -> None:
    """The invoke runs 'request <ref> <reason>' as a button command; the card is replaced by the answer."""
    await teams_staged.post(message(PRIYA, SHIELDED, connector.url))
    assert connector.sent[0].card is not None
    send = only_action(connector.sent[0].card, "request_access")
    before = len(await audit_events(staged))
    card = await invoke_card(
        teams_staged, invoke(PRIYA, send, connector.url, {"purpose": "Strategy meeting tomorrow"}, "click-1")
    )
    events = await audit_events(staged)
    assert len(events) == before + 1
    clicked = events[-1]
    assert (clicked.channel, clicked.actor_id, clicked.platform) == ("button", "P002", "teams")
    assert card["type"] == "AdaptiveCard" and texts_of(card)  # the answer, as a card
    assert len(connector.sent) == 1  # answered in the invoke response, not as another message


async def test_a_foreign_or_stale_action_is_answered_kindly(teams_staged: TeamsApp, connector: FakeConnector) -> None:
    """Action data Signpost did not make is not dispatched."""
    card = await invoke_card(teams_staged, invoke(PRIYA, {"verb": "approve", "data": {"x": 1}}, connector.url))
    assert "no longer available" in texts_of(card)


async def test_a_failed_click_answers_with_a_generic_card_not_the_exception(
    teams_staged: TeamsApp, connector: FakeConnector
) -> None:
    """A click in a channel whose private delivery fails: the invoke still answers, generically."""
    action = {
        "verb": "approve",
        "data": {
            "signpost": 1,
            "verb": "approve",
            "button": {
                "action_id": "approve",
                "label": "Approve",
                "command": "approve 42",
                "style": None,
                "input": None,
            },
        },
    }
    body = invoke(DANA, action, connector.url)
    body["conversation"] = {
        "id": "19:general@thread.tacv2",
        "conversationType": "channel",
        "tenantId": DANA.tenant,
    }
    connector.fail_next = 1
    card = await invoke_card(teams_staged, body)
    text = texts_of(card)
    # Exactly the generic line and its reference (random hex, which may hold "503" by chance).
    assert re.fullmatch(re.escape(ERROR_TEXT).replace(re.escape("{ref}"), "[0-9a-f]{8}"), text), text


# Step-up: a challenge card with one input, answered privately, by the real code command.


async def stale_tom(loaded: Signpost) -> pyotp.TOTP:
    """TOM linked to P003 and enrolled, with the last code older than the 30-minute freshness."""
    await link_teams(loaded, TOM, "P003")
    totp = await ensure_enrolled(loaded, "P003")
    later(loaded, minutes=31)
    return totp


async def challenge_card(teams: TeamsApp, connector: FakeConnector) -> dict[str, Any]:
    """TOM looks up AMY with a stale code: the card Teams shows in the 1:1 chat."""
    await teams.post(message(TOM, AMY, connector.url))
    [reply] = connector.sent
    assert reply.conversation_id == TOM.personal_conversation and reply.card is not None
    return reply.card


def spaced(code: str) -> str:
    """A code as people type it from their phone: with spaces around and in the middle."""
    return f" {code[:3]} {code[3:]} "


async def test_totp_challenge_is_a_card_with_one_code_input(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Reply.challenge renders one Input.Text 'code' and Action.Execute verb 'code' carrying only
    the opaque challenge id of the parked lookup; nothing about the child is on the card."""
    await stale_tom(loaded)
    card = await challenge_card(teams, connector)
    inputs = [e for e in card["body"] if e["type"].startswith("Input.")]
    assert [(i["type"], i["id"]) for i in inputs] == [("Input.Text", "code")]
    assert inputs[0]["style"] == "tel"  # phones show a number pad for the code
    send = only_action(card, "code")
    assert send["type"] == "Action.Execute"
    assert set(send["data"]) == {"signpost", "verb", "challenge_id"}
    async with loaded.ctx.db.read() as session:
        assert await credentials.is_parked(session, send["data"]["challenge_id"], TOM.principal)
    assert stepup.PROMPT in texts_of(card)
    for private in ("999 000 0018", AMY, "Sam Carter", "Amy"):
        assert private not in str(card)
    assert [(e.action, e.outcome) for e in await teams_events(loaded)] == [("lookup", "challenged")]


async def test_totp_card_flow_wrong_then_right_code(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A wrong code shows the error on a fresh challenge card; the right one replaces it with signposts."""
    totp = await stale_tom(loaded)
    send = only_action(await challenge_card(teams, connector), "code")
    good = code_now(loaded, totp)
    wrong = await invoke_card(teams, invoke(TOM, send, connector.url, {"code": another_code(good)}))
    assert stepup.WRONG.format(left=4, ies="ies") in texts_of(wrong)
    assert only_action(wrong, "code")["data"]["challenge_id"] == send["data"]["challenge_id"]
    right = await invoke_card(teams, invoke(TOM, send, connector.url, {"code": spaced(good)}))
    assert "Sam Carter" in texts_of(right) and "999 000 0018" in texts_of(right)
    # The parked lookup runs once the code is good, with its own audit event, before the code's.
    events = await teams_events(loaded)
    assert [(e.action, e.outcome, e.channel) for e in events] == [
        ("lookup", "challenged", "direct"),
        ("code", "challenged", "modal"),
        ("lookup", "answered", "direct"),
        ("code", "answered", "modal"),
    ]
    # The code is never echoed: not in anything sent to Teams, not in any card returned or audited.
    assert all(good not in str(s.body) for s in connector.sent)
    assert good not in str(right) and another_code(good) not in str(wrong)
    assert all(e.terms is None and good not in (e.detail or "") for e in events if e.action == "code")


async def test_totp_code_from_an_older_client_submit(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Action.Submit (message with value) carries the same code; the challenge card is updated in place."""
    totp = await stale_tom(loaded)
    send = only_action(await challenge_card(teams, connector), "code")
    code = code_now(loaded, totp)
    await teams.post(submit(TOM, send["fallback"], connector.url, "activity-7", {"code": code}))
    [update] = connector.updates()
    assert update.path.endswith("/activities/activity-7") and update.conversation_id == TOM.personal_conversation
    assert update.card is not None and "Sam Carter" in texts_of(update.card)
    assert [(e.action, e.outcome) for e in await teams_events(loaded)][-1] == ("code", "answered")


async def test_enrolling_in_teams_shows_the_link_and_the_code_input_and_the_first_code_finishes_it(
    loaded: Signpost, connector: FakeConnector
) -> None:
    """`enrol` in Teams: one card with the one-time link and a code input. The app set up from the
    link's page gives the first code, which finishes enrolment; a lookup then answers at once."""
    adder = teams_route_adder(settings())
    assert adder is not None
    teams = TeamsApp(loaded, settings(), [adder, enrol_page.add_routes])
    await teams.client.start_server()
    try:
        await link_teams(loaded, TOM, "P003")
        await teams.post(message(TOM, "enrol", connector.url))
        [reply] = connector.sent
        assert reply.card is not None
        shown = texts_of(reply.card)
        assert "Open this link within 10 minutes" in shown and stepup.PROMPT_PENDING in shown
        [open_page] = [a for a in reply.card.get("actions", []) if a["type"] == "Action.OpenUrl"]
        link = open_page["url"]
        assert open_page["title"] == "Set up authenticator" and re.fullmatch(r"https?://\S+/enrol/[A-Za-z0-9_-]+", link)
        page = await teams.client.post(urlparse(link).path)  # the page's Show my QR code button
        assert page.status == 200
        text = await page.text()
        start = text.index('<code id="secret">') + len('<code id="secret">')
        totp = pyotp.TOTP(text[start : text.index("</code>", start)].replace(" ", ""))
        code = code_now(loaded, totp)
        send = only_action(reply.card, "code")
        done = await invoke_card(teams, invoke(TOM, send, connector.url, {"code": code}))
        assert "You're set up" in texts_of(done)
        assert all(code not in str(s.body) for s in connector.sent)
        connector.sent.clear()
        await teams.post(message(TOM, AMY, connector.url))
        [answer] = connector.sent
        assert answer.card is not None and "Sam Carter" in texts_of(answer.card)
    finally:
        await teams.close()


# Approvals: Approve / Deny on a notice card, replaced by the decision; a second click changes nothing.


def approval_notice() -> Notice:
    return Notice(
        recipient_id="DM01",
        kind="access_request",
        text="P002 asks for access to 999 000 0050 (request 42).",
        buttons=(
            Button("approve", "Approve", "approve 42", style="primary"),
            Button("deny", "Deny", "deny 42", style="danger"),
        ),
    )


async def approval_card(teams: TeamsApp, connector: FakeConnector) -> dict[str, Any]:
    """Dana talks to the bot once, then receives the approval notice as a card."""
    await teams.post(message(DANA, "help", connector.url))
    connector.sent.clear()
    front = teams.web[TEAMS_KEY]
    await front.deliverer.deliver(DANA.principal, approval_notice())
    [notice] = connector.messages_in(DANA.personal_conversation)
    assert notice.card is not None
    return notice.card


async def test_approval_notice_has_approve_and_deny_execute_buttons(
    teams_staged: TeamsApp, connector: FakeConnector
) -> None:
    """Approve/Deny are Action.Execute with verbs approve/deny and their commands in the data."""
    card = await approval_card(teams_staged, connector)
    approve, deny = only_action(card, "approve"), only_action(card, "deny")
    assert approve["data"]["button"]["command"] == "approve 42" and approve.get("style") == "positive"
    assert deny["data"]["button"]["command"] == "deny 42" and deny.get("style") == "destructive"
    assert approve["fallback"]["type"] == "Action.Submit"


async def test_approve_replaces_the_card_and_a_second_click_changes_nothing(
    teams_staged: TeamsApp, connector: FakeConnector, stand_ins: StandIns, staged: Signpost
) -> None:
    """The first click decides; a redelivered click acts once (no second effect or audit event) and a
    Deny afterwards shows the decision and decides nothing."""
    card = await approval_card(teams_staged, connector)
    approve, deny = only_action(card, "approve"), only_action(card, "deny")
    first = await invoke_card(teams_staged, invoke(DANA, approve, connector.url, activity_id="click-A"))
    assert "Request 42 approved." in texts_of(first) and actions_of(first) == []
    again = await invoke_card(teams_staged, invoke(DANA, approve, connector.url, activity_id="click-A"))
    late = await invoke_card(teams_staged, invoke(DANA, deny, connector.url, activity_id="click-B"))
    assert "Already received" in texts_of(again) and "already approved" in texts_of(late)
    assert stand_ins.decisions == {"42": "approved"}
    clicks = [c for c in stand_ins.seen if c.text.startswith(("approve", "deny"))]
    assert [(c.text, c.channel) for c in clicks] == [("approve 42", "button"), ("deny 42", "button")]
    keys = [str(c.idempotency_key) for c in clicks]  # one per button on the card, whatever the activity
    assert all(key.startswith("teams:click:") for key in keys) and len(set(keys)) == 2
    events = await audit_events(staged)
    assert [(e.action, e.channel) for e in events[-2:]] == [("approve", "button"), ("deny", "button")]


async def test_approve_from_an_older_client_updates_the_card_in_place(
    teams_staged: TeamsApp, connector: FakeConnector, stand_ins: StandIns
) -> None:
    """Action.Submit: the decision replaces the notice card through an activity update."""
    card = await approval_card(teams_staged, connector)
    approve = only_action(card, "approve")
    await teams_staged.post(submit(DANA, approve["fallback"], connector.url, "activity-notice"))
    [update] = connector.updates()
    assert update.path.endswith("/activities/activity-notice")
    assert update.card is not None and "Request 42 approved." in texts_of(update.card)
    assert stand_ins.decisions == {"42": "approved"}


async def test_a_practitioner_cannot_approve_by_clicking(
    teams_staged: TeamsApp, connector: FakeConnector, stand_ins: StandIns
) -> None:
    """Roles are the Dispatcher's: a practitioner's click on Approve is refused and decides nothing."""
    card = await approval_card(teams_staged, connector)
    refused = await invoke_card(teams_staged, invoke(PRIYA, only_action(card, "approve"), connector.url))
    assert "Only a duty manager" in texts_of(refused)
    assert stand_ins.decisions == {}


# The real access-request flow: request by button, the duty manager's notice card, the decision.


async def southvale_request(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost, reason: str = "Strategy meeting tomorrow"
) -> tuple[dict[str, Any], pyotp.TOTP]:
    """PRIYA requests access to the shielded child by button; DANA, as Southvale's first duty
    manager (DM02), receives the notice card. Returns the card and DM02's authenticator."""
    # The shielded child is Southvale's, and only its own authority's duty managers decide: DANA acts
    # here as Southvale's first duty manager (DM02) instead of Northshire's DM01.
    await import_feeds(
        loaded.ctx.db, loaded.ctx.keys, [Feed("practitioners.csv", EXTRA_PRACTITIONERS)], loaded.ctx.clock.now()
    )
    async with loaded.ctx.db.write() as session:
        await unlink_identities(session, "DM01", "teams")
    await link_teams(loaded, DANA, "DM02")
    totp = await ensure_enrolled(loaded, "DM02")
    await teams.post(message(DANA, "help", connector.url))
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    shielded = connector.messages_in(PRIYA.personal_conversation)[-1].card
    assert shielded is not None
    send = only_action(shielded, "request_access")
    sent = await invoke_card(teams, invoke(PRIYA, send, connector.url, {"purpose": reason}))
    assert "Access request 1 for 999 000 0050 sent to a duty manager" in texts_of(sent)
    async with loaded.ctx.db.read() as session:
        waiting = [
            n for _, n in await pending(session, loaded.ctx.keys, loaded.ctx.clock.now()) if n.recipient_id == "DM02"
        ]
    assert len(waiting) == 1, "the access request should notify the duty manager once"
    connector.sent.clear()
    await teams.web[TEAMS_KEY].deliverer.deliver(DANA.principal, waiting[0])
    [notice] = connector.messages_in(DANA.personal_conversation)
    assert notice.card is not None
    return notice.card, totp


async def test_access_request_approved_in_teams_with_real_commands(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Request access by button → the duty manager's notice card → Approve → decision shown, once:
    a redelivered click and a second click on the same button (a double click: each click is an
    activity of its own) act once and are audited once, as in Slack."""
    card, _ = await southvale_request(teams, connector, loaded)
    approve = only_action(card, "approve")
    first = await invoke_card(teams, invoke(DANA, approve, connector.url, activity_id="click-1"))
    again = await invoke_card(teams, invoke(DANA, approve, connector.url, activity_id="click-1"))
    second = await invoke_card(teams, invoke(DANA, approve, connector.url, activity_id="click-2"))
    assert texts_of(first).startswith("Request 1 approved: P002 can see the signposts for 999 000 0050")
    assert "Already received" in texts_of(again)
    assert "Already received" in texts_of(second)
    assert actions_of(first) == actions_of(again) == actions_of(second) == []
    decisions = [(e.action, e.outcome, e.channel) for e in await teams_events(loaded) if e.action == "approve"]
    assert decisions == [("approve", "done", "button")]
    # Now PRIYA sees the signposts (her code from the fixture is still fresh).
    connector.sent.clear()
    await teams.post(message(PRIYA, SHIELDED, connector.url))
    [answer] = connector.messages_in(PRIYA.personal_conversation)
    assert answer.card is not None and "999 000 0050" in texts_of(answer.card)
    assert "Request access" not in str(answer.card)


async def test_approving_with_a_stale_code_asks_for_one_on_the_card_then_decides(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Decisions need a code under 5 minutes old: the Approve click is answered with a code card
    (the decision waits, parked); the real code then decides, and replaces the card."""
    card, totp = await southvale_request(teams, connector, loaded)
    later(loaded, minutes=6)
    asked = await invoke_card(teams, invoke(DANA, only_action(card, "approve"), connector.url, activity_id="c-1"))
    assert stepup.PROMPT_APPROVAL in texts_of(asked)
    assert [a.get("verb") for a in actions_of(asked)] == ["code"]
    code = code_now(loaded, totp)
    decided = await invoke_card(teams, invoke(DANA, only_action(asked, "code"), connector.url, {"code": code}))
    assert texts_of(decided).startswith("Request 1 approved: P002 can see the signposts")
    events = [(e.action, e.outcome, e.channel) for e in await teams_events(loaded) if e.user_id == DANA.aad]
    assert events[-3:] == [
        ("approve", "challenged", "button"),
        ("approve", "done", "button"),
        ("code", "done", "modal"),
    ]


def markdown_texts(card: Any) -> list[str]:
    """Every text on a card that Teams reads as markdown: TextBlock texts and fact titles and values."""
    found: list[str] = []
    if isinstance(card, dict):
        if card.get("type") == "TextBlock":
            found.append(card.get("text", ""))
        if card.get("type") == "FactSet":
            found.extend(f"{f.get('title', '')} {f.get('value', '')}" for f in card.get("facts", []))
        for value in card.values():
            found.extend(markdown_texts(value))
    elif isinstance(card, list):
        for item in card:
            found.extend(markdown_texts(item))
    return found


async def test_a_purpose_written_as_markdown_reaches_the_duty_manager_as_plain_text(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A link typed into a purpose is shown as typed in 'pending', never rendered as a link."""
    reason = "Please [open the case file](https://evil.example/steal) **urgently**"
    await southvale_request(teams, connector, loaded, reason=reason)
    connector.sent.clear()
    await teams.post(message(DANA, "pending", connector.url))
    [answer] = connector.messages_in(DANA.personal_conversation)
    card = answer.card
    assert card is not None and reason in texts_of(card)  # shown, as typed
    assert not any("evil.example" in text for text in markdown_texts(card))
    runs = [r for b in card["body"] if b["type"] == "RichTextBlock" for r in b["inlines"]]
    assert any(reason in r["text"] for r in runs) and all(r["type"] == "TextRun" for r in runs)
