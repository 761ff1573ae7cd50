"""What the connector answers to a reply, when it is not a plain yes, is one warning line naming its
status, never a traceback (the SDK raised inside the turn, logged as ``teams_turn_failed`` with its
traceback, then ``teams_error_reply_failed``): a refusal (4xx) is ``teams_reply_refused``, a failure
(429, 5xx, a 2xx whose body cannot be read) ``teams_reply_failed``. The lookup stays audited and its
answer is on record as not shown. Real Activity JSON in; a "connector" on loopback answering as told,
its body echoing what a hostile one might (a child's name, a code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import Signpost
from tests.bot.log_stream import logged_at
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, teams_events
from tests.factories import AMY

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

ECHO = "Amy Jones 03/04/2014 M1 2AB code 482913"


def ours(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Signpost's lines (anonymous mode adds the SDK's own warning about its user token client)."""
    return [line for line in lines if str(line.get("logger", "")).startswith("signpost")]


@dataclass
class Answering:
    """A connector answering every post with ``status`` and ``body``; it records how many it got."""

    status: int = 200
    body: bytes = b""
    posts: int = 0
    server: TestServer = field(init=False)

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self.server = TestServer(app, host="127.0.0.1")

    async def _answer(self, request: web.Request) -> web.Response:
        await request.read()
        self.posts += 1
        return web.Response(status=self.status, body=self.body, content_type="application/json")

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


@pytest.fixture
async def answering() -> AsyncIterator[Answering]:
    found = Answering()
    await found.server.start_server()
    yield found
    await found.server.close()


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (400, "teams_reply_refused"),
        (413, "teams_reply_refused"),
        (429, "teams_reply_failed"),
        (500, "teams_reply_failed"),
        (503, "teams_reply_failed"),
    ],
)
async def test_a_connector_refusing_or_failing_a_reply_is_one_line_naming_its_status(
    teams: TeamsApp, answering: Answering, loaded: Signpost, status: int, event: str
) -> None:
    """Not sent again (the person may ask again); the generic apology is tried once, and its own
    failure (the same connector) adds no line."""
    answering.status, answering.body = status, f'{{"error": {{"message": "{ECHO}"}}}}'.encode()
    with logged_at("info") as log:
        response = await teams.post(message(PRIYA, AMY, answering.url))
    assert response.status == 202
    warnings = [line for line in ours(log.lines()) if line["level"] != "info"]
    assert not [line for line in log.lines() if line["level"] in ("error", "critical")]
    assert [(w["event"], w["status"]) for w in warnings] == [(event, status)], log.text
    assert "Traceback" not in log.text and '"exception"' not in log.text
    assert "Amy" not in log.written and "482913" not in log.written
    assert answering.posts == 2  # the answer, then the apology
    answered, unshown = await teams_events(loaded)
    assert (answered.action, unshown.action) == ("lookup", "answer_not_shown")
    assert unshown.detail.endswith(f": teams:http_{status}")


@pytest.mark.parametrize(
    "body", [b"{" + ECHO.encode(), b'{"id": 5}', b"[1, 2]", b"\xff\xfe{}"], ids=["not json", "id", "list", "utf-16"]
)
async def test_a_2xx_the_sdk_cannot_read_is_one_line_and_no_apology(
    teams: TeamsApp, answering: Answering, loaded: Signpost, body: bytes
) -> None:
    """The connector took the answer (2xx) but its body is not what its API returns: most likely
    shown, so no apology follows; on record as not confirmed (``unreadable_answer``)."""
    answering.body = body
    with logged_at("info") as log:
        response = await teams.post(message(PRIYA, AMY, answering.url))
    assert response.status == 202
    warnings = [line for line in ours(log.lines()) if line["level"] != "info"]
    assert not [line for line in log.lines() if line["level"] in ("error", "critical")]
    assert [(w["event"], w["status"], w["reason"]) for w in warnings] == [
        ("teams_reply_failed", 200, "unreadable_answer")
    ], log.text
    assert "Traceback" not in log.text and "Amy" not in log.written
    assert answering.posts == 1
    _answered, unshown = await teams_events(loaded)
    assert unshown.detail.endswith(": teams:unreadable_answer")
