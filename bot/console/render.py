"""Plain-text rendering of a Reply, for the console (and any text-only surface)."""

from __future__ import annotations

import re
import unicodedata

from handlers.vocabulary import LEFT_POST, Button, Reply, Signpost, format_ref


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


_REF_ARGUMENT = re.compile(r"(\S+) ([0-9]{10})")


def typed(button: Button) -> str:
    """What to type for a button: its command, a reference in it grouped as everywhere else
    (``request 999 000 1146``, which the grammar reads as it reads ``request 9990001146``). Only
    here: the command itself is what a Slack or Teams click sends back, and stays as it is."""
    found = _REF_ARGUMENT.fullmatch(button.command)
    return button.command if found is None else f"{found[1]} {format_ref(found[2])}"


def button_line(button: Button) -> str:
    """A button on a text-only surface: its label, and what to type instead of clicking it."""
    hint = f" {button.input.placeholder}" if button.input else ""
    return f"  [{button.label}] type: {typed(button)}{hint}"


def signpost_lines(post: Signpost) -> list[str]:
    lead = "  ★ lead professional" if post.lead_professional else ""
    return [
        f"  {post.practitioner_name} — {post.role}, {post.organisation}{lead}",
        f"    {post.service}: since {post.started:%d/%m/%Y}, {post.status}",
        f"    {' · '.join(post.reached_by)}" if post.contact else f"    {LEFT_POST}",
    ]


def render(reply: Reply) -> str:
    challenge = reply.challenge
    lines = [reply.text]  # after a refused code, the error itself (Challenge.error)
    for post in reply.signposts:
        lines.extend(signpost_lines(post))
    lines.extend(reply.lines)
    lines.extend(f"{link.label}: {link.url}" for link in reply.links)
    lines.extend(button_line(button) for button in reply.buttons)
    if challenge is not None:
        lines.append(challenge.prompt)
    return plain("\n".join(lines))
