"""Is this text about the child? The one filter for free text that leaves Signpost (a denial reason,
a relayed message): it must not carry the child's name, date of birth or postcode in any spelling
it can tell: a name in any case or accent, spelt out letter by letter, or (six letters or more)
with one letter added, dropped or changed.

The text and the identity are both folded the same way (accents and case dropped, other scripts'
digits read as digits) before they are compared, and a date of birth is recognised however it is
written: 24/11/2017, 24-11-17, 24.11.2017, 2017-11-24, 24112017, 24th November 2017, Nov 24 2017,
24 Nov — day and month alone are enough. It fails closed: a reason that merely looks like the
child's birthday is refused too, and the person is asked to send it again without it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from store.register.terms import Identity

MONTHS = {
    **{name: n for n, name in enumerate(("january", "february", "march", "april", "may", "june"), 1)},
    **{name: n for n, name in enumerate(("july", "august", "september", "october", "november", "december"), 7)},
    **{name: n for n, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun"), 1)},
    **{name: n for n, name in enumerate(("jul", "aug", "sep", "oct", "nov", "dec"), 7)},
    "sept": 9,
}
# Words that may sit inside a date without breaking it: "24th of November", "the 24th".
_FILLER = frozenset({"st", "nd", "rd", "th", "of", "the"})
_TOKEN = re.compile(r"[0-9]+|[a-z]+")
_NUMERIC_PAIR = re.compile(r"(?<![0-9])([0-9]{1,2})[/.\-]([0-9]{1,2})(?![/.\-]?[0-9])")


def fold(text: str) -> str:
    """Case, accents and compatibility forms dropped; any script's decimal digits as ASCII digits."""
    digits = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    return unicodedata.normalize("NFKD", digits).encode("ascii", "ignore").decode().casefold()


def mentions_identity(text: str, identity: Identity) -> bool:
    """Whether ``text`` names the child (any name or alias word), or gives their postcode or date of birth."""
    folded = fold(text)
    if not folded.strip():
        return False
    return (
        _mentions_name(folded, identity)
        or _mentions_postcode(folded, identity.postcode)
        or _mentions_date(folded, identity.date_of_birth)
    )


def _name_words(identity: Identity) -> set[str]:
    words: set[str] = set()
    for name in (identity.given_names, identity.family_name, *identity.aliases):
        folded = fold(name)
        words.update(word for word in re.findall(r"[a-z]+", folded) if len(word) >= 2)
        # "O'Brien-Smith" is also written "OBrien", "OBrienSmith" or "Obrien Smith"
        for part in (*folded.split(), *re.split(r"[\s\-]+", folded)):
            joined = re.sub(r"[^a-z]", "", part)
            if len(joined) >= 2:
                words.add(joined)
    return words


# Letters spelt out one by one ("A.r.t.h.u.r", "a r t h u r", "S-M-I-T-H"): joined back into a word.
_SPELT = re.compile(r"(?<![a-z0-9])[a-z](?:[^a-z0-9\n]{1,2}[a-z](?![a-z]))+")
MIN_LONG_NAME = 6  # a name this long is also caught with one letter added, dropped or changed


def _mentions_name(folded: str, identity: Identity) -> bool:
    names = _name_words(identity)
    words = re.findall(r"[a-z]+", folded)
    for run in _SPELT.findall(folded):  # "a r t h u r" is one word; "a.r.t.h.u.r h.a.l.l" two
        words += [re.sub(r"[^a-z]", "", part) for part in (run, *run.split())]
    if not names.isdisjoint(words):
        return True
    long_names = [name for name in names if len(name) >= MIN_LONG_NAME]
    return any(_one_edit(word, name) for word in words for name in long_names if abs(len(word) - len(name)) <= 1)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` is ``b`` with one letter added, dropped or changed ("Arthurr", "Arhtur" is two)."""
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1 :] == b[i + 1 :]
    return a[i:] == b[i + 1 :]


def _mentions_postcode(folded: str, postcode: str | None) -> bool:
    wanted = re.sub(r"[^a-z0-9]", "", fold(postcode or ""))
    return len(wanted) >= 5 and wanted in re.sub(r"[^a-z0-9]", "", folded)


def _mentions_date(folded: str, dob: date) -> bool:
    tokens = [token for token in _TOKEN.findall(folded) if token not in _FILLER]
    if any(_is_compact_date(token, dob) for token in tokens if token.isdigit()):
        return True
    for i in range(len(tokens)):
        three = tokens[i : i + 3]
        two = tokens[i : i + 2]
        if len(three) == 3 and _is_written_date(three, dob):
            return True
        if len(two) == 2 and _is_day_and_month_word(two, dob):
            return True
    return any(_is_day_month(a, b, dob) or _is_day_month(b, a, dob) for a, b in _NUMERIC_PAIR.findall(folded))


def _is_compact_date(digits: str, dob: date) -> bool:
    d, m, y, yy = f"{dob.day:02d}", f"{dob.month:02d}", f"{dob.year:04d}", f"{dob.year % 100:02d}"
    return digits in {d + m + y, d + m + yy, y + m + d, m + d + y, yy + m + d, m + d + yy}


def _day(token: str, dob: date) -> bool:
    return token.isdigit() and len(token) <= 2 and int(token) == dob.day


def _month(token: str, dob: date) -> bool:
    if token.isdigit():
        return len(token) <= 2 and int(token) == dob.month
    return MONTHS.get(token) == dob.month


def _year(token: str, dob: date) -> bool:
    if not token.isdigit():
        return False
    return (len(token) == 4 and int(token) == dob.year) or (len(token) == 2 and int(token) == dob.year % 100)


def _is_written_date(three: list[str], dob: date) -> bool:
    """d m y, m d y or y m d, with numbers or a month name, a 2- or 4-digit year."""
    a, b, c = three
    return (
        (_day(a, dob) and _month(b, dob) and _year(c, dob))
        or (_month(a, dob) and _day(b, dob) and _year(c, dob))
        or (_year(a, dob) and _month(b, dob) and _day(c, dob))
    )


def _is_day_and_month_word(two: list[str], dob: date) -> bool:
    """'24 November', 'Nov 24': the birthday without a year still points at the child."""
    a, b = two
    return (_day(a, dob) and b in MONTHS and _month(b, dob)) or (a in MONTHS and _month(a, dob) and _day(b, dob))


def _is_day_month(day: str, month: str, dob: date) -> bool:
    return _day(day, dob) and _month(month, dob)
