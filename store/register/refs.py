"""Child reference numbers: 10 digits with a modulus-11 check digit, as NHS numbers.

What makes a reference valid is the register's: imports check it and synthetic data makes it.
Reading one from what a practitioner typed is the deciders' (``handlers.refs``).
"""

from __future__ import annotations

from collections.abc import Iterator

_WEIGHTS = range(10, 1, -1)


def check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit for nine digits, or None when no valid one exists."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    return None if digit == 10 else digit


def is_valid(digits: str) -> bool:
    return len(digits) == 10 and digits.isdigit() and check_digit(digits[:9]) == int(digits[9])


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
