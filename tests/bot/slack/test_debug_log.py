"""SIGNPOST_LOG_LEVEL=debug through real signed Slack requests: Signpost's own debug lines come
out, but no library (Bolt included) writes what it carried into the log."""

from __future__ import annotations

import pytest

from tests.bot.conftest import SlackHarness
from tests.bot.log_stream import logged_at
from tests.bot.slack.slack_requests import SlackUser
from tests.factories import load_standard

pytestmark = pytest.mark.one_store  # a front end's behaviour: one store shows it (tests/spread.py)

NURSE = SlackUser("U0NURSE")


async def test_at_debug_bolt_logs_no_reply_body_of_a_search_answered_in_the_ack(slack_app: SlackHarness) -> None:
    """Bolt logged "Responding with status: 200 body: …" with the whole answer (the child's name,
    date of birth, the practitioners' phone numbers and emails): its logger was outside the cap."""
    await load_standard(slack_app.signpost)
    user = await slack_app.link("P002", NURSE)
    with logged_at("debug") as log:
        response = await slack_app.slack.command(user, "Amy Jones 03/04/2014 M1 2AB")
        answer = await response.text()
        await slack_app.front.idle()
    assert response.status == 200 and "Sam Carter" in answer and "0161 496 0001" in answer
    logged = log.text
    assert '"event": "command"' in logged  # Signpost's own lines are there
    for said in ("Amy", "03/04/2014", "2014-04-03", "M1 2AB", "Sam Carter", "0161 496", "@northshire.example"):
        assert said not in logged, said
    assert "Responding with status" not in logged
    assert not [line for line in log.lines() if str(line.get("logger", "")).startswith(("slack_bolt", "signpost:"))]
