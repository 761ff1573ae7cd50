"""Child reference numbers: 10 digits with a modulus-11 check digit, as NHS numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator

_WEIGHTS = range(10, 1, -1)
_SHAPE = re.compile(r"^[\d\s-]+$")


class InvalidReference(ValueError):
    """Looks like a reference but fails the check digit (usually a typo)."""


def check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit for nine digits, or None when no valid one exists."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    return None if digit == 10 else digit


def is_valid(digits: str) -> bool:
    return len(digits) == 10 and digits.isdigit() and check_digit(digits[:9]) == int(digits[9])


def looks_like_reference(text: str) -> bool:
    """Digits with optional spaces or dashes and exactly ten digits: meant as a reference."""
    return bool(_SHAPE.match(text)) and sum(c.isdigit() for c in text) == 10


def parse_reference(text: str) -> int:
    digits = "".join(c for c in text if c.isdigit())
    if not is_valid(digits):
        raise InvalidReference("that reference number is not valid: please check the digits")
    return int(digits)


def make_reference(serial: int) -> int:
    """A valid reference from a serial number (skips serials with no valid check digit)."""
    while True:
        first_nine = f"{serial:09d}"
        digit = check_digit(first_nine)
        if digit is not None:
            return int(first_nine + str(digit))
        serial += 1


def references(start_serial: int) -> Iterator[int]:
    """Consecutive valid references from a nine-digit serial (for synthetic data)."""
    serial = start_serial
    while True:
        digit = check_digit(f"{serial:09d}")
        if digit is not None:
            yield serial * 10 + digit
        serial += 1
