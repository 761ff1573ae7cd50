"""The public transparency page, served by Signpost's real aiohttp app on loopback: what a reader sees
in headless Chromium (no JavaScript needed), and the CSV and JSON downloads over plain HTTP."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import transparency_page
from bot.app import Signpost
from bot.config import load_settings
from bot.web import create_app
from handlers.clock import FakeClock
from handlers.vocabulary import Action, Outcome
from store.audit.log import append
from tests import chromium, misaligned
from tests.hostile.observe import tapped_logs
from tests.spread import either_store, spread
from tests.statements import Sent, statements_sent
from tests.transparency_audit import OCT, PERSONAL, chat, load_people, write_known_audit

READ_TABLE = """(() => [...document.querySelectorAll('#table-lookups_keyed tr')].map(
    tr => [...tr.children].map(cell => cell.innerText.trim())))()"""
READ_CHARTS = """(() => [...document.querySelectorAll('figure')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg.getBoundingClientRect();
    return {
        id: f.id, role: svg.getAttribute('role'), label: svg.getAttribute('aria-label'),
        title: svg.querySelector(':scope > title').textContent, caption: f.querySelector('figcaption').innerText,
        bars: svg.querySelectorAll('rect.bar').length, width: box.width, height: box.height,
        values: [...svg.querySelectorAll('text.value')].map(t => t.textContent),
    };
}))()"""


@pytest.fixture
async def server(signpost: Signpost) -> AsyncIterator[str]:
    """Signpost's one aiohttp application with the transparency routes, on a free loopback port, after
    the known October audit (the test clock stands on 2 November, so October is the default month)."""
    await load_people(signpost)
    await write_known_audit(signpost)
    async for url in serving(signpost):
        yield url


@pytest.fixture
async def new_server(signpost: Signpost) -> AsyncIterator[str]:
    """The same, for a Signpost whose audit begins this month (the people loaded on 2 November)."""
    await load_people(signpost)
    async for url in serving(signpost):
        yield url


async def serving(signpost: Signpost) -> AsyncIterator[str]:
    runner = web.AppRunner(create_app(signpost, load_settings(), [transparency_page.add_routes]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def get(url: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text(), dict(response.headers)


# The page and its downloads as a reader gets them: one store shows it (tests/spread.py); the figures
# are built on both stores in tests/handlers/test_transparency.py. What the page asks of the store
# (one build for readers at once, the months kept, a new event) runs on both below.
@either_store
async def test_a_reader_sees_labelled_charts_the_audits_numbers_and_no_small_numbers(server: str) -> None:
    """No login; with scripts off the page shows a labelled SVG chart per section and tables whose keyed
    lookup figures are October's audit, 1-4 reads "fewer than 5" (and draws no bar), nothing personal."""
    async with chromium.tab(1024, 800) as tab:
        await tab.send("Emulation.setScriptExecutionDisabled", value=True)
        await tab.open(server + "/transparency")
        await tab.send("Emulation.setScriptExecutionDisabled", value=False)  # to read the DOM, after the load
        assert await tab.evaluate("document.title") == "Signpost transparency report: October 2026"
        text: str = await tab.evaluate("document.body.innerText")
        html = await tab.html()
        charts: list[dict[str, Any]] = await tab.evaluate(READ_CHARTS)
        table: list[list[str]] = await tab.evaluate(READ_TABLE)
        scripts = await tab.evaluate("document.scripts.length")

    assert scripts == 0
    assert "October 2026" in text and "fewer than 5" in text
    assert len(charts) == 10 and all(c["role"] == "img" and c["width"] > 300 and c["height"] > 20 for c in charts)
    keyed = next(c for c in charts if c["id"] == "chart-lookups_keyed")
    assert keyed["title"] == "Lookups by reference, all authorities, October 2026"
    assert keyed["label"] == (
        "Bar chart, Lookups by reference, all authorities, October 2026. Answered (contact details shown): 9; "
        "No match: fewer than 5; Not sure which child (nothing shown): 0; Shielded (nothing shown): 5."
    )
    assert keyed["caption"].startswith("Lookups by reference: all authorities, October 2026.")
    assert keyed["values"] == ["9", "fewer than 5", "0", "5"]
    assert keyed["bars"] == 2  # 9 and 5 are drawn; "fewer than 5" and 0 are not
    assert table == [
        ["Measure", "All authorities", "Northshire", "Southvale"],
        ["Answered (contact details shown)", "9", "withheld", "fewer than 5"],
        ["No match", "fewer than 5", "fewer than 5", "0"],
        ["Not sure which child (nothing shown)", "0", "0", "0"],
        ["Shielded (nothing shown)", "5", "5", "0"],
    ]
    for personal in PERSONAL:
        assert personal not in html, personal


@either_store
async def test_csv_and_json_downloads_match_the_page_and_bad_months_are_refused(server: str) -> None:
    """The downloads carry the same figures for the same ?month=, as attachments; a malformed month is a 400."""
    status, text, headers = await get(server + "/transparency.csv?month=2026-10")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="signpost-transparency-2026-10.csv"'
    rows = {(r["section"], r["measure"], r["area"]): r["value"] for r in csv.DictReader(io.StringIO(text))}
    assert rows[("lookups_keyed", "Answered (contact details shown)", "Northshire")] == "withheld"
    assert rows[("lookups_keyed", "No match", "All authorities")] == "<5"

    status, text, headers = await get(server + "/transparency.json?month=2026-10")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    data = json.loads(text)
    assert data["month"] == "2026-10" and data["authorities"] == ["Northshire", "Southvale"]
    assert len(data["audit_chain"]["head_at_month_end"]) == 64

    for bad in (
        "/transparency?month=2026-13",
        "/transparency.json?month=%3Cscript%3E",
        "/transparency.csv?month=2999-01",
    ):
        status, text, _ = await get(server + bad)
        assert status == 400 and "<script>" not in text

    # A month before the audit began has no report; the first month's page offers none before it.
    status, text, _ = await get(server + "/transparency?month=1999-01")
    assert (status, text) == (
        400,
        "that month is before Signpost's audit begins: there are reports for 2026-09 to 2026-10.\n",
    )
    status, first, _ = await get(server + "/transparency?month=2026-09")
    assert status == 200 and "Previous month" not in first and "?month=2026-08" not in first
    status, october, _ = await get(server + "/transparency?month=2026-10")
    assert status == 200 and '<a href="/transparency?month=2026-09">Previous month</a>' in october

    # The running month is not published until it is over: copies made minutes apart would show,
    # by difference, when someone in an authority had just looked a child up.
    for running in (
        "/transparency?month=2026-11",
        "/transparency.csv?month=2026-11",
        "/transparency.json?month=2026-11",
    ):
        status, text, _ = await get(server + running)
        assert (status, text) == (400, "that month is not over yet: its report is published on 01/12/2026.\n")


REPORTS = "there are reports for 2026-09 to 2026-10"


@spread(
    "typed, said",
    [
        ("0001-01", f"that month is before Signpost's audit begins: {REPORTS}.\n"),  # read back as "1-01"
        ("1999-01", f"that month is before Signpost's audit begins: {REPORTS}.\n"),
        ("2999-01", "that month has not begun yet (expected YYYY-MM, up to 2026-10).\n"),
        ("2026-11", "that month is not over yet: its report is published on 01/12/2026.\n"),
        ("2026-13", "that is not a month (expected YYYY-MM, e.g. 2026-10).\n"),
    ],
)
async def test_a_refused_month_is_not_repeated_back_and_the_form_wanted_is_said(
    server: str, typed: str, said: str
) -> None:
    """A 400 for ?month= says which months there are, or the form a month takes, and never repeats
    the month typed (nor a reading of it: 0001-01 came back as "1-01"), on the page or a download."""
    for path in ("/transparency", "/transparency.csv", "/transparency.json"):
        status, text, _ = await get(server + f"{path}?month={typed}")
        assert (status, text) == (400, said)
        assert typed not in text and "1-01" not in text


@either_store
async def test_with_no_complete_month_of_audit_the_page_says_when_the_first_report_comes(new_server: str) -> None:
    """No month asked and the audit began this month: a 200 page saying which month the first report
    is for and when it can be read, with no table of zeros; asking for last month is refused as before."""
    status, page, headers = await get(new_server + "/transparency")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    said = (
        "No month of Signpost's audit is over yet: "
        "the first report will be for November 2026 and can be read from 01/12/2026."
    )
    assert said in html.unescape(page)
    assert "<table" not in page and "<svg" not in page and "October 2026" not in page
    status, text, _ = await get(new_server + "/transparency?month=2026-10")
    assert status == 400 and "is before Signpost's audit begins" in text


@either_store
async def test_the_page_says_when_it_was_made_in_uk_time(server: str, signpost: Signpost) -> None:
    """A person reads the time the report was made as UK local time, with its zone (issue 17 item 11);
    the month it counts is named as the UTC month it is."""
    status, page, _ = await get(server + "/transparency")
    assert status == 200
    assert "(1 to 31 October 2026, UTC; made 02/11/2026 09:00 GMT)" in page
    # A summer month after the audit began (a month before it has no report: see the test below).
    signpost.ctx.clock.set(datetime(2027, 7, 1, 9, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    status, page, _ = await get(server + "/transparency?month=2027-06")
    assert status == 200 and "(1 to 30 June 2027, UTC; made 01/07/2027 10:30 BST)" in page


async def test_a_childs_name_under_local_authority_is_not_a_column_of_the_page_or_the_downloads(
    server: str, signpost: Signpost
) -> None:
    """A misaligned children row names a child under local_authority (an authority no practitioner
    belongs to): the page, the CSV and the JSON show Northshire and Southvale, never that name."""
    assert (await misaligned.import_misaligned(signpost)).ok
    for path in ("/transparency", "/transparency.csv", "/transparency.json"):
        status, text, _ = await get(server + path + "?month=2026-10")
        assert status == 200 and "Northshire" in text and "Southvale" in text, path
        assert misaligned.shown_parts(text) == [], path
    _, text, _ = await get(server + "/transparency.json?month=2026-10")
    assert json.loads(text)["authorities"] == ["Northshire", "Southvale"]


def builds(sent: list[Sent]) -> int:
    """How many reports were built, seen as the database sees them: every build opens with the one
    statement that finds where the audit begins (its oldest event), and nothing else sends it."""
    return sum("min(audit_events.at)" in statement.sql.lower() for statement in sent)


@pytest.fixture
async def app(signpost: Signpost) -> AsyncIterator[tuple[web.Application, str]]:
    """The ``server`` fixture's application itself, to set how many builds it runs at once."""
    await load_people(signpost)
    await write_known_audit(signpost)
    application = create_app(signpost, load_settings(), [transparency_page.add_routes])
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield application, f"http://{host}:{port}"
    await runner.cleanup()


async def test_readers_asking_at_once_share_one_build_of_the_report(server: str, signpost: Signpost) -> None:
    """Anyone may ask for the report, as often as they like: twelve readers asking for October at once,
    then its CSV and JSON, make the database build October's report once, and all see the same page."""
    with statements_sent(signpost.ctx.db) as sent:
        answers = await asyncio.gather(*(get(server + "/transparency?month=2026-10") for _ in range(12)))
        csv_status, _, _ = await get(server + "/transparency.csv?month=2026-10")
        json_status, text, _ = await get(server + "/transparency.json?month=2026-10")
    assert builds(sent) == 1
    assert {status for status, _, _ in answers} == {200} and csv_status == json_status == 200
    assert len({page for _, page, _ in answers}) == 1 and "October 2026" in answers[0][1]
    assert json.loads(text)["month"] == "2026-10"


def answered_nationally(text: str) -> int:
    keyed = next(s for s in json.loads(text)["sections"] if s["key"] == "lookups_keyed")
    count: int = keyed["rows"][0]["national"]["count"]
    return count


async def test_a_new_event_shows_once_the_report_is_a_minute_old(
    server: str, signpost: Signpost, clock: FakeClock
) -> None:
    """An October lookup recorded after the report was read (a worker's clock a little behind) is in
    the report once the copy kept is a minute old, not before; until then the page is unchanged."""
    _, first_page, _ = await get(server + "/transparency?month=2026-10")
    _, text, _ = await get(server + "/transparency.json?month=2026-10")
    assert answered_nationally(text) == 9
    async with signpost.ctx.db.write() as session:
        await append(session, [chat("P001", Action.LOOKUP, Outcome.ANSWERED, OCT + timedelta(days=9))])

    clock.advance(seconds=transparency_page.FRESH_SECONDS - 1)
    _, text, _ = await get(server + "/transparency.json?month=2026-10")
    _, page, _ = await get(server + "/transparency?month=2026-10")
    assert answered_nationally(text) == 9 and page == first_page

    clock.advance(seconds=1)
    _, text, _ = await get(server + "/transparency.json?month=2026-10")
    _, page, _ = await get(server + "/transparency?month=2026-10")
    assert answered_nationally(text) == 10
    assert "made 02/11/2026 09:01 GMT" in page and "Answered (contact details shown): 10;" in page


async def test_a_report_past_the_builds_at_once_is_refused_busy_and_a_kept_one_still_served(
    app: tuple[web.Application, str], signpost: Signpost
) -> None:
    """With as many reports being built as the server builds at once (none here), a month not kept is
    refused 503 with Retry-After and one log line, nothing asked of the database; a kept month is served."""
    application, url = app
    assert (await get(url + "/transparency?month=2026-10"))[0] == 200
    application[transparency_page.REPORTS_KEY].builds.limit = 0
    with tapped_logs() as logs, statements_sent(signpost.ctx.db) as sent:
        kept, _, _ = await get(url + "/transparency.csv?month=2026-10")
        status, text, headers = await get(url + "/transparency?month=2026-09")
    assert kept == 200 and builds(sent) == 0
    assert status == 503 and headers["Retry-After"] and headers["Cache-Control"] == "no-store"
    assert text == "Signpost is busy, please try again in a moment.\n"
    lines = [json.loads(line) for line in logs.new().splitlines() if line.startswith("{")]
    assert [(line["event"], line["kind"]) for line in lines] == [("busy_refused", "transparency_report")]


async def test_the_months_kept_are_bounded_however_many_are_asked(server: str, signpost: Signpost) -> None:
    """A month is chosen by whoever asks: after more months than are kept, the oldest asked is built
    again and the newest is not (a refused month before the audit is kept like a report)."""
    months = [f"{1990 + i // 12}-{i % 12 + 1:02d}" for i in range(transparency_page.MONTHS_KEPT + 1)]
    with statements_sent(signpost.ctx.db) as sent:
        for month in months:
            status, text, _ = await get(server + f"/transparency?month={month}")
            assert status == 400 and "before Signpost's audit begins" in text
        assert builds(sent) == len(months)
        await get(server + f"/transparency?month={months[-1]}")
        assert builds(sent) == len(months)
        await get(server + f"/transparency?month={months[0]}")
        assert builds(sent) == len(months) + 1
