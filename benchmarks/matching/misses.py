"""Read the present children answered "more than one record could match", one by one.

    python -m benchmarks.matching.misses --children 100000 [--kind dob_digit] [--show 20]
    python -m benchmarks.matching.misses --children 100000 --absent
    python -m benchmarks.matching.misses --children 100000 --not-first

Same register, queries and scoring as ``benchmarks.matching.run`` (same seed, same options). For
each present query whose answer is ambiguous it says why the right child was not accepted:

- ``not first``: another candidate weighs more;
- ``standing <standing>``: its names or date never allow it, whatever its weight
  (:class:`~handlers.matching.score.Standing`: a probable sibling or twin, a far date, an unknown
  surname, names incomplete);
- ``weight (<standing>)``: the right child's own weight is under the accept threshold;
- ``household guard``: its weight reaches the threshold, but a relative among the candidates holds it
  (``decide._Households``: a relative's name typed, one agreeing as well, a nearer slip, a relative's
  birthday);
- ``guard <standing>``: its weight reaches the threshold, but the guard on its standing holds it (a
  registered twin for a garbled name, a relative born on the date typed for a far date);
- ``margin``: it is first and heavy enough, but the others together are within the margin.

It prints a count per class and reason, then up to ``--show`` examples per class: the query, the
right child, and the first three candidates with their weight (bits, before → after the guards)
and standing.

``--absent`` reads the absent children that were accepted instead: the query, the child accepted,
the comparison levels of the reading the scorer took and each part's weight, and the runner-up.
``--not-first`` reads the present children that are candidates but not ranked first (what top-1
misses, whatever the answer was), with the same detail for the right child and the one above it.
Everything is synthetic.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence

from benchmarks.matching.generate import Child, Generator, Labelled
from benchmarks.matching.run import BlindIndex, name_counts
from handlers.matching.decide import Decision, DecisionKind, MatchPolicy, choose
from handlers.matching.score import MatchModel, Standing, assess, comparison_levels, explain, query_count_keys
from handlers.matching.terms import Query, query_terms
from store.register.terms import Identity, normalise_name, phonetic_key

_NEVER_ACCEPTED = frozenset(
    {Standing.HOUSEHOLD, Standing.FAR_DATE, Standing.UNKNOWN_SURNAME, Standing.NAMES_INCOMPLETE}
)


def _family(identity: Identity) -> str:
    """The family key the twin and sibling guards compare (``handlers.matching.decide``)."""
    family = normalise_name(identity.family_name)
    return phonetic_key(family) if family else ""


def _show(identity: Identity) -> str:
    aliases = f" aka {'/'.join(identity.aliases)}" if identity.aliases else ""
    return (
        f"{identity.given_names} | {identity.family_name} | {identity.date_of_birth} | "
        f"{identity.postcode} | {identity.sex}{aliases}"
    )


def _query(query: Query) -> str:
    return f"{query.given_names} | {query.family_name} | {query.date_of_birth} | {query.postcode} | {query.sex}"


def classify(
    labelled: Labelled,
    register: Sequence[Child],
    index: BlindIndex,
    model: MatchModel,
    policy: MatchPolicy,
    counts: dict[str, int] | None,
) -> tuple[str, list[str]] | None:
    """Why a present query was not accepted (None when it was, or when it is not ambiguous)."""
    query = labelled.query
    found = sorted(index.candidates(query_terms(query)))
    wanted = {key: counts[key] for key in query_count_keys(query) if key in counts} if counts else None
    decision = choose(query, [(n, register[n].identity) for n in found], model, policy, wanted)
    if decision.kind is not DecisionKind.AMBIGUOUS or labelled.child is None:
        return None
    ranked = decision.ranked
    raw = {n: assess(query, register[n].identity, model, wanted) for n, _ in ranked[:3]}
    true_raw = assess(query, register[labelled.child].identity, model, wanted)
    if ranked[0][0] != labelled.child:
        reason = "not first"
    elif true_raw.standing in _NEVER_ACCEPTED:
        reason = f"standing {true_raw.standing}"
    elif true_raw.bits < policy.accept:
        reason = f"weight ({true_raw.standing})"
    elif ranked[0][1] < policy.accept:
        reason = "household guard" if true_raw.standing is Standing.OPEN else f"guard {true_raw.standing}"
    else:
        reason = "margin"
    lines = [f"  query: {_query(query)}", f"  child: {_show(register[labelled.child].identity)}"]
    levels = comparison_levels(query, register[labelled.child].identity, wanted)
    lines.append(f"  child levels: {levels}; raw {true_raw.bits:.1f} bits, {true_raw.standing}")
    for n, bits in ranked[:3]:
        mark = "*" if n == labelled.child else " "
        same = " same household" if register[n].household == register[labelled.child].household else ""
        lines.append(
            f"  {mark} {raw[n].bits:6.1f} -> {bits:6.1f}  {raw[n].standing:<17} {_show(register[n].identity)}{same}"
        )
    if len(ranked) > 3:
        lines.append(f"    ... {len(ranked) - 3} more")
    if reason.startswith("guard") or reason == "household guard":
        child = register[labelled.child]
        for n in found:
            other = register[n].identity
            related = n != labelled.child and _family(other) == _family(child.identity)
            if related and (other.date_of_birth in (query.date_of_birth, child.identity.date_of_birth)):
                lines.append(f"    same family, born on the date given or the child's: {_show(other)}")
    return reason, lines


def _explained(query: Query, identity: Identity, model: MatchModel, counts: dict[str, int] | None) -> str:
    why = explain(query, identity, model, counts)
    typed = "as typed" if why.as_typed else "swapped/alias"
    return (
        f"given {why.given}, family {why.family} ({typed}), dob {why.dob}, postcode {why.postcode}: "
        f"names+place {why.names_and_place_bits:.1f} + dob {why.dob_bits:.1f} + sex {why.sex_bits:.1f} "
        f"+ prior {why.prior_bits:.1f} "
        f"= {why.assessment.bits:.1f} bits, {why.assessment.standing}"
    )


def _decided(
    query: Query, register: Sequence[Child], index: BlindIndex, model: MatchModel, counts: dict[str, int] | None
) -> tuple[list[int], dict[str, int] | None, Decision[int]]:
    found = sorted(index.candidates(query_terms(query)))
    wanted = {key: counts[key] for key in query_count_keys(query) if key in counts} if counts else None
    return found, wanted, choose(query, [(n, register[n].identity) for n in found], model, MatchPolicy(), wanted)


def read_absent(
    labelled: Labelled, register: Sequence[Child], index: BlindIndex, model: MatchModel, counts: dict[str, int] | None
) -> list[str] | None:
    """An absent child accepted as a registered one: the query, the child and the runner-up, explained."""
    query = labelled.query
    found, wanted, decision = _decided(query, register, index, model, counts)
    if labelled.child is not None or decision.best is None:
        return None
    lines = [f"[{labelled.kind}] {len(found)} candidates", f"  query:    {_query(query)}"]
    for place, (n, bits) in enumerate(decision.ranked[:2]):
        label = "accepted" if place == 0 else "runner-up"
        lines.append(f"  {label}: {_show(register[n].identity)} -> {bits:.1f} bits")
        lines.append(f"            {_explained(query, register[n].identity, model, wanted)}")
    return lines


def read_not_first(
    labelled: Labelled, register: Sequence[Child], index: BlindIndex, model: MatchModel, counts: dict[str, int] | None
) -> list[str] | None:
    """A present child found but ranked below another: both, explained."""
    query = labelled.query
    found, wanted, decision = _decided(query, register, index, model, counts)
    if labelled.child is None or labelled.child not in found or decision.ranked[0][0] == labelled.child:
        return None
    child = register[labelled.child]
    first = decision.ranked[0][0]
    rank = [n for n, _ in decision.ranked].index(labelled.child) + 1
    same = " (same household)" if register[first].household == child.household else ""
    return [
        f"[{labelled.kind}] {decision.kind}, right child ranked {rank} of {len(found)}",
        f"  query: {_query(query)}",
        f"  child: {_show(child.identity)}",
        f"         {_explained(query, child.identity, model, wanted)}",
        f"  first: {_show(register[first].identity)}{same}",
        f"         {_explained(query, register[first].identity, model, wanted)}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--split-siblings", type=float, default=0.0)
    parser.add_argument("--kind", action="append", help="only this class (two mistakes: 'two'); repeatable")
    parser.add_argument("--show", type=int, default=15, help="examples per class")
    parser.add_argument("--absent", action="store_true", help="read the absent children accepted instead")
    parser.add_argument("--not-first", action="store_true", help="read the present children not ranked first instead")
    args = parser.parse_args(argv)
    generator = Generator(args.seed, args.split_siblings)
    register = generator.register(args.children)
    index = BlindIndex(register)
    labelled = generator.queries(register, args.queries)
    model = MatchModel(population=args.children)
    policy = MatchPolicy()
    counts = name_counts(register)
    if args.absent or args.not_first:
        read = read_absent if args.absent else read_not_first
        shown = [lines for item in labelled if (lines := read(item, register, index, model, counts))]
        print(f"{len(shown)} queries\n")
        print("\n\n".join("\n".join(lines) for lines in shown))
        return 0
    reasons: Counter[tuple[str, str]] = Counter()
    examples: dict[str, list[list[str]]] = defaultdict(list)
    for item in labelled:
        kind = "two" if "+" in item.kind else item.kind
        if item.child is None or (args.kind and kind not in args.kind):
            continue
        found = classify(item, register, index, model, policy, counts)
        if found is None:
            continue
        reason, lines = found
        reasons[kind, reason] += 1
        if len(examples[kind]) < args.show:
            examples[kind].append([f"[{item.kind}] {reason}", *lines])
    print("| class | reason | ambiguous |\n|---|---|---|")
    for (kind, reason), n in sorted(reasons.items()):
        print(f"| {kind} | {reason} | {n} |")
    for kind, shown in sorted(examples.items()):
        print(f"\n## {kind}\n")
        for lines in shown:
            print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
