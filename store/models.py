"""Tables of the core: children (encrypted identity, blind index), practitioners, involvements, audit.

Feature modules define their own tables on the same ``Base`` (one module per aggregate) and add
an Alembic revision whose ``down_revision`` is ``"0001_core"``; the store upgrades to ``heads``.
A test compares the migrated schema with this metadata, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Small facts about this store (e.g. that it holds the demo data)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Child(Base):
    __tablename__ = "children"
    ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_authority: Mapped[str] = mapped_column(String(64), index=True)
    shielded: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | archived | destroyed
    identity: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed with the child's data key
    row_mac: Mapped[bytes | None] = mapped_column(LargeBinary)  # keyed MAC of the feed row: re-import no-op
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChildKey(Base):
    """A child's wrapped data key, apart from the data so that deleting it shreds the identity."""

    __tablename__ = "child_keys"
    child_ref: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("children.ref", ondelete="CASCADE"), primary_key=True
    )
    kek_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class ChildTerm(Base):
    """Blind index: keyed 64-bit HMACs of normalised identity terms → child."""

    __tablename__ = "child_terms"
    __table_args__ = ({"sqlite_with_rowid": False},)
    term: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    child_ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Practitioner(Base):
    __tablename__ = "practitioners"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    given_name: Mapped[str] = mapped_column(String(200))
    family_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    local_authority: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    roles: Mapped[str] = mapped_column(String(64))  # ';'-separated: practitioner, duty_manager, admin
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | inactive
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ChatIdentity(Base):
    """A platform identity linked to a practitioner (at most one per platform per practitioner)."""

    __tablename__ = "chat_identities"
    __table_args__ = (UniqueConstraint("practitioner_id", "platform"),)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE")
    )
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Involvement(Base):
    __tablename__ = "involvements"
    __table_args__ = (UniqueConstraint("child_ref", "practitioner_id", "service", "started"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    child_ref: Mapped[int] = mapped_column(BigInteger, ForeignKey("children.ref", ondelete="CASCADE"))
    practitioner_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    service: Mapped[str] = mapped_column(String(200))
    started: Mapped[date] = mapped_column(Date)
    ended: Mapped[date | None] = mapped_column(Date)
    lead_professional: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEvent(Base):
    """One row per command, written before its reply. Query terms are sealed, never plain."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_actor_id_at", "actor_id", "at"),)
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor_id: Mapped[str | None] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(128))
    actor_role: Mapped[str | None] = mapped_column(String(200))
    actor_org: Mapped[str | None] = mapped_column(String(200))
    actor_la: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    subject_refs: Mapped[str] = mapped_column(Text, default="")  # space-separated child references
    result_count: Mapped[int] = mapped_column(Integer, default=0)
    correlation_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(String(200), default="")  # never personal data
    terms: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed query terms
    terms_key: Mapped[str | None] = mapped_column(String(32))  # "child:<ref>" or "period:<YYYY-MM>"


class AuditSubject(Base):
    """Which children an audit event touched, for subject-access reports."""

    __tablename__ = "audit_subjects"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    child_ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)


class AuditTermKey(Base):
    """Data keys for query terms that touched no single child, one per month (shreddable)."""

    __tablename__ = "audit_term_keys"
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class Notice(Base):
    """A message to a person, stored first so that none is lost if a front end is down."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_pending", "delivered_at", "not_before"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recipient_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)  # JSON: text and buttons; never child identity
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    not_before: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
