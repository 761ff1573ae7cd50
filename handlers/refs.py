"""Reading a child reference number from what a practitioner typed (the check digit is the register's)."""

from __future__ import annotations

import re

from store.register.refs import is_valid

_SHAPE = re.compile(r"^[0-9\s-]+$")  # ASCII digits only: "²".isdigit() is true, int("²") fails
_DIGITS = frozenset("0123456789")


class InvalidReference(ValueError):
    """Looks like a reference but fails the check digit (usually a typo)."""


def looks_like_reference(text: str) -> bool:
    """Digits with optional spaces or dashes and exactly ten digits: meant as a reference."""
    return bool(_SHAPE.match(text)) and sum(c in _DIGITS for c in text) == 10


def parse_reference(text: str) -> int:
    digits = "".join(c for c in text if c in _DIGITS)
    if not is_valid(digits):
        raise InvalidReference("that reference number is not valid: please check the digits")
    return int(digits)
