"""The privacy notice (``/privacy``) and terms of use (``/terms``): public pages, no login.

Teams requires both links in an app package (``signpost teams package`` points them here by
default), and anyone a practitioner looked up, or their family, should be able to read what
Signpost holds, who sees it, how long it is kept and how to ask who looked. Static text: the pages
read nothing from the store.
"""

from __future__ import annotations

from aiohttp import web

from bot.app import Signpost
from bot.config import Settings

HEADERS = {
    "Cache-Control": "public, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:0;color:#0b0c0c;background:#fff;line-height:1.5}"
    "main{max-width:44rem;margin:0 auto;padding:1rem}h1{font-size:1.8rem}h2{font-size:1.3rem;margin-top:2rem}"
    "nav a{margin-right:1rem}"
)
NAV = (
    '<nav><a href="/privacy">Privacy notice</a><a href="/terms">Terms of use</a>'
    '<a href="/transparency">Transparency report</a></nav>'
)

PRIVACY = """
<h1>Signpost privacy notice</h1>
<p>Signpost is a child-safeguarding signposting service. It tells a registered practitioner who else is
working, or has worked, with a child: those practitioners' contact details only. It holds no case data.</p>

<h2>What Signpost holds</h2>
<ul>
<li><strong>About children</strong>: reference number, names and known aliases, date of birth, sex, postcode,
local authority, and whether the record is shielded. These identity fields are encrypted, each child under
their own key, and are used only to find the right child.</li>
<li><strong>About practitioners</strong>: name, role, organisation, local authority, work phone and secure
email, the chat accounts linked to them, their roles, and their authenticator set-up (encrypted).</li>
<li><strong>Involvements</strong>: which practitioner works or worked with which child, for which service,
from and to which dates, and who is the lead professional.</li>
<li><strong>An audit record</strong> of every question asked and every decision made: who asked, when, and
what came back. Search terms are stored sealed, never in plain text.</li>
</ul>
<p>Signpost never holds or shows case notes, assessments, or parents' details.</p>

<h2>Who sees it</h2>
<ul>
<li>A registered practitioner, after a fresh authenticator code, sees the contact signposts for a child they
search for: never the child's other details.</li>
<li>A shielded child's signposts are shown only for a limited time, and only after a duty manager approves a
request that gives its purpose.</li>
<li>A child's lead professional is told (contact details only) when another practitioner finds the child.</li>
<li>Duty managers and administrators see requests, decisions and misuse alerts; administrators produce
subject-access reports. Nobody sees search terms in plain text.</li>
</ul>

<h2>How long it is kept</h2>
<ul>
<li>On a child's 18th birthday their record is archived: ordinary searches no longer return it.</li>
<li>On their 24th birthday it is destroyed: its encryption key is deleted, which makes the data unreadable in
every copy and backup too.</li>
<li>An access grant to a shielded record lasts 24 hours by default and 7 days at most.</li>
</ul>

<h2>How to ask who looked</h2>
<p>A child, or someone acting for them, can make a <strong>subject access request</strong> to the local
authority that runs Signpost. It answers with a report of which organisations and roles looked up the child,
and when. You can also ask for wrong details to be corrected: they come from the feeds your local
authority and its partners supply, and are corrected there.</p>
<p>Signpost's published <a href="/transparency">transparency report</a> counts searches and decisions each
month, with no personal data.</p>
"""

TERMS = """
<h1>Signpost terms of use</h1>
<p>Signpost is for registered practitioners working with children, to find who else is working, or has
worked, with a child so that they can contact them. By using it you agree to the following.</p>
<ul>
<li>Search only for a child you are working with, and only to contact the other practitioners involved.</li>
<li>Your chat account and authenticator app are yours alone: never share them or a code.</li>
<li>Give a true purpose when you ask for access to a shielded record. Duty managers see it.</li>
<li>Every search and decision is recorded, and unusual use is flagged to your duty manager at once.</li>
<li>Signpost shows contact details only. Do not copy them anywhere other than your own case records.</li>
<li>If you lose your phone or think someone else used your account, tell your duty manager straight away.</li>
</ul>
<p>How Signpost uses information is described in the <a href="/privacy">privacy notice</a>.</p>
"""


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en-GB"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head>"
        f"<body><main>{NAV}{body}</main></body></html>"
    )


async def privacy(request: web.Request) -> web.Response:
    return web.Response(text=page("Signpost privacy notice", PRIVACY), content_type="text/html", headers=HEADERS)


async def terms(request: web.Request) -> web.Response:
    return web.Response(text=page("Signpost terms of use", TERMS), content_type="text/html", headers=HEADERS)


def add_routes(app: web.Application, signpost: Signpost, settings: Settings) -> None:
    """RouteAdder: the privacy notice and terms of use, no login."""
    app.router.add_get("/privacy", privacy)
    app.router.add_get("/terms", terms)
