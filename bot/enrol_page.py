"""The enrolment page (``/enrol/<token>``) and the QR renderings shared with the terminal.

A chat platform only ever carries the one-time link; the seed is shown here, by Signpost's own
server, once. Opening the link (GET) spends nothing: corporate link scanners (Safe Links,
Proofpoint and the like) fetch links before the person does. The page offers a button; pressing
it POSTs to the same address, which spends the token and shows the QR code and secret. The
unguessable token in the path is the capability, so the form needs no CSRF token of its own:
whoever can send that POST already holds the link. The credential stays pending until the
practitioner answers the code prompt in chat (or console) with a first good code.
"""

from __future__ import annotations

import html
import io
import re

import pyotp
import segno
import structlog
from aiohttp import web

from bot.app import Signpost
from bot.config import Settings
from bot.web import SIGNPOST_KEY
from handlers.stepup import enrolment, totp

log = structlog.get_logger("signpost.enrol_page")

TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")  # the whole of it (fullmatch: "$" would take a final newline)
# Link previewers fetch links posted in chat. They must not spend the token (nor see the seed).
PREVIEWERS = (
    "slackbot",
    "skypeuripreview",
    "msteams",
    "teamsbot",
    "discordbot",
    "whatsapp",
    "telegrambot",
    "facebookexternalhit",
    "twitterbot",
    "linkedinbot",
    "googlebot",
    "bingbot",
    "bingpreview",
)
HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
# The SVG carries a viewBox and no size, so CSS scales the whole code, quiet zone included.
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "svg.qr{display:block;width:100%;max-width:18rem;height:auto;aspect-ratio:1/1;margin:1rem 0}"
    "code{font-size:1.2rem;letter-spacing:.05em;background:#f3f3f3;padding:.2rem .4rem}"
    "button,a.app{display:inline-block;font:inherit;font-weight:600;padding:.6rem 1.2rem;border-radius:.3rem;"
    "border:2px solid #1d4ed8;background:#1d4ed8;color:#fff;text-decoration:none;cursor:pointer}"
    "a.app{background:#fff;color:#1d4ed8}"
)
GONE = (
    "This link has expired or has already been used. Enrolment links work once, for 10 minutes. "
    "Send <b>enrol</b> to Signpost for a new one."
)
PREVIEW = "Open this link in your own browser to set up your authenticator app for Signpost."
READY = (
    "<p>Signpost will show your QR code and secret once, on this page. Have your authenticator app "
    "ready (for example Microsoft Authenticator or Google Authenticator) and make sure no one else "
    "can see your screen.</p>"
    '<form method="post"><button type="submit" id="reveal">Show my QR code</button></form>'
    "<p>The link works once, for 10 minutes.</p>"
)
QR_LABEL = "QR code to add Signpost to your authenticator app"


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code that scales as a whole: a viewBox and no fixed size,
    a 4-module quiet zone painted light, and an accessible name for screen readers."""
    qr = segno.make(uri, error="m")
    svg = str(qr.svg_inline(border=4, dark="#000", light="#fff", svgclass="qr", omitsize=True, title=QR_LABEL))
    return svg.replace("<svg ", f'<svg role="img" aria-label="{QR_LABEL}" ', 1)


# Explicit black and bright white (foreground, background), so that the code reads the same on a
# light and on a dark terminal theme; the default colours would invert it on one of them.
_DARK, _LIGHT = ("30", "40"), ("97", "107")


def qr_terminal(uri: str, *, colour: bool = False) -> str:
    """The QR code in Unicode half blocks, two rows per line.

    ``colour`` (a terminal): black on white in ANSI colours, readable on light and dark themes alike.
    Without colour (a pipe, a file): light modules drawn as blocks, as segno's compact output.
    """
    if not colour:
        out = io.StringIO()
        segno.make(uri, error="m").terminal(out=out, compact=True, border=2)
        return out.getvalue().rstrip("\n")
    rows = [list(row) for row in segno.make(uri, error="m").matrix_iter(border=2)]
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        cells = []
        for up, down in zip(top, bottom, strict=True):
            fg, bg = (_DARK if up else _LIGHT)[0], (_DARK if down else _LIGHT)[1]
            cells.append(f"\033[{fg};{bg}m▀")
        lines.append("".join(cells) + "\033[0m")
    return "\n".join(lines)


def secret_of(uri: str) -> str:
    parsed = pyotp.parse_uri(uri)
    return str(parsed.secret)


def terminal_enrolment(uri: str, *, colour: bool = False) -> str:
    """What a terminal shows to enrol: the QR code and the secret to type by hand."""
    return "\n".join(
        [
            qr_terminal(uri, colour=colour),
            f"Secret (if you can't scan): {totp.grouped(secret_of(uri))}",
            "Type: time-based, 6 digits, every 30 seconds.",
        ]
    )


def _page(title: str, body: str, status: int) -> web.Response:
    doc = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=doc, status=status, content_type="text/html", headers=HEADERS)


def enrolment_body(uri: str, practitioner_id: str) -> str:
    secret = html.escape(totp.grouped(secret_of(uri)))
    return (
        "<ol><li>Open your authenticator app (for example Microsoft Authenticator or Google "
        "Authenticator) and add an account by scanning this QR code.</li></ol>"
        f"{qr_svg(uri)}"
        f'<p>Authenticator app on this phone? <a class="app" id="otpauth" href="{html.escape(uri)}">'
        "Open in authenticator app</a></p>"
        f'<p>Can\'t scan? Add it by hand with this secret: <code id="secret">{secret}</code> '
        "(time-based, 6 digits).</p>"
        f"<p>Account: Signpost ({html.escape(practitioner_id)})</p>"
        '<ol start="2"><li>Go back to Signpost and enter the 6-digit code the app shows.</li></ol>'
        "<p>This page works once. Don't bookmark, share or screenshot it.</p>"
    )


def _gone(reason: str) -> web.Response:
    """The dead-link page, the same whatever the reason; the log line says which (a fixed reason,
    never the token: the token is the capability)."""
    log.warning("enrol_page_refused", status=410, reason=reason)
    return _page("Link not valid", f"<p>{GONE}</p>", 410)


async def enrol_page(request: web.Request) -> web.Response:
    """GET: the page with the button that shows the QR code. It spends nothing, whoever asks."""
    agent = request.headers.get("User-Agent", "").lower()
    if any(bot in agent for bot in PREVIEWERS):
        return _page("Signpost enrolment", f"<p>{PREVIEW}</p>", 200)
    token = request.match_info["token"]
    if not TOKEN.fullmatch(token):
        return _gone("malformed_token")
    app = request.app[SIGNPOST_KEY]
    live = await enrolment.link_is_live(app.ctx, token)
    return _page("Set up your authenticator app", READY, 200) if live else _gone("link_not_live")


async def reveal_page(request: web.Request) -> web.Response:
    """POST (the button): spend the token and show the QR code and secret, once."""
    token = request.match_info["token"]
    if not TOKEN.fullmatch(token):
        return _gone("malformed_token")
    app = request.app[SIGNPOST_KEY]
    revealed = await enrolment.reveal(app.ctx, token)
    if isinstance(revealed, str):  # why it is dead; a used or expired link's press is audited
        return _gone(revealed)
    pid, seed = revealed
    return _page("Set up your authenticator app", enrolment_body(totp.provisioning_uri(seed, pid), pid), 200)


def add_routes(app: web.Application, signpost: Signpost, settings: Settings) -> None:
    """RouteAdder: the enrolment page. HEAD is refused; only the page's own POST spends a token."""
    app.router.add_get("/enrol/{token}", enrol_page, allow_head=False)
    app.router.add_post("/enrol/{token}", reveal_page)
