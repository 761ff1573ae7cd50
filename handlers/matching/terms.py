"""What a practitioner's query probes: the blind-index terms its child may be held under.

A query's names are read every way a parser or a person might have split them, and its date
of birth is expanded into the common mistakes (day/month swapped, one digit wrong, year ±1),
so that a child indexed once under ``store.register.terms.index_terms`` is still found. The
terms are built from the same keys the store indexes by; candidates are the children holding
any of them. At most ``MAX_QUERY_TERMS`` terms, the likeliest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Final

from store.register.terms import (
    first_unique,
    given_keys,
    initials_key,
    normalise_name,
    outward_code,
    pair_key,
    phonetic_key,
)

MAX_QUERY_TERMS: Final = 90
"""Hard cap on the terms one query probes (the store's ``IN (...)`` list)."""


@dataclass(frozen=True, slots=True)
class Query:
    """What a practitioner typed, split into fields. Any field may be empty."""

    given_names: str = ""
    family_name: str = ""
    date_of_birth: date | None = None
    postcode: str | None = None
    sex: str | None = None


def _valid_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def dob_variants(dob: date) -> list[date]:
    """The date itself, then the common mistakes: day/month swapped, year ±1, one digit wrong."""
    found: list[date | None] = [dob, _valid_date(dob.year, dob.day, dob.month)]
    found += [_valid_date(dob.year + delta, dob.month, dob.day) for delta in (-1, 1)]
    digits = dob.isoformat().replace("-", "")  # zero-padded, unlike strftime("%Y") for years < 1000
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
    return frozenset(first_unique(stream, MAX_QUERY_TERMS))


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
        keys = [pair_key(a, b) for a in left_keys for b in right_keys]
        readings.append([key for key in dict.fromkeys(keys) if key not in seen])
        seen.update(keys)
    return readings


def _date_pair_terms(pairs: Iterable[str], iso: str) -> Iterator[str]:
    for pair in pairs:
        yield from (f"ym:{pair}|{iso[:7]}", f"md:{pair}|{iso[5:]}", f"yd:{pair}|{iso[:4]}{iso[7:]}")


def _loose_terms(given: list[str], family: list[str], dob: date) -> Iterator[str]:
    """Terms that survive two mistakes at once: initials + date (both names misspelt past their
    keys), family key + given initial + year ±1 (a name key wrong and the day and month wrong) or
    + month and day (a name key wrong and the year wrong), each reading of the names either way round."""
    pairs = _name_pairs(given, family)[:2]
    iso = dob.isoformat()
    swapped = _valid_date(dob.year, dob.day, dob.month)
    for left, right in pairs:
        yield f"ii:{initials_key(left, right)}|{iso}"
        if swapped is not None and swapped != dob:
            yield f"ii:{initials_key(left, right)}|{swapped.isoformat()}"
    for year in (dob.year, dob.year - 1, dob.year + 1):
        for left, right in pairs:
            yield f"fy:{phonetic_key(right)}|{left[0]}|{year}"
            yield f"fy:{phonetic_key(left)}|{right[0]}|{year}"
    for left, right in pairs:
        yield f"fm:{phonetic_key(right)}|{left[0]}|{iso[5:]}"
        yield f"fm:{phonetic_key(left)}|{right[0]}|{iso[5:]}"


def _place_terms(given: list[str], family: list[str], out: str) -> Iterator[str]:
    """One name's key + outward code: found with no date of birth and the other name wrong."""
    for key in dict.fromkeys(phonetic_key(word) for word in given + family):
        yield f"no:{key}|{out}"


def _query_term_stream(given: list[str], family: list[str], dob: date | None, out: str) -> Iterator[str]:
    """Terms in the order they are worth probing; the cap cuts the tail."""
    readings = _pair_keys(given, family)
    first_pairs = readings[0] if readings else []
    other_pairs = [pair for reading in readings[1:] for pair in reading]
    word_keys = list(dict.fromkeys(key for word in given + family for key in given_keys(word)))
    if dob is None:
        if out:
            yield from (f"po:{pair}|{out}" for reading in readings for pair in reading)
            yield from _place_terms(given, family, out)
        return
    variants = dob_variants(dob)
    iso = dob.isoformat()
    yield from _date_pair_terms(first_pairs, iso)
    yield from (f"n:{key}|{iso}" for key in word_keys)
    if out:
        yield from (f"do:{day.isoformat()}|{out}" for day in variants[:4])
    yield from _loose_terms(given, family, dob)
    yield from (f"pm:{pair}|{iso[5:7]}" for pair in first_pairs)
    yield from (f"pd:{pair}|{iso[8:]}" for pair in first_pairs)
    yield from _date_pair_terms(other_pairs, iso)
    if len(variants) > 1 and variants[1].year == dob.year:  # the day/month swap
        swapped = variants[1].isoformat()
        yield from (f"ym:{pair}|{swapped[:7]}" for pair in first_pairs + other_pairs)
        yield from (f"n:{key}|{swapped}" for key in word_keys)
    if out:
        yield from _place_terms(given, family, out)
        yield from (f"do:{day.isoformat()}|{out}" for day in variants[4:])
        yield from (f"po:{pair}|{out}" for reading in readings for pair in reading)
