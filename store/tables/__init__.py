"""Every table Signpost keeps, defined once, each classified by the personal data it holds.

Importing this package (or any module in it) registers every table on ``Base.metadata``;
retention, decommissioning, key rotation and backup derive their lists from that metadata (the
helpers below), never from a list written by hand. A new table says what it holds with
``__table_args__ = holds(Personal...)`` (store/tables/base.py); tests/store/tables fails until it does.
"""

from __future__ import annotations

from sqlalchemy import Table

from store.tables import audit, delivery, lifecycle, people, register
from store.tables.base import Base, Personal, holds

__all__ = [
    "Base",
    "Personal",
    "audit",
    "child_rows",
    "classification",
    "deletion_order",
    "delivery",
    "feed_text_tables",
    "holds",
    "imported_tables",
    "lifecycle",
    "people",
    "register",
    "tables_holding",
    "wrapped_key_tables",
]


def classification(table: Table) -> Personal:
    """What personal data ``table`` holds (KeyError/ValueError when it was never classified)."""
    return Personal(table.info["personal"])


def deletion_order() -> list[Table]:
    """Every table, those that point at others first (so deleting in this order breaks no foreign key)."""
    return list(reversed(Base.metadata.sorted_tables))


def tables_holding(*kinds: Personal) -> list[Table]:
    """The tables classified as any of ``kinds``, in deletion order."""
    return [t for t in deletion_order() if classification(t) in kinds]


def feed_text_tables() -> list[Table]:
    """Every table of free text copied from a feed (``holds(..., feed_text=True)``), in deletion order."""
    return [t for t in deletion_order() if t.info.get("feed_text")]


def imported_tables() -> list[Table]:
    """Every table `signpost import` writes (``holds(..., imported=True)``), in deletion order."""
    return [t for t in deletion_order() if t.info.get("imported")]


def wrapped_key_tables() -> list[tuple[Table, str, str]]:
    """(table, KEK-id column, wrapped column) of every table of keys or seals made with ``KeyRing.wrap``."""
    found = []
    for table in deletion_order():
        if "wrapped_key" in table.info:
            kek_id, wrapped = table.info["wrapped_key"]
            found.append((table, str(kek_id), str(wrapped)))
    return found


def child_rows() -> list[tuple[Table, str]]:
    """(table, child column) of every table whose rows belong to one child, in deletion order."""
    return [(t, str(t.info["child_column"])) for t in deletion_order() if "child_column" in t.info]
