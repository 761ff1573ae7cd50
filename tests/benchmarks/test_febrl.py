"""The FEBRL benchmark's folding of dates and postcodes, its labels and its register (on a few
made-up rows in FEBRL's format; the real data sets are fetched only by the benchmark itself)."""

from __future__ import annotations

from datetime import date

from benchmarks.matching.febrl import build, error_kind, fold_date, uk_postcode
from handlers.matching.terms import Query
from store.register.terms import Identity, outward_code

TODAY = date(2026, 12, 1)

HEADER = (
    "rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, "
    "date_of_birth, soc_sec_id"
)
ROWS = [
    "rec-1-org, ada, quennell, 4, a street, , b, 2602, act, 19810315, 1",
    "rec-1-dup-0, ada, quenell, 4, a street, , b, 2602, act, 19810315, 1",
    "rec-1-dup-1, quennell, ada, 4, a street, , b, 2603, act, 19810513, 1",
    "rec-2-org, bo, tarrant, 4, a street, , b, 4000, qld, 19720229, 1",
    "rec-3-org, cy, wandle, 4, a street, , b, 4000, qld, 1970x229, 1",
    "rec-3-dup-0, cy, wandle, 4, a street, , b, 4000, qld, 19701229, 1",
]


def test_dates_fold_into_the_eighteen_years_up_to_today_keeping_day_and_month() -> None:
    folded = [fold_date(f"{year}0315", TODAY) for year in range(1900, 2000)]
    assert all(day is not None and day.month == 3 and day.day == 15 for day in folded)
    assert all(day is not None and date(2008, 12, 1) < day <= TODAY for day in folded)
    assert fold_date("19810315", TODAY) == fold_date("19990315", TODAY)  # 18 years apart
    assert fold_date("19810315", TODAY) != fold_date("19820315", TODAY)  # a wrong year stays wrong
    late = fold_date("19811231", TODAY)  # after 1 December: moved 18 years back, still a child's
    assert late is not None and date(2008, 12, 1) < late <= TODAY


def test_missing_or_impossible_dates_fold_to_none_and_29_february_survives() -> None:
    assert fold_date("", TODAY) is None and fold_date("19811332", TODAY) is None and fold_date("1981", TODAY) is None
    leap = fold_date("19720229", TODAY)
    assert leap is not None and leap.month == 2 and leap.day in (28, 29)


def test_postcodes_map_deterministically_and_a_slip_in_the_last_digit_keeps_the_outward_code() -> None:
    assert uk_postcode("2602") == uk_postcode("2602") != uk_postcode("2603")
    assert outward_code(uk_postcode("2602")) == outward_code(uk_postcode("2603"))
    assert outward_code(uk_postcode("2602")) not in ("", uk_postcode("2602"))
    assert uk_postcode("") == "" and outward_code(uk_postcode("2602", outward_only=True)) == uk_postcode("2602", True)


def test_error_kinds_are_read_field_by_field() -> None:
    child = Identity("ada", "quennell", (), date(2015, 3, 15), None, "AB1 2CD")
    assert error_kind(Query("ada", "quennell", date(2015, 3, 15), "AB1 2CD"), child) == "exact"
    assert error_kind(Query("ada", "quenell", date(2015, 3, 15), "AB1 2CD"), child) == "family_typo"
    assert error_kind(Query("quennell", "ada", date(2015, 5, 13), "AB1 2CE"), child) == "swapped+dob_other+postcode"
    assert error_kind(Query("", "quennell", None, None), child) == "no_given+no_dob+no_postcode"
    assert error_kind(Query("ada", "quennell", date(2015, 3, 16), "AB1 2CD"), child) == "dob_digit"


def test_register_holds_originals_with_a_date_and_queries_are_their_duplicates() -> None:
    built = build({"dataset1": "\n".join([HEADER, *ROWS])}, TODAY, 0.0, 1, 0)
    assert [child.identity.family_name for child in built.register] == ["quennell", "tarrant"]
    assert built.dropped == 1  # rec-3's original has no valid date: it and its duplicate are left out
    assert [(item.child, item.kind) for item in built.labelled] == [
        (0, "family_typo"),
        (0, "swapped+dob_other+postcode"),
    ]
    held = build({"dataset1": "\n".join([HEADER, *ROWS])}, TODAY, 1.0, 1, 0)
    assert held.register == [] and all(item.child is None for item in held.labelled)
