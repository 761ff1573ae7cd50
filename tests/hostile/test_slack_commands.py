"""Hostile command texts over signed Slack requests: every one answered once, audited once, never a
crash, a traceback or a child's identity in a log line or a message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from store.tables.audit import AuditEvent
from tests.bot.conftest import SlackHarness
from tests.bot.slack.slack_requests import SlackUser
from tests.hostile import strategies as hs
from tests.hostile.observe import ACCEPTED_WRONGLY, IDENTITY_VALUES, Check, LogTap, shown
from tests.hostile.slack_world import (
    ADMIN,
    LINKED,
    MANAGER,
    NURSE,
    STRANGER,
    check_answered_once,
    populate,
    send_command,
)
from tests.spread import either_store

# Commands anyone may send: everything else from someone not registered must be refused.
FOR_ANYONE = frozenset({"help", "usage", "register"})


@pytest.fixture
async def world(slack_app: SlackHarness) -> AsyncIterator[SlackHarness]:
    yield await populate(slack_app)


async def one_command(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str, kind: str
) -> tuple[Check, AuditEvent | None]:
    check = Check(kind, shown((user.user_id, text)))
    sent, path = await send_command(world, logs, user, text)
    event = check_answered_once(check, sent, user, path, text)
    if event is not None and user is STRANGER and event.action not in FOR_ANYONE:
        check.expect(event.outcome == "refused", ACCEPTED_WRONGLY, f"unlinked user got {event.action}/{event.outcome}")
    return check, event


@given(user=st.sampled_from((*LINKED, STRANGER)), text=hs.hostile_text)
async def test_hostile_command_texts_are_answered_and_audited_exactly_once(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str
) -> None:
    """Unicode, controls, bidi, SQL/LIKE/format strings and markup, after any keyword, from linked
    users and a stranger: one answer, one audit event, no crash, no traceback, no identity out."""
    (await one_command(world, logs, user, text, "slack-command"))[0].settle()


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@given(user=st.sampled_from((*LINKED, STRANGER)), text=hs.long_text())
async def test_300k_character_commands_are_answered_and_audited_exactly_once(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str
) -> None:
    (await one_command(world, logs, user, text, "slack-command-300k"))[0].settle()


@given(user=st.sampled_from(LINKED), command=hs.wrong_arity())
async def test_every_command_with_the_wrong_number_of_arguments_gets_an_answer_not_an_action(
    world: SlackHarness, logs: LogTap, user: SlackUser, command: tuple[str, str]
) -> None:
    """Too few or too many (junk) arguments: answered and audited once, and never reported done."""
    keyword, text = command
    check, event = await one_command(world, logs, user, text, "slack-command-wrong-arity")
    if keyword in hs.WRITES and event is not None:
        check.expect(event.outcome != "done", ACCEPTED_WRONGLY, f"{text!r} was done")
    check.settle()


# -- known defects (issue 14, defects 2 and 3): their own properties, so each shows by name ----------


@given(user=st.sampled_from(LINKED), text=hs.payload_text)
async def test_commands_mentioning_payload_are_answered_and_audited_exactly_once(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str
) -> None:
    """Defect 2: Bolt's ``"payload" in body`` heuristic dropped these (404, no reply, no audit)."""
    (await one_command(world, logs, user, text, "slack-command-payload"))[0].settle()


@given(user=st.sampled_from(LINKED), text=hs.unusual_numbers)
async def test_unusual_digits_and_early_birth_years_get_usage_help_not_a_crash(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str
) -> None:
    """Defect 3: ``history ²`` and a birth year below 1000 answered "something went wrong"."""
    (await one_command(world, logs, user, text, "slack-command-digits"))[0].settle()


# -- numbers and hidden characters (the grammar's two hardenings): every slot, every command --------


@example(user=NURSE, text="relay 99999999999999999999")
@example(user=NURSE, text="reply 9223372036854775808 thanks, please ring me")
@example(user=MANAGER, text="approve R" + "9" * 5000)
@example(user=NURSE, text="Zed Quill 31/02/2015")
@example(user=NURSE, text="Zed Quill 29/02/2015")
@example(user=NURSE, text="Zed Quill 01/01/0000")
@example(user=NURSE, text="Zed Quill 01/01/9999")
@example(user=ADMIN, text="decommission schedule 01/01/9999")
@given(user=st.sampled_from(LINKED), text=hs.numbers_in_every_slot)
async def test_numbers_no_slot_can_hold_are_answered_never_crashed_nor_done(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str
) -> None:
    """Past 2**63 - 1 (a relay id reached the database, which refused it: "something went wrong"),
    past int()'s 4,300 digits, signed, other notations, other scripts' digits, impossible and far
    dates, in every place a command reads a number: answered and audited once, never done."""
    check, event = await one_command(world, logs, user, text, "slack-command-numbers")
    check.expect(event is None or event.outcome != "done", ACCEPTED_WRONGLY, f"{text[:80]!r} was done")
    check.settle()


# Refused by grammar.parse before the store (tests/handlers/test_hidden_characters.py): one store shows it
# (tests/spread.py). The other properties here reach the store (LIKE and SQL text, numbers past 2**63): both.
@either_store
@example(user=NURSE, text="request 999 000 0050 section 47\x00 enquiry")
@example(user=NURSE, text="message 999 000 0050 call me \u202e2000 694 1610 no")
@example(user=MANAGER, text="deny 1 please ask the\u200b lead professional")
@example(user=NURSE, text="relay 1\x1f")
@given(user=st.sampled_from((*LINKED, STRANGER)), text=hs.hidden_command())
async def test_a_hidden_character_in_any_command_gets_usage_help(
    world: SlackHarness, logs: LogTap, user: SlackUser, text: str
) -> None:
    """A control character (but tab and line breaks), a bidi mark or a zero-width or other format
    character anywhere in any command: the command is not read, the answer is usage help."""
    check, event = await one_command(world, logs, user, text, "slack-command-hidden")
    if event is not None:
        check.expect(
            (event.action, event.outcome) == ("usage", "invalid"), ACCEPTED_WRONGLY, f"{event.action}/{event.outcome}"
        )
    check.settle()


# A child's name, date of birth (any spelling) or postcode that fits in one word, as a duty manager
# might type it after `reset` in place of a practitioner id.
ONE_WORD_IDENTITIES = sorted(v for v in IDENTITY_VALUES if " " not in v)


@given(value=st.sampled_from(ONE_WORD_IDENTITIES))
async def test_a_childs_details_typed_after_reset_are_in_no_log_line_nor_audit_event(
    world: SlackHarness, logs: LogTap, value: str
) -> None:
    """`reset WORD` from a stepped-up duty manager, WORD a child's name, birth date or postcode: the
    refusal is answered and audited once, as a reset, and the word is in no log line (each command's
    ``command`` line among them) and in no audit detail."""
    check, event = await one_command(world, logs, MANAGER, f"reset {value}", "slack-command-reset")
    check.expect(event is not None and event.action == "totp_reset", ACCEPTED_WRONGLY, "not audited as a reset")
    check.settle()
