"""A synthetic national register for benchmarks: up to tens of millions of children, streamed.

Nobody real is in here. Unlike ``store.register.synthetic.SyntheticRegister`` (the demo's and the
tests' few thousand children, which must not change), this register is built for scale:

- references are consecutive valid 10-digit modulus-11 numbers from serial 100,000,000, so there
  is room for about 800 million children before the first digit runs out;
- given and family names are drawn Zipf-like (Zipf-Mandelbrot, so the commonest name is about
  1.5 % of family names and about 3 % of girls' or boys' given names, as in England) from a few
  thousand synthetic names built from syllables, with the demo's short lists as the commonest;
- children come in households: siblings share a family name, a postcode and an authority, and are
  born one to six years apart (sometimes twins);
- each child has 0 to 5 involvements (about 2.2 on average) with practitioners of its authority.

``write_feeds`` writes the three feed CSVs row by row (bounded memory at any size), and
``python -m store.register.national --children N --out DIR`` does it from the command line.
The same arguments always give byte-identical files.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from store.register.refs import references
from store.register.synthetic import FAMILY, GIVEN_F, GIVEN_M, HEADERS, SERVICES

FIRST_SERIAL = 100_000_000
"""Nine-digit serials from here: references 100 000 000 x up to 999 999 999 x."""

_ONSETS: tuple[str, ...] = (
    "B",
    "C",
    "D",
    "F",
    "G",
    "H",
    "J",
    "K",
    "L",
    "M",
    "N",
    "P",
    "R",
    "S",
    "T",
    "V",
    "W",
    "Y",
    "Z",
)
_ONSETS += ("Br", "Ch", "Cl", "Dr", "Fl", "Gr", "Kr", "Sh", "St", "Th", "Tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ia", "oa", "y")
_MIDDLES = ("l", "r", "n", "m", "s", "th", "v", "d", "k", "ll", "nn", "rr", "b", "z")
_GIRL_ENDS = ("a", "ie", "elle", "ina", "ette", "ia", "y", "ey", "ah", "anne", "ine", "ella")
_BOY_ENDS = ("o", "an", "en", "on", "ie", "us", "el", "er", "ey", "in", "is", "ard")
_FAMILY_ROOTS = (
    "Ash", "Black", "Brad", "Brook", "Carr", "Cald", "Crom", "Dal", "Dun", "Elm", "Fair", "Fen", "Gold",
    "Green", "Hal", "Hart", "Hazel", "Holl", "Kings", "Lang", "Lock", "Marsh", "Mil", "Moor", "Nor",
    "Oak", "Pen", "Red", "Ridge", "Rush", "Sand", "Shel", "Stan", "Stone", "Sut", "Thorn", "Tre", "Wal",
    "West", "Whit", "Wick", "Win", "Wood", "Yar", "Bram", "Chad", "Der", "Ever", "Gar", "Hen",
    "Ing", "Kel", "Lind", "Mor", "Pem", "Ros", "Sel", "Tam", "Ux", "Ven",
)  # fmt: skip
_FAMILY_ENDS = (
    "ley", "ton", "field", "wood", "worth", "by", "ham", "ford", "son", "er", "well", "more", "dale",
    "combe", "stead", "wick", "bury", "croft", "hurst", "man", "low", "ridge", "gate", "house", "ington",
    "shaw", "ock", "en", "ing", "ett", "ow", "ey", "all", "ick", "ard", "ins", "es", "ant", "ell", "ott",
)  # fmt: skip
_PREFIXES = ("North", "South", "East", "West", "Upper", "Lower", "Great", "Little", "High", "Mid")
_PLACES = (
    "shire", "vale", "mere", "brook", "field", "ford", "ham", "ton", "wold", "moor", "dale", "wick", "bury",
    "port", "minster",
)  # fmt: skip
_LETTERS = "ABCDEFGHJKLMNOPRSTUWYZ"
_INWARD = "ABDEFGHJLNPQRSTUWXYZ"
_SIBLINGS = ((1, 45), (2, 35), (3, 14), (4, 5), (5, 1))
_INVOLVEMENTS = ((0, 8), (1, 22), (2, 30), (3, 25), (4, 10), (5, 5))  # mean 2.22


def _dedupe(names: Iterator[str], exclude: set[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name not in exclude:
            exclude.add(name)
            out.append(name)
    return out


def given_names(female: bool, count: int = 2000, seed: int = 11) -> tuple[str, ...]:
    """The demo's given names (the commonest) then synthetic ones from syllables, ``count`` in all."""
    base = GIVEN_F if female else GIVEN_M
    ends = _GIRL_ENDS if female else _BOY_ENDS
    combos = [o + v + m + e for o in _ONSETS for v in _VOWELS for m in _MIDDLES for e in ends]
    random.Random(seed + female).shuffle(combos)
    made = _dedupe(iter(combos), set(base) | set(GIVEN_M if female else GIVEN_F))
    return tuple(base) + tuple(made[: count - len(base)])


def family_names(count: int = 5000, seed: int = 13) -> tuple[str, ...]:
    """The demo's family names (the commonest) then synthetic root + ending ones, ``count`` in all."""
    combos = [r + e.lower() for r in _FAMILY_ROOTS for e in _FAMILY_ENDS]
    combos += [o + v + m + "s" for o in _ONSETS for v in _VOWELS[:5] for m in _MIDDLES]
    random.Random(seed).shuffle(combos)
    made = _dedupe(iter(combos), set(FAMILY))
    return tuple(FAMILY) + tuple(made[: count - len(FAMILY)])


def zipf_weights(n: int, s: float = 1.0, q: float = 10.0) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights 1/(rank+q)^s for ranks 1..n."""
    return list(itertools.accumulate(1.0 / (rank + q) ** s for rank in range(1, n + 1)))


@dataclass(frozen=True, slots=True)
class Authority:
    name: str
    code: str  # two letters: practitioner ids and postcode areas


def authorities(count: int) -> tuple[Authority, ...]:
    """``count`` synthetic authorities with distinct names and two-letter codes."""
    names = [p + " " + (r + e) for p in _PREFIXES for r in ("Ash", "Elm", "Oak", "Fen", "Ware") for e in _PLACES]
    names = sorted(set(names))
    random.Random(17).shuffle(names)
    codes = [a + b for a in _LETTERS for b in _LETTERS if a != b]
    random.Random(19).shuffle(codes)
    if count > min(len(names), len(codes)):
        raise ValueError(f"at most {min(len(names), len(codes))} authorities")
    return tuple(Authority(names[i], codes[i]) for i in range(count))


class _Picker:
    """Weighted choice by cumulative weights (``random.choices`` without its per-call set-up)."""

    def __init__(self, items: Sequence[str], cumulative: list[float]) -> None:
        self.items, self.cumulative, self.total = items, cumulative, cumulative[-1]

    def __call__(self, rng: random.Random) -> str:
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.total)]


@dataclass(frozen=True, slots=True)
class Written:
    """What ``write_feeds`` wrote: rows per feed and the files."""

    practitioners: int
    children: int
    involvements: int
    files: tuple[Path, ...]


class NationalRegister:
    """A seeded national register: the same arguments always give the same rows."""

    def __init__(
        self,
        children: int,
        *,
        seed: int = 2026,
        today: date = date(2026, 11, 1),
        authorities_count: int = 150,
        children_per_practitioner: int = 40,
    ) -> None:
        self.n_children = children
        self.seed = seed
        self.today = today
        self.authorities = authorities(authorities_count)
        per_authority = -(-children // (children_per_practitioner * authorities_count))
        self.per_authority = max(12, per_authority)
        girls, boys, family = given_names(True), given_names(False), family_names()
        self._girl = _Picker(girls, zipf_weights(len(girls), q=5.0))
        self._boy = _Picker(boys, zipf_weights(len(boys), q=5.0))
        self._family = _Picker(family, zipf_weights(len(family), q=10.0))

    def practitioner_id(self, authority: Authority, number: int) -> str:
        return f"{authority.code}-P{number:06d}"

    def practitioners(self) -> Iterator[list[str]]:
        rng = random.Random(self.seed)
        for authority in self.authorities:
            for i in range(1, self.per_authority + 1):
                role, org, _ = SERVICES[(i - 1) % len(SERVICES)]
                given = (self._girl if rng.random() < 0.7 else self._boy)(rng)
                family = self._family(rng)
                yield [
                    self.practitioner_id(authority, i),
                    given,
                    family,
                    role,
                    f"{authority.name} {org}",
                    authority.name,
                    f"0161 496 {rng.randint(0, 9999):04d}",
                    f"{given}.{family}.{i}@{authority.code.lower()}.example".lower().replace("'", ""),
                    "practitioner",
                ]
            yield [
                f"{authority.code}-DM01",
                "Duty",
                f"Manager {authority.code}",
                "Duty manager",
                f"{authority.name} Children's Services",
                authority.name,
                "0161 496 0100",
                f"duty.{authority.code.lower()}@{authority.code.lower()}.example",
                "duty_manager;practitioner",
            ]

    def _postcode(self, rng: random.Random, authority: Authority) -> str:
        return f"{authority.code}{rng.randint(1, 29)} {rng.randint(0, 9)}{rng.choice(_INWARD)}{rng.choice(_INWARD)}"

    def households(self) -> Iterator[tuple[list[str], list[list[str]]]]:
        """(child row, its involvement rows) for every child, household by household."""
        rng = random.Random(self.seed + 1)
        refs = references(FIRST_SERIAL)
        sizes = [size for size, _ in _SIBLINGS]
        size_weights = list(itertools.accumulate(w for _, w in _SIBLINGS))
        counts = [n for n, _ in _INVOLVEMENTS]
        count_weights = list(itertools.accumulate(w for _, w in _INVOLVEMENTS))
        span = 18 * 365
        made = 0
        while made < self.n_children:
            authority = self.authorities[rng.randrange(len(self.authorities))]
            family = self._family(rng)
            postcode = self._postcode(rng, authority)
            size = min(rng.choices(sizes, cum_weights=size_weights)[0], self.n_children - made)
            youngest = rng.randint(30, span)
            dob = self.today - timedelta(days=youngest)
            for sibling in range(size):
                if sibling:
                    gap = 0 if rng.random() < 0.03 else rng.randint(365, 6 * 365)  # twins now and then
                    if (self.today - dob).days + gap > span:
                        gap = 0
                    dob -= timedelta(days=gap)
                ref = next(refs)
                child = self._child(rng, ref, authority, family, postcode, dob, made)
                count = rng.choices(counts, cum_weights=count_weights)[0]
                yield child, self._involvements(rng, ref, authority, dob, count)
                made += 1

    def _child(
        self,
        rng: random.Random,
        ref: int,
        authority: Authority,
        family: str,
        postcode: str,
        dob: date,
        index: int,
    ) -> list[str]:
        female = rng.random() < 0.49
        pick = self._girl if female else self._boy
        given = pick(rng)
        if rng.random() < 0.2:
            given += " " + pick(rng)
        aliases = f"{given.split()[0]} {self._family(rng)}" if rng.random() < 0.03 else ""
        shielded = index % 50 == 12  # 2 %
        return [
            f"{ref}",
            given,
            family,
            aliases,
            dob.isoformat(),
            "F" if female else "M",
            postcode,
            authority.name,
            "true" if shielded else "false",
        ]

    def _involvements(
        self, rng: random.Random, ref: int, authority: Authority, dob: date, count: int
    ) -> list[list[str]]:
        rows: list[list[str]] = []
        age = max(1, (self.today - dob).days - 1)
        for n, number in enumerate(rng.sample(range(1, self.per_authority + 1), count)):
            started = dob + timedelta(days=rng.randint(0, age))
            ended = ""
            if rng.random() < 0.35 and (self.today - started).days > 30:
                ended = (started + timedelta(days=rng.randint(30, (self.today - started).days))).isoformat()
            service = SERVICES[(number - 1) % len(SERVICES)][2]
            lead = "true" if n == 0 and not ended else "false"
            rows.append([f"{ref}", self.practitioner_id(authority, number), service, started.isoformat(), ended, lead])
        return rows


def write_feeds(register: NationalRegister, folder: Path, on_progress: Callable[[int], None] | None = None) -> Written:
    """Write practitioners.csv, children.csv and involvements.csv into ``folder``, row by row."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in HEADERS}
    people = kids = involved = 0
    with paths["practitioners.csv"].open("w", encoding="utf-8", newline="") as out:
        out.write(HEADERS["practitioners.csv"] + "\n")
        writer = csv.writer(out, lineterminator="\n")
        for row in register.practitioners():
            writer.writerow(row)
            people += 1
    with (
        paths["children.csv"].open("w", encoding="utf-8", newline="") as kids_out,
        paths["involvements.csv"].open("w", encoding="utf-8", newline="") as inv_out,
    ):
        kids_out.write(HEADERS["children.csv"] + "\n")
        inv_out.write(HEADERS["involvements.csv"] + "\n")
        kids_writer = csv.writer(kids_out, lineterminator="\n")
        inv_writer = csv.writer(inv_out, lineterminator="\n")
        for child, rows in register.households():
            kids_writer.writerow(child)
            inv_writer.writerows(rows)
            kids += 1
            involved += len(rows)
            if on_progress is not None and kids % 100_000 == 0:
                on_progress(kids)
    return Written(people, kids, involved, tuple(paths.values()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m store.register.national",
        description="Write a synthetic national register's feed CSVs (deterministic; nobody real).",
    )
    parser.add_argument("--children", type=int, required=True, help="how many children, e.g. 11000000")
    parser.add_argument("--out", type=Path, required=True, help="folder for the three CSVs")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def progress(done: int) -> None:
        print(f"\r{done:,} children", end="", file=sys.stderr, flush=True)

    written = write_feeds(NationalRegister(args.children, seed=args.seed), args.out, progress)
    seconds = time.monotonic() - started
    print(
        f"\rwrote {written.practitioners:,} practitioners, {written.children:,} children, "
        f"{written.involvements:,} involvements to {args.out} in {seconds:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
