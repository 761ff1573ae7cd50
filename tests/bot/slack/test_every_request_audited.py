"""Every request a person sends that reaches Signpost through the real Slack front end (signed
requests to the aiohttp server on loopback) is audited exactly once, whatever it is: well formed or
not, from someone registered or not, before and after the switch-off; and nothing of a child's
identity that was typed lands in the audit event's clear fields (the terms are sealed)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select

from bot.slack import render
from handlers.vocabulary import is_origin
from store.tables.audit import AuditEvent
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.factories import AMY, load_standard
from tests.stepup_helpers import say_fresh

NURSE = SlackUser("U0NURSE")  # linked to P002, stepped up
STRANGER = SlackUser("U0STRANGER")  # no chat identity in the register
# What a person may type about Amy Jones: none of it may appear in an event's clear fields.
IDENTITY = ("Amy", "Jones", "03/04/2014", "2014-04-03", "M1 2AB", "Amelia")
CLEAR = ("actor_id", "tenant", "user_id", "actor_role", "actor_org", "actor_la", "channel", "action", "outcome")


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[SlackHarness], Awaitable[object]]


def slash(user: SlackUser, text: str) -> Case:
    async def send(app: SlackHarness) -> object:
        return await app.slack.command(user, text)

    return Case(f"{user.user_id} /signpost {text[:30]!r}", send)


def unreadable_slash(user: SlackUser, text: str) -> Case:
    """A signed slash command Signpost cannot read (a field twice): refused unread, still audited."""

    async def send(app: SlackHarness) -> object:
        body = urlencode([*app.slack.command_body(user, text).items(), ("text", text)])
        return await app.slack.post(body, "application/x-www-form-urlencoded")

    return Case(f"{user.user_id} unreadable /signpost {text[:30]!r}", send)


def click(user: SlackUser, action_id: str, value: str) -> Case:
    async def send(app: SlackHarness) -> object:
        button = {"action_id": action_id, "text": {"type": "plain_text", "text": "x"}, "value": value}
        return await app.slack.interactive(app.slack.block_action_from_message(user, button, "b1"))

    return Case(f"{user.user_id} click {action_id} {value[:20]!r}", send)


def code_modal(user: SlackUser, code: str) -> Case:
    async def send(app: SlackHarness) -> object:
        view = {"type": "modal", "callback_id": render.CODE_CALLBACK, "private_metadata": "no-such-challenge"}
        values = {render.CODE_BLOCK: {render.CODE_ACTION: code}}
        submitted = app.slack.view_submission(user, view, f"V0CODE{user.user_id}{code!r}", values)
        return await app.slack.interactive(submitted)

    return Case(f"{user.user_id} code modal {code!r}", send)


def input_modal(user: SlackUser, metadata: str, text: str) -> Case:
    async def send(app: SlackHarness) -> object:
        view = {"type": "modal", "callback_id": render.INPUT_CALLBACK, "private_metadata": metadata}
        values = {render.INPUT_BLOCK: {render.INPUT_ACTION: text}}
        submitted = app.slack.view_submission(user, view, f"V0INPUT{user.user_id}{metadata}", values)
        return await app.slack.interactive(submitted)

    return Case(f"{user.user_id} input modal {metadata[:30]!r}", send)


def stray_view(user: SlackUser) -> Case:
    """A modal of Signpost's submitted under a callback id it no longer knows (an older version's)."""

    async def send(app: SlackHarness) -> object:
        view = {"type": "modal", "callback_id": "signpost_old_form"}
        submitted = app.slack.view_submission(user, view, f"V0OLD{user.user_id}", {"b": {"a": "Amy Jones"}})
        return await app.slack.interactive(submitted)

    return Case(f"{user.user_id} stray view", send)


def home(user: SlackUser, event_id: str) -> Case:
    async def send(app: SlackHarness) -> object:
        event = {"type": "app_home_opened", "user": user.user_id, "channel": "D0001", "tab": "home", "event_ts": "1.2"}
        return await app.slack.event(user, event, event_id=event_id)

    return Case(f"{user.user_id} home", send)


def table() -> list[Case]:
    cases: list[Case] = []
    for user in (NURSE, STRANGER):
        cases += [
            slash(user, ""),
            slash(user, "help"),
            slash(user, "frobnicate the thing"),
            slash(user, "seach Amy Jones 03/04/2014 M1 2AB"),
            slash(user, "Amy Jones 31/02/2014"),
            slash(user, "Amy Jones 03/04/2014 M1 2AB"),
            slash(user, AMY),
            slash(user, "999 000 0017"),
            slash(user, "code 123456"),
            slash(user, "history"),
            slash(user, "request 9990000018"),
            slash(user, "approve"),
            slash(user, "relay"),
            slash(user, "Amy\u202e Jones\x07 " + "x" * 3000),
            unreadable_slash(user, "Amy Jones 03/04/2014 M1 2AB"),
            click(user, "approve", "not a button Signpost made"),
            click(user, render.ENTER_CODE, "{not json"),
            click(user, "signpost_old_button", json.dumps({"c": "help"})),
            stray_view(user),
            code_modal(user, ""),
            code_modal(user, "12 34"),
            input_modal(user, "not json", "Amy Jones"),
            input_modal(user, json.dumps({"c": "request 9990000018", "f": None}), "   "),
            home(user, f"Ev{user.user_id}"),
        ]
    return cases


async def command_events(app: SlackHarness) -> list[AuditEvent]:
    """Events written for a request (events Signpost writes itself carry an origin as platform)."""
    async with app.signpost.ctx.db.read() as session:
        rows = (await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars()
        return [e for e in rows if not is_origin(e.platform)]


async def walk(app: SlackHarness, cases: list[Case]) -> list[str]:
    """Each case in turn; the outcomes their events recorded."""
    outcomes: list[str] = []
    for case in cases:
        before = len(await command_events(app))
        await case.send(app)
        await app.front.idle()
        new = (await command_events(app))[before:]
        assert len(new) == 1, (case.name, [(e.action, e.outcome, e.detail) for e in new])
        [event] = new
        assert event.platform == "slack", case.name
        outcomes.append(event.outcome)
        clear = " ".join(str(getattr(event, name) or "") for name in (*CLEAR, "detail", "subject_refs"))
        for private in IDENTITY:
            assert private not in clear, (case.name, private)
    return outcomes


async def test_every_request_through_slack_is_audited_exactly_once(slack_app: SlackHarness) -> None:
    """Help, usage, typos, malformed searches and references, codes typed as text, unreadable
    buttons and forms, empty code modals and the Home tab, from a registered nurse and from a
    stranger: one event each, with no child's identity in its clear fields."""
    await load_standard(slack_app.signpost)
    await slack_app.link("P002", NURSE)
    await walk(slack_app, table())


async def test_every_request_after_the_switch_off_is_audited_exactly_once(slack_app: SlackHarness) -> None:
    """The same table once Signpost is switched off: one event each still."""
    await load_standard(slack_app.signpost)
    await slack_app.link("P002", NURSE)
    done = await say_fresh(slack_app.signpost, "AD01", "decommission schedule 02/11/2026 at once")
    assert "switched off now, at once" in done.text, done
    assert "switched_off" in await walk(slack_app, table())
