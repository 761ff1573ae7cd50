"""Labelled synthetic register and queries for the matching benchmark.

The register is built household by household (siblings share a family name and
postcode, about 1.5 % of children are twins), with middle names, double-barrelled
surnames and aliases. Each query starts from one child and applies a corruption a
practitioner or a school roll really produces; absent-child queries describe children
who are not on the register, including the hard ones: an unregistered sibling, an
unregistered twin, a namesake born on another day.

``split_siblings`` places that share of brothers, sisters and twins (every child of a
household but its first) at another postcode, as children placed apart in care or living
in split households are, and asks about that share of unregistered siblings and twins at
another postcode than the registered child's. It is 0 by default, and then the register and
queries are exactly those of earlier runs with the same seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final

from benchmarks.matching.names import NameSource
from handlers.matching.terms import Query
from store.register.terms import Identity

FIRST_DOB: Final = date(2007, 1, 1)
DOB_SPAN_DAYS: Final = 18 * 365

# What practitioners call children, as a benchmark's own list: deliberately not a copy
# of store/register/nicknames.py (some of these are missing there, as in real life).
NICKNAMES: Final = {
    "Oliver": ["Ollie", "Olly"],
    "Thomas": ["Tom", "Tommy"],
    "William": ["Will", "Billy", "Liam"],
    "James": ["Jamie", "Jim"],
    "Joseph": ["Joe", "Joey"],
    "Samuel": ["Sam", "Sammy"],
    "Daniel": ["Dan", "Danny"],
    "Alexander": ["Alex", "Xander"],
    "Benjamin": ["Ben", "Benji"],
    "Matthew": ["Matt"],
    "Edward": ["Ed", "Eddie", "Ted"],
    "Henry": ["Harry", "Hal"],
    "Joshua": ["Josh"],
    "Zachary": ["Zach", "Zac"],
    "Christopher": ["Chris", "Kit"],
    "Nicholas": ["Nick", "Nico"],
    "Frederick": ["Freddie", "Fred"],
    "Alfred": ["Alfie", "Alf"],
    "Archibald": ["Archie"],
    "Theodore": ["Theo"],
    "Michael": ["Mike", "Mikey"],
    "Jacob": ["Jake"],
    "Robert": ["Rob", "Bobby", "Robbie"],
    "Richard": ["Rich", "Ricky"],
    "Anthony": ["Tony", "Ant"],
    "Stephen": ["Steve", "Stevie"],
    "Steven": ["Steve"],
    "Charlie": ["Chaz"],
    "Harrison": ["Harry"],
    "Sebastian": ["Seb", "Bash"],
    "Tobias": ["Toby"],
    "Elijah": ["Eli"],
    "Reuben": ["Rube"],
    "Olivia": ["Liv", "Livvy"],
    "Amelia": ["Millie", "Amy"],
    "Isabella": ["Bella", "Izzy"],
    "Isabelle": ["Izzy", "Belle"],
    "Sophia": ["Sophie"],
    "Elizabeth": ["Lizzie", "Beth", "Libby"],
    "Catherine": ["Kate", "Katie", "Cat"],
    "Katherine": ["Kate", "Kathy"],
    "Kathryn": ["Kate"],
    "Charlotte": ["Lottie", "Charlie"],
    "Eleanor": ["Ellie", "Nell"],
    "Jessica": ["Jess"],
    "Rebecca": ["Becky", "Becca"],
    "Victoria": ["Vicky", "Tori"],
    "Alexandra": ["Alex", "Lexi"],
    "Samantha": ["Sam"],
    "Abigail": ["Abbie", "Abi"],
    "Matilda": ["Tilly"],
    "Florence": ["Flo"],
    "Margaret": ["Maggie", "Meg"],
    "Penelope": ["Penny"],
    "Georgina": ["Georgie"],
    "Evelyn": ["Evie"],
    "Natalie": ["Nat"],
    "Stephanie": ["Steph"],
    "Jennifer": ["Jen", "Jenny"],
    "Josephine": ["Josie"],
    "Francesca": ["Frankie", "Fran"],
    "Harriet": ["Hattie"],
    "Madison": ["Maddie"],
    "Gabriel": ["Gabe"],
    "Jonathan": ["Jon", "Jonny"],
    "Patrick": ["Paddy"],
    "Dominic": ["Dom"],
    "Louis": ["Lou"],
    "Phoebe": ["Phoebs"],
    "Imogen": ["Immy"],
}

PHONETIC_RULES: Final = [
    ("ph", "f"),
    ("f", "ph"),
    ("ck", "k"),
    ("c", "k"),
    ("k", "c"),
    ("ie", "y"),
    ("y", "ie"),
    ("ey", "y"),
    ("ee", "ea"),
    ("ou", "ow"),
    ("ae", "ai"),
    ("ll", "l"),
    ("l", "ll"),
    ("nn", "n"),
    ("n", "nn"),
    ("tt", "t"),
    ("t", "tt"),
    ("s", "z"),
    ("z", "s"),
    ("i", "y"),
    ("y", "i"),
    ("th", "t"),
    ("a", "e"),
    ("e", "a"),
    ("son", "sen"),
    ("mm", "m"),
    ("ai", "ay"),
]


OCR: Final = [
    *[("rn", "m"), ("m", "rn"), ("cl", "d"), ("d", "cl"), ("w", "vv"), ("vv", "w"), ("li", "h")],
    *[("o", "c"), ("e", "c"), ("h", "b"), ("u", "v"), ("i", "l"), ("l", "i"), ("n", "h"), ("a", "o")],
]

KEYBOARD_ROWS: Final = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(letter: str) -> str:
    """The keys beside a letter on a QWERTY keyboard (same row)."""
    for row in KEYBOARD_ROWS:
        at = row.find(letter)
        if at >= 0:
            return row[max(0, at - 1) : at] + row[at + 1 : at + 2]
    return ""


@dataclass(frozen=True, slots=True)
class Child:
    identity: Identity
    household: int


@dataclass(frozen=True, slots=True)
class Labelled:
    query: Query
    child: int | None  # index of the true child, None when absent
    kind: str


class Generator:
    def __init__(self, seed: int, split_siblings: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.names = NameSource(self.rng)
        self.split_siblings = split_siblings

    def _apart(self) -> bool:
        """Whether this brother, sister or twin lives at another postcode (draws nothing when the
        share is 0, so the default stream is unchanged)."""
        return self.split_siblings > 0 and self.rng.random() < self.split_siblings

    # ------------------------------------------------------------------ register

    def _dob(self) -> date:
        return FIRST_DOB + timedelta(days=self.rng.randrange(DOB_SPAN_DAYS))

    def _person(self, family: str, postcode: str, dob: date, avoid: frozenset[str] = frozenset()) -> Identity:
        """A child; parents do not give two of their children the same first name."""
        sex = self.rng.choice("MF")
        given = self.names.given(sex)
        while given in avoid:
            given = self.names.given(sex)
        if self.rng.random() < 0.4:
            given += " " + self.names.given(sex)
        aliases: tuple[str, ...] = ()
        roll = self.rng.random()
        if roll < 0.04:
            aliases = (f"{given.split()[0]} {self.names.family_name()}",)
        elif roll < 0.05:
            aliases = (
                f"{self.names.given(sex)} {self.names.family_name()}",
                f"{given.split()[0]} {self.names.family_name()}",
            )
        return Identity(given, family, aliases, dob, sex, postcode)

    def household(self) -> list[Identity]:
        family = self.names.family_name()
        if self.rng.random() < 0.04:
            family = f"{family}-{self.names.family_name()}"
        postcode = self.names.postcode()
        size = self.rng.choices([1, 2, 3, 4], weights=[45, 35, 14, 6])[0]
        children: list[Identity] = []
        for _ in range(size):
            used = frozenset(child.given_names.split()[0] for child in children)
            home = self.names.postcode() if children and self._apart() else postcode
            children.append(self._person(family, home, self._dob(), used))
        if self.rng.random() < 0.03:  # twins: same day, same household (or placed apart)
            used = frozenset(child.given_names.split()[0] for child in children)
            home = self.names.postcode() if self._apart() else postcode
            children.append(self._person(family, home, children[0].date_of_birth, used))
        return children

    def register(self, size: int) -> list[Child]:
        children: list[Child] = []
        household = 0
        while len(children) < size:
            children.extend(Child(person, household) for person in self.household())
            household += 1
        return children[:size]

    def outsider(self) -> Identity:
        return self._person(self.names.family_name(), self.names.postcode(), self._dob())

    # ------------------------------------------------------------------ corruptions

    def typo(self, word: str) -> str:
        letters = "abcdefghijklmnopqrstuvwxyz"
        if len(word) < 3:
            return word + self.rng.choice(letters)
        i = self.rng.randrange(1, len(word))  # first letters are rarely mistyped
        op = self.rng.choice(["sub", "del", "ins", "swap"])
        if op == "sub":
            return word[:i] + self.rng.choice(letters) + word[i + 1 :]
        if op == "del":
            return word[:i] + word[i + 1 :]
        if op == "ins":
            return word[:i] + self.rng.choice(letters) + word[i:]
        j = min(i + 1, len(word) - 1)
        return word[:i] + word[j] + word[i] + word[j + 1 :] if j > i else word[:-1] + self.rng.choice(letters)

    def misspell(self, word: str) -> str:
        lower = word.lower()
        rules = [(a, b) for a, b in PHONETIC_RULES if a in lower[1:]]
        if not rules:
            return self.typo(word)
        a, b = self.rng.choice(rules)
        at = lower.find(a, 1)
        changed = lower[:at] + b + lower[at + len(a) :]
        return changed[0].upper() + changed[1:]

    def ocr(self, word: str) -> str:
        """A scanned form's misreading: rn for m, cl for d, c for e and the like."""
        lower = word.lower()
        found = [(a, b) for a, b in OCR if a in lower[1:]]
        if not found:
            return self.typo(word)
        a, b = self.rng.choice(found)
        at = lower.find(a, 1)
        changed = lower[:at] + b + lower[at + len(a) :]
        return changed[0].upper() + changed[1:]

    def keyboard(self, word: str) -> str:
        """A key next to the right one (never the first letter)."""
        lower = word.lower()
        spots = [i for i in range(1, len(lower)) if _neighbours(lower[i])]
        if not spots:
            return self.typo(word)
        i = self.rng.choice(spots)
        changed = lower[:i] + self.rng.choice(_neighbours(lower[i])) + lower[i + 1 :]
        return changed[0].upper() + changed[1:]

    def _two_digits(self, dob: date) -> date:
        """Two digits of the date wrong at once (neither the swap nor one digit)."""
        for _ in range(100):
            changed = self._one_digit(self._one_digit(dob))
            wrong = sum(a != b for a, b in zip(changed.strftime("%Y%m%d"), dob.strftime("%Y%m%d"), strict=True))
            if wrong == 2 and FIRST_DOB.year - 2 <= changed.year <= FIRST_DOB.year + 19:
                return changed  # a future date would be refused by the parser
        return dob.replace(year=dob.year + 1)

    def _one_digit(self, dob: date) -> date:
        digits = dob.strftime("%Y%m%d")
        for _ in range(50):
            i = self.rng.choice([2, 3, 3, 4, 5, 6, 7, 7])
            text = digits[:i] + self.rng.choice("0123456789") + digits[i + 1 :]
            try:
                changed = date(int(text[:4]), int(text[4:6]), int(text[6:]))
            except ValueError:
                continue
            if changed != dob:
                return changed
        return dob.replace(year=dob.year + 1)

    def corrupt(self, kind: str, child: Identity) -> Query:
        given, family, dob = child.given_names, child.family_name, child.date_of_birth
        first = given.split()[0]
        q = Query(given, family, dob, child.postcode, child.sex)
        if kind == "exact":
            return q
        if kind == "typo":
            return (
                replace(q, given_names=self.typo(first))
                if self.rng.random() < 0.5
                else replace(q, family_name=self.typo(family))
            )
        if kind == "phonetic":
            return (
                replace(q, given_names=self.misspell(first))
                if self.rng.random() < 0.5
                else replace(q, family_name=self.misspell(family))
            )
        if kind in ("ocr", "keyboard"):
            spoil = self.ocr if kind == "ocr" else self.keyboard
            return (
                replace(q, given_names=spoil(first))
                if self.rng.random() < 0.5
                else replace(q, family_name=spoil(family))
            )
        if kind == "given_garbled":
            return replace(q, given_names=self.typo(self.typo(first)))
        if kind == "dob_two_digits":
            return replace(q, date_of_birth=self._two_digits(dob))
        if kind == "no_postcode":
            return replace(q, postcode=None)
        if kind == "nickname":
            return replace(q, given_names=self.rng.choice(NICKNAMES.get(first, [first[:3]])))
        if kind == "swapped":
            return replace(q, given_names=family, family_name=first)
        if kind == "new_surname":
            return replace(q, family_name=self.names.family_name())
        if kind == "alias":
            alias_given, _, alias_family = self.rng.choice(child.aliases).rpartition(" ")
            return replace(q, given_names=alias_given, family_name=alias_family)
        if kind == "double_barrelled":
            return replace(q, family_name=self.rng.choice(family.split("-")))
        if kind == "dob_swap":
            if dob.day > 12:
                return replace(q, date_of_birth=self._one_digit(dob))
            return replace(q, date_of_birth=dob.replace(month=dob.day, day=dob.month))
        if kind == "dob_digit":
            return replace(q, date_of_birth=self._one_digit(dob))
        if kind == "dob_year":
            return replace(
                q,
                date_of_birth=dob.replace(year=dob.year + self.rng.choice((-1, 1)))
                if (dob.month, dob.day) != (2, 29)
                else dob,
            )
        if kind == "no_dob":
            return replace(q, date_of_birth=None)
        if kind == "no_given":
            return replace(q, given_names="")
        if kind == "moved":
            return replace(q, postcode=self.names.postcode())
        raise ValueError(kind)

    def present_kinds(self, child: Identity) -> list[str]:
        kinds = [
            "exact",
            "typo",
            "phonetic",
            "nickname",
            "swapped",
            "new_surname",
            "dob_digit",
            "dob_year",
            "no_dob",
            "no_given",
            "moved",
            "ocr",
            "keyboard",
            "given_garbled",
            "dob_two_digits",
            "no_postcode",
        ]
        if child.aliases:
            kinds.append("alias")
        if "-" in child.family_name:
            kinds.append("double_barrelled")
        if child.date_of_birth.day <= 12 and child.date_of_birth.day != child.date_of_birth.month:
            kinds.append("dob_swap")
        return kinds

    def present_query(self, index: int, child: Identity) -> Labelled:
        kinds = self.present_kinds(child)
        if self.rng.random() < 0.15:  # two mistakes at once
            first, second = self.rng.sample([k for k in kinds if k not in ("exact", "no_postcode")], 2)
            if "no_dob" in (first, second) and (first + second).count("dob") > 1:
                first, second = "no_dob", "typo"  # a date both missing and mistyped is one mistake
            if {first, second} & {"alias", "swapped", "nickname", "new_surname", "no_given"} and len(
                {first, second} & {"alias", "swapped", "nickname", "new_surname", "no_given", "double_barrelled"}
            ) > 1:
                second = "moved"
            q = self.corrupt(first, child)
            q = self._apply_second(second, q, child)
            return Labelled(self._finish(q, second == "moved"), index, f"{first}+{second}")
        kind = self.rng.choice(kinds)
        keep = kind in ("no_dob", "moved", "no_postcode")
        return Labelled(self._finish(self.corrupt(kind, child), keep), index, kind)

    def _apply_second(self, kind: str, q: Query, child: Identity) -> Query:
        shifted = replace(
            child,
            given_names=q.given_names or child.given_names,
            family_name=q.family_name or child.family_name,
            date_of_birth=q.date_of_birth or child.date_of_birth,
            postcode=q.postcode,
        )
        second = self.corrupt(kind, shifted)
        return replace(
            q,
            **{
                f: getattr(second, f)
                for f in ("given_names", "family_name", "date_of_birth", "postcode")
                if getattr(second, f) != getattr(shifted, f)
            },
        )

    def _finish(self, q: Query, keep_postcode: bool) -> Query:
        """How the query reaches us: chat free text (parser split) or a batch row,
        with a full postcode, only the outward code, or none; sex sometimes."""
        postcode = q.postcode
        roll = self.rng.random()
        if roll < 0.3 and not keep_postcode:
            postcode = None
        elif roll < 0.65 and postcode:
            postcode = postcode.split()[0]
        sex = q.sex if self.rng.random() < 0.3 else None
        given, family = q.given_names, q.family_name
        if self.rng.random() < 0.5:  # chat: "Amy Louise Jones ..." → last word is the family name
            given = " ".join(given.split()[:1])  # people type one given name
            words = f"{given} {family}".split()
            given, family = " ".join(words[:-1]), (words[-1] if words else "")
        if q.date_of_birth is None and postcode is None:
            postcode = q.postcode
        return Query(given, family, q.date_of_birth, postcode, sex)

    # ------------------------------------------------------------------ absent children

    def absent_query(self, register: list[Child]) -> Labelled:
        kind = self.rng.choices(["stranger", "sibling", "twin", "namesake"], weights=[55, 20, 10, 15])[0]
        base = self.rng.choice(register).identity
        outsider = self._person(
            self.names.family_name(), self.names.postcode(), self._dob(), frozenset({base.given_names.split()[0]})
        )
        if kind == "stranger":
            person = outsider
        elif kind == "sibling":
            home = outsider.postcode if self._apart() else base.postcode
            person = replace(outsider, family_name=base.family_name, postcode=home)
        elif kind == "twin":
            home = outsider.postcode if self._apart() else base.postcode
            person = replace(outsider, family_name=base.family_name, postcode=home, date_of_birth=base.date_of_birth)
        else:
            person = replace(outsider, given_names=base.given_names, family_name=base.family_name)
        q = Query(person.given_names, person.family_name, person.date_of_birth, person.postcode, person.sex)
        if self.rng.random() < 0.3:
            q = self.corrupt(self.rng.choice(["typo", "phonetic", "dob_digit"]), replace(person, aliases=()))
        return Labelled(self._finish(q, False), None, f"absent_{kind}")

    def queries(self, register: list[Child], count: int, absent_share: float = 0.2) -> list[Labelled]:
        out: list[Labelled] = []
        for _ in range(count):
            if self.rng.random() < absent_share:
                out.append(self.absent_query(register))
            else:
                index = self.rng.randrange(len(register))
                out.append(self.present_query(index, register[index].identity))
        return out


Corruption = Callable[[Identity], Query]
