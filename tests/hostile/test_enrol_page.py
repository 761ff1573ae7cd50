"""Hostile requests to the enrolment page: junk tokens by GET, POST, HEAD and other methods.

Nothing is revealed (no otpauth URI, no secret), nothing audited, never a 5xx or a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from bot import enrol_page
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from tests.factories import load_standard
from tests.hostile import strategies as hs
from tests.hostile.observe import ACCEPTED_WRONGLY, Check, LogTap, shown
from tests.hostile.slack_world import last_seq

tokens = st.one_of(
    st.text(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), min_size=1, max_size=64
    ),
    st.text(hs.ALPHABET, min_size=1, max_size=40),
    st.sampled_from(hs.SNIPPETS),
    st.just("A" * 5000),
)
methods = st.sampled_from(("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"))
agents = st.sampled_from(("", "Mozilla/5.0", "Slackbot-LinkExpanding 1.0", "SkypeUriPreview Preview/0.5", "ü\u202e"))


@pytest.fixture
async def page(signpost: Signpost) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    await load_standard(signpost)
    client = TestClient(TestServer(create_app(signpost, load_settings(), [enrol_page.add_routes]), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@given(method=methods, token=tokens, agent=agents, body=st.binary(max_size=64))
async def test_junk_enrolment_tokens_reveal_nothing_and_never_fail(
    page: TestClient,  # type: ignore[type-arg]
    signpost: Signpost,
    logs: LogTap,
    method: str,
    token: str,
    agent: str,
    body: bytes,
) -> None:
    check = Check(f"enrol-page-{method.lower()}", shown((method, token, agent)))
    seq = await last_seq(signpost)
    logs.new()
    headers = {"User-Agent": agent.encode("utf-8").decode("latin-1")} if agent else {}
    response = await page.request(method, "/enrol/" + quote(token, safe=""), data=body or None, headers=headers)
    text = await response.text(errors="replace")
    allowed = {200, *range(400, 500)} if method == "GET" else range(400, 500)
    check.status(response.status, allowed, f"{method} /enrol/<junk>")
    check.expect("otpauth" not in text and "secret" not in text.lower(), ACCEPTED_WRONGLY, "an enrolment secret shown")
    check.expect(await last_seq(signpost) == seq, ACCEPTED_WRONGLY, "audited (a secret shown?)")
    check.logs(logs.new())
    check.settle()
