"""Refusals by the web pages are one log line each, with a fixed reason and never what was sent
(a token is the capability; a query may be anything): the real app on loopback, the real log path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import enrol_page, transparency_page
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from tests.bot.log_stream import logged_at

TOKEN = "Zq8" + "x" * 40  # well formed, never issued


@pytest.fixture
async def pages(signpost: Signpost) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(signpost, load_settings(), [enrol_page.add_routes, transparency_page.add_routes])
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize(
    ("method", "path", "status", "event", "reason"),
    [
        ("GET", f"/enrol/{TOKEN}", 410, "enrol_page_refused", "link_not_live"),
        ("POST", f"/enrol/{TOKEN}", 410, "enrol_page_refused", "link_not_live"),
        ("GET", "/enrol/junk!Zq8secret", 410, "enrol_page_refused", "malformed_token"),
        ("POST", "/enrol/junk!Zq8secret", 410, "enrol_page_refused", "malformed_token"),
        # A token and a newline: ``$`` matches before a final newline, so it was taken as well formed.
        ("GET", f"/enrol/{TOKEN}%0A", 410, "enrol_page_refused", "malformed_token"),
        ("POST", f"/enrol/{TOKEN}%0A", 410, "enrol_page_refused", "malformed_token"),
        ("PUT", f"/enrol/{TOKEN}", 405, "http_request_refused", "method_not_allowed"),
        ("HEAD", f"/enrol/{TOKEN}", 405, "http_request_refused", "method_not_allowed"),
        ("GET", "/transparency?month=9999-99", 400, "transparency_request_refused", "bad_month"),
        ("GET", "/transparency.csv?month=Zq8-Amy", 400, "transparency_request_refused", "bad_month"),
        ("GET", "/nowhere/Zq8secret", 404, "http_request_refused", "no_such_route"),
    ],
)
async def test_a_refused_page_request_is_one_line_with_a_fixed_reason_and_nothing_it_carried(
    pages: TestClient,  # type: ignore[type-arg]
    method: str,
    path: str,
    status: int,
    event: str,
    reason: str,
) -> None:
    with logged_at("debug") as log:
        response = await pages.request(method, path)
    assert response.status == status
    [line] = log.lines()
    assert (line["event"], line["status"], line["reason"], line["level"]) == (event, status, reason, "warning")
    assert "Zq8" not in log.written and "9999" not in log.written


async def test_a_page_that_is_served_writes_no_refusal(pages: TestClient) -> None:  # type: ignore[type-arg]
    """The control case: the transparency page for the default month is not a refusal."""
    with logged_at("info") as log:
        response = await pages.get("/transparency")
    assert response.status == 200
    assert not [e for e in log.events() if e.endswith("_refused")]
