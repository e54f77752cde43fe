"""Every query on the inbox."""

from __future__ import annotations

from datetime import datetime
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


async def unprocessed(
    session: AsyncSession, received_before: datetime, received_after: datetime, limit: int
) -> list[str]:
    """Events no job has finished, oldest first, received within the given bounds."""
    rows = await session.execute(
        select(C.id)
        .where(
            C.processed_at.is_(None),
            C.received_at < received_before,
            C.received_at > received_after,
        )
        .order_by(C.received_at)
        .limit(limit)
    )
    return [str(row[0]) for row in rows]


async def mark_processed(session: AsyncSession, event_id: str) -> None:
    await session.execute(update(TABLE).where(C.id == event_id).values(processed_at=utcnow()))
