"""The public transparency report: what Signpost did in a month, nationally and per local authority.

Built from the audit log (and, for registered practitioners, the register as it stands now) with a
few grouped queries (store.audit.transparency). Nothing personal leaves this module: no practitioner
id, child reference or name is in the model, and every count from 1 to 4 is replaced here, before
any page, file or terminal sees it, by a ``Figure`` that says only "fewer than 5". Zero stays 0.

The authorities are those practitioners belong to now (``counts.authorities``), the only names
published: every authority a feed named is not, since a children feed's ``local_authority`` is free
text and a row out of line puts a child's name there. Events that no practitioner sent (an access
request expiring, a retention run, a subject-access report produced at the terminal) carry no
authority, so those rows are national only; events of an authority no practitioner belongs to any
more (a practitioners row corrected since) are counted nationally, under no authority. Misuse alerts
name the practitioner in their detail; the rule is read from it and the practitioner's authority
looked up, and the id is then dropped.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from handlers.misuse.monitor import RULES
from handlers.vocabulary import Action, Outcome
from store.audit import transparency as counts
from store.audit.chain import utc
from store.db import Database

SUPPRESS_BELOW = 5  # counts 1 .. SUPPRESS_BELOW-1 are shown as "fewer than 5"
SUPPRESSED_TEXT = f"fewer than {SUPPRESS_BELOW}"
# A count of 5 or more hidden because, shown, it would let a reader work out a small one from a total.
WITHHELD_TEXT = "withheld"
NATIONAL = "All authorities"
ALL_ROLES = "All roles"
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")  # ASCII digits: a year in full-width digits is not a month
_RETENTION = re.compile(r"\barchived (\d+) destroyed (\d+)\b")
_TOLD = re.compile(r"^(\d+) lead, (\d+) other\b")  # handlers.lead: one event per lookup, counting who was told

LOOKUP_OUTCOMES = (
    (Outcome.ANSWERED, "Answered (contact details shown)"),
    (Outcome.NO_MATCH, "No match"),
    (Outcome.AMBIGUOUS, "Not sure which child (nothing shown)"),
    (Outcome.SHIELDED, "Shielded (nothing shown)"),
)
REPORTED_ACTIONS = (
    Action.LOOKUP,
    Action.SEARCH,
    Action.APPROVE,
    Action.DENY,
    Action.REQUEST_EXPIRED,
    Action.RELAY_MESSAGE,
    Action.SAR,
)


class ReportError(ValueError):
    """The month asked for is malformed, has not begun, or is a month before the audit's first event
    (the message says which, in one line, and for the last the months there are)."""


class NoReportYet(ReportError):
    """No month was asked for and no month of the audit is over yet: the message says which month the
    first report is for and from when it can be read (rather than last month's zeros)."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One published count: the number, or None when it was from 1 to 4 (suppressed)."""

    count: int | None
    withheld: bool = False  # hidden though 5 or more: it would give a small figure away (``protect``)

    @classmethod
    def of(cls, n: int) -> Figure:
        return cls(None if 0 < n < SUPPRESS_BELOW else n)

    @property
    def suppressed(self) -> bool:
        return self.count is None

    @property
    def text(self) -> str:
        if self.withheld:
            return WITHHELD_TEXT
        return SUPPRESSED_TEXT if self.count is None else f"{self.count:,}"


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    national: Figure
    by_authority: tuple[Figure | None, ...]  # aligned with Report.authorities; None: not recorded per authority


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    note: str
    rows: tuple[Row, ...]

    @property
    def national_only(self) -> bool:
        return all(cell is None for row in self.rows for cell in row.by_authority)


@dataclass(frozen=True, slots=True)
class ChainSummary:
    """The audit chain at month end: hashes and sizes only (none of them is about a person)."""

    size: int
    head: str  # hex; "" when the chain was empty
    checkpoint_size: int | None
    checkpoint_head: str
    checkpoint_at: str  # ISO 8601 UTC; "" when none had been signed


@dataclass(frozen=True, slots=True)
class Report:
    month: str  # YYYY-MM
    start: datetime
    end: datetime
    complete: bool  # False while the month is still running
    generated_at: datetime
    authorities: tuple[str, ...]
    sections: tuple[Section, ...]
    chain: ChainSummary
    first_month: str | None = None  # YYYY-MM of the audit's oldest event; None when it is empty

    @property
    def previous_month(self) -> str | None:
        """The month before, or None when the audit holds nothing that early (it would be refused)."""
        previous = _shift(self.start, -1).strftime("%Y-%m")
        return None if self.first_month is None or previous < self.first_month else previous

    @property
    def next_month(self) -> str | None:
        """The following month, or None until it has finished (a running month is not published)."""
        following = _shift(self.start, 1)
        return following.strftime("%Y-%m") if _shift(following, 1) <= self.generated_at else None


def _shift(month_start: datetime, months: int) -> datetime:
    index = month_start.year * 12 + month_start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def month_range(month: str | None, now: datetime, *, so_far: bool = False) -> tuple[datetime, datetime]:
    """``[start, end)`` of a YYYY-MM month in UTC; by default the last complete month.

    The running month only with ``so_far`` (an admin checking at the terminal): published, its
    figures would change as the month goes on, and two copies a few minutes apart would show, by
    difference, that someone in an authority had just looked a child up, or was refused."""
    this_month = datetime(utc(now).year, utc(now).month, 1, tzinfo=UTC)
    if month is None:
        start = _shift(this_month, -1)
    else:
        found = _MONTH.match(month.strip())
        if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
            raise ReportError("that is not a month (expected YYYY-MM, e.g. 2026-10)")
        start = datetime(int(found.group(1)), int(found.group(2)), 1, tzinfo=UTC)
        # Never the month back (a reading of it, even: 0001-01 came out "1-01"): what there is instead.
        if start > this_month:
            latest = this_month if so_far else _shift(this_month, -1)
            raise ReportError(f"that month has not begun yet (expected YYYY-MM, up to {latest:%Y-%m})")
        if start == this_month and not so_far:
            raise ReportError(f"that month is not over yet: its report is published on {_shift(start, 1):%d/%m/%Y}")
    return start, _shift(start, 1)


def refuse_before_the_audit(start: datetime, first: datetime | None, now: datetime, *, so_far: bool) -> None:
    """A well-formed month before the audit's oldest event (1999-01) has no figures: say so, with
    the months that have (the running one only ``so_far``), rather than publish zeros for it."""
    this_month = datetime(utc(now).year, utc(now).month, 1, tzinfo=UTC)
    begins = this_month if first is None else datetime(first.year, first.month, 1, tzinfo=UTC)
    if start >= begins:
        return
    last = this_month if so_far else _shift(this_month, -1)
    if last < begins:
        raise ReportError(
            f"that month is before Signpost's audit begins ({begins:%Y-%m}); no month since is over yet: "
            f"the first report is published on {_shift(begins, 1):%d/%m/%Y}"
        )
    running = " so far" if so_far and last == this_month else ""
    if last == begins:  # one month: named once
        only = f"only,{running}" if running else "only"
        raise ReportError(f"that month is before Signpost's audit begins: there is a report for {begins:%Y-%m} {only}")
    raise ReportError(
        f"that month is before Signpost's audit begins: there are reports for {begins:%Y-%m} to {last:%Y-%m}{running}"
    )


def refuse_before_the_first_report(first: datetime | None, now: datetime) -> None:
    """With no month asked for, the last complete month has no report when the audit began this month
    (or holds nothing yet): say when the first one comes, as ``refuse_before_the_audit`` would refuse
    that month asked for by name."""
    this_month = datetime(utc(now).year, utc(now).month, 1, tzinfo=UTC)
    if first is None or utc(first) >= this_month:
        raise NoReportYet(
            f"no month of Signpost's audit is over yet: the first report will be for {this_month:%B %Y} "
            f"and can be read from {_shift(this_month, 1):%d/%m/%Y}"
        )


async def build(db: Database, now: datetime, month: str | None = None, *, so_far: bool = False) -> Report:
    """The report for ``month`` (YYYY-MM; default the last complete month), small numbers suppressed;
    the running month only ``so_far`` (``month_range``)."""
    start, end = month_range(month, now, so_far=so_far)
    async with db.read() as session:
        chain = await counts.chain_at(session, end)  # first: it says where the audit begins
        first = chain.first_at
        if month is None:
            refuse_before_the_first_report(first, now)
        else:
            refuse_before_the_audit(start, first, now, so_far=so_far)
        known = await counts.authorities(session)
        actions = await counts.action_counts(session, start, end, {a.value for a in REPORTED_ACTIONS})
        alerts = await counts.detail_counts(session, start, end, Action.ALERT.value)
        retention = await counts.detail_counts(session, start, end, Action.RETENTION.value)
        told = await counts.detail_counts_by_authority(session, start, end, Action.LEAD_PROFESSIONAL_INFORMED.value)
        active = await counts.active_by_role(session, start, end)
        registered = await counts.registered_by_role(session)
        alert_rules = [_split_alert(detail, n) for detail, n in alerts]
        alert_las = await counts.authorities_of(session, (pid for _, pid, _ in alert_rules if pid))
    # Only these: an authority the audit names (``actor_la``) is counted nationally unless one of them.
    authorities = tuple(known)
    tally = _Tally(authorities)
    approved, denied = _decisions(actions, about_a_child=True)
    linked, not_linked = _decisions(actions, about_a_child=False)
    leads, others = _told(told)
    sections = (
        tally.roles(
            "practitioners_registered",
            "Registered practitioners by role",
            "Practitioners on the register when this report was made (the register keeps no history by month).",
            registered,
        ),
        tally.roles(
            "practitioners_active",
            "Active practitioners by role",
            "Practitioners who used Signpost in Slack, Teams or the console at least once in the month.",
            active,
        ),
        tally.lookups("lookups_keyed", "Lookups by reference", Action.LOOKUP, actions),
        tally.lookups("lookups_demographic", "Searches by name and date of birth", Action.SEARCH, actions),
        Section(
            "access_requests",
            "Requests to see a shielded child's contacts",
            "Decided by duty managers (counted in the duty manager's authority). Requests nobody decided in time "
            "expire; those are counted nationally only.",
            (
                tally.row("Approved", approved),
                tally.row("Denied", denied),
                tally.national_row("Expired undecided", _total(actions, Action.REQUEST_EXPIRED)),
            ),
        ),
        Section(
            "registrations",
            "Chat accounts linked to practitioners",
            "Requests to link a Slack or Teams account to a practitioner on the register, decided by duty managers "
            "(counted in the duty manager's authority).",
            (tally.row("Approved", linked), tally.row("Denied", not_linked)),
        ),
        _alerts_section(tally, alert_rules, alert_las),
        Section(
            "contacts",
            "Lead professionals told and messages relayed",
            "Notices sent to a child's lead professional (and, where the child's authority asks, to everyone "
            "currently working with the child) when another practitioner found the child, counted once for each "
            "person told; and messages relayed to the lead professional of a shielded child (counted in the "
            "sender's authority).",
            (
                tally.row("Lead professionals informed", leads),
                tally.row("Other practitioners informed", others),
                tally.row("Relay messages and answers sent", _events(actions, Action.RELAY_MESSAGE, Outcome.DONE)),
            ),
        ),
        _children_section(tally, retention),
        Section(
            "subject_access",
            "Subject-access reports produced",
            "Reports of who looked at a child's record, produced for the child or their family. Counted nationally.",
            # Produced: a refused or failed report (audited too, as every operator command is) was not.
            (tally.national_row("Reports produced", _total(actions, Action.SAR, Outcome.DONE)),),
        ),
    )
    return Report(
        month=start.strftime("%Y-%m"),
        start=start,
        end=end,
        complete=utc(now) >= end,
        generated_at=utc(now),
        first_month=None if first is None else first.strftime("%Y-%m"),
        authorities=authorities,
        sections=tuple(protect(section) for section in sections),
        chain=ChainSummary(
            size=chain.size,
            head=chain.head_hash.hex() if chain.head_hash else "",
            checkpoint_size=chain.checkpoint_size,
            checkpoint_head=chain.checkpoint_head.hex() if chain.checkpoint_head else "",
            checkpoint_at=chain.checkpoint_at.strftime("%Y-%m-%dT%H:%M:%SZ") if chain.checkpoint_at else "",
        ),
    )


# -- protecting small numbers from subtraction --------------------------------------------------------


def protect(section: Section) -> Section:
    """Complementary suppression: no small figure can be worked out from a total.

    A section's figures add up: each row's national figure is its authorities' figures and the
    events with no listed authority, and in a roles section the "All roles" row is the roles above
    it, in every column. Those unlisted events are taken here as if there were none (a reader may
    know there are none), so a total is protected as if its listed parts were all of it. Where a
    total is shown and exactly one of its parts is hidden, the part is the total less the others
    ("9 answered nationally, 7 in Northshire" gives Southvale's "fewer than 5" away as 2).
    So the smallest other part above 0 is withheld too (or, with none, the total), until no shown
    total has exactly one hidden part. Two hidden parts leave a reader only a range."""
    grid = [[row.national, *row.by_authority] for row in section.rows]
    sums: list[tuple[tuple[int, int], list[tuple[int, int]]]] = [
        ((r, 0), [(r, c) for c in range(1, len(cells))]) for r, cells in enumerate(grid)
    ]
    if section.rows and section.rows[-1].label == ALL_ROLES:
        last = len(grid) - 1
        sums += [((last, c), [(r, c) for r in range(last)]) for c in range(len(grid[last]))]
    changed = True
    while changed:
        changed = False
        for total, parts in sums:
            shown_total = grid[total[0]][total[1]]
            present = [p for p in parts if grid[p[0]][p[1]] is not None]
            if shown_total is None or shown_total.suppressed or not present:
                continue
            hidden = [p for p in present if _cell(grid, p).suppressed]
            if len(hidden) != 1:
                continue
            others = [p for p in present if not _cell(grid, p).suppressed and _cell(grid, p).count]
            r, c = min(others, key=lambda p: (_cell(grid, p).count or 0, p)) if others else total
            grid[r][c] = Figure(None, withheld=True)
            changed = True
    rows = tuple(Row(row.label, _cell(grid, (r, 0)), tuple(grid[r][1:])) for r, row in enumerate(section.rows))
    return Section(section.key, section.title, section.note, rows)


def _cell(grid: list[list[Figure | None]], at: tuple[int, int]) -> Figure:
    found = grid[at[0]][at[1]]
    assert found is not None
    return found


# -- assembling ------------------------------------------------------------------------------------


def _events(
    rows: Sequence[counts.ActionCount],
    action: Action,
    outcome: Outcome | None = None,
    about_a_child: bool | None = None,
) -> dict[str | None, int]:
    """Events of one action (and outcome, and naming a child or not) by authority; None collects
    events with no authority."""
    found: dict[str | None, int] = defaultdict(int)
    for row in rows:
        if (
            row.action == action.value
            and (outcome is None or row.outcome == outcome.value)
            and (about_a_child is None or row.about_a_child == about_a_child)
        ):
            found[row.authority] += row.count
    return found


def _decisions(
    rows: Sequence[counts.ActionCount], *, about_a_child: bool
) -> tuple[dict[str | None, int], dict[str | None, int]]:
    """(approved, denied) that took effect: of access requests (which name the child) or of
    registrations (which name none); both are ``approve`` and ``deny`` commands."""
    approved = _events(rows, Action.APPROVE, Outcome.DONE, about_a_child)
    return approved, _events(rows, Action.DENY, Outcome.DONE, about_a_child)


def _total(rows: Sequence[counts.ActionCount], action: Action, outcome: Outcome | None = None) -> int:
    return sum(_events(rows, action, outcome).values())


@dataclass(frozen=True, slots=True)
class _Tally:
    authorities: tuple[str, ...]

    def row(self, label: str, by_la: dict[str | None, int]) -> Row:
        """A row counted per authority; the national figure includes events with no listed authority."""
        cells = tuple(Figure.of(by_la.get(la, 0)) for la in self.authorities)
        return Row(label, Figure.of(sum(by_la.values())), cells)

    def national_row(self, label: str, total: int) -> Row:
        return Row(label, Figure.of(total), tuple(None for _ in self.authorities))

    def roles(self, key: str, title: str, note: str, rows: Sequence[counts.RoleCount]) -> Section:
        by_role: dict[str, dict[str | None, int]] = defaultdict(dict)
        totals: dict[str | None, int] = defaultdict(int)
        for r in rows:
            by_role[r.role or "Role not recorded"][r.authority] = r.count
            totals[r.authority] += r.count
        out = []
        for role in sorted(by_role):
            cells = tuple(Figure.of(by_role[role].get(la, 0)) for la in self.authorities)
            out.append(Row(role, Figure.of(by_role[role].get(None, 0)), cells))
        out.append(Row(ALL_ROLES, Figure.of(totals[None]), tuple(Figure.of(totals[la]) for la in self.authorities)))
        return Section(key, title, note, tuple(out))

    def lookups(self, key: str, title: str, action: Action, rows: Sequence[counts.ActionCount]) -> Section:
        note = "Counted in the authority of the practitioner who looked. Refused and unfinished lookups are left out."
        return Section(
            key, title, note, tuple(self.row(label, _events(rows, action, o)) for o, label in LOOKUP_OUTCOMES)
        )


def _told(rows: Iterable[counts.DetailCount]) -> tuple[dict[str | None, int], dict[str | None, int]]:
    """(lead professionals, other practitioners) told, by the looker's authority: each event is one
    lookup and says how many of each it told (an event without that says only its result count)."""
    leads: dict[str | None, int] = defaultdict(int)
    others: dict[str | None, int] = defaultdict(int)
    for row in rows:
        found = _TOLD.match(row.detail)
        if found is None:
            leads[row.authority] += row.results
        else:
            leads[row.authority] += int(found.group(1)) * row.events
            others[row.authority] += int(found.group(2)) * row.events
    return leads, others


def _split_alert(detail: str, n: int) -> tuple[str, str, int]:
    """(rule, practitioner id, count) from an alert's detail "rule: practitioner"."""
    rule, _, who = detail.partition(":")
    return rule.strip(), who.strip(), n


def _alerts_section(tally: _Tally, alerts: Iterable[tuple[str, str, int]], authority_of: dict[str, str]) -> Section:
    by_rule: dict[str, dict[str | None, int]] = {rule: {} for rule in RULES}
    for rule, who, n in alerts:
        cells = by_rule.setdefault(rule or "other", {})
        la = authority_of.get(who)
        cells[la] = cells.get(la, 0) + n
    rows = tuple(tally.row(rule.replace("_", " ").capitalize(), by_rule[rule]) for rule in by_rule)
    return Section(
        "misuse_alerts",
        "Misuse alerts raised, by rule",
        "Alerts sent to duty managers when a practitioner's use looked unusual (counted in the practitioner's "
        "authority). An alert is a prompt to check, not a finding of misuse.",
        rows,
    )


def _children_section(tally: _Tally, retention: Iterable[tuple[str, int]]) -> Section:
    archived = destroyed = 0
    for detail, n in retention:
        found = _RETENTION.search(detail)
        if found:
            archived += int(found.group(1)) * n
            destroyed += int(found.group(2)) * n
    return Section(
        "children",
        "Children's records archived and destroyed",
        "Records are archived when the child turns 18 and destroyed, with their keys, when the child turns 24. "
        "Counted nationally.",
        (tally.national_row("Archived", archived), tally.national_row("Destroyed", destroyed)),
    )
