"""A shielded record found by name and date of birth, and what its finder may be told of it.

The finder typed a name and a date of birth, never the child's reference, and is not to learn it
(PRODUCT.md: a shielded match says only that a record exists and is shielded). So the Request access
and Send a message buttons of that answer carry a handle, not the reference: the search's own
correlation id, which its audit event (written before the answer) ties to the child, the asker and
the time (``store.audit.found``). Only whoever searched can use it, and only for ``FOUND_FOR``.
What they are told afterwards (the confirmation, the outcome, the relay's replies) names the
record as ``FOUND``; a practitioner who typed the reference is told it back as before.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.vocabulary import format_ref
from store.audit.found import shielded_found

PREFIX = "found-"
_HANDLE = re.compile(rf"{PREFIX}([0-9A-Za-z]{{8,64}})", re.IGNORECASE)
FOUND_FOR = timedelta(hours=24)  # as long as an access request waits for a decision
FOUND = "the record you found by name and date of birth"
GONE = (
    "That button no longer works: it lasts a day, and only for whoever searched. Please search again by "
    "name and date of birth."
)


def handle(correlation_id: str) -> str:
    """What a button offered after a search stands for the child by (``PREFIX`` and the search's id)."""
    return f"{PREFIX}{correlation_id}"


def handle_in(args: str) -> tuple[str, str] | None:
    """``(search id, the rest)`` when the arguments start with a handle; None otherwise."""
    first, _, rest = args.strip().partition(" ")
    matched = _HANDLE.fullmatch(first)
    return None if matched is None else (matched.group(1), rest.strip())


async def resolve(session: AsyncSession, search_id: str, practitioner_id: str, now: datetime) -> int | None:
    """The child ``practitioner_id``'s own search found shielded, within ``FOUND_FOR``; None otherwise."""
    return await shielded_found(session, search_id, practitioner_id, now - FOUND_FOR)


def named(ref: int, withheld: bool) -> str:
    """The record as its requester or sender may be told of it: by reference when they typed it."""
    return FOUND if withheld else format_ref(ref)


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]
