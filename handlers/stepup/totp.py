"""RFC 6238 time-based one-time passwords: pure functions, no storage and no clock of their own.

SHA-1, 6 digits, 30-second steps, one step of drift either way (the product's policy numbers).
Replay protection works on *time steps*: the caller accepts a code only when the step it matched
is later than the last step it accepted, so the same code cannot count twice however it is spelt.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import unicodedata
from datetime import datetime

import pyotp

DIGITS = 6
STEP_SECONDS = 30
SEED_BYTES = 20  # 160 bits, the size RFC 4226 recommends for HMAC-SHA-1
ISSUER = "Signpost"
SEPARATORS = frozenset("-\u2010\u2011\u2013")  # people type "123-456"; phones may autocorrect the dash


class MalformedCode(ValueError):
    """The text is not a 6-digit code (after normalising); it never reaches verification."""


def new_seed() -> bytes:
    """A fresh random seed."""
    return secrets.token_bytes(SEED_BYTES)


def base32(seed: bytes) -> str:
    """The seed as authenticator apps expect it (RFC 4648 base32, no padding)."""
    return base64.b32encode(seed).decode("ascii").rstrip("=")


def grouped(secret: str) -> str:
    """Base32 secret in groups of four, easier to read and type by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(seed: bytes, account: str) -> str:
    """The otpauth:// URI a QR code carries."""
    return pyotp.TOTP(base32(seed), digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def time_step(moment: datetime) -> int:
    """The RFC 6238 time step (T) that contains ``moment``."""
    return int(moment.timestamp()) // STEP_SECONDS


def code_at(seed: bytes, step: int, digits: int = DIGITS) -> str:
    """The code for one time step (RFC 4226 HOTP with the step as counter)."""
    return str(pyotp.HOTP(base32(seed), digits=digits).at(step))


def normalise(text: str) -> str:
    """Digits only: full-width and other Unicode decimal digits become ASCII; spaces and dashes go.

    Raises MalformedCode unless exactly six digits remain.
    """
    digits: list[str] = []
    for char in unicodedata.normalize("NFKC", text):
        if char.isspace() or char in SEPARATORS:
            continue
        value = unicodedata.decimal(char, None)
        if value is None:
            raise MalformedCode("not a digit")
        digits.append(str(value))
    if len(digits) != DIGITS:
        raise MalformedCode("wrong length")
    return "".join(digits)


def matching_step(seed: bytes, code: str, now: datetime, window: int = 1) -> int | None:
    """The time step within ±``window`` of now whose code equals ``code``, latest first; or None.

    ``code`` must already be normalised. Every candidate is compared in constant time.
    """
    current = time_step(now)
    found: int | None = None
    for step in range(current + window, current - window - 1, -1):
        if hmac.compare_digest(code_at(seed, step), code) and found is None:
            found = step
    return found
