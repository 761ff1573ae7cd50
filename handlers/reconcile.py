"""Batch reconciliation: match a roll (rows in the children feed format) against the register.

An admin runs it from the terminal (no chat step-up: they already hold the store and its key
file), and it is audited as ONE event. Each row gets exactly the decision the chat search would
take for the same fields (``handlers.search.judge`` on the same ranked candidates), and up to
``top`` candidates with their share of the posterior. Speed for a 100,000-row roll: the rows are
worked in chunks, each chunk's blind-index probes go out as one ``IN`` query and its candidates
are decrypted with one query per ``children.CHUNK`` references.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

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
from store.register.feeds import HEADERS, POSTCODE, SEXES, FeedKind, RowProblem, iso_day, unreadable
from store.register.terms import NameCounts

# A chunk's terms (≤ MAX_QUERY_TERMS a row) always fit one batch probe: one IN query per chunk.
ROWS_PER_CHUNK = children.BATCH_TERMS // MAX_QUERY_TERMS
DEFAULT_TOP = 5


@dataclass(frozen=True, slots=True)
class Roster:
    """A validated roll: one query per data row, numbered from 1, and a digest of the file."""

    name: str
    queries: tuple[Query, ...]
    digest: str


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


class BatchRefused(Exception):
    """The operator may not run a batch match (unknown, inactive, or not an admin)."""


class BatchFailed(Exception):
    """The batch could not be matched on our side, and nothing was answered: the register's blind
    index is not of this code's version (``children.IndexNotCurrent``), so every row would have
    read "no match". Audited as failed; the message holds versions only."""


# ---------------------------------------------------------------------------- reading the roll


def read_roster(name: str, text: str) -> Roster:
    """Parse and check a roll; raise ``RosterRejected`` listing every problem.

    Every identity field may be empty; the child_ref, local_authority and shielded columns are
    not used. Empty lines are skipped and not counted.
    """
    problems: list[RowProblem] = []
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise RosterRejected([unreadable(name, 1, exc)]) from None
    expected = HEADERS[FeedKind.CHILDREN]
    if set(header) != set(expected) or len(header) != len(expected):
        problems.append(RowProblem(name, 1, "header", "expected the children feed header: " + ",".join(expected)))
        raise RosterRejected(problems)
    queries: list[Query] = []
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the rest cannot be read as rows: one problem, and nothing more read
            problems.append(unreadable(name, start, exc))
            break
        if not values:  # an empty line is no row; a row of empty fields is (it matches nobody)
            continue
        line = reader.line_num
        if len(values) != len(header):
            problems.append(RowProblem(name, line, "row", f"has {len(values)} fields, expected {len(header)}"))
            continue
        query = _query(name, line, dict(zip(header, values, strict=True)), problems)
        if query is not None:
            queries.append(query)
    if problems:
        raise RosterRejected(problems)
    if not queries:
        raise RosterRejected([RowProblem(name, 1, "file", "has no data rows")])
    return Roster(name, tuple(queries), hashlib.sha256(text.encode("utf-8")).hexdigest())


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


async def reconcile(
    ctx: Context,
    session: AsyncSession,
    queries: Sequence[Query],
    top: int,
    now: datetime,
    on_progress: Callable[[int], None] | None = None,
) -> list[LineAnswer]:
    """Each row's decision and ranked candidates, chunk by chunk (``on_progress``: rows done after each)."""
    model = MatchModel(population=await ctx.population.get(session, now))
    answers: list[LineAnswer] = []
    for start in range(0, len(queries), ROWS_PER_CHUNK):
        chunk = queries[start : start + ROWS_PER_CHUNK]
        answers.extend(await _reconcile_chunk(ctx, session, chunk, start + 1, top, model))
        if on_progress is not None:
            on_progress(len(chunk))
    return answers


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
) -> list[LineAnswer]:
    """Check the operator is an active admin, match every row, and make ONE audit event durable
    before anything is returned (fail closed: no audit, no answers). ``on_progress`` is told how
    many more rows are matched, chunk by chunk."""
    now = ctx.clock.now()
    async with ctx.db.read() as session:
        actor = await practitioners.get_actor(session, admin_id)
        if actor is None or actor.status != "active" or not actor.has(Role.ADMIN):
            await _audit(ctx, session, admin_id, actor, Outcome.REFUSED, 0, (), "needs admin", "", correlation_id)
            raise BatchRefused("only an active admin can run a batch match: check --as")
        terms = f"{roster.name} sha256={roster.digest}"
        try:
            answers = await reconcile(ctx, session, roster.queries, top, now, on_progress)
        except children.IndexNotCurrent as exc:
            why = "index not current"
            await _audit(ctx, session, admin_id, actor, Outcome.FAILED, 0, (), why, terms, correlation_id)
            raise BatchFailed(
                f"nothing was matched: {exc} (Signpost is being updated); "
                "run the match again once every replica runs the same version"
            ) from None
        subjects = tuple(sorted({r.ref for answer in answers for r in answer.candidates}))
        counts = {kind: sum(a.decision is kind for a in answers) for kind in DecisionKind}
        detail = f"top={top} " + " ".join(f"{kind.value}={n}" for kind, n in counts.items())
        rows = len(answers)
        await _audit(ctx, session, admin_id, actor, Outcome.ANSWERED, rows, subjects, detail, terms, correlation_id)
    return answers


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
