"""The match decision: match / ambiguous / no match from scored candidates.

``decide`` shares the posterior between the candidates (``shared_posterior``), so two
look-alikes never both pass, and chooses a child only when one is both likely and clearly
ahead of the next.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


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
