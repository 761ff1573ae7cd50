"""Characters that do not show as themselves: the one definition every layer uses.

A chat command holding one is answered with help (``handlers.grammar.hides_characters``), a feed
field holding one is a problem (``store.register.feeds``), and a name or email a chat platform
reports shows each as ``?`` to the duty manager deciding (``handlers.access.registration``).

Hidden, by Unicode general category (as this Python's ``unicodedata`` knows them):

- ``Cc`` controls: C0 (NUL, tab, line feed, ESC…), DEL and C1 (next line, CSI…);
- ``Cf`` format characters: bidi overrides, embeddings, isolates and marks (they reorder what a
  reader sees), zero-width spaces, the word joiner, the soft hyphen, the byte-order mark, tag
  characters (which carry ASCII nobody sees);
- ``Zl`` and ``Zp``, the line and paragraph separators: they start a line where none shows;
- ``Cs`` half of a surrogate pair: no character at all, and one no database or log can encode;
- ``Co`` private use: its glyph is whatever a font chose, so two readers see different things;
- ``Cn`` unassigned code points and noncharacters: nothing to show. A character newer than this
  Python's Unicode database (``unicodedata.unidata_version``) is unassigned here too: hidden until
  Python knows it, which errs towards refusing.

Combining marks (``Mn``, ``Mc``, ``Me``) show, on the letter they follow; other spaces (``Zs``) show
as a space.

The one exception is a joiner, the zero-width non-joiner (U+200C) or joiner (U+200D): Persian
names need the first, Indic names (a half form after a virama) and emoji sequences the second.
A joiner shows as itself, by the join it makes or breaks, only between two non-ASCII letters,
marks or symbols (``L*``, ``M*``, ``So``, ``Sk``), which covers those uses. Anywhere else (at
either end, beside a space, a digit, punctuation, an ASCII letter or another joiner) it changes
nothing a reader sees, and a run of them is a known way to hide a message inside text: hidden.
This is a safe rule, not Unicode's exact one: a joiner between two accented Latin letters passes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
JOINERS = frozenset("\u200c\u200d")
_JOINABLE = frozenset({"So", "Sk"})


def _joins(before: str, after: str) -> bool:
    """Whether a joiner between ``before`` and ``after`` makes or breaks a join a reader sees."""
    return all(
        not ch.isascii() and (unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) in _JOINABLE)
        for ch in (before, after)
    )


def hidden_at(text: str) -> Iterator[int]:
    """The positions in ``text`` of the characters that do not show as themselves (see above)."""
    if text.isprintable():  # at C speed, for nearly every text: no character of those categories
        return
    for at, ch in enumerate(text):
        if unicodedata.category(ch) not in HIDDEN_CATEGORIES:
            continue
        if ch in JOINERS and 0 < at < len(text) - 1 and _joins(text[at - 1], text[at + 1]):
            continue
        yield at


HIDDEN_IN_PATH = (
    "holds a hidden character (a control character or an invisible formatting mark; a tab or a line break "
    "counts too): name a file whose path shows as typed"
)
"""Why a path (an argument or a setting) that does not show as itself is refused: the one wording."""


def shows_as_itself(text: str) -> bool:
    """Whether every character of ``text`` shows as itself on one line."""
    return text.isprintable() or next(hidden_at(text), None) is None  # the first, for nearly every field of a feed


def marked(text: str) -> str:
    """``text`` with each character that does not show as itself as ``?``, for showing what someone
    else typed: nothing in it reorders, splits or hides what the reader sees."""
    hidden = set(hidden_at(text))
    return "".join("?" if at in hidden else ch for at, ch in enumerate(text)) if hidden else text
