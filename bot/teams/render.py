"""Adaptive Cards from the platform-neutral Reply and Notice, and card actions back into commands.

Plain dictionaries only: this module does not import the Agents SDK (bot/teams/front.py does).
Buttons become ``Action.Execute`` with a verb (a button that needs input opens it with
``Action.ShowCard`` first); each carries an ``Action.Submit`` fallback with the same data, so older
clients that answer with a message ``value`` instead of an ``adaptiveCard/action`` invoke work too.

A button whose command is transient (``Spec.transient``: Read on a relayed message) is instead an
``Action.Submit`` that opens a Teams dialog (``task/fetch``): what it shows is shown only in the
dialog, never in a card that stays in the chat's history, and the notice is left as it was. A
transient reply that reaches the chat any other way is replaced by a launcher: a short card whose
one button opens the dialog with the same command (``render_in_chat``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from handlers.vocabulary import LEFT_POST, Button, Challenge, Input, Notice, Reply, Signpost

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"  # Action.Execute needs 1.4; Teams renders up to 1.5
CODE_INPUT = "code"
CODE_VERB = "code"
MARK = "signpost"  # every action's data carries this key, so foreign submits are recognised
TASK_FETCH = "task/fetch"  # the invoke a dialog button sends; the dialog's own Submit sends task/submit
DIALOG_TITLE = "Signpost"
LAUNCHER_TEXT = "Signpost shows this in a private window, so it is not kept in this chat. Press the button to open it."
OPEN_VERB = "open"  # the launcher's button for a transient command typed in the chat
# Teams refuses an activity over about 28 KB (413 MessageSizeTooBig), and the whole turn fails. A
# card is kept to this size as JSON with every non-ASCII character escaped (an upper bound for any
# serialisation), which leaves the rest for the activity's envelope; the signposts that do not fit
# are counted on a line of their own, as in Slack.
MAX_CARD_BYTES = 20_000

Card = dict[str, Any]
Element = dict[str, Any]


# Properties of the block itself; the rest (weight, color, isSubtle, size …) style its one run.
BLOCK_PROPERTIES = frozenset({"spacing", "separator", "horizontalAlignment", "id", "isVisible", "height"})


def text_block(text: str, **style: Any) -> Element:
    """Text shown exactly as written: a RichTextBlock with one TextRun.

    Replies and notices carry what people typed (purposes, reasons, usage echoes). A TextBlock
    reads its text as markdown, so ``[click](https://…)`` typed into a purpose would become a link
    on a duty manager's card; a TextRun is never read as markdown (Adaptive Cards 1.2+).
    """
    block = {k: v for k, v in style.items() if k in BLOCK_PROPERTIES}
    run = {k: v for k, v in style.items() if k not in BLOCK_PROPERTIES}
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, **run}], **block}


def card(body: list[Element], actions: list[Element] | None = None) -> Card:
    doc: Card = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        doc["actions"] = actions
    return doc


def fact(title: str, value: str) -> Element:
    """A labelled line, read as plain text: a FactSet's value is read as markdown by Teams, so a
    feed's ``[Call now](https://…)`` in a service or an email would become a link."""
    return {
        "type": "RichTextBlock",
        "spacing": "none",
        "inlines": [{"type": "TextRun", "text": f"{title}: ", "weight": "bolder"}, {"type": "TextRun", "text": value}],
    }


def signpost_container(post: Signpost) -> Element:
    """One practitioner's contact details, as a container of its own."""
    heading = post.practitioner_name + (" ★ lead professional" if post.lead_professional else "")
    return {
        "type": "Container",
        "style": "emphasis",
        "separator": True,
        "spacing": "medium",
        "items": [
            text_block(heading, weight="bolder"),
            text_block(f"{post.role}, {post.organisation}", isSubtle=True, spacing="none"),
            fact("Service", f"{post.service} (since {post.started:%d/%m/%Y}, {post.status})"),
            *(
                tuple(fact(label, way) for label, way in (("Phone", post.phone), ("Email", post.email)) if way)
                if post.contact
                else (text_block(LEFT_POST, isSubtle=True, spacing="none"),)
            ),
        ],
    }


def size(doc: Card | Element) -> int:
    """A card's (or element's) size as JSON with every non-ASCII character escaped: no
    serialisation of it is larger."""
    return len(json.dumps(doc))


def more_line(count: int) -> Element:
    return text_block(f"{count} more involvements are not shown here.", spacing="small")


def with_signposts(head: list[Element], posts: tuple[Signpost, ...], doc: Card) -> Card:
    """``doc`` with a container per signpost after ``head`` (its first body elements), as many as
    keep the card under ``MAX_CARD_BYTES``, and a line counting the rest. Posts come in the order
    the store gives them (the lead professional first), so those left out are the least pressing."""
    room = MAX_CARD_BYTES - size(doc) - size(more_line(len(posts))) - 2  # its comma and one more
    shown: list[Element] = []
    for post in posts:
        container = signpost_container(post)
        room -= size(container) + 2  # ", " before it
        if room < 0:
            break
        shown.append(container)
    if len(shown) < len(posts):
        shown.append(more_line(len(posts) - len(shown)))
    return {**doc, "body": [*head, *shown, *doc["body"][len(head) :]]}


def execute(title: str, verb: str, data: dict[str, Any], style: str | None = None) -> Element:
    """Action.Execute with an Action.Submit fallback carrying the same data."""
    payload = {MARK: 1, "verb": verb, **data}
    action: Element = {"type": "Action.Execute", "title": title, "verb": verb, "data": payload}
    if style in ("positive", "destructive"):
        action["style"] = style
    action["fallback"] = {"type": "Action.Submit", "title": title, "data": payload}
    return action


def dialog_button(button: Button) -> Element:
    """A button that opens a Teams dialog (``task/fetch``) showing the command's answer there."""
    payload = {"msteams": {"type": TASK_FETCH}, MARK: 1, "verb": button.action_id, "button": asdict(button)}
    action: Element = {"type": "Action.Submit", "title": button.label, "data": payload}
    style = _style(button)
    if style in ("positive", "destructive"):
        action["style"] = style
    return action


def _style(button: Button) -> str | None:
    return {"primary": "positive", "danger": "destructive"}.get(button.style or "")


def input_box(spec: Input, error: str | None = None) -> list[Element]:
    box: Element = {
        "type": "Input.Text",
        "id": spec.name,
        "label": spec.label,
        "isMultiline": True,
        "maxLength": spec.max_length,
        "isRequired": spec.required,
        "errorMessage": "Please fill this in.",
    }
    return [*([text_block(error, color="attention")] if error else []), box]


def button_action(button: Button, error: str | None = None) -> Element:
    """A button: Action.Execute, or a ShowCard holding its input and an Execute to send it."""
    data = {"button": asdict(button)}
    if button.input is None:
        return execute(button.label, button.action_id, data, _style(button))
    form = card(input_box(button.input, error), [execute("Send", button.action_id, data, _style(button))])
    return {"type": "Action.ShowCard", "title": button.label, "card": form}


def challenge_elements(challenge: Challenge) -> tuple[list[Element], Element]:
    """One private code input and the action that sends it with the challenge id."""
    body = [text_block(challenge.prompt)]  # a refused code's error is the reply's text, above
    body.append(
        {
            "type": "Input.Text",
            "id": CODE_INPUT,
            "label": "Authenticator code",
            "placeholder": "6-digit code",
            "style": "tel",  # a number pad on phones
            "maxLength": 10,
            "isRequired": True,
            "errorMessage": "Please enter the code from your authenticator app.",
        }
    )
    return body, execute("Send code", CODE_VERB, {"challenge_id": challenge.challenge_id})


def render_reply(reply: Reply) -> Card:
    """The whole reply as one card (so an invoke response can replace a card with it)."""
    if reply.challenge is not None and reply.challenge.error:
        body = [text_block(reply.text, color="attention")]  # the one line on what went wrong
    else:
        body = [text_block(reply.text, weight="bolder" if reply.signposts else "default")]
    if reply.child_ref:
        body.append(text_block(f"Reference {reply.child_ref}", isSubtle=True, spacing="none"))
    head = len(body)
    body.extend(text_block(line, spacing="small") for line in reply.lines)
    actions = [{"type": "Action.OpenUrl", "title": link.label, "url": link.url} for link in reply.links]
    actions.extend(button_action(button) for button in reply.buttons)
    if reply.challenge is not None:
        extra, send = challenge_elements(reply.challenge)
        body.extend(extra)
        actions.append(send)
    doc = card(body, actions)
    return with_signposts(body[:head], reply.signposts, doc) if reply.signposts else doc


def render_notice(notice: Notice, transient: Callable[[str], bool]) -> Card:
    """A notice card. ``transient`` (the dispatcher's) tells which buttons show what must not stay
    in the chat: theirs open a dialog (and the notice stays as it was), and the notice's hint to send
    their command ("Send 'relay 7' to read it") says to press them instead; the others answer on the card."""
    text, actions = notice.text, []
    for b in notice.buttons:
        if b.input is None and transient(b.command):
            # Typed in the chat it would only bring a button to press: say to press this one.
            text = text.replace(f"Send '{b.command}' to", f"Press {b.label} to")
            actions.append(dialog_button(b))
        else:
            actions.append(button_action(b))
    return card([text_block(text)], actions)


def render_launcher(button: Button) -> Card:
    """In place of what must not stay in the chat: a button that opens it in a dialog."""
    return card([text_block(LAUNCHER_TEXT)], [dialog_button(button)])


def launcher_button(command: str) -> Button:
    """The launcher's button for a transient command typed (or resumed) in the chat."""
    return Button(OPEN_VERB, "Open", command, style="primary")


def render_in_chat(reply: Reply) -> Card:
    """A reply as a card to post into the chat (or to replace a card there with): a transient one
    (``Reply.transient``) becomes a launcher, so its text never stays in the chat's history."""
    if reply.transient is not None:
        return render_launcher(launcher_button(reply.transient))
    return render_reply(reply)


def for_dialog(doc: Card) -> Card:
    """A card to show in a dialog: Action.Execute becomes its Action.Submit fallback (inside a
    dialog a Submit is sent to the bot as ``task/submit``), in Action.ShowCard forms too."""

    def action(a: Element) -> Element:
        if a.get("type") == "Action.Execute" and isinstance(a.get("fallback"), dict):
            return {**a["fallback"], **({"style": a["style"]} if "style" in a else {})}
        if a.get("type") == "Action.ShowCard":
            return {**a, "card": for_dialog(a["card"])}
        return a

    if "actions" not in doc:
        return doc
    return {**doc, "actions": [action(a) for a in doc["actions"]]}


def render_text(text: str) -> Card:
    return card([text_block(text)])


@dataclass(frozen=True, slots=True)
class CardAction:
    """What a click on one of our cards asks for, read back from the action's data."""

    verb: str
    button: Button | None = None
    input_value: str | None = None
    challenge_id: str | None = None
    code: str | None = None


# A button comes back from the Teams client inside the click: every field is checked for its
# type before it is used (a modified client sent max_length "x", and the click failed unaudited).
_BUTTON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "action_id": str,
    "label": str,
    "command": str,
    "style": (str, type(None)),
    "input": (dict, type(None)),
}
_INPUT_FIELDS: dict[str, type | tuple[type, ...]] = {"name": str, "label": str, "required": bool, "max_length": int}
MAX_INPUT_LENGTH = 5000


def _typed(doc: dict[str, Any], fields: dict[str, type | tuple[type, ...]]) -> bool:
    """Only ``fields``, each of its type (True is not a number here)."""
    return all(
        key in fields and isinstance(value, fields[key]) and not (isinstance(value, bool) and fields[key] is int)
        for key, value in doc.items()
    )


def _button(doc: Any) -> Button | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("command"), str) or not _typed(doc, _BUTTON_FIELDS):
        return None
    spec = doc.get("input")
    if spec is not None and not (_typed(spec, _INPUT_FIELDS) and 0 < spec.get("max_length", 1) <= MAX_INPUT_LENGTH):
        return None
    try:
        return Button(**{**doc, "input": Input(**spec) if spec is not None else None})
    except TypeError:  # a field missing
        return None


def read_action(data: Any) -> CardAction | None:
    """Our action data (from an invoke's action.data or a submit's value), or None if foreign."""
    if not isinstance(data, dict) or MARK not in data or not isinstance(data.get("verb"), str):
        return None
    if data["verb"] == CODE_VERB:
        code, challenge = data.get(CODE_INPUT), data.get("challenge_id")
        return CardAction(
            CODE_VERB,
            challenge_id=challenge if isinstance(challenge, str) else None,
            # A box left empty may be left out of the data: the code box was sent empty all the same
            # (as Slack's modal sends it), never a code typed elsewhere (``Command.code`` None).
            code=code.strip() if isinstance(code, str) else "",
        )
    button = _button(data.get("button"))
    if button is None:
        return None
    value = data.get(button.input.name) if button.input else None
    return CardAction(data["verb"], button, value.strip() if isinstance(value, str) else None)


def missing_input(action: CardAction) -> str | None:
    """A kind message when the button's input is required but empty or too long, else None."""
    spec = action.button.input if action.button else None
    if spec is None:
        return None
    if spec.required and not action.input_value:
        return f"Please fill in: {spec.label}"
    if action.input_value and len(action.input_value) > spec.max_length:
        return f"Please keep it under {spec.max_length} characters."
    return None


def command_text(action: CardAction) -> str:
    """A button click is its command plus any collected input (the shared model's rule)."""
    assert action.button is not None
    if action.input_value:
        return f"{action.button.command} {action.input_value}"
    return action.button.command


def render_retry(action: CardAction, problem: str) -> Card:
    """The button again, with the problem shown, when its input was missing."""
    assert action.button is not None
    return card([text_block(problem, color="attention")], [button_action(action.button, problem)])
