"""The transparency report's numbers against a known audit, on SQLite and PostgreSQL: what is published
nationally and per authority, what is suppressed, that nothing personal is in it, and that it is counted
by a fixed handful of grouped queries however long the audit is."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import Signpost
from bot.transparency_page import page, to_csv, to_json
from handlers.clock import FakeClock
from handlers.transparency import (
    ALL_ROLES,
    NATIONAL,
    Figure,
    Report,
    ReportError,
    Row,
    Section,
    build,
    month_range,
    protect,
    refuse_before_the_audit,
)
from handlers.vocabulary import Action, Outcome, Platform, Principal
from store.audit.log import append
from store.tables.audit import AuditChainEntry, AuditEvent
from tests import misaligned
from tests.factories import AMY, say
from tests.statements import statements_sent
from tests.stepup_helpers import ensure_enrolled, say_fresh
from tests.transparency_audit import MONTH, NOW, OCT, PERSONAL, chat, load_people, write_known_audit

N, S = "Northshire", "Southvale"


def published(report: Report, section: str, measure: str) -> dict[str, int | str | None]:
    """One row as a reader sees it: {area: count, "fewer than 5", or None where not counted by authority}."""
    found = next(s for s in report.sections if s.key == section)
    row = next(r for r in found.rows if r.label == measure)

    def shown(f: Figure | None) -> int | str | None:
        return None if f is None else (f.text if f.suppressed else f.count)

    return {NATIONAL: shown(row.national)} | {
        la: shown(f) for la, f in zip(report.authorities, row.by_authority, strict=True)
    }


LESS = "fewer than 5"
WITHHELD = "withheld"


@pytest.fixture
async def known(signpost: Signpost) -> Signpost:
    await load_people(signpost)
    await write_known_audit(signpost)
    return signpost


async def test_report_counts_the_known_october_audit_per_authority_and_suppresses_small_numbers(
    known: Signpost,
) -> None:
    """Each figure matches the audit written for October; 1-4 reads "fewer than 5", 0 stays 0; events in
    September and November, refused lookups and refused approvals are not counted."""
    report = await build(known.ctx.db, NOW, MONTH)
    assert report.month == MONTH and report.complete and report.authorities == (N, S)
    assert report.next_month is None  # November is still running: no link to a report not yet published
    assert (await build(known.ctx.db, NOW, "2026-09")).next_month == MONTH
    expect = {
        # 9 nationally less 7 in Northshire would give Southvale's "fewer than 5" away: Northshire is withheld.
        ("lookups_keyed", "Answered (contact details shown)"): {NATIONAL: 9, N: WITHHELD, S: LESS},
        ("lookups_keyed", "No match"): {NATIONAL: LESS, N: LESS, S: 0},
        ("lookups_keyed", "Not sure which child (nothing shown)"): {NATIONAL: 0, N: 0, S: 0},
        ("lookups_keyed", "Shielded (nothing shown)"): {NATIONAL: 5, N: 5, S: 0},
        ("lookups_demographic", "Answered (contact details shown)"): {NATIONAL: 6, N: 6, S: 0},
        ("lookups_demographic", "Not sure which child (nothing shown)"): {NATIONAL: LESS, N: 0, S: LESS},
        ("access_requests", "Approved"): {NATIONAL: 6, N: 6, S: 0},
        ("access_requests", "Denied"): {NATIONAL: LESS, N: LESS, S: 0},
        ("access_requests", "Expired undecided"): {NATIONAL: 5, N: None, S: None},
        ("registrations", "Approved"): {NATIONAL: 5, N: 5, S: 0},
        ("registrations", "Denied"): {NATIONAL: LESS, N: LESS, S: 0},
        ("misuse_alerts", "Enumeration"): {NATIONAL: 5, N: 5, S: 0},
        ("misuse_alerts", "After hours"): {NATIONAL: LESS, N: 0, S: LESS},
        ("misuse_alerts", "Probing"): {NATIONAL: 0, N: 0, S: 0},
        ("contacts", "Lead professionals informed"): {NATIONAL: 12, N: 12, S: 0},
        ("contacts", "Other practitioners informed"): {NATIONAL: LESS, N: LESS, S: 0},
        ("contacts", "Relay messages and answers sent"): {NATIONAL: 0, N: 0, S: 0},
        ("children", "Archived"): {NATIONAL: 7, N: None, S: None},
        ("children", "Destroyed"): {NATIONAL: LESS, N: None, S: None},
        ("subject_access", "Reports produced"): {NATIONAL: LESS, N: None, S: None},
        # Registered: the register now (11 in Northshire including the admin; 1 in Southvale).
        ("practitioners_registered", "Teacher"): {NATIONAL: 7, N: 7, S: 0},
        ("practitioners_registered", "Health visitor"): {NATIONAL: LESS, N: 0, S: LESS},
        ("practitioners_registered", "All roles"): {NATIONAL: 12, N: WITHHELD, S: LESS},
        # Active: distinct people with a chat command in October (P003 only asked for help, on the 31st).
        ("practitioners_active", "Teacher"): {NATIONAL: 7, N: 7, S: 0},
        ("practitioners_active", "Social worker"): {NATIONAL: LESS, N: LESS, S: 0},
        ("practitioners_active", "All roles"): {NATIONAL: 11, N: WITHHELD, S: LESS},
    }
    for (section, measure), want in expect.items():
        assert published(report, section, measure) == want, (section, measure)
    every_rule = [r.label for s in report.sections if s.key == "misuse_alerts" for r in s.rows]
    # rules that never fired still show 0
    assert "Lockouts" in every_rule and "Shared login" in every_rule and "Out of area" in every_rule


async def test_chain_head_and_checkpoint_are_as_they_stood_at_month_end(signpost: Signpost) -> None:
    """The head published for October is the chain's head after its last October event, and the
    checkpoint is the last one signed in October (not November's)."""
    await load_people(signpost)
    known = await write_known_audit(signpost)
    report = await build(signpost.ctx.db, NOW, MONTH)
    assert report.chain.size == known.head_at_month_end.size
    assert report.chain.head == known.head_at_month_end.head_hash.hex()
    assert report.chain.checkpoint_size == known.checkpoint.size < report.chain.size
    assert report.chain.checkpoint_head == known.checkpoint.head_hash.hex()
    assert report.chain.checkpoint_at.startswith("2026-10-21T")
    # September: its last event is early in the chain, so its size is counted from the start.
    async with signpost.ctx.db.read() as session:
        september = (await session.execute(select(func.count()).where(AuditEvent.at < OCT))).scalar()
        last = (await session.execute(select(func.max(AuditEvent.seq)).where(AuditEvent.at < OCT))).scalar()
        head = (await session.execute(select(AuditChainEntry.head_hash).where(AuditChainEntry.seq == last))).scalar()
    assert september and report.chain.size > 4 * september
    earlier = await build(signpost.ctx.db, NOW, "2026-09")
    assert (earlier.chain.size, earlier.chain.head) == (september, head.hex() if head else "")
    assert earlier.chain.checkpoint_size is None and "none signed yet" in page(earlier)


async def test_nothing_personal_in_the_page_the_csv_or_the_json(known: Signpost) -> None:
    """No practitioner id, name, email, chat id or child reference appears in any published form,
    and small numbers are marked the same way in each: "fewer than 5", "<5", null with suppressed."""
    report = await build(known.ctx.db, NOW, MONTH)
    html, text, data = page(report), to_csv(report), to_json(report)
    for published_form in (html, text, data):
        for personal in PERSONAL:
            assert personal not in published_form, personal
    assert "fewer than 5" in html
    rows = list(csv.DictReader(io.StringIO(text)))
    denied = {r["area"]: r["value"] for r in rows if r["measure"] == "Denied"}
    assert denied == {NATIONAL: "<5", N: "<5", S: "0"}
    assert not [r for r in rows if r["value"] in {"1", "2", "3", "4"}]
    parsed = json.loads(data)
    keyed = next(s for s in parsed["sections"] if s["key"] == "lookups_keyed")
    answered = keyed["rows"][0]
    assert answered["national"] == {"count": 9, "suppressed": False, "withheld": False}
    assert answered["authorities"][S] == {"count": None, "suppressed": True, "withheld": False}
    assert answered["authorities"][N] == {"count": None, "suppressed": True, "withheld": True}
    keyed_answered = {
        r["area"]: r["value"] for r in rows if r["section"] == "lookups_keyed" and r["measure"] == answered["measure"]
    }
    assert keyed_answered == {NATIONAL: "9", N: "withheld", S: "<5"}
    assert "withheld" in html
    counts = [
        cell["count"]
        for s in parsed["sections"]
        for r in s["rows"]
        for cell in [r["national"], *r["authorities"].values()]
        if cell is not None
    ]
    assert not [c for c in counts if c in {1, 2, 3, 4}]


async def test_real_lookups_through_the_dispatcher_are_counted_in_the_lookers_authority(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Five answered lookups sent from the console by Northshire's social worker are published as 5
    answered keyed lookups in Northshire, in the month the clock says."""
    await load_people(signpost)
    clock.set(OCT + timedelta(days=3))
    await ensure_enrolled(signpost, "P001")
    for _ in range(5):
        reply = await say(signpost, "P001", AMY)
        assert reply.outcome is Outcome.ANSWERED
    report = await build(signpost.ctx.db, NOW, MONTH)
    assert published(report, "lookups_keyed", "Answered (contact details shown)") == {NATIONAL: 5, N: 5, S: 0}


async def test_answers_not_shown_leave_the_lookup_counts_and_active_practitioners_as_they_are(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Five answered lookups whose answers the chat platform lost (each with its ``answer_not_shown``
    event) are still five answered lookups, by one active practitioner: the events saying the answers
    were not shown are neither lookups nor people."""
    await load_people(signpost)
    clock.set(OCT + timedelta(days=3))
    await ensure_enrolled(signpost, "P001")
    for _ in range(5):
        reply = await say(signpost, "P001", AMY)
        await signpost.dispatcher.not_shown(reply, "test:lost")
    async with signpost.ctx.db.read() as session:
        lost = await session.scalar(select(func.count()).where(AuditEvent.action == Action.ANSWER_NOT_SHOWN.value))
    assert lost == 5
    report = await build(signpost.ctx.db, NOW, MONTH)
    assert published(report, "lookups_keyed", "Answered (contact details shown)") == {NATIONAL: 5, N: 5, S: 0}
    assert published(report, "practitioners_active", "Social worker") == {NATIONAL: LESS, N: LESS, S: 0}


async def test_registration_decisions_are_not_counted_as_access_request_decisions(
    signpost: Signpost, clock: FakeClock
) -> None:
    """Three chat accounts registered through the dispatcher, two approved and one denied by DM01, and
    no shielded record asked for: no access request was decided, and the registrations show as such."""
    await load_people(signpost)
    clock.set(OCT + timedelta(days=3))
    for n, pid in enumerate(("P001", "P002", "TCH01"), start=1):
        asked = await say(signpost, Principal(Platform.SLACK, "T1", f"U-new-{n}"), f"register {pid}")
        assert asked.outcome is Outcome.DONE, asked
    for decision in ("approve R1", "approve R2", "deny R3 not theirs"):
        assert (await say_fresh(signpost, "DM01", decision)).outcome is Outcome.DONE, decision
    report = await build(signpost.ctx.db, NOW, MONTH)
    for measure in ("Approved", "Denied"):
        assert published(report, "access_requests", measure) == {NATIONAL: 0, N: 0, S: 0}, measure
        assert published(report, "registrations", measure) == {NATIONAL: LESS, N: LESS, S: 0}, measure


async def test_report_runs_a_fixed_number_of_grouped_queries_however_long_the_audit(known: Signpost) -> None:
    """Counting is GROUP BY in the database: ten times the events, the same number of statements."""
    with statements_sent(known.ctx.db) as statements:
        await build(known.ctx.db, NOW, MONTH)
        few = len(statements)
        async with known.ctx.db.write() as session:
            await append(session, [chat("P001", Action.LOOKUP, Outcome.ANSWERED, OCT) for _ in range(300)])
        statements.clear()
        report = await build(known.ctx.db, NOW, MONTH)
    assert len(statements) == few <= 15
    assert published(report, "lookups_keyed", "Answered (contact details shown)")[NATIONAL] == 309


def test_months_default_to_the_last_complete_one_and_bad_or_future_months_are_refused() -> None:
    """No month: last month. A malformed month or one not begun is refused with a one-line reason."""
    start, end = month_range(None, NOW)
    assert (start.isoformat(), end.isoformat()) == ("2026-10-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    assert month_range("2026-12", NOW + timedelta(days=70))[1].year == 2027
    for bad, why in (
        ("2026-13", "not a month"),
        ("Oct 2026", "not a month"),
        ("\uff12\uff10\uff12\uff16-10", "not a month"),  # 2026 in full-width digits: "\\d" took them
        ("2026-12", "has not begun"),
        ("2026-11", "not over yet: its report is published on 01/12/2026"),
    ):
        with pytest.raises(ReportError, match=why):
            month_range(bad, NOW)


def test_a_month_before_an_audit_begun_this_month_names_the_one_report_there_is() -> None:
    """On a store first used this month, an admin's month before it was told "there are reports for
    2026-11 to 2026-11 so far" (newcomer): one month is named once."""
    first = NOW - timedelta(days=1)
    begun = datetime(first.year, first.month, 1, tzinfo=UTC)
    with pytest.raises(ReportError) as refused:
        refuse_before_the_audit(begun - timedelta(days=1), first, NOW, so_far=True)
    assert str(refused.value) == (
        f"that month is before Signpost's audit begins: there is a report for {begun:%Y-%m} only, so far"
    )


async def test_the_running_month_is_marked_so_far(known: Signpost) -> None:
    """The current month can be asked for so far (an admin at the terminal), never by default: it says
    it is not complete and offers no next month."""
    with pytest.raises(ReportError, match="not over yet"):
        await build(known.ctx.db, NOW, "2026-11")
    report = await build(known.ctx.db, NOW, "2026-11", so_far=True)
    assert not report.complete and report.next_month is None
    assert "so far" in page(report)
    assert published(report, "lookups_keyed", "Answered (contact details shown)")[NATIONAL] == 10


async def test_an_authority_named_like_a_formula_is_text_in_the_csv(known: Signpost) -> None:
    """An authority's name comes from a feed; the public CSV must not hand a spreadsheet a formula
    (CSV injection): a name beginning =, +, - or @ is written with a leading apostrophe, the page
    and the JSON show it as it is."""
    report = await build(known.ctx.db, NOW, MONTH)
    named = dataclasses.replace(report, authorities=('=HYPERLINK("http://127.0.0.1/","open")', "@Southvale"))
    rows = list(csv.DictReader(io.StringIO(to_csv(named))))
    areas = {row["area"] for row in rows}
    assert {'\'=HYPERLINK("http://127.0.0.1/","open")', "'@Southvale"} <= areas
    assert not [area for area in areas if area.startswith(("=", "+", "-", "@"))]
    assert json.loads(to_json(named))["authorities"][0].startswith("=HYPERLINK")


async def test_the_running_months_csv_says_so_far_in_every_row_and_a_complete_months_does_not(
    known: Signpost,
) -> None:
    """The CSV is the file most likely to be published: each row of the running month reads
    "2026-11 (so far)", so an extract of it still says so and a program expecting YYYY-MM stops; a
    complete month's file keeps its plain month and the same header (published copies stay comparable)."""
    running = to_csv(await build(known.ctx.db, NOW, "2026-11", so_far=True))
    header, *rows = list(csv.reader(io.StringIO(running)))
    assert header == ["month", "section", "measure", "area", "value"]
    assert rows and {row[0] for row in rows} == {"2026-11 (so far)"}
    assert running.splitlines()[1].startswith("2026-11 (so far),practitioners_registered,")

    october = to_csv(await build(known.ctx.db, NOW, MONTH))
    header, *rows = list(csv.reader(io.StringIO(october)))
    assert header == ["month", "section", "measure", "area", "value"]
    assert {row[0] for row in rows} == {MONTH} and "so far" not in october


def test_no_small_figure_can_be_worked_out_by_subtraction_from_a_total() -> None:
    """On 3,000 random tables (1-5 authorities, some events with no authority, with and without an
    "All roles" row): every figure shown is the true one, none is from 1 to 4, a withheld one is 5 or
    more, and no shown total has exactly one hidden part (two leave a reader only a range)."""
    rng = random.Random(16)
    withheld = 0
    for _ in range(3000):
        authorities = rng.randint(1, 5)
        raw = [
            [rng.choice((0, 0, 1, 2, 3, 4, 5, 7, 12, 30)) for _ in range(authorities)] for _ in range(rng.randint(1, 5))
        ]
        grid = [[sum(cells) + rng.choice((0, 0, 0, 3)), *cells] for cells in raw]
        labels = [f"measure {i}" for i in range(len(grid))]
        if rng.random() < 0.5:
            grid.append([sum(column) for column in zip(*grid, strict=True)])
            labels.append(ALL_ROLES)
        section = Section(
            "k",
            "t",
            "n",
            tuple(
                Row(label, Figure.of(r[0]), tuple(Figure.of(c) for c in r[1:]))
                for label, r in zip(labels, grid, strict=True)
            ),
        )
        shown = [[row.national, *row.by_authority] for row in protect(section).rows]
        for true_row, shown_row in zip(grid, shown, strict=True):
            for true, figure in zip(true_row, shown_row, strict=True):
                assert figure is not None
                assert figure.count in (None, true) and figure.count not in (1, 2, 3, 4)
                assert not figure.withheld or true >= 5
                withheld += figure.withheld
        sums = [(row[0], row[1:]) for row in shown]
        if labels[-1] == ALL_ROLES:
            sums += [(shown[-1][c], [row[c] for row in shown[:-1]]) for c in range(len(shown[-1]))]
        for total, parts in sums:
            assert total is not None
            if not total.suppressed:
                assert sum(1 for part in parts if part is not None and part.suppressed) != 1, (grid, shown)
    assert withheld > 100  # the tables did put it to work


async def test_a_childs_name_under_local_authority_is_never_published_and_the_figures_still_add_up(
    signpost: Signpost, clock: FakeClock
) -> None:
    """A misaligned children row put a child's name under local_authority: it was a column of the
    report (every authority the feeds named was one). Only authorities practitioners belong to are
    columns now. Five lookups of that child by Northshire's social worker count in Northshire; five
    lookups whose authority no practitioner belongs to (sent while a practitioners row was wrong, say)
    count in the national figure only, and Northshire is still withheld against Southvale's 2."""
    await load_people(signpost)
    await write_known_audit(signpost)
    assert (await misaligned.import_misaligned(signpost)).ok
    clock.set(OCT + timedelta(days=3))
    await ensure_enrolled(signpost, "P001")
    for _ in range(5):
        assert (await say(signpost, "P001", misaligned.REF)).outcome is Outcome.ANSWERED
    stray = dataclasses.replace(
        chat("S001", Action.LOOKUP, Outcome.ANSWERED, OCT + timedelta(days=4)), actor_la=misaligned.NAME_AS_AUTHORITY
    )
    async with signpost.ctx.db.write() as session:
        await append(session, [stray] * 5)

    report = await build(signpost.ctx.db, NOW, MONTH)
    assert report.authorities == (N, S)
    for published_form in (page(report), to_csv(report), to_json(report)):
        assert misaligned.shown_parts(published_form) == [], published_form
    # 9 + 5 + 5 answered nationally; Northshire's 12 shown beside it would give Southvale's 2 away.
    want = {NATIONAL: 19, N: WITHHELD, S: LESS}
    assert published(report, "lookups_keyed", "Answered (contact details shown)") == want
    assert published(report, "lookups_keyed", "No match") == {NATIONAL: LESS, N: LESS, S: 0}
    active = published(report, "practitioners_active", ALL_ROLES)  # S001 once, whichever authority it sent from
    assert active == {NATIONAL: 11, N: WITHHELD, S: LESS}
