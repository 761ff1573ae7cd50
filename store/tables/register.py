"""The register: local authorities, children (sealed identity, wrapped keys, blind index), involvements, name counts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.tables.base import Base, BigId, Personal, UtcDateTime, holds


class LocalAuthority(Base):
    """A local authority named in the feeds; duty managers and shielding decisions are scoped by it."""

    __tablename__ = "local_authorities"
    # A children row out of line names a child here: retention and decommissioning forget such a
    # name (store/lifecycle) and compact the table with the children's.
    __table_args__ = holds(Personal.NONE, feed_text=True, imported=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime())


class Child(Base):
    __tablename__ = "children"
    __table_args__ = holds(Personal.CHILD, imported=True)
    ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_authority: Mapped[str] = mapped_column(String(64), ForeignKey("local_authorities.name"), index=True)
    shielded: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | archived | destroyed
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed with the child's data key
    row_mac: Mapped[bytes | None] = mapped_column(LargeBinary)  # keyed MAC of the feed row: re-import no-op
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChildKey(Base):
    """A child's wrapped data key, apart from the data so that deleting it shreds the identity."""

    __tablename__ = "child_keys"
    __table_args__ = (
        # Seal-in and puncturing look child keys up by KEK id (a few cohort ids per day, never a scan).
        Index("ix_child_keys_kek_id", "kek_id"),
        holds(Personal.CHILD, child_column="child_ref", wrapped_key=("kek_id", "wrapped"), imported=True),
    )
    child_ref: Mapped[int] = mapped_column(BigInteger, ForeignKey("children.ref", ondelete="CASCADE"), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class ChildTerm(Base):
    """Blind index: keyed 64-bit HMACs of normalised identity terms → child."""

    __tablename__ = "child_terms"
    __table_args__ = ({"sqlite_with_rowid": False, **holds(Personal.CHILD, child_column="child_ref", imported=True)},)
    term: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    child_ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Involvement(Base):
    __tablename__ = "involvements"
    __table_args__ = (
        UniqueConstraint("child_ref", "practitioner_id", "service", "started"),
        holds(Personal.CHILD, child_column="child_ref", imported=True),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    child_ref: Mapped[int] = mapped_column(BigInteger, ForeignKey("children.ref", ondelete="CASCADE"))
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    service: Mapped[str] = mapped_column(String(200))
    started: Mapped[date] = mapped_column(Date)
    ended: Mapped[date | None] = mapped_column(Date)
    lead_professional: Mapped[bool] = mapped_column(Boolean, default=False)


class NameCount(Base):
    __tablename__ = "name_counts"
    # counts per blind name term
    __table_args__ = ({"sqlite_with_rowid": False, **holds(Personal.CHILD, imported=True)},)
    term: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    children: Mapped[int] = mapped_column(Integer)
