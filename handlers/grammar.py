"""One grammar for every front end: text in, a command name and its arguments out."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from handlers.matching.terms import Query
from handlers.refs import looks_like_reference
from store.characters import hidden_at
from store.register.feeds import POSTCODE
from store.register.terms import normalise_postcode, outward_code

# ASCII digits only: ``\d`` and ``str.isdigit`` also accept other scripts' digits and superscripts
# ("²"), which ``int`` then refuses or reads as a number nobody typed on purpose.
_DATE_PATTERNS = (
    (re.compile(r"^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})$"), ("d", "m", "y")),
    (re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$"), ("y", "m", "d")),
)
# Leading zeros, then at most as many digits as MAX_ID has: ``int`` is never asked to read a number
# it could not bound (past 4,300 digits it raises) and the value is checked before any query sees it.
_NUMBER = re.compile(r"0*([0-9]{1,19})")
MAX_ID = 2**63 - 1
"""The largest id a person may type (a relay message, a request): a 64-bit integer, the widest column
of either database. A larger number reached the driver, which refused it, and the person was told
that something went wrong."""
EARLIEST_YEAR = 1900
"""No date Signpost is asked about (a child's birth, a switch-off) comes before this year."""
LATEST_YEAR = 2199
_ASCII_DIGITS = frozenset("0123456789")
MAX_COMMAND_TEXT = 4000
"""The most characters a command may hold (Slack's limit for a message's text), checked before any
word of it is read: far above the longest real one (a purpose, a reason or a message of
``screening.MAX_TEXT`` characters after a command word and a reference), so such a text is told its
own limit, never this one."""
MAX_COMMAND_WORDS = 600
"""The most words a command may hold: more than ``screening.MAX_TEXT`` characters can make after a
command word and a reference (one-letter words, 500 of them)."""
MAX_NAMES = 12
"""The most names a search may hold: given names and family names together, every part of a
double-barrelled or abbreviated one counted."""
TOO_LONG = "too long"
"""The command ``parse`` names for text over ``MAX_COMMAND_TEXT`` or ``MAX_COMMAND_WORDS``."""
_NAME = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")


class UsageError(ValueError):
    """The text does not fit the command; the message says kindly what would."""


def a_word_too_many(form: str) -> UsageError:
    """Text after a command's last word, where ``form`` (``pending``, ``relay ID``) takes none: the one
    answer for every such command, so none runs as if the word were not there."""
    return UsageError(f"a word too many: nothing goes after {form}")


@dataclass(frozen=True, slots=True)
class Parsed:
    name: str
    args: str


def too_long(text: str) -> bool:
    """Whether ``text`` is too long to be a command (``MAX_COMMAND_TEXT``, ``MAX_COMMAND_WORDS``):
    its length first, then its words counted, at most one past the limit."""
    return len(text) > MAX_COMMAND_TEXT or len(text.split(None, MAX_COMMAND_WORDS)) > MAX_COMMAND_WORDS


def parse(text: str, keywords: frozenset[str]) -> Parsed:
    """Keyword commands first; then a reference number; then a name with a date of birth.

    Text too long to be a command (``too_long``) is none of these, and none of it is read: it is
    ``TOO_LONG``, with no arguments. Text holding a character that does not show as itself
    (``hides_characters``) is none of them either: it goes to usage, whatever its first word, before
    any command reads it."""
    if too_long(text):
        return Parsed(TOO_LONG, "")
    if hides_characters(text):
        return Parsed("usage", text)
    cleaned = " ".join(text.replace("\u00a0", " ").split())
    if not cleaned:
        return Parsed("help", "")
    first, _, rest = cleaned.partition(" ")
    if first.lower() in keywords:
        return Parsed(first.lower(), rest)
    if looks_like_reference(cleaned):
        return Parsed("lookup", cleaned)
    if any(parse_date(token) is not None for token in _fields(cleaned)) or _has_bad_date(cleaned):
        # "search Ava Price 05/01/2014" searches for Ava Price, not "Search Ava Price"; "seach Ava
        # Price 05/01/2014" is not searched for "Seach Ava Price": usage says how to search.
        if first.lower() == _SEARCH_WORD and rest:
            return Parsed("search", rest)
        return Parsed("usage" if near_search(first) else "search", cleaned)
    return Parsed("usage", cleaned)


_SEARCH_WORD = "search"
SEARCH_WORD_CLOSENESS = 0.8
"""How alike a first word must be to "search" to be taken for it misspelt ("seach", "serach"): above
what a name that looks like it comes to ("Sarah": 0.73)."""


def near_search(word: str) -> bool:
    """Whether ``word`` is the word search, or close to it: a search typed with a command word."""
    return bool(difflib.get_close_matches(word.lower(), [_SEARCH_WORD], n=1, cutoff=SEARCH_WORD_CLOSENESS))


# Line breaks and tabs are spaces here: a Slack or Teams message, or a reason typed into a form, may
# hold them (``parse`` reads every run of whitespace as one space).
_SPACES = frozenset("\t\n\r\u2028\u2029")


def hides_characters(text: str) -> bool:
    """Whether ``text`` holds a character that does not show as itself (``store.characters``) other
    than a tab or a line break: a control character, a format character (bidi overrides, which
    reorder what a reader sees; zero-width spaces, the soft hyphen, the byte-order mark, which split
    a word or a number invisibly; a joiner that joins nothing), half of a surrogate pair, a private
    use or unassigned character. No person means to send one; a command holding one is answered
    with help, never read."""
    return not text.isprintable() and any(text[at] not in _SPACES for at in hidden_at(text))


_EDGE_SPACES = " \t\n\r\u00a0"


def trim(text: str) -> str:
    """``text`` without the spaces at its ends, never a character that does not show as itself:
    ``str.strip()`` takes controls (\\x0b, \\x0c, \\x1c-\\x1f, \\x85) for spaces, and "\\x0chelp"
    trimmed so was read as help instead of being answered with usage (``hides_characters``)."""
    return text.strip(_EDGE_SPACES)


HIDDEN_HINT = (
    "That text holds a control character or an invisible formatting mark (they often come with pasted "
    "text): please type it again."
)


# Words of a question or a greeting, so that "who is this child" or "thank you" is not read as a name.
_NOT_NAME_WORDS = """a about an and any are can child could do find for from have hello hi how i is it me my
no of please search show tell thank thanks that the there this to what where which who why with yes you"""
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())


def looks_like_a_name(text: str) -> bool:
    """Two to four name-shaped words, perhaps with a postcode after them: a search by name whose
    date of birth was left out (``parse`` sends it to usage, which says so)."""
    words = _fields(as_name_text(text))
    names = words
    for _ in range(2):
        if len(names) > 2 and any(ch in _ASCII_DIGITS for ch in names[-1]):
            names = names[:-1]
    postcode = words[len(names) :]
    return (
        2 <= len(names) <= 4
        and all(_is_name(name) and name.lower() not in _NOT_NAMES for name in names)
        and (not postcode or parse_postcode(" ".join(postcode)) is not None)
    )


# Two dates in a search: the date of birth twice (in two forms), or a date of birth and another date.
# Said without either date; "not a real date" would be false of two real ones.
TWO_DATES = "please give one date of birth only, not two dates"
NOT_A_POSTCODE = "that doesn't look like a postcode: type it as on a letter, with or without its space, e.g. NS1 3LY"


def parse_postcode(text: str) -> str | None:
    """A UK postcode, or its outward code alone, as people type it (any case, with or without the
    space, "ns13ly"), in its canonical form ("NS1 3LY"); None for anything else.

    Built on the register's own reading (``store.register.terms.normalise_postcode`` and
    ``outward_code``, which matching compares by, and the feeds' ``POSTCODE`` pattern), so what a
    person types and what a feed holds are read alike."""
    code = normalise_postcode(text)
    if not POSTCODE.match(code):
        return None
    outward = outward_code(code)
    return code if outward == code else f"{outward} {code[len(outward) :]}"


def _is_name(token: str) -> bool:
    """Letters, hyphens and apostrophes only (not "M1²": ``_NAME`` alone lets superscripts by)."""
    return _NAME.match(token) is not None and all(ch.isalpha() or ch in "'\u2019-" for ch in token)


def _name_parts(token: str) -> list[str] | None:
    """The names a typed word holds: a full stop is how a letter writes an abbreviation ("St. Clair",
    "St.Clair"), so it ends a name; None when the word is not names."""
    parts = [part for part in token.split(".") if part]
    return parts if parts and all(_is_name(part) for part in parts) else None


def date_shaped(token: str) -> bool:
    """Whether ``token`` is written as a date (DD/MM/YYYY or YYYY-MM-DD), real or not (31/02/2027)."""
    return any(pattern.match(token) for pattern, _ in _DATE_PATTERNS)


def _has_bad_date(text: str) -> bool:
    return any(pattern.match(token) for token in text.split(" ") for pattern, _ in _DATE_PATTERNS)


_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_SHORT_YEAR = re.compile(r"(?<![\d/.-])\d{1,2}[/.-]\d{1,2}[/.-]\d{2}(?![\d/.-])")
_MONTH_WORD = re.compile(
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})[a-z]*\.?,?\s+\d{{4}}\b|\b(?:{_MONTHS})[a-z]*\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",
    re.IGNORECASE,
)
_LOOKALIKE_REF = re.compile(r"[0-9OoIl]{10}")
_ODD_YEAR = re.compile(r"(?<![\d/.-])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{3}|\d{5,})(?![\d/.-])")
# The year first but not as YYYY-MM-DD (2014/01/05, 2014.1.5): read as neither form.
_YEAR_FIRST = re.compile(r"(?<![\d/.-])\d{4}(?:[/.]\d{1,2}[/.-]|-\d{1,2}[/.])\d{1,2}(?![\d/.-])")
# Day, month and year with spaces between them or run together (05 01 2014, 05012014), or a date
# with a full stop after the year (05/01/2014. at the end of a sentence): read as no date. (A comma
# after it separates fields: ``parse`` reads the date.)
_UNSEPARATED_DATE = re.compile(r"(?<![\d/.-])(?:\d{1,2} \d{1,2} \d{4}|\d{8})(?![\d/.-])")
_PUNCTUATED_DATE = re.compile(r"(?<![\d/.-])\d{1,2}[/.-]\d{1,2}[/.-]\d{4}[.;:!?]+(?!\S)")
# A date of birth in a form Signpost does not read, and how to write it instead; the first that matches.
_DATE_HINTS = (
    (_SHORT_YEAR, "Please write the date of birth with the full year: DD/MM/YYYY."),
    (_ODD_YEAR, "Please write the date of birth as DD/MM/YYYY, with a four-digit year."),
    (_MONTH_WORD, "Please write the date of birth in numbers: DD/MM/YYYY."),
    (_YEAR_FIRST, "Please write the date of birth as DD/MM/YYYY or YYYY-MM-DD."),
    (
        _UNSEPARATED_DATE,
        "Please write the date of birth as DD/MM/YYYY, with a / between the day, the month and the year.",
    ),
    (_PUNCTUATED_DATE, "Please write the date of birth as DD/MM/YYYY, with nothing straight after the year."),
)
CODE_WITHOUT_ASKING = (
    "That looks like an authenticator code, but none was asked for just now: send what you wanted "
    "again and give the code when Signpost asks for it."
)


def near_miss(text: str) -> str | None:
    """What to fix when ``text`` nearly was a reference or held a date of birth in another form; None
    when it was neither. Never repeats what was typed (only how many digits it had)."""
    if hides_characters(text):
        return HIDDEN_HINT
    compact = "".join(text.split()).replace("-", "")
    if any(ch.isdecimal() and not ch.isascii() for ch in text):
        return "Please type numbers with the ordinary digits 0-9."
    if compact.isascii() and compact.isdigit() and len(compact) == 6:  # typed where no code is waiting
        return CODE_WITHOUT_ASKING
    if compact.isascii() and compact.isdigit() and 7 <= len(compact) <= 13 and len(compact) != 10:
        return f"A child's reference has 10 digits; that had {len(compact)}."
    if _LOOKALIKE_REF.fullmatch(compact) and not compact.isdigit() and sum(c.isdigit() for c in compact) >= 7:
        return "A child's reference is 10 digits: check for a letter O or I typed where a 0 or 1 should be."
    return next((hint for pattern, hint in _DATE_HINTS if pattern.search(text)), None)


def parse_number(text: str, low: int, high: int) -> int | None:
    """A whole number written in ASCII digits, within ``low``..``high`` (``high`` at most
    ``MAX_ID``); None for anything else.

    The one way commands read a number a person typed: never ``str.isdigit`` (true for "²"), never
    ``int`` on the text itself (it reads "²" as an error, " 7" and "7_0" as numbers)."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    value = int(match.group(1))
    return value if low <= value <= min(high, MAX_ID) else None


PRACTITIONER_ID_LENGTH = 64
"""The longest practitioner id (the register's column, and a feed's limit)."""


def parse_practitioner_id(text: str) -> str | None:
    """A practitioner id as typed: one word of at most ``PRACTITIONER_ID_LENGTH`` characters, read in
    upper case as the register keeps it; None for anything else (so it is never looked up, nor said
    back to the person, at any length)."""
    word = text.strip()
    if not word or len(word) > PRACTITIONER_ID_LENGTH or any(ch.isspace() for ch in word):
        return None
    return word.upper()


def parse_date(token: str) -> date | None:
    """DD/MM/YYYY (or . or -) or YYYY-MM-DD in ASCII digits, a real day in a sane year; else None."""
    value = calendar_date(token)
    return value if value is not None and EARLIEST_YEAR <= value.year <= LATEST_YEAR else None


def _year_only_wrong(token: str) -> bool:
    """Whether ``token`` is a date whose day and month are real (in a leap year) and whose year is
    outside ``EARLIEST_YEAR`` … ``LATEST_YEAR``, the year 0000 included: "check the year", not the
    day and month that were right."""
    for pattern, order in _DATE_PATTERNS:
        match = pattern.match(token)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
            if EARLIEST_YEAR <= parts["y"] <= LATEST_YEAR:
                return False
            try:
                date(2000, parts["m"], parts["d"])
            except ValueError:
                return False
            return True
    return False


def calendar_date(token: str) -> date | None:
    """What ``parse_date`` reads, in any year of the calendar (0001 to 9999); else None. For an
    operator's bounds (``--until 31/12/9999``), where no year is too far to name."""
    for pattern, order in _DATE_PATTERNS:
        match = pattern.match(token)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
            try:
                return date(parts["y"], parts["m"], parts["d"])
            except ValueError:  # no such day, or the year 0000
                return None
    return None


# What people type for an apostrophe in a name (a left quote, a modifier letter, a backtick, an
# acute accent, a prime), read as the right single quote that ``_NAME`` allows.
# Hyphens as Word, Outlook and PDFs write them (hyphen, non-breaking hyphen, figure dash, en dash,
# em dash, minus): "Smith\u2013Jones" pasted from a letter was refused as not a name.
_SPELLINGS = str.maketrans(
    dict.fromkeys("\u2018\u02bc\u0060\u00b4\u2032", "\u2019")
    | dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2212", "-")
)


def as_name_text(text: str) -> str:
    """Typed names as one spelling: composed (NFC: "Zoë" pasted from a Mac or a PDF comes as "Zoe"
    and a combining diaeresis, which ``_NAME`` refused), with one kind of apostrophe and one hyphen."""
    return unicodedata.normalize("NFC", text).translate(_SPELLINGS)


def _fields(text: str) -> list[str]:
    """The words of a search, a comma read as a space: "Ava Price, 05/01/2014, NS1 3LY" is written
    as a form or a letter lists its fields."""
    return text.replace(",", " ").split()


def parse_demographic(text: str, today: date) -> Query:
    """'Amy Jones 03/04/2014 M1 2AB' → names, date of birth (UK order) and optional postcode.

    Commas separate fields ("Amy Jones, 03/04/2014, M1 2AB"); one between names puts the family
    name first, as records write it ("Jones, Amy 03/04/2014")."""
    text = as_name_text(text)
    names: list[str] = []
    family_first: int | None = None  # how many names came before a comma between names
    postcode: list[str] = []
    dob: date | None = None
    for token in text.replace(",", " , ").split():
        if token == ",":
            if family_first is None and names and dob is None and not postcode:
                family_first = len(names)
            continue
        day = parse_date(token)
        if day is not None and dob is None:
            dob = day
        elif dob is not None and (day is not None or any(pattern.match(token) for pattern, _ in _DATE_PATTERNS)):
            raise UsageError(TWO_DATES)  # the date of birth twice, in two forms, or another date besides
        elif _year_only_wrong(token):  # a real day and month, in a year no child is born in (0000 too)
            raise UsageError("that date of birth is not a real date: please check the year (DD/MM/YYYY or YYYY-MM-DD)")
        elif any(pattern.match(token) for pattern, _ in _DATE_PATTERNS):
            raise UsageError(
                "that date of birth is not a real date: please check the day and the month (DD/MM/YYYY or YYYY-MM-DD)"
            )
        elif any(ch in _ASCII_DIGITS for ch in token):
            postcode.append(token)
        elif (parts := _name_parts(token)) is not None:
            names.extend(parts)
        else:
            raise UsageError("names may contain letters, hyphens and apostrophes only")
    if dob is None:
        raise UsageError("please include a date of birth (DD/MM/YYYY)")
    if dob > today:
        raise UsageError("that date of birth is in the future")
    if not names:
        raise UsageError("please include the child's name with the date of birth")
    if len(names) > MAX_NAMES:
        raise UsageError(f"a search holds at most {MAX_NAMES} names: the child's given names and family name")
    canonical = parse_postcode(" ".join(postcode)) if postcode else None
    if postcode and canonical is None:
        raise UsageError(NOT_A_POSTCODE)
    if family_first is not None and family_first < len(names):
        family, given = names[:family_first], names[family_first:]
        return Query(given_names=" ".join(given), family_name=" ".join(family), date_of_birth=dob, postcode=canonical)
    return Query(given_names=" ".join(names[:-1]), family_name=names[-1], date_of_birth=dob, postcode=canonical)
