"""Scoring a candidate: how likely a query and a registered child are the same child.

Scoring is Fellegi–Sunter: each field comparison falls in a level with m (probability
of that level for the same child) and u (for two different children) probabilities;
the likelihood ratio of the best reading of the names (as given, swapped, or any alias)
times the others' is turned into a posterior with the prior that the practitioner's
child is one particular child of the register (``MatchModel.population``).
``assess`` gives the same evidence as log2 posterior odds (what ``handlers.matching.decide``
decides on) with the candidate's :class:`Standing`: what its names and date allow it to become
(never accepted when neither name agrees, when no given name or only initials are typed, when it is
a probable sibling or twin, or when the date of birth is far from the child's), whatever its weight.

Name frequency: given the register's counts of children per first given name and family name
(``store.register.terms.count_keys`` / ``query_count_keys``; the store keeps them by blind index),
an exact name agreement weighs by the name's rarity instead of the table's average u.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Final

from rapidfuzz.distance import OSA, JaroWinkler

from handlers.matching.terms import Query
from store.register.nicknames import NAME_ROOTS, roots_of
from store.register.terms import (
    Identity,
    NameCounts,
    family_count_key,
    given_count_key,
    names_of,
    normalise_name,
    normalise_postcode,
    outward_code,
    phonetic_key,
)

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
    "garbled": (0.02, 0.0008),
    "initial": (0.005, 0.06),
    "disagree": (0.02, 0.88),
}
FAMILY_MU: Final[MuTable] = {
    "exact": (0.82, 0.004),
    "part": (0.02, 0.0002),
    "typo": (0.06, 0.0006),
    "phonetic": (0.02, 0.001),
    "fuzzy": (0.01, 0.006),
    "disagree": (0.07, 0.99),
    "both_missing": (0.5, 0.05),
}
"""``both_missing``: no family name typed for a child the register knows by a given name alone. Its m
and u are conditional on such a record (the others are not): half of the queries about her give no
family name, as she has none to give; one query in twenty about another child gives none. Hand-set,
as the others are; it weighs 3.3 bits where a family name not typed weighs nothing."""
DOB_MU: Final[MuTable] = {
    "exact": (0.86, 1 / 6575),
    "swap": (0.03, 1 / 6575),
    "year": (0.03, 2 / 6575),
    "digit": (0.04, 25 / 6575),
    "partial": (0.02, 0.012),
    "two_digits": (0.015, 0.03),
    "disagree": (0.005, 0.955),
}
POSTCODE_MU: Final[MuTable] = {
    "full": (0.70, 0.00001),
    "outward": (0.16, 0.0004),
    "outward_given": (0.88, 0.0004),
    "area": (0.04, 0.012),
    "disagree": (0.10, 0.988),
}
SEX_MU: Final[MuTable] = {"agree": (0.98, 0.5), "disagree": (0.02, 0.5)}


LevelTable = tuple[tuple[str, tuple[float, float]], ...]
"""A :data:`MuTable` frozen, as a :class:`MatchModel` holds it (models are hashable)."""


def frozen(table: MuTable) -> LevelTable:
    return tuple(sorted(table.items()))


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
    given: LevelTable | None = None
    family: LevelTable | None = None
    dob: LevelTable | None = None
    postcode: LevelTable | None = None
    sex: LevelTable | None = None
    """Comparison tables (:func:`frozen`); None: the module's (``GIVEN_MU`` …). Estimated ones
    come from ``benchmarks.matching.estimate`` (u from random pairs of the register, m by EM)."""
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
    given = dict(model.given) if model.given else GIVEN_MU
    family = dict(model.family) if model.family else FAMILY_MU
    return _Weights(
        _log_weights(given),
        _log_weights(family),
        _log_weights(dict(model.dob) if model.dob else DOB_MU),
        _log_weights(dict(model.postcode) if model.postcode else POSTCODE_MU),
        _log_weights(dict(model.sex) if model.sex else SEX_MU),
        prior,
        model.swap_penalty,
        model.alias_penalty,
        model.sibling_penalty,
        given["exact"][0],
        family["exact"][0],
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


def _given_level(query: tuple[str, ...], child: list[str], unknown: bool | None = None) -> str:
    """The comparison level of the given names. ``unknown``: True when the asked first given name
    is no registered child's and no known name (so a slip for a name, not a brother's or twin's
    name), False when a registered child bears it (so two slips away is another name), None when
    the register's counts are not at hand."""
    if not query:
        return "missing"
    if not child:
        return "disagree"  # typed, but the record holds none (a child known by one name): unchecked
    asked, first = query[0], child[0]
    if asked == first:
        return "exact_all" if len(query) > 1 and query == tuple(child[: len(query)]) else "exact"
    if len(asked) == 1:
        if _spaced_otherwise(query, child):
            return "typo"  # E Mma for Emma: a space struck after her first letter, not an initial
        return "initial" if asked == first[0] else "disagree"
    if not roots_of(asked).isdisjoint(roots_of(first)):
        return "nickname"
    if asked in child or (unknown is not False and any(word in child for word in query[1:])):
        # Her middle name typed first, or her middle name after a first name that no registered
        # child bears. Not after a name a registered child bears: "Mohammed Jayden" for Joshua
        # Jayden is his brother Mohammed Jayden's name, and a shared middle name is a family's.
        return "middle"
    if _spaced_otherwise(query, child):
        return "typo"  # Jayde N for Jayden, Sarajane for Sara Jane: one slip, not a short form
    if len(asked) >= 2 and first.startswith(asked) and not _one_letter_dropped(asked, first):
        return "prefix"  # Dec for Declan, Fin for Finley
    similarity = JaroWinkler.similarity(asked, first)
    if asked in NAME_ROOTS and first in NAME_ROOTS:
        return "fuzzy"  # two different real names that sound alike: Jack and Jake
    if unknown is False and asked[0] != first[0] and phonetic_key(asked) != phonetic_key(first):
        # Two registered names with other first letters (Holly and Molly, Ava and Eva): another
        # child's name, not a slip (slips seldom hit the first letter).
        return "fuzzy" if similarity >= 0.8 else "disagree"
    if similarity >= 0.9 or OSA.distance(asked, first, score_cutoff=1) <= 1:
        return "typo"
    if similarity >= 0.7 and phonetic_key(asked) == phonetic_key(first):
        return "phonetic"
    if (unknown is not False and _garbled(asked, first, similarity)) or (
        unknown and asked[0] == first[0] and OSA.distance(asked, first, score_cutoff=2) <= 2
    ):
        return "garbled"
    return "fuzzy" if similarity >= 0.8 else "disagree"


def _spaced_otherwise(query: tuple[str, ...], child: list[str]) -> bool:
    """The same letters as her first given name, or as all her given names, with a space more or
    less: "Jayde N" or "Ja Ck" (a space struck inside the name, as record-linkage corruption
    generators and hurried typists do), "Sarajane" for Sara Jane. Read word by word, the first
    is a short form ("Ja" of Jack) or an unlike name."""
    joined, held = "".join(query), "".join(child)
    return (len(query) > 1 or len(child) > 1) and joined in (child[0], held)


def _one_letter_dropped(asked: str, held: str) -> bool:
    """Her given name with its last letter missing (Alfi for Alfie, Isl for Isla, Kai for Kaia): one
    slip, weighed as a typo rather than as a short form, whose weight is far less. Whether the
    shorter is a name of its own, another child's, is asked of it as of every slip
    (``_a_slip_to_a_name``: Kai is Kaia's twin brother's name when registered children bear it),
    except when both are listed names (Eva for Evan, Lex for Lexi): a short form of other roots,
    asked by ``_another_name``."""
    if len(held) != len(asked) + 1:
        return False
    return not (asked in NAME_ROOTS and held in NAME_ROOTS)


def _garbled(asked: str, held: str, similarity: float) -> bool:
    """A badly mistyped form of the same name (two slips, or OCR), not another name.

    Only asked when the two are not both known names (Zoe and Amelia are two names). Kept narrow:
    the same first letter, five letters or more, alike (Jaro-Winkler 0.8) and two slips at most or
    very alike, because a twin's or sibling's name is often this close (Leila and Lily, Dylan and Daran).
    """
    if asked[0] != held[0] or min(len(asked), len(held)) < 5 or similarity < 0.8:
        return False
    return similarity >= 0.85 or OSA.distance(asked, held, score_cutoff=3) <= 2


def _family_level(query: str, child: str) -> str:
    if not query:
        return "missing" if child else "both_missing"  # no family name asked of a record with none
    if not child:
        return "disagree"  # typed, but the record holds none (a child known by one name): unchecked
    if query == child:
        return "exact"
    asked, held = query.replace(" ", ""), child.replace(" ", "")
    if asked == held:
        return "exact"
    if _initials(query):
        return "disagree"  # "S" for Shaw: an initial, never a slip or a sound-alike of a name
    if (" " in query or " " in child) and not set(query.split()).isdisjoint(child.split()):
        return "part"
    similarity = JaroWinkler.similarity(asked, held)
    if similarity >= 0.9 or OSA.distance(asked, held, score_cutoff=1) <= 1:
        return "typo"
    if similarity >= 0.7 and phonetic_key(asked) == phonetic_key(held):
        return "phonetic"
    return "fuzzy" if similarity >= 0.8 else "disagree"


def _initials(name: str) -> bool:
    """Whether a (normalised) name is only initials: "S", "S P"."""
    parts = name.split()
    return bool(parts) and all(len(part) == 1 for part in parts)


def _dob_level(asked: date | None, held: date) -> str:
    if asked is None:
        return "missing"
    if asked == held:
        return "exact"
    if asked.year == held.year and asked.month == held.day and asked.day == held.month:
        return "swap"
    if asked.month == held.month and asked.day == held.day and abs(asked.year - held.year) == 1:
        return "year"
    # Digits that differ, dashes included (they never differ): both zero-padded, always ten characters.
    wrong = sum(map(operator.ne, asked.isoformat(), held.isoformat()))
    if wrong == 1:
        return "digit"
    agree = (asked.year == held.year) + (asked.month == held.month) + (asked.day == held.day)
    if agree == 2:
        return "partial"
    return "two_digits" if wrong == 2 else "disagree"


def _postcode_level(readings: _Readings, held: str | None) -> str:
    code = normalise_postcode(held)
    if not readings.postcode or not code:
        return "missing"
    if readings.postcode == code:
        # A register holding only a child's outward code agrees on no more than the outward code.
        return "outward_given" if code == outward_code(code) else "full"
    if readings.outward and readings.outward == outward_code(code):
        # Only the outward code given: agreeing on it is all that could agree (m as for a full
        # postcode agreeing in full or in part), not a full postcode that half agrees.
        return "outward_given" if readings.postcode == readings.outward else "outward"
    area = "".join(c for c in readings.postcode[:2] if c.isalpha())
    return "area" if area and code.startswith(area) and not code[len(area)].isalpha() else "disagree"


_UNLIKE: Final = frozenset({"disagree", "fuzzy", "garbled"})
"""Given-name levels that are not the same name (a garbled one may still be, on the right day)."""
_ALIKE: Final = frozenset({"exact", "part", "typo", "phonetic"})
"""Family-name levels that agree."""
_GIVEN_AGREES: Final = frozenset({"exact_all", "exact", "nickname", "middle", "prefix", "typo", "phonetic"})
"""Given-name levels that agree (an initial alone does not: 26 guesses would find any child)."""


GIVEN_AGREEMENT: Final = {"exact_all": 4, "exact": 3, "nickname": 2, "middle": 1, "prefix": 0, "typo": 0, "phonetic": 0}
"""How closely an agreeing given-name level says "this name", to tell a household's children apart
(``decide._Households``), strongest first: all the given names as registered (or as many as typed,
in order); the first given name; a listed short form of it (Alexa for Alexandra: a form people give
that name, where a prefix or a slip is a form of no name in particular); a middle name typed first
(the child's own name, but one answered to less often than a nickname); a prefix, a slip or a
sound-alike (each a guess at the name, among which the household guard's letter count decides).
Not the weights: a slip weighs more than a nickname because another child's name is seldom one slip
away, but inside a household the question is which name was meant."""


_FAMILY_WITH: Final = _ALIKE | {"missing", "both_missing"}
"""Family-name levels under which a reading's given name is compared for ``Assessor.agreement``."""


_FAR_DATE_LEVELS: Final = frozenset({"two_digits", "disagree"})
"""Date levels that forbid acceptance (see :attr:`Standing.FAR_DATE`), unless the date is only two
digits out and both names agree in full or as registered (:attr:`Standing.TWO_SLIPS`)."""
_FULL_NAME_GIVEN: Final = frozenset({"exact_all", "exact", "nickname", "middle"})
_FULL_NAME_FAMILY: Final = frozenset({"exact", "part"})
"""Names that agree in full: the given name as registered, a nickname or a middle name; the family
name or one of its parts. Two slips in a date are commoner than a namesake on a nearby day (the
weight still has to carry it)."""
_WEAK: Final = frozenset({"typo", "phonetic", "prefix", "initial", "missing"})
_FAR_DATE: Final = frozenset({"disagree", "partial", "two_digits"})


class Standing(StrEnum):
    """What a candidate may become, whatever its weight."""

    OPEN = "open"
    """May be accepted on its weight."""
    SAME_DAY_GARBLED = "same_day_garbled"
    """Given name badly garbled, family name and date of birth agree: the child, unless a
    registered twin (same family name and date of birth) is also a candidate."""
    FAR_DATE = "far_date"
    """The date of birth given disagrees beyond the common slips (two digits or more, two of day,
    month and year wrong): a namesake or a relative as often as this child. Never accepted."""
    TWO_SLIPS = "two_slips"
    """Both names agree in full, or as registered with one slip in the family name (a brother's or
    sister's family name is the same, so that slip points to no relative), the date of birth is two
    digits out: the child, unless another candidate of the same family was born on the date given
    (then the query names a sibling or twin with this child's name)."""
    HOME_FAR_DATE = "home_far_date"
    """The given name exactly and the family name as registered or a typo of it, as typed (not
    swapped, not an alias), and the full postcode agree; the date of birth is far off: the child
    with its date mis-written (a record-linkage corruption generator's commonest uncorrected
    mistake), unless another candidate of the same family was born on the date given, as for
    :attr:`TWO_SLIPS`, or another candidate of the same family lives at that postcode (a
    household: the query may name an unregistered brother or sister, and the date is all that
    tells them apart). Another child of that name at the same full postcode is what it risks; the
    weight has to carry it."""
    HOUSEHOLD = "household"
    """Family name agrees, given name is another name (or garbled, with another date), a short
    form of the child's that is a name of its own of other roots (Alexa, Alexandra's, for
    Alexander; Jordan for Jordana), or one slip from the child's that is a name of its own (Theo
    for Thea, Kai for Kaia), listed or borne by registered children at ``REGISTERED_NAME_SHARE``
    (``_name_of_its_own``): likelier a brother, sister or twin (a twin shares her birthday and
    address too) than this child. Never accepted."""
    UNKNOWN_SURNAME = "unknown_surname"
    """The given name agrees; the family name is unlike the child's and no registered child bears it.
    A new surname (a step-parent's, an adopter's) is a surname people bear, and a misspelling of the
    child's resembles it: this is neither, and a given name with a birthday and an address does not
    find a child. So too a family name typed for a child the register knows by a given name alone:
    nothing checks it. Never accepted."""
    NAMES_INCOMPLETE = "names_incomplete"
    """Only an initial for the given or the family name, or one name alone (no given name, or a
    given name without the family name the child is registered by) unless that name, the exact date
    of birth and the full postcode are all the child's (``_at_home``). Initials would find any
    child, and one name with a birthday is a guess at any child of that name. Never accepted: the
    answer asks for the names in full."""
    NAMES_DISAGREE = "names_disagree"
    """Neither name agrees in any reading (as typed, swapped, or an alias). Never accepted, never
    offered as "more than one could match": a birthday and a postcode do not find a child."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """A candidate's log2 posterior odds of being the query's child, and its standing."""

    bits: float
    standing: Standing


@dataclass(frozen=True, slots=True)
class _NameReading:
    weight: float
    given: str
    family: str
    agrees: bool
    plain: bool = False
    """The best reading is the names as typed against the registered name (no swap, no alias)."""
    asked_family: str = ""
    """The family name the best reading takes from the query."""
    another_name: bool = False
    """The best reading's given name is a ``prefix`` of the child's that is a name of its own (listed
    or registered: ``_name_of_its_own``), of other roots than the child's (``_another_name``), or a
    ``typo`` or ``phonetic`` form of it that is such a name (``_a_slip_to_a_name``)."""


def _name_and_place(
    readings: _Readings,
    identity: Identity,
    weights: _Weights,
    counts: NameCounts | None,
    dob_level: str,
    unknown: tuple[bool | None, ...] | None = None,
) -> _NameReading:
    """The best reading of the names (as typed, swapped, or an alias) with the postcode.

    A shared address says "same household": it counts for the child only when the given name
    agrees, or only resembles it but the date of birth is close too (a brother or sister at the
    same address has a like name more often than the child has a misspelt name AND a wrong date),
    or when a garbled given name comes with the family name and the exact date of birth.
    """
    place = weights.postcode[_postcode_level(readings, identity.postcode)]
    far_date = dob_level in _FAR_DATE
    best = _NameReading(-math.inf, "missing", "missing", False)
    agrees = False
    if unknown is None:
        unknown = _unknown_names(readings, counts)
    for number, (given, family) in enumerate(names_of(identity)):
        child_given = given.split()
        penalty = weights.alias if number else 0.0
        for reading, (asked_given, asked_family, swapped) in enumerate(readings.orientations):
            given_level = _given_level(asked_given, child_given, unknown[reading])
            family_level = _family_level(asked_family, family)
            agrees = agrees or given_level in _GIVEN_AGREES or family_level in _ALIKE
            weight = _given_weight(given_level, child_given, weights, counts)
            weight += _family_weight(family_level, family, weights, counts) + penalty
            if swapped:
                weight += weights.swap
            if given_level == "garbled" and family_level in _ALIKE and dob_level == "exact":
                weight += place  # the child's own surname, birthday and address, its name mistyped
            elif given_level in _UNLIKE:  # an address names a household, not a child
                weight += min(place, 0.0)
                if family_level in _ALIKE:
                    weight += weights.sibling
            elif far_date and given_level in _WEAK:
                weight += min(place, 0.0)
            else:
                weight += place
            if weight > best.weight:
                best = _NameReading(
                    weight,
                    given_level,
                    family_level,
                    False,
                    number == 0 and reading == 0,
                    asked_family,
                    (given_level == "prefix" and _another_name(asked_given[0], child_given[0], counts, weights))
                    or (given_level in _SLIP_LEVELS and _a_slip_to_a_name(asked_given, child_given, counts, weights)),
                )
    if best.weight == -math.inf:
        return _NameReading(place, "missing", "missing", agrees)
    return replace(best, agrees=agrees)


def _another_name(asked: str, held: str, counts: NameCounts | None, weights: _Weights) -> bool:
    """A short form typed that is a name of its own, of other roots than the child's (were they
    shared, it would be a ``nickname``): Alexa is Alexandra's, not a short Alexander; Eva is not
    Evan; Noel is not Noelle. Both listed, that is enough. Otherwise the typed name must be of four
    letters or more, the child's name longer by two letters at most, and the typed name one of its
    own (``_name_of_its_own``: listed, or borne by registered children at
    ``REGISTERED_NAME_SHARE``, and no spelling of hers): Daniel is not Daniella, Jordan not
    Jordana, Carl not Carla (a brother's name, as Theo is not Thea). A shorter typed name or a
    longer ending is the shape of a short form the list lacks (Cal of Calen, Isa of Isaan: the
    benchmark's nicknames lost 4.3 points of 91.2 when any listed prefix counted, 2.4 with three
    letters allowed). The child's name with only its last letter dropped is no short form but a
    slip (``_one_letter_dropped``), asked by ``_a_slip_to_a_name`` (Kai for Kaia, May for Maya).
    Weighed as the prefix it is, but another name, as a brother's or sister's is."""
    if asked in NAME_ROOTS and held in NAME_ROOTS:
        return True
    if len(asked) < 4 or len(held) - len(asked) > 2:
        return False
    return _name_of_its_own(asked, held, counts, weights)


def _name_of_its_own(asked: str, held: str, counts: NameCounts | None, weights: _Weights) -> bool:
    """Whether a name typed close to the child's (of other roots: a listed nickname is hers) is
    another child's name: the one home of that question for slips and short forms. Two listed names
    are two names whatever ``_spelling`` folds (Noel and Noelle, Michel and Michelle, Noah and Noa:
    the list holds true spellings of one name in one group, Isabel and Isabelle, Lily and Lilly).
    Otherwise a spelling of the child's own name is hers (Isabell for Isabelle, Jaiden for
    Jayden), and any other name is its own when the list holds it or registered children bear it
    at ``REGISTERED_NAME_SHARE`` of the register (``_registered_name``: Mario for Maria, Kai for
    Kaia). Bearers under the share are a misspelling a register holds (Catherin): a slip."""
    if asked in NAME_ROOTS and held in NAME_ROOTS:
        return True
    if _spelling(asked) == _spelling(held):
        return False
    return asked in NAME_ROOTS or _registered_name(asked, counts, weights)


REGISTERED_NAME_SHARE: Final = 2e-5
"""The share of the register (``MatchModel.population``) that must bear a given name for it to be a
name in its own right rather than a misspelling a register holds: one child in 50,000 (220 of a
national register of 11 million, 2 of the benchmark's 100,000; on a register of under 50,000
children any registered name is one, as wrongly holding a slip costs less than a twin's answer)."""


def _registered_name(name: str, counts: NameCounts | None, weights: _Weights) -> bool:
    """Whether registered children bear ``name`` as their first given name at
    ``REGISTERED_NAME_SHARE`` of the register or more: a name of its own, another child's, when it
    is typed one slip from the child's (Mario for Maria, Jean for Joan, Jordan for Jordana).

    The Fellegi–Sunter reading of the register's counts: a slip rarely lands on a name, and the
    likelier it is that a brother or sister bears the name typed, the less a slip explains it; an
    unregistered twin shares the family name, birthday and address, so nothing else typed tells
    them apart, and giving her sibling's signposts is the worst answer there is. The name lists
    (``store.register.nicknames``) know only the names written there; a national register knows
    nearly every name children bear. It also holds misspellings (a registrar's slip, Catherin for
    Catherine), each borne by a few children at most: the share keeps them slips. A spelling of
    the child's own name (Lilly for Lily, Jaiden for Jayden: ``_spelling``) and a listed nickname
    are hers, however many bear them; the callers ask this only of other names.

    The price: a slip or a spelling that lands on another name borne so (Aiden typed for an Aidan,
    Keira for a Kiera: spellings ``_spelling`` does not fold) is held as "more than one record
    could match", never accepted: 4 of FEBRL's 7,894 present children and 20 of the benchmark's
    16,112 (seed 8) when this rule came in, where wrong children and absent children matched did
    not rise. False when the counts are not at hand."""
    count = counts.get(given_count_key(name), 0) if counts else 0
    return count > 0 and count >= REGISTERED_NAME_SHARE * weights.population


_SLIP_LEVELS: Final = frozenset({"typo", "phonetic"})
"""The given-name levels at which a name typed may be another child's (``_a_slip_to_a_name``)."""


def _a_slip_to_a_name(asked: tuple[str, ...], held: list[str], counts: NameCounts | None, weights: _Weights) -> bool:
    """A ``typo`` of the child's first given name, or a ``phonetic`` form of it (sounding alike, more
    than one letter apart: Leo for Leah, Cole for Chloe), that is a name of its own, listed or
    registered, of other roots than hers (``_name_of_its_own``; were the roots shared, it would be
    a ``nickname``). Theo is one letter from Thea: her unregistered twin brother's name as likely
    as a slip, and he shares her family name, her birthday and her address, so nothing else typed
    tells them apart. Weighed as the slip it may be, but another name, as ``_another_name`` (Eva
    is not Evan). Not a space struck or left out (Sara Jane for Sarajane: her own letters). Her
    name with an ending put on is another, listed or not (``_other_form``: Simone for Simon).

    A registered name counts only at a share no misspelling reaches (``_registered_name``: Mario
    for Maria, Jean for Joan, Kai for Kaia), and never a spelling of hers: a national register
    holds a child of nearly every spelling (Lilly for Lily, Jaiden for Jayden, Elliott for Elliot
    are the same child's name misspelt as often as another's), so "a registered child bears it"
    alone would hold back the commonest slips there."""
    if _spaced_otherwise(asked, held):
        return False
    if _other_form(asked[0], held[0]):
        return True
    return _name_of_its_own(asked[0], held[0], counts, weights)


def _other_form(asked: str, held: str) -> bool:
    """The child's name typed with an "a" or "e" put after its last consonant: Martina or Simone for
    Martin or Simon, Christiana for Christian. Her registered twin brother's name with that ending
    is as likely her own name (listed or not: a national register holds forms no list does) as a
    slip, and nothing else typed tells twins apart. Not after a doubled letter (Isabelle for
    Isabell), a vowel (Alfie for Alfi) or an H.

    The price: a spelling of one name that differs so (Claire for Clair, Christine for Christin) is
    held as "more than one record could match" too; another letter (Erick for Eric) is still a slip.
    Only this way round: typed without the ending (Jordan for a registered Jordana) it could as well
    be her name with its last letter dropped (Catherin for Catherine), which no list here tells from
    a brother's name."""
    return (
        len(held) >= 3
        and len(asked) == len(held) + 1
        and asked.startswith(held)
        and asked[-1] in "AE"
        and held[-1] not in "AEIOUYH"
        and held[-1] != held[-2]
    )


_DOUBLED = re.compile(r"(.)\1+")
_A_SOUNDED = re.compile(r"A[YI](?=[^AEIOUY])")


def _spelling(name: str) -> str:
    """A name as it sounds, for telling a spelling of the same name from another name: doubled
    letters single, an "h" after the first letter and a final "e" left out, "y" as "i", a final
    "ey" as "i", and an "ay" or "ai" before a consonant as "a". Freya and Freyja, Oliver and
    Olliver, Isabelle and Isabell, Mia and Miah, Alfie and Alfi, Harry and Harri, Ella and Ela,
    Lacey and Lacy, Evey and Evie, Hayley and Haley, Jayden and Jaden, Layla and Laila are each one
    name spelt two ways (the list holds only one of each); Theo and Thea, Louis and Lois, Leo and
    Lea are two names. So are a brother's and a sister's names the fold makes alike (Noel and
    Noelle, Michel and Michelle): the list holds both, and two listed names are two names
    (``_name_of_its_own``). Not folded, and so held as "more than one record could match" when
    registered children bear both: Kiera and Keira, Leila and Layla, Oskar and Oscar."""
    folded = name.upper()
    if len(folded) > 3 and folded.endswith("EY"):
        folded = folded[:-2] + "I"
    folded = _A_SOUNDED.sub("A", folded).replace("Y", "I")
    folded = folded[:1] + folded[1:].replace("H", "").replace("J", "")
    folded = _DOUBLED.sub(r"\1", folded)
    return folded[:-1] if len(folded) > 2 and folded.endswith("E") else folded


def _unknown_names(readings: _Readings, counts: NameCounts | None) -> tuple[bool | None, ...]:
    """``_unknown_name`` of each reading's given names (the same for every candidate of a query)."""
    return tuple(_unknown_name(given, counts) for given, _, _ in readings.orientations)


def _unknown_name(given: tuple[str, ...], counts: NameCounts | None) -> bool | None:
    """True: no registered child bears this first given name and it is no known name (a
    misspelling); False: a registered child bears it or it is listed (a spelling someone has, which
    keeps two slips or another first letter from reading as her name garbled); None: the
    register's counts are not at hand (empty counts say nothing). Whether the name typed is a name
    of its own, another child's, when it is one slip or a short form from hers is another question,
    asked in one place (``_name_of_its_own``, at ``REGISTERED_NAME_SHARE``): a register holds
    misspellings too, a few children each."""
    if not counts or not given:
        return None
    if counts.get(given_count_key(given[0])):
        return False
    return given[0] not in NAME_ROOTS


def _given_weight(level: str, child_given: list[str], weights: _Weights, counts: NameCounts | None) -> float:
    """The first given name agreeing weighs by its rarity in the register. All her given names
    agreeing (``exact_all``) agree on the first too, so they weigh at least that, and at least the
    table's average for full names; not the two added: rare first and middle names run in families
    (a namesake cousin), and adding them matched a generated namesake of all three names born
    four months apart (benchmarks/matching/README.md, thirteenth pass)."""
    if level in ("exact", "exact_all") and counts:
        count = counts.get(given_count_key(child_given[0]))
        first = _frequency_weight(weights.given_exact_m, count, weights.given["exact"], weights)
        return first if level == "exact" else max(weights.given[level], first)
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


def _weigh(
    query: Query, identity: Identity, model: MatchModel, counts: NameCounts | None
) -> tuple[float, _NameReading, str]:
    return _weigh_prepared(_prepare(query), _weights(model), identity, counts)


def _weigh_prepared(
    readings: _Readings,
    weights: _Weights,
    identity: Identity,
    counts: NameCounts | None,
    unknown: tuple[bool | None, ...] | None = None,
) -> tuple[float, _NameReading, str]:
    dob_level = _dob_level(readings.dob, identity.date_of_birth)
    names = _name_and_place(readings, identity, weights, counts, dob_level, unknown)
    total = names.weight + weights.dob[dob_level]
    held_sex = (identity.sex or "").strip().upper()[:1]
    if readings.sex and held_sex:
        total += weights.sex["agree" if readings.sex == held_sex else "disagree"]
    return total, names, dob_level


def comparison_levels(query: Query, identity: Identity, counts: NameCounts | None = None) -> dict[str, str]:
    """Each field's comparison level for the names as typed (what parameter estimation counts)."""
    readings = _prepare(query)
    given, family, _ = readings.orientations[0]
    held_given, held_family = names_of(identity)[0] if names_of(identity) else ("", "")
    return {
        "given": _given_level(given, held_given.split(), _unknown_name(given, counts)),
        "family": _family_level(family, held_family),
        "dob": _dob_level(readings.dob, identity.date_of_birth),
        "postcode": _postcode_level(readings, identity.postcode),
    }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a candidate weighs what it weighs: the comparison levels of the reading the scorer took
    (names as typed, swapped or an alias), and each part's weight in bits. For reading misses."""

    given: str
    family: str
    dob: str
    postcode: str
    as_typed: bool
    names_and_place_bits: float
    dob_bits: float
    sex_bits: float
    prior_bits: float
    assessment: Assessment
    """The sum of the bits above, and what the names and date allow."""


def explain(
    query: Query, identity: Identity, model: MatchModel = DEFAULT_MODEL, counts: NameCounts | None = None
) -> Explanation:
    """:func:`assess`, with the levels and weights it was made of."""
    readings, weights = _prepare(query), _weights(model)
    total, names, dob_level = _weigh_prepared(readings, weights, identity, counts)
    bits = 1 / math.log(2)
    return Explanation(
        names.given,
        names.family,
        dob_level,
        _postcode_level(readings, identity.postcode),
        names.plain,
        names.weight * bits,
        weights.dob[dob_level] * bits,
        (total - names.weight - weights.dob[dob_level]) * bits,
        weights.prior * bits,
        assess(query, identity, model, counts),
    )


def match_weight(
    query: Query, identity: Identity, model: MatchModel = DEFAULT_MODEL, counts: NameCounts | None = None
) -> float:
    """The log likelihood ratio (natural log) that ``query`` describes ``identity``.

    ``counts`` (from :func:`query_count_keys`: how many registered children bear each of the
    query's names) makes exact name agreement weigh by the name's rarity; without it every
    name has the table's average u.
    """
    return _weigh(query, identity, model, counts)[0]


def assess(
    query: Query, identity: Identity, model: MatchModel = DEFAULT_MODEL, counts: NameCounts | None = None
) -> Assessment:
    """The log2 posterior odds that ``query`` describes ``identity`` (the match weight plus the
    prior of one child in ``model.population``), and what the names allow (:class:`Standing`)."""
    return Assessor(query, model, counts)(identity)


class Assessor:
    """:func:`assess` for one query against many candidates: what depends on the query, the model
    and the counts alone (its readings, the weights, whether each reading's given name is a
    registered one) is worked out once, not once a candidate. The same result as ``assess``."""

    __slots__ = ("_counts", "_readings", "_unknown", "_weights")

    def __init__(self, query: Query, model: MatchModel = DEFAULT_MODEL, counts: NameCounts | None = None) -> None:
        self._readings = _prepare(query)
        self._weights = _weights(model)
        self._counts = counts
        self._unknown = _unknown_names(self._readings, counts)

    def __call__(self, identity: Identity) -> Assessment:
        return _assess(self._readings, self._weights, identity, self._counts, self._unknown)

    def agreement(self, identity: Identity) -> int | None:
        """How closely the typed given names agree with the child's (:data:`GIVEN_AGREEMENT`, the
        best over every reading and alias); None when they do not agree. Given names typed exactly as
        registered, all of them, rank as ``exact_all``: "Mia" is her sister Mia's name in full, and
        only the first of Mia Rose's. Only readings whose family name agrees with the name's (or none
        typed) count: "Harrison" read as a given name is no nickname of Harry Harrison, nor "Aria
        Morris" an alias Aria Carlfield of Ellie Morris."""
        best: int | None = None
        for given, family in names_of(identity):
            held = given.split()
            for reading, (asked, asked_family, _) in enumerate(self._readings.orientations):
                if _family_level(asked_family, family) not in _FAMILY_WITH:
                    continue  # a reading whose family name is not this name's says nothing of its given name
                if asked and list(asked) == held:
                    return GIVEN_AGREEMENT["exact_all"]
                rank = GIVEN_AGREEMENT.get(_given_level(asked, held, self._unknown[reading]))
                if rank is not None and (best is None or rank > best):
                    best = rank
        return best


def _assess(
    readings: _Readings,
    weights: _Weights,
    identity: Identity,
    counts: NameCounts | None,
    unknown: tuple[bool | None, ...],
) -> Assessment:
    total, names, dob_level = _weigh_prepared(readings, weights, identity, counts, unknown)
    bits = (total + weights.prior) / math.log(2)
    if not names.agrees:
        standing = Standing.NAMES_DISAGREE
    elif (
        names.given == "initial"
        or _initials(names.asked_family)
        or ("missing" in (names.given, names.family) and not _at_home(readings, names, dob_level, identity))
    ):
        standing = Standing.NAMES_INCOMPLETE
    elif names.family == "disagree" and (not identity.family_name or _unregistered_family(names.asked_family, counts)):
        standing = Standing.UNKNOWN_SURNAME
    elif names.family in _ALIKE and (names.given in _UNLIKE or names.another_name):
        same_day = names.given == "garbled" and dob_level == "exact"
        standing = Standing.SAME_DAY_GARBLED if same_day else Standing.HOUSEHOLD
    elif dob_level in _FAR_DATE_LEVELS:
        full = names.given in _FULL_NAME_GIVEN and names.family in _FULL_NAME_FAMILY
        if dob_level == "two_digits" and (full or _as_registered(names)):
            standing = Standing.TWO_SLIPS
        elif _as_registered(names) and _postcode_level(readings, identity.postcode) == "full":
            standing = Standing.HOME_FAR_DATE
        else:
            standing = Standing.FAR_DATE
    else:
        standing = Standing.OPEN
    return Assessment(bits, standing)


def _at_home(readings: _Readings, names: _NameReading, dob_level: str, identity: Identity) -> bool:
    """One name alone that says all the rest: the family name as registered and as typed, or the
    given name as registered (a one-word query reads as either), the date of birth exactly, and the
    full postcode the child's. The one child it could also be is a twin at that address: a
    registered one is held back in ``decide.choose`` (born that day, same household), as the issue
    asks of twins; an unregistered one nothing could tell apart. Without the postcode, or with only
    its outward code, one name and a birthday are a guess at any child of that name.

    The one name may carry one slip (``typo``: "Cambpell", "Madelnie"), as a record-linkage
    corruption generator leaves it: a slip points to no one else at that address on that day. A
    twin shares the family name, so a slip in it tells no twin apart and risks no more than the name
    as registered does; a slip in a given name that is another name, listed or registered (Theo for
    Thea: ``another_name``), may be an unregistered twin's, and is not taken for her.

    A slip is one letter wrong, missing, extra or turned in the whole of what was typed (``_one_slip``):
    not a name merely alike (Richardson for Richards, Masonry for Mason: another family's), nor her
    name with another word beside it, nor a slip in a name of fewer than ``SLIP_AT_HOME_LETTERS``
    letters, typed or hers ("Xi" is one slip from Li: one who knows a child's birthday and address
    could find her by trying a few such words). Her given name as registered, typed alone or with
    her next given names, is hers; another word beside it is a name nothing agreed with."""
    given_words, family, _ = readings.orientations[0]
    typed = "".join(given_words) + family  # the one name, as typed, whole
    if names.given == "missing":
        slip = names.family == "typo" and _one_slip(typed, identity.family_name)
        one_name = names.plain and (names.family == "exact" or slip)
    else:
        given = normalise_name(identity.given_names).split()
        held = ["".join(given[: n + 1]) for n in range(len(given))]
        exact = names.given in ("exact", "exact_all") and (len(given_words) + len(family.split()) == 1 or typed in held)
        slip = names.given == "typo" and not names.another_name and _one_slip(typed, *held)
        one_name = exact or slip
    return one_name and dob_level == "exact" and _postcode_level(readings, identity.postcode) == "full"


SLIP_AT_HOME_LETTERS: Final = 5
"""The fewest letters a name typed alone, and the child's, may have for a slip in it to be hers."""


def _one_slip(typed: str, *held: str) -> bool:
    """Whether ``typed`` (normalised) is one slip (``OSA``: a letter wrong, missing, extra, or two
    turned) from one of the ``held`` names, spaces and hyphens aside, both of
    ``SLIP_AT_HOME_LETTERS`` letters or more."""
    asked = typed.replace(" ", "").replace("-", "")
    if len(asked) < SLIP_AT_HOME_LETTERS:
        return False
    for name in held:
        name = normalise_name(name).replace(" ", "").replace("-", "")
        if len(name) >= SLIP_AT_HOME_LETTERS and OSA.distance(asked, name, score_cutoff=1) <= 1:
            return True
    return False


def _unregistered_family(family: str, counts: NameCounts | None) -> bool:
    """Whether no registered child bears ``family`` (False when the register's counts are not at hand)."""
    return bool(counts) and bool(family) and not (counts or {}).get(family_count_key(family))


def _as_registered(names: _NameReading) -> bool:
    """Both names as registered, as typed (not swapped, not an alias, not a nickname): the given
    name exactly, the family name exactly or with one slip (a brother's or sister's family name is
    the same, so a slip in it points to no relative; a slip in a given name may be a sibling's name)."""
    return names.plain and names.given in ("exact", "exact_all") and names.family in ("exact", "typo")


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


def query_count_keys(query: Query) -> frozenset[str]:
    """The counts a query's scoring may use: each reading's given and family name."""
    keys: set[str] = set()
    for given, family, _ in _prepare(query).orientations:
        if given:
            keys.add(given_count_key(given[0]))
        if family:
            keys.add(family_count_key(family))
    return frozenset(keys)
