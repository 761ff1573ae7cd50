"""How often the screen for any child's details (handlers/privacy.py ``other_details``) refuses text
that holds none (false positives), and how often it lets through text that holds one (misses).

Run: ``python -m benchmarks.other_details [COUNT]``. The texts are synthetic and seeded: purposes,
reasons and messages as practitioners write them (sections, reviews, times and time ranges, phone
numbers in the Ofcom drama ranges, money, case numbers of other lengths, meeting dates ahead,
ordinals, rooms), and the same with a reference (valid check digit, any grouping), a date of birth in
the last 24 years (each form the screen reads) or a full postcode put in.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from datetime import date, timedelta

from handlers.privacy import other_details
from store.register.refs import check_digit

TODAY = date(2026, 11, 2)
OPENINGS = (
    "section 47 enquiry",
    "s47 enquiry",
    "s17 child in need assessment",
    "child in need review",
    "CP plan review",
    "strategy discussion",
    "s47 2nd strategy discussion",
    "3rd core group meeting",
    "initial child protection conference",
    "MASH referral",
    "early help assessment",
    "LADO referral",
    "school attendance concern",
    "health visitor 6-8 week check follow-up",
    "A&E attendance, safeguarding follow-up",
    "youth offending panel, 1st hearing",
    "private fostering notification",
    "missing from home return interview",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _phone(rng: random.Random) -> str:
    return rng.choice(
        (
            f"01632 960 {rng.randint(0, 999):03d}",
            f"01632 960{rng.randint(0, 999):03d}",
            f"0113 496 {rng.randint(0, 9999):04d}",
            f"0161 496 {rng.randint(0, 9999):04d}",
            f"020 7946 {rng.randint(0, 9999):04d}",
            f"07700 900 {rng.randint(0, 999):03d}",
            f"07700 900{rng.randint(0, 999):03d}",
            f"+44 7700 900{rng.randint(0, 999):03d}",
            f"0300 123 {rng.randint(0, 9999):04d}",
        )
    )


def _time(rng: random.Random) -> str:
    h, m = rng.randint(8, 18), rng.choice((0, 15, 30, 45))
    return rng.choice(
        (
            f"{h}:{m:02d}",
            f"{h:02d}.{m:02d}",
            f"{h % 12 or 12}pm",
            f"{h % 12 or 12}.{m:02d}am",
            f"{h:02d}:{m:02d}-{h + 1:02d}:{m:02d}",
            f"{h}-{h + 1}",
            f"{h:02d}{m:02d} hrs",
        )
    )


def _meeting_date(rng: random.Random) -> str:
    day = TODAY + timedelta(days=rng.randint(1, 120))  # ahead: no one is born on a meeting's day yet
    return rng.choice(
        (
            f"{day.day:02d}/{day.month:02d}/{day.year}",
            f"{day.day} {day:%B}",
            f"{day.day} {day:%b}",
            f"{rng.choice(WEEKDAYS)} {day.day} {day:%b}",
            f"{day:%Y-%m-%d}",
            f"{day.day}/{day.month}",
        )
    )


def _case_number(rng: random.Random) -> str:
    length = rng.choice((4, 5, 6, 7, 8, 9, 11, 12))
    digits = "".join(rng.choice("0123456789") for _ in range(length))
    return rng.choice(
        (
            f"case {digits}",
            f"CIN/{TODAY.year}/{digits[:4]}",
            f"ref CP-{digits}",
            f"crime no. {digits[:2]}/{digits[2:]}",
            f"LA ref {digits}",
        )
    )


def _extra(rng: random.Random) -> str:
    return rng.choice(
        (
            f"at {_time(rng)} on {rng.choice(WEEKDAYS)}",
            f"meeting {_meeting_date(rng)} {_time(rng)}",
            f"please call me on {_phone(rng)}",
            f"call {_phone(rng)} between {_time(rng)}",
            f"costs £{rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}",
            f"{_case_number(rng)}",
            f"room {rng.choice('ABCDE')}{rng.randint(1, 9)}, {rng.randint(1, 9)}pm",
            f"{rng.randint(2, 5)} siblings, the {rng.choice(('2nd', '3rd', '4th'))} oldest",
            f"office M{rng.randint(1, 60)} {rng.choice(('1st', '2nd', '3rd'))} floor",
            "no further concerns",
            f"year {rng.randint(1, 11)} pupil, {rng.randint(60, 99)}% attendance",
            f"{rng.randint(2, 20)} week review",
        )
    )


def fine_text(rng: random.Random) -> str:
    """A purpose with none of the details: an opening and one to three extras."""
    return ", ".join([rng.choice(OPENINGS), *(_extra(rng) for _ in range(rng.randint(1, 3)))])


def _reference(rng: random.Random) -> str:
    while True:
        nine = "".join(rng.choice("0123456789") for _ in range(9))
        check = check_digit(nine)
        if check is not None:
            ten = f"{nine}{check}"
            return rng.choice(
                (ten, f"{ten[:3]} {ten[3:6]} {ten[6:]}", f"{ten[:3]}-{ten[3:6]}-{ten[6:]}", " ".join(ten))
            )


def _date_of_birth(rng: random.Random) -> str:
    born = TODAY - timedelta(days=rng.randint(0, 24 * 365 - 2))
    return rng.choice(
        (
            f"{born.day:02d}/{born.month:02d}/{born.year}",
            f"{born.day}.{born.month}.{born.year}",
            f"{born.day:02d}-{born.month:02d}-{born.year}",
            f"{born:%Y-%m-%d}",
            f"{born.day:02d}/{born.month:02d}/{born.year % 100:02d}",
            f"{born.day} {born:%B} {born.year}",
            f"{born.day}th of {born:%b} {born.year}",
        )
    )


def _postcode(rng: random.Random) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"  # an inward code's letters
    area = "".join(rng.choice("ABCDEGHKLMNOPRSTWY") for _ in range(rng.randint(1, 2)))
    code = f"{area}{rng.randint(1, 29)} {rng.randint(0, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return rng.choice((code, code.lower(), code.replace(" ", "")))


KINDS = {"reference": _reference, "date of birth": _date_of_birth, "postcode": _postcode}


def detail_text(rng: random.Random, kind: str) -> str:
    """A fine purpose with one child's detail of ``kind`` put in, as a sibling's."""
    return f"{fine_text(rng)}, her brother {KINDS[kind](rng)} also known"


def measure(count: int, seed: int = 47) -> tuple[Counter[str], Counter[str], list[str]]:
    """(false positives by what was seen, misses by kind, the refused fine texts) over ``count`` of each."""
    rng = random.Random(seed)
    false, missed, refused = Counter[str](), Counter[str](), []
    for _ in range(count):
        text = fine_text(rng)
        found = other_details(text, TODAY)
        if found:
            false.update(found)
            refused.append(text)
    for kind in KINDS:
        for _ in range(count):
            if not other_details(detail_text(rng, kind), TODAY):
                missed[kind] += 1
    return false, missed, refused


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    false, missed, refused = measure(count)
    print(f"{count} texts without a child's details: {len(refused)} refused ({len(refused) / count:.2%}) {dict(false)}")
    for kind in KINDS:
        print(f"{count} texts with a {kind}: {missed[kind]} let through")
    for text in refused[:20]:
        print("  refused:", text)


if __name__ == "__main__":
    main()
