"""Every query on the inbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table, utcnow
from pixwave.inbox.models import InboxEvent

TABLE = table(InboxEvent)
C = TABLE.c


async def store(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert once; False when this (gateway, event_id) was already stored (a redelivery)."""
    try:
        async with session.begin_nested():
            await session.execute(insert(TABLE).values(**values))
    except IntegrityError:
        return False
    return True


async def get(session: AsyncSession, event_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(TABLE).where(C.id == event_id))).one_or_none()
    return None if row is None else dict(row._mapping)


async def mark_processed(session: AsyncSession, event_id: str) -> None:
    await session.execute(update(TABLE).where(C.id == event_id).values(processed_at=utcnow()))
