"""Text too long to be a command is answered kindly before any of it is parsed or searched, and
audited without it: a megabyte of words held the event loop for seconds and left its sealed terms
in the audit for ever. The one cap lives where every front end's text reaches the grammar."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.access.screening import MAX_TEXT
from handlers.grammar import MAX_COMMAND_TEXT, MAX_COMMAND_WORDS, MAX_NAMES, too_long
from handlers.vocabulary import Outcome
from store.tables.audit import AuditEvent
from tests.access_helpers import audit_events
from tests.factories import AMY, load_standard, ready, say

LONG_SEARCH = "Amy " * (MAX_COMMAND_TEXT // 4) + "03/04/2014"
MANY_WORDS = "A " * (MAX_COMMAND_WORDS + 1)  # short in characters, too many words


def row_size(event: AuditEvent) -> int:
    """What the audit row holds, in characters and bytes, all columns together."""
    fields = (event.detail, event.subject_refs, event.correlation_id, event.terms_key or "")
    return sum(len(value) for value in fields) + len(event.terms or b"")


@pytest.mark.parametrize("text", [LONG_SEARCH, MANY_WORDS], ids=["characters", "words"])
async def test_text_too_long_for_a_command_is_refused_unread_and_audited_without_it(
    signpost: Signpost, text: str
) -> None:
    """A stepped-up practitioner's long 'search' is told it is too long; the search never runs
    (no search event, no sealed terms), and the one event is a few hundred bytes."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    before = len(await audit_events(signpost))
    reply = await say(signpost, "P002", text)
    assert reply.outcome is Outcome.REFUSED
    assert reply.text.startswith("That message is too long for a command")
    assert "Amy" not in reply.text and "03/04" not in reply.text
    [event] = (await audit_events(signpost))[before:]
    assert (event.action, event.outcome, event.detail) == ("usage", "refused", "too long")
    assert event.terms is None and event.subject_refs == "" and row_size(event) < 200
    assert await audit_events(signpost, "search") == []


async def test_an_unregistered_person_is_answered_alike(signpost: Signpost) -> None:
    """Someone Signpost does not know gets the same answer, before anything else is asked."""
    reply = await say(signpost, "NOBODY", LONG_SEARCH)
    assert reply.outcome is Outcome.REFUSED and reply.text.startswith("That message is too long")
    [event] = await audit_events(signpost)
    assert (event.action, event.detail, event.terms) == ("usage", "too long", None)


def test_the_longest_purpose_a_request_may_hold_is_not_too_long_for_a_command() -> None:
    """The cap sits above every text's own limit (``screening.MAX_TEXT``): a purpose of the most
    characters, and of the most words those characters can make, is told its own limit, never this."""
    assert not too_long(f"request {AMY} " + "a" * MAX_TEXT)
    assert not too_long(f"request {AMY} " + "a " * (MAX_TEXT // 2))
    assert too_long("a" * (MAX_COMMAND_TEXT + 1)) and too_long(MANY_WORDS)


async def test_a_search_with_more_names_than_a_child_has_is_told_so(signpost: Signpost) -> None:
    """A search holds at most ``MAX_NAMES`` names: more is answered with usage, and never searched."""
    await load_standard(signpost)
    await ready(signpost, "P002")
    given = " ".join(["Amy"] * (MAX_NAMES - 1))
    fits = await say(signpost, "P002", f"{given} Jones 03/04/2014")
    assert "at most" not in fits.text
    reply = await say(signpost, "P002", f"{given} Amy Jones 03/04/2014")
    assert reply.outcome is Outcome.INVALID
    assert f"at most {MAX_NAMES} names" in reply.text and "Amy" not in reply.text
