"""Plain-text rendering of a Reply, for the console (and any text-only surface)."""

from __future__ import annotations

from handlers.vocabulary import Reply, Signpost


def signpost_lines(post: Signpost) -> list[str]:
    status = "current" if post.current else f"ended {post.ended:%d/%m/%Y}"
    lead = "  ★ lead professional" if post.lead_professional else ""
    return [
        f"  {post.practitioner_name} — {post.role}, {post.organisation}{lead}",
        f"    {post.service}: since {post.started:%d/%m/%Y}, {status}",
        f"    {post.phone} · {post.email}",
    ]


def render(reply: Reply) -> str:
    challenge = reply.challenge
    # A refused code: its error says what went wrong, so the generic "Code not accepted." goes.
    lines = [challenge.error if challenge is not None and challenge.error else reply.text]
    for post in reply.signposts:
        lines.extend(signpost_lines(post))
    lines.extend(reply.lines)
    for button in reply.buttons:
        hint = f" <{button.input.name}>" if button.input else ""
        lines.append(f"  [{button.label}] type: {button.command}{hint}")
    if challenge is not None:
        lines.append(challenge.prompt)
    return "\n".join(lines)
