"""Append domain events to the outbox inside the caller's transaction.

Because the event row commits or rolls back with the change itself, a relay can publish
at-least-once without ever announcing something that did not happen.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table, utcnow
from pixwave.kit.ids import new_id
from pixwave.notifications.models import OutboxEvent
from pixwave.unit_of_work import defer

_INSERT = insert(table(OutboxEvent))


async def append(
    session: AsyncSession,
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
) -> str:
    event_id = new_id("evt")
    defer(
        session,
        _INSERT,
        {
            "id": event_id,
            "event_type": event_type,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "payload": payload,
            "created_at": utcnow(),
        },
    )
    return event_id
