"""`history`: a practitioner sees their own last lookups — time, reference, outcome — and nothing else.

Lookups, searches and history itself need a fresh step-up code, so each practitioner here enrols an
authenticator and answers with a real code first (say_fresh), as a real user would; enrolled before
their first lookup, none of these lookups is challenged, so history shows only the lookups themselves.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Signpost
from handlers.clock import FakeClock
from handlers.vocabulary import Outcome
from store.tables.audit import AuditEvent
from tests.factories import AMY, BEN, SHIELDED, TWIN_A, TWIN_B, load_standard, say
from tests.stepup_helpers import answer_challenges, say_fresh


async def test_history_lists_own_lookups_newest_first(signpost: Signpost, clock: FakeClock) -> None:
    await load_standard(signpost)
    await say_fresh(signpost, "P001", AMY)
    clock.advance(minutes=5)
    await say_fresh(signpost, "P001", "Zed Nobody 01/01/2015")
    clock.advance(minutes=5)
    await say_fresh(signpost, "P001", "Ben Okafor 12/09/2016")
    await say_fresh(signpost, "P002", AMY)  # someone else's: not shown

    reply = await say_fresh(signpost, "P001", "history")

    assert reply.outcome is Outcome.INFO
    assert reply.text.startswith("Your last 3 lookups, newest first")
    assert reply.lines == (
        "02/11/2026 09:10 GMT · 999 000 0026 · by name and date of birth · signposts shown",
        "02/11/2026 09:05 GMT · — · by name and date of birth · no match",
        "02/11/2026 09:00 GMT · 999 000 0018 · by reference · signposts shown",
    )


async def test_history_never_shows_search_terms_or_unshown_candidates(signpost: Signpost) -> None:
    """An ambiguous search listed no children, so its history line lists none either, and says what
    a search that found nobody says (the answer did not tell them apart: test_search_one_answer.py)."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", "Lily Brown 20/01/2019")
    reply = await say_fresh(signpost, "P001", "history")
    shown = " ".join((reply.text, *reply.lines))
    assert reply.lines == ("02/11/2026 09:00 GMT · — · by name and date of birth · no match",)
    for secret in ("Lily", "Brown", "20/01/2019", TWIN_A, TWIN_B, "999 000 0034", "999 000 0042"):
        assert secret not in shown


async def test_history_shows_a_shielded_reference_it_already_gave(signpost: Signpost) -> None:
    """The shielded reply carried the reference (in its request button), so history may show it."""
    await load_standard(signpost)
    await say_fresh(signpost, "S001", SHIELDED)
    reply = await say_fresh(signpost, "S001", "history")
    assert reply.text == "Your last lookup (UK time):"  # not "Your last 1 lookup, newest first"
    assert reply.lines == ("02/11/2026 09:00 GMT · 999 000 0050 · by reference · shielded record",)


async def test_history_count_is_honoured_and_checked(signpost: Signpost) -> None:
    await load_standard(signpost)
    for ref in (AMY, BEN, AMY):
        await say_fresh(signpost, "P001", ref)
    assert len((await say_fresh(signpost, "P001", "history 2")).lines) == 2
    for bad in ("history 0", "history 51", "history lots"):
        reply = await say_fresh(signpost, "P001", bad)
        assert reply.outcome is Outcome.INVALID
        assert reply.text.startswith("Give a number of lookups from 1 to 50")


async def test_history_with_a_superscript_or_foreign_digit_count_gets_usage_help(signpost: Signpost) -> None:
    """'²' passes str.isdigit but not int(): the person gets usage help, never "something went wrong"."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", AMY)
    for bad in ("history \u00b2", "history \u0663", "history 1\u00b2", "history \uff13"):
        reply = await say_fresh(signpost, "P001", bad)
        assert reply.outcome is Outcome.INVALID, bad
        assert "Give a number of lookups from 1 to 50" in reply.text
        assert "went wrong" not in reply.text


async def test_history_with_no_lookups_says_so_kindly(signpost: Signpost) -> None:
    await load_standard(signpost)
    reply = await say_fresh(signpost, "P003", "history")
    assert (reply.outcome, reply.text) == (Outcome.INFO, "You have not looked up any child yet.")


async def test_history_needs_a_registered_practitioner(signpost: Signpost) -> None:
    await load_standard(signpost)
    reply = await say(signpost, "stranger", "history")
    assert reply.outcome is Outcome.REFUSED and "There is no practitioner with that id in the register" in reply.text


async def test_history_is_audited_without_children_or_terms(signpost: Signpost) -> None:
    await load_standard(signpost)
    await say_fresh(signpost, "P001", AMY)
    await say_fresh(signpost, "P001", "history")
    async with signpost.ctx.db.read() as session:
        event = (await session.execute(select(AuditEvent).where(AuditEvent.action == "history"))).scalar_one()
    assert (event.actor_id, event.outcome, event.subject_refs, event.result_count) == ("P001", "info", "", 1)
    assert event.terms is None


async def test_history_calls_a_search_with_an_impossible_date_not_run_not_misunderstood(signpost: Signpost) -> None:
    """A search with a future date of birth was read, and refused as invalid before it ran: history
    says so, where it said "not understood" of a command it had understood."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", "Amy Jones 01/01/2099")
    reply = await say_fresh(signpost, "P001", "history")
    assert reply.lines == (
        "02/11/2026 09:00 GMT · — · by name and date of birth · not run: a detail could not be used",
    )


async def test_history_says_a_search_before_enrolling_needed_enrolment_and_counts_a_code_once(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A search sent before enrolling was listed as "refused" (it was stopped for enrolment); a
    lookup parked for a code and then answered was listed twice ("code asked for", then its
    answer) and counted twice among "your last N lookups"; one whose code never came said only
    "code asked for". Now: one line per lookup, each saying what became of it."""
    await load_standard(signpost)
    before = await say(signpost, "P001", AMY)
    assert before.outcome is Outcome.REFUSED  # not enrolled yet
    clock.advance(minutes=1)
    await say_fresh(signpost, "P001", "history")  # enrols; now fresh
    clock.advance(hours=2)  # no longer fresh: the next lookup is parked for a code
    clock.advance(minutes=1)
    parked = await say(signpost, "P001", BEN)
    assert parked.outcome is Outcome.CHALLENGED
    answered = await answer_challenges(signpost, "P001", parked)
    assert answered.outcome is Outcome.ANSWERED
    clock.advance(hours=2)
    assert (await say(signpost, "P001", "Zed Nobody 01/01/2015")).outcome is Outcome.CHALLENGED  # never answered
    clock.advance(minutes=20)
    reply = await say_fresh(signpost, "P001", "history")
    assert reply.text.startswith("Your last 3 lookups, newest first"), reply.text
    assert reply.lines == (
        "02/11/2026 13:02 GMT · — · by name and date of birth · not run: no code given",
        "02/11/2026 11:02 GMT · 999 000 0026 · by reference · signposts shown",
        "02/11/2026 09:00 GMT · — · by reference · not run: needed enrolment",
    ), reply.lines
    two = await say_fresh(signpost, "P001", "history 2")
    assert two.lines == reply.lines[:2]


async def test_history_lists_a_search_by_name_answered_after_its_code_once(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A search by name parked for a code is sealed under its birth date's key and its answer under
    the child's, so pairing by sealing key listed it twice, "signposts shown" and "not run: no code
    given" (review): the commonest search after a lapsed step-up. It is one line, counted once."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", "history")
    clock.advance(hours=2, minutes=1)
    parked = await say(signpost, "P001", "Ben Okafor 12/09/2016")
    assert parked.outcome is Outcome.CHALLENGED
    assert (await answer_challenges(signpost, "P001", parked)).outcome is Outcome.ANSWERED
    clock.advance(minutes=1)
    reply = await say_fresh(signpost, "P001", "history")
    assert reply.text == "Your last lookup (UK time):", reply.text
    assert len(reply.lines) == 1 and reply.lines[0].endswith("· by name and date of birth · signposts shown"), (
        reply.lines
    )


async def test_history_of_two_lookups_waiting_for_a_code_lists_the_one_answered_as_run(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Two lookups by reference parked at once, the code given for the older: pairing by kind alone
    listed the older as "not run" and hid the newer, which never ran (review). A lookup is paired by
    its child's birth-day cohort: its parking is sealed under that cohort's terms key (naming no
    reference), its run under the child's own key, which is wrapped under that cohort's."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", "history")
    clock.advance(hours=2, minutes=1)
    older = await say(signpost, "P001", BEN)
    assert older.outcome is Outcome.CHALLENGED
    clock.advance(minutes=1)
    assert (await say(signpost, "P001", AMY)).outcome is Outcome.CHALLENGED
    assert (await answer_challenges(signpost, "P001", older)).outcome is Outcome.ANSWERED
    clock.advance(minutes=1)
    reply = await say_fresh(signpost, "P001", "history")
    assert reply.lines == (
        "02/11/2026 11:02 GMT · 999 000 0026 · by reference · signposts shown",  # the older, run
        "02/11/2026 11:02 GMT · — · by reference · not run: no code given",  # the newer, parked at 11:02
    ), reply.lines
