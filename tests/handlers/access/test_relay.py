"""Issue 18 part 2: the blind relay for shielded children, through the dispatcher on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update

from bot.app import Signpost
from handlers.access.relay import GONE, IDENTITY_REFUSED, READ_USAGE, REPLY_USAGE
from handlers.access.screening import CODE_REFUSED
from handlers.clock import FakeClock
from handlers.stepup.flow import REUSED
from handlers.vocabulary import Action, Outcome
from store.db import sqlite_path
from store.tables.people import RelayMessage
from store.tables.register import Child, ChildKey
from tests.access_helpers import audit_events, decide, fresh_say, load_access, notices, request_access, search_as
from tests.bot.log_stream import logged_at
from tests.factories import NO_INVOLVEMENTS, SHIELDED, say
from tests.stepup_helpers import answer_challenges, code_now, ensure_enrolled, wrong_code

MARKER = "section 47 enquiry zebrafinch, call me on 0161 496 0002"
ANSWER = "happy to talk kingfisher, ring after 3pm"
LEE = ("S001", "Lee", "Hart", "Health visit", "Southvale NHS Trust", "0113 496 0001", "lee.hart")


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    return signpost


async def relays(app: Signpost) -> list[RelayMessage]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(RelayMessage).order_by(RelayMessage.id))).scalars())


def shown(reply: object) -> str:
    return repr(reply)


async def test_a_shielded_answer_offers_send_a_message(app: Signpost) -> None:
    reply = await search_as(app, "P002", SHIELDED)
    assert reply.outcome is Outcome.SHIELDED
    assert [b.action_id for b in reply.buttons] == ["request_access", "relay_message"]
    assert reply.buttons[1].command == f"message {SHIELDED}" and reply.buttons[1].input is not None


async def test_relay_round_trip_reveals_nothing_of_the_recipient_to_the_sender(app: Signpost) -> None:
    """P002 writes; the lead professional (S001) reads it with P002's contact and answers; P002 is told
    'delivered', then 'answered' with the answer, and never who answered."""
    sent = await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    assert sent.outcome is Outcome.DONE and "Message 1 about 999 000 0050 delivered" in sent.text
    [notice] = [n for n in await notices(app, "S001") if n.kind == "relay_message"]
    assert "999 000 0050" in notice.text and "zebrafinch" not in notice.text
    assert [b.command for b in notice.buttons] == ["relay 1", "reply 1"]

    read = await fresh_say(app, "S001", "relay 1")
    assert read.outcome is Outcome.INFO
    assert f"Message: {MARKER}" in read.lines
    assert read.lines[0].startswith("From: Priya Shah, School nurse, Northshire School Health (0161 496 0002")

    answered = await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    assert answered.outcome is Outcome.DONE
    [told] = [n for n in await notices(app, "P002") if n.kind == "relay_answered"]
    assert told.text == "Your message 1 about 999 000 0050 was answered. Send 'relay 1' to read the answer."

    status = await fresh_say(app, "P002", "relay 1")
    assert any(line.startswith("Status: answered") and line.endswith(ANSWER) for line in status.lines)
    sender_saw = " ".join([shown(sent), shown(told), shown(status)])
    assert not any(word in sender_saw for word in LEE), "the sender never learns who received or answered"

    events = await audit_events(app, Action.RELAY_MESSAGE.value)
    assert [(e.actor_id, e.actor_la, e.outcome, e.subject_refs) for e in events] == [
        ("P002", "Northshire", "done", SHIELDED),
        ("S001", "Southvale", "done", SHIELDED),
    ]
    assert all(e.terms is None and "zebrafinch" not in e.detail for e in events)


async def test_before_an_answer_the_sender_sees_delivered_only(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    status = await fresh_say(app, "P002", "relay 1")
    assert "Status: delivered" in status.lines
    stranger = await fresh_say(app, "P003", "relay 1")
    assert stranger.outcome is Outcome.INVALID and "zebrafinch" not in shown(stranger)
    not_theirs = await fresh_say(app, "P002", "reply 1 I answer myself")
    assert not_theirs.outcome is Outcome.INVALID


@pytest.mark.parametrize("slip", ["about Mia", "re MIA STONE", "born 30 June", "dob 30/06", "birthday June 30th"])
async def test_a_message_that_identifies_the_child_is_refused(app: Signpost, slip: str) -> None:
    reply = await fresh_say(app, "P002", f"message {SHIELDED} section 47 enquiry {slip}")
    assert reply.outcome is Outcome.INVALID and reply.text.startswith(IDENTITY_REFUSED)
    assert await relays(app) == [] and [n for n in await notices(app) if n.kind == "relay_message"] == []


@pytest.mark.parametrize("slip", ["postcode S1 4ZZ", "at s14zz", "born 30/06/2015", "dob 2015-06-30", "30.06.2015"])
async def test_a_message_giving_the_childs_full_details_is_refused_as_any_childs(app: Signpost, slip: str) -> None:
    """A full date, postcode or reference gets the answer any child's does, so it answers no guess."""
    reply = await fresh_say(app, "P002", f"message {SHIELDED} section 47 enquiry {slip}")
    assert reply.outcome is Outcome.INVALID and "perhaps another child's" in reply.text, reply.text
    assert await relays(app) == [] and [n for n in await notices(app) if n.kind == "relay_message"] == []


async def test_an_answer_that_identifies_the_child_is_refused(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    reply = await fresh_say(app, "S001", "reply 1 yes, Mia is known to us")
    assert reply.outcome is Outcome.INVALID and reply.text.startswith(IDENTITY_REFUSED)
    assert [n for n in await notices(app, "P002") if n.kind == "relay_answered"] == []


@pytest.mark.parametrize(
    ("slip", "named"),
    [
        ("re 999 000 0050", False),
        ("record 9990000050", False),
        ("ref 999-000-0050", False),
        ("9 9 9 0 0 0 0 0 5 0", False),
        ("re 999 000 005", True),  # its first nine digits: this child's alone
    ],
)
async def test_a_message_giving_the_childs_reference_is_refused(app: Signpost, slip: str, named: bool) -> None:
    """The reference goes before the text; a message that gives it again is refused: in full, as any
    child's reference is (answering no guess), and its first nine digits as naming the child."""
    reply = await fresh_say(app, "P002", f"message {SHIELDED} section 47 enquiry {slip}")
    assert reply.outcome is Outcome.INVALID, reply.text
    assert reply.text.startswith(IDENTITY_REFUSED) if named else "perhaps another child's" in reply.text, reply.text
    assert await relays(app) == [] and [n for n in await notices(app) if n.kind == "relay_message"] == []


async def test_an_answer_giving_the_childs_reference_is_refused_and_a_phone_number_is_not(app: Signpost) -> None:
    """The sender may have found the record by name and date of birth, never told its reference: the
    lead professional's answer may not give it. A phone number is passed on as written."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    for answer in ("I know 999 000 0050 well", "yes, 999.000.0050 is ours"):
        reply = await fresh_say(app, "S001", f"reply 1 {answer}")
        assert reply.outcome is Outcome.INVALID and "reference, perhaps another child's" in reply.text, answer
    assert [n for n in await notices(app, "P002") if n.kind == "relay_answered"] == []
    fine = await fresh_say(app, "S001", "reply 1 please ring me on 01632 960 001")
    assert fine.outcome is Outcome.DONE
    status = await fresh_say(app, "P002", "relay 1")
    assert any(line.endswith("please ring me on 01632 960 001") for line in status.lines)


async def test_three_messages_a_day_per_sender_and_child(app: Signpost, clock: FakeClock) -> None:
    for n in range(3):
        assert (await fresh_say(app, "P002", f"message {SHIELDED} {MARKER} {n}")).outcome is Outcome.DONE
    fourth = await fresh_say(app, "P002", f"message {SHIELDED} {MARKER} again")
    assert fourth.outcome is Outcome.REFUSED and "3 messages" in fourth.text
    assert (await fresh_say(app, "P003", f"message {SHIELDED} {MARKER}")).outcome is Outcome.DONE, "per sender"
    clock.advance(hours=25)  # step-up codes moved the clock on a little between the three
    assert (await fresh_say(app, "P002", f"message {SHIELDED} {MARKER} next day")).outcome is Outcome.DONE
    assert len(await relays(app)) == 5


LIMITED = (
    "Signpost has relayed 3 messages from you about 999 000 0050 in the last 24 hours, the most it relays about "
    "one record in a day. This one was not read or passed on. Please wait for an answer, or request access."
)
# Once three texts about the child were refused: what happened, and that requests are held too.
REFUSED_THREE = (
    "3 of your texts about 999 000 0050 were refused in the last 24 hours because they named the child or gave "
    "their date of birth, postcode or reference, so Signpost reads none of your texts about it until the first of "
    "them is 24 hours old: this one was not read or passed on. Please wait for an answer, or contact your duty "
    "manager."
)
RIGHT_GUESS = f"{MARKER} re Mia Stone"  # the shielded child's name: the filter would refuse it
WRONG_GUESS = f"{MARKER} re Ava Price"


async def test_once_the_limit_is_reached_every_message_gets_the_limit_text_whatever_it_says(app: Signpost) -> None:
    """The review's oracle: after 3 messages a guess at the child's name and a wrong guess were answered
    differently. The limit is now checked before the text is read, so both get the same answer."""
    for n in range(3):
        assert (await fresh_say(app, "P002", f"message {SHIELDED} {MARKER} {n}")).outcome is Outcome.DONE
    right = await fresh_say(app, "P002", f"message {SHIELDED} {RIGHT_GUESS}")
    wrong = await fresh_say(app, "P002", f"message {SHIELDED} {WRONG_GUESS}")
    assert (right.outcome, right.text) == (wrong.outcome, wrong.text) == (Outcome.REFUSED, LIMITED)
    assert len(await relays(app)) == 3


async def test_a_message_refused_for_naming_the_child_counts_toward_the_three_a_day(
    app: Signpost, clock: FakeClock
) -> None:
    """Refusals are no free guesses: three of them use up the day, after which even a clean message, a
    right guess and a wrong one are all answered with the limit text; each refusal is audited as one."""
    for slip in ("about Mia", "born 30 June", "the Stone family"):
        refused = await fresh_say(app, "P002", f"message {SHIELDED} section 47 enquiry {slip}")
        assert refused.outcome is Outcome.INVALID and refused.text.startswith(IDENTITY_REFUSED)
    for sent in (MARKER, RIGHT_GUESS, WRONG_GUESS):
        after = await fresh_say(app, "P002", f"message {SHIELDED} {sent}")
        assert (after.outcome, after.text) == (Outcome.REFUSED, REFUSED_THREE), sent
    assert await relays(app) == []
    events = await audit_events(app, Action.RELAY_MESSAGE.value)
    assert [(e.outcome, e.detail, e.subject_refs) for e in events] == [
        *[("invalid", "identity refused: message", SHIELDED)] * 3,
        *[("refused", "relay rate limit", SHIELDED)] * 3,
    ]
    clock.advance(hours=25)
    assert (await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")).outcome is Outcome.DONE


async def test_refused_and_delivered_messages_share_the_limit(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {RIGHT_GUESS}")
    for n in range(2):
        assert (await fresh_say(app, "P002", f"message {SHIELDED} {MARKER} {n}")).outcome is Outcome.DONE
    last = await fresh_say(app, "P002", f"message {SHIELDED} {WRONG_GUESS}")
    assert last.outcome is Outcome.REFUSED
    assert "relayed 2 messages from you about 999 000 0050 in the last 24 hours and refused 1 of your" in last.text
    other = await fresh_say(app, "P003", f"message {SHIELDED} {MARKER}")
    assert other.outcome is Outcome.DONE, "one sender's refusals do not limit another"


async def test_an_answered_message_is_not_screened_again(app: Signpost) -> None:
    """A second answer is told 'already answered' before its text is read: an answered message is no oracle."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    right = await fresh_say(app, "S001", "reply 1 yes, Mia is known to us")
    wrong = await fresh_say(app, "S001", "reply 1 yes, Ava is known to us")
    assert (right.outcome, right.text) == (wrong.outcome, wrong.text)
    assert right.outcome is Outcome.REFUSED and "already been answered" in right.text


async def test_a_recipients_refused_answers_are_bounded_too(app: Signpost) -> None:
    """Three refused answers about one child, then any answer gets the same refusal, unread."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    for slip in ("Mia is known", "born 30.06", "the Stone family"):
        assert (await fresh_say(app, "S001", f"reply 1 {slip}")).outcome is Outcome.INVALID
    right = await fresh_say(app, "S001", "reply 1 Mia Stone is known to us")
    wrong = await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    assert (right.outcome, right.text) == (wrong.outcome, wrong.text)
    assert right.outcome is Outcome.REFUSED and "'relay 1'" in right.text
    assert [n for n in await notices(app, "P002") if n.kind == "relay_answered"] == []


async def test_the_text_is_sealed_at_rest(app: Signpost, db_url: str) -> None:
    """Neither the message nor the answer is stored in plain: not in any column, nor in the SQLite file."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    await app.ctx.audit.settle()
    async with app.ctx.db.read() as session:
        [row] = (await session.execute(select(RelayMessage))).scalars().all()
        assert b"zebrafinch" not in row.text and row.reply is not None and b"kingfisher" not in row.reply
        bodies = " ".join((await session.execute(text("SELECT body FROM notices"))).scalars())
        details = " ".join((await session.execute(text("SELECT detail FROM audit_events"))).scalars())
    assert "zebrafinch" not in bodies + details and "kingfisher" not in bodies + details
    path = sqlite_path(db_url)
    if path is not None:
        await app.ctx.db.close()
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"zebrafinch" not in raw and b"kingfisher" not in raw


async def test_the_messages_die_with_the_childs_key(app: Signpost) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    async with app.ctx.db.write() as session:
        await session.execute(delete(ChildKey).where(ChildKey.child_ref == int(SHIELDED)))
    status = await fresh_say(app, "P002", "relay 1")
    assert f"You wrote: {GONE}" in status.lines
    assert "zebrafinch" not in shown(status) and "kingfisher" not in shown(status)


async def test_with_no_lead_professional_the_authoritys_duty_managers_receive_it(app: Signpost) -> None:
    async with app.ctx.db.write() as session:
        await session.execute(update(Child).where(Child.ref == int(NO_INVOLVEMENTS)).values(shielded=True))
    sent = await fresh_say(app, "P002", f"message {NO_INVOLVEMENTS} {MARKER}")
    assert sent.outcome is Outcome.DONE and "duty manager" not in sent.text
    assert sorted(n.recipient_id for n in await notices(app) if n.kind == "relay_message") == ["DM02", "DM03"]


async def test_a_looker_with_a_grant_or_an_open_record_is_sent_to_the_signposts(app: Signpost) -> None:
    await request_access(app, "P002", SHIELDED)
    await decide(app, "DM02", "approve", 1)
    granted = await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    assert granted.outcome is Outcome.INFO and "You have access" in granted.text
    assert await relays(app) == []


async def test_duty_managers_see_traffic_for_their_authority_without_contents(app: Signpost, clock: FakeClock) -> None:
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    clock.advance(hours=2)
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER} 2")
    await fresh_say(app, "S001", f"reply 2 {ANSWER}")
    clock.advance(minutes=30)
    seen = await fresh_say(app, "DM02", "relays")
    assert seen.outcome is Outcome.INFO
    assert seen.text == "2 relay messages in the last 30 days (never their contents, nor who received them):"
    [line] = seen.lines
    assert line.startswith("• 999 000 0050: P002 → the lead professional: 2 sent, 1 answered, 1 waiting (oldest 2 h ")
    assert line.endswith("; last sent 30 min ago")
    assert "zebrafinch" not in shown(seen) and "kingfisher" not in shown(seen)
    other = await fresh_say(app, "DM01", "relays")
    assert other.outcome is Outcome.INFO and other.lines == ()
    refused = await fresh_say(app, "P003", "relays")
    assert refused.outcome is Outcome.REFUSED


async def test_a_duty_manager_who_messages_learns_nothing_of_the_lead_professional(app: Signpost) -> None:
    """A duty manager of the child's authority, with no grant, sends a message about a shielded
    child: neither their answer, nor ``relays`` (theirs or a colleague's), nor ``relay 1`` names
    the lead professional (S001, Lee Hart) — the relay is blind to duty managers too."""
    found = await search_as(app, "DM02", SHIELDED)
    assert found.outcome is Outcome.SHIELDED and not found.signposts
    sent = await fresh_say(app, "DM02", f"message {SHIELDED} {MARKER}")
    assert sent.outcome is Outcome.DONE
    mine = await fresh_say(app, "DM02", "relays")
    colleague = await fresh_say(app, "DM03", "relays")
    status = await fresh_say(app, "DM02", "relay 1")
    assert [line.split(": 1 sent")[0] for line in (*mine.lines, *colleague.lines)] == [
        "• 999 000 0050: DM02 → the lead professional"
    ] * 2
    seen = " ".join(shown(r) for r in (sent, mine, colleague, status))
    assert not [word for word in LEE if word in seen], "nobody but the recipient learns who the lead professional is"
    assert (await fresh_say(app, "S001", "relay 1")).outcome is Outcome.INFO, "the lead professional has it"


async def test_only_a_reading_is_marked_as_not_to_stay_in_a_chat(app: Signpost) -> None:
    """``relay ID`` (Spec.transient) answers with Reply.transient set to the command that shows it again,
    for the recipient and the sender alike; sending, answering and anything else are not marked."""
    sent = await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    read = await fresh_say(app, "S001", "relay 1")
    answered = await fresh_say(app, "S001", f"reply 1 {ANSWER}")
    status = await fresh_say(app, "P002", "relay 1")
    assert f"Message: {MARKER}" in read.lines and read.transient == "relay 1"
    assert any(ANSWER in line for line in status.lines) and status.transient == "relay 1"
    assert sent.transient is None and answered.transient is None
    assert (await search_as(app, "P002", SHIELDED)).transient is None
    dispatcher = app.dispatcher
    assert dispatcher.transient("relay 1") and dispatcher.transient("RELAY 7")
    assert not [
        t for t in ("message 1 hello there", "reply 1 ok", "relays", "help", SHIELDED) if dispatcher.transient(t)
    ]


async def test_help_says_what_relays_shows_once(app: Signpost) -> None:
    """A duty manager's help gives relays one line that says its period and scope once."""
    lines = (await say(app, "DM01", "help")).lines
    assert [line for line in lines if line.startswith("• relays")] == [
        "• relays: relay traffic about your authority's children in the last 30 days "
        "(counts, senders and ages, never who received them; an admin sees every authority)"
    ]


NOT_A_MESSAGE_NUMBER = "Please give the message number, e.g. 7."


@pytest.mark.parametrize(
    ("typed", "usage", "action"),
    [
        ("relay 9223372036854775808", READ_USAGE, Action.RELAY_READ),  # MAX_ID + 1
        ("relay 99999999999999999999", READ_USAGE, Action.RELAY_READ),
        ("relay " + "9" * 3990, READ_USAGE, Action.RELAY_READ),  # the longest a command may be (4,000)
        ("relay \u00b2", READ_USAGE, Action.RELAY_READ),  # "²".isdigit() is true; int("²") raised
        ("reply 9223372036854775808 happy to talk, ring after 3pm", REPLY_USAGE, Action.RELAY_MESSAGE),
        ("reply \u00b2 happy to talk, ring after 3pm", REPLY_USAGE, Action.RELAY_MESSAGE),
    ],
)
async def test_a_message_number_no_database_can_hold_gets_the_usage_not_an_error(
    app: Signpost, typed: str, usage: str, action: Action
) -> None:
    """A relay id over 2**63 - 1 reached the driver (SQLite: "Python int too large to convert",
    asyncpg: out of int64 range) and the person was told something went wrong; "²" passed
    ``isdigit`` and ``int`` raised. Now the strict number parser answers with the command's usage,
    audited once, and nothing is logged but the command's own line."""
    with logged_at("info") as log:
        reply = await fresh_say(app, "P002", typed)
    assert (reply.outcome, reply.text) == (Outcome.INVALID, f"{NOT_A_MESSAGE_NUMBER}\n\n{usage}")
    [event] = [e for e in await audit_events(app, action.value) if e.actor_id == "P002"]
    assert (event.outcome, event.detail) == ("invalid", "usage")
    assert "command_failed" not in log.events() and "Traceback" not in log.text


@pytest.mark.parametrize("typed", ["reply 1", "reply 1   ", "reply 2"])
async def test_a_reply_with_no_text_gets_the_usage_before_any_message_is_looked_up(app: Signpost, typed: str) -> None:
    """`reply 1` with the answer left off was told "There is no relayed message 1 for you." (or, to
    its recipient, to write at least two characters): the missing text is what is wrong, whether
    the message is theirs or not, so it is said with the command's usage, before any is looked up."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    for who in ("S001", "P002"):  # message 1's recipient, and its sender (for whom it is no answer)
        reply = await fresh_say(app, who, typed)
        assert (reply.outcome, reply.text) == (
            Outcome.INVALID,
            f"{NO_ANSWER_TEXT.format(id=typed.split()[1])}\n\n{REPLY_USAGE}",
        )
    events = [e for e in await audit_events(app, Action.RELAY_MESSAGE.value) if e.actor_id in ("S001", "P002")]
    assert [(e.actor_id, e.outcome, e.detail) for e in events][1:] == [
        ("S001", "invalid", "usage"),
        ("P002", "invalid", "usage"),
    ]
    assert [r.replied_at for r in await relays(app)] == [None]


NO_ANSWER_TEXT = "Please write your answer after the message number: reply {id} TEXT."


async def test_the_largest_message_number_is_looked_up_and_found_to_be_nobody_s(app: Signpost) -> None:
    """2**63 - 1 itself fits both databases' id columns: it is looked up, not refused."""
    reply = await fresh_say(app, "P002", "relay 9223372036854775807")
    assert (reply.outcome, reply.text) == (Outcome.INVALID, "There is no relayed message 9223372036854775807 for you.")


# How a person might put the code their authenticator app shows into a message (``code``: those six
# digits; ``a`` and ``b``: its halves).
CODE_SLIPS = (
    "please call me back, verification {code}",
    "verification {a} {b}",  # as the app shows it
    "code {a}-{b}",
    "call me on 01632 {code}",  # six digits at the end of a phone number are still the code
)


@pytest.mark.parametrize("slip", CODE_SLIPS)
async def test_a_message_holding_the_senders_current_code_is_refused_and_nothing_is_relayed(
    app: Signpost, slip: str
) -> None:
    """The hostile-input tester's case: a message holding the code the sender's app shows now was
    relayed, and the duty manager read the code in 'relay'. Now it is refused, kindly, and neither
    the answer, the audit event nor any log line holds the code."""
    authenticator = await ensure_enrolled(app, "P002")
    code = code_now(app, authenticator)
    with logged_at("debug") as log:
        reply = await fresh_say(app, "P002", f"message {SHIELDED} {slip.format(code=code, a=code[:3], b=code[3:])}")
    assert reply.outcome is Outcome.INVALID, reply.text
    assert reply.text.startswith(CODE_REFUSED) and "Nothing was passed on or kept." in reply.text, reply.text
    assert code not in shown(reply) and code not in log.written
    assert await relays(app) == [] and [n for n in await notices(app) if n.kind == "relay_message"] == []
    [event] = [e for e in await audit_events(app, Action.RELAY_MESSAGE.value) if e.actor_id == "P002"]
    assert (event.outcome, event.detail, event.subject_refs) == ("invalid", "code refused: message", SHIELDED)


async def test_a_code_of_the_step_either_side_is_refused_as_the_code_prompt_accepts_it(
    app: Signpost, clock: FakeClock
) -> None:
    """The window the code prompt accepts (one 30-second step either way) is the window screened."""
    authenticator = await ensure_enrolled(app, "P002")
    for delta in (-30, 30):
        code = authenticator.at(clock.now() + timedelta(seconds=delta))
        reply = await fresh_say(app, "P002", f"message {SHIELDED} please call, verification {code}")
        assert reply.outcome is Outcome.INVALID and reply.text.startswith(CODE_REFUSED), (delta, reply.text)
    assert await relays(app) == []


async def test_a_code_found_in_a_message_is_spent_and_the_code_prompt_refuses_it_as_used(
    app: Signpost, clock: FakeClock
) -> None:
    """Written into a message, the code may have been read by others, and free text must be no way to
    try codes past the prompt's pause after 5 wrong ones: the prompt takes it no more, as a code used
    already. Nothing else changes: no wrong code is counted, and the sender is still fresh."""
    authenticator = await ensure_enrolled(app, "P002")
    clock.advance(seconds=30)  # a code not used yet
    code = code_now(app, authenticator)
    refused = await fresh_say(app, "P002", f"message {SHIELDED} please call, verification {code}")
    assert refused.outcome is Outcome.INVALID and refused.text.startswith(CODE_REFUSED), refused.text
    assert "that code will not be accepted any more" in refused.text
    again = await say(app, "P002", "code", code=code)
    assert (again.outcome, again.text) == (Outcome.INVALID, REUSED)
    assert (await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")).outcome is Outcome.DONE


async def test_a_message_that_waited_for_a_code_is_screened_for_the_code_when_it_runs(
    app: Signpost, clock: FakeClock
) -> None:
    """Sent once the sender's last code is stale, the message waits for a new one (parked, sealed); it
    is screened when it runs, and the code it holds (the sender answered the prompt in time) is refused."""
    authenticator = await ensure_enrolled(app, "P002")
    clock.advance(minutes=31)
    code = code_now(app, authenticator)
    asked = await say(app, "P002", f"message {SHIELDED} please call, verification {code}")
    assert asked.outcome is Outcome.CHALLENGED, asked.text
    reply = await answer_challenges(app, "P002", asked)
    assert reply.outcome is Outcome.INVALID and reply.text.startswith(CODE_REFUSED), reply.text
    assert await relays(app) == []


async def test_six_digits_that_are_not_the_senders_current_code_are_relayed(app: Signpost, clock: FakeClock) -> None:
    """Any other six digits go on as written: a number that is no code the app shows now, and the
    sender's code from two minutes ago (no longer accepted by the code prompt either)."""
    authenticator = await ensure_enrolled(app, "P002")
    valid = {authenticator.at(clock.now() + timedelta(seconds=step)) for step in (-30, 0, 30)}
    old = next(code for m in range(2, 9) if (code := authenticator.at(clock.now() - timedelta(minutes=m))) not in valid)
    other = wrong_code(app, authenticator)
    for typed in (f"call me on 01632 {other}", f"verification {old}"):
        reply = await fresh_say(app, "P002", f"message {SHIELDED} {typed}")
        assert reply.outcome is Outcome.DONE, (typed, reply.text)
    assert len(await relays(app)) == 2


async def test_an_answer_holding_the_answerers_current_code_is_refused(app: Signpost) -> None:
    """The answer goes to the sender: it may not carry the answerer's code either."""
    await fresh_say(app, "P002", f"message {SHIELDED} {MARKER}")
    authenticator = await ensure_enrolled(app, "S001")
    code = code_now(app, authenticator)
    reply = await fresh_say(app, "S001", f"reply 1 happy to talk, my code is {code[:3]} {code[3:]}")
    assert reply.outcome is Outcome.INVALID and reply.text.startswith(CODE_REFUSED), reply.text
    assert code not in shown(reply)
    assert [n for n in await notices(app, "P002") if n.kind == "relay_answered"] == []
