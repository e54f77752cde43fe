"""Every query on the inbox."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table, utcnow
from pixwave.inbox.models import InboxEvent
from pixwave.payments.repository import TABLE as TRANSACTIONS
from pixwave.unit_of_work import defer, flush_and_commit

TABLE = table(InboxEvent)
C = TABLE.c
T = TRANSACTIONS.c


def event_digest(event_id: str) -> str:
    """The de-duplication key of a provider event id: fixed size, whatever the id's length."""
    return hashlib.sha256(event_id.encode()).hexdigest()


_INSERT = insert(TABLE)


async def store(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert once, inside a savepoint; False when this (gateway, event id) was already stored
    (a redelivery), the transaction and the notification's other events left intact."""
    try:
        async with session.begin_nested():
            await session.execute(_INSERT, _row(values))
    except IntegrityError:
        return False
    return True


async def store_all(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> bool:
    """Insert every event and commit, with no savepoint: one round trip and the COMMIT.
    False when one was stored already (a redelivery): the whole transaction, and whatever
    was queued to run after its commit, is rolled back, for :func:`store` to sort out."""
    for values in rows:
        defer(session, _INSERT, _row(values))
    try:
        await flush_and_commit(session)
    except IntegrityError:
        await session.rollback()
        return False
    return True


def _row(values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "event_digest": event_digest(values["event_id"])}


async def unprocessed(
    session: AsyncSession, received_before: datetime, received_after: datetime, limit: int
) -> list[str]:
    """Events no job has finished, oldest first, received within the given bounds."""
    rows = await session.execute(
        select(C.id)
        .where(
            C.processed_at.is_(None),
            C.abandoned_at.is_(None),
            C.received_at < received_before,
            C.received_at > received_after,
        )
        .order_by(C.received_at)
        .limit(limit)
    )
    return [str(row[0]) for row in rows]


async def abandon_overdue(
    session: AsyncSession, received_before: datetime, limit: int
) -> list[dict[str, Any]]:
    """Flag events no job finished that were received before ``received_before`` (oldest
    first) as abandoned, and return them. Only rows this call flagged are returned, so a
    concurrent caller cannot announce the same event twice."""
    rows = await session.execute(
        select(C.id, C.gateway, C.event_id, C.kind, C.resource_id, C.received_at)
        .where(
            C.processed_at.is_(None),
            C.abandoned_at.is_(None),
            C.received_at <= received_before,
        )
        .order_by(C.received_at)
        .limit(limit)
    )
    now = utcnow()
    flagged: list[dict[str, Any]] = []
    for row in rows:
        changed = await session.execute(
            update(TABLE)
            .where(C.id == row.id, C.processed_at.is_(None), C.abandoned_at.is_(None))
            .values(abandoned_at=now)
        )
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            flagged.append(dict(row._mapping))
    return flagged


async def get_many_with_payment(
    session: AsyncSession, event_ids: Sequence[str]
) -> dict[str, tuple[dict[str, Any], str | None]]:
    """Each event with the transaction whose provider id (charge, send or refund) or txid is
    its resource, in one query; a missing id is absent."""
    # Two lookups, each on its own index ((gateway, gateway_payment_id), and txid), rather
    # than one with an OR: MariaDB would serve the OR from the gateway prefix alone, scanning
    # every transaction of the gateway for each event.
    by_provider_id = (
        select(T.id)
        .where(T.gateway == C.gateway, T.gateway_payment_id == C.resource_id)
        .limit(1)
        .scalar_subquery()
    )
    by_txid = (
        select(T.id)
        .where(T.txid == C.resource_id, T.gateway == C.gateway)
        .limit(1)
        .scalar_subquery()
    )
    matched = func.coalesce(by_provider_id, by_txid)
    rows = await session.execute(
        select(TABLE, matched.label("transaction_id")).where(C.id.in_(event_ids))
    )
    found: dict[str, tuple[dict[str, Any], str | None]] = {}
    for row in rows:
        fields = dict(row._mapping)
        transaction_id = fields.pop("transaction_id")
        found[fields["id"]] = (fields, None if transaction_id is None else str(transaction_id))
    return found


_MARK_PROCESSED = (
    update(TABLE)
    .where(C.id == bindparam("row_id"))
    .values(processed_at=bindparam("handled_at", type_=C.processed_at.type))
)


def mark_processed(session: AsyncSession, event_id: str) -> None:
    """Queued: sent with the COMMIT (see `unit_of_work`)."""
    defer(session, _MARK_PROCESSED, {"row_id": event_id, "handled_at": utcnow()})
