"""Matching benchmark: accuracy, calibration and latency against an in-memory blind index.

    python -m benchmarks.matching.run --children 100000 --queries 20000

The index mimics the store exactly: each index term is HMAC-SHA256'd to 64 bits and
maps to the children holding it; a query HMACs its terms, takes the union of their
children as candidates, "decrypts" them (here: reads the in-memory identity), scores
each and decides. Latency is the CPU time of the querying thread (terms, HMACs, lookups, scoring,
decision) without the database round trip; CPU time rather than wall time because
the benchmark machine is shared.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.matching.generate import Child, Generator, Labelled
from handlers.matching.decide import DecisionKind, MatchPolicy, choose, decide, shared_posterior
from handlers.matching.score import MatchModel, query_count_keys
from handlers.matching.terms import Query, query_terms
from store.register.terms import count_keys, index_terms

KEY = b"benchmark-only-blind-index-key"


def blind(term: str) -> int:
    return int.from_bytes(hmac.new(KEY, term.encode(), hashlib.sha256).digest()[:8], "big", signed=True)


class BlindIndex:
    """term HMAC → child indexes, as the store's child_terms table."""

    def __init__(self, register: Sequence[Child]) -> None:
        self.rows: dict[int, list[int]] = defaultdict(list)
        self.terms_per_child: list[int] = []
        for number, child in enumerate(register):
            terms = index_terms(child.identity)
            terms |= {f"dob:{child.identity.date_of_birth.isoformat()}"}  # the store's own
            self.terms_per_child.append(len(terms))
            for term in terms:
                self.rows[blind(term)].append(number)

    def candidates(self, terms: frozenset[str]) -> set[int]:
        found: set[int] = set()
        for term in terms:
            found.update(self.rows.get(blind(term), ()))
        return found


@dataclass
class Outcome:
    kind: str
    present: bool
    candidates: int
    true_candidate: bool
    top1: bool
    at5: bool
    ranked: list[tuple[bool, float]]  # (is the true child, weight in bits), best first, top 5
    share: float  # shared posterior of the best
    decision: DecisionKind
    seconds: float
    terms: int


def name_counts(register: Sequence[Child]) -> dict[str, int]:
    """What the store's name_counts table holds: children per first given name and family name."""
    return dict(Counter(key for child in register for key in count_keys(child.identity)))


def evaluate(
    index: BlindIndex,
    register: Sequence[Child],
    labelled: Labelled,
    model: MatchModel,
    policy: MatchPolicy,
    counts: dict[str, int] | None = None,
) -> Outcome:
    started = time.thread_time()
    terms = query_terms(labelled.query)
    found = index.candidates(terms)
    wanted = {key: counts[key] for key in query_count_keys(labelled.query) if key in counts} if counts else None
    decision = choose(labelled.query, [(n, register[n].identity) for n in sorted(found)], model, policy, wanted)
    seconds = time.thread_time() - started
    ranked = decision.ranked
    top = [number for number, _ in ranked[:5]]
    share = shared_posterior(ranked)[0] if ranked else 0.0
    return Outcome(
        labelled.kind,
        labelled.child is not None,
        len(found),
        labelled.child in found,
        bool(top) and top[0] == labelled.child,
        labelled.child in top,
        [(n == labelled.child, s) for n, s in ranked[:5]],
        share,
        decision.kind,
        seconds,
        len(terms),
    )


def decision_for(outcome: Outcome, policy: MatchPolicy) -> tuple[DecisionKind, bool]:
    """Re-decide from the stored top scores for another policy (threshold sweep)."""
    ranked = [(i, s) for i, (_, s) in enumerate(outcome.ranked)]
    kind = decide(ranked, policy).kind if ranked else DecisionKind.NO_MATCH
    return kind, bool(outcome.ranked) and outcome.ranked[0][0]


@dataclass
class Summary:
    n: int = 0
    recall: int = 0
    top1: int = 0
    at5: int = 0
    right: int = 0
    wrong: int = 0
    ambiguous: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def summarise(outcomes: Sequence[Outcome], policy: MatchPolicy) -> tuple[Summary, Summary, dict[str, Summary]]:
    present, absent = Summary(), Summary()
    kinds: dict[str, Summary] = defaultdict(Summary)
    for o in outcomes:
        kind, best_true = decision_for(o, policy)
        for s in (present if o.present else absent, kinds[o.kind]):
            s.n += 1
            s.recall += o.true_candidate
            s.top1 += o.top1
            s.at5 += o.at5
            s.right += kind is DecisionKind.MATCH and best_true
            s.wrong += kind is DecisionKind.MATCH and not best_true
            s.ambiguous += kind is DecisionKind.AMBIGUOUS
    return present, absent, dict(kinds)


def grouped(outcomes: Sequence[Outcome], policy: MatchPolicy) -> dict[str, Summary]:
    """Per error class: each single mistake, all two-mistake pairs together, each kind of absent child."""
    classes: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        classes["two mistakes at once" if "+" in o.kind else o.kind].append(o)
    found: dict[str, Summary] = {}
    for name, members in classes.items():
        present, absent, _ = summarise(members, policy)
        found[name] = present if members[0].present else absent
    return found


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def report(
    outcomes: Sequence[Outcome],
    policy: MatchPolicy,
    index: BlindIndex,
    children: int,
    build_seconds: float,
    show_pairs: bool = False,
) -> None:
    present, absent, kinds = summarise(outcomes, policy)
    latencies = sorted(o.seconds for o in outcomes)
    cands = sorted(o.candidates for o in outcomes)
    terms = index.terms_per_child
    print(f"## {children:,} children, {len(outcomes):,} queries ({present.n:,} present, {absent.n:,} absent)\n")
    print(
        f"policy: accept={policy.accept} margin={policy.margin} consider={policy.consider}; "
        f"index built in {build_seconds:.0f} s\n"
    )
    print("| metric | value |\n|---|---|")
    print(f"| true child among candidates (recall) | {pct(present.recall, present.n)} |")
    print(f"| top-1 accuracy | {pct(present.top1, present.n)} |")
    print(f"| recall@5 | {pct(present.at5, present.n)} |")
    print(f"| answered with the right child (match) | {pct(present.right, present.n)} |")
    print(f"| answered ambiguous (present) | {pct(present.ambiguous, present.n)} |")
    print(f"| wrong-child answers (of present queries) | {pct(present.wrong, present.n)} ({present.wrong}) |")
    print(f"| false match for absent children | {pct(absent.wrong, absent.n)} ({absent.wrong}) |")
    single = [o for o in outcomes if o.present and "+" not in o.kind]
    single_summary, _, _ = summarise(single, policy)
    print(
        f"| one mistake at most ({single_summary.n:,} queries): recall / top-1 / match right / wrong | "
        f"{pct(single_summary.recall, single_summary.n)} / {pct(single_summary.top1, single_summary.n)} / "
        f"{pct(single_summary.right, single_summary.n)} / {pct(single_summary.wrong, single_summary.n)} |"
    )
    double = [o for o in outcomes if o.present and "+" in o.kind]
    double_summary, _, _ = summarise(double, policy)
    print(
        f"| two mistakes at once ({double_summary.n:,} queries): recall / top-1 / match right / wrong | "
        f"{pct(double_summary.recall, double_summary.n)} / {pct(double_summary.top1, double_summary.n)} / "
        f"{pct(double_summary.right, double_summary.n)} / {pct(double_summary.wrong, double_summary.n)} |"
    )
    print(
        f"| CPU per query p50 / p99 / max | {1e3 * latencies[len(latencies) // 2]:.3f} / "
        f"{1e3 * latencies[int(len(latencies) * 0.99)]:.3f} / {1e3 * latencies[-1]:.3f} ms |"
    )
    print(
        f"| candidates per query mean / p50 / p99 / max | {statistics.fmean(cands):.1f} / "
        f"{cands[len(cands) // 2]} / {cands[int(len(cands) * 0.99)]} / {cands[-1]} |"
    )
    print(
        f"| query terms mean / max | {statistics.fmean(o.terms for o in outcomes):.1f} / "
        f"{max(o.terms for o in outcomes)} |"
    )
    print(
        f"| index terms per child mean / max (incl. the store's dob term) | "
        f"{statistics.fmean(terms):.2f} / {max(terms)} |"
    )
    print(f"| index rows | {sum(terms):,} in {len(index.rows):,} distinct terms |\n")
    print(
        "| class | n | recall | top-1 | @5 | accepted right | more than one | wrong child / absent matched |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for name, s in sorted(grouped(outcomes, policy).items(), key=lambda kv: (kv[0].startswith("absent"), kv[0])):
        if name.startswith("absent"):
            print(f"| {name} | {s.n} | - | - | - | - | {pct(s.ambiguous, s.n)} | {pct(s.wrong, s.n)} ({s.wrong}) |")
        else:
            cells = [pct(part, s.n) for part in (s.recall, s.top1, s.at5, s.right, s.ambiguous)]
            print(f"| {name} | {s.n} | {' | '.join(cells)} | {pct(s.wrong, s.n)} ({s.wrong}) |")
    if show_pairs:
        print("\n| two mistakes | n | recall | top-1 | accepted right | more than one | wrong |")
        print("|---|---|---|---|---|---|---|")
        for name, s in sorted(kinds.items()):
            if "+" in name:
                cells = [pct(part, s.n) for part in (s.recall, s.top1, s.right, s.ambiguous, s.wrong)]
                print(f"| {name} | {s.n} | {' | '.join(cells)} |")
    print("\n### Threshold sweep in bits (margin and consider as above)\n")
    print("| accept | match right | ambiguous (present) | wrong child | false match absent |\n|---|---|---|---|---|")
    for accept in (4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0):
        p, a, _ = summarise(outcomes, MatchPolicy(accept, policy.margin, min(policy.consider, accept)))
        print(
            f"| {accept} | {pct(p.right, p.n)} | {pct(p.ambiguous, p.n)} | {pct(p.wrong, p.n)} | {pct(a.wrong, a.n)} |"
        )
    print("\n### Margin sweep in bits (accept and consider as above)\n")
    print("| margin | match right | ambiguous (present) | wrong child | false match absent |\n|---|---|---|---|---|")
    for margin in (2.0, 4.0, 6.0, 8.0, 10.0):
        p, a, _ = summarise(outcomes, MatchPolicy(policy.accept, margin, policy.consider))
        print(
            f"| {margin} | {pct(p.right, p.n)} | {pct(p.ambiguous, p.n)} | {pct(p.wrong, p.n)} | {pct(a.wrong, a.n)} |"
        )
    print("\n### Calibration of the posterior 1 / (1 + 2^-weight) (all candidates in the top five)\n")
    bins: Counter[int] = Counter()
    hits: Counter[int] = Counter()
    mass: defaultdict[int, float] = defaultdict(float)
    for o in outcomes:
        for is_true, bits in o.ranked:
            value = 1.0 / (1.0 + 2.0 ** -max(min(bits, 60.0), -60.0))
            b = min(int(value * 10), 9)
            bins[b] += 1
            hits[b] += is_true
            mass[b] += value
    print("| score bin | pairs | mean score | share true |\n|---|---|---|---|")
    for b in range(10):
        if bins[b]:
            print(
                f"| {b / 10:.1f}–{(b + 1) / 10:.1f} | {bins[b]} | {mass[b] / bins[b]:.3f} | {hits[b] / bins[b]:.3f} |"
            )
    print()


def _estimated(
    args: argparse.Namespace, register: Sequence[Child], index: BlindIndex, counts: dict[str, int] | None
) -> MatchModel:
    """m/u estimated on this register and on unlabelled queries of another seed than those scored."""
    import random

    from benchmarks.matching.estimate import estimated_model, print_tables

    training = [
        item.query for item in Generator(args.seed + 1, args.split_siblings).queries(list(register), args.queries)
    ]

    def candidates(query: Query) -> list[Child]:
        return [register[n] for n in index.candidates(query_terms(query))]

    model, tables, lam = estimated_model(
        args.children,
        register,
        training,
        candidates,
        counts,
        random.Random(args.seed),
        name_u_floor=args.name_u_floor,
        name_boost_cap=args.name_boost_cap,
    )
    print_tables(tables, lam)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--accept", type=float, default=MatchPolicy().accept)
    parser.add_argument("--margin", type=float, default=MatchPolicy().margin)
    parser.add_argument("--consider", type=float, default=MatchPolicy().consider)
    parser.add_argument("--pairs", action="store_true", help="also report each pair of mistakes")
    parser.add_argument("--no-name-frequency", action="store_true", help="score without the register's name counts")
    parser.add_argument("--name-u-floor", type=float, default=MatchModel().name_u_floor)
    parser.add_argument("--name-boost-cap", type=float, default=MatchModel().name_boost_cap, help="natural log")
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="score with m/u estimated on this register (u: random pairs; m: EM on queries of seed + 1)",
    )
    parser.add_argument(
        "--split-siblings",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="place this share (0-1) of siblings and twins, registered or not, at another postcode (e.g. 0.1)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.split_siblings <= 1.0:
        parser.error("--split-siblings is a share between 0 and 1")
    generator = Generator(args.seed, args.split_siblings)
    started = time.perf_counter()
    register = generator.register(args.children)
    index = BlindIndex(register)
    build_seconds = time.perf_counter() - started
    labelled = generator.queries(register, args.queries)
    model = MatchModel(population=args.children, name_u_floor=args.name_u_floor, name_boost_cap=args.name_boost_cap)
    policy = MatchPolicy(args.accept, args.margin, args.consider)
    counts = None if args.no_name_frequency else name_counts(register)
    if args.estimate:
        model = _estimated(args, register, index, counts)
    frequency = "off" if counts is None else f"on (u floor {args.name_u_floor:g}, boost cap {args.name_boost_cap:.2f})"
    print(f"name frequency: {frequency}\n")
    gc.collect()
    gc.freeze()  # the register is long-lived; keep the collector from walking it mid-query
    outcomes = [evaluate(index, register, item, model, policy, counts) for item in labelled]
    report(outcomes, policy, index, args.children, build_seconds, args.pairs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
