"""Delivery: the notice outbox and its claims, seen deliveries, scheduled tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.tables.base import Base, BigId, Personal, UtcDateTime, holds

KEY_LENGTH = 200
ACCOUNT_LENGTH = 300  # platform, tenant and user id, as chat_identities holds them


class Notice(Base):
    """A message to a person, stored first so that none is lost if a front end is down."""

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_pending", "delivered_at", "not_before"),
        # A notice naming a child (a lookup, an access request, a relayed message) is deleted with it.
        holds(Personal.PERSON, child_column="child_ref"),
    )
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
    # Not sent, on purpose (the recipient is no longer active, …): why is in last_error, no personal data.
    # Indexed, as ``delivered_at`` is (``ix_notices_pending``): retention prunes closed notices by them.
    dropped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # A notice every linked account must see: the platforms that took it so far ("slack,teams"),
    # so that a retry goes to the others only. A person has at most one identity per platform.
    reached: Mapped[str | None] = mapped_column(String(64))
    # A notice for one chat account only, linked or not ("slack:T1:U1"): one that has lost its link
    # is told so. None: every account linked to the recipient.
    account: Mapped[str | None] = mapped_column(String(ACCOUNT_LENGTH))
    # The child whose reference the notice carries (``store.delivery.notices.children_named``), so
    # that destroying the child deletes it; None for a notice about no child.
    child_ref: Mapped[int | None] = mapped_column(BigInteger, index=True)


class ScheduledTask(Base):
    __tablename__ = "scheduled_tasks"
    __table_args__ = holds(Personal.NONE)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str] = mapped_column(String(64))


class Delivery(Base):
    """One processed delivery/click id (pruned after the platform's retry window has long passed)."""

    __tablename__ = "deliveries"
    __table_args__ = holds(Personal.NONE)  # platform event and click ids
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class NoticeClaim(Base):
    """Which worker is delivering a notice, and until when its claim holds."""

    __tablename__ = "notice_claims"
    __table_args__ = holds(Personal.NONE)  # worker names
    notice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A drop that found the notice claimed by a worker sending it: the drop's reason (``last_error``,
    # names nobody). The worker records a send that went through as delivered; any other outcome
    # closes the notice with this reason instead of putting it back in the queue
    # (``store.delivery.outbox.let_go``). Kept on the claim, not the notice, so that the drop never
    # waits for the notice's row while the sender records it (``store.delivery.notices._drop``).
    drop_wanted: Mapped[str | None] = mapped_column(String(200))
