"""What a person is told when Signpost refuses free text about a child for naming them: how many
tries are left before the day's hold, and, once held, what was actually refused or relayed
(handlers/access/screening.py), through the dispatcher on both backends."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.app import Signpost
from handlers.access.policy import POLICY
from handlers.access.requests import REQUEST_USAGE
from handlers.access.screening import CODE_REFUSED, MAX_TEXT
from handlers.clock import FakeClock
from handlers.examples import for_any_store
from handlers.privacy import code_shaped
from handlers.stepup.flow import shown_step
from handlers.vocabulary import Outcome, Reply
from tests.access_helpers import decide, fresh_say, load_access, notices, request_access
from tests.factories import SHIELDED
from tests.stepup_helpers import code_now, ensure_enrolled

REF = "999 000 0050"  # SHIELDED as the person typed it
CALL_ME = "section 47 enquiry, please call me on 0161 496 0002"
# Each names the shielded child (Mia Stone, 30/06/2015, S1 4ZZ) in a different way: by name, or by a
# birthday without its year (a full date, postcode or reference gets the uncounted answer any
# child's does: test_screening_oracle.py).
SLIPS = ("re Mia Stone", "born 30 June", "birthday 30.06")
IDENTITY = ("Mia", "Stone", "30.06.2015", "2015", "S1 4ZZ", "S14ZZ")
LAST_TRY = "That was the last try today"
# A random hex id in a log line (a correlation id, a reference) may hold "2015" by chance: such ids are
# left out before the log is searched for the child's details (an all-digit run stays: "30062015").
RANDOM_ID = re.compile(r"\b(?=[0-9a-f-]*[a-f])[0-9a-f-]{8,}\b")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


def says_nothing_of_the_child(reply: Reply) -> None:
    for word in IDENTITY:
        assert word.lower() not in reply.text.lower(), (word, reply.text)


async def test_each_refused_purpose_says_how_many_tries_are_left_before_the_hold(app: Signpost) -> None:
    """The first refusal warns of the limit; the third says it was the last; none repeats the text."""
    with capture_logs() as logged:
        replies = [await request_access(app, "P002", SHIELDED, f"section 47 enquiry {slip}") for slip in SLIPS]
    assert [r.outcome for r in replies] == [Outcome.INVALID] * 3
    first, second, third = (r.text for r in replies)
    assert "2 more tries today" in first and "1 more try today" in second and LAST_TRY in third
    for reply in replies:
        assert "leave out the child's name, date of birth, postcode and reference" in reply.text
        assert "24 hours" in reply.text and reply.text.endswith(for_any_store(REQUEST_USAGE))
        says_nothing_of_the_child(reply)
    logged_text = RANDOM_ID.sub("<id>", repr(logged))
    assert not [word for word in IDENTITY if word in logged_text], logged_text


async def test_a_message_after_refused_purposes_says_texts_were_refused_never_messages_sent(app: Signpost) -> None:
    """The newcomer's case: three refused purposes, then a message. The hold says what happened (three
    texts refused), and never that messages were sent; nothing was relayed."""
    for slip in SLIPS:
        assert (await request_access(app, "P002", SHIELDED, f"section 47 enquiry {slip}")).outcome is Outcome.INVALID
    held = await fresh_say(app, "P002", f"message {REF} please call me on 0161 496 0002")
    assert held.outcome is Outcome.REFUSED
    assert f"3 of your texts about {REF} were refused in the last 24 hours" in held.text
    assert "sent" not in held.text and "messages" not in held.text, held.text
    assert "request access" not in held.text, "requests are held too: only what still works is offered"
    says_nothing_of_the_child(held)
    assert [n for n in await notices(app) if n.kind == "relay_message"] == []


async def test_the_hold_on_a_request_counts_what_was_refused(app: Signpost) -> None:
    """Two refused messages and a refused purpose: the next request hears of three refused texts."""
    for slip in SLIPS[:2]:
        refused = await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} {slip}")
        assert refused.outcome is Outcome.INVALID
    assert LAST_TRY in (await request_access(app, "P002", SHIELDED, f"s47 {SLIPS[2]}")).text
    held = await request_access(app, "P002", SHIELDED, "section 47 enquiry")
    assert held.outcome is Outcome.REFUSED
    assert f"3 of your texts about {REF} were refused in the last 24 hours" in held.text
    assert "contact your duty manager" in held.text and "messages" not in held.text


async def test_relayed_and_refused_messages_are_each_counted_as_what_they_were(app: Signpost) -> None:
    """Relayed messages count toward the relay's 3 a day: a refusal after them says how many tries are
    left, and the hold names the messages relayed and the texts refused, each by its own count."""
    for n in range(2):
        assert (await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} {n}")).outcome is Outcome.DONE
    refused = await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} {SLIPS[0]}")
    assert refused.outcome is Outcome.INVALID and LAST_TRY in refused.text
    says_nothing_of_the_child(refused)
    held = await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} again")
    assert held.outcome is Outcome.REFUSED
    assert f"relayed 2 messages from you about {REF}" in held.text
    assert "refused 1 of your texts about it" in held.text
    assert "request access" in held.text, "one refusal does not hold requests: asking for access still works"


async def test_three_relayed_messages_hold_with_no_word_of_refusals(app: Signpost) -> None:
    for n in range(3):
        assert (await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} {n}")).outcome is Outcome.DONE
    held = await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} again")
    assert held.outcome is Outcome.REFUSED
    assert f"Signpost has relayed 3 messages from you about {REF} in the last 24 hours" in held.text
    assert "refused" not in held.text.replace("not read", ""), held.text


async def test_a_refused_message_counts_relayed_ones_in_the_tries_left(app: Signpost) -> None:
    assert (await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME}")).outcome is Outcome.DONE
    refused = await fresh_say(app, "P002", f"message {SHIELDED} {CALL_ME} {SLIPS[1]}")
    assert refused.outcome is Outcome.INVALID and "1 more try today" in refused.text
    assert "3 messages" in refused.text, "the relay's own limit is named where relayed ones count"


async def test_refused_reasons_and_answers_say_how_many_tries_are_left(app: Signpost) -> None:
    """The same warning for a denial reason and an answer through the relay."""
    await request_access(app, "P002", SHIELDED)
    reason = await decide(app, "DM02", "deny", 1, "Mia is known to us")
    assert reason.outcome is Outcome.INVALID and "2 more tries today" in reason.text
    says_nothing_of_the_child(reason)
    await fresh_say(app, "P003", f"message {SHIELDED} {CALL_ME}")
    answer = await fresh_say(app, "S001", "reply 1 yes, Mia is known to us")
    assert answer.outcome is Outcome.INVALID and "2 more tries today" in answer.text
    says_nothing_of_the_child(answer)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        (f"request {REF} test", f"at least {POLICY.min_reason} characters"),
        (f"request {REF}", f"at least {POLICY.min_reason} characters"),
        (f"message {REF} call me", "at least 10 characters"),
        (f"message {REF}", "at least 10 characters"),
        ("reply 1 y", "at least 2 characters"),
    ],
)
async def test_a_text_too_short_says_the_minimum(app: Signpost, typed: str, said: str) -> None:
    """'request … test' gave a purpose: the answer says how long one must be, not that none was given."""
    await fresh_say(app, "P003", f"message {SHIELDED} {CALL_ME}")
    reply = await fresh_say(app, "S001" if typed.startswith("reply") else "P002", typed)
    assert reply.outcome is Outcome.INVALID and said in reply.text, reply.text
    if typed == f"request {REF} test":
        said_first = reply.text.split("\n\n")[0]  # before the usage, which says the purpose is required
        assert "required" not in said_first and "too short" in said_first, "a purpose was given"


async def test_a_text_too_long_says_the_maximum_it_may_have(app: Signpost) -> None:
    """The limit is inclusive: the answer says 'at most', and a text of exactly that length is taken."""
    too_long = await request_access(app, "P002", SHIELDED, "x" * (MAX_TEXT + 1))
    assert too_long.outcome is Outcome.INVALID and f"at most {MAX_TEXT:,} characters" in too_long.text
    at_limit = await request_access(app, "P002", SHIELDED, "x" * MAX_TEXT)
    assert at_limit.outcome is Outcome.DONE


async def test_a_writer_with_no_authenticator_has_no_code_to_find(app: Signpost) -> None:
    """Six digits from someone who never set up an authenticator are no code of theirs: nothing to
    compare, and no secret to read."""
    async with app.ctx.db.read() as session:
        found = await shown_step(app.ctx, session, "P003", code_shaped("verification 871 234"), app.ctx.clock.now())
    assert found is None


async def test_a_refused_code_is_not_counted_toward_the_hold(app: Signpost) -> None:
    """A text refused for holding the writer's code reads nothing of the child: the next slip about the
    child still has all but one of the day's tries."""
    authenticator = await ensure_enrolled(app, "P002")
    code = code_now(app, authenticator)
    for _ in range(3):
        refused = await fresh_say(app, "P002", f"message {REF} {CALL_ME}, verification {code}")
        assert refused.outcome is Outcome.INVALID and refused.text.startswith(CODE_REFUSED), refused.text
    slip = await fresh_say(app, "P002", f"message {REF} {CALL_ME} {SLIPS[0]}")
    assert "2 more tries today" in slip.text, slip.text


async def test_the_code_looked_for_is_the_one_the_app_shows_when_signposts_time_was_moved(app: Signpost) -> None:
    """In a rehearsal (the console's dev clock) authenticator apps keep the real time, as the code
    prompt knows (``Context.authenticators``): the code refused is the one the app shows then, not
    the one for Signpost's moved time."""
    authenticator = await ensure_enrolled(app, "P002")
    moved = app.ctx.clock.now()
    of_the_moved_time = authenticator.at(moved)

    def accepted_at(real: datetime) -> set[str]:
        return {authenticator.at(real + timedelta(seconds=step)) for step in (-30, 0, 30)}

    # A day on, or a step or two later should a code then be the moved time's by chance.
    real = next(
        moved + timedelta(days=1, seconds=30 * n)
        for n in range(5)
        if of_the_moved_time not in accepted_at(moved + timedelta(days=1, seconds=30 * n))
    )
    app.ctx.authenticators = FakeClock(real)
    shown_by_the_app = authenticator.at(real)
    refused = await fresh_say(app, "P002", f"message {REF} {CALL_ME}, verification {shown_by_the_app}")
    assert refused.outcome is Outcome.INVALID and refused.text.startswith(CODE_REFUSED), refused.text
    relayed = await fresh_say(app, "P002", f"message {REF} {CALL_ME}, verification {of_the_moved_time}")
    assert relayed.outcome is Outcome.DONE, relayed.text
