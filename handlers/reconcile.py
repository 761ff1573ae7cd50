"""Batch reconciliation: match a roll (rows in the children feed format) against the register.

An admin runs it from the terminal (no chat step-up: they already hold the store and its key
file), and it is audited as ONE event. Each row gets exactly the decision the chat search would
take for the same fields (``handlers.search.judge`` on the same ranked candidates): a match lists
its one child; an ambiguous row up to ``top`` plausible candidates with their share of the
posterior; no match, none. Only the children listed are the event's subjects. Speed for a 100,000-row roll: the rows are
worked in chunks, each chunk's blind-index probes go out as one ``IN`` query and its candidates
are decrypted with one query per ``children.CHUNK`` references.

Memory is bounded at any roll size (a national roll of millions of rows): the roll is streamed
(``handlers.roll``: checked in full first, so a bad roll is refused whole before anything is
matched, then read again chunk by chunk to match), and the answers are spooled to an unnamed
temporary file that is read only once the batch's audit event is durable.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.matching.decide import DecisionKind, shared_posterior
from handlers.matching.score import MatchModel, query_count_keys
from handlers.matching.terms import Query, query_terms
from handlers.roll import RollChanged, RollRow, Roster, chunks
from handlers.search import judge
from handlers.vocabulary import Action, Actor, Origin, Outcome, Role, plural
from store.audit.log import origin_event
from store.people import practitioners
from store.register import children, name_counts
from store.register.children import Candidate
from store.register.terms import NameCounts


@dataclass(frozen=True, slots=True)
class Ranked:
    ref: int
    confidence: float  # the candidate's share of the posterior among all the row's candidates
    shielded: bool


# An ambiguous row's candidate is listed only with at least this share of the row's probability:
# one shown as 0.0000 was never a plausible answer, and listing it discloses a child for nothing.
MIN_SHARE = 0.0001


@dataclass(frozen=True, slots=True)
class LineAnswer:
    line: int  # the row's line in the roll's file (the header is line 1), as its problems say
    decision: DecisionKind
    candidates: tuple[Ranked, ...]  # a match: its child; ambiguous: at most ``top``, best first


class BatchRefused(Exception):
    """The operator may not run a batch match (unknown, inactive, or not an admin)."""


class BatchFailed(Exception):
    """The batch could not be matched on our side, and nothing was answered: the register's blind
    index is not of this code's version (``children.IndexNotCurrent``), so every row would have
    read "no match", or the roll changed between its check and its matching. Audited as failed;
    the message holds versions and the roll's file name only."""


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
    chunks: Iterable[Sequence[RollRow]],
    top: int,
    now: datetime,
    answers: Answers,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Each row's decision and ranked candidates, chunk by chunk, into ``answers``
    (``on_progress``: rows done after each). Each chunk is read from the roll in a worker thread, as
    its check was (``match_roll``): a file's reads never hold the event loop."""
    model = MatchModel(population=await ctx.population.get(session, now))
    if on_progress is not None:
        on_progress(0)  # matching begins now, after the roll was checked: rates count from here
    unread = iter(chunks)
    while (chunk := await asyncio.to_thread(next, unread, None)) is not None:
        answers.add(await _reconcile_chunk(ctx, session, chunk, top, model))
        if on_progress is not None:
            on_progress(len(chunk))


async def _reconcile_chunk(
    ctx: Context, session: AsyncSession, rows: Sequence[RollRow], top: int, model: MatchModel
) -> list[LineAnswer]:
    queries = [row.query for row in rows]
    blinded = [children.probes(ctx.keys, query_terms(q)) for q in queries]
    holders = await children.term_holders(session, [term for terms in blinded for term in terms], children.BATCH_TERMS)
    limit = ctx.policy.candidate_limit
    refs = [children.rank_holders(terms, holders, limit) for terms in blinded]
    found = await children.load_candidates(session, ctx.keys, [ref for row in refs for ref in row])
    pairs = zip(queries, refs, strict=True)
    wanted = {key for query, row_refs in pairs if row_refs for key in query_count_keys(query)}
    counts = await name_counts.lookup(session, ctx.keys, wanted) if wanted else {}
    return [
        _answer(row.line, row.query, row_refs, found, model, ctx, top, counts)
        for row, row_refs in zip(rows, refs, strict=True)
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
    # A match is its one child, as in chat: a matched row listed other children below it (at
    # 0.0000), each audited as a subject of the batch. An ambiguous row lists the candidates the
    # chat weighs at all (``consider``) that hold a share worth showing; no match lists none.
    wanted = 1 if decision.kind is DecisionKind.MATCH else top
    floor = ctx.policy.match.consider
    ranked = tuple(
        Ranked(ref, share, found[ref].shielded)
        for (ref, weight), share in zip(decision.ranked[:wanted], shares, strict=False)
        if weight >= floor and share >= MIN_SHARE
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
        actor = await _admin(ctx, session, admin_id, correlation_id)
        terms = f"sha256={roster.digest}"  # never the file name: it may name a child
        try:
            await reconcile(ctx, session, chunks(roster), top, now, answers, on_progress)
        except (children.IndexNotCurrent, RollChanged) as exc:
            why, told = _unmatched(exc, roster.name)
            await _audit(ctx, session, admin_id, actor, Outcome.FAILED, 0, (), why, terms, correlation_id)
            raise BatchFailed(told) from None
        subjects = tuple(sorted(answers.subjects))
        detail = f"top={top} " + " ".join(f"{kind.value}={n}" for kind, n in answers.counts.items())
        rows = answers.rows
        await _audit(ctx, session, admin_id, actor, Outcome.ANSWERED, rows, subjects, detail, terms, correlation_id)


async def require_admin(ctx: Context, admin_id: str | None, who: str, correlation_id: str) -> str:
    """Refuse (audited, as the batch's one event) anyone but an active admin: before the roll is
    opened, so someone who may not match learns nothing of it, and its problems are not audited.
    ``admin_id``: the register's id the operator gave (``--as``), None when what they typed names no
    one there; that refusal is recorded under ``who``, the operator's account, never the typed text."""
    async with ctx.db.read() as session:
        if admin_id is None:
            await _refuse(ctx, session, who, None, correlation_id)
        return (await _admin(ctx, session, admin_id, correlation_id)).practitioner_id


async def _admin(ctx: Context, session: AsyncSession, admin_id: str, correlation_id: str) -> Actor:
    actor = await practitioners.get_actor(session, admin_id)
    if actor is None or actor.status != "active" or not actor.has(Role.ADMIN):
        await _refuse(ctx, session, admin_id, actor, correlation_id)
    return actor


async def _refuse(ctx: Context, session: AsyncSession, who: str, actor: Actor | None, correlation_id: str) -> NoReturn:
    await _audit(ctx, session, who, actor, Outcome.REFUSED, 0, (), "needs admin", "", correlation_id)
    raise BatchRefused("only an active admin can run a batch match: check --as")


def _unmatched(exc: Exception, roll: str) -> tuple[str, str]:
    """Why a batch stopped before anything was matched: the audit's reason and the operator's line."""
    if isinstance(exc, RollChanged):
        return "roll changed", (
            f"nothing was matched: {roll} changed while it was being matched; match it again once it is written in full"
        )
    return "index not current", (
        f"nothing was matched: {exc} (Signpost is being updated); "
        "run the match again once every replica runs the same version"
    )


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
