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

This first version is exact matching on normalised names (and aliases) plus date of
birth; the fuzzy matching issue replaces the internals behind the same contract.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


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
    """Accept a candidate at or above ``accept`` when it leads the next by ``margin``."""

    accept: float = 0.9
    margin: float = 0.05


@dataclass(frozen=True, slots=True)
class Decision(Generic[T]):
    kind: DecisionKind
    best: T | None
    ranked: tuple[tuple[T, float], ...]


def normalise_name(text: str) -> str:
    """Upper-case letters only, accents folded, words separated by one space."""
    folded = unicodedata.normalize("NFKD", text)
    letters = "".join(c if c.isalpha() else " " for c in folded if not unicodedata.combining(c))
    return " ".join(letters.upper().split())


def normalise_postcode(text: str | None) -> str:
    return "".join((text or "").upper().split())


def _full_names(identity: Identity) -> set[str]:
    names = {normalise_name(f"{identity.given_names} {identity.family_name}")}
    names.update(normalise_name(alias) for alias in identity.aliases)
    return {name for name in names if name}


def index_terms(identity: Identity) -> frozenset[str]:
    dob = identity.date_of_birth.isoformat()
    return frozenset(f"x:{name}|{dob}" for name in _full_names(identity))


def query_terms(query: Query) -> frozenset[str]:
    if query.date_of_birth is None:
        return frozenset()
    name = normalise_name(f"{query.given_names} {query.family_name}")
    return frozenset({f"x:{name}|{query.date_of_birth.isoformat()}"}) if name else frozenset()


def score(query: Query, identity: Identity) -> float:
    if query.date_of_birth != identity.date_of_birth:
        return 0.0
    name = normalise_name(f"{query.given_names} {query.family_name}")
    if name not in _full_names(identity):
        return 0.0
    wanted = normalise_postcode(query.postcode)
    if wanted and not normalise_postcode(identity.postcode).startswith(wanted):
        return 0.5
    return 1.0


def decide(scored: Sequence[tuple[T, float]], policy: MatchPolicy = MatchPolicy()) -> Decision[T]:
    ranked = tuple(sorted(scored, key=lambda pair: pair[1], reverse=True))
    if not ranked or ranked[0][1] < policy.accept:
        return Decision(DecisionKind.NO_MATCH, None, ranked)
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < policy.margin:
        return Decision(DecisionKind.AMBIGUOUS, None, ranked)
    return Decision(DecisionKind.MATCH, ranked[0][0], ranked)
