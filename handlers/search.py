"""The one question: who else is working, or has worked, with this child?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from handlers import lead
from handlers.access import screening
from handlers.access.found import handle
from handlers.access.notices import when
from handlers.context import Context
from handlers.dispatch.spec import Request, Result, Spec, StepUp, parsed_by, reference_in
from handlers.grammar import UsageError, parse_demographic
from handlers.matching.decide import Decision, DecisionKind, MatchPolicy, choose, details_to_add
from handlers.matching.score import MatchModel, query_count_keys
from handlers.matching.terms import Query, query_terms
from handlers.refs import InvalidReference, parse_reference
from handlers.vocabulary import (
    BAD_CHECK_DIGIT,
    Action,
    Actor,
    Button,
    Input,
    Outcome,
    Reply,
    format_ref,
    sentence,
)
from store.audit.log import CANDIDATES_AT_MOST
from store.people.standing import Ahead
from store.register import children
from store.register.children import Candidate
from store.register.terms import NameCounts

NO_RECORD = "No record found for that reference. Check the digits, or search by name and date of birth."
UPDATING = (
    "Signpost is being updated, so it cannot search by name and date of birth just now. "
    "Please try again in a few minutes, or search by reference number."
)
# One answer, word for word, to every search by name and date of birth that is not accepted: no
# candidate at all, one on evidence under the accept threshold, one a twin or sibling guard holds
# back, or several. Telling any two apart would let anyone probe the register (step a family name
# through dates until the answer changes, and a child of that name born on or near that day is
# known to exist). It is true in every case and asks only for what the query lacks; the audit
# alone records which it was (``Outcome.AMBIGUOUS`` and its candidates, for misuse review).
NO_MATCH = "No record matches those details for certain, so none is shown."
ADD_DETAIL = "Please add more detail: {details}."
CHECK = "check the spelling and the date of birth, or search by reference number."


def not_found_text(query: Query) -> str:
    """The one answer to a search not accepted, asking for what the query lacks (``details_to_add``):
    nothing about the candidates, not even whether there were any."""
    details = details_to_add(query)
    if not details:
        return f"{NO_MATCH} Please {CHECK}"
    listed = details[0] if len(details) == 1 else ", ".join(details[:-1]) + " or " + details[-1]
    return f"{NO_MATCH} {ADD_DETAIL.format(details=listed)} Otherwise {CHECK}"


SHIELDED = (
    "A record exists and is shielded. Its signposts are shown only with access approved by a duty "
    "manager. Use Request access and give the purpose, or Send a message: Signpost passes it on to "
    "the professional responsible without telling you who they are."
)
# Under a grant: the one line that says why these signposts will stop showing, and when (the
# expiry as the approval gave it, handlers.access.notices.when).
SHIELDED_UNTIL = "This record is shielded: your access ends at {until}."
# An accepted match whose names or date of birth are not the child's as typed (``Decision.exact``):
# said, never what differs (that would echo what the practitioner did not type).
DIFFERS = "Matched with a difference from what you typed"
MATCH_DIFFERS = f"{DIFFERS}: check the reference against your records before acting."
LOOKUP_USAGE = "Search by reference number, e.g. 999 000 1006 (10 digits)."
SEARCH_USAGE = (
    "Search by name and date of birth, optionally the postcode: GIVEN FAMILY DD/MM/YYYY [POSTCODE], "
    "e.g. Ava Price 05/01/2014 NS1 3LY."
)


def request_access_button(ref: int | str) -> Button:
    """``ref``: the child's reference, or the handle of a search by name and date of birth
    (handlers/access/found.py), whose finder is not to learn the reference."""
    return Button(
        action_id="request_access",
        label="Request access",
        command=f"request {ref}",
        style="primary",
        input=Input(name="purpose", label="Purpose: why do you need these signposts?", max_length=screening.MAX_TEXT),
    )


def send_message_button(ref: int | str) -> Button:
    """Write to the shielded child's lead professional without learning who they are (handlers/access/relay.py)."""
    return Button(
        action_id="relay_message",
        label="Send a message",
        command=f"message {ref}",
        input=Input(
            name="text",
            label="Your purpose and how to reach you (no name, date of birth, postcode or reference of the child)",
            max_length=screening.MAX_TEXT,
        ),
    )


async def answer_for(
    ctx: Context,
    session: AsyncSession,
    actor: Actor,
    ref: int,
    now_terms: str,
    req: Request,
    *,
    by_name: bool = False,
    differs: bool = False,
) -> Result:
    """Signposts for one matched child, or the shielded notice when no grant covers it.

    ``by_name``: found by name and date of birth, so the shielded notice's buttons carry this search's
    handle, not the reference the practitioner did not type (handlers/access/found.py).
    ``differs``: matched with a difference from what was typed, which the answer says.

    One read for the child, its wrapped data key (the audit terms are sealed under it), its
    signposts and who is told of the lookup; a shielded child's signposts (and who is told) are
    read only once a grant is found.
    """
    found = await children.enquire(session, ctx.keys, ref, req.now, actor.practitioner_id)
    if found is None or found.record.state != "active":
        # Archived and destroyed children say nothing about themselves to ordinary searches. An
        # archived child's terms are sealed under its own key (not a subject: no lead notice, no
        # count), so they die with it at 24 rather than live on under the month's key.
        # A destroyed child's reference keeps no terms at all (under the month's key it would be
        # readable for two years after the child was destroyed).
        key = None if found is None else found.key
        gone = found is not None and found.record.state == "destroyed"
        return Result(Reply(Outcome.NO_MATCH, NO_RECORD), terms=now_terms, subject_key=key, withhold_terms=gone)
    record, key = found.record, found.key
    until = await ctx.grants.grant_expires_at(session, actor, ref, req.now) if record.shielded else None
    if record.shielded and until is None:
        target = handle(req.command.correlation_id) if by_name else ref
        buttons = (request_access_button(target), send_message_button(target))
        # No warning when what was typed differs from the record: a shielded match says only that a
        # record exists and is shielded, and the warning, tried against variants, would tell which
        # spelling, alias or date of birth is the registered one.
        reply = Reply(Outcome.SHIELDED, SHIELDED, buttons=buttons)
        return Result(reply, subjects=(ref,), terms=now_terms, subject_key=key)
    posts = tuple(await children.signposts(session, ref, req.now) if record.shielded else found.signposts)
    if posts:
        text = f"Signposts for {format_ref(ref)}: {len(posts)} involvement{'s' if len(posts) != 1 else ''}."
    else:
        text = f"No practitioners are recorded as working with {format_ref(ref)}."
    shown_until = () if until is None else (SHIELDED_UNTIL.format(until=when(until)),)
    lines = ((MATCH_DIFFERS,) if differs else ()) + shown_until
    reply = Reply(Outcome.ANSWERED, text, child_ref=format_ref(ref), signposts=posts, lines=lines)
    told = await lead.inform(ctx, req, record, session, found.told)  # the lead is told who looked (handlers/lead.py)
    return Result(reply, subjects=(ref,), result_count=len(posts), terms=now_terms, subject_key=key, also=told)


async def lookup(ctx: Context, req: Request, session: AsyncSession) -> Result:
    assert req.actor is not None
    try:
        ref = parse_reference(req.args)
    except InvalidReference as exc:
        return bad_reference(exc)
    return await answer_for(ctx, session, req.actor, ref, req.args, req)


def bad_reference(exc: InvalidReference) -> Result:
    return Result(Reply(Outcome.INVALID, f"{sentence(str(exc))}. {LOOKUP_USAGE}"), detail=BAD_CHECK_DIGIT)


def _enquiry_ahead(args: str, now: datetime) -> Ahead | None:
    """A lookup's one read, made with the asker's standing (``Spec.read_ahead``); none for a
    reference that does not parse (the handler answers that without reading)."""
    try:
        return children.enquiry_read(parse_reference(args), now)
    except InvalidReference:
        return None


def judge(
    query: Query,
    refs: Sequence[int],
    found: Mapping[int, Candidate],
    model: MatchModel,
    policy: MatchPolicy,
    counts: NameCounts | None = None,
) -> Decision[int]:
    """Weigh the candidates in their ranked order (ties keep it) and decide: the one rule that
    both the chat search and batch reconciliation apply."""
    return choose(query, [(ref, found[ref].identity) for ref in refs if ref in found], model, policy, counts)


async def find_child(ctx: Context, session: AsyncSession, query: Query, now: datetime) -> Decision[int]:
    """Candidates through the blind index, decrypted, scored and decided: one statement reads the
    ranked candidates with their sealed identities and keys and the query's name counts
    (``children.find_candidates``).

    A query with no selective term (a name alone, say) is not probed at all: no match.
    """
    terms = query_terms(query)
    if not terms:
        return Decision(DecisionKind.NO_MATCH, None, ())
    probe = await children.find_candidates(
        session, ctx.keys, terms, query_count_keys(query), ctx.policy.candidate_limit
    )
    model = MatchModel(population=await ctx.population.get(session, now))
    return judge(query, probe.refs, probe.found, model, ctx.policy.match, probe.counts)


async def search(ctx: Context, req: Request, session: AsyncSession) -> Result:
    assert req.actor is not None
    query = parse_demographic(req.args, req.now.date())
    try:
        decision = await find_child(ctx, session, query, req.now)
    except children.IndexNotCurrent:
        # Never "no record" from an index this code cannot read: people may work with this child.
        # Audited with its terms like any search; the log line is the store's (versions only).
        return Result(Reply(Outcome.FAILED, UPDATING), terms=req.args, detail="index not current")
    if decision.kind is DecisionKind.MATCH and decision.best is not None:
        differs = not decision.exact
        return await answer_for(ctx, session, req.actor, decision.best, req.args, req, by_name=True, differs=differs)
    if decision.kind is DecisionKind.AMBIGUOUS:
        close = tuple(ref for ref, p in decision.ranked if p >= ctx.policy.match.accept)
        # Every other child that made the search ambiguous (the heaviest few weak ones)
        # is recorded as a possible match, so its subject access report shows the search; as a tag
        # that dies with the child's key, never its reference (store/audit/candidates.py, candidate_tag).
        # Never a child recorded as a subject too: a tag beside its reference on one event would
        # name the tag, and then every weak-only event holding it, after the child is destroyed.
        possible = [ref for ref, p in decision.ranked if ctx.policy.match.consider <= p < ctx.policy.match.accept][
            : max(CANDIDATES_AT_MOST - len(close), 0)
        ]
        candidates = await ctx.sealer.candidate_tags(session, possible)
        # The outcome is for the audit (no front end shows it); the words are those of no candidate.
        reply = Reply(Outcome.AMBIGUOUS, not_found_text(query))
        return Result(reply, subjects=close, terms=req.args, candidates=candidates)
    return Result(Reply(Outcome.NO_MATCH, not_found_text(query)), terms=req.args)


def _check_search(args: str, now: datetime) -> None:
    """The search's own parse, before any code is asked for (``Spec.check``): raises ``UsageError``."""
    parse_demographic(args, now.date())


def birth_date_in(text: str, today: date) -> date | None:
    """The date of birth a search's text carries (its audit terms die with that date's children)."""
    try:
        return parse_demographic(text, today).date_of_birth
    except UsageError:
        return None


SPECS = (
    Spec(
        name="lookup",
        action=Action.LOOKUP,
        run=lookup,
        read_ahead=_enquiry_ahead,
        check=parsed_by(parse_reference, reference=bad_reference),
        names_child=reference_in(parse_reference),
        summary="find a child's signposts by reference number",
        usage=LOOKUP_USAGE,
        stepup=StepUp.FRESH,
        keyword=False,
    ),
    Spec(
        name="search",
        action=Action.SEARCH,
        run=search,
        summary="find a child's signposts by name and date of birth",
        usage=SEARCH_USAGE,
        stepup=StepUp.FRESH,
        keyword=False,
        born_in=birth_date_in,
        check=_check_search,
    ),
)
