"""Hostile requests to every page anyone can open without signing anything: the health and
readiness checks, /metrics, the audit checkpoint, the privacy notice and terms, the transparency
report and its downloads, and the enrolment page. The app is served as ``signpost run`` serves it
(bot.web.runner), on loopback, and asked with any method, path suffix, query and odd header.

Never a 5xx or a traceback; a refusal (4xx) is exactly one log line, an answer none; nothing the
request carried (a name, a date of birth, a postcode, markup) comes back in the answer or the log;
every HTML answer carries its Content-Security-Policy and ``nosniff``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from bot import enrol_page, transparency_page
from bot import web as signpost_web
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from tests.hostile import strategies as hs
from tests.hostile.observe import LOG_LINES, Check, LogTap, identity_in, shown

PAGES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/audit/checkpoint",
    "/privacy",
    "/terms",
    "/transparency",
    "/transparency.csv",
    "/transparency.json",
    "/enrol/" + "Zq8" + "x" * 40,  # well formed, never issued
)
CHILD = ("Amy Jones", "03/04/2014", "M1 2AB")
methods = st.sampled_from(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"))
suffixes = st.one_of(
    st.just(""),
    st.sampled_from(("/", "/..", "/%2e%2e/metrics", "%0A", "/Amy%20Jones", ".html", "//")),
)
query_values = st.one_of(
    st.sampled_from(("2026-10", " 2026-10 ", "2026-13", "0000-01", "9999-12", "1999-12")),
    st.sampled_from(hs.SNIPPETS),
    st.sampled_from(CHILD),
    st.text(hs.ALPHABET, max_size=30),
)
queries = st.one_of(
    st.just(""),
    st.lists(st.tuples(st.sampled_from(("month", "Month", "x", "")), query_values), max_size=3).map(
        lambda pairs: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    ),
)
odd_headers = st.sampled_from(
    (
        {},
        {"Accept": "text/html;q=0.9, */*;q=0.1"},
        {"Accept-Encoding": "br, gzip, x-Amy-Jones"},
        {"Range": "bytes=0-10"},
        {"If-None-Match": '"Amy Jones"'},
        {"Cookie": "child=Amy Jones 03/04/2014"},
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        {"User-Agent": "Slackbot-LinkExpanding 1.0"},
        {"X-Forwarded-For": "Amy Jones", "Forwarded": "for=M1 2AB"},
    )
)


@pytest.fixture
async def served(signpost: Signpost) -> AsyncIterator[str]:
    """Every public page, behind the runner ``signpost run`` uses; its base URL on loopback."""
    app = create_app(signpost, load_settings(), [enrol_page.add_routes, transparency_page.add_routes])
    runner = signpost_web.runner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def json_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("{")]


@given(method=methods, page=st.sampled_from(PAGES), suffix=suffixes, query=queries, headers=odd_headers)
async def test_any_request_to_a_public_page_is_answered_or_refused_in_one_line_and_echoes_nothing(
    served: str, logs: LogTap, method: str, page: str, suffix: str, query: str, headers: dict[str, str]
) -> None:
    check = Check("public-page", shown((method, page + suffix, query, headers)))
    url = f"{served}{page}{suffix}" + (f"?{query}" if query else "")
    logs.new()
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, URL(url, encoded=True), headers=headers) as response,
    ):
        body = await response.text(errors="replace")
        status, answered = response.status, response.headers
    log = logs.new()
    check.status(status, {*range(200, 300), *range(400, 500)}, f"{method} {page}{suffix}")
    check.logs(log)
    lines = json_lines(log)
    if status >= 400:
        check.expect(len(lines) == 1, LOG_LINES, f"{len(lines)} lines for a {status}: {lines}")
    else:
        check.expect(lines == [], LOG_LINES, f"a {status} logged {lines}")
    leaked = identity_in(body)
    check.expect(leaked is None, "leaks", f"{leaked!r} in the answer")
    check.expect("<script" not in body, "leaks", "markup from the request in the answer")
    if answered.get("Content-Type", "").startswith("text/html"):
        policy = answered.get("Content-Security-Policy", "")
        check.expect("default-src 'none'" in policy and "frame-ancestors 'none'" in policy, "leaks", "no CSP")
        check.expect(answered.get("X-Content-Type-Options") == "nosniff", "leaks", "no nosniff")
    check.settle()
