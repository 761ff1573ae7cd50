"""Where Signpost can reach a Teams user privately: their 1:1 conversation reference.

Stored in the database (not in memory) when a person first messages the bot, so proactive notices
survive restarts and any replica can send them. Keyed by the stable identity (tenant, AAD object
id); the stored reference holds platform ids only, never a display name.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import dialect_insert
from store.tables.people import TeamsConversation


def encode(reference: dict[str, Any]) -> str:
    """Canonical JSON, so an unchanged reference compares equal and is not rewritten."""
    return json.dumps(reference, sort_keys=True, separators=(",", ":"))


async def load(session: AsyncSession, tenant: str, user_id: str) -> dict[str, Any] | None:
    """The stored reference for this person, or None when they have never talked to the bot."""
    text = (
        await session.execute(
            select(TeamsConversation.reference).where(
                TeamsConversation.tenant == tenant, TeamsConversation.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if text is None:
        return None
    loaded: dict[str, Any] = json.loads(text)
    return loaded


async def save(session: AsyncSession, tenant: str, user_id: str, reference: dict[str, Any], now: datetime) -> None:
    """Insert or replace this person's reference (the latest conversation wins)."""
    stmt = dialect_insert(session)(TeamsConversation).values(
        tenant=tenant, user_id=user_id, reference=encode(reference), updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[TeamsConversation.tenant, TeamsConversation.user_id],
        set_={"reference": stmt.excluded.reference, "updated_at": stmt.excluded.updated_at},
    )
    await session.execute(stmt)


async def forget(session: AsyncSession, tenant: str, user_id: str) -> None:
    """Drop this person's reference: Teams refused it (the app removed for them); the next message
    or installation stores a new one."""
    await session.execute(
        delete(TeamsConversation).where(TeamsConversation.tenant == tenant, TeamsConversation.user_id == user_id)
    )
