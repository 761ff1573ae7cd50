"""The enrolment page, served by a real aiohttp server on loopback, fetched over HTTP and by Chromium."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import pyotp
import pytest
import zxingcpp
from aiohttp import web
from PIL import Image
from sqlalchemy import select

from bot import enrol_page
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.stepup import totp
from handlers.vocabulary import Outcome, Platform, Principal, Reply
from store.lifecycle import decommission
from store.people import credentials, practitioners
from store.register.feeds import Feed, import_feeds
from store.tables.audit import AuditEvent
from tests import chromium
from tests.factories import AMY, PRACTITIONERS, say, standard_feeds
from tests.spread import either_store, spread

SLACK = Principal(Platform.SLACK, "T1", "U1")
# The demo's practitioner ids look like this; with one, the otpauth URI needs a version-6 QR code
# (41 modules), the size that the first page cut off.
DEMO_ID = "NS-P0005"
DEMO = Principal(Platform.TEAMS, "T1", "U5")
DEMO_ROW = f"{DEMO_ID},Nia,Shaw,Social worker,Northshire Children's Services,Northshire,0161 496 0099,nia@x.example,"
SAFE_LINKS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
SHOWN = "secret shown"


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    feeds = [Feed("practitioners.csv", f"{PRACTITIONERS}{DEMO_ROW}practitioner\n"), *standard_feeds()[1:]]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now())
    async with signpost.ctx.db.write() as session:
        await practitioners.link_identity(session, SLACK, "P001", signpost.ctx.clock.now())
        await practitioners.link_identity(session, DEMO, DEMO_ID, signpost.ctx.clock.now())
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


async def enrol_link(app: Signpost, server: str, who: Principal = SLACK) -> tuple[str, Reply]:
    """Send enrol from chat; the link's path on the test server, and the reply."""
    reply = await say(app, who, "enrol")
    assert reply.outcome is Outcome.DONE and len(reply.links) == 1
    return server + urlsplit(reply.links[0].url).path, reply


async def fetch(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    """GET, as opening the link does (and as a link scanner does)."""
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def press(url: str) -> tuple[int, str, dict[str, str]]:
    """POST to the link, as the page's "Show my QR code" button does."""
    async with aiohttp.ClientSession() as http, http.post(url) as response:
        return response.status, await response.text(), dict(response.headers)


def secret_in(page: str) -> str:
    start = page.index('<code id="secret">') + len('<code id="secret">')
    return page[start : page.index("</code>", start)].replace(" ", "")


async def shown_events(app: Signpost) -> list[tuple[str, str]]:
    async with app.ctx.db.read() as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.action == "enrol_page"))).scalars().all()
    return [(r.actor_id or "", r.detail) for r in rows]


async def expected_uri(app: Signpost, practitioner_id: str) -> str:
    """The otpauth URI for the practitioner's pending seed, straight from the store."""
    async with app.ctx.db.read() as session:
        seed = await credentials.load_seed(session, app.ctx.keys, practitioner_id)
    assert seed is not None
    return totp.provisioning_uri(seed, practitioner_id)


def is_button_page(page: str) -> bool:
    """The page a GET gets: a form that POSTs, and neither QR code nor secret."""
    shown = ("<svg", 'id="secret"', "otpauth")
    return '<form method="post">' in page and "Show my QR code" in page and not any(s in page for s in shown)


async def test_opening_the_link_spends_nothing_and_the_button_shows_the_qr_code_once(
    app: Signpost, server: str
) -> None:
    """GET shows a button (twice over); its POST shows the QR and the secret, whose app then confirms
    enrolment; a second POST and any later GET say the link is used."""
    url, reply = await enrol_link(app, server)
    for _ in range(2):
        status, page, headers = await fetch(url)
        assert status == 200 and is_button_page(page)
        assert headers["Cache-Control"] == "no-store" and "form-action 'self'" in headers["Content-Security-Policy"]
    status, page, headers = await press(url)
    assert status == 200 and "<svg" in page and 'class="qr"' in page and "<path" in page
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    authenticator = pyotp.TOTP(secret_in(page))
    assert reply.challenge is not None
    code = authenticator.at(app.ctx.clock.now())
    confirmed = await say(app, SLACK, "code", code=code, challenge_id=reply.challenge.challenge_id)
    assert confirmed.outcome is Outcome.DONE and "set up" in confirmed.text
    assert (await say(app, SLACK, AMY)).outcome is Outcome.ANSWERED

    status, page, _ = await press(url)
    assert status == 410 and "<svg" not in page and "expired or has already been used" in page
    status, page, _ = await fetch(url)
    assert status == 410 and "<form" not in page and "expired or has already been used" in page


async def test_a_link_scanner_fetching_the_link_first_spends_nothing(app: Signpost, server: str) -> None:
    """Safe Links or Proofpoint fetching the link (a browser-like agent, or none) before the person
    sees only the button page, and nothing is shown or audited; the person's press then works."""
    url, _ = await enrol_link(app, server)
    for agent in (SAFE_LINKS, "python-requests/2.32", ""):
        status, page, _ = await fetch(url, **{"User-Agent": agent})
        assert status == 200 and is_button_page(page), agent
    assert await shown_events(app) == []
    status, page, _ = await press(url)
    assert status == 200 and "<svg" in page and await shown_events(app) == [("P001", SHOWN)]


async def test_link_is_dead_after_ten_minutes(app: Signpost, server: str, clock: FakeClock) -> None:
    """Ten minutes and a second after enrol, neither the page nor its button shows anything."""
    url, _ = await enrol_link(app, server)
    clock.advance(minutes=10, seconds=1)
    for status, page, _ in (await fetch(url), await press(url)):
        assert status == 410 and "<svg" not in page and "<form" not in page


async def test_a_link_opened_after_switch_off_shows_no_secret(app: Signpost, server: str, clock: FakeClock) -> None:
    """Sent before Signpost was switched off, opened after: from then on nobody can enrol (chat
    refuses enrol and every code), so the link shows nothing and nothing is audited as shown."""
    url, _ = await enrol_link(app, server)
    clock.advance(minutes=1)  # the link still alive
    async with app.ctx.db.write() as session:
        await decommission.schedule(session, clock.now().date(), None, "AD01", clock.now(), at_once=True)
    status, page, _ = await press(url)
    assert status == 410 and "<svg" not in page and 'id="secret"' not in page
    assert await shown_events(app) == []


async def test_a_link_previewer_neither_spends_the_link_nor_sees_the_secret(app: Signpost, server: str) -> None:
    """Slack's unfurler fetching the link gets a neutral page, a HEAD probe is refused, and the
    person's browser then gets the button, which shows the QR."""
    url, _ = await enrol_link(app, server)
    status, page, _ = await fetch(url, **{"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"})
    assert status == 200 and "<svg" not in page and "secret" not in page and "<form" not in page
    async with aiohttp.ClientSession() as http, http.head(url) as response:
        assert response.status == 405  # a HEAD probe cannot spend it either
    status, page, _ = await fetch(url)
    assert status == 200 and is_button_page(page)
    status, page, _ = await press(url)
    assert status == 200 and "<svg" in page


async def test_unknown_or_malformed_tokens_show_the_same_dead_link_page(server: str) -> None:
    """Guessing reveals nothing: a wrong token and junk get the same answer, opened or pressed."""
    for path in ("/enrol/" + "A" * 43, "/enrol/not-a-token!"):
        for status, page, _ in (await fetch(server + path), await press(server + path)):
            assert status == 410 and "expired or has already been used" in page and "<form" not in page


async def test_showing_the_secret_is_audited_without_it(app: Signpost, server: str) -> None:
    """The moment the seed leaves Signpost (the press, not the opening) is an audit event: who and
    when; no token or seed."""
    url, _ = await enrol_link(app, server)
    await fetch(url)
    status, page, _ = await press(url)
    assert status == 200
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "enrol_page")
        rows = (await session.execute(query)).scalars().all()
    assert [(r.actor_id, r.detail, r.terms) for r in rows] == [("P001", SHOWN, None)]
    token = url.rsplit("/", 1)[1]
    assert token not in rows[0].detail and secret_in(page) not in rows[0].detail


@either_store  # the page's markup: one store shows it (tests/spread.py)
async def test_the_shown_page_has_a_scalable_labelled_qr_code_and_a_link_to_the_authenticator_app(
    app: Signpost, server: str
) -> None:
    """The QR SVG scales as a whole (a viewBox, no fixed size) and has an accessible name; a phone
    user can tap an otpauth:// link carrying the same issuer, account and secret as the text."""
    url, _ = await enrol_link(app, server, DEMO)
    _, page, _ = await press(url)
    [svg] = re.findall(r"<svg [^>]*>", page)
    assert re.search(r'viewBox="0 0 (\d+) \1"', svg) and " width=" not in svg and " height=" not in svg
    assert 'role="img"' in svg and 'aria-label="QR code to add Signpost to your authenticator app"' in svg
    assert "<title>QR code to add Signpost" in page
    [href] = re.findall(r'<a class="app" id="otpauth" href="([^"]+)">Open in authenticator app</a>', page)
    uri = href.replace("&amp;", "&")
    assert uri == await expected_uri(app, DEMO_ID)
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    assert parts.scheme == "otpauth" and parts.netloc == "totp" and unquote(parts.path) == f"/Signpost:{DEMO_ID}"
    assert query["issuer"] == ["Signpost"] and query["secret"] == [secret_in(page)]
    assert re.search(r'<code id="secret">([A-Z2-7]{4} )+[A-Z2-7]{1,4}</code>', page)  # grouped for typing


# -- headless Chromium ------------------------------------------------------------------------------


def decoded(png: bytes) -> tuple[str, int, tuple[int, int, int, int]]:
    """The one QR code in a screenshot: its text, its version and its box (left, top, right, bottom)."""
    only_qr = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=only_qr)
    assert len(found) == 1, f"{len(found)} QR codes decoded from the screenshot"
    corners = found[0].position
    xs = [corners.top_left.x, corners.top_right.x, corners.bottom_right.x, corners.bottom_left.x]
    ys = [corners.top_left.y, corners.top_right.y, corners.bottom_right.y, corners.bottom_left.y]
    extra: dict[str, object] = dict(found[0].extra)  # type: ignore[call-overload]
    return found[0].text, int(str(extra["Version"])), (min(xs), min(ys), max(xs), max(ys))


def quiet_zone_is_light(png: bytes, box: tuple[int, int, int, int], modules: int) -> bool:
    """The 4-module band around the code is light (scanners need it), within the screenshot."""
    image = Image.open(io.BytesIO(png)).convert("L")
    left, top, right, bottom = box
    zone = round(4 * (right - left + 1) / modules)
    outer = (left - zone, top - zone, right + zone, bottom + zone)
    if outer[0] < 0 or outer[1] < 0 or outer[2] >= image.width or outer[3] >= image.height:
        return False
    margin = 2  # anti-aliased edge pixels
    bands = [
        (outer[0], outer[1], outer[2], top - margin),
        (outer[0], bottom + margin, outer[2], outer[3]),
        (outer[0], outer[1], left - margin, outer[3]),
        (right + margin, outer[1], outer[2], outer[3]),
    ]
    return all(_darkest(image.crop(band)) > 200 for band in bands)


def _darkest(image: Image.Image) -> int:
    low = image.getextrema()[0]
    assert isinstance(low, int)  # a greyscale image: (low, high)
    return low


# What Chromium draws, at each width: one store shows it, each width on one store (tests/spread.py).
@spread("width, height, mobile", {"desktop": (1000, 800, False), "phone": (390, 844, True)})
async def test_the_qr_code_in_a_chromium_screenshot_decodes_to_the_practitioners_otpauth_uri(
    app: Signpost, server: str, width: int, height: int, mobile: bool
) -> None:
    """In real headless Chromium, at desktop and phone width: opening the link shows the button and
    no code; clicking it shows a QR code that a decoder reads, from the screenshot, as the otpauth
    URI of this practitioner's pending secret (issuer Signpost, account, secret), with its quiet zone."""
    chromium.chromium_or_skip()
    url, _ = await enrol_link(app, server, DEMO)
    async with chromium.tab(width, height, mobile=mobile) as tab:
        await tab.open(url)
        assert is_button_page(await tab.html())
        await tab.click("#reveal")
        dom = await tab.html()
        png = await tab.screenshot()
        page_width = await tab.evaluate("document.documentElement.scrollWidth")
    assert 'id="secret"' in dom and page_width <= width  # nothing pushed off the side of a phone
    text, version, box = decoded(png)
    assert text == await expected_uri(app, DEMO_ID)
    assert f"Signpost:{DEMO_ID}?" in text and "issuer=Signpost" in text and f"secret={secret_in(dom)}&" in text
    assert version >= 6 and quiet_zone_is_light(png, box, 17 + 4 * version), box
    assert await shown_events(app) == [(DEMO_ID, SHOWN)]


async def test_a_link_pressed_again_is_audited_under_its_practitioner_without_the_token(
    app: Signpost, server: str, clock: FakeClock
) -> None:
    """A second press of a used link (someone else opened the practitioner's link first, or they
    did and it was stolen) was a 410 and one log line, and nothing in the audit that could flag the
    theft: now it is an ``enrol_page`` event, refused, under the practitioner the link was for; so
    is a press of an expired one. An unknown token names no one: a log line only. The token is in
    neither the audit nor the log."""
    from tests.bot.log_stream import logged_at

    used, _ = await enrol_link(app, server)
    assert (await press(used))[0] == 200
    expired, _ = await enrol_link(app, server, DEMO)  # another's: enrolling again removes the links before
    with logged_at("info") as log:
        status, page, _ = await press(used)
        assert status == 410 and "expired or has already been used" in page
        clock.advance(minutes=10, seconds=1)
        assert (await press(expired))[0] == 410
        assert (await press(server + "/enrol/" + "A" * 43))[0] == 410
    assert [line["event"] for line in log.lines()] == ["enrol_page_refused"] * 3
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "enrol_page").order_by(AuditEvent.seq)
        rows = (await session.execute(query)).scalars().all()
    assert [(r.actor_id, r.outcome, r.detail) for r in rows] == [
        ("P001", "done", SHOWN),
        ("P001", "refused", "link already used"),
        (DEMO_ID, "refused", "link expired"),
    ]
    for token in (used.rsplit("/", 1)[1], expired.rsplit("/", 1)[1]):
        assert token not in log.written and all(token not in (r.detail or "") for r in rows)


@pytest.mark.parametrize("dead", ["used", "expired"])
async def test_a_dead_link_pressed_many_times_is_audited_once(
    app: Signpost, server: str, clock: FakeClock, dead: str
) -> None:
    """Anyone holding a spent or expired link could add a row to the permanent audit per press:
    only the first press after it died is audited (its hash is removed in the same transaction);
    later presses are an unknown token, a log line each, and the audit is not a flood target."""
    from tests.bot.log_stream import logged_at

    link, _ = await enrol_link(app, server)
    if dead == "used":
        assert (await press(link))[0] == 200
    else:
        clock.advance(minutes=10, seconds=1)
    with logged_at("info") as log:
        async with aiohttp.ClientSession() as http:
            for _ in range(20):
                async with http.post(link) as response:
                    assert response.status == 410
    assert [line["event"] for line in log.lines()] == ["enrol_page_refused"] * 20
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "enrol_page", AuditEvent.outcome == "refused")
        rows = (await session.execute(query)).scalars().all()
    why = "link already used" if dead == "used" else "link expired"
    assert [(r.actor_id, r.detail) for r in rows] == [("P001", why)]
    token = link.rsplit("/", 1)[1]
    assert token not in log.written and all(token not in (r.detail or "") for r in rows)


async def test_concurrent_presses_of_a_live_link_show_it_once_and_audit_no_more_than_one_refusal(
    app: Signpost, server: str
) -> None:
    link, _ = await enrol_link(app, server)
    got = await asyncio.gather(*(press(link) for _ in range(8)))
    assert sorted(status for status, _, _ in got) == [200] + [410] * 7
    async with app.ctx.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == "enrol_page").order_by(AuditEvent.seq)
        rows = (await session.execute(query)).scalars().all()
    assert [(r.outcome, r.detail) for r in rows] == [("done", SHOWN), ("refused", "link already used")]
