"""Write the benchmark's register and labelled queries as CSV, for baselines that run elsewhere.

    python -m benchmarks.matching.export --children 100000 --queries 20000 --out DIR

Same generator, seed and queries as ``benchmarks.matching.run``. Two files: ``register.csv``
(unique_id r<n>, first_name, surname, dob, postcode) and ``queries.csv`` (unique_id q<n>, the same
columns as typed, plus ``label``: the true child's unique_id or empty when absent, and ``kind``).
Names are upper case, letters and spaces only; dates ISO; everything synthetic.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.matching.generate import Generator
from store.register.terms import normalise_name

COLUMNS = ("unique_id", "first_name", "surname", "dob", "postcode")


def _first(given: str) -> str:
    words = normalise_name(given).split()
    return words[0] if words else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    generator = Generator(args.seed)
    register = generator.register(args.children)
    labelled = generator.queries(register, args.queries)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "register.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for number, child in enumerate(register):
            who = child.identity
            writer.writerow(
                (
                    f"r{number}",
                    _first(who.given_names),
                    normalise_name(who.family_name),
                    who.date_of_birth,
                    who.postcode,
                )
            )
    with (args.out / "queries.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow((*COLUMNS, "label", "kind"))
        for number, item in enumerate(labelled):
            q = item.query
            writer.writerow(
                (
                    f"q{number}",
                    _first(q.given_names),
                    normalise_name(q.family_name),
                    q.date_of_birth or "",
                    (q.postcode or "").upper(),
                    "" if item.child is None else f"r{item.child}",
                    item.kind,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
