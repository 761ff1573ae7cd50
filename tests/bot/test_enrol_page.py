"""The enrolment page, served by a real aiohttp server on loopback, fetched over HTTP and by Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pyotp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot import enrol_page
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome, Platform, Principal, Reply
from store.people import practitioners
from store.tables.audit import AuditEvent
from tests.factories import AMY, load_standard, say

SLACK = Principal(Platform.SLACK, "T1", "U1")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_standard(signpost)
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, SLACK, "P001", signpost.ctx.clock.now())
    return signpost


@pytest.fixture
async def server(app: Signpost) -> AsyncIterator[str]:
    """Signpost's one aiohttp application with the enrolment page, on a free loopback port."""
    runner = web.AppRunner(create_app(app, load_settings(), [enrol_page.add_routes]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def enrol_link(app: Signpost, server: str) -> tuple[str, Reply]:
    """Send enrol from Slack; the link's path on the test server, and the reply."""
    reply = await say(app, SLACK, "enrol")
    assert reply.outcome is Outcome.DONE and len(reply.lines) == 1
    return server + urlsplit(reply.lines[0]).path, reply


async def fetch(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


def secret_in(page: str) -> str:
    start = page.index('<code id="secret">') + len('<code id="secret">')
    return page[start : page.index("</code>", start)].replace(" ", "")


async def test_page_shows_the_qr_code_once_and_its_secret_confirms_enrolment(app: Signpost, server: str) -> None:
    """The page carries an inline SVG QR and the secret; the app built from it confirms; the link is dead."""
    url, reply = await enrol_link(app, server)
    status, page, headers = await fetch(url)
    assert status == 200 and "<svg" in page and 'class="qr"' in page and "<path" in page
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    authenticator = pyotp.TOTP(secret_in(page))
    assert reply.challenge is not None
    code = authenticator.at(app.ctx.clock.now())
    confirmed = await say(app, SLACK, "code", code=code, challenge_id=reply.challenge.challenge_id)
    assert confirmed.outcome is Outcome.DONE and "set up" in confirmed.text
    assert (await say(app, SLACK, AMY)).outcome is Outcome.ANSWERED

    status, page, _ = await fetch(url)
    assert status == 410 and "<svg" not in page and "expired or has already been used" in page


async def test_link_is_dead_after_ten_minutes(app: Signpost, server: str, clock: FakeClock) -> None:
    """Ten minutes and a second after enrol, the link shows nothing."""
    url, _ = await enrol_link(app, server)
    clock.advance(minutes=10, seconds=1)
    status, page, _ = await fetch(url)
    assert status == 410 and "<svg" not in page


async def test_a_link_previewer_neither_spends_the_link_nor_sees_the_secret(app: Signpost, server: str) -> None:
    """Slack's unfurler fetching the link gets a neutral page; the person's browser then gets the QR."""
    url, _ = await enrol_link(app, server)
    status, page, _ = await fetch(url, **{"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"})
    assert status == 200 and "<svg" not in page and "secret" not in page
    async with aiohttp.ClientSession() as http, http.head(url) as response:
        assert response.status == 405  # a HEAD probe cannot spend it either
    status, page, _ = await fetch(url)
    assert status == 200 and "<svg" in page


async def test_unknown_or_malformed_tokens_show_the_same_dead_link_page(server: str) -> None:
    """Guessing reveals nothing: a wrong token and junk get the same answer."""
    for path in ("/enrol/" + "A" * 43, "/enrol/not-a-token!"):
        status, page, _ = await fetch(server + path)
        assert status == 410 and "expired or has already been used" in page


async def test_showing_the_secret_is_audited_without_it(app: Signpost, server: str) -> None:
    """The moment the seed leaves Signpost is an audit event (who and when; no token or seed)."""
    url, _ = await enrol_link(app, server)
    status, page, _ = await fetch(url)
    assert status == 200
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "enrol_page")
        rows = (await session.execute(query)).scalars().all()
    assert [(r.actor_id, r.detail, r.terms) for r in rows] == [("P001", "secret shown", None)]
    token = url.rsplit("/", 1)[1]
    assert token not in rows[0].detail and secret_in(page) not in rows[0].detail


# -- headless Chromium ------------------------------------------------------------------------------


def chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing (tests/prepare.py installs Debian's chromium when run as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    print(f"\n!!! SKIPPING the headless Chromium check: {reason}")
    pytest.skip(reason)


async def chromium(*args: str) -> bytes:
    """Run headless Chromium with a fresh profile and no background traffic; its stdout."""
    profile = tempfile.mkdtemp(prefix="signpost-chromium-")
    try:
        process = await asyncio.create_subprocess_exec(
            str(chromium_or_skip()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=90)
        assert process.returncode == 0, err.decode(errors="replace")[-2000:]
        return out
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dark_pixels(png: bytes) -> int:
    """How many near-black pixels an 8-bit RGB/RGBA PNG holds (a tiny decoder: no image library)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw, stride, previous, dark = zlib.decompress(idat), width * channels, bytearray(width * channels), 0
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        dark += sum(1 for x in range(0, stride, channels) if max(row[x : x + 3]) < 64)
        previous = row
    return dark


def _unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> bytearray:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up, up_left = prev[i], prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
            row[i] = (row[i] + predictor) & 0xFF
    return row


async def test_headless_chromium_renders_the_qr_code(app: Signpost, server: str, tmp_path: Path) -> None:
    """A real browser builds the SVG QR into its DOM, and its screenshot shows the dark QR modules."""
    chromium_or_skip()
    url, _ = await enrol_link(app, server)
    dom = (await chromium("--dump-dom", url)).decode()
    assert "<svg" in dom and 'class="qr"' in dom and "<path" in dom and 'id="secret"' in dom

    url, _ = await enrol_link(app, server)
    shot = tmp_path / "enrol.png"
    await chromium(f"--screenshot={shot}", "--window-size=800,1000", url)
    with_qr = dark_pixels(shot.read_bytes())
    gone = tmp_path / "gone.png"
    await chromium(f"--screenshot={gone}", "--window-size=800,1000", url)  # the same link again: dead
    without_qr = dark_pixels(gone.read_bytes())
    # A 37-module QR code at 6 px a module is roughly 40,000 px², about half of it dark.
    assert with_qr > 15000 > without_qr, (with_qr, without_qr)
