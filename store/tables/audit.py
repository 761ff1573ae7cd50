"""The audit: events, their subjects, possible matches and term keys, the hash chain and checkpoints,
misuse alerts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.tables.base import Base, BigId, Personal, UtcDateTime, holds


class AuditEvent(Base):
    """One row per command, written before its reply. Query terms are sealed, never plain."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_actor_id_at", "actor_id", "at"), holds(Personal.AUDIT))
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
    # "child:<ref>", "cohort:<d tag>", "period:<YYYY-MM>", or "withheld:cohort destroyed" (no terms kept)
    terms_key: Mapped[str | None] = mapped_column(String(32))


class AuditSubject(Base):
    """Which children an audit event touched, for subject-access reports."""

    __tablename__ = "audit_subjects"
    __table_args__ = holds(Personal.AUDIT)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    child_ref: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, index=True)


class AuditCandidate(Base):
    """Which searches had a child as a possible match, filed by the child's pseudonymous tag
    (``store.audit.candidates``): a tag and an event's sequence number, nothing else. Append-only."""

    __tablename__ = "audit_candidates"
    __table_args__ = ({"sqlite_with_rowid": False, **holds(Personal.AUDIT)},)
    tag: Mapped[str] = mapped_column(String(16), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class AuditTermKey(Base):
    """Data keys for query terms that touched no single child, one per month (shreddable)."""

    __tablename__ = "audit_term_keys"
    __table_args__ = holds(Personal.CHILD, wrapped_key=("kek_id", "wrapped"))  # open sealed search terms
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)


class MisuseAlert(Base):
    __tablename__ = "misuse_alerts"
    __table_args__ = holds(Personal.PERSON)  # who tripped which rule
    dedupe_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditChainEntry(Base):
    """One event's place in the chain: its leaf hash and the chain head after it."""

    __tablename__ = "audit_chain"
    __table_args__ = holds(Personal.NONE)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_seq: Mapped[int] = mapped_column(BigInteger)  # the event before it in the chain (0: first)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditChainHead(Base):
    """The one row every append locks: how long the chain is and its current head."""

    __tablename__ = "audit_chain_head"
    __table_args__ = holds(Personal.NONE)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditCheckpoint(Base):
    """A signed statement of the chain's size and head at a moment."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = holds(Personal.NONE)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
