"""The public transparency report as a page (``/transparency``), CSV and JSON (``/transparency.csv|json``).

No login: the report holds no personal data, and every count from 1 to 4 already arrives here as
"fewer than 5" (handlers.transparency). The page is plain server-rendered HTML with SVG bar charts,
so it reads without JavaScript; each chart is a ``<figure>`` whose SVG has ``role="img"``, an
``aria-label`` that says the numbers, and a ``<title>``; the same numbers are in a table beneath.
A suppressed count is drawn as no bar at all (a short bar would give its size away).
"""

from __future__ import annotations

import asyncio
import html
import io
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import web

from bot import spreadsheet
from bot.admission import BUSY_TEXT, Admission
from bot.app import Signpost
from bot.config import Settings
from bot.web import SIGNPOST_KEY
from handlers.clock import uk_time
from handlers.transparency import (
    NATIONAL,
    SUPPRESSED_TEXT,
    WITHHELD_TEXT,
    Figure,
    NoReportYet,
    Report,
    ReportError,
    Section,
    build,
    month_range,
)
from handlers.vocabulary import sentence
from store.db import Database

log = structlog.get_logger("signpost.transparency")

CSV_SUPPRESSED = "<5"
# The month column of a running month's CSV (an admin checking it at the terminal, never the public
# download): in every row, so a reader of any row or extract sees it and a program reading YYYY-MM fails.
CSV_SO_FAR = "{month} (so far)"
HEADERS = {
    "Cache-Control": "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#0b0c0c;background:#fff;line-height:1.4}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.8rem;margin:.5rem 0}h2{font-size:1.3rem;margin-top:2rem;border-top:2px solid #0b0c0c;padding-top:.5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid #b1b4b6;padding:.3rem .6rem;text-align:right}
th[scope=row],thead th:first-child{text-align:left}
figure{margin:.5rem 0}figcaption{font-size:.9rem;color:#505a5f}svg{max-width:100%;height:auto}
.note{color:#505a5f}nav a{margin-right:1rem}code{word-break:break-all}
"""
CHART_WIDTH = 640
LABEL_WIDTH = 250
VALUE_WIDTH = 110
ROW_HEIGHT = 28


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def month_title(report: Report) -> str:
    return report.start.strftime("%B %Y")


# -- HTML and SVG ------------------------------------------------------------------------------------


def chart(section: Section, month: str) -> str:
    """A horizontal bar chart of the section's national figures, as an accessible SVG figure."""
    rows = section.rows
    biggest = max((row.national.count or 0 for row in rows), default=0) or 1
    span = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = ROW_HEIGHT * len(rows) + 8
    said = "; ".join(f"{row.label}: {row.national.text}" for row in rows)
    label = f"Bar chart, {section.title}, {NATIONAL.lower()}, {month}. {said}."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(label)}" '
        f'viewBox="0 0 {CHART_WIDTH} {height}" width="{CHART_WIDTH}" height="{height}">',
        f"<title>{_e(section.title)}, {_e(NATIONAL.lower())}, {_e(month)}</title>",
    ]
    for i, row in enumerate(rows):
        y = 4 + i * ROW_HEIGHT
        middle = y + ROW_HEIGHT / 2 + 5
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle:.0f}" text-anchor="end" font-size="14">{_e(row.label)}</text>'
        )
        width = 0 if row.national.count is None else round(span * row.national.count / biggest)
        if width:
            parts.append(
                f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 4}" width="{width}" height="{ROW_HEIGHT - 8}" '
                f'fill="#1d70b8"><title>{_e(row.label)}: {_e(row.national.text)}</title></rect>'
            )
        parts.append(
            f'<text class="value" x="{LABEL_WIDTH + width + 6}" y="{middle:.0f}" font-size="14">'
            f"{_e(row.national.text)}</text>"
        )
    parts.append("</svg>")
    caption = f"{section.title}: {NATIONAL.lower()}, {month}. The figures are also in the table below."
    return f'<figure id="chart-{_e(section.key)}">{"".join(parts)}<figcaption>{_e(caption)}</figcaption></figure>'


def _cell(figure: Figure | None) -> str:
    if figure is None:
        return '<td class="na">not counted by authority</td>'
    kind = ' class="suppressed"' if figure.suppressed else ""
    return f"<td{kind}>{_e(figure.text)}</td>"


def table(section: Section, report: Report) -> str:
    areas = () if section.national_only else report.authorities
    head = "".join(f'<th scope="col">{_e(area)}</th>' for area in (NATIONAL, *areas))
    body = []
    for row in section.rows:
        cells = _cell(row.national) + ("" if section.national_only else "".join(_cell(c) for c in row.by_authority))
        body.append(f'<tr><th scope="row">{_e(row.label)}</th>{cells}</tr>')
    return (
        f'<table id="table-{_e(section.key)}"><caption>{_e(section.title)}, {_e(month_title(report))}</caption>'
        f'<thead><tr><th scope="col">Measure</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def chain_block(report: Report) -> str:
    c = report.chain
    checkpoint = (
        f"<dd>{c.checkpoint_size:,} events, signed {_e(c.checkpoint_at)}, "
        f"head <code>{_e(c.checkpoint_head)}</code></dd>"
        if c.checkpoint_size is not None
        else "<dd>none signed yet</dd>"
    )
    return (
        '<section aria-labelledby="h-chain"><h2 id="h-chain">The audit log itself</h2>'
        '<p class="note">Every command is recorded in a hash chain before it is answered. These values let anyone '
        "holding an earlier checkpoint check that no event was later removed or changed (signpost audit verify).</p>"
        f'<dl id="chain"><dt>Events in the chain at the end of {_e(month_title(report))}</dt><dd>{c.size:,}</dd>'
        f"<dt>Chain head (SHA-256)</dt><dd><code>{_e(c.head or 'empty')}</code></dd>"
        f"<dt>Last signed checkpoint before the month ended</dt>{checkpoint}</dl></section>"
    )


def page(report: Report) -> str:
    month = month_title(report)
    last_day = report.end - timedelta(days=1)
    when = f"{month}, so far (the month is not over)" if not report.complete else month
    nav = [f'<a href="/transparency?month={report.previous_month}">Previous month</a>'] if report.previous_month else []
    if report.next_month:
        nav.append(f'<a href="/transparency?month={report.next_month}">Next month</a>')
    nav.append(f'<a href="/transparency.csv?month={report.month}" download>Download CSV</a>')
    nav.append(f'<a href="/transparency.json?month={report.month}" download>Download JSON</a>')
    sections = [
        f'<section aria-labelledby="h-{_e(s.key)}"><h2 id="h-{_e(s.key)}">{_e(s.title)}</h2>'
        f'<p class="note">{_e(s.note)}</p>{chart(s, month)}{table(s, report)}</section>'
        for s in report.sections
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Signpost transparency report: {_e(when)}</title><style>{STYLE}</style></head><body><main>"
        f'<h1>Signpost transparency report</h1><p id="period"><strong>{_e(when)}</strong> '
        f"(1 to {last_day.day} {report.start:%B %Y}, UTC; made {_e(uk_time(report.generated_at))})</p>"
        "<p>What Signpost was used for, counted from its audit log, for every local authority together and for "
        "each one. No names, references or other personal details are published. To stop anyone being picked "
        f"out, any count from 1 to 4 is shown as <strong>{_e(SUPPRESSED_TEXT)}</strong>, and where a total would "
        f"let a reader work such a count out by subtraction, one more figure is shown as "
        f"<strong>{_e(WITHHELD_TEXT)}</strong>; 0 means none.</p>"
        f'<nav aria-label="Report months and downloads">{"".join(nav)}</nav>'
        f"{''.join(sections)}{chain_block(report)}</main></body></html>"
    )


def first_report_page(why: str) -> str:
    """The page before any month of the audit is over: when the first report comes, and no table."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Signpost transparency report</title><style>{STYLE}</style></head><body><main>"
        f'<h1>Signpost transparency report</h1><p id="period">{_e(sentence(why))}.</p></main></body></html>'
    )


# -- CSV and JSON ------------------------------------------------------------------------------------


def _csv_value(figure: Figure) -> str:
    if figure.withheld:
        return WITHHELD_TEXT
    return CSV_SUPPRESSED if figure.count is None else str(figure.count)


def to_csv(report: Report) -> str:
    """Long format: one line per month, section, measure and area; counts 1-4 are "<5". A month not
    over yet reads "YYYY-MM (so far)" in every row; a complete month's file is unchanged by that."""
    month = report.month if report.complete else CSV_SO_FAR.format(month=report.month)
    out = io.StringIO()
    writer = spreadsheet.Writer(out)  # an authority's name comes from a feed: never a formula
    writer.writerow(["month", "section", "measure", "area", "value"])
    for section in report.sections:
        for row in section.rows:
            writer.writerow([month, section.key, row.label, NATIONAL, _csv_value(row.national)])
            for area, figure in zip(report.authorities, row.by_authority, strict=True):
                if figure is not None:
                    writer.writerow([month, section.key, row.label, area, _csv_value(figure)])
    c = report.chain
    for measure, value in (
        ("events in the chain at month end", c.size),
        ("chain head at month end (SHA-256, hex)", c.head),
        ("last checkpoint: events", "" if c.checkpoint_size is None else c.checkpoint_size),
        ("last checkpoint: head (SHA-256, hex)", c.checkpoint_head),
        ("last checkpoint: signed at (UTC)", c.checkpoint_at),
    ):
        writer.writerow([month, "audit_chain", measure, NATIONAL, value])
    return out.getvalue()


def _json_figure(figure: Figure | None) -> dict[str, Any] | None:
    if figure is None:
        return None
    return {"count": figure.count, "suppressed": figure.suppressed, "withheld": figure.withheld}


def to_json(report: Report) -> str:
    data = {
        "month": report.month,
        "complete": report.complete,
        "period": {"start": report.start.isoformat(), "end": report.end.isoformat()},
        "generated_at": report.generated_at.isoformat(),
        "suppression": (
            'Counts from 1 to 4 are published as {"count": null, "suppressed": true, "withheld": false}; a count '
            'of 5 or more that would give one of them away by subtraction from a total as {"count": null, '
            '"suppressed": true, "withheld": true}. '
            "An authority's figure is null where the event is counted nationally only."
        ),
        "authorities": list(report.authorities),
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "note": s.note,
                "rows": [
                    {
                        "measure": row.label,
                        "national": _json_figure(row.national),
                        "authorities": {
                            area: _json_figure(f) for area, f in zip(report.authorities, row.by_authority, strict=True)
                        },
                    }
                    for row in s.rows
                ],
            }
            for s in report.sections
        ],
        "audit_chain": {
            "size_at_month_end": report.chain.size,
            "head_at_month_end": report.chain.head,
            "last_checkpoint": None
            if report.chain.checkpoint_size is None
            else {
                "size": report.chain.checkpoint_size,
                "head": report.chain.checkpoint_head,
                "signed_at": report.chain.checkpoint_at,
            },
        },
    }
    return json.dumps(data, indent=2) + "\n"


RENDERERS = {"html": page, "csv": to_csv, "json": to_json}


# -- routes ------------------------------------------------------------------------------------------


FRESH_SECONDS = 60  # a report is built at most once a minute for each month asked (``Reports``)
MONTHS_KEPT = 24  # months kept at once: the month is the asker's choice
BUILDS_AT_ONCE = 2  # reports being built at once, for all months; more are refused busy
BUSY_HEADERS = {**HEADERS, "Cache-Control": "no-store", "Retry-After": "5"}
Asked = tuple[bool, str]  # (no month named: the default, the month)


@dataclass(frozen=True, slots=True)
class Kept:
    made: datetime
    report: Report | None
    refused: ReportError | None  # what the month asked was refused with (a message about the month only)

    def fresh(self, now: datetime) -> bool:
        """Less than ``FRESH_SECONDS`` old, and of this month still (the default month and a report's
        "Next month" link move on with the month)."""
        age = (now - self.made).total_seconds()
        return 0 <= age < FRESH_SECONDS and (now.year, now.month) == (self.made.year, self.made.month)


class ReportsBusy(Exception):
    """As many reports are being built as ``BUILDS_AT_ONCE``: this one is not started."""


class Reports:
    """The public reports, built from the database at most once a ``FRESH_SECONDS`` for each month.

    The page is public and anonymous, and each build is a month of the audit aggregated: rebuilt for
    every GET, anyone could keep the database from the practitioners' own lookups. So a report is
    kept, for the month asked, for a minute (no month's report is final: the registered
    practitioners and the authorities are read from the register as it stands); readers asking for a
    month being built wait for that build; and at most ``BUILDS_AT_ONCE`` run at once (above that,
    ``ReportsBusy``: the one limiter of bot/admission.py logs it). What is kept is what is published
    (suppressed counts, hashes, an authority's name), and at most ``MONTHS_KEPT`` months of it."""

    def __init__(self, builds_at_once: int = BUILDS_AT_ONCE, months: int = MONTHS_KEPT) -> None:
        self.builds = Admission(builds_at_once)
        self.months = months
        self._kept: OrderedDict[Asked, Kept] = OrderedDict()
        self._building: dict[Asked, asyncio.Task[Kept]] = {}

    async def report(self, db: Database, now: datetime, month: str | None) -> Report:
        """The report for ``month`` as ``build`` makes it (or its ReportError), kept or built now."""
        start, _ = month_range(month, now)  # malformed, not begun or running: refused before any build
        asked = (month is None, start.strftime("%Y-%m"))
        kept = self._kept.get(asked)
        if kept is not None and kept.fresh(now):
            self._kept.move_to_end(asked)  # the least recently asked month goes first
        else:
            building = self._building.get(asked)
            if building is None:
                if not self.builds.admit("transparency_report"):
                    raise ReportsBusy
                self.builds.hold()  # now: a request arriving before the build starts sees it counted
                building = asyncio.create_task(self._build(asked, db, now, month))
                self._building[asked] = building
            kept = await asyncio.shield(building)  # a reader who leaves does not cancel the others' build
        if kept.refused is not None:
            raise type(kept.refused)(*kept.refused.args)  # a new one each time: raising it adds a traceback
        assert kept.report is not None
        return kept.report

    async def _build(self, asked: Asked, db: Database, now: datetime, month: str | None) -> Kept:
        try:
            try:
                kept = Kept(now, await build(db, now, month), None)
            except ReportError as exc:
                kept = Kept(now, None, exc)
            self._kept[asked] = kept
            while len(self._kept) > self.months:
                self._kept.popitem(last=False)
            return kept
        finally:
            self.builds.release()
            del self._building[asked]


REPORTS_KEY = web.AppKey("transparency_reports", Reports)


async def _report(request: web.Request, *, page: bool = False) -> Report:
    """The report asked for, or a 400 saying why there is none; the page (``page``) says when the
    first report comes itself (``NoReportYet`` is raised to it), a download has nothing to give.
    A 503 while as many reports as ``BUILDS_AT_ONCE`` are being built."""
    signpost = request.app[SIGNPOST_KEY]
    try:
        return await request.app[REPORTS_KEY].report(
            signpost.ctx.db, signpost.ctx.clock.now(), request.query.get("month")
        )
    except ReportError as exc:  # the reader is told why; the log says only that (never what was asked)
        if page and isinstance(exc, NoReportYet):
            raise
        log.warning("transparency_request_refused", status=400, reason="bad_month")
        raise web.HTTPBadRequest(text=f"{exc}.\n", headers=HEADERS) from None
    except ReportsBusy:  # logged by the limiter
        raise web.HTTPServiceUnavailable(text=BUSY_TEXT + "\n", headers=BUSY_HEADERS) from None


async def html_page(request: web.Request) -> web.Response:
    try:
        text = page(await _report(request, page=True))
    except NoReportYet as exc:
        text = first_report_page(str(exc))
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers=HEADERS)


async def csv_file(request: web.Request) -> web.Response:
    report = await _report(request)
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="signpost-transparency-{report.month}.csv"'}
    return web.Response(text=to_csv(report), content_type="text/csv", charset="utf-8", headers=headers)


async def json_file(request: web.Request) -> web.Response:
    report = await _report(request)
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="signpost-transparency-{report.month}.json"'}
    return web.Response(text=to_json(report), content_type="application/json", charset="utf-8", headers=headers)


def add_routes(app: web.Application, signpost: Signpost, settings: Settings) -> None:
    """RouteAdder: the public transparency report, no login."""
    app[REPORTS_KEY] = Reports()
    app.router.add_get("/transparency", html_page)
    app.router.add_get("/transparency.csv", csv_file)
    app.router.add_get("/transparency.json", json_file)
