"""The match decision: match / ambiguous / no match from weighed candidates.

Decisions are taken on match weights, not on probabilities: each candidate carries its log2
posterior odds (``handlers.matching.score.assess``: the Fellegi-Sunter match weight plus the
prior of one child in the register). Probabilities saturate near 1.0 (two look-alikes both at
0.9999 have no room left between them, and a 1.0000 share against 0.0000 could still fail a margin
on raw scores); weights keep their distance. A child is chosen only when its weight reaches
``accept`` and leads everyone else together by ``margin`` bits, and when its names allow it
(:class:`~handlers.matching.score.Standing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, Generic, TypeVar

from rapidfuzz.distance import OSA

from handlers.matching.score import Assessor, MatchModel, Standing
from handlers.matching.terms import Query
from store.register.nicknames import same_person_name
from store.register.terms import (
    Identity,
    NameCounts,
    names_of,
    normalise_name,
    normalise_postcode,
    outward_code,
    phonetic_key,
)

T = TypeVar("T")


class DecisionKind(StrEnum):
    MATCH = "match"
    AMBIGUOUS = "ambiguous"
    NO_MATCH = "no_match"


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    """Thresholds in bits (log2 posterior odds; 10 bits ≈ 1,000 to 1).

    Accept the best candidate when its weight is at least ``accept`` and it leads the others
    (their odds summed: ``log2 Σ 2^w``, never less than the runner-up) by at least ``margin``.
    When that fails but some candidate weighs ``consider`` or more, the answer is ambiguous (ask
    for more detail); otherwise no match.
    """

    accept: float = 10.0
    margin: float = 8.0
    consider: float = 0.0
    far_date_extra: float = 2.0
    """Bits above ``accept`` that names and a full postcode must reach to outweigh a date of birth
    that disagrees (:attr:`~handlers.matching.score.Standing.HOME_FAR_DATE`): the date is the field
    that tells same-named children apart, so without it the rest must say four times as much. On
    FEBRL, whose postcodes are suburbs, an absent child reached 10.4 bits on a namesake at its
    postcode; the right children so accepted weigh 10.2 to 30."""


@dataclass(frozen=True, slots=True)
class Decision(Generic[T]):
    kind: DecisionKind
    best: T | None
    ranked: tuple[tuple[T, float], ...]
    """Candidates with their weights (log2 posterior odds), heaviest first."""
    exact: bool = False
    """A match whose names and date of birth are the child's as typed (``typed_exactly``): only
    ``choose`` finds it so; any other match may differ from what was typed."""


def _log2_sum(bits: Sequence[float]) -> float:
    """log2 of Σ 2^b, without overflow; -inf for nothing."""
    if not bits:
        return -math.inf
    top = max(bits)
    return top + math.log2(sum(2.0 ** (b - top) for b in bits))


def shared_posterior(ranked: Sequence[tuple[T, float]]) -> list[float]:
    """Each candidate's probability when they compete: P(i) = odds_i / (1 + Σ odds_j), odds = 2^weight."""
    bits = [w for _, w in ranked]
    total = _log2_sum([0.0, *bits])
    return [2.0 ** (w - total) for w in bits]


def decide(scored: Sequence[tuple[T, float]], policy: MatchPolicy = MatchPolicy()) -> Decision[T]:
    """Match only when one candidate is both heavy enough and clearly ahead of all the others
    together; otherwise ambiguous (ask for more) when anyone weighs ``consider`` or more, else no
    match. Never more than one child is chosen."""
    ranked = tuple(sorted(scored, key=lambda pair: pair[1], reverse=True))
    if not ranked or ranked[0][1] < policy.consider:
        return Decision(DecisionKind.NO_MATCH, None, ranked)
    lead = ranked[0][1] - _log2_sum([w for _, w in ranked[1:]])
    if ranked[0][1] >= policy.accept and lead >= policy.margin:
        return Decision(DecisionKind.MATCH, ranked[0][0], ranked)
    return Decision(DecisionKind.AMBIGUOUS, None, ranked)


def _family(identity: Identity) -> str:
    """The family a candidate belongs to, for the twin and sibling guards: its family name's
    sound-alike key. Never the postcode: brothers, sisters and twins placed apart in care or in
    split households live at different addresses, and they are this service's children."""
    family = normalise_name(identity.family_name)
    return phonetic_key(family) if family else ""


def choose(
    query: Query,
    candidates: Sequence[tuple[T, Identity]],
    model: MatchModel,
    policy: MatchPolicy = MatchPolicy(),
    counts: NameCounts | None = None,
) -> Decision[T]:
    """Weigh each candidate (in the order given; ties keep it), apply what the names allow, decide.

    - Names that disagree (neither agrees in any reading): below ``consider``: never a match, nor
      ambiguous (the answer is the same words either way: ``handlers.search.not_found_text``).
    - A probable sibling or twin (family agrees, given name does not), or a date of birth far from
      the child's: below ``accept``.
    - Only an initial for a name, or no given name without the exact date and the full postcode
      (``Standing.NAMES_INCOMPLETE``): below ``accept``.
    - A child whose household (registered at the same postcode, family names sharing a part:
      Smith-Jones and Jones step-brothers are one) holds another candidate whose first given name is
      a word typed, when it is none of this child's names (his brother Theo is not a slip for Thea,
      nor Mohammed Jayden a middle name of Joshua Jayden); or holds another candidate born on the
      date typed, when this child was not; or another whose given names agree with those typed at
      least as closely (``score.GIVEN_AGREEMENT``: all as registered, first, nickname, middle, a
      prefix or slip), unless only as closely and the date typed is this child's birthday and not
      the other's, or the other is a twin (Mia, beside her sister Mia Rose; "Alexa", Alexandra's
      short form, on her brother Alexander's birthday; "Dani" for twins Daniel and Danielle leaves
      both open, and too close); or another whose first given
      name a typed word is a nearer slip of than of this child's (Teo: Theo, not Thea; a word that
      is this child's own, its family name or a listed form of its name alone, is no slip): below
      ``accept``. The query names the relative, or an unregistered child of that household, as
      likely as this one; so against a child of another household such a child still weighs in
      full when the margin is reckoned.
    - A badly garbled given name with the family name and exact date of birth: accepted on its
      weight, unless another candidate shares that family name and date, wherever it lives (a
      registered twin, perhaps placed apart).
    - Both names in full (or as registered, the family name perhaps with a typo) with a date two
      digits out, or both names as registered at the full postcode with a date further out:
      accepted on its weight, unless another candidate of that family name, wherever it lives, was
      born on the date given.
      The latter only ``far_date_extra`` bits above ``accept``, and not when a brother or sister is
      registered at that address (a household with children born on other days, where the query
      may name an unregistered one: the date is all that tells them apart).
    """
    weigh = Assessor(query, model, counts)  # the query's side worked out once, not once a candidate
    # Each candidate weighed, with its family (``_family``) worked out once for the guards below.
    assessed = [(ref, identity, weigh(identity), _family(identity)) for ref, identity in candidates]
    days: dict[tuple[str, object], int] = {}
    for _, identity, _, family in assessed:
        day = (family, identity.date_of_birth)
        days[day] = days.get(day, 0) + 1
    born_that_day = {family for _, identity, _, family in assessed if identity.date_of_birth == query.date_of_birth}
    homes: dict[tuple[str, str], int] = {}
    if any(found.standing is Standing.HOME_FAR_DATE for _, _, found, _ in assessed):
        for _, identity, _, family in assessed:
            home = (family, normalise_postcode(identity.postcode))
            homes[home] = homes.get(home, 0) + 1
    relatives = _Households(query, [identity for _, identity, _, _ in assessed], weigh.agreement)
    below_accept = math.nextafter(policy.accept, -math.inf)
    scored: list[tuple[T, float]] = []
    held_at_home: set[int] = set()  # held by its household's guard (``_Households.named_or_born``)
    for number, (ref, identity, found, family) in enumerate(assessed):
        bits = found.bits
        household = False
        if found.standing is Standing.NAMES_DISAGREE:
            bits = min(bits, policy.consider - 1.0)
        elif (
            found.standing
            in (Standing.HOUSEHOLD, Standing.FAR_DATE, Standing.UNKNOWN_SURNAME, Standing.NAMES_INCOMPLETE)
            or (household := relatives.named_or_born(number))
            or (found.standing is Standing.SAME_DAY_GARBLED and days[family, identity.date_of_birth] > 1)
            or (found.standing in (Standing.TWO_SLIPS, Standing.HOME_FAR_DATE) and family in born_that_day)
            or (
                found.standing is Standing.HOME_FAR_DATE
                and (
                    homes[family, normalise_postcode(identity.postcode)] > 1
                    or bits < policy.accept + policy.far_date_extra
                )
            )
        ):
            bits = min(bits, below_accept)
            if household:
                held_at_home.add(number)
        scored.append((ref, bits))
    decision = decide(scored, policy)
    if decision.kind is DecisionKind.MATCH:
        best = next(number for number, (ref, _, _, _) in enumerate(assessed) if ref == decision.best)
        if held_at_home - relatives.of(best):
            # A child held by its household's guard is held as a name the query may mean as well as
            # its relative's, not as weaker evidence: against a child of another household it weighs
            # in full ("Dani Reed" at the Reed twins' address is not Danielle Reid elsewhere).
            others = [
                assessed[number][2].bits if number in held_at_home and number not in relatives.of(best) else bits
                for number, (_, bits) in enumerate(scored)
                if number != best
            ]
            if scored[best][1] - _log2_sum(others) < policy.margin:
                return Decision(DecisionKind.AMBIGUOUS, None, decision.ranked)
        decision = replace(decision, exact=typed_exactly(query, assessed[best][1]))
    return decision


class _Households:
    """The candidates by household: registered at the same postcode, with family names that share a
    part as ``_family`` reads each (Kian Smith-Jones and his step-brother Kyan Jones are one
    household; Smith-Jones and Jones are different families to the twin guards, which look
    everywhere). Which of them bear a typed word as their first given name, which were born on the
    date typed, and how closely each agrees with the given name typed (``Assessor.agreement``). For
    the guard in ``choose``. Every typed word counts, not the given name as parsed alone: "Anderson
    Theo" is read both ways, and "Johnson Mohammed Jayden" holds Mohammed wherever the parser puts it."""

    __slots__ = (
        "_agreement",
        "_born",
        "_candidates",
        "_dob",
        "_first",
        "_firsts",
        "_homes",
        "_members",
        "_named",
        "_ranks",
        "_typed",
    )

    def __init__(
        self,
        query: Query,
        candidates: Sequence[Identity],
        agreement: Callable[[Identity], int | None],
    ) -> None:
        given = normalise_name(query.given_names).split()
        self._first = given[0] if given else ""
        typed = {*given, *normalise_name(query.family_name).split()}
        self._typed = typed
        self._dob = query.date_of_birth
        self._agreement = agreement
        self._ranks: dict[int, int | None] = {}
        self._homes: list[frozenset[tuple[str, str]]] = []
        self._members: dict[tuple[str, str], list[int]] = {}
        self._named: dict[tuple[str, str], set[str]] = {}
        self._born: set[tuple[str, str]] = set()
        self._firsts: dict[tuple[str, str], set[str]] = {}  # the first given names registered there
        for number, identity in enumerate(candidates):
            homes = _homes(identity)
            self._homes.append(homes)
            held = normalise_name(identity.given_names).split()
            for home in homes:
                self._members.setdefault(home, []).append(number)
                if held:
                    self._firsts.setdefault(home, set()).add(held[0])
                if held and held[0] in typed:
                    self._named.setdefault(home, set()).add(held[0])
                if self._dob is not None and identity.date_of_birth == self._dob:
                    self._born.add(home)
        self._candidates = candidates

    def named_or_born(self, number: int) -> bool:
        """Whether candidate ``number`` is held by its household: another child there bears a typed
        word as its first given name, when that word is none of this child's names (registered or
        alias) or is the given name typed first and not this child's first (Bradley Mohammed is not
        "Mohammed" when his brother Mohammed Theo lives with him); or agrees with the given name
        typed as closely or more (``_agrees_as_well``); or bears the name a typed word is a nearer
        slip of; or was born on the date typed (this child was not)."""
        homes = self._homes[number]
        if not homes:
            return False  # no family or no address: no household to tell apart
        identity = self._candidates[number]
        names = names_of(identity)
        named = set().union(*(self._named.get(home, set()) for home in homes))
        if named:
            firsts = {given.split()[0] for given, _ in names if given}
            words = {word for given, known in names for word in (*given.split(), *known.split())}
            if not named <= words or (self._first in named and self._first not in firsts):
                return True
        if self._agrees_as_well(number):
            return True
        if self._nearer_a_relative(number, homes, names):
            return True
        return any(home in self._born for home in homes) and identity.date_of_birth != self._dob

    def _rank(self, number: int) -> int | None:
        if number not in self._ranks:
            self._ranks[number] = self._agreement(self._candidates[number])
        return self._ranks[number]

    def of(self, number: int) -> set[int]:
        """The other candidates of candidate ``number``'s household."""
        return {other for home in self._homes[number] for other in self._members[home]} - {number}

    def _agrees_as_well(self, number: int) -> bool:
        """Whether another child of the household agrees with the typed given name at least as closely
        as this one (``GIVEN_AGREEMENT``), unless only as closely and the date typed is this child's
        birthday and not that one's, or that one is a twin (born the same day): then the rest of what
        was typed tells them apart or leaves them within the margin of each other, and both are
        open ("Lily Brown" for twins of that name, "Dani" for twins Daniel and Danielle: "more than
        one", each on its full weight). "Alexa" is his sister Alexandra's short form before it is a
        prefix of Alexander, on his birthday too. Mia, beside her sister Mia Rose, is "Mia" in full."""
        relatives = self.of(number)
        if not relatives:
            return False
        mine = self._rank(number)
        born = self._candidates[number].date_of_birth
        for other in relatives:
            theirs = self._rank(other)
            if theirs is None or (mine is not None and theirs < mine):
                continue
            if theirs == mine and self._candidates[other].date_of_birth == born:
                continue  # twins agreeing alike: the rest of what was typed tells them apart, or ``decide`` cannot
            if theirs == mine and self._dob == born:
                continue  # the same agreement, and the date typed is this child's and not the other's
            return True
        return False

    def _agreeing_twin(self, number: int) -> bool:
        """Whether a child of this one's household born the same day agrees with the typed given names
        as closely (``GIVEN_AGREEMENT``): no letter count chooses between them ("Dani" is nearer
        Daniel, and a short form of Danielle as much)."""
        mine = self._rank(number)
        born = self._candidates[number].date_of_birth
        return mine is not None and any(
            self._rank(other) == mine and self._candidates[other].date_of_birth == born for other in self.of(number)
        )

    def _nearer_a_relative(
        self, number: int, homes: frozenset[tuple[str, str]], names: Sequence[tuple[str, str]]
    ) -> bool:
        """Whether a word typed is a slip (two edits at most) nearer another first given name registered
        in the household than any of this child's, when none of this child's first given names was
        typed: "Teo" is one letter from her brother Theo and two from Thea; "Francesca" (a listed form of
        Frances) two from his sister Frances. Not between
        twins agreeing alike (``_agreeing_twin``). Every typed word, as for the names above:
        "Anderson Teo" is read both ways. But not a word that is this child's own: a word of its names
        (the family name typed is no slip of a sister's first name: ALLEN is two letters from Elen), or
        a listed form of its first given name and of no relative's (Sam for Samuel, two letters from
        his brother Kai) — as ``named_or_born`` reads the words of its names. A listed form is still
        read as a slip when it could as well be one of a relative's name (``_close``): "Sam" beside
        Samuel's twin Sami, "Liv" beside Olivia's twin Olive (found by review); not "Sam" beside his
        twin brother Kai."""
        others = set().union(*(self._firsts.get(home, set()) for home in homes))
        own = {given.split()[0] for given, _ in names if given}
        if not others or not own or own & self._typed or self._agreeing_twin(number):
            return False
        relatives = others - own
        for word in self._typed - _own_words(names):
            if any(same_person_name(word, first) for first in own) and not any(
                same_person_name(word, first) or _close(word, first) for first in relatives
            ):
                continue  # a listed form of this child's name and of no relative's: Sam for Samuel, not Kai
            near = min((OSA.distance(word, first) for first in relatives), default=3)
            if near <= 2 and near < min(OSA.distance(word, first) for first in own):
                return True
        return False


def _close(word: str, name: str) -> bool:
    """Whether a typed word could as well be a slip for a name: one letter from it; a prefix of it,
    or it of the word (Sam, Sami); within it (Liv, Olive); or two letters from it with its first two
    letters (Matt, Mateo; Jake, Jaco). Not Sam for Kai: two letters, nothing else shared."""
    if OSA.distance(word, name) <= 1 or name.startswith(word) or word.startswith(name) or word in name:
        return True
    return word[:2] == name[:2] and OSA.distance(word, name) <= 2


def _own_words(names: Sequence[tuple[str, str]]) -> set[str]:
    """Every word of a child's names, given and family, as registered and in its aliases."""
    return {word for given, family in names for word in (*given.split(), *family.split())}


_PARTICLES: Final = frozenset({"VAN", "VON", "DER", "DEN", "DEL", "DES", "LOS", "LAS", "BIN", "BINT", "ABU"})
"""Parts of a family name too common to make a household of their own (van der Berg, bin Omar)."""


def _homes(identity: Identity) -> frozenset[tuple[str, str]]:
    """The households a candidate belongs to: (a part of its family name as ``_family`` keys it, its
    registered postcode), the whole name and each part of three letters or more that is no particle.
    Two candidates sharing any are one household. None without a family name or a postcode."""
    code = normalise_postcode(identity.postcode)
    family = normalise_name(identity.family_name)
    if not code or not family:
        return frozenset()
    parts = family.split()
    keys = {phonetic_key(family)}
    if len(parts) > 1:
        keys.update(phonetic_key(part) for part in parts if len(part) >= 3 and part not in _PARTICLES)
    return frozenset((key, code) for key in keys)


def typed_exactly(query: Query, identity: Identity) -> bool:
    """Whether the date of birth is the child's and the names are as registered (or one registered
    alias), as ``normalise_name`` reads them (case, accents, apostrophes, hyphens aside): every given
    name typed is one of the child's, in order (leaving one out is no difference), and the family
    name is the child's. A slip, a swap of names or dates, a nickname: not exact."""
    if query.date_of_birth != identity.date_of_birth:
        return False
    given = normalise_name(query.given_names).split()
    family = normalise_name(query.family_name)
    if not given or not family:
        return False
    registered = [(normalise_name(identity.given_names).split(), normalise_name(identity.family_name))]
    for alias in identity.aliases:
        *alias_given, alias_family = normalise_name(alias).split() or [""]
        registered.append((alias_given, alias_family))
    return any(family == known_family and _in_order(given, known) for known, known_family in registered)


def _in_order(typed: Sequence[str], known: Sequence[str]) -> bool:
    """Every typed name is one of ``known``, in the same order (a subsequence)."""
    left = iter(known)
    return all(name in left for name in typed)


def details_to_add(query: Query) -> tuple[str, ...]:
    """What would separate the candidates, judged from the query alone (never from the candidates,
    so the answer says nothing about who they are): the details it lacks, most telling first."""
    wanted: list[str] = []
    if query.date_of_birth is None:
        wanted.append("the date of birth")
    family = normalise_name(query.family_name).split()
    if family and all(len(part) == 1 for part in family):  # "Ava P": an initial, not the family name
        wanted.append("the child's full family name")
    code = normalise_postcode(query.postcode)
    if not code:
        wanted.append("the postcode")
    elif code == outward_code(code):
        wanted.append("the full postcode")
    given = normalise_name(query.given_names).split()
    if not given:
        # One name typed, read as the family name, but as often a given name ("Ava 05/01/2014"): both.
        wanted.append("both of the child's names, given and family")
    elif all(len(part) == 1 for part in given):
        wanted.append("the child's given name in full")
    elif len(given) < 2:
        wanted.append("all of the child's given names")
    return tuple(wanted)
