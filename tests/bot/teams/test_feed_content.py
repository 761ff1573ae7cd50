"""What a feed holds reaches a Teams card as plain text, and a card stays under Teams' size limit.

The answers go through the running app to the fake connector, which refuses an activity over
Teams' 28 KB as Bot Framework does (413 MessageSizeTooBig).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from bot.app import Signpost
from bot.teams.render import for_dialog, render_in_chat, render_reply
from handlers.vocabulary import Button, Outcome, Reply
from handlers.vocabulary import Signpost as Post
from store.register.feeds import Feed, import_feeds
from tests.bot.teams.teams_support import PRIYA, TeamsApp, message, teams_events, texts_of
from tests.factories import AMY, INVOLVEMENTS_HEADER, PRACTITIONERS_HEADER
from tests.fakes.teams_connector import FakeConnector

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

CARD_LIMIT = 24_000  # a card this size leaves 4 KB of Teams' 28 KB for the activity around it
START = date(2024, 1, 1)
LINK = "[Call now](https://evil.example/call) <!here>"


def markdown_read(node: Any) -> list[str]:
    """Every string Teams reads as markdown: a TextBlock's text and a FactSet's titles and values."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "TextBlock" and isinstance(node.get("text"), str):
            found.append(node["text"])
        if node.get("type") == "FactSet":
            found.extend(f"{fact['title']} {fact['value']}" for fact in node["facts"])
        for value in node.values():
            found.extend(markdown_read(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(markdown_read(item))
    return found


async def add_involvements(signpost: Signpost, count: int, *, service: str = "Family support") -> None:
    """``count`` more practitioners involved with Amy, each with long (but allowed) contact fields."""
    role, org = '"Senior practitioner, ' + "r" * 80 + '"', "Northshire Integrated Services " + "o" * 80
    people = [
        f"X{i:03d},Given{i},Family{i},{role},{org},Northshire,0161 496 {i:04d},p{i}@northshire.example,practitioner"
        for i in range(count)
    ]
    involvements = [f"{AMY},X{i:03d},{service},2024-01-{1 + i % 28:02d},,false" for i in range(count)]
    feeds = [
        Feed("practitioners.csv", "\n".join([PRACTITIONERS_HEADER, *people]) + "\n"),
        Feed("involvements.csv", "\n".join([INVOLVEMENTS_HEADER, *involvements]) + "\n"),
    ]
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, feeds, signpost.ctx.clock.now())


async def test_a_feed_service_with_markdown_reaches_the_card_as_text_not_a_link(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """A service ``[Call now](https://…)`` is shown as typed: never in a FactSet or TextBlock."""
    await add_involvements(loaded, 1, service=f'"{LINK}"')
    await teams.post(message(PRIYA, AMY, connector.url))
    [reply] = connector.sent
    assert reply.card is not None and LINK in texts_of(reply.card)
    assert not [text for text in markdown_read(reply.card) if "evil.example" in text]


def test_contact_fields_are_text_runs_even_when_an_older_record_holds_markdown() -> None:
    """An email stored before the feed refused such values still cannot become a link."""
    email = "[priya.shah@nhs.example](https://evil.example/phish)"
    post = Post("Priya Shah", "Nurse", "NHS", LINK, "0161 496 0002", email, False, date(2024, 9, 1))
    card = render_reply(Reply(Outcome.ANSWERED, "Signposts: 1", child_ref="999 000 0018", signposts=(post,)))
    assert email in texts_of(card) and LINK in texts_of(card)
    assert markdown_read(card) == []


async def test_a_child_with_many_involvements_gets_a_card_teams_accepts_with_the_rest_counted(
    teams: TeamsApp, connector: FakeConnector, loaded: Signpost
) -> None:
    """Sixty involvements would make an activity Teams refuses (413): the card shows the first
    ones, says how many more there are, and the answer audited is the answer delivered."""
    await add_involvements(loaded, 60)
    await teams.post(message(PRIYA, AMY, connector.url))
    [reply] = connector.sent  # no refused send, no apology after it
    assert reply.card is not None
    assert len(json.dumps(reply.body).encode()) < connector.max_activity_bytes
    text = texts_of(reply.card)
    assert "Sam Carter ★ lead professional" in text  # the lead professional comes first, so is kept
    shown = sum(1 for e in reply.card["body"] if e["type"] == "Container")
    assert 3 <= shown < 63 and f"{63 - shown} more involvements are not shown here." in text
    [event] = await teams_events(loaded)
    assert event.outcome == "answered"


def test_every_card_with_signposts_stays_under_the_limit_however_long_the_fields() -> None:
    """Replies, in-chat cards and dialogs alike: 200 signposts with every field at its longest
    (non-ASCII, so escaped six bytes each) fit, with the rest counted."""
    long = "ł" * 200
    email = "a" * 240 + "@nhs.example"
    post = Post(long + " " + long, long, long, long, "+44 161 496 0001", email, True, date(2024, 1, 1))
    reply = Reply(
        Outcome.ANSWERED,
        "Signposts: 200",
        child_ref="999 000 0018",
        signposts=(post,) * 200,
        lines=("A line after the signposts.",),
        buttons=(Button("request", "Request access", "request 9990000018"),),
    )
    for doc in (render_reply(reply), render_in_chat(reply), for_dialog(render_reply(reply))):
        assert len(json.dumps(doc)) <= CARD_LIMIT
        text = texts_of(doc)
        shown = sum(1 for e in doc["body"] if e["type"] == "Container")
        assert shown >= 1 and f"{200 - shown} more involvements are not shown here." in text
        assert text.index("more involvements") < text.index("A line after the signposts.")
        assert doc["actions"]


def test_a_reply_that_fits_shows_every_signpost_and_no_count() -> None:
    post = Post("Sam Carter", "Social worker", "Northshire CS", "Care", "0161 496 0001", "s@n.example", True, START)
    card = render_reply(Reply(Outcome.ANSWERED, "Signposts: 3", signposts=(post,) * 3))
    assert sum(1 for e in card["body"] if e["type"] == "Container") == 3
    assert "not shown here" not in texts_of(card)
