"""Real Teams Activity JSON for tests, and a running Signpost web app to post it to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import Signpost
from bot.config import Settings
from bot.teams.front import teams_route_adder
from bot.web import RouteAdder, create_app
from handlers.clock import FakeClock
from handlers.vocabulary import Platform, Principal
from store.people import practitioners
from store.tables.audit import AuditEvent

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT_ID = "28:9e1c8d0b-bot"
BOT_NAME = "Signpost"


@dataclass(frozen=True)
class TeamsUser:
    """A synthetic Teams user: 29: id, AAD object id and a display name Signpost must ignore."""

    teams_id: str
    aad: str
    name: str
    tenant: str = TENANT

    @property
    def principal(self) -> Principal:
        return Principal(Platform.TEAMS, self.tenant, self.aad)

    @property
    def personal_conversation(self) -> str:
        return f"a:1personal-{self.aad}"


PRIYA = TeamsUser("29:1priya", "00000000-0000-4000-8000-000000000002", "Priya Shah")  # linked to P002
DANA = TeamsUser("29:1dana", "00000000-0000-4000-8000-000000000100", "Dana Moss")  # linked to DM01
STRANGER = TeamsUser(
    "29:1stranger", "00000000-0000-4000-8000-000000009999", "Priya Shah"
)  # same display name, not linked
CHANNEL_CONVERSATION = "19:general@thread.tacv2;messageid=1700000000000"


def settings(**extra: Any) -> Settings:
    """Settings from these values only (no .env); Teams anonymous unless credentials are given."""
    values = dict(extra)
    if not any(k.startswith("CONNECTIONS__") for k in extra):
        values.setdefault("SIGNPOST_TEAMS_ANONYMOUS", True)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _base(user: TeamsUser, service_url: str, conversation: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": "2025-03-01T10:00:00.000Z",
        "from": {"id": user.teams_id, "name": user.name, "aadObjectId": user.aad},
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "conversation": {"tenantId": user.tenant, **conversation},
        "channelData": {"tenant": {"id": user.tenant}},
        "locale": "en-GB",
    }


def personal(user: TeamsUser) -> dict[str, Any]:
    return {"id": user.personal_conversation, "conversationType": "personal"}


def channel() -> dict[str, Any]:
    return {"id": CHANNEL_CONVERSATION, "conversationType": "channel", "isGroup": True}


def message(user: TeamsUser, text: str, service_url: str, conversation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message in the 1:1 chat (or the given conversation)."""
    return {**_base(user, service_url, conversation or personal(user)), "type": "message", "text": text}


def mention(user: TeamsUser, text: str, service_url: str) -> dict[str, Any]:
    """An @mention of the bot in a team channel: Teams puts <at>name</at> in the text."""
    doc = message(user, f"<at>{BOT_NAME}</at> {text}", service_url, channel())
    doc["entities"] = [
        {"type": "mention", "text": f"<at>{BOT_NAME}</at>", "mentioned": {"id": BOT_ID, "name": BOT_NAME}}
    ]
    return doc


def invoke(
    user: TeamsUser,
    action: dict[str, Any],
    service_url: str,
    inputs: dict[str, str] | None = None,
    activity_id: str | None = None,
) -> dict[str, Any]:
    """An adaptiveCard/action invoke: what Teams sends when Action.Execute is clicked."""
    doc = _base(user, service_url, personal(user))
    doc.update(
        type="invoke",
        name="adaptiveCard/action",
        id=activity_id or uuid.uuid4().hex,
        replyToId="activity-card",
        value={
            "action": {
                "type": "Action.Execute",
                "verb": action["verb"],
                "data": {**action["data"], **(inputs or {})},
            },
            "trigger": "manual",
        },
    )
    return doc


def task_fetch(
    user: TeamsUser, action: dict[str, Any], service_url: str, inputs: dict[str, str] | None = None
) -> dict[str, Any]:
    """What Teams sends when an Action.Submit carrying ``msteams: {type: task/fetch}`` is clicked
    (a button opening a dialog), or, as ``task/submit``, when a Submit inside the dialog is."""
    assert action["type"] == "Action.Submit"
    name = "task/fetch" if action["data"].get("msteams") == {"type": "task/fetch"} else "task/submit"
    doc = _base(user, service_url, personal(user))
    doc.update(
        type="invoke",
        name=name,
        replyToId="activity-card",
        value={"data": {**action["data"], **(inputs or {})}, "context": {"theme": "default"}},
    )
    return doc


def submit(
    user: TeamsUser,
    action: dict[str, Any],
    service_url: str,
    card_activity_id: str,
    inputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An older client's Action.Submit: a message with no text and the data as ``value``."""
    doc = _base(user, service_url, personal(user))
    doc.update(type="message", replyToId=card_activity_id, value={**action["data"], **(inputs or {})})
    return doc


def actions_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action on a card, including those inside Action.ShowCard forms."""
    found: list[dict[str, Any]] = []
    for action in card.get("actions", []):
        found.append(action)
        if action["type"] == "Action.ShowCard":
            found.extend(actions_of(action["card"]))
    return found


def texts_of(card: dict[str, Any]) -> str:
    """All visible text on a card, flattened (text blocks, containers, fact sets, inputs)."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label", "placeholder"):
                if isinstance(node.get(key), str):
                    parts.append(node[key])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in card.items() if k != "actions"})
    walk(card.get("actions", []))
    return "\n".join(parts)


class TeamsApp:
    """Signpost's aiohttp application on loopback, with Teams mounted."""

    def __init__(self, signpost: Signpost, settings: Settings, adders: list[RouteAdder]) -> None:
        self.web = create_app(signpost, settings, adders)
        self.client = TestClient(TestServer(self.web, host="127.0.0.1"))

    @classmethod
    async def start(cls, signpost: Signpost, settings: Settings, **adder_options: Any) -> TeamsApp:
        adder = teams_route_adder(settings, **adder_options)
        assert adder is not None
        app = cls(signpost, settings, [adder])
        await app.client.start_server()
        return app

    async def post(self, activity: dict[str, Any], headers: dict[str, str] | None = None) -> ClientResponse:
        return await self.client.post("/api/messages", json=activity, headers=headers or {})

    async def close(self) -> None:
        await self.client.close()


async def link(signpost: Signpost, user: TeamsUser, practitioner_id: str) -> None:
    """Link a Teams identity to a practitioner (registration will do this once it exists)."""
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, user.principal, practitioner_id, signpost.ctx.clock.now())


async def audit_events(signpost: Signpost) -> list[AuditEvent]:
    """Every audit event, oldest first (each is durable before its reply was sent)."""
    async with signpost.ctx.db.read() as session:
        return list((await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars())


async def teams_events(signpost: Signpost) -> list[AuditEvent]:
    """The audit events of requests made from Teams, oldest first.

    The ``loaded`` fixture enrols P002's and DM01's authenticators in the console (an ``enrol`` and
    a ``code`` event each, on the console platform) before every test; that set-up is not what the
    Teams tests are about, so it is left out here. Step-up events raised from Teams stay in.
    """
    async with signpost.ctx.db.read() as session:
        stmt = select(AuditEvent).where(AuditEvent.platform == Platform.TEAMS.value).order_by(AuditEvent.seq)
        return list((await session.execute(stmt)).scalars())


def later(signpost: Signpost, **delta: float) -> None:
    """Move the app's (fake) clock on, e.g. past the freshness of the last step-up code."""
    clock = signpost.ctx.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(**delta))


def another_code(code: str) -> str:
    """A well-formed 6-digit code that is not ``code`` (a wrong code, for certain)."""
    return f"{(int(code) + 1) % 1_000_000:06d}"
