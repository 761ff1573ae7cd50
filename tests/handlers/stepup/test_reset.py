"""`reset PRACTITIONER_ID`: a practitioner's own duty manager resets their authenticator in chat.

Through the real dispatcher and policy chain, on SQLite and PostgreSQL: what the duty manager is
told, who is refused (in the same words whether or not the id is in the register), the approval
step-up, the audit event and the notice the practitioner gets, then their new enrolment.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.every_contact import EVERY_ACCOUNT
from handlers.examples import for_any_store
from handlers.help import help_lines
from handlers.misuse.monitor import sweep
from handlers.operator import people
from handlers.operator.common import audited
from handlers.stepup import flow as stepup
from handlers.stepup import reset
from handlers.vocabulary import Action, Actor, Outcome, Role
from store.people import credentials, practitioners
from store.people.credentials import ACTIVE, DISABLED, Failure
from store.tables.audit import AuditEvent
from tests.access_helpers import audit_events, load_access, notices
from tests.factories import AMY, say
from tests.stepup_helpers import (
    answer_challenges,
    code_now,
    enrol_and_step_up,
    ensure_enrolled,
    five_wrong_codes,
    totp_from,
)


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    """The standard feeds plus Southvale's duty managers (DM02, DM03); DM01 is Northshire's."""
    await load_access(signpost)
    return signpost


async def disable(app: Signpost, practitioner_id: str) -> None:
    """Switch code checks off for an enrolled practitioner, as the hundredth wrong code in a row does."""
    await enrol_and_step_up(app, practitioner_id)
    async with app.ctx.db.write() as session:
        failure = await credentials.record_failure(
            session, practitioner_id, app.ctx.clock.now(), lock_after=1000, lock_for=timedelta(0), disable_after=1
        )
    assert failure is not None and failure.newly_disabled


async def state_of(app: Signpost, practitioner_id: str) -> str | None:
    async with app.ctx.db.read() as session:
        found = await credentials.get(session, practitioner_id)
    return None if found is None else found.state


async def texts_to(app: Signpost, recipient: str, kind: str) -> list[str]:
    return [n.text for n in await notices(app, recipient) if n.kind == kind]


async def enrols_again(app: Signpost, practitioner_id: str) -> None:
    """``enrol`` gives a new QR code, its first code finishes the set-up, and a search answers."""
    enrolled = await say(app, practitioner_id, "enrol")
    assert enrolled.outcome is Outcome.DONE and enrolled.challenge is not None, enrolled
    app.ctx.clock.advance(seconds=30)  # type: ignore[attr-defined]  # a new time step for the new code
    code = code_now(app, totp_from(enrolled))
    done = await say(app, practitioner_id, "code", code=code, challenge_id=enrolled.challenge.challenge_id)
    assert done.outcome is Outcome.DONE and "You're set up" in done.text, done
    assert (await say(app, practitioner_id, AMY)).outcome is Outcome.ANSWERED


async def test_a_duty_manager_resets_a_disabled_practitioner_who_then_enrols(app: Signpost) -> None:
    """DM01 resets P003, whose code checks are switched off: done, with the reminder to have checked
    who asked; P003 is told to send enrol, and enrols; one audit event names P003 and no secret."""
    await disable(app, "P003")
    assert (await say(app, "P003", "enrol")).text == stepup.DISABLED_TEXT.text  # no way round it alone
    await enrol_and_step_up(app, "DM01")
    reply = await say(app, "DM01", "reset p003")
    assert reply.outcome is Outcome.DONE, reply
    assert "P003" in reply.text and "by phone or in person" in reply.text and "enrol" in reply.text
    assert await state_of(app, "P003") is None
    [told] = await texts_to(app, "P003", reset.NOTICE_KIND)
    assert told == (
        "Your Signpost authenticator was reset by your duty manager. If you did not ask for this, tell a Signpost "
        "admin at once. To see results again, send: enrol"
    )
    [event] = await audit_events(app, "totp_reset")
    assert (event.outcome, event.actor_id, event.detail) == ("done", "DM01", "credential removed for P003")
    await enrols_again(app, "P003")


async def test_a_locked_practitioner_is_reset_and_enrols_before_the_pause_ends(app: Signpost, clock: FakeClock) -> None:
    """Five wrong codes pause P002's code entry and DM01 hears of it; DM01 resets, P002 enrols at once."""
    await five_wrong_codes(app, clock, "P002")
    assert "P002" in " ".join(await texts_to(app, "DM01", "stepup_locked"))
    await enrol_and_step_up(app, "DM01")
    assert (await say(app, "DM01", "reset P002")).outcome is Outcome.DONE
    await enrols_again(app, "P002")


async def test_another_authority_s_duty_manager_and_an_unknown_id_hear_the_same_words(app: Signpost) -> None:
    """DM02 (Southvale) may not reset P003 (Northshire), and is told exactly what an id that is in
    no register gets: nothing says whether P003 exists. P003's authenticator still works."""
    await enrol_and_step_up(app, "P003")
    await enrol_and_step_up(app, "DM02")
    other = await say(app, "DM02", "reset P003")
    unknown = await say(app, "DM02", "reset NOPE-404")
    assert other.outcome is unknown.outcome is Outcome.REFUSED
    assert other.text == unknown.text == reset.NOT_YOURS
    assert "P003" not in other.text
    assert await state_of(app, "P003") == ACTIVE
    assert await texts_to(app, "P003", reset.NOTICE_KIND) == []
    events = await audit_events(app, "totp_reset")
    assert [(e.outcome, e.actor_id) for e in events] == [("refused", "DM02"), ("refused", "DM02")]
    # An id in the register is named, so an investigator sees whose authenticator DM02 tried to reset
    # (a practitioner id is no child's personal data); a word in no register is not kept at all.
    assert [e.detail for e in events] == ["not their duty manager: P003", reset.NO_SUCH]


# A word that is no practitioner id but may be personal: a child's date of birth (both spellings),
# a postcode, a name. "CODE" stands for the duty manager's own current authenticator code.
TYPED_IN_ERROR = ("03/04/2014", "2014-04-03", "M12AB", "Amy.Jones", "CODE")


@pytest.mark.parametrize("typed", TYPED_IN_ERROR)
async def test_a_word_in_no_register_is_neither_logged_nor_audited(app: Signpost, typed: str) -> None:
    """``reset WORD`` for a word that is no practitioner's id is refused in the usual words, and the
    word (as typed, or read in upper case) is in no log line and in no
    column of any audit event: the audit log is permanent, so what is typed by mistake stays out."""
    totp = await enrol_and_step_up(app, "DM01")
    if typed == "CODE":
        app.ctx.clock.advance(seconds=30)  # type: ignore[attr-defined]  # the next code, not yet used
        typed = code_now(app, totp)
    with capture_logs() as lines:
        reply = await say(app, "DM01", f"reset {typed}")
    assert (reply.outcome, reply.text) == (Outcome.REFUSED, reset.NOT_YOURS)
    assert [(line["event"], line.get("detail")) for line in lines] == [("command", reset.NO_SUCH)]
    logged = repr(lines)
    events = await audit_events(app)
    assert [(e.outcome, e.detail) for e in events if e.action == "totp_reset"] == [("refused", reset.NO_SUCH)]
    kept = " ".join(repr(getattr(e, column.key)) for e in events for column in AuditEvent.__table__.columns)
    # As a word of its own: six digits may turn up inside a hash or a correlation id by chance.
    said = re.compile(rf"(?<![0-9A-Za-z]){re.escape(typed)}(?![0-9A-Za-z])", re.IGNORECASE)
    assert said.search(logged) is None and said.search(kept) is None


async def test_a_duty_manager_may_not_reset_an_admin_or_a_fellow_duty_manager(app: Signpost) -> None:
    """AD01 (an admin, in Northshire) and DM03 (Southvale's other duty manager) are reset on the host by
    an admin: DM01 and DM02 are refused and told so, and both authenticators still work. Anyone holding
    an admin's chat account, with one credulous duty manager, would otherwise hold the admin's powers."""
    for who in ("AD01", "DM03"):
        await enrol_and_step_up(app, who)
    await enrol_and_step_up(app, "DM01")
    await enrol_and_step_up(app, "DM02")
    admin = await say(app, "DM01", "reset AD01")
    fellow = await say(app, "DM02", "reset DM03")
    assert (admin.outcome, admin.text) == (Outcome.REFUSED, reset.ON_THE_HOST.format(id="AD01"))
    assert (fellow.outcome, fellow.text) == (Outcome.REFUSED, reset.ON_THE_HOST.format(id="DM03"))
    assert "signpost totp reset" in admin.text
    assert await state_of(app, "AD01") == await state_of(app, "DM03") == ACTIVE
    assert await texts_to(app, "AD01", reset.NOTICE_KIND) == await texts_to(app, "DM03", reset.NOTICE_KIND) == []
    events = await audit_events(app, "totp_reset")
    assert [(e.outcome, e.actor_id, e.detail) for e in events] == [
        ("refused", "DM01", "AD01 holds the admin role"),
        ("refused", "DM02", "DM03 holds the duty manager role"),
    ]


async def test_another_authority_s_admin_gets_the_words_of_an_unknown_id(app: Signpost) -> None:
    """DM02 (Southvale) aiming at AD01 (Northshire) learns nothing of AD01: the same words as for an id in
    no register, not the words for an admin or a duty manager."""
    await enrol_and_step_up(app, "AD01")
    await enrol_and_step_up(app, "DM02")
    assert (await say(app, "DM02", "reset AD01")).text == (await say(app, "DM02", "reset NOPE-404")).text
    assert (await say(app, "DM02", "reset DM01")).text == reset.NOT_YOURS
    assert await state_of(app, "AD01") == ACTIVE


async def test_the_practitioner_is_told_on_every_account_and_at_their_secure_email(app: Signpost) -> None:
    """Not only the chat account that may have been taken: the reset notice is one every linked account
    must see (``handlers.every_contact.EVERY_ACCOUNT``), and the same words go to the recorded secure email."""
    await enrol_and_step_up(app, "P003")
    await enrol_and_step_up(app, "DM01")
    assert (await say(app, "DM01", "reset P003")).outcome is Outcome.DONE
    told = [(n.kind, n.text) for n in await notices(app, "P003")]
    [(_, text)] = [t for t in told if t[0] == reset.NOTICE_KIND]
    assert told[-2:] == [(reset.NOTICE_KIND, text), ("email", text)]
    assert reset.NOTICE_KIND in EVERY_ACCOUNT


async def test_the_authority_s_other_duty_managers_are_told_who_reset_whose(app: Signpost) -> None:
    """DM02 resets S001 (Southvale): DM03 hears of it, ids only, so a wrong reset is noticed; DM02, who
    did it, is not told. In Northshire, whose only duty manager DM01 resets, the admins hear instead."""
    await enrol_and_step_up(app, "S001")
    await enrol_and_step_up(app, "DM02")
    assert (await say(app, "DM02", "reset S001")).outcome is Outcome.DONE
    expected = reset.MANAGERS_NOTICE.format(by="DM02", id="S001")
    assert await texts_to(app, "DM03", reset.MANAGERS_KIND) == [expected]
    assert "Hart" not in expected and "Bell" not in expected
    assert await texts_to(app, "DM02", reset.MANAGERS_KIND) == []
    await enrol_and_step_up(app, "P003")
    await enrol_and_step_up(app, "DM01")
    assert (await say(app, "DM01", "reset P003")).outcome is Outcome.DONE
    assert await texts_to(app, "AD01", reset.MANAGERS_KIND) == [reset.MANAGERS_NOTICE.format(by="DM01", id="P003")]
    assert await texts_to(app, "DM01", reset.MANAGERS_KIND) == []


async def host_reset(app: Signpost, practitioner_id: str) -> None:
    """`signpost totp reset PRACTITIONER_ID`, as the terminal runs it."""
    async with audited(app.ctx, "operator", Action.TOTP_RESET) as audit:
        assert (await people.totp_reset(app.ctx, audit, practitioner_id)).existed


async def test_an_admin_s_reset_on_the_host_is_told_to_the_practitioner_s_duty_managers(app: Signpost) -> None:
    """`signpost totp reset S001` (Southvale): DM02 and DM03 hear that an admin reset S001's authenticator,
    ids only, as after a reset in chat, so a reset nobody asked for is noticed; Northshire's DM01 does not.
    For P003 (Northshire) its only duty manager, DM01, hears of it."""
    await enrol_and_step_up(app, "S001")
    await enrol_and_step_up(app, "P003")
    await host_reset(app, "S001")
    await host_reset(app, "P003")

    told = sorted((n.recipient_id, n.text) for n in await notices(app) if n.kind == reset.MANAGERS_KIND)
    expected = {pid: reset.HOST_MANAGERS_NOTICE.format(id=pid) for pid in ("S001", "P003")}
    assert told == [("DM01", expected["P003"]), ("DM02", expected["S001"]), ("DM03", expected["S001"])]
    assert expected["S001"] == (
        "A Signpost admin reset practitioner S001's Signpost authenticator on the host. If you did not expect "
        "this, check with S001 by phone or in person, and with a Signpost admin."
    )
    assert "Hart" not in expected["S001"] and "Reed" not in expected["P003"]
    assert "by an administrator" in " ".join(await texts_to(app, "S001", reset.NOTICE_KIND))


async def test_a_practitioner_and_an_admin_who_is_no_duty_manager_may_not_reset(app: Signpost) -> None:
    """The role gate refuses P001 and AD01 (admins reset on the host), saying who may."""
    await enrol_and_step_up(app, "P003")
    for who in ("P001", "AD01"):
        reply = await say(app, who, "reset P003")
        assert reply.outcome is Outcome.REFUSED and reply.text.startswith("Only a duty manager can"), reply
        assert "admin" not in reply.text.split(".")[0]
    assert await state_of(app, "P003") == ACTIVE


async def test_a_duty_manager_may_not_reset_their_own_authenticator(app: Signpost) -> None:
    await enrol_and_step_up(app, "DM01")
    reply = await say(app, "DM01", "reset DM01")
    assert (reply.outcome, reply.text) == (Outcome.REFUSED, reset.OWN.format(id="DM01"))
    assert await state_of(app, "DM01") == ACTIVE


async def test_a_duty_manager_s_own_reset_is_sent_to_who_can_do_it(app: Signpost) -> None:
    """DM01 asking to reset their own was sent to "another duty manager of your local authority", who
    is refused it: a duty manager's authenticator is reset only by an admin on the host. Both answers
    now say so in the same words (``BY_AN_ADMIN``), with the command the README names."""
    for who in ("DM01", "DM02"):
        await enrol_and_step_up(app, who)
    own = await say(app, "DM01", "reset DM01")
    fellow = await say(app, "DM02", "reset DM03")
    assert own.outcome is fellow.outcome is Outcome.REFUSED
    assert reset.BY_AN_ADMIN.format(id="DM01") in own.text and reset.BY_AN_ADMIN.format(id="DM03") in fellow.text
    assert "signpost totp reset DM01" in own.text and "another duty manager" not in own.text


async def test_nothing_to_reset_is_said_kindly(app: Signpost) -> None:
    """P001 never enrolled: nothing is reset, P001 is told nothing, and DM01 hears they can enrol."""
    await enrol_and_step_up(app, "DM01")
    reply = await say(app, "DM01", "reset P001")
    assert reply.outcome is Outcome.REFUSED and reply.text == reset.NOTHING.format(id="P001")
    assert await texts_to(app, "P001", reset.NOTICE_KIND) == []
    [event] = await audit_events(app, "totp_reset")
    assert event.detail == "nothing to reset for P001"


async def test_a_reset_needs_a_code_no_older_than_five_minutes(app: Signpost, clock: FakeClock) -> None:
    """Six minutes after DM01's last code, `reset` asks for a new one first (as an approval does) and
    changes nothing until it comes; with the code it runs."""
    await disable(app, "P003")
    await ensure_enrolled(app, "DM01")  # answer_challenges answers with this authenticator
    clock.advance(minutes=6)
    challenged = await say(app, "DM01", "reset P003")
    assert challenged.outcome is Outcome.CHALLENGED and challenged.challenge is not None
    assert challenged.challenge.prompt == stepup.PROMPT_APPROVAL
    assert await state_of(app, "P003") == DISABLED
    done = await answer_challenges(app, "DM01", challenged)
    assert done.outcome is Outcome.DONE and await state_of(app, "P003") is None


@pytest.mark.parametrize(
    ("typed", "said"),
    [("reset", "Please give the practitioner id."), ("reset P003 now", "A word too many: nothing goes after reset")],
)
async def test_malformed_reset_shows_the_usage_before_any_code(app: Signpost, typed: str, said: str) -> None:
    reply = await say(app, "DM01", typed)  # not enrolled: no code asked, the text is answered first
    assert reply.outcome is Outcome.INVALID and reply.text.startswith(said), reply
    assert reply.text.endswith(for_any_store(reset.RESET_USAGE)), reply


async def test_help_lists_reset_for_duty_managers_only(app: Signpost) -> None:
    async with app.ctx.db.read() as session:
        people = {pid: await practitioners.get_actor(session, pid) for pid in ("DM01", "P001", "AD01")}
    specs = list(app.dispatcher.specs.values())
    listed = {
        pid: any(line.startswith("• reset ") for line in help_lines(specs, actor)) for pid, actor in people.items()
    }
    assert listed == {"DM01": True, "P001": False, "AD01": False}
    assert Role.DUTY_MANAGER in people["DM01"].roles  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("roles", "how"),
    [
        (
            frozenset({Role.PRACTITIONER}),
            "one of their duty managers sends reset X1 in chat, or a Signpost admin runs signpost totp reset X1 on "
            "the host.",
        ),
        (
            frozenset({Role.DUTY_MANAGER, Role.PRACTITIONER}),
            "a Signpost admin runs signpost totp reset X1 on the host (a duty manager's or an admin's "
            "authenticator is never reset in chat).",
        ),
    ],
)
def test_the_switched_off_notice_says_plainly_who_resets_and_how(roles: frozenset[Role], how: str) -> None:
    """The duty managers told that code checks are off read, in order: confirm it is them, then who
    resets and with what; for a duty manager or admin, only the host's way (``reset`` refuses them)."""
    actor = Actor("X1", "Synthetic Person", "Teacher", "Hill Primary School", "Northshire", roles)
    failure = Failure(100, None, DISABLED, newly_locked=False, newly_disabled=True)
    [notice] = stepup.managers_notices(["DM01"], actor, failure, stepup.StepUpPolicy())
    assert notice.text.endswith(f"First confirm by phone or in person that it is them asking; then {how}"), notice


async def test_a_typed_id_holding_a_hidden_character_never_reaches_the_audit_detail(app: Signpost) -> None:
    """The refused id is recorded as typed, so the text is checked first: an escape sequence or a bidi
    override is answered with help and never read, nor audited as an id a terminal would act on."""
    await enrol_and_step_up(app, "DM02")
    for typed in ("reset P\x1b[2J003", "reset P\u202e300"):
        assert (await say(app, "DM02", typed)).outcome is not Outcome.REFUSED
    details = " ".join(e.detail for e in await audit_events(app, "totp_reset"))
    assert "\x1b" not in details and "\u202e" not in details


async def test_resets_asked_a_code_first_count_once_each_for_the_misuse_rule(app: Signpost, clock: FakeClock) -> None:
    """Each reset an hour apart asks DM01 for a fresh code first: its ``challenged`` event is no reset
    tried. Two done are no misuse alert for DM01; a third tried (refused) is one."""
    for who in ("P002", "P003"):
        await enrol_and_step_up(app, who)
    await ensure_enrolled(app, "DM01")  # answer_challenges answers with this authenticator
    for who in ("P002", "P003"):
        clock.advance(hours=1)
        asked = await say(app, "DM01", f"reset {who}")
        assert asked.outcome is Outcome.CHALLENGED, asked
        assert (await answer_challenges(app, "DM01", asked)).outcome is Outcome.DONE
    events = await audit_events(app, "totp_reset")
    assert [e.outcome for e in events] == ["challenged", "done", "challenged", "done"]
    assert [(f.rule, f.actor_id) for f in await sweep(app.ctx, clock.now()) if f.rule == "resets"] == []
    clock.advance(hours=1)
    third = await answer_challenges(app, "DM01", await say(app, "DM01", "reset NOPE-404"))
    assert third.outcome is Outcome.REFUSED, third
    assert [(f.rule, f.actor_id) for f in await sweep(app.ctx, clock.now()) if f.rule == "resets"] == [
        ("resets", "DM01")
    ]


async def test_a_duty_manager_who_has_lost_their_authenticator_is_sent_to_whoever_can_reset_it(app: Signpost) -> None:
    """``enrol`` with an authenticator already set up says who resets it: a practitioner's duty
    manager, but for a duty manager (whom ``reset`` refuses in chat) a Signpost admin."""
    for who in ("P002", "DM01"):
        await enrol_and_step_up(app, who)
    practitioner = await say(app, "P002", "enrol")
    manager = await say(app, "DM01", "enrol")
    assert practitioner.outcome is manager.outcome is Outcome.REFUSED
    assert "ask your duty manager to reset it" in practitioner.text
    assert "ask a Signpost admin to reset it" in manager.text and "duty manager" not in manager.text


async def host_replace(app: Signpost, practitioner_id: str) -> None:
    """`signpost totp enrol --replace PRACTITIONER_ID`, as the terminal runs it."""
    async with audited(app.ctx, "operator", Action.TOTP_ENROL) as audit:
        await people.totp_enrol(app.ctx, audit, practitioner_id, replace=True)


async def test_replacing_a_working_authenticator_on_the_host_is_told_as_a_reset(app: Signpost) -> None:
    """`signpost totp enrol --replace P003` takes away a working authenticator as a reset does: P003
    hears of it on every contact on record (chat and secure email), told the admin gives them the new
    one, and Northshire's duty manager DM01 hears an admin reset it on the host; the audit says the
    credential was removed and a new one issued. Issuing one over a pending one tells nobody."""
    await enrol_and_step_up(app, "P003")
    await host_replace(app, "P003")

    to_p003 = [(n.kind, n.text) for n in await notices(app, "P003") if n.kind != "stepup_challenge"]
    said = reset.REPLACED_NOTICE
    assert said == (
        "Your Signpost authenticator was replaced by an administrator: the old one no longer works, and the "
        "admin gives you the new one privately. If you did not ask for this, tell a Signpost admin at once."
    )
    assert sorted(to_p003) == sorted([(reset.NOTICE_KIND, said), ("email", said)])
    assert await texts_to(app, "DM01", reset.MANAGERS_KIND) == [reset.HOST_MANAGERS_NOTICE.format(id="P003")]
    assert await state_of(app, "P003") == "pending"
    assert [e.detail for e in await audit_events(app, Action.TOTP_ENROL.value)] == [
        "credential removed for P003; enrolment started for P003"
    ]

    await host_replace(app, "P003")  # over the pending one it issued: nobody is told again
    assert len(await texts_to(app, "DM01", reset.MANAGERS_KIND)) == 1
