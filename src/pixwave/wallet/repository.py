"""Every query the wallet package makes (balances are written only by the ledger)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table
from pixwave.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction

A = table(LedgerAccount).c
E = table(LedgerEntry).c
T = table(LedgerTransaction).c


async def get_wallet(session: AsyncSession, wallet_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(A.id, A.user_id, A.currency, A.posted, A.held).where(
                A.id == wallet_id, A.kind == AccountKind.WALLET
            )
        )
    ).one_or_none()
    return None if row is None else dict(row._mapping)


async def has_entry(session: AsyncSession, wallet_id: str, entry_id: str) -> bool:
    found = await session.scalar(select(E.id).where(E.id == entry_id, E.account_id == wallet_id))
    return found is not None


async def statement(
    session: AsyncSession, wallet_id: str, *, starting_after: str | None, limit: int
) -> list[dict[str, Any]]:
    query = (
        select(
            E.id, E.ledger_transaction_id, E.amount, E.created_at,
            T.kind, T.reference, T.description,
        )
        .select_from(
            table(LedgerEntry).join(
                table(LedgerTransaction), T.id == E.ledger_transaction_id
            )
        )
        .where(E.account_id == wallet_id)
        .order_by(E.id.desc())
        .limit(limit)
    )  # fmt: skip
    if starting_after is not None:
        query = query.where(E.id < starting_after)
    return [dict(r._mapping) for r in await session.execute(query)]
