"""What scoring a query's candidates costs, structurally: the query's side is worked out once.

``choose`` weighs up to 200 candidates a search; what depends only on the query (its readings,
the model's weights, whether each reading's given name is a registered one) is the same for all of
them, and the weights must be exactly what ``assess`` gives one candidate at a time.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date, timedelta

import pytest

from handlers.matching import decide, score
from handlers.matching.decide import MatchPolicy, choose
from handlers.matching.score import Assessor, MatchModel, assess
from handlers.matching.terms import Query
from store.register.terms import APOSTROPHES, Identity, normalise_name

GIVEN = ("Amy", "Amelia", "Emily", "Jack", "Jake", "Oliver", "Olivia", "Zoe", "Zoë", "Mohammed", "Leila")
FAMILY = ("Jones", "Smith", "Smith-Patel", "O'Neill", "Taylor", "Wright", "Brennan", "Nowak")


def _candidates(n: int, seed: int = 4) -> list[tuple[int, Identity]]:
    rng = random.Random(seed)
    out = []
    for ref in range(n):
        given = rng.choice(GIVEN) + (" " + rng.choice(GIVEN) if rng.random() < 0.3 else "")
        aliases = (f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",) if rng.random() < 0.1 else ()
        born = date(2010, 1, 1) + timedelta(days=rng.randrange(3000))
        out.append((ref, Identity(given, rng.choice(FAMILY), aliases, born, rng.choice("FM"), "M1 2AB")))
    return out


QUERIES = [
    Query("Amy", "Jones", date(2014, 4, 3), "M1 2AB"),
    Query("Jones", "Amy", date(2014, 3, 4), "M1"),
    Query("Amelia Rose", "Smith Patel", date(2012, 6, 30), None),
    Query("", "Taylor", date(2013, 5, 9), "M1 2AB", "M"),
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_assessor_weighs_exactly_as_assess(query: Query) -> None:
    counts = {"g:AMY": 40, "f:JONES": 900, "f:TAYLOR": 300, "g:AMELIA": 12}
    model = MatchModel(population=100_000)
    weigh = Assessor(query, model, counts)
    for _, identity in _candidates(300):
        assert weigh(identity) == assess(query, identity, model, counts)


def test_the_query_side_is_worked_out_once_per_query_not_once_per_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, ``choose`` asked whether each reading's given name is registered (a count lookup)
    and normalised each candidate's family name for the guards up to three times, per candidate."""
    calls = {"unknown": 0, "family": 0}
    unknown, family = score._unknown_name, decide._family

    def counting_unknown(*args: object) -> bool | None:
        calls["unknown"] += 1
        return unknown(*args)  # type: ignore[arg-type]

    def counting_family(identity: Identity) -> str:
        calls["family"] += 1
        return family(identity)

    monkeypatch.setattr(score, "_unknown_name", counting_unknown)
    monkeypatch.setattr(decide, "_family", counting_family)
    query = Query("Amy Louise", "Jones", date(2014, 4, 3), "M1 2AB")
    candidates = _candidates(200)
    choose(query, candidates, MatchModel(population=100_000), MatchPolicy(), {"g:AMY": 40, "f:JONES": 900})
    assert calls["unknown"] <= 3  # one a reading of the query's names
    assert calls["family"] == len(candidates)  # once a candidate


def test_ascii_names_normalise_as_the_general_path_does() -> None:
    """The ASCII fast path of ``normalise_name`` gives what NFKD folding gives, on any ASCII text."""

    dropped = str.maketrans(dict.fromkeys(APOSTROPHES))
    whole = str.maketrans({"Ł": "L", "Ø": "O", "Đ": "D", "Ð": "D", "Þ": "TH", "Æ": "AE", "Œ": "OE", "Ħ": "H", "Ŧ": "T"})

    def general(text: str) -> str:
        folded = unicodedata.normalize("NFKD", text.translate(dropped)).translate(dropped)
        letters = "".join(c if c.isalpha() else " " for c in folded if not unicodedata.combining(c))
        return " ".join(letters.upper().translate(whole).split())

    rng = random.Random(7)
    alphabet = [chr(c) for c in range(128)]
    samples = ["O'Neill", "Smith-Jones", "  amy  louise ", "Mc Donald", "", "'", "a\tb\nc", "X Æ A-12"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(20))) for _ in range(5000)]
    for text in samples:
        assert normalise_name(text) == general(text), repr(text)
    for text in ("Zoë", "José", "Ñúñez", "O\u2019Brien", "Ærø"):  # not ASCII: the general path
        assert normalise_name(text) == general(text)
