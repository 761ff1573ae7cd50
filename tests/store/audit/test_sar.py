"""Subject access reports: every event that touched one child — when, organisation, role, purpose, outcome.

Lookups and searches need a fresh step-up code: practitioners enrol and answer with real codes
(say_fresh). A challenged lookup names no child, so only the lookup that ran is in the report."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.app import Signpost
from handlers.access import jobs as access_jobs
from handlers.clock import FakeClock
from handlers.reconcile import run_batch
from handlers.roll import Roll, read_roster
from handlers.vocabulary import Action, Origin, Outcome
from store.audit.log import (
    CANDIDATES_AT_MOST,
    CANDIDATES_PREFIX,
    AuditRecord,
    append,
    iter_events,
    origin_event,
    to_json_line,
)
from store.audit.sar import (
    ACTION_PURPOSES,
    ACTION_WORDS,
    DECIDING,
    NEVER_ABOUT_A_CHILD,
    NO_PURPOSE,
    OPERATOR_PURPOSE,
    POSSIBLE_MATCH,
    REQUEST_NOT_MADE,
    REQUEST_REFUSED,
    SHIELDED_NOTICE,
    WITHHELD,
    WITHHELD_WORD,
    subject_access,
)
from store.register.feeds import Feed, import_feeds
from store.register.refs import make_reference, references
from store.tables.audit import AuditEvent
from store.tables.base import Base
from store.tables.register import Child
from tests.access_helpers import decide, load_access, request_access
from tests.factories import AMY, BEN, CHILDREN_HEADER, NO_INVOLVEMENTS, SHIELDED, load_standard
from tests.stepup_helpers import say_fresh


async def report(app: Signpost, ref: str, *, with_names: bool = False):  # type: ignore[no-untyped-def]
    return await subject_access(app.ctx.db, app.ctx.sealer, int(ref), app.ctx.clock.now(), with_names=with_names)


async def test_report_lists_everyone_who_reached_the_child_by_organisation_and_role(
    signpost: Signpost,
    clock: FakeClock,
) -> None:
    await load_standard(signpost)
    await say_fresh(signpost, "P001", AMY)
    clock.advance(hours=2)
    await say_fresh(signpost, "P002", "Amy Jones 03/04/2014")
    await say_fresh(signpost, "P003", BEN)  # another child: not in Amy's report

    sar = await report(signpost, AMY)

    assert [(e.at, e.organisation, e.role, e.action, e.outcome, e.purpose) for e in sar.entries] == [
        (
            "2026-11-02T09:00:00+00:00",
            "Northshire Children's Services",
            "Social worker",
            "lookup",
            "answered",
            NO_PURPOSE,
        ),
        (  # issue 18: Signpost told Amy's lead professional (P001) who found her, as the search answered
            "2026-11-02T11:00:00+00:00",
            "Northshire School Health",
            "School nurse",
            "lead_professional_informed",
            "done",
            ACTION_PURPOSES["lead_professional_informed"],
        ),
        (
            "2026-11-02T11:00:00+00:00",
            "Northshire School Health",
            "School nurse",
            "search",
            "answered",
            NO_PURPOSE,
        ),
    ]
    text = sar.to_text()
    assert "999 000 0018" in text and "Social worker, Northshire Children's Services (Northshire)" in text
    assert "Sam" not in text and "Carter" not in text and "Priya" not in text  # no names unless asked
    assert all(e.practitioner is None for e in sar.entries)


async def test_names_only_when_asked(signpost: Signpost) -> None:
    await load_standard(signpost)
    await say_fresh(signpost, "P001", AMY)
    sar = await report(signpost, AMY, with_names=True)
    assert sar.entries[0].practitioner == "Sam Carter (P001)"
    assert "Sam Carter (P001) — Social worker" in sar.to_text()


async def test_ambiguous_search_that_touched_the_child_is_reported(signpost: Signpost) -> None:
    """The family sees that a search considered their child even though nothing was shown: each
    twin's report has the search once, as a possible match. Each twin is a subject of the event (a
    candidate strong enough to accept) and so carries no tag as well: a tag beside a reference on
    one event would name that tag once the child is destroyed."""
    await load_standard(signpost)
    await say_fresh(signpost, "P001", "Lily Brown 20/01/2019")
    for twin in ("9990000034", "9990000042"):
        sar = await report(signpost, twin)
        assert [(e.action, e.outcome) for e in sar.entries] == [("search", "ambiguous")]
        assert "searched for by name and date of birth; " + POSSIBLE_MATCH in sar.to_text()
    (event,) = await events_of(signpost, "ambiguous")
    assert sorted(event.subject_refs.split()) == ["9990000034", "9990000042"]
    assert not event.detail.startswith(CANDIDATES_PREFIX)  # no tag stands beside a reference


async def events_of(app: Signpost, outcome: str) -> list[AuditEvent]:
    async with app.ctx.db.read() as session:
        return list((await session.execute(select(AuditEvent).where(AuditEvent.outcome == outcome))).scalars())


async def test_a_weak_only_candidate_is_in_its_report_as_a_possible_match(signpost: Signpost) -> None:
    """A brother's name on Ben's date of birth: Ben is the one candidate, held back by the sibling
    guard, and the search is ambiguous. Ben's report shows it as a possible match,
    not answered (today's subjects carry only candidates strong enough to accept); Amy's does not.
    The event records Ben as a tag, never his reference, and names him as no subject."""
    await load_standard(signpost)
    reply = await say_fresh(signpost, "P003", "Sam Okafor 12/09/2016")
    assert reply.outcome is Outcome.AMBIGUOUS

    sar = await report(signpost, BEN)
    assert [(e.role, e.action, e.outcome, e.purpose) for e in sar.entries] == [
        ("Teacher", "search", "ambiguous", NO_PURPOSE)
    ]
    assert "searched for by name and date of birth; " + POSSIBLE_MATCH in sar.to_text()
    assert json.loads(sar.to_json())["entries"][0]["outcome"] == POSSIBLE_MATCH
    assert (await report(signpost, AMY)).entries == ()

    (event,) = await events_of(signpost, "ambiguous")
    async with signpost.ctx.db.read() as session:
        tag = await signpost.ctx.sealer.candidate_tag(session, int(BEN))
    assert event.detail == CANDIDATES_PREFIX + str(tag) and event.subject_refs == ""
    assert BEN not in repr([to_json_line(e) async for e in iter_events(signpost.ctx.db)])


async def test_a_search_with_several_candidates_records_at_most_five(signpost: Signpost) -> None:
    """Seven same-named children born near the same day: the search records five possible matches,
    the five heaviest (those strong enough to accept as subjects, the rest as tags); the others'
    reports do not show it."""
    await load_standard(signpost)
    refs = [str(ref) for ref, _ in zip(references(999000100), range(7), strict=False)]
    rows = "".join(f"{ref},Ruby,Hale,,2017-05-0{1 + n % 2},F,M{n} 1AA,Northshire,false\n" for n, ref in enumerate(refs))
    ruby = Feed("children.csv", f"{CHILDREN_HEADER}\n{rows}")
    await import_feeds(signpost.ctx.db, signpost.ctx.keys, [ruby], signpost.ctx.clock.now())
    assert (await say_fresh(signpost, "P001", "Ruby Hale 01/05/2017")).outcome is Outcome.AMBIGUOUS
    (event,) = await events_of(signpost, "ambiguous")
    subjects, tags = event.subject_refs.split(), event.detail.removeprefix(CANDIDATES_PREFIX).split()
    assert len(subjects) + len(tags) == CANDIDATES_AT_MOST  # the strong as subjects, then the weak as tags
    listed = [ref for ref in refs if (await report(signpost, ref)).entries]
    assert len(listed) == CANDIDATES_AT_MOST
    assert set(refs[::2]) <= set(listed)  # the four born on the day asked come first


async def test_a_destroyed_candidate_is_in_no_report_export_or_row(signpost: Signpost) -> None:
    """Ben was a possible match, then is destroyed (a corrected date of birth puts him past 24). His
    report no longer shows the search, the audit export never named him, no row of any table but
    his own (reference and "destroyed") names him, and the tag the event keeps can no longer be
    computed by anyone: nothing readable says he was ever a candidate."""
    await load_standard(signpost)
    await say_fresh(signpost, "P003", "Sam Okafor 12/09/2016")
    assert [e.outcome for e in (await report(signpost, BEN)).entries] == ["ambiguous"]
    (event,) = await events_of(signpost, "ambiguous")
    async with signpost.ctx.db.read() as session:
        tag = await signpost.ctx.sealer.candidate_tag(session, int(BEN))
    assert tag is not None and tag in event.detail

    redated = Feed("children.csv", f"{CHILDREN_HEADER}\n{BEN},Ben,Okafor,,2000-09-12,M,M4 5CD,Northshire,false\n")
    done = await import_feeds(
        signpost.ctx.db, signpost.ctx.keys, [redated], signpost.ctx.clock.now(), destroy_redated=True
    )
    assert done.past_retention == 1

    assert (await report(signpost, BEN)).entries == ()
    async with signpost.ctx.db.read() as session:
        assert await signpost.ctx.sealer.candidate_tag(session, int(BEN)) is None
        named = []
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                if BEN in repr(tuple(row)) and table.name != "children":
                    named.append(table.name)
        assert named == []
        kept = (await session.execute(select(Child.state).where(Child.ref == int(BEN)))).scalar_one()
    assert kept == "destroyed"
    (still,) = await events_of(signpost, "ambiguous")
    assert still.detail == event.detail  # the event is whole (and chained); its tag points nowhere
    assert BEN not in repr([to_json_line(e) async for e in iter_events(signpost.ctx.db)])


async def test_purpose_comes_from_the_practitioners_access_request(signpost: Signpost, clock: FakeClock) -> None:
    """Shielded hit, request with a purpose, a repeat (already waiting: its own purpose, kept), the
    duty manager's approval, the granted lookup: the purpose of the request made is carried to the
    requester's later entries (the repeat made none).

    Through the real commands: the access request audits action "request_access" with the purpose
    as its terms, sealed under the child's key; S001 and DM02 enrol and answer their step-up codes
    (challenged events name no child, so they are not in the child's report)."""
    await load_access(signpost)
    assert (await say_fresh(signpost, "S001", SHIELDED)).outcome is Outcome.SHIELDED
    clock.advance(minutes=3)
    purpose = "Joint home visit with police tomorrow"
    assert (await request_access(signpost, "S001", SHIELDED, purpose)).outcome is Outcome.DONE
    clock.advance(minutes=1)
    again = await request_access(signpost, "S001", SHIELDED, "still need it")
    assert again.outcome is Outcome.INFO and "already waiting" in again.text
    assert (await decide(signpost, "DM02", "approve", 1)).outcome is Outcome.DONE
    clock.advance(minutes=30)
    assert (await say_fresh(signpost, "S001", SHIELDED)).outcome is Outcome.ANSWERED

    sar = await report(signpost, SHIELDED)

    assert [(e.role, e.action, e.outcome, e.purpose) for e in sar.entries] == [
        ("Health visitor", "lookup", "shielded", NO_PURPOSE),
        ("Health visitor", "request_access", "done", purpose),
        ("Health visitor", "request_access", "info", "still need it"),
        ("Duty manager", "approve", "done", DECIDING),  # a decision, not an enquiry of their own
        ("Health visitor", "lookup", "answered", purpose),
    ]
    assert "requested access (purpose given)" in sar.to_text()


async def test_a_refused_access_request_says_so_and_never_shows_its_purpose(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A request whose purpose named the child is refused and its purpose is not kept: the report says
    the request was refused (not "ordinary enquiry", and not an earlier request's purpose), in text and
    JSON, and the refused words appear nowhere. The requester's later entries keep the purpose they
    gave in the request that went through."""
    await load_access(signpost)
    assert (await request_access(signpost, "S001", SHIELDED, "visit Mia Stone at home")).outcome is Outcome.INVALID
    clock.advance(minutes=1)
    purpose = "Joint home visit with police tomorrow"
    assert (await request_access(signpost, "S001", SHIELDED, purpose)).outcome is Outcome.DONE
    assert (await decide(signpost, "DM02", "deny", 1)).outcome is Outcome.DONE
    clock.advance(minutes=1)
    again = await request_access(signpost, "S001", SHIELDED, "to check on Mia after school")
    assert again.outcome is Outcome.INVALID

    sar = await report(signpost, SHIELDED)

    requests = [(e.outcome, e.purpose) for e in sar.entries if e.action == "request_access"]
    assert requests == [("invalid", REQUEST_REFUSED), ("done", purpose), ("invalid", REQUEST_REFUSED)]
    text, doc = sar.to_text(), json.loads(sar.to_json())
    refused = [line.strip() for line in text.splitlines() if line.endswith("purpose: " + REQUEST_REFUSED)]
    assert refused == [f"requested access (purpose given); refused, nothing shown; purpose: {REQUEST_REFUSED}"] * 2
    assert [e["purpose"] for e in doc["entries"] if e["action"] == ACTION_WORDS["request_access"]] == [
        REQUEST_REFUSED,
        WITHHELD_WORD,  # the purpose given, withheld: the child is shielded (Signpost's own words stay)
        REQUEST_REFUSED,
    ]
    for said in ("Mia", "Stone", "after school", "at home"):
        assert said not in text and said not in sar.to_json(), said


async def test_a_request_for_a_record_that_is_not_shielded_is_no_ordinary_enquiry(signpost: Signpost) -> None:
    """Asking for access to a record that is not shielded makes no request and keeps no purpose: the
    report says so, rather than calling it an ordinary enquiry."""
    await load_access(signpost)
    assert (await request_access(signpost, "P002", AMY, "section 47 enquiry")).outcome is Outcome.INFO
    sar = await report(signpost, AMY)
    assert [(e.action, e.outcome, e.purpose) for e in sar.entries] == [("request_access", "info", REQUEST_NOT_MADE)]
    assert "section 47" not in sar.to_text()


async def test_a_child_nobody_looked_up(signpost: Signpost) -> None:
    await load_standard(signpost)
    sar = await report(signpost, NO_INVOLVEMENTS)
    assert sar.entries == ()
    assert "No one has looked up this record." in sar.to_text()
    assert json.loads(sar.to_json())["entries"] == []
    assert json.loads(sar.to_json())["in_register"] is True


async def test_a_reference_not_in_the_register_is_said_to_be_so(signpost: Signpost) -> None:
    """A report for a reference no child holds said "No one has looked up this record", as if
    there were a record: it says no child with it is in the register, and whether any event in the
    audit log mentions it (a report asked for it before, say)."""
    await load_standard(signpost)
    absent = str(make_reference(999_000_900))  # a valid reference no feed holds
    sar = await report(signpost, absent)
    text = sar.to_text()
    assert "No one has looked up" not in text
    assert "No child with reference 999 000 9007 is in the register: check the reference." in text
    assert text.rstrip().endswith("No event in the audit log mentions this reference.")
    assert json.loads(sar.to_json())["in_register"] is False
    asked = origin_event(Origin.TERMINAL, Action.SAR, signpost.ctx.clock.now(), who="ops", subjects=(int(absent),))
    async with signpost.ctx.db.write() as session:
        await append(session, [asked])
    text = (await report(signpost, absent)).to_text()
    assert "Events in the audit log that mention this reference:" in text and "1 entries." in text
    assert "a subject access report about this reference was produced" in text


async def test_a_decision_that_changed_nothing_is_not_reported_as_one(signpost: Signpost) -> None:
    """DM02 approves; DM03's `deny 1` then changes nothing ("already approved… Nothing changed"),
    and the report said "denied an access request; refused", which a family reads as access
    denied. It says a decision was tried and nothing changed; the approval reads as before."""
    await load_access(signpost)
    assert (await request_access(signpost, "S001", SHIELDED)).outcome is Outcome.DONE
    assert (await decide(signpost, "DM02", "approve", 1)).outcome is Outcome.DONE
    late = await decide(signpost, "DM03", "deny", 1)
    assert late.outcome is Outcome.REFUSED and "Nothing changed" in late.text
    text = (await report(signpost, SHIELDED)).to_text()
    assert "denied" not in text
    decided = [line.strip() for line in text.splitlines() if "decid" in line or "approved" in line]
    assert decided == [
        f"approved an access request; done; purpose: {DECIDING}",
        f"tried to decide an access request; nothing changed (no decision was made); purpose: {DECIDING}",
    ]


def test_every_action_is_worded_for_a_family_or_never_names_a_child() -> None:
    """Internal names (`pending;`, `relay_read;`) showed through in reports: every Action is either
    given words here or declared never to name a child, so a new one cannot escape unworded."""
    worded = {action for action in Action if action.value in ACTION_WORDS}
    assert worded.isdisjoint(NEVER_ABOUT_A_CHILD), sorted(worded & NEVER_ABOUT_A_CHILD)
    unaccounted = set(Action) - worded - NEVER_ABOUT_A_CHILD
    assert not unaccounted, f"give these words in store/audit/sar.py (or say they never name a child): {unaccounted}"
    assert all(words and "_" not in words for words in ACTION_WORDS.values())


async def test_pending_and_relay_reads_are_in_plain_words(signpost: Signpost) -> None:
    """A duty manager's `pending` and `relays`, and a relayed message read by its writer, each name
    the child: the report showed them as `pending;`, `relay_traffic;` and `relay_read;`."""
    await load_access(signpost)
    assert (await request_access(signpost, "S001", SHIELDED)).outcome is Outcome.DONE
    assert (await say_fresh(signpost, "DM02", "pending")).outcome is Outcome.INFO
    sent = await say_fresh(signpost, "P002", f"message {SHIELDED} section 47 enquiry, please call me")
    assert sent.outcome is Outcome.DONE
    assert (await say_fresh(signpost, "P002", "relay 1")).outcome is Outcome.INFO
    assert (await say_fresh(signpost, "DM02", "relays")).outcome is Outcome.INFO
    sar = await report(signpost, SHIELDED)
    assert {"pending", "relay_read", "relay_traffic"} <= {e.action for e in sar.entries}
    actions = [line.strip().split(";")[0] for line in sar.to_text().splitlines() if "; purpose:" in line]
    assert all("_" not in words and words not in {a.value for a in Action} for words in actions), actions
    assert ACTION_WORDS["pending"] in actions and ACTION_WORDS["relay_read"] in actions


async def test_reviews_and_requests_that_made_none_read_as_what_they_were(signpost: Signpost) -> None:
    """A family's report (newcomer): a duty manager's `pending` said "purpose: not asked (ordinary
    enquiry)", an admin's `relays` was "a duty manager's review", and access asked for to a record that
    is not shielded read "requested access (purpose given)" beside "no request was made"."""
    await load_access(signpost)
    assert (await request_access(signpost, "S001", SHIELDED)).outcome is Outcome.DONE
    assert (await say_fresh(signpost, "DM02", "pending")).outcome is Outcome.INFO
    sent = await say_fresh(signpost, "P002", f"message {SHIELDED} section 47 enquiry, please call me")
    assert sent.outcome is Outcome.DONE
    assert (await say_fresh(signpost, "DM02", "relays")).outcome is Outcome.INFO
    lines = [line.strip() for line in (await report(signpost, SHIELDED)).to_text().splitlines()]
    assert (
        "listed among access requests waiting for a decision (seen by a duty manager); reference and the purpose "
        "given shown, nothing else of the record; purpose: reviewing the access requests waiting for a decision"
    ) in lines
    assert (
        "counted in a review of relayed messages (counts and senders, no contents); information given, nothing of the "
        "record shown; purpose: reviewing relayed messages for misuse"
    ) in lines
    assert (await say_fresh(signpost, "S001", f"request {AMY} section 47 enquiry")).outcome is Outcome.INFO
    lines = [line.strip() for line in (await report(signpost, AMY)).to_text().splitlines()]
    assert (
        "asked for access, but the record is not shielded: no request was made; information given, nothing of the "
        "record shown; purpose: not kept (no request was made)"
    ) in lines


async def test_json_carries_the_same_entries(signpost: Signpost) -> None:
    await load_standard(signpost)
    await say_fresh(signpost, "P001", AMY)
    doc = json.loads((await report(signpost, AMY)).to_json())
    assert doc["child_ref"] == "999 000 0018" and doc["with_names"] is False
    assert [(e["organisation"], e["role"], e["outcome"]) for e in doc["entries"]] == [
        ("Northshire Children's Services", "Social worker", "contact details shown")
    ]


async def test_events_no_chat_user_sent_say_who_acted_by_their_origin(signpost: Signpost, clock: FakeClock) -> None:
    """The scheduler ending a grant, an admin's batch match and an operator's report at the terminal are
    each described kindly from the event's origin (and an event from before origins, spelt "cli", too)."""
    await load_access(signpost)
    await request_access(signpost, "P002", SHIELDED)
    await decide(signpost, "DM02", "approve", 1, "1h")
    clock.advance(hours=2)
    assert await access_jobs.expire_grants(signpost.ctx, signpost.ctx.clock.now()) == 1
    roll = f"{CHILDREN_HEADER}\n,Mia,Stone,,2015-06-30,,,,\n"
    (await run_batch(signpost.ctx, "AD01", read_roster(Roll("roll.csv", roll)), 1, "corr-roll")).close()
    now, child = signpost.ctx.clock.now(), (int(SHIELDED),)
    legacy = AuditRecord(now, None, "cli", "local", "ops", None, None, None, "terminal", "sar", "done", child, 0, "c1")
    terminal = origin_event(Origin.TERMINAL, Action.SAR, now, who="ops", subjects=child)
    async with signpost.ctx.db.write() as session:
        await append(session, [legacy, terminal])

    sar = await report(signpost, SHIELDED, with_names=True)
    wanted = {"grant_expired", "match_batch", "sar"}
    assert [
        (e.action, e.organisation, e.role, e.purpose, e.practitioner) for e in sar.entries if e.action in wanted
    ] == [
        (
            "grant_expired",
            "Signpost operations",
            "Signpost itself (scheduled work, no person involved)",
            "none needed (Signpost's own scheduled work, e.g. an access grant ending)",
            "Signpost (automatic)",
        ),
        (
            "match_batch",
            "Signpost Operations",
            "Service admin, matching a list of children (batch match)",
            "not asked (a list matched against the register)",
            "Alex Kim (AD01)",
        ),
        ("sar", "Signpost operations", "administrator at the terminal", OPERATOR_PURPOSE, "terminal user ops"),
        ("sar", "Signpost operations", "administrator at the terminal", OPERATOR_PURPOSE, "terminal user ops"),
    ]
    assert "unregistered" not in sar.to_text() and "matched against a list of children" in sar.to_text()
    # A batch match shows the service a reference and a confidence: never "contact details shown".
    [batch] = [line for line in sar.to_text().splitlines() if "batch match" in line and ";" in line]
    assert "contact details shown" not in batch and "reference listed as a candidate" in batch


async def test_a_relay_message_is_reported_sent_only_when_it_was(signpost: Signpost) -> None:
    """A message that was refused (it named the child) was reported "sent a message through
    Signpost's relay" like one that was delivered: the report says which reached anyone."""
    await load_access(signpost)
    sent = await say_fresh(signpost, "P002", f"message {SHIELDED} section 47 enquiry, please call me")
    assert sent.outcome is Outcome.DONE
    refused = await say_fresh(signpost, "P002", f"message {SHIELDED} about Mia Stone, please call me")
    assert refused.outcome is not Outcome.DONE
    lines = [line for line in (await report(signpost, SHIELDED)).to_text().splitlines() if "relay" in line]
    assert [line.split(";")[1].strip() for line in lines] == ["sent", "not sent"]
    assert all(line.strip().startswith("a message through Signpost's relay") for line in lines)


async def test_a_shielded_childs_report_withholds_who_worked_with_them_and_where(signpost: Signpost) -> None:
    """Security review: a shielded child's report listed "Health visitor, Southvale NHS Trust
    (Southvale)" for every lookup and relay, telling the requester the child's area and services.
    Text and JSON, with and without names, keep the role, when, what and outcome; organisations,
    local authorities, names and the purpose a practitioner gave are withheld, and the report says so
    first. A child who is not shielded has the same report as before."""
    await load_access(signpost)
    purpose = "Joint home visit with police at Southvale Road tomorrow"
    assert (await say_fresh(signpost, "S001", SHIELDED)).outcome is Outcome.SHIELDED
    assert (await request_access(signpost, "S001", SHIELDED, purpose)).outcome is Outcome.DONE
    assert (await decide(signpost, "DM02", "approve", 1)).outcome is Outcome.DONE
    assert (await say_fresh(signpost, "S001", SHIELDED)).outcome is Outcome.ANSWERED
    sent = await say_fresh(signpost, "P002", f"message {SHIELDED} section 47 enquiry, please call me")
    assert sent.outcome is Outcome.DONE
    assert (await say_fresh(signpost, "P002", "relay 1")).outcome is Outcome.INFO

    for with_names in (False, True):
        sar = await report(signpost, SHIELDED, with_names=with_names)
        assert sar.shielded
        secrets = {e.organisation for e in sar.entries} | {e.local_authority for e in sar.entries if e.local_authority}
        secrets |= {e.practitioner for e in sar.entries if e.practitioner} | {purpose}
        assert {"Southvale NHS Trust", "Southvale", "Northshire School Health", purpose} <= secrets
        if with_names:
            assert "Lee Hart (S001)" in secrets
        text, as_json = sar.to_text(), sar.to_json()
        for rendered in (text, as_json):
            leaked = [s for s in secrets if s in rendered]
            assert not leaked, leaked
            assert SHIELDED_NOTICE in rendered
        assert text.startswith(SHIELDED_NOTICE + "\n")
        assert "Health visitor" in text and "looked up by reference; contact details shown" in text
        doc = json.loads(as_json)
        assert doc["withheld"] == list(WITHHELD) and doc["shielded"] is True
        assert {e["organisation"] for e in doc["entries"]} == {"withheld"}
        assert {e["local_authority"] for e in doc["entries"]} == {"withheld"}
        assert {e["practitioner"] for e in doc["entries"]} == ({"withheld"} if with_names else {None})
        assert "Health visitor" in {e["role"] for e in doc["entries"]}

    open_record = await report(signpost, AMY, with_names=True)  # not shielded: as before
    assert not open_record.shielded
    assert SHIELDED_NOTICE not in open_record.to_text() and "withheld" not in json.loads(open_record.to_json())
