"""Filling and reconciling the register from the terminal: import feeds, seed the demo, match a roll.

An import (and a seed, which is an import of synthetic feeds) is audited through the command's
``Audit``: ``started`` (how many files and their sizes, never their names or contents, and whether
``--destroy-redated`` was given) before anything changes, then one outcome: ``done`` in the import's own transaction,
so both commit or neither, with rows read and changed per kind and the children past retention
or already destroyed; ``invalid`` with the problem count when the feeds are refused, or
``failed`` — each written after the import's transaction rolled back, so nothing is imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.operator.common import Audit, Failed, Refused
from handlers.operator.decommissioned import refuse_without_keys
from handlers.reconcile import Answers, BatchFailed, BatchRefused, audit_rejected, require_admin, run_batch
from handlers.roll import Roll, RollUnreadable, RosterRejected, read_roster
from handlers.vocabulary import Outcome, plural
from store.lifecycle import demo as disposable_store
from store.people import practitioners
from store.register import children, demo
from store.register.feeds import Feed, FeedKind, FeedRejected, ImportReport, Progress, Step, feed_rows, import_feeds
from store.register.sealers import SealerDied
from store.register.synthetic import DemoExamples, SyntheticRegister, feeds_text


@dataclass(frozen=True, slots=True)
class Imported:
    """Rows read and rows new or changed, per feed kind."""

    rows: dict[str, int]
    changed: dict[str, int]
    notes: tuple[str, ...] = ()  # lines beyond the counts (children skipped past retention), no personal data
    compaction_pending: bool = False  # records destroyed, and the files may still hold them (the last note says why)


class ImportRefused(Refused):
    """Nothing was imported; ``problems`` are one line each (file:line: field: problem): the first
    found of ``total`` (``feeds.Problems.KEPT`` at most)."""

    outcome = Outcome.INVALID

    def __init__(self, problems: Sequence[str], total: int | None = None) -> None:
        self.total = len(problems) if total is None else total
        super().__init__(f"{plural(self.total, 'problem')}; nothing was imported")
        self.problems = list(problems)


def _counts(report: ImportReport) -> str:
    kinds = sorted(report.rows)
    if not kinds:
        return "no rows"
    return " ".join(f"{kind}={report.rows[kind]}/{report.changed.get(kind, 0)}" for kind in kinds) + " (read/changed)"


def _detail(report: ImportReport, files: str, destroy_redated: bool) -> str:
    # Counts first: the detail is cut at 200 characters, and a long file list should lose its tail.
    if report.problems:
        # Refused: what the rows before the bad one wrote was rolled back with them, so every
        # count of rows changed is 0 whatever the report counted on the way.
        refused = ImportReport(rows=report.rows, changed=dict.fromkeys(report.rows, 0))
        problems = plural(report.problems.total, "problem")
        return f"{problems}; nothing changed: {_counts(refused)}; {_asked(files, destroy_redated)}"
    kept_out = f"past retention {report.past_retention}, already destroyed {report.destroyed}"
    return f"{_counts(report)}; {kept_out}; {_asked(files, destroy_redated)}"


def _asked(files: str, destroy_redated: bool) -> str:
    return f"destroy-redated {'yes' if destroy_redated else 'no'}; {files}"


def _files(feeds: Sequence[Feed]) -> str:
    """The files by count and size, never by name: an append-only audit cannot forget a name, and
    an operator may name a file after the child it is about ("amy-jones-2014.csv")."""
    sizes = [_size(feed) for feed in feeds]
    return f"{plural(len(feeds), 'file')} of {', '.join('?' if n is None else f'{n:,}' for n in sizes)} bytes"


def _size(feed: Feed) -> int | None:
    if feed.path is None:
        return len(feed.text.encode("utf-8"))
    try:
        return feed.path.stat().st_size
    except OSError:
        return None


FEED_CHANGED = (
    "nothing was imported: {name} changed while it was being imported (written to, cut short or replaced); "
    "import it again once it is written in full"
)


class FeedChanged(Exception):
    """A feed file read by the import is not the file it was when the import began."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _stamp(feed: Feed) -> tuple[int, int, int, int] | None:
    """What tells a feed file apart from itself changed: its device and inode, size and change time."""
    if feed.path is None:
        return None
    try:
        found = feed.path.stat()
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)


def _changed_feed(feeds: Sequence[Feed], stamps: Sequence[tuple[int, int, int, int] | None]) -> str | None:
    """The first feed file that is not as it was when the import began (None: all are)."""
    return next((str(feed.path) for feed, was in zip(feeds, stamps, strict=True) if _stamp(feed) != was), None)


async def _import(
    ctx: Context,
    audit: Audit,
    feeds: Sequence[Feed],
    *,
    extra: str = "",
    also: Callable[[AsyncSession, ImportReport], Awaitable[None]] | None = None,
    on_progress: Progress | None = None,
    on_involvements: Progress | None = None,
    on_step: Step | None = None,
    destroy_redated: bool = False,
) -> ImportReport:
    """Import in one transaction that also holds ``also``'s writes (told what was imported) and the
    outcome event."""
    stamps = [_stamp(feed) for feed in feeds]
    files = _files(feeds)
    audit.detail = extra + _asked(files, destroy_redated)
    await audit.started()

    async def outcome(session: AsyncSession, report: ImportReport) -> None:
        # Last, before anything commits: every row was read and checked, but from a file that may
        # have been written to meanwhile (what was read is then neither the file audited nor the
        # file as it is): as a roll's match, nothing is imported.
        changed_feed = await asyncio.to_thread(_changed_feed, feeds, stamps)
        if changed_feed is not None:
            raise FeedChanged(changed_feed)
        if also is not None:
            await also(session, report)
        changed = sum(report.changed.values())
        await audit.done_in(session, extra + _detail(report, files, destroy_redated), result_count=changed)

    try:
        report = await import_feeds(
            ctx.db,
            ctx.keys,
            feeds,
            ctx.clock.now(),
            before_commit=outcome,
            on_progress=on_progress,
            on_involvements=on_involvements,
            on_step=on_step,
            destroy_redated=destroy_redated,
        )
    except FeedChanged as changed:
        raise Failed(FEED_CHANGED.format(name=changed.name), reason="feed changed") from None
    except FeedRejected as rejected:
        if (changed_feed := await asyncio.to_thread(_changed_feed, feeds, stamps)) is not None:
            # Its problems may be the change's (a row cut short): the change is what to tell.
            raise Failed(FEED_CHANGED.format(name=changed_feed), reason="feed changed") from None
        audit.detail = extra + _detail(rejected.report, files, destroy_redated)
        problems = rejected.report.problems
        raise ImportRefused([str(problem) for problem in problems], problems.total) from None
    except children.IndexNotCurrent as exc:
        # Mid rolling upgrade: this (older) code's terms in the newer index would leave every child
        # it writes unfindable by name. Nothing is written; the newer Signpost imports the feeds.
        raise Failed(
            f"nothing was imported: {exc} (Signpost is being updated); run the import with the newer Signpost",
            reason="index not current",
        ) from None
    except SealerDied as died:  # killed, or out of memory: the transaction rolled back
        raise Failed(
            f"nothing was imported: {died} (killed, or the machine ran out of memory); run the import again",
            reason="sealing worker died",
        ) from None
    ctx.population.forget()
    return report


async def import_files(ctx: Context, audit: Audit, files: Sequence[tuple[str, bytes]]) -> Imported:
    """Import feed CSVs given as (file name, contents), all or nothing; raise ``ImportRefused``.

    A file that is not UTF-8 is one of the problems (its first bad line), like any bad row.
    """
    report = await _import(ctx, audit, [Feed.from_bytes(name, data) for name, data in files])
    return Imported(dict(report.rows), dict(report.changed), tuple(report.notes()), bool(report.compaction_pending))


async def import_paths(
    ctx: Context,
    audit: Audit,
    paths: Sequence[Path],
    on_progress: Progress | None = None,
    on_total: Progress | None = None,
    *,
    on_involvements: Progress | None = None,
    on_involvements_total: Progress | None = None,
    on_step: Step | None = None,
    destroy_redated: bool = False,
) -> Imported:
    """Import feed CSV files, read row by row (bounded memory at any size), all or nothing; raise
    ``ImportRefused``. ``on_total`` is told how many children rows the files hold, ``on_progress``
    how many more children were processed, after each chunk; ``on_involvements_total`` and
    ``on_involvements`` the same for involvement rows; ``on_step`` each step that has no count
    (``ImportStep``) as it begins. ``destroy_redated``: a row changing a held child's date of birth
    to one 24 or more years ago destroys the record, instead of being a problem."""
    refuse_without_keys(ctx)  # nothing taken into a store decommissioning has emptied
    for count, kind in ((on_total, FeedKind.CHILDREN), (on_involvements_total, FeedKind.INVOLVEMENTS)):
        if count is not None:
            count(await asyncio.to_thread(feed_rows, paths, kind))
    feeds = [Feed.from_path(path) for path in paths]
    report = await _import(
        ctx,
        audit,
        feeds,
        on_progress=on_progress,
        on_involvements=on_involvements,
        on_step=on_step,
        destroy_redated=destroy_redated,
    )
    return Imported(dict(report.rows), dict(report.changed), tuple(report.notes()), bool(report.compaction_pending))


MAX_DEMO_CHILDREN = 11_000_000  # the national register's size


@dataclass(frozen=True, slots=True)
class Seeded:
    """What seed-demo did: nothing when the store already held ``existing`` children (``--if-empty``)."""

    seeded: bool
    existing: int
    changed: dict[str, int] = field(default_factory=dict)
    marked: bool = True  # a disposable demo store (the dev clock may run on it)


async def seed_demo(
    ctx: Context,
    audit: Audit,
    children: int,
    *,
    if_empty: bool,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Seeded:
    """Load the deterministic synthetic register (idempotent), and remember its size for the console.

    ``on_total`` is told how many children the demo data has, ``on_progress`` how many more were
    imported, after each chunk.
    """
    if not 1 <= children <= MAX_DEMO_CHILDREN:
        raise Refused(f"--children must be from 1 to {MAX_DEMO_CHILDREN:,}", reason="bad --children")
    async with ctx.db.read() as session:
        existing = await demo.count_children(session)
    if existing and if_empty:
        await audit.done(f"skipped: the store already holds {existing} children")
        if on_total is not None:
            on_total(0)  # nothing to seed (not "0 children in 0.0 s")
        return Seeded(False, existing)
    # Only a store that held nothing before seeding (or was already a demo store) is disposable.
    disposable = await disposable_store.may_mark(ctx.db)
    if not disposable and await disposable_store.holds_a_register(ctx.db):
        # Synthetic children and practitioners mixed into an imported (perhaps real) register could
        # be found, and told of: refused. (Audit events alone, say, only keep the store unmarked.)
        raise Refused(
            "this store holds imported data, so demo data is not added to it: seed a new store "
            "(point SIGNPOST_DATABASE_URL at a new file or database)",
            reason="store holds imported data",
        )
    feeds = [Feed(name, text) for name, text in feeds_text(SyntheticRegister(children=children)).items()]
    if on_total is not None:
        on_total(children)

    async def remember(session: AsyncSession, report: ImportReport) -> None:
        # Every import unmarks the store in its transaction (store/register/feeds.py): re-marked even
        # when nothing was written, or a re-run would take the dev clock away.
        if disposable:
            await disposable_store.mark_disposable(session, ctx.clock.now().isoformat())
        if not any(report.changed.values()):
            return  # a re-run that wrote nothing keeps the demo's size (the console's examples)
        # A smaller demo seeded over a bigger one deletes none of it: the store holds the bigger one.
        size = await demo.size(session)
        await demo.remember_size(session, children if size is None else max(size, children))

    report = await _import(ctx, audit, feeds, extra=f"children={children}; ", also=remember, on_progress=on_progress)
    return Seeded(True, existing, dict(report.changed), marked=disposable)


async def is_disposable_demo(ctx: Context) -> bool:
    """Whether this store is a disposable demo store (the only kind the dev clock may touch)."""
    return await disposable_store.is_disposable(ctx.db)


async def demo_examples(ctx: Context) -> DemoExamples | None:
    """Searches and people that work on the demo data, or None when the store was not seeded with it.

    Only what the store still holds: after a decommissioning destroyed the register (the admins'
    rows stay until the certificate reaches them), a search or a person it no longer holds is
    left empty (""), and the console suggests none of them."""
    async with ctx.db.read() as session:
        size = await demo.size(session)
        if size is None:
            return None
        examples = SyntheticRegister(children=size).examples()
        people = (examples.practitioner_id, examples.duty_manager_id, examples.admin_id)
        held = await practitioners.existing_ids(session, people)
        any_child = await demo.count_children(session) > 0
    return replace(
        examples,
        keyed=examples.keyed if any_child else "",
        demographic=examples.demographic if any_child else "",
        shielded=examples.shielded if any_child else "",
        practitioner_id=examples.practitioner_id if examples.practitioner_id in held else "",
        duty_manager_id=examples.duty_manager_id if examples.duty_manager_id in held else "",
        admin_id=examples.admin_id if examples.admin_id in held else "",
    )


async def match_roll(
    ctx: Context,
    audit: Audit,
    roll: Roll,
    top: int,
    correlation_id: str,
    *,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Answers:
    """Reconcile a roll against the register as the admin ``audit.practitioner`` (one batch event, also when
    refused: the batch's own, with its sealed terms, written by ``handlers.reconcile``). The roll
    is streamed (checked in full first, then matched), so memory is bounded at any size.

    Raises ``RosterRejected`` (the roll cannot be read: every problem), ``Refused`` (also when its
    file cannot be opened or is not UTF-8), or ``Failed`` (the search index is not this version's,
    or the roll changed while it was matched: nothing matched). Once the roll is checked,
    ``on_total`` is told its number of rows and ``on_progress`` how many more are matched. The
    answers are the caller's to close. Anyone but an active admin is refused before the roll is
    opened.
    """
    refuse_without_keys(ctx)  # its search terms are sealed in its audit event, under a key not there
    try:
        admin = await require_admin(ctx, audit.practitioner, audit.who, correlation_id)
    except BatchRefused as refused:
        audit.recorded()
        raise Refused(str(refused)) from None
    try:
        roster = await asyncio.to_thread(read_roster, roll)
    except RollUnreadable as unreadable:
        raise Refused(str(unreadable), reason=unreadable.reason) from None
    except RosterRejected as rejected:
        await audit_rejected(ctx, admin, len(rejected.problems), correlation_id)
        audit.recorded()
        raise
    if on_total is not None:
        on_total(roster.rows)
    try:
        answers = await run_batch(ctx, admin, roster, top, correlation_id, on_progress)
    except BatchRefused as refused:
        audit.recorded()
        raise Refused(str(refused)) from None
    except BatchFailed as failed:
        audit.recorded()
        raise Failed(str(failed)) from None
    audit.recorded()
    return answers
