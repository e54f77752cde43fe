"""Every query on the `transactions` table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table
from pixwave.payments.models import Transaction
from pixwave.unit_of_work import defer

TABLE = table(Transaction)
C = TABLE.c
_READ_COLUMNS = [
    C.id, C.type, C.status, C.amount, C.currency, C.wallet_id, C.counterparty_wallet_id,
    C.parent_id, C.gateway, C.txid, C.end_to_end_id, C.gateway_payment_id, C.pix_key,
    C.description, C.failure_code, C.failure_message, C.refunded_amount,
    C.ledger_transaction_id, C.created_at, C.updated_at,
]  # fmt: skip


_INSERT = insert(TABLE)


def insert_transaction(session: AsyncSession, values: dict[str, Any]) -> None:
    """Queued with the rest of the unit of work's writes (see `unit_of_work`)."""
    defer(session, _INSERT, values)


async def get(
    session: AsyncSession, transaction_id: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    statement = select(*_READ_COLUMNS, C.user_id, C.hold_id).where(C.id == transaction_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else dict(row._mapping)


async def update_status(
    session: AsyncSession, transaction_id: str, *, current: str, values: dict[str, Any]
) -> bool:
    """Compare-and-set on the status column; False if someone moved it first."""
    result = await session.execute(
        update(TABLE).where(C.id == transaction_id, C.status == current).values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def list_transactions(
    session: AsyncSession,
    *,
    wallet_id: str | None,
    type_: str | None,
    status: str | None,
    created_gte: datetime | None,
    created_lt: datetime | None,
    starting_after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    statement = select(*_READ_COLUMNS).order_by(C.id.desc()).limit(limit)
    if wallet_id is not None:
        statement = statement.where(
            or_(C.wallet_id == wallet_id, C.counterparty_wallet_id == wallet_id)
        )
    if type_ is not None:
        statement = statement.where(C.type == type_)
    if status is not None:
        statement = statement.where(C.status == status)
    if created_gte is not None:
        statement = statement.where(C.created_at >= created_gte)
    if created_lt is not None:
        statement = statement.where(C.created_at < created_lt)
    if starting_after is not None:
        statement = statement.where(C.id < starting_after)
    return [dict(r._mapping) for r in await session.execute(statement)]
