"""Is this text about the child? The one filter for free text that leaves Signpost (a denial reason,
a relayed message): it must not carry the child's name, date of birth, postcode or reference in any
spelling it can tell: a name in any case, accent or script, in the register's script or written in Latin
letters ("Ivanova" for Иванова), spelt out letter by letter, run together ("AmyJones"), or (six
letters or more) with one letter added, dropped or changed.

The text and the identity are both read the same two ways before they are compared: folded
(case, accents and invisible joiners dropped, any script kept, other scripts' digits read as
digits) and transliterated into Latin letters (``anyascii``). A name in a script written without
spaces between words (Chinese, Japanese, Thai) is looked for inside the text, not as a word. A date
of birth is recognised however it is written: 24/11/2017, 24-11-17, 24.11.2017, 2017-11-24,
24112017, 24th November 2017, the twenty-fourth of November 2017, 24.xi.2017, Nov 24 2017, 24 Nov —
day and month alone are enough. It fails closed: a reason that merely looks like the child's
birthday is refused too, and the person is asked to send it again without it.

The reference is withheld from whoever found a shielded record by name and date of birth
(handlers/access/found.py), so text that gives it is refused too: its ten digits (or the first nine,
which make the tenth, the check digit) however they are grouped or separated (7771000029, 777 100
0029, 777-100-0029, 777.100.0029, 7 7 7 1 0 0 0 0 2 9), in any script's digits. Digits with only
spaces or punctuation between them are read as one number, so a reference inside a longer number is
refused too; a phone number or another reference is not this one and passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from itertools import product

from anyascii import anyascii

from handlers.grammar import parse_date
from store.keys.keychain import DESTROY_AT_AGE, birthday
from store.register.refs import is_valid
from store.register.terms import Identity

MONTHS = {
    **{name: n for n, name in enumerate(("january", "february", "march", "april", "may", "june"), 1)},
    **{name: n for n, name in enumerate(("july", "august", "september", "october", "november", "december"), 7)},
    **{name: n for n, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun"), 1)},
    **{name: n for n, name in enumerate(("jul", "aug", "sep", "oct", "nov", "dec"), 7)},
    "sept": 9,
}
# A month in Roman numerals ("24.xi.2017"), read only inside a whole date: "i" alone is a word.
ROMAN_MONTHS = {
    name: n for n, name in enumerate(("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii"), 1)
}
_UNIT_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
)
# Days written as ordinal words: "third", "twenty-fourth", "thirty first" (read by ``_day_words``).
_TENS = {"twenty": 20, "twentieth": 20, "thirty": 30, "thirtieth": 30}
# Words that may sit inside a date without breaking it: "24th of November", "the 24th".
_FILLER = frozenset({"st", "nd", "rd", "th", "of", "the"})
_TOKEN = re.compile(r"[0-9]+|[a-z]+")
_NUMERIC_PAIR = re.compile(r"(?<![0-9])([0-9]{1,2})[/.\-]([0-9]{1,2})(?![/.\-]?[0-9])")
_LETTERS = re.compile(r"[^\W\d_]+")  # a run of letters of any script
_UNSEEN = frozenset({"Mn", "Me", "Cf"})  # accents and other marks, joiners and other invisible characters


def fold(text: str) -> str:
    """Case, accents, joiners and compatibility forms dropped, letters of every script kept; any
    script's decimal digits as ASCII digits."""
    digits = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    decomposed = unicodedata.normalize("NFKD", digits)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) not in _UNSEEN).casefold()


def latin(text: str) -> str:
    """``text`` in Latin letters and ASCII digits, case dropped ("Мария" is "mariya", "Søren" "soren")."""
    return anyascii(fold(text)).casefold()


def mentions_identity(text: str, identity: Identity) -> bool:
    """Whether ``text`` names the child (any name or alias word), or gives their postcode or date of birth."""
    folded = fold(text)
    if not folded.strip():
        return False
    spelt = latin(text)
    return (
        _mentions_name(folded, spelt, identity)
        or _mentions_postcode(spelt, identity.postcode)
        or _mentions_date(spelt, identity.date_of_birth)
    )


_DIGIT_RUN = re.compile(r"[0-9]+(?:[\W_]+[0-9]+)*")  # digits with spaces or punctuation between
_NOT_DIGIT = re.compile(r"[^0-9]")


def mentions_reference(text: str, ref: int) -> bool:
    """Whether ``text`` gives the child's reference: its ten digits (as ``format_ref`` writes them, with
    leading zeros) or the first nine, in any grouping, separators or script's digits."""
    digits = f"{ref:010d}"
    wanted = (digits, digits[:9])
    for run in _DIGIT_RUN.findall(fold(text)):
        joined = _NOT_DIGIT.sub("", run)
        if any(number in joined for number in wanted):
            return True
    return False


CODE_DIGITS = 6  # an authenticator code's length (handlers/stepup/totp.py, ``DIGITS``)


def code_shaped(text: str) -> frozenset[str]:
    """Every six digits in ``text`` that could be an authenticator code, as ``mentions_reference``
    reads digits (any script's, with spaces or punctuation between): six in a row, also inside a
    longer number ("01632 871234", a code at the end of a phone number, is still the code), and groups
    side by side that make six ("871 234", "871-234", "8 7 1 2 3 4"). Empty when there are none, so
    screening reads no secret for such a text (handlers/access/screening.py, ``refuse_code``)."""
    found: set[str] = set()
    for run in _DIGIT_RUN.findall(fold(text)):
        groups = re.findall(r"[0-9]+", run)
        for group in groups:
            found.update(group[i : i + CODE_DIGITS] for i in range(len(group) - CODE_DIGITS + 1))
        for start in range(len(groups)):
            joined = groups[start]
            for group in groups[start + 1 :]:
                joined += group
                if len(joined) >= CODE_DIGITS:
                    break
            if len(joined) == CODE_DIGITS:
                found.add(joined)
    return frozenset(found)


def _name_words(identity: Identity, read: Callable[[str], str]) -> set[str]:
    """The child's name words as ``read`` renders them: each word of every name and alias, each
    hyphenated or apostrophised name joined ("OBrien", "OBrienSmith"), and given and family names
    run together ("AmyJones", "JonesAmy")."""
    words: set[str] = set()
    for name in (identity.given_names, identity.family_name, *identity.aliases):
        folded = read(name)
        words.update(word for word in _LETTERS.findall(folded) if len(word) >= 2)
        # "O'Brien-Smith" is also written "OBrien", "OBrienSmith" or "Obrien Smith"
        for part in (*folded.split(), *re.split(r"[\s\-]+", folded)):
            joined = "".join(_LETTERS.findall(part))
            if len(joined) >= 2:
                words.add(joined)
    given = _LETTERS.findall(read(identity.given_names))
    family = ["".join(_LETTERS.findall(read(identity.family_name)))]
    for first, last in product([*given, "".join(given)], family):
        if first and last:
            words.update({first + last, last + first})
    return words


# Letters spelt out one by one ("A.r.t.h.u.r", "a r t h u r", "S-M-I-T-H", in any script): joined back
# into a word. A letter here is a letter of any script; between two, one or two other characters.
_SPELT = re.compile(r"(?<![^\W_])[^\W\d_](?:[^\w\n]{1,2}[^\W\d_](?![^\W_]))+")
MIN_LONG_NAME = 6  # a name this long is also caught with one letter added, dropped or changed


def _mentions_name(folded: str, spelt: str, identity: Identity) -> bool:
    """In the register's own script, then in Latin letters; each word as typed or spelt out, and
    a long name with one slip."""
    for text, read in ((folded, fold), (spelt, latin)):
        names = _name_words(identity, read)
        if any(name in text for name in names if _written_without_spaces(name)):
            return True
        words = _LETTERS.findall(text)
        for run in _SPELT.findall(text):  # "a r t h u r" is one word; "a.r.t.h.u.r h.a.l.l" two
            words += ["".join(_LETTERS.findall(part)) for part in (run, *run.split())]
        if read is latin:  # "Sm1th", "J@ck": digits and signs for the letters they look like
            words += _undisguised(text)
        if not names.isdisjoint(words):
            return True
        long_names = [name for name in names if len(name) >= MIN_LONG_NAME]
        if any(_one_edit(word, name) for word in words for name in long_names if abs(len(word) - len(name)) <= 1):
            return True
    return False


# Digits and signs written for the letters they look like, in a word that has letters of its own
# ("Sm1th", "Qu0rlby", "J@ck"); "1" is an i or an l.
_LOOK_ALIKES = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s", "!": "i", "|": "l"}
_WORD = re.compile(r"[a-z0-9@$!|]++")  # possessive: a long run of letters is read once, never backtracked
_LOOKS_ALIKE = re.compile(r"[0-9@$!|]")
# A postcode's halves are letters and digits already: "AL1", "LE3", "SW1A" (a district) and "3LY"
# (the inward code) name a place, not a child called Ali, Lee or Ely.
_POSTCODE_PART = re.compile(r"[a-z]{1,2}[0-9][a-z0-9]?|[0-9][a-z]{2}")


def _undisguised(spelt: str) -> list[str]:
    """The words of Latin ``spelt`` text written with a look-alike digit or sign, read as letters
    (each way for a "1"). A word needs two letters of its own ("s47", "4b" and "0161" are no names)
    and is no half of a postcode ("AL1", "3LY")."""
    found: list[str] = []
    for word in _WORD.findall(spelt):
        if _LOOKS_ALIKE.search(word) is None or _POSTCODE_PART.fullmatch(word) is not None:
            continue
        if sum(ch.isalpha() for ch in word) < 2:
            continue
        read = "".join(_LOOK_ALIKES.get(ch, ch) for ch in word)
        for each in {read.replace("1", "i"), read.replace("1", "l")}:
            if each.isalpha():
                found.append(each)
    return found


def _written_without_spaces(name: str) -> bool:
    """A name in a script whose words are not separated by spaces (Han, kana, Thai, ...): its letters
    have no case and are not Latin-like. Such a name is looked for inside the text (fails closed)."""
    return any(
        unicodedata.name(ch, "").startswith(
            ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN", "YI ")
        )
        for ch in name
    )


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
    tokens = _day_words([token for token in _TOKEN.findall(folded) if token not in _FILLER])
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


def _day_words(tokens: list[str]) -> list[str]:
    """Ordinal days in words as numbers: "third" is "3", "twenty fourth" (or "twenty-fourth") "24"."""
    out: list[str] = []
    for token in tokens:
        unit = _UNIT_ORDINALS.index(token) + 1 if token in _UNIT_ORDINALS else None
        if unit is not None and unit < 10 and out and out[-1] in ("20", "30") and out[-1] != token:
            out[-1] = str(int(out[-1]) + unit)
        elif unit is not None:
            out.append(str(unit))
        elif token in _TENS:
            out.append(str(_TENS[token]))
        else:
            out.append(token)
    return out


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
    """d m y, m d y or y m d, with numbers, a month name or Roman numerals, a 2- or 4-digit year."""
    a, b, c = three

    def month(token: str) -> bool:
        return _month(token, dob) or ROMAN_MONTHS.get(token) == dob.month

    return (
        (_day(a, dob) and month(b) and _year(c, dob))
        or (month(a) and _day(b, dob) and _year(c, dob))
        or (_year(a, dob) and month(b) and _day(c, dob))
    )


def _is_day_and_month_word(two: list[str], dob: date) -> bool:
    """'24 November', 'Nov 24': the birthday without a year still points at the child."""
    a, b = two
    return (_day(a, dob) and b in MONTHS and _month(b, dob)) or (a in MONTHS and _month(a, dob) and _day(b, dob))


def _is_day_month(day: str, month: str, dob: date) -> bool:
    return _day(day, dob) and _month(month, dob)


# Any child's details, not only this one's: text that goes to another person or into a record (a
# purpose, a reason, a relayed message, an answer) must not give a second child's reference, date
# of birth or postcode either. Read from the text alone, never from a record, so a refusal answers
# no guess about any child.
REFERENCE, DATE_OF_BIRTH, POSTCODE = "a child's reference", "a date of birth", "a postcode"
_DATE_SHAPED = re.compile(r"(?<![0-9])[0-9]{1,4}(?:[/.\-][0-9]{1,4}){2}(?![0-9])")
_SHORT_YEAR = re.compile(r"(?<![0-9/.\-])([0-9]{1,2})([/.\-])([0-9]{1,2})\2([0-9]{2})(?![0-9/.\-]?[0-9])")
# Groups of digits joined by spaces, by a full stop, hyphen or slash with spaces or none around it, or
# by a comma alone (a comma and a space part a list): "943 476 5919", "943  476  5919",
# "943 - 476 - 5919", "943/476/5919", "943,476,5919".
_GROUPED_DIGITS = re.compile(r"[0-9]+(?:(?: *[.\-/] *|,| +)[0-9]+)*")
# A full UK postcode, the space optional ("NS1 3LY", "ns13ly"). An inward part that reads as a time
# ("B2 3pm", in any case) or as an ordinal in small letters ("s47 2nd meeting") is read as that: a
# time or a "2nd meeting" is far more often meant than one postcode in a few hundred that ends so,
# and a postcode in capitals ("S47 2ND") is still refused.
# The two parts may also be joined by several spaces or a hyphen ("NS1  3LY", "NS1-3LY").
_FULL_POSTCODE = re.compile(
    r"(?<![a-z0-9])[a-z]{1,2}[0-9][a-z0-9]?(?: *- *| *)([0-9][a-z]{2})(?![a-z0-9])", re.IGNORECASE
)
_TIME = re.compile(r"[0-9](?:am|pm)", re.IGNORECASE)
_ORDINAL = re.compile(r"1st|2nd|3rd|[04-9]th")
# What is read as a phone number or a date, never a reference: an international number ("+44 7700
# 900123", "+44 (0)113 496 0001", ten digits after the country code) and a date in numbers.
_NOT_A_REFERENCE = re.compile(
    r"\+ ?[0-9]{1,3} ?(?:\(0\))?(?:[ .\-]?[0-9]+)+"
    r"|(?<![0-9])(?:[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-][0-9]{2,4}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2})(?![0-9])"
)


def other_details(text: str, today: date) -> tuple[str, ...]:
    """What in ``text`` could be any child's reference (ten digits whose last is the check digit of
    the first nine, however grouped: as ``mentions_reference`` reads digits), date of birth (a full
    date, in a form ``handlers.grammar`` reads or with a two-digit year or a month's name, on or
    before ``today`` and within a registered child's lifetime) or full postcode; empty when none."""
    spelt = latin(text)
    found = (
        (REFERENCE, _gives_a_reference(fold(text))),
        (DATE_OF_BIRTH, any(_could_be_born(day, today) for day in _full_dates(spelt, today))),
        (POSTCODE, _gives_a_postcode(anyascii(unicodedata.normalize("NFKC", text)))),
    )
    return tuple(kind for kind, there in found if there)


def _gives_a_reference(folded: str) -> bool:
    """Ten digits in groups next to each other (one group, or several joined by a space, a hyphen or
    a full stop, as references are written) that make a valid reference. A longer number (a phone
    number's eleven) is not one, nor digits joined by what joins a time or a date ("14:30", "3/4")."""
    for run in _GROUPED_DIGITS.findall(_NOT_A_REFERENCE.sub(" ; ", folded)):
        groups = re.findall(r"[0-9]+", run)
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) >= 10:
                    break
            if len(digits) == 10 and is_valid(digits):
                return True
    return False


def _full_dates(spelt: str, today: date) -> list[date]:
    """Every full date in the text: DD/MM/YYYY (/ . -), YYYY-MM-DD, DD/MM/YY, "03 04 2016",
    YYYYMMDD, "3 Apr 16", "3 April 2016", "3rd of April 2016", "April 3 2016"."""
    days = [day for token in _DATE_SHAPED.findall(spelt) if (day := parse_date(token)) is not None]
    for d, _, m, yy in _SHORT_YEAR.findall(spelt):
        year = 2000 + int(yy) if 2000 + int(yy) <= today.year else 1900 + int(yy)
        days += _real_date(year, int(m), int(d))
    for d, m, y in _SPACED_DATE.findall(spelt):  # "03 04 2016"
        days += _real_date(int(y), int(m), int(d))
    for d, name, yy in _NAMED_SHORT_YEAR.findall(spelt):  # "3 Apr 16", "3-Apr-16"
        if name in MONTHS:
            days += _real_date(2000 + int(yy) if 2000 + int(yy) <= today.year else 1900 + int(yy), MONTHS[name], int(d))
    for y, m, d in _COMPACT_DATE.findall(spelt):  # "20160403"
        days += _real_date(int(y), int(m), int(d))
    tokens = [token for token in _TOKEN.findall(spelt) if token not in _FILLER]
    for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if not (c.isdigit() and len(c) == 4):
            continue
        if a.isdigit() and b in MONTHS:
            days += _real_date(int(c), MONTHS[b], int(a))
        elif a in MONTHS and b.isdigit():
            days += _real_date(int(c), MONTHS[a], int(b))
    return days


# Day, month and four-digit year in numbers with spaces between; a day and a month's name with a
# two-digit year (not a time: "3 May 10:30", "3 May 10am", "3 May 10-11"); eight digits YYYYMMDD.
_SPACED_DATE = re.compile(r"(?<![0-9.,/:\-])([0-9]{1,2}) +([0-9]{1,2}) +([0-9]{4})(?![0-9]|[.,/:\-][0-9])")
_NAMED_SHORT_YEAR = re.compile(
    r"(?<![0-9])([0-9]{1,2})(?:st|nd|rd|th)?[ \-]+([a-z]+)\.?[ \-]+'?([0-9]{2})"
    r"(?![0-9]| *[.:\-][ 0-9]| ?(?:am|pm|h|hrs)\b)"
)
_COMPACT_DATE = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})([0-9]{2})([0-9]{2})(?![0-9])")


def _real_date(year: int, month: int, day: int) -> list[date]:
    try:
        return [date(year, month, day)]
    except ValueError:
        return []


def _could_be_born(day: date, today: date) -> bool:
    """A registered child was born on or before today, and is destroyed on their 24th birthday."""
    return birthday(day, DESTROY_AT_AGE) > today >= day


def _gives_a_postcode(ascii_text: str) -> bool:
    """A full postcode in ``ascii_text`` (case kept: an ordinal in small letters is not one)."""
    return any(
        not (_TIME.fullmatch(inward) or _ORDINAL.fullmatch(inward)) for inward in _FULL_POSTCODE.findall(ascii_text)
    )


def details_text(found: tuple[str, ...]) -> str:
    """ "a child's reference, a date of birth and a postcode" from ``other_details``."""
    return found[0] if len(found) == 1 else f"{', '.join(found[:-1])} and {found[-1]}"
