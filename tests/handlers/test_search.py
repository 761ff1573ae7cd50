"""Keyed and demographic enquiries as a practitioner sees them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bot.app import Signpost
from handlers.search import NO_MATCH, UPDATING
from handlers.vocabulary import Outcome, Platform, Principal
from store.register import children
from store.register.terms import TERMS_VERSION
from store.tables.audit import AuditEvent
from tests.factories import (
    AMY,
    BEN,
    NEWER_INDEX,
    NO_INVOLVEMENTS,
    SHIELDED,
    load_standard,
    ready,
    record_index_version,
    say,
)


async def setup(app: Signpost, who: str = "P002") -> None:
    await load_standard(app)
    await ready(app, who)


async def test_reference_returns_signposts_lead_first_and_ended_marked(signpost: Signpost) -> None:
    """A keyed enquiry lists every involvement: the lead professional first, ended ones with dates."""
    await setup(signpost)
    reply = await say(signpost, "P002", "999 000 0018")
    assert reply.outcome is Outcome.ANSWERED
    assert reply.child_ref == "999 000 0018"
    names = [s.practitioner_name for s in reply.signposts]
    assert names == ["Sam Carter", "Priya Shah", "Tom Reed"]
    lead, current, ended = reply.signposts
    assert lead.lead_professional and lead.current
    assert lead.phone == "0161 496 0001" and lead.email == "sam.carter@northshire.example"
    assert current.current and not current.lead_professional
    assert ended.ended is not None and ended.ended.isoformat() == "2024-07-20"


async def test_reply_echoes_no_identity_field_the_user_did_not_type(signpost: Signpost) -> None:
    """A keyed enquiry shows the reference and signposts, never the child's name, DOB or postcode."""
    await setup(signpost)
    reply = await say(signpost, "P002", AMY)
    shown = repr(reply)
    for secret in ("Amy", "Jones", "Amelia", "2014-04-03", "03/04/2014", "M1 2AB", "datetime.date(2014"):
        assert secret not in shown


async def test_reference_with_a_typo_is_rejected_as_invalid(signpost: Signpost) -> None:
    """A mistyped check digit is caught before any search, with a kind explanation."""
    await setup(signpost)
    reply = await say(signpost, "P002", "999 000 0017")
    assert reply.outcome is Outcome.INVALID
    assert "not valid" in reply.text and reply.signposts == ()


async def test_unknown_reference_is_no_match(signpost: Signpost) -> None:
    """A valid but unknown reference says no record was found."""
    await setup(signpost)
    reply = await say(signpost, "P002", "999 000 0093")
    assert reply.outcome is Outcome.NO_MATCH


async def test_child_with_no_involvements_says_so(signpost: Signpost) -> None:
    """A matched child with nobody recorded gets a clear empty answer, not an error."""
    await setup(signpost)
    reply = await say(signpost, "P002", NO_INVOLVEMENTS)
    assert reply.outcome is Outcome.ANSWERED and reply.signposts == ()
    assert "No practitioners" in reply.text


async def test_name_and_date_of_birth_find_the_child(signpost: Signpost) -> None:
    """A demographic enquiry (UK date order, any case, optional postcode) finds the one child."""
    await setup(signpost)
    for text in ("Amy Jones 03/04/2014", "amy JONES 3/4/2014 M1 2AB", "Amy Jones 2014-04-03"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.ANSWERED, text
        assert reply.child_ref == "999 000 0018"


async def test_a_search_on_an_index_a_newer_version_wrote_says_signpost_is_being_updated(signpost: Signpost) -> None:
    """Mid rolling upgrade (a newer Signpost has rebuilt the blind index; this one still runs the
    older code): a search by name and date of birth is told Signpost is being updated, never that
    no record matches; it is audited with its sealed terms, and logged with versions only. Once the
    index is this code's version again, the same search finds the child."""
    await setup(signpost)
    await record_index_version(signpost.ctx.db, NEWER_INDEX)
    with capture_logs() as logged:
        reply = await say(signpost, "P002", "Amy Jones 03/04/2014")
    assert reply.outcome is Outcome.FAILED and reply.text == UPDATING
    assert NO_MATCH not in reply.text and reply.child_ref is None and not reply.signposts
    async with signpost.ctx.db.read() as session:
        event = (await session.execute(select(AuditEvent).where(AuditEvent.action == "search"))).scalar_one()
    assert (event.outcome, event.detail, event.subject_refs) == ("failed", "index not current", "")
    assert event.terms is not None  # what was asked, sealed: the enquiry stays on the record
    warned = [entry for entry in logged if entry["event"] == "index_not_current"]
    assert warned == [
        {"event": "index_not_current", "stored": NEWER_INDEX, "reads": TERMS_VERSION, "log_level": "warning"}
    ]
    await record_index_version(signpost.ctx.db, TERMS_VERSION)
    found = await say(signpost, "P002", "Amy Jones 03/04/2014")
    assert found.outcome is Outcome.ANSWERED and found.child_ref == "999 000 0018"


async def test_searches_refused_during_an_upgrade_log_one_line_a_minute_with_the_count(
    signpost: Signpost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rolling upgrade refuses every search until the old replicas are replaced: the log says so
    once, then once a minute with how many were refused since, not a line a search."""
    await setup(signpost)
    await record_index_version(signpost.ctx.db, NEWER_INDEX)
    with capture_logs() as logged:
        for _ in range(5):
            assert (await say(signpost, "P002", "Amy Jones 03/04/2014")).text == UPDATING
    assert [entry["event"] for entry in logged].count("index_not_current") == 1
    monkeypatch.setattr(children, "NOT_CURRENT_EVERY", 0.0)  # the minute has passed
    with capture_logs() as logged:
        assert (await say(signpost, "P002", "Amy Jones 03/04/2014")).text == UPDATING
    warned = [entry for entry in logged if entry["event"] == "index_not_current"]
    assert warned == [
        {
            "event": "index_not_current",
            "stored": NEWER_INDEX,
            "reads": TERMS_VERSION,
            "refused_since_last": 5,
            "log_level": "warning",
        }
    ]


async def test_an_alias_finds_the_child(signpost: Signpost) -> None:
    """Known aliases are searchable like the legal name."""
    await setup(signpost)
    for alias in ("Amelia Jones 03/04/2014", "Amy Smith 03/04/2014"):
        reply = await say(signpost, "P002", alias)
        assert reply.child_ref == "999 000 0018", alias


async def test_a_quite_different_date_of_birth_is_no_match(signpost: Signpost) -> None:
    """The right name with a date of birth far from the real one matches nobody."""
    await setup(signpost)
    reply = await say(signpost, "P002", "Ben Okafor 25/01/2011")
    assert reply.outcome is Outcome.NO_MATCH and reply.signposts == ()


async def test_two_equally_good_matches_ask_for_more_detail_and_list_no_children(signpost: Signpost) -> None:
    """Twins with the same name and date of birth: no list of children, a request for more detail."""
    await setup(signpost)
    reply = await say(signpost, "P002", "Lily Brown 20/01/2019")
    assert reply.outcome is Outcome.AMBIGUOUS
    assert reply.child_ref is None and reply.signposts == () and reply.buttons == ()
    assert "more detail" in reply.text and "999" not in reply.text


async def test_one_weak_candidate_gets_the_same_words_as_several_and_never_more_than_one(
    signpost: Signpost,
) -> None:
    """One record that might be the child (a brother's name on Ben's date: the sibling guard holds it
    back; Ben's name a week off his date: too weak) is not "more than one record could match", which
    would be false. The answer is the twins' answer word for word, so it cannot tell a prober that a
    child with roughly these details exists alone, and it asks for the same missing details (the
    answer to a search that finds nobody at all is the same too: test_search_one_answer.py)."""
    await setup(signpost)
    twins = await say(signpost, "P002", "Lily Brown 20/01/2019")
    for query in ("Sam Okafor 12/09/2016", "Ben Okafor 21/09/2016"):
        weak = await say(signpost, "P002", query)
        assert weak.outcome is Outcome.AMBIGUOUS, query
        assert weak.text == twins.text, query
        assert weak.child_ref is None and weak.signposts == () and weak.buttons == ()
    assert twins.text == (
        "No record matches those details for certain, so none is shown. "
        "Please add more detail: the postcode or all of the child's given names. "
        "Otherwise check the spelling and the date of birth, or search by reference number."
    )
    assert twins.text.startswith(NO_MATCH) and "more than one" not in twins.text.casefold()


async def test_shielded_child_reveals_only_that_a_record_exists(signpost: Signpost) -> None:
    """A shielded match returns no signposts, no reference, and offers Request access with a reason
    and Send a message with its text (issue 18's blind relay)."""
    await setup(signpost)
    for text in (SHIELDED, "Mia Stone 30/06/2015"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.SHIELDED
        assert reply.signposts == () and reply.child_ref is None
        button, relay = reply.buttons
        assert button.action_id == "request_access" and button.input is not None and button.input.required
        assert relay.action_id == "relay_message" and relay.input is not None and relay.input.required
        assert "Lee Hart" not in repr(reply)


async def test_bad_demographic_input_gets_usage_help(signpost: Signpost) -> None:
    """Impossible dates, future dates and missing names are explained, not stack-traced."""
    await setup(signpost)
    for text, hint in (
        ("Amy Jones 31/02/2014", "not a real date"),
        ("Amy Jones 01/01/2099", "future"),
        ("03/04/2014", "name"),
    ):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.INVALID, text
        assert hint in reply.text


async def test_a_date_that_does_not_exist_asks_to_check_the_day_and_month(signpost: Signpost) -> None:
    """A date typed DD/MM/YYYY that does not exist (the 32nd, or a month-first 05/13/2014) was told
    "please use DD/MM/YYYY", which it had (newcomer): the answer asks to check the day and the month
    and does not repeat the date."""
    await setup(signpost)
    for text in ("Amy Jones 32/01/2014", "Amy Jones 04/13/2014", "Amy Jones 2014-02-30"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.INVALID, text
        assert "not a real date: please check the day and the month (DD/MM/YYYY or YYYY-MM-DD)" in reply.text, text
        assert "please use DD/MM/YYYY" not in reply.text and "2014" not in reply.text.split("e.g.")[0], text


async def test_a_year_mistyped_asks_to_check_the_year_not_the_day_and_month(signpost: Signpost) -> None:
    """A real day and month in a year no child is born in (1014 or 3014, one digit slipped) was told
    to check the day and the month, which were right (newcomer): the answer asks to check the year,
    and does not repeat the date."""
    await setup(signpost)
    for text in ("Amy Jones 05/01/1014", "Amy Jones 05/01/3014", "Amy Jones 1014-01-05", "Amy Jones 05/01/0000"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.INVALID, text
        head = reply.text.split("\n\n")[0]
        assert "please check the year (DD/MM/YYYY or YYYY-MM-DD)" in head, text
        assert "day and the month" not in head and "014" not in head and "0000" not in head, text


async def test_two_dates_are_asked_kindly_for_one_date_of_birth(signpost: Signpost) -> None:
    """Two dates typed (the date of birth twice, in two forms, or a date of birth and another date)
    were answered "that date of birth is not a real date", of a date that was: the answer asks for
    one date of birth, with the usage, and repeats neither date."""
    await setup(signpost)
    for text in (
        "Amy Jones 03/04/2014 2014-04-03",
        "Amy Jones 03/04/2014 04/04/2014",
        "Amy 03/04/2014 Jones 31/02/2014",
    ):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.INVALID, text
        head, _, usage = reply.text.partition("\n\n")
        assert head == "Please give one date of birth only, not two dates.", text
        assert usage.startswith("Search by name and date of birth"), text
        assert "not a real date" not in reply.text and "2014" not in head, text


async def test_a_birth_year_before_1900_or_in_foreign_digits_gets_usage_help(signpost: Signpost) -> None:
    """A year below 1000 once crashed the date-variant expansion ("something went wrong"); a date of
    birth is read in ASCII digits from 1900 to today, and anything else is explained."""
    await setup(signpost)
    for text in (
        "Amy Jones 05/01/0999",
        "Amy Jones 0999-01-05",
        "Amy Jones 05/01/0001",
        "Amy Jones 05/01/1899",
        "Amy Jones \u0660\u0665/\u0660\u0661/\u0662\u0660\u0661\u0664",
        "Amy Jones 05/01/2014 M1\u00b2",
    ):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.INVALID, text
        assert "went wrong" not in reply.text, text


async def test_a_reference_in_foreign_digits_is_not_read_as_one(signpost: Signpost) -> None:
    """Only ASCII digits make a reference: other scripts' digits get usage help, not a lookup."""
    await setup(signpost)
    reply = await say(signpost, "P002", "\u0669\u0669\u0669 \u0660\u0660\u0660 \u0660\u0660\u0661\u0668")
    assert reply.outcome is Outcome.INVALID
    assert "went wrong" not in reply.text


async def test_gibberish_gets_usage_help(signpost: Signpost) -> None:
    """Anything the grammar does not know gets a short list of what works."""
    await setup(signpost)
    reply = await say(signpost, "P002", "what about that child from yesterday?")
    assert reply.outcome is Outcome.INVALID
    assert any("reference" in line for line in reply.lines)


async def test_unknown_user_is_refused_politely(signpost: Signpost) -> None:
    """A chat identity linked to nobody gets a refusal with how to register, and no result."""
    await setup(signpost)
    reply = await say(signpost, Principal(Platform.SLACK, "T1", "U-NOBODY"), BEN)
    assert reply.outcome is Outcome.REFUSED
    assert "register" in reply.text and reply.signposts == ()


async def test_help_works_for_anyone(signpost: Signpost) -> None:
    """help needs no registration and shows examples."""
    reply = await say(signpost, "NOBODY", "help")
    assert reply.outcome is Outcome.INFO and reply.lines


async def test_a_name_without_a_date_is_asked_kindly_for_the_date_of_birth(signpost: Signpost) -> None:
    """ "Ava Price" alone (or with a postcode) is told a search by name needs the date of birth, with
    its form (this store is not the demo, whose names only the demo's example would find), instead of
    "didn't understand" and the whole help; the name typed is not echoed."""
    await setup(signpost)
    for text in ("Amy Jones", "amy jones M1 2AB"):
        reply = await say(signpost, "P002", text)
        assert reply.outcome is Outcome.INVALID and reply.lines == (), text
        assert reply.text == (
            "To search by name, Signpost also needs the child's date of birth: GIVEN FAMILY DD/MM/YYYY "
            "[POSTCODE] (a postcode helps too). Or search by the child's reference number."
        )
    assert "didn't understand" in (await say(signpost, "P002", "what about that child?")).text
