"""Block Kit from the platform-neutral Reply: messages, modals and the App Home view.

Only bot/ builds Block Kit. Every piece of text from the store is escaped for mrkdwn, so a name
with ``<`` or ``&`` in a feed cannot turn into a mention or a link.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    PlainTextObject,
)

from handlers.access.requests import parse_id
from handlers.grammar import UsageError
from handlers.vocabulary import LEFT_POST, Button, Challenge, Input, Link, Notice, Reply, Signpost

Block = dict[str, Any]
View = dict[str, Any]

CODE_CALLBACK = "signpost_code"  # the step-up code modal; private_metadata is only the challenge id
INPUT_CALLBACK = "signpost_input"  # a modal collecting a button's input (e.g. the reason for access)
CODE_BLOCK = "code"
CODE_ACTION = "code"
INPUT_BLOCK = "input"
INPUT_ACTION = "value"
ENTER_CODE = "enter_code"  # fallback button that opens the code modal when no modal could be opened
OPEN_LINK = "open_link"  # a link button (the enrolment page): Slack opens the URL, the click is only acked
SLASH = "/signpost"  # how a Slack user types a command (manifest.yml's slash command)

TITLE = "Signpost"
MAX_SECTION = 2900  # Slack allows 3000 characters in a section's text
MAX_LABEL = 75  # a button's text
MAX_VALUE = 2000  # a button's value
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
PLACEHOLDER_TEXT = "Checking… this takes a moment."


def escape(text: str) -> str:
    """mrkdwn control characters (Slack's three), so store text is shown, never interpreted."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit), "emoji": False}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def cut_markdown(markdown: str, limit: int = MAX_SECTION) -> str:
    """``_cut`` for escaped text: never inside an entity (``&g`` of a cut ``&gt;``)."""
    if len(markdown) <= limit:
        return markdown
    return _PARTIAL_ENTITY.sub("", markdown[: limit - 1]) + "…"


def escape_within(text: str, limit: int) -> str:
    """``text`` escaped, cut so the escaped text takes at most ``limit`` characters (with its "…")."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    kept, room = [], limit - 1
    for char in text:
        room -= len(escape(char))
        if room < 0:
            break
        kept.append(escape(char))
    return "".join(kept) + "…"


def section(markdown: str) -> Block:
    """A mrkdwn section, ``verbatim``: Slack does not turn bare URLs, #channels or @names in it into
    links or mentions (store text is escaped; this covers what escaping leaves plain).

    Written as the dict slack_sdk's ``SectionBlock(text=MarkdownTextObject(...)).to_dict()`` gives
    (the same keys in the same order), not built through those models: they cost 17 us a section,
    three to five sections an answer, on the keyed hot path (issue 15). The one check the models
    made, Slack's 3,000 characters, is ``cut_markdown``'s."""
    return {"text": {"text": cut_markdown(markdown), "type": "mrkdwn", "verbatim": True}, "type": "section"}


def divider() -> Block:
    """A divider block (as slack_sdk's ``DividerBlock().to_dict()``)."""
    return {"type": "divider"}


# "send: enrol", "send: register YOUR_PRACTITIONER_ID", "Send 'pending'" (vocabulary.Reply's convention).
# A quoted command may carry a number ("Send 'relay 7'", a relayed message).
_HINT = re.compile(r"\b([Ss]end)(?::\s+([a-z][a-z_]*(?: [A-Z][A-Z0-9_]*)?)\b|\s+'([a-z][a-z_]*(?: [a-z0-9_]+)*)')")


def slash(command: str) -> str:
    """A command as a Slack user types it, as inline code: `/signpost enrol`."""
    return f"`{SLASH} {command}`"


def commands(text: str) -> str:
    """Neutral command hints ("send: enrol") as Slack users type them ("send `/signpost enrol`")."""
    return _HINT.sub(lambda m: f"{m[1]} {slash(m[2] or m[3])}", text)


def text_of(text: str) -> str:
    """Handler text for mrkdwn: escaped, with its command hints in Slack's form."""
    return commands(escape(text))


def command_line(line: str) -> str:
    """A help line ("• enrol: set up …", "• 943 476 5919 (a reference number)") with its command
    shown as typed in Slack."""
    body = line.removeprefix("• ")
    cuts = [i for i in (body.find(": "), body.find(" (")) if i > 0]
    if not cuts:
        return escape(line)
    at = min(cuts)
    return f"• {slash(escape(body[:at]))}{escape(body[at:])}"


def lines_of(reply: Reply) -> str:
    if reply.lines_are_commands:
        return "\n".join(command_line(line) for line in reply.lines)
    return "\n".join(text_of(line) for line in reply.lines)


_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def phone_link(phone: str) -> str:
    """A tappable phone number (``tel:``) when it looks like one, else the escaped text."""
    if not _PHONE.match(phone.strip()):
        return escape(phone)
    digits = re.sub(r"[^0-9+]", "", phone)
    return f"<tel:{digits}|{escape(phone.strip())}>"


def email_link(email: str) -> str:
    """A tappable email address (``mailto:``) when it looks like one, else the escaped text."""
    if not _EMAIL.match(email.strip()):
        return escape(email)
    return f"<mailto:{email.strip()}|{escape(email.strip())}>"


def ordered(posts: tuple[Signpost, ...]) -> list[Signpost]:
    """The lead professional first, then current involvements, then ended ones (stable otherwise)."""
    return sorted(posts, key=lambda p: (not p.lead_professional, not p.current))


MAX_CONTACT = 1400  # the phone and email line (a feed's longest, 20 and 254 characters, takes under 600)


def fitted(texts: tuple[str, ...], room: int) -> list[str]:
    """Each text escaped, all of them together in ``room`` characters: the shorter ones whole, the
    longer ones sharing what is left (so one long field does not push the others out)."""
    escaped = [escape(text) for text in texts]
    out = list(escaped)
    for n, i in enumerate(sorted(range(len(texts)), key=lambda i: len(escaped[i]))):
        out[i] = escape_within(texts[i], room // (len(texts) - n))
        room -= len(out[i])
    return out


def signpost_block(post: Signpost) -> Block:
    """One practitioner's signpost as a section: who, for what, since when, how to reach them.

    Each field is cut before it is shown (never inside an entity or a link), so that however long
    or heavily escaped the feed's text, the section keeps its contact line."""
    lead = "  ★ *Lead professional*" if post.lead_professional else ""
    status = post.status if post.current else f"*Ended* {post.ended:%d/%m/%Y}"
    links = ((phone_link(post.phone) if post.phone else ""), (email_link(post.email) if post.email else ""))
    contact = " · ".join(link for link in links if link) if post.contact else f"_{LEFT_POST}_"
    if len(contact) > MAX_CONTACT:
        cut = (escape_within(post.phone, 100), escape_within(post.email, MAX_CONTACT - 103))
        contact = " · ".join(text for text in cut if text)
    frame = f"** — , {lead}\n · since {post.started:%d/%m/%Y} · {status}\n{contact}"
    fields = (post.practitioner_name, post.role, post.organisation, post.service)
    name, role, organisation, service = fitted(fields, MAX_SECTION - len(frame))
    lines = (
        f"*{name}* — {role}, {organisation}{lead}",
        f"{service} · since {post.started:%d/%m/%Y} · {status}",
        contact,
    )
    return section("\n".join(lines))


@dataclass(frozen=True, slots=True)
class ButtonValue:
    """What a rendered button carries back when clicked: its command, and any input to collect."""

    command: str
    input: Input | None = None


def encode_button(button: Button) -> str:
    doc: dict[str, Any] = {"c": button.command}
    if button.input is not None:
        i = button.input
        doc["i"] = {"name": i.name, "label": i.label, "required": i.required, "max_length": i.max_length}
    value = json.dumps(doc, separators=(",", ":"))
    if len(value) > MAX_VALUE:
        raise ValueError("a button's command is too long for Slack")
    return value


_INPUT_FIELDS: dict[str, type] = {"name": str, "label": str, "required": bool, "max_length": int}


def decode_button(value: str) -> ButtonValue:
    """The inverse of encode_button; ValueError for anything else (unknown keys and wrong types too)."""
    try:
        doc = json.loads(value)
    except RecursionError:
        raise ValueError("not a Signpost button") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("c"), str) or set(doc) - {"c", "i"}:
        raise ValueError("not a Signpost button")
    raw = doc.get("i")
    if raw is None:
        return ButtonValue(doc["c"])
    if (
        not isinstance(raw, dict)
        or set(raw) != set(_INPUT_FIELDS)
        or not all(type(raw[k]) is t for k, t in _INPUT_FIELDS.items())
        or not 0 < raw["max_length"] <= 3000  # Slack's limit for a text input
    ):
        raise ValueError("not a Signpost button")
    return ButtonValue(doc["c"], Input(**raw))


# Decisions are confirmed before they are sent (Block Kit's confirm dialog): a mis-tap cannot
# approve access to a child's signposts.
CONFIRM = {
    "approve": ConfirmObject(
        title="Approve this request?",
        text="The requester will see this child's signposts, and the decision is recorded under your name.",
        confirm="Approve",
        deny="Cancel",
    ),
    "deny": ConfirmObject(
        title="Deny this request?",
        text="The requester will be told it was denied, and the decision is recorded under your name.",
        confirm="Deny",
        deny="Cancel",
        style="danger",
    ),
}
# A registration decides whether a chat account may act as a practitioner: no child is concerned.
REGISTRATION_CONFIRM = {
    "approve": ConfirmObject(
        title="Approve this registration?",
        text="This chat account will act as the practitioner it names, and the decision is recorded under your name.",
        confirm="Approve",
        deny="Cancel",
    ),
    "deny": ConfirmObject(
        title="Deny this registration?",
        text="Whoever asked will be told it was denied, and the decision is recorded under your name.",
        confirm="Deny",
        deny="Cancel",
        style="danger",
    ),
}


def confirm_for(button: Button) -> ConfirmObject | None:
    """The confirmation a decision button asks for, by what it decides ("approve R4": a registration)."""
    try:
        kind, _, _ = parse_id(button.command.partition(" ")[2])
    except UsageError:
        kind = ""
    return (REGISTRATION_CONFIRM if kind == "R" else CONFIRM).get(button.action_id)


def button_element(button: Button) -> Block:
    element = ButtonElement(
        action_id=button.action_id,
        text=PlainTextObject(text=_cut(button.label, MAX_LABEL), emoji=False),
        value=encode_button(button),
        style=button.style if button.style in ("primary", "danger") else None,
        confirm=confirm_for(button),
    )
    return element.to_dict()


def link_blocks(links: tuple[Link, ...]) -> list[Block]:
    """Pages to open, as link buttons (Slack opens the URL; the click itself is only acknowledged)."""
    if not links:
        return []
    elements = [
        ButtonElement(
            action_id=f"{OPEN_LINK}_{i}" if i else OPEN_LINK,
            text=PlainTextObject(text=_cut(link.label, MAX_LABEL), emoji=False),
            url=link.url,
            style="primary",
        )
        for i, link in enumerate(links[:25])
    ]
    return [ActionsBlock(block_id="links", elements=elements).to_dict()]


def action_blocks(buttons: tuple[Button, ...]) -> list[Block]:
    """Buttons in actions blocks; a new block whenever an action id repeats (Slack wants them unique)."""
    blocks: list[Block] = []
    seen: set[str] = set()
    for button in buttons:
        if not blocks or button.action_id in seen or len(blocks[-1]["elements"]) >= 25:
            blocks.append({"type": "actions", "block_id": f"actions-{len(blocks)}", "elements": []})
            seen = set()
        blocks[-1]["elements"].append(button_element(button))
        seen.add(button.action_id)
    return blocks


def reply_blocks(reply: Reply, *, limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """The reply's text, a section per signpost (each after a divider), extra lines, links, then
    its buttons."""
    blocks: list[Block] = [section(text_of(reply.text))]
    tail = link_blocks(reply.links) + action_blocks(reply.buttons)
    if reply.lines:
        tail.insert(0, section(lines_of(reply)))
    if reply.signposts and tail:
        tail.insert(0, divider())
    posts = ordered(reply.signposts)
    room = (limit - len(blocks) - len(tail) - 2) // 2  # a divider and a section each, and the "more" line
    for post in posts[:room]:
        blocks.extend((divider(), signpost_block(post)))
    if len(posts) > room:
        blocks.append(section(f"{len(posts) - room} more involvements are not shown here."))
    return blocks + tail


def notification(text: str) -> str:
    """A message's top-level ``text`` (the notification, and what screen readers say): Slack reads
    it as mrkdwn like a section's, so it is escaped the same way (a name with ``<!channel>`` in a
    notice must not ping a channel)."""
    return cut_markdown(text_of(text))


def message(reply: Reply) -> dict[str, Any]:
    """A private message body (ephemeral or response_url): blocks plus the plain-text fallback."""
    return {"text": notification(reply.text), "blocks": reply_blocks(reply)}


def challenge_fallback(challenge: Challenge, reply: Reply | None = None) -> dict[str, Any]:
    """When no modal could be opened: a private message whose button opens the code modal.

    The reply's own text and lines come first: ``enrol`` carries its one-time set-up link there.
    """
    lead: list[Block] = []
    if reply is not None:
        lead.append(section(text_of(reply.text)))
        if reply.lines:
            lead.append(section(lines_of(reply)))
        lead.extend(link_blocks(reply.links))
    prompt = text_of(challenge.prompt)
    if challenge.error and reply is None:  # else the reply's text is the error, shown above
        prompt = f"{text_of(challenge.error)}\n{prompt}"
    button = {
        "type": "button",
        "action_id": ENTER_CODE,
        "text": plain("Enter code", MAX_LABEL),
        "value": json.dumps({"id": challenge.challenge_id, "prompt": challenge.prompt}, separators=(",", ":"))[
            :MAX_VALUE
        ],
        "style": "primary",
    }
    # The notification (and screen-reader) text is what the message is about: the reply's own text
    # (enrol's "Open this link …"), the code prompt only when there is nothing else.
    about = reply.text if reply is not None else challenge.prompt
    return {
        "text": notification(about),
        "blocks": [*lead, section(prompt), {"type": "actions", "block_id": "code-actions", "elements": [button]}],
    }


def _modal(blocks: list[Block], *, callback_id: str = "signpost_result", close: str = "Done") -> View:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(TITLE, 24),
        "close": plain(close, 24),
        "blocks": blocks,
    }


def placeholder_modal() -> View:
    """Opened at once with the trigger id, before any database work; updated with the answer."""
    return _modal([section(PLACEHOLDER_TEXT)], close="Close")


def result_modal(reply: Reply) -> View:
    return _modal(reply_blocks(reply, limit=MAX_VIEW_BLOCKS))


def challenge_modal(challenge: Challenge) -> View:
    """One input for the step-up code; the metadata carries only the opaque challenge id."""
    blocks: list[Block] = [section(text_of(challenge.prompt))]
    if challenge.error:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text_of(challenge.error)}]})
    blocks.append(
        {
            "type": "input",
            "block_id": CODE_BLOCK,
            "label": plain("Authenticator code", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": CODE_ACTION,
                "min_length": 6,
                "max_length": 8,
                "placeholder": plain("6 digits", 150),
            },
        }
    )
    view = _modal(blocks, callback_id=CODE_CALLBACK, close="Cancel")
    view["submit"] = plain("Check code", 24)
    view["private_metadata"] = challenge.challenge_id
    return view


def challenge_errors(challenge: Challenge) -> dict[str, str]:
    """Inline errors for ``response_action: errors`` on the code input."""
    return {CODE_BLOCK: _cut(challenge.error or "That code was not accepted.", 150)}


def input_modal(value: ButtonValue, metadata: str) -> View:
    """A modal collecting one button's input (e.g. the purpose of a request for access)."""
    assert value.input is not None
    field = value.input
    view = _modal(
        [
            {
                "type": "input",
                "block_id": INPUT_BLOCK,
                "optional": not field.required,
                "label": plain(field.label, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "max_length": field.max_length,
                },
            }
        ],
        callback_id=INPUT_CALLBACK,
        close="Cancel",
    )
    view["submit"] = plain("Send", 24)
    view["private_metadata"] = metadata
    return view


def home_view(reply: Reply) -> View:
    """The App Home tab from the home command's reply."""
    blocks: list[Block] = [{"type": "header", "text": plain(reply.text, 150)}]
    if reply.lines:
        blocks.append(section(lines_of(reply)))
    blocks.extend(action_blocks(reply.buttons)[: MAX_VIEW_BLOCKS - len(blocks) - 1])  # Approve / Deny
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Send `/signpost help` to see what you can ask. Answers are private to you.",
                }
            ],
        }
    )
    return {"type": "home", "blocks": blocks}


def notice_message(notice: Notice) -> dict[str, Any]:
    """A DM notice: its text and buttons only (notices never carry child data)."""
    blocks = [section(text_of(notice.text)), *action_blocks(notice.buttons)]
    return {"text": notification(notice.text), "blocks": blocks}
