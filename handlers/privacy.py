"""Is this text about the child? The one identity filter for free text that leaves Signpost.

Minimal version written for issue 18's relay (a fuller one is on its way for denial reasons): a
text mentions a child's identity when it holds any of their names or aliases as a word, their
postcode with or without its space, or their date of birth in a common spelling.
"""

from __future__ import annotations

import re
import unicodedata

from store.register.terms import Identity

_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> set[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return set(_WORD.findall(folded))


def mentions_identity(text: str, identity: Identity) -> bool:
    """Whether ``text`` names the child, or gives their date of birth or postcode, in any spelling."""
    if not text:
        return False
    names = _words(" ".join((identity.given_names, identity.family_name, *identity.aliases)))
    if names & _words(text):
        return True
    compact = re.sub(r"[\s]+", "", unicodedata.normalize("NFKC", text)).casefold()
    if identity.postcode and re.sub(r"\s+", "", identity.postcode).casefold() in compact:
        return True
    dob = identity.date_of_birth
    digits_only = re.sub(r"\D", "", compact)
    spellings = {
        f"{dob:%d/%m/%Y}",
        f"{dob.day}/{dob.month}/{dob.year}",
        dob.isoformat(),
        f"{dob:%d.%m.%Y}",
        f"{dob:%d-%m-%Y}",
        f"{dob.day}{dob:%B}{dob.year}".casefold(),
        f"{dob.day}{dob:%b}{dob.year}".casefold(),
    }
    if any(spelling in compact for spelling in spellings):
        return True
    return f"{dob:%d%m%Y}" in digits_only or f"{dob:%Y%m%d}" in digits_only
