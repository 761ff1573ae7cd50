"""Child reference numbers: 10 digits with a modulus-11 check digit, as NHS numbers.

What makes a reference valid is the register's: imports check it and synthetic data makes it.
Reading one from what a practitioner typed is the deciders' (``handlers.refs``).
"""

from __future__ import annotations

from collections.abc import Iterator

_ZERO = 48 * 54  # ord("0") times the sum of the weights 10..2


def check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit for nine ASCII digits, or None when no valid one exists.

    Written out on the bytes: it runs for every child and involvement row of an import (tens of
    millions at national scale), five times faster than a generator over ``int(d)``.
    """
    if len(first_nine) != 9 or not (first_nine.isascii() and first_nine.isdigit()):
        raise ValueError("a check digit is made from nine ASCII digits")
    b = first_nine.encode("ascii")
    total = 10 * b[0] + 9 * b[1] + 8 * b[2] + 7 * b[3] + 6 * b[4] + 5 * b[5] + 4 * b[6] + 3 * b[7] + 2 * b[8] - _ZERO
    digit = 11 - total % 11
    if digit == 11:
        return 0
    return None if digit == 10 else digit


def is_valid(digits: str) -> bool:
    """Ten ASCII digits whose last is the check digit of the first nine. Any other text is not a
    reference, never an error: "²".isdigit() is true and int("²") fails, so a feed holding one
    raised in the middle of an import instead of reporting the row."""
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return False
    return check_digit(digits[:9]) == ord(digits[9]) - 48


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
