"""An authority's name is read as an admin types it: any case, any spacing ("northshire",
"NORTH SHIRE", "west  vale"), wherever a command takes one. An authority that is not in the register
is answered kindly, with the names that are (up to 10), and nothing is changed."""

from __future__ import annotations

import pytest

from bot.app import Signpost
from handlers.operator import people
from handlers.operator.common import Refused, audited
from handlers.vocabulary import Action, Outcome, Platform, Principal
from store.people import lead, practitioners
from store.register.feeds import Feed, import_feeds
from tests import misaligned
from tests.access_helpers import audit_events, load_access
from tests.factories import PRACTITIONERS_HEADER, ready, say

# A third authority whose name has a space in it, and a linked chat account in each of two.
WEST_VALE = f"""{PRACTITIONERS_HEADER}
W001,Kit,Ames,Youth worker,West Vale Youth Service,West Vale,0114 496 0001,kit.ames@westvale.example,practitioner
"""
KNOWN = "The local authorities in the register are: Northshire, Southvale, West Vale."


@pytest.fixture
async def app(signpost: Signpost) -> Signpost:
    await load_access(signpost)
    await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [Feed("practitioners.csv", WEST_VALE)], signpost.ctx.clock.now()
    )
    async with signpost.ctx.db.write() as session:
        for who in ("P001", "W001"):
            principal = Principal(Platform.SLACK, "T1", f"U-{who}")
            await practitioners.link_identity(session, principal, who, signpost.ctx.clock.now())
    await ready(signpost, "AD01")
    return signpost


async def setting(app: Signpost, authority: str) -> lead.LeadNotices:
    async with app.ctx.db.read() as session:
        return await lead.setting(session, authority)


@pytest.mark.parametrize("typed", ["northshire", "NORTHSHIRE", "North Shire", "north-shire"])
async def test_lead_notices_reads_the_authority_in_any_case_and_spacing(app: Signpost, typed: str) -> None:
    """`lead-notices northshire off` sets Northshire's setting and answers with the registered name."""
    reply = await say(app, "AD01", f"lead-notices {typed} off")
    assert (reply.outcome, reply.text) == (
        Outcome.DONE,
        "Northshire is now off: when a child is looked up, nobody is told.",
    )
    assert await setting(app, "Northshire") is lead.LeadNotices.OFF
    asked = await say(app, "AD01", f"lead-notices {typed}")
    assert asked.text.startswith("Northshire: off")


async def test_lead_notices_takes_an_authority_whose_name_has_spaces(app: Signpost) -> None:
    """ "West Vale" was read as the authority "West" with the setting "Vale"."""
    for typed in ("West Vale all", "west  vale ALL", "WESTVALE all"):
        reply = await say(app, "AD01", f"lead-notices {typed}")
        assert reply.outcome is Outcome.DONE and reply.text.startswith("West Vale is now all"), (typed, reply.text)
    assert await setting(app, "West Vale") is lead.LeadNotices.ALL
    assert (await say(app, "AD01", "lead-notices west vale")).text.startswith("West Vale: all")


async def test_an_unknown_authority_is_answered_with_the_known_ones_and_nothing_changes(app: Signpost) -> None:
    reply = await say(app, "AD01", "lead-notices Atlantis all")
    assert (reply.outcome, reply.text) == (
        Outcome.INVALID,
        f"There is no local authority by that name in the register. {KNOWN}",
    )
    assert [await setting(app, name) for name in ("Northshire", "Southvale", "West Vale")] == [
        lead.LeadNotices.LEAD
    ] * 3
    [event] = await audit_events(app, Action.LEAD_NOTICES.value)  # the one command above
    assert (event.outcome, event.detail) == ("invalid", "no such authority")


async def test_a_bad_setting_for_a_known_authority_is_told_the_settings(app: Signpost) -> None:
    """ "Northshire sometimes" is a known authority with a setting that is none, not an unknown authority."""
    reply = await say(app, "AD01", "lead-notices west vale sometimes")
    assert reply.outcome is Outcome.INVALID and "off, lead or all" in reply.text
    assert await setting(app, "West Vale") is lead.LeadNotices.LEAD


async def test_at_most_ten_authorities_are_listed(app: Signpost) -> None:
    """A national register has hundreds: the answer names ten, and says how many more there are."""
    many = "\n".join(
        f"X{n:03d},Ann,Lee,Nurse,Org,Borough {n:02d},0114 496 0{n:03d},a{n}@x.example,practitioner" for n in range(12)
    )
    await import_feeds(
        app.ctx.db, app.ctx.keys, [Feed("practitioners.csv", f"{PRACTITIONERS_HEADER}\n{many}\n")], app.ctx.clock.now()
    )
    reply = await say(app, "AD01", "lead-notices Atlantis")
    names = reply.text.split("are: ", 1)[1]
    assert names.count(",") == 10 and names.endswith("and 5 more.") and "Borough 00" in names, reply.text


async def list_linked(app: Signpost, authority: str | None) -> list[str]:
    async with audited(app.ctx, "tester", Action.PRACTITIONER_LIST) as audit:
        return [link.practitioner_id for link in await people.linked(app.ctx, audit, authority)]


async def test_practitioner_list_reads_the_authority_in_any_case_and_spacing(app: Signpost) -> None:
    """`signpost practitioner list --authority "west vale"` lists West Vale's links (it listed nobody)."""
    assert await list_linked(app, None) == ["P001", "W001"]
    for typed in ("northshire", "NORTH SHIRE"):
        assert await list_linked(app, typed) == ["P001"]
    assert await list_linked(app, "west vale") == ["W001"]
    events = await audit_events(app, Action.PRACTITIONER_LIST.value)
    assert [e.detail for e in events][-1] == "authority West Vale"


async def test_practitioner_list_refuses_an_unknown_authority_naming_the_known_ones(app: Signpost) -> None:
    with pytest.raises(Refused) as refused:
        await list_linked(app, "Atlantis")
    assert str(refused.value) == f"There is no local authority by that name in the register. {KNOWN}"
    event = (await audit_events(app, Action.PRACTITIONER_LIST.value))[-1]
    assert (event.outcome, event.detail) == ("refused", "no such authority")


async def test_a_childs_name_under_local_authority_is_never_offered_as_an_authority(app: Signpost) -> None:
    """A misaligned children row put a child's name under local_authority, an authority no
    practitioner belongs to: the chat's list of known authorities and the terminal's refusal name
    only the authorities practitioners belong to, and typing the name finds no authority."""
    assert (await misaligned.import_misaligned(app)).ok
    for typed in ("Atlantis all", f"{misaligned.NAME_AS_AUTHORITY} off", "zqxmarker vvtest"):
        reply = await say(app, "AD01", f"lead-notices {typed}")
        assert (reply.outcome, reply.text) == (
            Outcome.INVALID,
            f"There is no local authority by that name in the register. {KNOWN}",
        ), typed
    with pytest.raises(Refused) as refused:
        await list_linked(app, misaligned.NAME_AS_AUTHORITY)
    assert str(refused.value) == f"There is no local authority by that name in the register. {KNOWN}"
    assert await setting(app, misaligned.NAME_AS_AUTHORITY) is lead.LeadNotices.LEAD  # nothing set for it


async def test_a_register_with_children_and_no_practitioners_offers_no_authority(signpost: Signpost) -> None:
    """Children imported before any practitioner: no authority is known yet, and the answer says
    which feed makes one known, naming none of the children's."""
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, misaligned.feeds()[:1], signpost.ctx.clock.now())
    with pytest.raises(Refused) as refused:
        await list_linked(signpost, "Atlantis")
    assert str(refused.value) == (
        "There is no local authority by that name in the register. "
        "It holds none yet: import the practitioners feed first."
    )
