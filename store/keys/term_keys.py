"""Blind-index term keys: each child's index terms are keyed under keys that die with its cohort.

Why: a child's terms are keyed hashes of short, guessable values (a date of birth, a sound-alike
name key, an outward postcode). Under one long-lived index key, a backup taken before a child's
destruction and the current key file gave back the destroyed child's date of birth, district and
common names by trying them. So terms are keyed as the data keys are wrapped, by birth date:

- a term that holds the **full date of birth** (``n:``, ``ii:``, ``do:``, retention's ``dob:``)
  under its **birth day's** term key;
- every other term under its **birth year's** term key.

The keys come from the key file's *term chain* (``store.keys.keychain``, ``Chain.TERM``), a
forward-only hash chain over day slots, like the day chain, and punctured with it in the same
write of the key file:

    day_key(D)  = SHA-256("signpost-term-day:"  | term_state[slot(D)])
    year_key(Y) = SHA-256("signpost-term-year:" | term_state[slot(31 December Y)])

**Puncture rule.** Once retention has destroyed the cohort of day D (the chain's cutoff is past
D), ``term_state[slot(D)]`` can no longer be computed from the key file, so neither can
``day_key(D)``; ``year_key(Y)`` goes once the cutoff passes 31 December Y, i.e. once every day of
year Y is destroyed. A search probes the year-keyed terms that carry no year (``md:``, ``fm:``,
``pm:``, ``pd:``, ``po:``, ``no:``) under every year whose children it can find.

The term chain is not a key-encryption key, never wraps anything, and is carried unchanged by
``signpost keys rotate`` (as the index key always was): rotating does not rewrite the index.
Sealing workers are given the derived term keys (``TermKeys``) and never the chain itself nor
a cohort key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from typing import Any

_SHA256_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


class NoTermKey(Exception):
    """No term key is held for this birth date: its cohort is destroyed (or beyond the horizon)."""


def day_key(state: bytes) -> bytes:
    return hashlib.sha256(b"signpost-term-day:" + state).digest()


def year_key(state: bytes) -> bytes:
    return hashlib.sha256(b"signpost-term-year:" + state).digest()


class TermKeys:
    """The term keys one process holds: by birth day and by birth year (the last day of each year
    whose state is still held). ``as_of``: the day they were derived for (the search years)."""

    __slots__ = ("_pads", "as_of", "days", "years")

    def __init__(self, days: Mapping[date, bytes], years: Mapping[int, bytes], as_of: date | None) -> None:
        self.days = dict(days)
        self.years = dict(years)
        self.as_of = as_of
        self._pads: dict[bytes, tuple[Any, Any]] = {}

    def __repr__(self) -> str:  # never the keys (a log line, a traceback)
        return f"TermKeys({len(self.days)} days, {len(self.years)} years, as_of={self.as_of})"

    @classmethod
    def none(cls) -> TermKeys:
        return cls({}, {}, None)

    def for_day(self, day: date) -> bytes:
        try:
            return self.days[day]
        except KeyError:
            raise NoTermKey("no term key for this birth day: its cohort is destroyed or not derived") from None

    def for_year(self, year: int) -> bytes:
        try:
            return self.years[year]
        except KeyError:
            raise NoTermKey("no term key for this birth year: every day of it is destroyed") from None

    def search_years(self, archive_at: int) -> list[int]:
        """Birth years whose children an ordinary search can find (under ``archive_at`` on ``as_of``,
        a year's slack for a retention run not yet made), whose key is held."""
        if self.as_of is None:
            return []
        first = self.as_of.year - archive_at - 1
        return sorted(year for year in self.years if year >= first)

    def blind(self, key: bytes, term: str) -> int:
        """HMAC-SHA256 of ``term`` under ``key``, 64 bits kept (signed, to fit BIGINT), as
        ``KeyRing.blind`` does under the index key; each key's padded blocks are hashed once."""
        pads = self._pads.get(key)
        if pads is None:
            padded = key.ljust(_SHA256_BLOCK, b"\0")
            pads = self._pads[key] = (hashlib.sha256(padded.translate(_IPAD)), hashlib.sha256(padded.translate(_OPAD)))
        inner = pads[0].copy()
        inner.update(term.encode("utf-8"))
        outer = pads[1].copy()
        outer.update(inner.digest())
        return int.from_bytes(outer.digest()[:8], "big", signed=True)

    def since(self, first: date, as_of: date) -> TermKeys:
        """These keys without the days before ``first`` and the years that end before it (a puncture
        of the chain they were derived from: nothing is derived again)."""
        days = {day: key for day, key in self.days.items() if day >= first}
        kept = TermKeys(days, {y: k for y, k in self.years.items() if date(y, 12, 31) >= first}, as_of)
        held = {*days.values(), *kept.years.values()}
        kept._pads = {k: v for k, v in self._pads.items() if k in held}
        return kept
