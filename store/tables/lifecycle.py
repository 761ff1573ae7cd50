"""Lifecycle: store facts, retention progress, decommissioning."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    DateTime,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.tables.base import Base, BigId, Personal, holds


class Meta(Base):
    """Small facts about this store (e.g. that it holds the demo data)."""

    __tablename__ = "meta"
    __table_args__ = holds(Personal.NONE)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RetentionState(Base):
    """How far retention has got: the last day whose birthdays have been processed."""

    __tablename__ = "retention_state"
    __table_args__ = holds(Personal.NONE)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_day: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Decommission(Base):
    __tablename__ = "decommissions"
    __table_args__ = holds(Personal.AUDIT)  # who scheduled it, and the certificate
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    live: Mapped[str | None] = mapped_column(String(8), unique=True)  # "live" unless cancelled
    switch_off: Mapped[date] = mapped_column(Date)
    destroy_by: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))  # scheduled|switched_off|destroying|destroyed|cancelled
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scheduled_by: Mapped[str] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    steps_done: Mapped[str] = mapped_column(String(200), default="")
    counts: Mapped[str] = mapped_column(Text, default="{}")
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    certificate: Mapped[str | None] = mapped_column(Text)
