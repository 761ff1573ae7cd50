"""A Splink baseline on the matching benchmark's own data (runs in its own environment).

Splink is not one of Signpost's dependencies; install it beside the project, not in it:

    python3.11 -m venv .splink-venv && .splink-venv/bin/pip install splink
    .venv/bin/python -m benchmarks.matching.export --children 100000 --queries 20000 --out /tmp/m
    .splink-venv/bin/python benchmarks/matching/splink_baseline.py /tmp/m

A standard Splink model as its documentation builds one: first name and surname (Jaro-Winkler
bands, term-frequency adjustments), date of birth (exact, one character, within a month / year /
ten years), postcode (full, sector, district, area); the probability that two records match
estimated from deterministic rules, u by random sampling, m by EM on two blocking rules.
Predictions block on several passes (names + date, either name + date, date + postcode district,
both names, swapped names). Each query's candidates are ranked by match weight; a query is
"accepted" when its best candidate's probability reaches the threshold and no other candidate's
reaches 0.5. Prints markdown.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

THRESHOLDS = (0.99, 0.999)


def _linker(folder: Path) -> tuple[Any, Any, Any]:
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    register = pd.read_csv(folder / "register.csv", dtype=str, keep_default_na=False)
    queries = pd.read_csv(folder / "queries.csv", dtype=str, keep_default_na=False)
    for frame in (register, queries):
        for column in ("first_name", "surname", "dob", "postcode"):
            frame[column] = frame[column].replace("", None)
    labels = queries[["unique_id", "label", "kind"]].copy()
    queries = queries.drop(columns=["label", "kind"])
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "surname", "dob"),
            block_on("first_name", "dob"),
            block_on("surname", "dob"),
            block_on("dob", "substr(postcode, 1, 3)"),
            block_on("first_name", "surname"),
            "l.first_name = r.surname and l.surname = r.first_name",
            block_on("substr(first_name, 1, 1)", "substr(surname, 1, 1)", "dob"),
            block_on("surname", "substr(dob, 1, 4)"),
        ],
    )
    db_api = DuckDBAPI()
    left = db_api.register(register, dataset_display_name="register")
    right = db_api.register(queries, dataset_display_name="queries")
    linker = Linker([left, right], settings)
    return linker, labels, block_on


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    linker, labels, block_on = _linker(folder)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
    pairs = linker.inference.predict(threshold_match_probability=0.001).as_pandas_dataframe()
    found: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for row in pairs.itertuples(index=False):
        left, right = str(row.unique_id_l), str(row.unique_id_r)
        query, child = (left, right) if left.startswith("q") else (right, left)
        found[query].append((float(row.match_weight), float(row.match_probability), child))
    report(labels, found)
    return 0


def report(labels: Any, found: dict[str, list[tuple[float, float, str]]]) -> None:
    present = absent = top1 = at5 = 0
    right = dict.fromkeys(THRESHOLDS, 0)
    ambiguous = dict.fromkeys(THRESHOLDS, 0)
    wrong = dict.fromkeys(THRESHOLDS, 0)
    false_match = dict.fromkeys(THRESHOLDS, 0)
    for row in labels.itertuples(index=False):
        ranked = sorted(found.get(row.unique_id, []), reverse=True)
        best = ranked[0][2] if ranked else None
        if row.label:
            present += 1
            top1 += best == row.label
            at5 += row.label in [child for _, _, child in ranked[:5]]
        else:
            absent += 1
        for threshold in THRESHOLDS:
            accepted = bool(ranked) and ranked[0][1] >= threshold and all(p < 0.5 for _, p, _ in ranked[1:])
            considered = bool(ranked) and ranked[0][1] >= 0.5
            if row.label:
                right[threshold] += accepted and best == row.label
                wrong[threshold] += accepted and best != row.label
                ambiguous[threshold] += considered and not accepted
            else:
                false_match[threshold] += accepted
    print(f"## Splink baseline: {present:,} present, {absent:,} absent queries\n")
    print(f"top-1 {100 * top1 / present:.2f} %, recall@5 {100 * at5 / present:.2f} %\n")
    print("| accept when best probability ≥ | accepted right | more than one | wrong child | absent matched |")
    print("|---|---|---|---|---|")
    for threshold in THRESHOLDS:
        print(
            f"| {threshold} | {100 * right[threshold] / present:.2f} % | {100 * ambiguous[threshold] / present:.2f} % "
            f"| {100 * wrong[threshold] / present:.2f} % ({wrong[threshold]}) "
            f"| {100 * false_match[threshold] / absent:.2f} % ({false_match[threshold]}) |"
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
