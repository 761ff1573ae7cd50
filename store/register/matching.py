"""Finding the right child: blind-index terms, scoring and the match decision.

This module is pure (no database, no keys): the store turns every term into a keyed
blind-index value before it is written or looked up, so nothing here ever leaves the
process in plain text.

Contract used by the rest of Signpost (keep these names and signatures):

- ``index_terms(identity)``: the plain terms a child is findable by (the store HMACs them).
- ``query_terms(query)``: the terms to probe for a query; candidates are the children
  holding any of them.
- ``score(query, identity)``: a calibrated probability in [0, 1] that they are the same child.
- ``decide(scored, policy)``: match / ambiguous / no_match from scored candidates.

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
===========  =====================================  ==========================================

Date-of-birth mistakes (day/month swapped, one digit wrong, year ±1) are expanded on the
query side only, so the index stays at about seven terms a child (``MAX_INDEX_TERMS``
caps children with many aliases) and a query probes at most ``MAX_QUERY_TERMS``.

Scoring is Fellegi–Sunter: each field comparison falls in a level with m (probability
of that level for the same child) and u (for two different children) probabilities;
the likelihood ratio of the best reading of the names (as given, swapped, or any alias)
times the others' is turned into a posterior with the prior that the practitioner's
child is one particular child of the register (``MatchModel.population``). ``decide``
then shares the posterior between the candidates, so two look-alikes never both pass.

Name frequency: given the register's counts of children per first given name and family name
(``count_keys`` / ``query_count_keys``; the store keeps them by blind index), an exact name
agreement weighs by the name's rarity instead of the table's average u.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Final, Generic, TypeVar

import jellyfish
from rapidfuzz.distance import OSA, JaroWinkler

from store.register.nicknames import NAME_ROOTS, roots_of

T = TypeVar("T")

MAX_INDEX_TERMS: Final = 12
"""Hard cap on index terms a child (a typical child has 7; each alias adds one or two)."""

MAX_QUERY_TERMS: Final = 60
"""Hard cap on the terms one query probes (the store's ``IN (...)`` list)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """A child's identity fields as decrypted from the store."""

    given_names: str
    family_name: str
    aliases: tuple[str, ...]
    date_of_birth: date
    sex: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, slots=True)
class Query:
    """What a practitioner typed, split into fields. Any field may be empty."""

    given_names: str = ""
    family_name: str = ""
    date_of_birth: date | None = None
    postcode: str | None = None
    sex: str | None = None


class DecisionKind(StrEnum):
    MATCH = "match"
    AMBIGUOUS = "ambiguous"
    NO_MATCH = "no_match"


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    """Accept the best candidate when its share of the posterior is at least ``accept``
    and its own score leads the next candidate's by ``margin``; when that fails but some
    candidate scores ``consider`` or more, the answer is ambiguous (ask for more detail).
    """

    accept: float = 0.999
    margin: float = 0.05
    consider: float = 0.5


@dataclass(frozen=True, slots=True)
class Decision(Generic[T]):
    kind: DecisionKind
    best: T | None
    ranked: tuple[tuple[T, float], ...]


# ---------------------------------------------------------------------------- normalising


def normalise_name(text: str) -> str:
    """Upper-case letters only, accents folded, words separated by one space.

    Apostrophes are dropped (O'Neill → ONEILL); hyphens separate words (Smith-Jones).
    """
    folded = unicodedata.normalize("NFKD", text).replace("'", "").replace("\u2019", "")
    letters = "".join(c if c.isalpha() else " " for c in folded if not unicodedata.combining(c))
    return " ".join(letters.upper().split())


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


def _split_full_name(full: str) -> tuple[str, str]:
    words = normalise_name(full).split()
    if len(words) < 2:
        return "", " ".join(words)
    return " ".join(words[:-1]), words[-1]


def _names(identity: Identity) -> list[tuple[str, str]]:
    """(given, family) normalised, the registered name first, then aliases."""
    names = [(normalise_name(identity.given_names), normalise_name(identity.family_name))]
    names.extend(_split_full_name(alias) for alias in identity.aliases)
    return [name for name in names if name[0] or name[1]]


def _pair(left: str, right: str) -> str:
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
    pair = _pair(canonical_given_key(first), phonetic_key(family))
    yield f"ym:{pair}|{iso[:7]}"
    yield f"md:{pair}|{iso[5:]}"
    yield f"yd:{pair}|{iso[:4]}{iso[7:]}"
    if out:
        yield f"po:{pair}|{out}"


def index_terms(identity: Identity) -> frozenset[str]:
    """The terms a child is findable by (at most ``MAX_INDEX_TERMS``)."""
    dob = identity.date_of_birth
    out = outward_code(identity.postcode)
    terms: list[str] = [f"do:{dob.isoformat()}|{out}"] if out else []
    for number, (given, family) in enumerate(_names(identity)):
        terms.extend(_name_terms(given, family, dob, out, full=number == 0))
    return frozenset(_first_unique(terms, MAX_INDEX_TERMS))


def _first_unique(terms: Iterable[str], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for term in terms:
        seen.setdefault(term)
        if len(seen) == limit:
            break
    return list(seen)


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def dob_variants(dob: date) -> list[date]:
    """The date itself, then the common mistakes: day/month swapped, year ±1, one digit wrong."""
    found: list[date | None] = [dob, _valid_date(dob.year, dob.day, dob.month)]
    found += [_valid_date(dob.year + delta, dob.month, dob.day) for delta in (-1, 1)]
    digits = dob.strftime("%Y%m%d")
    for position in (7, 6, 5, 4, 3, 2):
        for digit in "0123456789":
            if digit != digits[position]:
                text = digits[:position] + digit + digits[position + 1 :]
                found.append(_valid_date(int(text[:4]), int(text[4:6]), int(text[6:])))
    return list(dict.fromkeys(day for day in found if day is not None))


def _query_words(query: Query) -> tuple[list[str], list[str]]:
    return normalise_name(query.given_names).split(), normalise_name(query.family_name).split()


def query_terms(query: Query) -> frozenset[str]:
    """The terms to probe for a query (at most ``MAX_QUERY_TERMS``), most useful first.

    Empty when the query cannot be found selectively (no date of birth and no postcode,
    or no name and no postcode): the caller should ask for more detail.
    """
    given, family = _query_words(query)
    out = outward_code(query.postcode)
    stream = _query_term_stream(given, family, query.date_of_birth, out)
    return frozenset(_first_unique(stream, MAX_QUERY_TERMS))


def _name_pairs(given: list[str], family: list[str]) -> list[tuple[str, str]]:
    """Which (given, family) the words might be, likeliest first, in either order.

    Covers a parser that took the last word of "Amy Smith Jones" as the whole family
    name, and a family name typed first ("Smith-Jones Amy").
    """
    words = given + family
    if len(words) < 2:
        return []
    if not given or not family:
        return [(words[0], " ".join(words[1:])), (words[0], words[-1])]
    pairs = [(given[0], " ".join(family))]
    if len(given) >= 2:
        pairs += [(given[0], " ".join(given[1:] + family)), (" ".join(given), " ".join(family))]
        pairs += [(given[0], given[1])]
    if len(family) >= 2:
        pairs += [(given[0], family[-1]), (family[0], " ".join(family[1:]))]
    return pairs


def _pair_keys(given: list[str], family: list[str]) -> list[list[str]]:
    """Pair keys for each reading of the names, likeliest reading first."""
    readings: list[list[str]] = []
    seen: set[str] = set()
    for left, right in _name_pairs(given, family):
        left_keys = given_keys(left) if " " not in left else (phonetic_key(left),)
        right_keys = given_keys(right) if " " not in right else (phonetic_key(right),)
        keys = [_pair(a, b) for a in left_keys for b in right_keys]
        readings.append([key for key in dict.fromkeys(keys) if key not in seen])
        seen.update(keys)
    return readings


def _date_pair_terms(pairs: Iterable[str], iso: str) -> Iterator[str]:
    for pair in pairs:
        yield from (f"ym:{pair}|{iso[:7]}", f"md:{pair}|{iso[5:]}", f"yd:{pair}|{iso[:4]}{iso[7:]}")


def _query_term_stream(given: list[str], family: list[str], dob: date | None, out: str) -> Iterator[str]:
    """Terms in the order they are worth probing; the cap cuts the tail."""
    readings = _pair_keys(given, family)
    first_pairs = readings[0] if readings else []
    other_pairs = [pair for reading in readings[1:] for pair in reading]
    word_keys = list(dict.fromkeys(key for word in given + family for key in given_keys(word)))
    if dob is not None:
        variants = dob_variants(dob)
        iso = dob.isoformat()
        yield from _date_pair_terms(first_pairs, iso)
        yield from (f"n:{key}|{iso}" for key in word_keys)
        if out:
            yield from (f"do:{day.isoformat()}|{out}" for day in variants[:4])
        yield from _date_pair_terms(other_pairs, iso)
        if len(variants) > 1 and variants[1].year == dob.year:  # the day/month swap
            swapped = variants[1].isoformat()
            yield from (f"ym:{pair}|{swapped[:7]}" for pair in first_pairs + other_pairs)
            yield from (f"n:{key}|{swapped}" for key in word_keys)
        if out:
            yield from (f"do:{day.isoformat()}|{out}" for day in variants[4:])
    if out:
        yield from (f"po:{pair}|{out}" for reading in readings for pair in reading)


# ---------------------------------------------------------------------------- scoring

MuTable = dict[str, tuple[float, float]]
"""Comparison level → (m, u): its probability for the same child, for two different children."""

GIVEN_MU: Final[MuTable] = {
    "exact_all": (0.12, 0.00005),
    "exact": (0.68, 0.011),
    "nickname": (0.06, 0.0015),
    "middle": (0.015, 0.003),
    "prefix": (0.03, 0.005),
    "typo": (0.05, 0.0012),
    "phonetic": (0.02, 0.002),
    "fuzzy": (0.01, 0.01),
    "initial": (0.005, 0.06),
    "disagree": (0.04, 0.91),
}
FAMILY_MU: Final[MuTable] = {
    "exact": (0.82, 0.004),
    "part": (0.02, 0.0002),
    "typo": (0.06, 0.0006),
    "phonetic": (0.02, 0.001),
    "fuzzy": (0.01, 0.006),
    "disagree": (0.07, 0.99),
}
DOB_MU: Final[MuTable] = {
    "exact": (0.86, 1 / 6575),
    "swap": (0.03, 1 / 6575),
    "year": (0.03, 2 / 6575),
    "digit": (0.04, 25 / 6575),
    "partial": (0.02, 0.012),
    "disagree": (0.02, 0.985),
}
POSTCODE_MU: Final[MuTable] = {
    "full": (0.70, 0.00001),
    "outward": (0.16, 0.0004),
    "area": (0.04, 0.012),
    "disagree": (0.10, 0.988),
}
SEX_MU: Final[MuTable] = {"agree": (0.98, 0.5), "disagree": (0.02, 0.5)}


def _log_weights(table: MuTable) -> dict[str, float]:
    weights = {level: math.log(m / u) for level, (m, u) in table.items()}
    weights["missing"] = 0.0
    return weights


@dataclass(frozen=True, slots=True)
class MatchModel:
    """Fellegi–Sunter parameters. ``population`` is the size of the register and
    ``present`` the prior that the practitioner's child is on it at all."""

    population: int = 11_000_000
    present: float = 0.9
    given: MuTable | None = None
    family: MuTable | None = None
    dob: MuTable | None = None
    postcode: MuTable | None = None
    sex: MuTable | None = None
    swap_penalty: float = math.log(0.5)
    alias_penalty: float = math.log(0.8)
    sibling_penalty: float = -6.0
    """Added when the family name agrees but the given name does not: that pattern is far
    likelier to be a brother, sister or twin than the same child with a wrong name, so a
    shared postcode then counts for nothing either (it identifies the household)."""
    name_u_floor: float = 2e-6
    """With name counts, the u of an exact name agreement is the name's share of the register,
    never below this: a name borne by one child in a million still leaves room for cousins."""
    name_boost_cap: float = math.log(100)
    """A rare name adds at most this much weight over the table's average name (natural log):
    relatives and unregistered siblings share rare surnames far more often than chance says."""


@dataclass(frozen=True, slots=True)
class _Weights:
    given: dict[str, float]
    family: dict[str, float]
    dob: dict[str, float]
    postcode: dict[str, float]
    sex: dict[str, float]
    prior: float
    swap: float
    alias: float
    sibling: float
    given_exact_m: float
    family_exact_m: float
    population: int
    name_u_floor: float
    name_boost_cap: float


@lru_cache(maxsize=16)
def _weights(model: MatchModel) -> _Weights:
    prior = math.log(model.present / ((1 - model.present) * model.population))
    return _Weights(
        _log_weights(model.given or GIVEN_MU),
        _log_weights(model.family or FAMILY_MU),
        _log_weights(model.dob or DOB_MU),
        _log_weights(model.postcode or POSTCODE_MU),
        _log_weights(model.sex or SEX_MU),
        prior,
        model.swap_penalty,
        model.alias_penalty,
        model.sibling_penalty,
        (model.given or GIVEN_MU)["exact"][0],
        (model.family or FAMILY_MU)["exact"][0],
        model.population,
        model.name_u_floor,
        model.name_boost_cap,
    )


DEFAULT_MODEL: Final = MatchModel()


@dataclass(frozen=True, slots=True)
class _Readings:
    """A query's names read every way the parser might have split them."""

    orientations: tuple[tuple[tuple[str, ...], str, bool], ...]  # (given words, family, swapped)
    dob: date | None
    postcode: str
    outward: str
    sex: str


@lru_cache(maxsize=1024)
def _prepare(query: Query) -> _Readings:
    given = tuple(normalise_name(query.given_names).split())
    family = normalise_name(query.family_name)
    readings: list[tuple[tuple[str, ...], str, bool]] = [(given, family, False)]
    if family:
        readings.append((tuple(family.split()), " ".join(given), True))
    if len(given) >= 2:
        readings.append((given[:1], " ".join((*given[1:], family)).strip(), False))
    sex = (query.sex or "").strip().upper()[:1]
    code = normalise_postcode(query.postcode)
    return _Readings(tuple(readings), query.date_of_birth, code, outward_code(code), sex)


def _given_level(query: tuple[str, ...], child: list[str]) -> str:
    if not query or not child:
        return "missing"
    asked, first = query[0], child[0]
    if asked == first:
        return "exact_all" if len(query) > 1 and query == tuple(child[: len(query)]) else "exact"
    if len(asked) == 1:
        return "initial" if asked == first[0] else "disagree"
    if not roots_of(asked).isdisjoint(roots_of(first)):
        return "nickname"
    if any(word in child for word in query):
        return "middle"
    if len(asked) >= 2 and first.startswith(asked):
        return "prefix"  # Dec for Declan, Fin for Finley
    similarity = JaroWinkler.similarity(asked, first)
    if asked in NAME_ROOTS and first in NAME_ROOTS:
        return "fuzzy"  # two different real names that sound alike: Jack and Jake
    if similarity >= 0.9 or OSA.distance(asked, first, score_cutoff=1) <= 1:
        return "typo"
    if similarity >= 0.7 and phonetic_key(asked) == phonetic_key(first):
        return "phonetic"
    return "fuzzy" if similarity >= 0.8 else "disagree"


def _family_level(query: str, child: str) -> str:
    if not query or not child:
        return "missing"
    if query == child:
        return "exact"
    asked, held = query.replace(" ", ""), child.replace(" ", "")
    if asked == held:
        return "exact"
    if (" " in query or " " in child) and not set(query.split()).isdisjoint(child.split()):
        return "part"
    similarity = JaroWinkler.similarity(asked, held)
    if similarity >= 0.9 or OSA.distance(asked, held, score_cutoff=1) <= 1:
        return "typo"
    if similarity >= 0.7 and phonetic_key(asked) == phonetic_key(held):
        return "phonetic"
    return "fuzzy" if similarity >= 0.8 else "disagree"


def _dob_level(asked: date | None, held: date) -> str:
    if asked is None:
        return "missing"
    if asked == held:
        return "exact"
    if asked.year == held.year and asked.month == held.day and asked.day == held.month:
        return "swap"
    if asked.month == held.month and asked.day == held.day and abs(asked.year - held.year) == 1:
        return "year"
    left, right = asked.strftime("%Y%m%d"), held.strftime("%Y%m%d")
    if sum(a != b for a, b in zip(left, right, strict=True)) == 1:
        return "digit"
    agree = (asked.year == held.year) + (asked.month == held.month) + (asked.day == held.day)
    return "partial" if agree == 2 else "disagree"


def _postcode_level(readings: _Readings, held: str | None) -> str:
    code = normalise_postcode(held)
    if not readings.postcode or not code:
        return "missing"
    if readings.postcode == code:
        return "full"
    if readings.outward and readings.outward == outward_code(code):
        return "outward"
    area = "".join(c for c in readings.postcode[:2] if c.isalpha())
    return "area" if area and code.startswith(area) and not code[len(area)].isalpha() else "disagree"


_UNLIKE: Final = frozenset({"disagree", "fuzzy"})
_ALIKE: Final = frozenset({"exact", "part", "typo", "phonetic"})


_WEAK: Final = frozenset({"typo", "phonetic", "prefix", "initial", "missing"})
_FAR_DATE: Final = frozenset({"disagree", "partial"})


def _name_and_place_weight(
    readings: _Readings, identity: Identity, weights: _Weights, counts: NameCounts | None, dob_level: str
) -> float:
    """The best reading of the names (as typed, swapped, or an alias) with the postcode.

    A shared address says "same household": it counts for the child only when the given name
    agrees, or only resembles it but the date of birth is close too (a brother or sister at the
    same address has a like name more often than the child has a misspelt name AND a wrong date).
    """
    place = weights.postcode[_postcode_level(readings, identity.postcode)]
    far_date = dob_level in _FAR_DATE
    best = -math.inf
    for number, (given, family) in enumerate(_names(identity)):
        child_given = given.split()
        penalty = weights.alias if number else 0.0
        for asked_given, asked_family, swapped in readings.orientations:
            given_level = _given_level(asked_given, child_given)
            family_level = _family_level(asked_family, family)
            weight = _given_weight(given_level, child_given, weights, counts)
            weight += _family_weight(family_level, family, weights, counts) + penalty
            if swapped:
                weight += weights.swap
            if given_level in _UNLIKE:  # an address names a household, not a child
                weight += min(place, 0.0)
                if family_level in _ALIKE:
                    weight += weights.sibling
            elif far_date and given_level in _WEAK:
                weight += min(place, 0.0)
            else:
                weight += place
            best = max(best, weight)
    return place if best == -math.inf else best


def _given_weight(level: str, child_given: list[str], weights: _Weights, counts: NameCounts | None) -> float:
    if level == "exact" and counts:
        count = counts.get(given_count_key(child_given[0]))
        return _frequency_weight(weights.given_exact_m, count, weights.given[level], weights)
    return weights.given[level]


def _family_weight(level: str, family: str, weights: _Weights, counts: NameCounts | None) -> float:
    if level == "exact" and counts:
        count = counts.get(family_count_key(family))
        return _frequency_weight(weights.family_exact_m, count, weights.family[level], weights)
    return weights.family[level]


def _frequency_weight(m: float, count: int | None, fallback: float, weights: _Weights) -> float:
    """Term-frequency adjustment: agreeing on a name borne by ``count`` children of the register
    is evidence in proportion to its rarity (ZEBEDEE says more than OLIVER)."""
    if not count:
        return fallback  # not a registered name (an alias, say): the table's average u
    weight = math.log(m / max(count / weights.population, weights.name_u_floor))
    return min(weight, fallback + weights.name_boost_cap)


def match_weight(
    query: Query, identity: Identity, model: MatchModel = DEFAULT_MODEL, counts: NameCounts | None = None
) -> float:
    """The log likelihood ratio (natural log) that ``query`` describes ``identity``.

    ``counts`` (from :func:`query_count_keys`: how many registered children bear each of the
    query's names) makes exact name agreement weigh by the name's rarity; without it every
    name has the table's average u.
    """
    readings = _prepare(query)
    weights = _weights(model)
    dob_level = _dob_level(readings.dob, identity.date_of_birth)
    total = _name_and_place_weight(readings, identity, weights, counts, dob_level)
    total += weights.dob[dob_level]
    held_sex = (identity.sex or "").strip().upper()[:1]
    if readings.sex and held_sex:
        total += weights.sex["agree" if readings.sex == held_sex else "disagree"]
    return total


def score(
    query: Query, identity: Identity, model: MatchModel = DEFAULT_MODEL, counts: NameCounts | None = None
) -> float:
    """The posterior probability that ``query`` describes ``identity`` rather than a child
    who is not on the register, from the match weight and the prior of one child in
    ``model.population``."""
    logit = match_weight(query, identity, model, counts) + _weights(model).prior
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    odds = math.exp(logit)
    return odds / (1.0 + odds)


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


def query_count_keys(query: Query) -> frozenset[str]:
    """The counts a query's scoring may use: each reading's given and family name."""
    keys: set[str] = set()
    for given, family, _ in _prepare(query).orientations:
        if given:
            keys.add(given_count_key(given[0]))
        if family:
            keys.add(family_count_key(family))
    return frozenset(keys)


# ---------------------------------------------------------------------------- deciding


def _odds(probability: float) -> float:
    return math.inf if probability >= 1.0 else probability / (1.0 - probability)


def shared_posterior(ranked: Sequence[tuple[T, float]]) -> list[float]:
    """Each candidate's probability when they compete: P(i) = odds_i / (1 + Σ odds_j)."""
    odds = [_odds(p) for _, p in ranked]
    total = 1.0 + sum(odds)
    if math.isinf(total):
        return [1.0 / sum(math.isinf(o) for o in odds) if math.isinf(o) else 0.0 for o in odds]
    return [o / total for o in odds]


def decide(scored: Sequence[tuple[T, float]], policy: MatchPolicy = MatchPolicy()) -> Decision[T]:
    """Match only when one candidate is both likely and clearly ahead; otherwise ambiguous
    (ask for a date of birth or postcode) when anyone scores ``consider`` or more, else
    no match. Never more than one child is chosen."""
    ranked = tuple(sorted(scored, key=lambda pair: pair[1], reverse=True))
    if not ranked or ranked[0][1] < policy.consider:
        return Decision(DecisionKind.NO_MATCH, None, ranked)
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    share = shared_posterior(ranked)[0]
    if ranked[0][1] >= policy.accept and share >= policy.accept and ranked[0][1] - runner_up >= policy.margin:
        return Decision(DecisionKind.MATCH, ranked[0][0], ranked)
    return Decision(DecisionKind.AMBIGUOUS, None, ranked)
