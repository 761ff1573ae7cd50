"""A step-up code that is not accepted reads as one clear line, then the prompt, on every front end
(issue 17 item 13): the error comes from the flow as the reply's text, never after a generic
"Code not accepted." line."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.app import Signpost
from bot.console import render as console
from bot.slack import render as slack
from bot.teams import render as teams
from handlers.clock import FakeClock
from handlers.stepup import flow as stepup
from handlers.vocabulary import Outcome, Reply
from tests.bot.teams.teams_support import texts_of
from tests.factories import AMY, load_standard, say
from tests.stepup_helpers import enrol_and_step_up

WRONG = stepup.WRONG.format(left=4, ies="ies")


async def refused(signpost: Signpost, clock: FakeClock, code: str) -> Reply:
    """A lookup that needs a fresh code, answered with ``code``."""
    await load_standard(signpost)
    authenticator = await enrol_and_step_up(signpost, "P002")
    clock.advance(minutes=31)
    challenged = await say(signpost, "P002", AMY)
    assert challenged.challenge is not None
    if code == "wrong":
        now = clock.now()
        valid = {authenticator.at(now + timedelta(seconds=delta)) for delta in (-30, 0, 30)}
        code = next(c for c in ("000000", "111111", "222222") if c not in valid)
    reply = await say(signpost, "P002", "code", code=code, challenge_id=challenged.challenge.challenge_id)
    assert reply.outcome is Outcome.CHALLENGED and reply.challenge is not None
    return reply


@pytest.mark.parametrize(("code", "error"), [("wrong", WRONG), ("12-34", stepup.MALFORMED)])
async def test_a_refused_code_reads_as_one_line_then_the_prompt_everywhere(
    signpost: Signpost, clock: FakeClock, code: str, error: str
) -> None:
    reply = await refused(signpost, clock, code)
    assert reply.challenge is not None
    assert reply.text == error

    # The console: the error, then the prompt.
    assert console.render(reply).splitlines() == [error, stepup.PROMPT]

    # Slack, as a private message (when no modal could open): its notification text is the error,
    # its sections the error and then the prompt, each once.
    body = slack.challenge_fallback(reply.challenge, reply)
    assert body["text"] == error
    sections = [b["text"]["text"] for b in body["blocks"] if b["type"] == "section"]
    assert sections == [error, stepup.PROMPT]
    # Slack, in the code modal (a late answer): the prompt and the error once; and inline on the input.
    modal = json.dumps(slack.challenge_modal(reply.challenge))
    assert modal.count(error) == 1 and stepup.PROMPT in modal
    assert slack.challenge_errors(reply.challenge) == {slack.CODE_BLOCK: error}

    # Teams: the card's text is the error (in the attention colour), then the prompt.
    card = teams.render_reply(reply)
    runs = [b["inlines"][0] for b in card["body"] if b["type"] == "RichTextBlock"]
    assert [run["text"] for run in runs] == [error, stepup.PROMPT]
    assert runs[0].get("color") == "attention"
    assert texts_of(card).count(error) == 1

    for shown in (console.render(reply), json.dumps(body), modal, json.dumps(card)):
        assert "not accepted" not in shown.lower()
