"""A search by name and date of birth that is not accepted gets one answer, whatever the candidates.

Worded apart, "could not be sure which child you mean" (some candidate carried weak evidence) and
"no record matches" (none did) were an oracle: stepping a family name through dates ("Price
05/01/2014", "Price 06/01/2014" …) told which children of that name exist and when they were born.
Every front end shows the same thing for twins, a sibling held back by its guard, one weak
candidate and nobody at all; only the audit (internal, for misuse review) tells them apart.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.app import Signpost
from bot.console.render import render
from bot.slack.render import message, result_modal
from bot.teams.render import for_dialog, render_in_chat, render_reply
from handlers.search import NO_MATCH
from handlers.vocabulary import Reply
from store.tables.audit import AuditEvent
from tests.factories import load_standard, ready, say
from tests.stepup_helpers import say_fresh

# Queries of one shape (so they lack the same details), each with what the audit records for it.
ONE_GIVEN_NAME = (
    ("Lily Brown 20/01/2019", "ambiguous"),  # twins: several candidates
    ("Sam Okafor 12/09/2016", "ambiguous"),  # Ben's brother's name on Ben's date: the sibling guard
    ("Ben Okafor 21/09/2016", "ambiguous"),  # Ben a few days off his date: one weak candidate
    ("Zara Quinn 12/09/2016", "no_match"),  # Ben's date, names that disagree: nobody considered
    ("Zara Quinn 07/07/2011", "no_match"),  # nobody at all
)
FAMILY_ONLY = (
    ("Brown 20/01/2019", "ambiguous"),  # the family name on the twins' date of birth
    ("Brown 21/01/2019", "no_match"),  # the day after: the answer must not change
    ("Okafor 13/09/2016", "no_match"),
    ("Quinn 12/09/2016", "no_match"),
)
EVERYTHING_GIVEN = (
    ("Lily Brown 20/01/2019 M8 1AA", "ambiguous"),  # twins at one address
    ("Lily Brown 20/01/2003 M8 1AA", "ambiguous"),  # their names and address, a date far off: held back
    ("Zara Quinn 20/01/2003 M8 1AA", "no_match"),
)


def everything_shown(reply: Reply) -> str:
    """What each front end shows of a reply: the console's text, Slack's message and modal, Teams'
    card as posted, in the chat and in a dialog."""
    shown = {
        "console": render(reply),
        "slack": message(reply),
        "slack modal": result_modal(reply),
        "teams": render_reply(reply),
        "teams chat": render_in_chat(reply),
        "teams dialog": for_dialog(render_reply(reply)),
    }
    return json.dumps(shown, sort_keys=True, default=str)


async def outcomes(app: Signpost) -> list[str]:
    async with app.ctx.db.read() as session:
        rows = await session.execute(
            select(AuditEvent.outcome).where(AuditEvent.action == "search").order_by(AuditEvent.seq)
        )
        return [str(outcome) for outcome in rows.scalars()]


async def test_every_search_not_accepted_shows_the_same_thing_in_every_front_end(signpost: Signpost) -> None:
    await load_standard(signpost)
    await ready(signpost, "P002")
    for group in (ONE_GIVEN_NAME, FAMILY_ONLY, EVERYTHING_GIVEN):
        replies = [await say(signpost, "P002", query) for query, _ in group]
        first = everything_shown(replies[0])
        for (query, _), reply in zip(group, replies, strict=True):
            assert reply.child_ref is None and reply.signposts == () and reply.buttons == () and reply.lines == ()
            assert everything_shown(reply) == first, query
    # The audit still tells them apart (misuse review reads it): the groups do hold both kinds.
    expected = [outcome for group in (ONE_GIVEN_NAME, FAMILY_ONLY, EVERYTHING_GIVEN) for _, outcome in group]
    assert await outcomes(signpost) == expected


async def test_the_one_answer_is_true_in_every_case_and_asks_only_for_what_the_query_lacks(
    signpost: Signpost,
) -> None:
    await load_standard(signpost)
    await ready(signpost, "P002")
    shape = {
        "Lily Brown 20/01/2019": "Please add more detail: the postcode or all of the child's given names. "
        "Otherwise check the spelling and the date of birth, or search by reference number.",
        "Okafor 12/09/2003": "Please add more detail: the postcode or both of the child's names, given and family. "
        "Otherwise check the spelling and the date of birth, or search by reference number.",
        "Lily Rose Brown 20/01/2003 M8 1AA": (
            "Please check the spelling and the date of birth, or search by reference number."
        ),
    }
    for query, ask in shape.items():
        reply = await say(signpost, "P002", query)
        assert reply.text == f"{NO_MATCH} {ask}", query
    for wrong in ("could not be sure", "which child you mean", "more than one", "several", "possible"):
        assert wrong not in NO_MATCH.casefold()


async def test_history_says_the_same_of_every_search_not_accepted(signpost: Signpost) -> None:
    """The practitioner's own history would otherwise tell afterwards what the answer did not."""
    await load_standard(signpost)
    for query, _ in ONE_GIVEN_NAME:
        await say_fresh(signpost, "P001", query)
    reply = await say_fresh(signpost, "P001", "history")
    said = {line.rsplit(" · ", 1)[1] for line in reply.lines}
    assert len(reply.lines) == len(ONE_GIVEN_NAME) and said == {"no match"}
    assert {line.split(" · ")[1] for line in reply.lines} == {"—"}
