"""How a child is indexed: normalised names, phonetic keys, blind-index terms and name-count keys.

This module is pure (no database, no keys): the store turns every term into a keyed
blind-index value before it is written or looked up, so nothing here ever leaves the
process in plain text. What a query probes, how candidates are scored and which one is
chosen live with the deciders, in ``handlers.matching``; they read these keys so that a
query's terms meet the terms written here.

Contract used by the rest of Signpost (keep these names and signatures):

- ``index_terms(identity)``: the plain terms a child is findable by (the store HMACs them).
- ``count_keys(identity)``: the names a child is counted under (the store HMACs them too).

Candidate generation ("blocking"). Names are reduced to a phonetic key (metaphone with
a few English fixes: SH/S, CHR/KR, TH/T, MAC/MC) and given names also to the key of their
nickname roots (Bob → Robert). A child is indexed under a handful of compound terms, each
selective at national scale and each surviving a different kind of mistake:

===========  =====================================  ==========================================
term         content                                survives
===========  =====================================  ==========================================
``n:``       one name key + full date of birth      the other name wrong or replaced
``ym: md:    both name keys (in either order) +     any one of day, month or year wrong;
yd:``        two of year / month / day              swapped given/family names
``do:``      full date of birth + outward postcode  both names changed or misspelt
``po:``      both name keys + outward postcode      no date of birth given
``ii:``      given and family initials (either      both names misspelt past their keys
             order) + full date of birth
``fy:``      family key + given initial + year      a name key wrong AND day and month wrong
``fm:``      family key + given initial + month     a name key wrong AND the year wrong
             and day
``pm: pd:``  both name keys + month, or + day       two fields of the date wrong
``no:``      one name key + outward postcode        no date of birth and the other name wrong
===========  =====================================  ==========================================

Date-of-birth mistakes (day/month swapped, one digit wrong, year ±1) are expanded on the
query side only, so the index stays at about fourteen terms a child (``MAX_INDEX_TERMS``
caps children with many aliases). ``TERMS_VERSION`` names this set of term kinds and their
keying: a store whose terms were written under another version must rebuild them
(``store.register.children.rebuild_terms``: at start-up and before a children import).

Keys: a term holding the full date of birth (``FULL_DATE_KINDS``) is keyed under the birth day's
term key, any other under the birth year's (``keyed_by`` says which a query's term needs), so
that destroying a cohort's keys makes an old backup's terms of its children untestable.

Name frequency: the register's counts of children per first given name and family name
(``count_keys``; the store keeps them by blind index) let scoring weigh an exact name
agreement by the name's rarity instead of the table's average u.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Final

import jellyfish

from store.register.nicknames import NAME_ROOTS, roots_of

MAX_INDEX_TERMS: Final = 20
"""Hard cap on index terms a child (a typical child has 14; each alias adds one or two)."""

TERMS_VERSION: Final = "4"
"""The set of term kinds ``index_terms`` writes and how they are keyed (1: n, ym, md, yd, do, po;
2: adds ii, fy, fm, pm, pd, no; 3: the same kinds, keyed by birth day or year, ``keyed_by``; 4: the
same, from names whose letters kept whole by NFKD (Ł, Ø, Æ…) and other apostrophes are folded)."""

FULL_DATE_KINDS: Final = frozenset({"n", "ii", "do", "dob"})
"""Term kinds holding the full date of birth (``dob:`` is retention's, ``store.register.children``):
keyed under the birth day's term key; every other kind under the birth year's (store/keys/term_keys.py)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A child's identity fields as decrypted from the store."""

    given_names: str
    family_name: str
    aliases: tuple[str, ...]
    date_of_birth: date
    sex: str | None = None
    postcode: str | None = None


# ---------------------------------------------------------------------------- normalising


# Every apostrophe a keyboard or a document writes (the usual two, the left quote, the modifier
# letter, the backtick, the acute accent, the prime) goes, and so does the Catalan middle dot
# (Col·lins): they sit inside a name, never between two.
APOSTROPHES: Final = "'\u2019\u2018\u02bc\u02bb`\u00b4\u2032\u00b7"
# Letters NFKD keeps whole (no base letter and accent to come apart), as an English keyboard types
# them: "Łęcki" was findable as registered only, never as "Lecki". Upper-case, as folded below
# (``str.upper`` already makes ß SS and the dotless i I).
_LETTERS_KEPT_WHOLE = str.maketrans(
    {"Ł": "L", "Ø": "O", "Đ": "D", "Ð": "D", "Þ": "TH", "Æ": "AE", "Œ": "OE", "Ħ": "H", "Ŧ": "T"}
)
# ASCII text needs no folding (NFKD leaves it as it is, and no ASCII character is combining): its
# apostrophes go, every other character that is not a letter becomes a space, in one C call.
_ASCII_NAME = str.maketrans(
    {chr(c): None if chr(c) in APOSTROPHES else " " for c in range(128) if not chr(c).isalpha()}
)
_DROPPED = str.maketrans(dict.fromkeys(APOSTROPHES))


def normalise_name(text: str) -> str:
    """Upper-case letters only, accents folded, words separated by one space.

    Apostrophes are dropped (O'Neill, O’Neill → ONEILL); hyphens separate words (Smith-Jones);
    letters with no accent to drop are spelt as on an English keyboard (Łęcki → LECKI).
    Scoring normalises every candidate's names: ASCII names (nearly all) take a table
    translation with the same result as the general path.
    """
    if text.isascii():
        return " ".join(text.translate(_ASCII_NAME).upper().split())
    folded = unicodedata.normalize("NFKD", text.translate(_DROPPED)).translate(_DROPPED)
    letters = "".join(c if c.isalpha() else " " for c in folded if not unicodedata.combining(c))
    return " ".join(letters.upper().translate(_LETTERS_KEPT_WHOLE).split())


def normalise_postcode(text: str | None) -> str:
    return "".join((text or "").upper().split())


def outward_code(postcode: str | None) -> str:
    """The outward code ("M1" of "M1 2AB"); a bare outward code is returned as it is."""
    code = normalise_postcode(postcode)
    if len(code) >= 5 and code[-3].isdigit() and code[-2:].isalpha():
        return code[:-3]
    return code if 2 <= len(code) <= 4 else ""


_PHONETIC_POST = str.maketrans({"X": "S", "0": "T"})


@lru_cache(maxsize=65536)
def phonetic_key(name: str) -> str:
    """A spelling-tolerant key for one normalised name (spaces ignored).

    Metaphone, with Sean/Shaun, Chris/Kris, Thomas/Tomas and Mac/Mc made equal.
    """
    word = name.replace(" ", "")
    if word.startswith("MAC"):
        word = "MC" + word[3:]
    elif word.startswith(("CHR", "CHL")):
        word = "K" + word[2:]
    key = jellyfish.metaphone(word).translate(_PHONETIC_POST)
    collapsed = "".join(c for i, c in enumerate(key) if i == 0 or c != key[i - 1])
    return collapsed or word[:1]


@lru_cache(maxsize=65536)
def given_keys(name: str) -> tuple[str, ...]:
    """Phonetic keys a given name is found by: its own, then its nickname roots'."""
    keys = [phonetic_key(name)]
    for root in sorted(NAME_ROOTS.get(name, ())):
        key = phonetic_key(root)
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def canonical_given_key(name: str) -> str:
    """The one key a given name takes in compound (two-name) index terms."""
    return phonetic_key(min(roots_of(name)))


# ---------------------------------------------------------------------------- terms


def initials_key(left: str, right: str) -> str:
    """Two names' first letters in a fixed order, so the term survives swapped names."""
    pair = sorted((left[:1], right[:1]))
    return "".join(pair)


def _split_full_name(full: str) -> tuple[str, str]:
    words = normalise_name(full).split()
    if len(words) < 2:
        return "", " ".join(words)
    return " ".join(words[:-1]), words[-1]


def names_of(identity: Identity) -> list[tuple[str, str]]:
    """(given, family) normalised, the registered name first, then aliases."""
    names = [(normalise_name(identity.given_names), normalise_name(identity.family_name))]
    names.extend(_split_full_name(alias) for alias in identity.aliases)
    return [name for name in names if name[0] or name[1]]


def pair_key(left: str, right: str) -> str:
    """Two name keys in a fixed order, so a pair term survives swapped given/family names."""
    return f"{left}|{right}" if left <= right else f"{right}|{left}"


def _name_terms(given: str, family: str, dob: date, out: str, full: bool) -> Iterator[str]:
    first = given.split()[0] if given else ""
    iso = dob.isoformat()
    for key in given_keys(first) if first else ():
        yield f"n:{key}|{iso}"
    for part in family.split():
        yield f"n:{phonetic_key(part)}|{iso}"
    if not (first and family and full):
        return
    pair = pair_key(canonical_given_key(first), phonetic_key(family))
    yield f"ym:{pair}|{iso[:7]}"
    yield f"md:{pair}|{iso[5:]}"
    yield f"yd:{pair}|{iso[:4]}{iso[7:]}"
    if out:
        yield f"po:{pair}|{out}"
    yield f"ii:{initials_key(first, family)}|{iso}"
    yield f"fy:{phonetic_key(family)}|{first[0]}|{iso[:4]}"
    yield f"fm:{phonetic_key(family)}|{first[0]}|{iso[5:]}"
    yield f"pm:{pair}|{iso[5:7]}"
    yield f"pd:{pair}|{iso[8:]}"


def _place_terms(given: str, family: str, out: str) -> Iterator[str]:
    first = given.split()[0] if given else ""
    keys = [phonetic_key(first)] if first else []
    keys += [phonetic_key(part) for part in family.split()]
    for key in dict.fromkeys(keys):
        yield f"no:{key}|{out}"


def index_terms(identity: Identity) -> frozenset[str]:
    """The terms a child is findable by (at most ``MAX_INDEX_TERMS``)."""
    dob = identity.date_of_birth
    out = outward_code(identity.postcode)
    terms: list[str] = [f"do:{dob.isoformat()}|{out}"] if out else []
    names = names_of(identity)
    for number, (given, family) in enumerate(names):
        terms.extend(_name_terms(given, family, dob, out, full=number == 0))
        if number == 0 and out:
            terms.extend(_place_terms(given, family, out))
    return frozenset(first_unique(terms, MAX_INDEX_TERMS))


def term_kind(term: str) -> str:
    return term[: term.index(":")]


def keyed_by(term: str) -> date | int | None:
    """What chooses the key a term is probed under: the full date of birth it holds (that day's key),
    the birth year it holds (that year's key), or None for a term that holds no year (``md: fm: pm:
    pd: po: no:``), which a child holds under its own birth year's key, unknown to a query."""
    kind = term_kind(term)
    if kind in FULL_DATE_KINDS:
        return date.fromisoformat(term[3:13] if kind == "do" else term[-10:])
    if kind in ("ym", "yd"):  # "|YYYY-MM" and "|YYYY-DD"
        return int(term[-7:-3])
    if kind == "fy":
        return int(term[-4:])
    return None


def first_unique(terms: Iterable[str], limit: int) -> list[str]:
    """The first ``limit`` distinct terms, in order."""
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(term)
        if len(seen) == limit:
            break
    return list(seen)


# ---------------------------------------------------------------------------- name counts

NameCounts = Mapping[str, int]
"""How many registered children bear a name, by :func:`given_count_key` / :func:`family_count_key`."""


def given_count_key(first_given: str) -> str:
    return f"g:{first_given}"


def family_count_key(family: str) -> str:
    return f"f:{family.replace(' ', '')}"


def count_keys(identity: Identity) -> tuple[str, ...]:
    """The names a registered child is counted under: first given name, whole family name."""
    given, family = normalise_name(identity.given_names).split(), normalise_name(identity.family_name)
    keys = [given_count_key(given[0])] if given else []
    return (*keys, family_count_key(family)) if family else tuple(keys)
