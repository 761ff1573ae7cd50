"""Text that nearly was a reference or a date of birth gets a hint at what to fix (the README's
promise; before, every such text got the bare list), and the hint repeats nothing typed."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.vocabulary import Outcome
from tests.factories import load_standard, say

HINTS = [
    ("999 000 100", "A child's reference has 10 digits; that had 9."),
    ("999 000 10066", "A child's reference has 10 digits; that had 11."),
    ("99900O1006", "check for a letter O or I typed where a 0 or 1 should be"),
    ("999 000 l006", "check for a letter O or I typed where a 0 or 1 should be"),
    ("\uff19\uff19\uff19 \uff10\uff10\uff10 \uff11\uff10\uff10\uff16", "ordinary digits 0-9"),
    ("Ava Price 05/01/14", "with the full year: DD/MM/YYYY"),
    ("Ava Price 05/01/20140", "with a four-digit year"),
    ("Ava Price 05/01/201 NS1 3LY", "with a four-digit year"),
    ("123456", "looks like an authenticator code, but none was asked for"),
    ("123 456", "looks like an authenticator code, but none was asked for"),
    ("Ava Price 5 Jan 2014", "in numbers: DD/MM/YYYY"),
    ("Ava Price January 5th, 2014 NS1 3LY", "in numbers: DD/MM/YYYY"),
    # The year first with slashes or dots: the bare list, no hint (YYYY-MM-DD is read, with dashes).
    ("Ava Price 2014/01/05", "as DD/MM/YYYY or YYYY-MM-DD"),
    ("Ava Price 2014.1.5 NS1 3LY", "as DD/MM/YYYY or YYYY-MM-DD"),
]


@pytest.mark.parametrize(("typed", "hint"), HINTS)
async def test_a_near_miss_says_what_to_fix_and_repeats_nothing_typed(
    signpost: Signpost, typed: str, hint: str
) -> None:
    await load_standard(signpost)
    reply = await say(signpost, "P001", typed)
    assert reply.outcome is Outcome.INVALID
    assert reply.text.startswith("Sorry, I didn't understand that.") and hint in reply.text
    assert reply.text.endswith("You can send:") and reply.lines
    for word in typed.split():
        if word.isalpha() and len(word) > 3:
            assert word not in reply.text
    digits = "".join(ch for ch in typed if ch.isdigit())
    assert len(digits) < 5 or digits not in "".join(ch for ch in reply.text if ch.isdigit())


@pytest.mark.parametrize("typed", ["what can you do", "thanks", "1234", "call 0161 496 0002"])
async def test_other_text_gets_the_list_without_a_hint(signpost: Signpost, typed: str) -> None:
    await load_standard(signpost)
    reply = await say(signpost, "P001", typed)
    assert reply.text == "Sorry, I didn't understand that. You can send:"


async def test_a_code_nobody_asked_for_is_told_to_send_what_it_was_for_whoever_sends_it(signpost: Signpost) -> None:
    """A duty manager's stray code was told to "send your search again" (newcomer): managers and
    admins decide and administer, they were not searching. The hint names no one kind of command."""
    await load_standard(signpost)
    for who in ("P001", "DM01"):
        reply = await say(signpost, who, "123456")
        assert "none was asked for" in reply.text and "search" not in reply.text.split("You can send:")[0], who
