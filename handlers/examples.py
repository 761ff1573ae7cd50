"""Examples in what Signpost says, by the store it serves: the demo's own on the demo store.

The usage texts and help give examples from the demo register (`signpost seed-demo`), so that each
answers there as README describes (tests/bot/console/test_help_examples.py). Any other store (a
register imported from feeds) holds none of its children, people or authorities: an example naming
one points at nobody there, or, a reference that happens to be valid, at a real child. There an
example that names any of them is left out, and the form before it stands on its own
(``request REFERENCE PURPOSE``). Help's lines and every answer to text that did not fit
(``Dispatcher``) follow this one rule.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from store.register import demo
from store.register.synthetic import AUTHORITIES

# ", e.g. request 999 000 1146 section 47 enquiry" up to a parenthesis or the end (a full stop
# ending the sentence stays).
_EXAMPLE = re.compile(r",? e\.g\. (?P<commands>[^(]+?)(?=\s*\(|\.?$)", re.MULTILINE)
# What names something of the demo data: a child's reference, a practitioner id, a date (of
# birth), a postcode, a local authority of the demo's.
_NAMES_DEMO_DATA = re.compile(
    r"\b\d{3} \d{3} \d{4}\b"
    r"|\b[A-Z]+-[A-Z]*\d+\b"
    r"|\b\d{1,2}/\d{1,2}/\d{4}\b"
    r"|\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b"
    rf"|\b(?:{'|'.join(name for name, _ in AUTHORITIES)})\b"
)


async def on_demo_store(session: AsyncSession) -> bool:
    """Whether the store holds the demo data (`signpost seed-demo`), which the examples name."""
    return await demo.size(session) is not None


def for_any_store(text: str) -> str:
    """``text`` without an example that names a child's reference, a practitioner id, a date, a
    postcode or an authority (the demo's, or as like as not a real one's)."""
    return _EXAMPLE.sub(lambda m: "" if _NAMES_DEMO_DATA.search(m["commands"]) else m[0], text)


def names_demo_data(text: str) -> bool:
    """Whether ``text`` holds an example ``for_any_store`` leaves out (so the store need be asked)."""
    return for_any_store(text) != text


async def for_this_store(session: AsyncSession, text: str) -> str:
    """``text`` as this store's people should read it: as written on the demo store, else without
    the examples that name the demo's data (one read of ``meta``, only when ``text`` has one)."""
    if not names_demo_data(text) or await on_demo_store(session):
        return text
    return for_any_store(text)
