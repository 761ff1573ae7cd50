"""The declarative base every table shares, and the column types they use."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a long log.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out on every backend (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Signpost stores UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Personal(StrEnum):
    """What personal data a table holds, which decides what retention and decommissioning do with it."""

    # A child's identity or per-child data, or a key to it: dies with the child or at decommissioning.
    CHILD = "child"
    # A practitioner's or chat user's personal data (names, contacts, chat ids, credentials, requests...).
    PERSON = "person"
    # The kept record (audit events, the decommissioning and its certificate): pseudonymous ids only
    # (actor ids, chat ids, child refs, sealed terms); retention and decommissioning never delete it.
    AUDIT = "audit"
    NONE = "none"  # no personal data


def holds(
    personal: Personal,
    *,
    child_column: str | None = None,
    wrapped_key: tuple[str, str] | None = None,
    feed_text: bool = False,
    imported: bool = False,
) -> dict[str, Any]:
    """A table's classification, for ``__table_args__`` (stored as ``Table.info``).

    ``child_column``: the column naming the child each row belongs to (rows retention deletes per
    child): on a 'child' table, or a 'person' table some of whose rows name a child (notices).
    ``wrapped_key``: the (KEK id, wrapped bytes) columns of a table of keys or seals made with
    ``KeyRing.wrap``: key rotation re-wraps them, decommissioning's first step deletes them.
    ``feed_text``: free text copied from a feed, where a row out of line can put a child's name
    (a table not personal by design): compacted with the children's data after retention destroys
    and at decommissioning, so that a name deleted from it leaves no old row version behind.
    ``imported``: written by `signpost import`, which has PostgreSQL's planner analyse it afterwards.
    """
    info: dict[str, Any] = {"personal": personal.value}
    if child_column is not None:
        info["child_column"] = child_column
    if wrapped_key is not None:
        info["wrapped_key"] = wrapped_key
    if feed_text:
        info["feed_text"] = True
    if imported:
        info["imported"] = True
    return {"info": info}


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
