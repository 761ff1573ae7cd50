"""Searches and keyed enquiries through the store, on a register imported by ``signpost import``.

    python -m benchmarks.national_import --children 11000000 --keep /tmp/nat11m   # first, once
    python -m benchmarks.national_search --store /tmp/nat11m --children 11000000 [--feeds DIR] [--queries 2000]

Samples registered children under 18 from the children feed the import read (reservoir sampling,
one pass), and asks for each as a practitioner might type it: exactly (names, date of birth, full
postcode), without the postcode, with the outward code only, with a letter of the family name
doubled, with day and month of birth swapped (when that is a date). Strangers come from the same
generator with another seed (realistic names, not registered: any match is a false one). Each
search runs ``handlers.search.find_child`` in its own read session (the chat search without the
dispatcher, as ``benchmarks.matching.db``), one at a time; each keyed enquiry runs
``children.enquire``. Prints JSON: outcomes per kind, and wall and CPU time a query, p50 and p99;
the candidates a search weighed (decrypted and scored), and the CPU of the searches whose
candidates reached the cap (``candidate_limit``) apart from the others: a search's cost grows with
its candidates, so this says whether a p99 is theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot.app import build
from bot.logging import configure
from handlers.matching.decide import DecisionKind
from handlers.matching.terms import Query
from handlers.search import find_child
from store.db import Database
from store.keys.binding import open_key_file
from store.register import children
from store.register.national import NationalRegister


@dataclass(frozen=True, slots=True)
class Asked:
    kind: str
    query: Query
    truth: int | None


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def sample_feed(path: Path, count: int, born_after: date, rng: random.Random) -> list[dict[str, str]]:
    """``count`` rows of children born after ``born_after``, uniformly, in one pass."""
    chosen: list[dict[str, str]] = []
    seen = 0
    with path.open(newline="", encoding="utf-8") as feed:
        for row in csv.DictReader(feed):
            if date.fromisoformat(row["date_of_birth"]) <= born_after:
                continue
            seen += 1
            if len(chosen) < count:
                chosen.append(row)
            elif (slot := rng.randrange(seen)) < count:
                chosen[slot] = row
    return chosen


def typed(row: dict[str, str], rng: random.Random) -> Iterator[tuple[str, Query]]:
    """What a practitioner might type for this child: exactly, and with one of four slips."""
    given, family, postcode = row["given_names"], row["family_name"], row["postcode"]
    born = date.fromisoformat(row["date_of_birth"])
    yield "exact", Query(given, family, born, postcode)
    yield "no_postcode", Query(given, family, born, None)
    yield "outward_only", Query(given, family, born, postcode.split()[0])
    at = rng.randrange(1, len(family)) if len(family) > 1 else 0
    yield "family_typo", Query(given, family[:at] + family[at] + family[at:], born, postcode)
    if born.day <= 12 and born.day != born.month:
        yield "day_month_swapped", Query(given, family, born.replace(month=born.day, day=born.month), postcode)


def strangers(count: int, born_after: date, seed: int) -> Iterator[Query]:
    """Children of the same generator with another seed: realistic names, not registered."""
    made = 0
    for child, _ in NationalRegister(count * 4, seed=seed).households():
        born = date.fromisoformat(child[4])
        if born <= born_after:
            continue
        yield Query(child[1], child[2], born, child[6])
        made += 1
        if made >= count:
            return


def summary(times: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(times, 0.5) * 1000, 2),
        "p99_ms": round(percentile(times, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(times) * 1000, 2) if times else 0.0,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    born_after = now.date().replace(year=now.year - 18)
    feed = args.feeds / f"national-{args.children}" / "children.csv"
    started = time.monotonic()
    rows = sample_feed(feed, args.queries, born_after, rng)
    sampled_in = time.monotonic() - started
    asked = [Asked(kind, query, int(row["child_ref"])) for row in rows for kind, query in typed(row, rng)]
    asked += [Asked("stranger", query, None) for query in strangers(args.queries // 4, born_after, args.seed + 7)]
    rng.shuffle(asked)
    db = await Database.open(f"sqlite+aiosqlite:///{args.store / 'signpost.db'}")
    try:  # the key file the import made, checked against the store as every command checks it
        keys = await open_key_file(db, args.store / "signpost.key", now.date())
    except BaseException:
        await db.close()
        raise
    app = build(db, keys)
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    walls: list[float] = []
    cpus: list[float] = []
    weighed: list[int] = []  # candidates a search decrypted and scored
    cap = app.ctx.policy.candidate_limit
    try:
        for item in asked[: args.warm]:  # the first reads of a cold file are the disk's, not the code's
            async with app.ctx.db.read() as session:
                await find_child(app.ctx, session, item.query, now)
        for item in asked:
            wall, cpu = time.perf_counter(), time.process_time()
            async with app.ctx.db.read() as session:
                decision = await find_child(app.ctx, session, item.query, now)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            weighed.append(len(decision.ranked))
            if decision.kind is DecisionKind.MATCH:
                right = decision.best == item.truth
                outcomes[item.kind]["right child" if right else "wrong child" if item.truth else "false match"] += 1
            else:
                outcomes[item.kind][decision.kind.value] += 1
            outcomes[item.kind]["candidate"] += item.truth in {ref for ref, _ in decision.ranked}
        keyed: list[float] = []
        for row in rows:
            wall = time.perf_counter()
            async with app.ctx.db.read() as session:
                found = await children.enquire(session, app.ctx.keys, int(row["child_ref"]), app.ctx.clock.now())
            keyed.append(time.perf_counter() - wall)
            assert found is not None, "a sampled child is not in the store: wrong --store or --children?"
    finally:
        await app.close()
    total = Counter[str]()
    for kind, counts in outcomes.items():
        if kind != "stranger":
            total.update(counts)
    present = sum(c for k, c in total.items() if k not in {"candidate"})
    return {
        "children": args.children,
        "sampled_children": len(rows),
        "feed_sampled_in_s": round(sampled_in, 1),
        "searches": len(asked),
        "by_kind": {kind: dict(counts) for kind, counts in sorted(outcomes.items())},
        "present": {
            "right_child_accepted_pct": round(100 * total["right child"] / max(present, 1), 2),
            "more_than_one_pct": round(100 * total["ambiguous"] / max(present, 1), 2),
            "wrong_child": total["wrong child"],
            "candidate_pct": round(100 * total["candidate"] / max(present, 1), 2),
        },
        "strangers_falsely_matched": outcomes["stranger"]["false match"],
        "search_wall": summary(walls),
        "search_cpu": summary(cpus),
        "candidates": {
            "p50": percentile(weighed, 0.5),
            "p99": percentile(weighed, 0.99),
            "mean": round(statistics.fmean(weighed), 1) if weighed else 0.0,
            "at_cap_pct": round(100 * sum(n >= cap for n in weighed) / max(len(weighed), 1), 2),
        },
        "search_cpu_at_cap": summary([t for t, n in zip(cpus, weighed, strict=True) if n >= cap]),
        "search_cpu_below_cap": summary([t for t, n in zip(cpus, weighed, strict=True) if n < cap]),
        "keyed_enquire_wall": summary(keyed),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, required=True, help="the folder given to national_import --keep")
    parser.add_argument("--children", type=int, required=True, help="the register's size, as imported")
    parser.add_argument("--feeds", type=Path, default=Path(tempfile.gettempdir()), help="where the feeds are kept")
    parser.add_argument("--queries", type=int, default=1000, help="children sampled (each asked up to 5 ways)")
    parser.add_argument("--warm", type=int, default=200, help="searches run first, untimed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    configure("json", level=40)
    print(json.dumps(asyncio.run(run(args)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
