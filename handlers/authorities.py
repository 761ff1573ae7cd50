"""A local authority's name as an admin or operator types it, read as the register's: any case and
any spacing or punctuation ("northshire", "North Shire", "WESTVALE" for "West Vale"), by the key the
feeds' import already reads spellings of one authority by (``store.register.feeds.authority_key``).

Every command that takes an authority reads it here. The authorities are those practitioners belong
to (``store.register.feeds.authority_names``): their names are not personal data, and an unknown one
is answered with them (up to ``SHOWN``), never with what was typed. An authority only a children feed
names is none of them: that column is free text, and a row out of line puts a child's name there.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from store.register.feeds import authority_key, authority_names

SHOWN = 10
NO_SUCH_AUTHORITY = "There is no local authority by that name in the register."
# The longest name the register keeps (``LocalAuthority.name``, store/tables): far longer text is no
# authority's name.
_LONGEST = 64


class UnknownAuthority(LookupError):
    """No authority in the register goes by the name typed; the message says which do."""


async def known(session: AsyncSession) -> list[str]:
    """The authorities practitioners belong to, by name."""
    return await authority_names(session)


def find(names: Sequence[str], typed: str) -> str | None:
    """The registered name among ``names`` that ``typed`` spells, or None."""
    if len(typed) > 4 * _LONGEST:  # spaces and punctuation aside, no longer than a name it could be
        return None
    key = authority_key(typed)
    return next((name for name in names if key and authority_key(name) == key), None)


def unknown(names: Sequence[str]) -> str:
    """The kind answer to a name no authority has: the names there are (the first ``SHOWN``)."""
    if not names:
        return f"{NO_SUCH_AUTHORITY} It holds none yet: import the practitioners feed first."
    shown = ", ".join(names[:SHOWN])
    more = f", and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return f"{NO_SUCH_AUTHORITY} The local authorities in the register are: {shown}{more}."


async def resolve(session: AsyncSession, typed: str) -> str:
    """The registered name of the authority ``typed`` names; ``UnknownAuthority`` when none."""
    names = await known(session)
    found = find(names, typed)
    if found is None:
        raise UnknownAuthority(unknown(names))
    return found
