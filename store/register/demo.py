"""What the store knows about the synthetic demo data: whether it is loaded, and how big it is."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.tables.lifecycle import Meta
from store.tables.register import Child

DEMO_CHILDREN = "demo_children"


async def count_children(session: AsyncSession) -> int:
    """Every child the store holds, in any state."""
    return int((await session.execute(select(func.count()).select_from(Child))).scalar_one())


async def remember_size(session: AsyncSession, children: int) -> None:
    """Note that the demo data is loaded, with this many children (the console's examples depend on it)."""
    await session.merge(Meta(key=DEMO_CHILDREN, value=str(children)))


async def size(session: AsyncSession) -> int | None:
    """How many synthetic children the demo was seeded with, or None when it was never seeded."""
    value = (await session.execute(select(Meta.value).where(Meta.key == DEMO_CHILDREN))).scalar()
    return None if value is None else int(value)
