"""Every message, card click and dialog a person sends that reaches Signpost through the real Teams
front end (activities posted to the aiohttp server on loopback) is audited exactly once, whatever it
is, from someone registered or not, before and after the switch-off, with nothing of a child's
identity that was typed in the audit event's clear fields (the terms are sealed). Slack's table is
``tests/bot/slack/test_every_request_audited.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from bot.app import Signpost
from handlers.vocabulary import is_origin
from store.tables.audit import AuditEvent
from tests.bot.teams.teams_support import PRIYA, STRANGER, TeamsApp, TeamsUser, invoke, message, task_fetch
from tests.fakes.teams_connector import FakeConnector
from tests.stepup_helpers import say_fresh

IDENTITY = ("Amy", "Jones", "03/04/2014", "2014-04-03", "M1 2AB", "Amelia")
CLEAR = ("actor_id", "tenant", "user_id", "actor_role", "actor_org", "actor_la", "channel", "action", "outcome")
CODE = {"verb": "code", "data": {"signpost": 1, "verb": "code", "challenge_id": "no-such-challenge"}}
REQUEST = {
    "verb": "request_access",
    "data": {
        "signpost": 1,
        "verb": "request_access",
        "button": {
            "action_id": "request_access",
            "label": "Request access",
            "command": "request 9990000050",
            "style": None,
            "input": {"name": "purpose", "label": "Purpose", "required": True, "max_length": 500},
        },
    },
}
FOREIGN_DIALOG = {"type": "Action.Submit", "data": {"msteams": {"type": "task/fetch"}, "x": 1}}

Activity = Callable[[TeamsUser, str], dict[str, Any]]


def said(text: str) -> Activity:
    return lambda user, url: message(user, text, url)


def table() -> list[tuple[str, Activity]]:
    cases: list[tuple[str, Activity]] = [
        (repr(text), said(text))
        for text in (
            "",
            "help",
            "frobnicate the thing",
            "seach Amy Jones 03/04/2014 M1 2AB",
            "Amy Jones 31/02/2014",
            "Amy Jones 03/04/2014 M1 2AB",
            "999 000 0017",
            "code 123456",
            "request 9990000018",
            "Amy\u202e Jones\x07 " + "x" * 3000,
        )
    ]
    cases += [
        ("foreign click", lambda user, url: invoke(user, {"verb": "approve", "data": {"x": 1}}, url)),
        ("empty code box", lambda user, url: invoke(user, CODE, url, {"code": ""})),
        ("code box left out", lambda user, url: invoke(user, CODE, url)),
        ("empty required form", lambda user, url: invoke(user, REQUEST, url, {"purpose": "  "})),
        ("foreign dialog", lambda user, url: task_fetch(user, FOREIGN_DIALOG, url)),
        ("click value unreadable", lambda user, url: {**invoke(user, CODE, url), "value": {"action": "Amy Jones"}}),
        ("dialog value not an object", lambda user, url: {**task_fetch(user, FOREIGN_DIALOG, url), "value": "Amy"}),
        ("no AAD object id", lambda user, url: {**message(user, "Amy Jones", url), "from": {"id": user.teams_id}}),
        *unreadable_messages(),
    ]
    return cases


def unreadable_messages() -> list[tuple[str, Activity]]:
    """Messages a person sent that Signpost cannot read as text: a message's type in other capitals
    (Bot Framework types are not case-sensitive), text that is no string, a mention that names no one."""
    return [
        ("type in capitals", lambda user, url: {**message(user, "help", url), "type": "Message"}),
        ("text a number", lambda user, url: {**message(user, "Amy Jones", url), "text": 5}),
        (
            "unreadable mention",
            lambda user, url: {**message(user, "Amy Jones", url), "entities": [{"type": "mention", "mentioned": 5}]},
        ),
    ]


async def command_events(signpost: Signpost) -> list[AuditEvent]:
    async with signpost.ctx.db.read() as session:
        rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars()
        return [e for e in rows if not is_origin(e.platform)]


async def walk(teams: TeamsApp, connector: FakeConnector, signpost: Signpost) -> list[str]:
    """Each case from each user; the outcomes their events recorded."""
    outcomes: list[str] = []
    for user in (PRIYA, STRANGER):
        for name, activity in table():
            before = len(await command_events(signpost))
            response = await teams.post(activity(user, connector.url))
            assert response.status in (200, 202), (user.aad, name)
            new = (await command_events(signpost))[before:]
            assert len(new) == 1, (user.aad, name, [(e.action, e.outcome, e.detail) for e in new])
            [event] = new
            assert event.platform == "teams", name
            outcomes.append(event.outcome)
            clear = " ".join(str(getattr(event, field) or "") for field in (*CLEAR, "detail", "subject_refs"))
            for private in IDENTITY:
                assert private not in clear, (user.aad, name, private)
    return outcomes


async def test_every_request_through_teams_is_audited_exactly_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Messages (help, usage, typos naming a child, malformed searches, codes typed as text), foreign
    clicks and dialogs, empty code boxes and forms, from a registered nurse and from a stranger."""
    await walk(teams, connector, loaded)


async def test_every_request_through_teams_after_the_switch_off_is_audited_exactly_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """The same table once Signpost is switched off: one event each still."""
    done = await say_fresh(loaded, "AD01", "decommission schedule 02/11/2026 at once")
    assert "switched off now, at once" in done.text, done
    assert "switched_off" in await walk(teams, connector, loaded)


async def test_a_message_signpost_cannot_read_is_answered_with_help_and_audited_once(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A message whose type is in other capitals, or whose text or mention cannot be read, was
    answered 202 or 400 with nothing sent and nothing audited: it is read as a message with no text,
    so its sender is shown help in the 1:1 chat and its one event says so, naming nobody it carried."""
    for name, activity in unreadable_messages():
        connector.sent.clear()
        before = len(await command_events(loaded))
        response = await teams.post(activity(PRIYA, connector.url))
        assert response.status in (200, 202), name
        [event] = (await command_events(loaded))[before:]
        assert (event.action, event.user_id, event.actor_id) == ("help", PRIYA.aad, "P002"), name
        [reply] = connector.sent
        assert reply.conversation_id == PRIYA.personal_conversation, name
        assert reply.card is not None and "Amy" not in str(reply.body), name
