"""Misuse alerts already raised: one row per (rule, practitioner, window), so each fires once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.db import dialect_insert
from store.models import Base


class MisuseAlert(Base):
    __tablename__ = "misuse_alerts"
    dedupe_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64), index=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


async def claim(session: AsyncSession, dedupe_key: str, rule: str, actor_id: str, now: datetime) -> bool:
    """Record an alert; False when this (rule, actor, window) was already raised, by any replica."""
    result = await session.execute(
        dialect_insert(session)(MisuseAlert)
        .values(dedupe_key=dedupe_key, rule=rule, actor_id=actor_id, raised_at=now)
        .on_conflict_do_nothing(index_elements=[MisuseAlert.dedupe_key])
        .returning(MisuseAlert.dedupe_key)
    )
    return result.first() is not None
