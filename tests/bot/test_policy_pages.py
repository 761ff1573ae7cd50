"""/privacy and /terms: the pages a Teams app package links to, served on the one aiohttp app, no login."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app


@pytest.fixture
async def server(signpost: Signpost) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(signpost, load_settings()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_privacy_notice_says_what_is_held_who_sees_it_how_long_and_how_to_ask_who_looked(server: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(server + "/privacy") as page:
        assert page.status == 200 and page.content_type == "text/html"
        text = await page.text()
    for heading in ("What Signpost holds", "Who sees it", "How long it is kept", "How to ask who looked"):
        assert f"<h2>{heading}</h2>" in text
    assert "18th birthday" in text and "24th birthday" in text and "subject access request" in text
    assert "no case data" in text.lower()


async def test_terms_of_use_are_served_without_login(server: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(server + "/terms", allow_redirects=False) as page:
        assert page.status == 200
        text = await page.text()
    assert "<h1>Signpost terms of use</h1>" in text and 'href="/privacy"' in text
