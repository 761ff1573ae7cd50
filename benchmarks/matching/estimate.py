"""Fellegi–Sunter parameters estimated from data instead of set by hand.

- **u** (how often a level occurs for two *different* children) from random pairs of the register
  itself: each sampled child's details are asked as a query of another child (Splink's
  ``estimate_u_using_random_sampling``). The register holds no duplicates, so every pair is a
  non-match.
- **m** (how often a level occurs for the *same* child) by expectation–maximisation on unlabelled
  pairs: queries and the candidates their blocking finds, u held fixed, starting from the hand
  tables in ``handlers.matching.score``. Nothing here reads which candidate is the true child.

    python -m benchmarks.matching.estimate --children 100000 --queries 20000 --seed 9

prints the estimated tables beside the hand-set ones. ``benchmarks.matching.run --estimate``
estimates on queries of another seed than the ones it evaluates, then scores with the result.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

from benchmarks.matching.generate import Child
from handlers.matching.score import (
    DOB_MU,
    FAMILY_MU,
    GIVEN_MU,
    POSTCODE_MU,
    MatchModel,
    MuTable,
    comparison_levels,
    frozen,
)
from handlers.matching.terms import Query
from store.register.terms import normalise_postcode, outward_code

FIELDS = ("given", "family", "dob", "postcode")
HAND: dict[str, MuTable] = {"given": GIVEN_MU, "family": FAMILY_MU, "dob": DOB_MU, "postcode": POSTCODE_MU}
Pattern = tuple[str, ...]


def _as_query(child: Child) -> Query:
    who = child.identity
    return Query(who.given_names, who.family_name, who.date_of_birth, who.postcode, who.sex)


def estimate_u(register: Sequence[Child], pairs: int, rng: random.Random) -> dict[str, dict[str, float]]:
    """u per field and level from random pairs of distinct children (additive smoothing: a level
    never seen in the sample gets half a count, so no weight is infinite)."""
    seen = {field: Counter[str]() for field in FIELDS}
    for _ in range(pairs):
        a, b = rng.sample(range(len(register)), 2)
        for field, level in comparison_levels(_as_query(register[a]), register[b].identity).items():
            seen[field][level] += 1
    # An outward code asked alone agrees whenever the full postcodes agree in full or in part.
    seen["postcode"]["outward_given"] = seen["postcode"]["full"] + seen["postcode"]["outward"]
    shares = {field: _shares(seen[field], HAND[field]) for field in FIELDS}
    for field in FIELDS:  # a level register pairs cannot show (an initial) keeps its hand u
        for level in shares[field]:
            if seen[field][level] < MIN_SEEN:
                shares[field][level] = HAND[field][level][1]
    return shares


MIN_SEEN = 5
"""Fewer observations than this (pairs for u, expected matches for m): keep the hand value."""


def _shares(counts: Counter[str], levels: Iterable[str], skip: str = "missing") -> dict[str, float]:
    named = [level for level in levels if level != skip]
    total = sum(counts[level] for level in named if level != "outward_given")
    return {level: (counts[level] + 0.5) / (total + 0.5 * len(named)) for level in named}


def estimate_m(
    patterns: Counter[Pattern],
    u_start: dict[str, dict[str, float]],
    start: dict[str, MuTable] | None = None,
    rounds: int = 40,
    prior: float = 0.15,
) -> tuple[dict[str, dict[str, float]], float]:
    """EM on blocked pairs: m, the blocked non-matches' own u, and lambda (the share of the pairs
    that are the same child), estimated together; only m is kept. The blocked non-matches agree far
    more than random pairs do (blocking picked them for agreeing), so the register's u must not
    stand in for theirs here, or EM explains that excess agreement as matches.

    ``patterns``: how many query-candidate pairs showed each combination of levels (FIELDS order).
    """
    start = start or HAND
    m = {field: {level: mu[0] for level, mu in start[field].items()} for field in FIELDS}
    u = {field: dict(levels) for field, levels in u_start.items()}
    lam = prior
    for _ in range(rounds):
        matched: dict[str, dict[str, float]] = {field: defaultdict(float) for field in FIELDS}
        unmatched: dict[str, dict[str, float]] = {field: defaultdict(float) for field in FIELDS}
        weight_sum, total = 0.0, 0
        for pattern, count in patterns.items():
            odds = lam / (1 - lam)
            for field, level in zip(FIELDS, pattern, strict=True):
                if level != "missing":
                    odds *= m[field][level] / u[field][level]
            p = odds / (1 + odds)
            weight_sum += p * count
            total += count
            for field, level in zip(FIELDS, pattern, strict=True):
                matched[field][level] += p * count
                unmatched[field][level] += (1 - p) * count
        lam = min(max(weight_sum / total, 1e-6), 1 - 1e-6)
        for field in FIELDS:
            m[field] = _normalised(matched[field], m[field])
            u[field] = _normalised(unmatched[field], u[field])
    hand = {field: {level: mu[0] for level, mu in start[field].items()} for field in FIELDS}
    kept = {field: {level: matched[field].get(level, 0.0) >= MIN_SEEN * 6 for level in m[field]} for field in FIELDS}
    return {
        field: {level: m[field][level] if kept[field][level] else hand[field].get(level, 1e-4) for level in m[field]}
        for field in FIELDS
    }, lam


def _normalised(mass: dict[str, float], levels: dict[str, float], floor: float = 1e-4) -> dict[str, float]:
    total = sum(mass.get(level, 0.0) for level in levels) or 1.0
    return {level: max(mass.get(level, 0.0) / total, floor) for level in levels}


def outward_only(query: Query) -> bool:
    code = normalise_postcode(query.postcode)
    return bool(code) and code == outward_code(code)


def pair_patterns(
    queries: Iterable[Query], candidates: Callable[[Query], Iterable[Child]], counts: dict[str, int] | None
) -> Counter[Pattern]:
    found: Counter[Pattern] = Counter()
    for query in queries:
        for child in candidates(query):
            levels = comparison_levels(query, child.identity, counts)
            if levels["postcode"] == "disagree" and outward_only(query):
                levels["postcode"] = "outward_disagree"
            found[tuple(levels[field] for field in FIELDS)] += 1
    return found


def estimated_model(
    population: int,
    register: Sequence[Child],
    queries: Sequence[Query],
    candidates: Callable[[Query], Iterable[Child]],
    counts: dict[str, int] | None,
    rng: random.Random,
    u_pairs: int = 400_000,
    **model: float,
) -> tuple[MatchModel, dict[str, MuTable], float]:
    u = estimate_u(register, u_pairs, rng)
    u_em = {field: dict(levels) for field, levels in u.items()}
    u_em["postcode"]["outward_disagree"] = u["postcode"]["disagree"]
    start = dict(HAND)
    start["postcode"] = {**POSTCODE_MU, "outward_disagree": POSTCODE_MU["disagree"]}
    m, lam = estimate_m(pair_patterns(queries, candidates, counts), u_em, start)
    # The postcode's levels are two comparisons, one for each kind of query: m is normalised
    # within each (a full postcode: full / outward / area / disagree; an outward code alone:
    # agrees / disagrees).
    pc = m["postcode"]
    agree, differ = pc.pop("outward_given"), pc.pop("outward_disagree")
    whole = sum(pc.values())
    m["postcode"] = {level: value / whole for level, value in pc.items()}
    m["postcode"]["outward_given"] = agree / (agree + differ)

    tables: dict[str, MuTable] = {
        field: {level: (m[field][level], u[field][level]) for level in m[field]} for field in FIELDS
    }
    fitted = MatchModel(
        population=population,
        given=frozen(tables["given"]),
        family=frozen(tables["family"]),
        dob=frozen(tables["dob"]),
        postcode=frozen(tables["postcode"]),
        **model,  # type: ignore[arg-type]
    )
    return fitted, tables, lam


def print_tables(tables: dict[str, MuTable], lam: float) -> None:
    print(f"EM: share of blocked pairs that are the same child (lambda) {lam:.4f}\n")
    print("| field | level | m (EM) | m (hand) | u (register) | u (hand) | weight bits (est / hand) |")
    print("|---|---|---|---|---|---|---|")
    for field in FIELDS:
        for level, (m, u) in tables[field].items():
            hm, hu = HAND[field][level]
            print(
                f"| {field} | {level} | {m:.4f} | {hm:g} | {u:.2e} | {hu:.2e} | "
                f"{math.log2(m / u):.1f} / {math.log2(hm / hu):.1f} |"
            )
    print()


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.matching.generate import Generator
    from benchmarks.matching.run import BlindIndex, name_counts
    from handlers.matching.terms import query_terms

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=9, help="the queries' seed (the register's is 8)")
    args = parser.parse_args(argv)
    register = Generator(8).register(args.children)
    index = BlindIndex(register)
    queries = [item.query for item in Generator(args.seed).queries(register, args.queries)]
    counts = name_counts(register)

    def candidates(query: Query) -> list[Child]:
        return [register[n] for n in index.candidates(query_terms(query))]

    _, tables, lam = estimated_model(args.children, register, queries, candidates, counts, random.Random(args.seed))
    print_tables(tables, lam)
    return 0


if __name__ == "__main__":
    sys.exit(main())
