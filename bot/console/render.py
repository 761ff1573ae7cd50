"""Plain-text rendering of a Reply, for the console (and any text-only surface)."""

from __future__ import annotations

import unicodedata

from handlers.vocabulary import LEFT_POST, Reply, Signpost


def plain(text: str) -> str:
    """Text as typed, made inert for a terminal: control characters (ESC starts colour, cursor and
    OSC 8 hyperlink sequences) and bidirectional overrides are shown as escapes, not obeyed."""
    return "".join(
        ch
        if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and ch not in BIDI_CONTROLS)
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def signpost_lines(post: Signpost) -> list[str]:
    status = "current" if post.current else f"ended {post.ended:%d/%m/%Y}"
    lead = "  ★ lead professional" if post.lead_professional else ""
    return [
        f"  {post.practitioner_name} — {post.role}, {post.organisation}{lead}",
        f"    {post.service}: since {post.started:%d/%m/%Y}, {status}",
        f"    {post.phone} · {post.email}" if post.contact else f"    {LEFT_POST}",
    ]


def render(reply: Reply) -> str:
    challenge = reply.challenge
    lines = [reply.text]  # after a refused code, the error itself (Challenge.error)
    for post in reply.signposts:
        lines.extend(signpost_lines(post))
    lines.extend(reply.lines)
    lines.extend(f"{link.label}: {link.url}" for link in reply.links)
    for button in reply.buttons:
        hint = f" {button.input.placeholder}" if button.input else ""
        lines.append(f"  [{button.label}] type: {button.command}{hint}")
    if challenge is not None:
        lines.append(challenge.prompt)
    return plain("\n".join(lines))
