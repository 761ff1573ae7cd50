"""Batch reconciliation: match a roll (rows in the children feed format) against the register.

An admin runs it from the terminal (no chat step-up: they already hold the store and its key
file), and it is audited as ONE event. Each row gets exactly the decision the chat search would
take for the same fields (``handlers.search.judge`` on the same ranked candidates), and up to
``top`` candidates with their share of the posterior. Speed for a 100,000-row roll: the rows are
worked in chunks, each chunk's blind-index probes go out as one ``IN`` query and its candidates
are decrypted with one query per ``children.CHUNK`` references.

Memory is bounded at any roll size (a national roll of millions of rows): the roll is streamed
twice, first to check every row (a bad roll is refused whole, before anything is matched), then
chunk by chunk to match, and the answers are spooled to an unnamed temporary file that is read
only once the batch's audit event is durable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.matching.decide import DecisionKind, shared_posterior
from handlers.matching.score import MatchModel, query_count_keys
from handlers.matching.terms import MAX_QUERY_TERMS, Query, query_terms
from handlers.search import judge
from handlers.vocabulary import Action, Actor, Origin, Outcome, Role, plural
from store.audit.log import origin_event
from store.people import practitioners
from store.register import children, name_counts
from store.register.children import Candidate
from store.register.feeds import HEADERS, LINE_LIMIT, POSTCODE, SEXES, FeedKind, RowProblem, iso_day, unreadable
from store.register.terms import NameCounts

# A chunk's terms (≤ MAX_QUERY_TERMS a row) always fit one batch probe: one IN query per chunk.
ROWS_PER_CHUNK = children.BATCH_TERMS // MAX_QUERY_TERMS
DEFAULT_TOP = 5


@dataclass(frozen=True, slots=True)
class Roll:
    """Where a roll is read from, as often as asked: a name for messages, and its text (held
    whole: small rolls, tests) or the file it is streamed from, line by line."""

    name: str
    text: str = ""
    path: Path | None = None

    @classmethod
    def from_path(cls, path: Path) -> Roll:
        return cls(path.name, path=path)

    @contextmanager
    def lines(self) -> Iterator[Iterator[str]]:
        """The roll's text lines (a line past ``LINE_LIMIT`` characters comes in pieces); a file
        that cannot be opened or is not UTF-8 raises ``RollUnreadable``."""
        if self.path is None:
            yield iter(io.StringIO(self.text))
            return
        try:  # universal newlines and no BOM: the text `Path.read_text("utf-8-sig")` read
            handle = self.path.open(encoding="utf-8-sig")
        except OSError as exc:
            raise RollUnreadable(f"cannot read {self.path}: {exc.strerror}", "the roll cannot be read") from None
        with handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                # Read twice (checked, then matched): a pipe would be empty the second time.
                raise RollUnreadable(
                    f"{self.path} is not a file (a pipe?): save the roll to a file and match that",
                    "the roll is not a file",
                )
            yield _decoded(self.path, handle)


def _decoded(path: Path, handle: TextIO) -> Iterator[str]:
    try:
        yield from iter(lambda: handle.readline(LINE_LIMIT), "")
    except UnicodeDecodeError:
        raise RollUnreadable(f"{path} is not UTF-8 text", "the roll is not UTF-8") from None
    except OSError as exc:
        raise RollUnreadable(f"cannot read {path}: {exc.strerror}", "the roll cannot be read") from None


@dataclass(frozen=True, slots=True)
class Roster:
    """A validated roll: where to read it again, its number of data rows, and a digest of its text."""

    roll: Roll
    rows: int
    digest: str

    @property
    def name(self) -> str:
        return self.roll.name


@dataclass(frozen=True, slots=True)
class Ranked:
    ref: int
    confidence: float  # the candidate's share of the posterior among all the row's candidates
    shielded: bool


@dataclass(frozen=True, slots=True)
class LineAnswer:
    line: int
    decision: DecisionKind
    candidates: tuple[Ranked, ...]  # best first, at most ``top``


class RosterRejected(Exception):
    """The file is not a roll we can read; ``problems`` says why, row by row. Nothing was matched."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__(f"{plural(len(problems), 'problem')}; nothing was matched")
        self.problems = list(problems)


class RollUnreadable(Exception):
    """The roll's file cannot be opened or decoded: one line for the operator (it names the
    path), and a ``reason`` for the audit that does not."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RollChanged(Exception):
    """The roll read for matching is not the roll that was checked (written to meanwhile)."""


class BatchRefused(Exception):
    """The operator may not run a batch match (unknown, inactive, or not an admin)."""


class BatchFailed(Exception):
    """The batch could not be matched on our side, and nothing was answered: the register's blind
    index is not of this code's version (``children.IndexNotCurrent``), so every row would have
    read "no match", or the roll changed between its check and its matching. Audited as failed;
    the message holds versions only."""


# ---------------------------------------------------------------------------- reading the roll


def read_roster(roll: Roll) -> Roster:
    """Check every row of a roll, streaming it; raise ``RosterRejected`` listing every problem
    (``RollUnreadable`` when the file cannot be read as text at all).

    Every identity field may be empty; the child_ref, local_authority and shielded columns are
    not used. Empty lines are skipped and not counted.
    """
    problems: list[RowProblem] = []
    digest = hashlib.sha256()
    with roll.lines() as lines:
        rows = sum(1 for _ in _queries(roll.name, _hashed(roll.name, lines, digest, problems), problems))
    if problems:
        raise RosterRejected(problems)
    if not rows:
        raise RosterRejected([RowProblem(roll.name, 1, "file", "has no data rows")])
    return Roster(roll, rows, digest.hexdigest())


def _chunks(roster: Roster) -> Iterator[list[Query]]:
    """The roster's queries, read afresh from its roll, ``ROWS_PER_CHUNK`` at a time; after the
    last, ``RollChanged`` unless the text read is the text checked."""
    problems: list[RowProblem] = []
    digest = hashlib.sha256()
    rows = 0
    try:
        with roster.roll.lines() as lines:
            queries = _queries(roster.name, _hashed(roster.name, lines, digest, problems), problems)
            while chunk := list(itertools.islice(queries, ROWS_PER_CHUNK)):
                rows += len(chunk)
                yield chunk
    except RollUnreadable:  # it was readable when checked
        raise RollChanged() from None
    if problems or rows != roster.rows or digest.hexdigest() != roster.digest:
        raise RollChanged()


def _hashed(name: str, lines: Iterable[str], digest: hashlib._Hash, problems: list[RowProblem]) -> Iterator[str]:
    """The lines, each added to ``digest``; a line past ``LINE_LIMIT`` is no row (the csv module
    could not read it either): one problem, and the rest is not read."""
    for number, line in enumerate(lines, start=1):
        if len(line) >= LINE_LIMIT and not line.endswith("\n"):
            why = f"no line break in {LINE_LIMIT >> 20} M characters"
            problems.append(
                RowProblem(name, number, "row", f"cannot be read as CSV ({why}); nothing after it was read")
            )
            return
        digest.update(line.encode("utf-8"))
        yield line


def _queries(name: str, lines: Iterable[str], problems: list[RowProblem]) -> Iterator[Query]:
    """Each good data row's query, in order; each problem appended to ``problems`` as it is met."""
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        problems.append(unreadable(name, 1, exc))
        return
    expected = HEADERS[FeedKind.CHILDREN]
    if set(header) != set(expected) or len(header) != len(expected):
        problems.append(RowProblem(name, 1, "header", "expected the children feed header: " + ",".join(expected)))
        return
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the rest cannot be read as rows: one problem, and nothing more read
            problems.append(unreadable(name, start, exc))
            return
        if not values:  # an empty line is no row; a row of empty fields is (it matches nobody)
            continue
        line = reader.line_num
        if len(values) != len(header):
            problems.append(RowProblem(name, line, "row", f"has {len(values)} fields, expected {len(header)}"))
            continue
        query = _query(name, line, dict(zip(header, values, strict=True)), problems)
        if query is not None:
            yield query


def _query(name: str, line: int, row: dict[str, str], problems: list[RowProblem]) -> Query | None:
    before = len(problems)
    dob_text = row["date_of_birth"].strip()
    dob: date | None = None
    if dob_text:
        dob = iso_day(dob_text)
        if dob is None:
            problems.append(RowProblem(name, line, "date_of_birth", "is not a date in YYYY-MM-DD form"))
    sex = row["sex"].strip().upper()
    if sex and sex not in SEXES:
        problems.append(RowProblem(name, line, "sex", "must be F, M, X, U or empty"))
    postcode = " ".join(row["postcode"].upper().split())
    if postcode and not POSTCODE.match(postcode):
        problems.append(RowProblem(name, line, "postcode", "is not a UK postcode or outward code"))
    if len(problems) > before:
        return None
    return Query(row["given_names"].strip(), row["family_name"].strip(), dob, postcode or None, sex or None)


# ---------------------------------------------------------------------------- matching


class Answers:
    """A batch's answers in line order, spooled as they are made to an unnamed temporary file
    (memory bounded at any roll size; it holds references and decisions, never a name), with the
    tallies its one audit event records. ``run_batch`` returns it once that event is durable:
    only then is it read (iterated). Close it when done (``with``)."""

    def __init__(self) -> None:
        # Open for the object's life (closed by ``close``), not a block's: SIM115 does not apply.
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.rows = 0
        self.counts = dict.fromkeys(DecisionKind, 0)
        self.subjects: set[int] = set()  # every candidate listed: at most the register, whatever the roll

    def add(self, answers: Iterable[LineAnswer]) -> None:
        for answer in answers:
            candidates = [[c.ref, c.confidence, c.shielded] for c in answer.candidates]
            self._spool.write(json.dumps([answer.line, answer.decision.value, candidates]) + "\n")
            self.rows += 1
            self.counts[answer.decision] += 1
            self.subjects.update(c.ref for c in answer.candidates)

    def __iter__(self) -> Iterator[LineAnswer]:
        self._spool.flush()
        self._spool.seek(0)
        for spooled in self._spool:
            line, decision, candidates = json.loads(spooled)
            ranked = tuple(Ranked(ref, confidence, shielded) for ref, confidence, shielded in candidates)
            yield LineAnswer(line, DecisionKind(decision), ranked)

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> Answers:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


async def reconcile(
    ctx: Context,
    session: AsyncSession,
    chunks: Iterable[Sequence[Query]],
    top: int,
    now: datetime,
    answers: Answers,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Each row's decision and ranked candidates, chunk by chunk, into ``answers``
    (``on_progress``: rows done after each)."""
    model = MatchModel(population=await ctx.population.get(session, now))
    if on_progress is not None:
        on_progress(0)  # matching begins now, after the roll was checked: rates count from here
    for chunk in chunks:
        answers.add(await _reconcile_chunk(ctx, session, chunk, answers.rows + 1, top, model))
        if on_progress is not None:
            on_progress(len(chunk))


async def _reconcile_chunk(
    ctx: Context, session: AsyncSession, queries: Sequence[Query], first_line: int, top: int, model: MatchModel
) -> list[LineAnswer]:
    blinded = [children.probes(ctx.keys, query_terms(q)) for q in queries]
    holders = await children.term_holders(session, [term for terms in blinded for term in terms], children.BATCH_TERMS)
    limit = ctx.policy.candidate_limit
    refs = [children.rank_holders(terms, holders, limit) for terms in blinded]
    found = await children.load_candidates(session, ctx.keys, [ref for row in refs for ref in row])
    pairs = zip(queries, refs, strict=True)
    wanted = {key for query, row_refs in pairs if row_refs for key in query_count_keys(query)}
    counts = await name_counts.lookup(session, ctx.keys, wanted) if wanted else {}
    return [
        _answer(first_line + number, query, row_refs, found, model, ctx, top, counts)
        for number, (query, row_refs) in enumerate(zip(queries, refs, strict=True))
    ]


def _answer(
    line: int,
    query: Query,
    refs: list[int],
    found: dict[int, Candidate],
    model: MatchModel,
    ctx: Context,
    top: int,
    counts: NameCounts,
) -> LineAnswer:
    # Only the row's own names' counts: the same mapping the chat search would have looked up.
    own = {key: counts[key] for key in query_count_keys(query) if key in counts}
    decision = judge(query, refs, found, model, ctx.policy.match, own)
    shares = shared_posterior(decision.ranked)
    # Only candidates the chat would weigh at all (``consider``): a roll row matched to one child
    # listed four unrelated ones at 0.0000 too, each audited as a subject of the batch.
    floor = ctx.policy.match.consider
    ranked = tuple(
        Ranked(ref, share, found[ref].shielded)
        for (ref, weight), share in zip(decision.ranked[:top], shares, strict=False)
        if weight >= floor
    )
    return LineAnswer(line, decision.kind, ranked)


# ---------------------------------------------------------------------------- the use case


async def run_batch(
    ctx: Context,
    admin_id: str,
    roster: Roster,
    top: int,
    correlation_id: str,
    on_progress: Callable[[int], None] | None = None,
) -> Answers:
    """Check the operator is an active admin, match every row, and make ONE audit event durable
    before any answer is returned (fail closed: no audit, no answers). ``on_progress`` is told how
    many more rows are matched, chunk by chunk."""
    answers = Answers()
    try:
        await _run_batch(ctx, admin_id, roster, top, correlation_id, answers, on_progress)
    except BaseException:
        answers.close()
        raise
    return answers


async def _run_batch(
    ctx: Context,
    admin_id: str,
    roster: Roster,
    top: int,
    correlation_id: str,
    answers: Answers,
    on_progress: Callable[[int], None] | None,
) -> None:
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        actor = await practitioners.get_actor(session, admin_id)
        if actor is None or actor.status != "active" or not actor.has(Role.ADMIN):
            await _audit(ctx, session, admin_id, actor, Outcome.REFUSED, 0, (), "needs admin", "", correlation_id)
            raise BatchRefused("only an active admin can run a batch match: check --as")
        terms = f"{roster.name} sha256={roster.digest}"
        try:
            await reconcile(ctx, session, _chunks(roster), top, now, answers, on_progress)
        except children.IndexNotCurrent as exc:
            why = "index not current"
            await _audit(ctx, session, admin_id, actor, Outcome.FAILED, 0, (), why, terms, correlation_id)
            raise BatchFailed(
                f"nothing was matched: {exc} (Signpost is being updated); "
                "run the match again once every replica runs the same version"
            ) from None
        except RollChanged:
            why = "roll changed"
            await _audit(ctx, session, admin_id, actor, Outcome.FAILED, 0, (), why, terms, correlation_id)
            raise BatchFailed(
                f"nothing was matched: {roster.name} changed while it was being matched; "
                "match it again once it is written in full"
            ) from None
        subjects = tuple(sorted(answers.subjects))
        detail = f"top={top} " + " ".join(f"{kind.value}={n}" for kind, n in answers.counts.items())
        rows = answers.rows
        await _audit(ctx, session, admin_id, actor, Outcome.ANSWERED, rows, subjects, detail, terms, correlation_id)


async def audit_rejected(ctx: Context, admin_id: str, problems: int, correlation_id: str) -> None:
    """A roll that could not be read is still recorded, as invalid, with no rows matched."""
    async with ctx.db.read() as session:
        actor = await practitioners.get_actor(session, admin_id)
        detail = plural(problems, "problem")
        await _audit(ctx, session, admin_id, actor, Outcome.INVALID, 0, (), detail, "", correlation_id)


async def _audit(
    ctx: Context,
    session: AsyncSession,
    admin_id: str,
    actor: Actor | None,
    outcome: Outcome,
    rows: int,
    subjects: tuple[int, ...],
    detail: str,
    terms: str,
    correlation_id: str,
) -> None:
    now = ctx.clock.now()
    sealed, terms_key = await ctx.sealer.seal(session, terms, subjects, now)
    await ctx.audit.record(
        origin_event(
            Origin.BATCH,
            Action.MATCH_BATCH,
            now,
            who=admin_id,
            actor=actor,
            outcome=outcome,
            subjects=subjects,
            result_count=rows,
            detail=detail,
            correlation_id=correlation_id,
            terms=sealed,
            terms_key=terms_key,
        )
    )
