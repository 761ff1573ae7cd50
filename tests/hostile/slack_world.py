"""The Slack side of the suite: the real app on loopback with the standard synthetic register, three
linked and stepped-up users (a practitioner, a duty manager, an administrator) and one stranger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientResponse
from sqlalchemy import func, select

from bot.app import Signpost
from bot.slack.render import CODE_CALLBACK
from store.tables.audit import AuditEvent
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser, signed_headers
from tests.factories import load_standard
from tests.hostile.observe import ACCEPTED_WRONGLY, CRASHED, LEAK, UNANSWERED, UNAUDITED, Check, LogTap, identity_in

MAX_BODY = 1024**2  # aiohttp's default client_max_size, which Signpost keeps
NURSE = SlackUser("U0HNURSE")
MANAGER = SlackUser("U0HMANAGER")
ADMIN = SlackUser("U0HADMIN")
STRANGER = SlackUser("U0HSTRANGER")
LINKED = (NURSE, MANAGER, ADMIN)


async def populate(app: SlackHarness) -> SlackHarness:
    await load_standard(app.signpost)
    await app.link("P002", NURSE)
    await app.link("DM01", MANAGER)
    await app.link("AD01", ADMIN)
    return app


async def last_seq(signpost: Signpost) -> int:
    async with signpost.ctx.db.read() as session:
        return int((await session.execute(select(func.coalesce(func.max(AuditEvent.seq), 0)))).scalar_one())


async def events_since(signpost: Signpost, seq: int) -> list[AuditEvent]:
    async with signpost.ctx.db.read() as session:
        stmt = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        return list((await session.execute(stmt)).scalars())


@dataclass
class Sent:
    response: ClientResponse
    status: int
    events: list[AuditEvent]
    calls: list[Any]  # what reached the fake Slack API while the request was handled (not Bolt's auth.test)
    ack: str  # the HTTP response's body: an answer when Signpost answered in the ack
    log: str
    size: int  # bytes in the request body


async def send_raw(app: SlackHarness, logs: LogTap, body: bytes, headers: dict[str, str]) -> Sent:
    seq, mark = await last_seq(app.signpost), len(app.fake.calls)
    logs.new()
    response = await app.slack.client.post("/slack/events", data=body, headers=headers)
    ack = (await response.read()).decode(errors="replace")
    await app.front.idle()
    events = await events_since(app.signpost, seq)
    return Sent(response, response.status, events, outbound(app, mark), ack, logs.new(), len(body))


def outbound(app: SlackHarness, mark: int) -> list[Any]:
    """Calls made for a request; Bolt's own ``auth.test`` (its token check, no user data) left out."""
    return [c for c in app.fake.calls[mark:] if c.method != "auth.test"]


async def send_command(app: SlackHarness, logs: LogTap, user: SlackUser, text: str) -> tuple[Sent, str]:
    """A correctly signed /signpost command; also the response_url path it carried."""
    fields = app.slack.command_body(user, text)
    body = urlencode(fields)
    headers = signed_headers(body, content_type="application/x-www-form-urlencoded")
    sent = await send_raw(app, logs, body.encode(), headers)
    return sent, fields["response_url"].split("/", 3)[-1]


def ack_body(ack: str) -> Any:
    try:
        return json.loads(ack)
    except ValueError:
        return {"raw": ack}


def check_answered_once(check: Check, sent: Sent, user: SlackUser, response_path: str, text: str) -> AuditEvent | None:
    """A command from a signed request: 200, one answer to its sender, one audit event of theirs.

    The one exception: a body over aiohttp's 1 MiB limit (300,000 non-ASCII characters, URL-encoded)
    is refused with 413 before anything reads it, so nothing is answered or audited. Slack itself
    never sends a slash command that long.
    """
    if sent.status == 413 and sent.size > MAX_BODY:
        check.expect(not sent.events and not sent.calls, ACCEPTED_WRONGLY, "a 413 body had effects")
        check.logs(sent.log)
        return None
    check.status(sent.status, {200}, "a signed command", otherwise=UNANSWERED)
    answers = [
        c.raw
        for c in sent.calls
        if (c.method == "response_url" and c.path.endswith(response_path))
        or c.method == "views.update"
        or (c.method == "views.open" and c.body.get("view", {}).get("callback_id") == CODE_CALLBACK)
    ]
    if sent.ack:  # answered in the slash command's own ack
        answers.append(sent.ack)
    check.expect(len(answers) == 1, UNANSWERED, f"{len(answers)} answers ({[c.method for c in sent.calls]})")
    own = [e for e in sent.events if e.user_id == user.user_id]
    check.expect(len(own) == 1, UNAUDITED, f"{len(own)} audit events ({[(e.action, e.outcome) for e in own]})")
    check.expect(
        not any(e.outcome == "failed" for e in own) and "went wrong" not in " ".join(answers),
        CRASHED,
        "answered 'something went wrong'",
    )
    check.logs(sent.log)
    check.outbound([c.body for c in sent.calls] + ([ack_body(sent.ack)] if sent.ack else []), own_text=text)
    for event in own:
        if found := identity_in(event.detail or ""):
            check.fail(LEAK, f"{found!r} in an audit detail")
    return own[0] if len(own) == 1 else None
