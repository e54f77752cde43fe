"""Reading and writing a user's limits, and summing what their wallet sent in a period."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.models import User
from pixwave.db import table
from pixwave.ledger.models import AccountKind, LedgerAccount
from pixwave.limits.policy import Overrides, Spent, Windows
from pixwave.payments.models import Transaction
from pixwave.payments.status import TransactionStatus, TransactionType

U = table(User).c
T = table(Transaction).c
A = table(LedgerAccount).c

#: Money that left, or is on its way out: a failed or cancelled withdrawal gave it back.
_OUTGOING = (TransactionType.CASH_OUT, TransactionType.TRANSFER)
_GAVE_BACK = (TransactionStatus.FAILED, TransactionStatus.CANCELLED)


def _sums(wallet_id: str, windows: Windows, *, user: Any = None) -> tuple[Any, Any]:
    """What the wallet sent in today's window and, at night, in this night's, as two scalar
    subqueries (correlated with ``user``'s row when given, so they run after it is read)."""

    def total(starts: datetime, ends: datetime) -> Any:
        statement = select(
            func.coalesce(
                func.sum(case(((T.created_at >= starts) & (T.created_at < ends), T.amount))), 0
            )
        ).where(
            T.wallet_id == wallet_id,
            T.created_at >= windows.since,
            T.type.in_(_OUTGOING),
            T.status.not_in(_GAVE_BACK),
        )
        if user is not None:
            statement = statement.where(T.user_id == user)
        return statement.scalar_subquery()

    night = windows.night
    tonight = literal(0) if night is None else total(night.starts, night.ends)
    return total(windows.day.starts, windows.day.ends), tonight


async def lock_and_sum(
    session: AsyncSession, user_id: str, wallet_id: str, windows: Windows
) -> Spent:
    """Lock the user's row until the unit of work ends, then sum what their wallet sent in the
    periods — one round trip. Two payments of one user are judged one after the other, and the
    second counts the first: the sums are plain reads evaluated once the row is locked, so they
    see what the first committed while this one waited. That holds only if nothing read in this
    unit of work before (REPEATABLE READ fixes a transaction's snapshot at its first plain read):
    judge a payment first. The user's row is always taken before any ledger account, and the
    sums lock nothing, so no lock cycle appears (the engine never touches users)."""
    today, tonight = _sums(wallet_id, windows, user=U.id)
    row = (
        await session.execute(select(today, tonight).where(U.id == user_id).with_for_update())
    ).one_or_none()
    return Spent(0, 0) if row is None else Spent(today=int(row[0]), tonight=int(row[1]))


async def spent(session: AsyncSession, wallet_id: str, windows: Windows) -> Spent:
    """What the wallet sent in each period, without locking (to show, not to judge)."""
    today, tonight = _sums(wallet_id, windows)
    row = (await session.execute(select(today, tonight))).one()
    return Spent(today=int(row[0]), tonight=int(row[1]))


async def user_limits(session: AsyncSession, user_id: str) -> tuple[Overrides, str | None] | None:
    """A user's own limits and wallet (None for an admin), or None when there is no such user."""
    row = (
        await session.execute(
            select(U.limit_per_transaction, U.limit_daily, U.limit_nighttime, U.night_starts, A.id)
            .select_from(
                table(User).outerjoin(
                    table(LedgerAccount), (A.user_id == U.id) & (A.kind == AccountKind.WALLET)
                )
            )
            .where(U.id == user_id)
        )
    ).one_or_none()
    return None if row is None else (Overrides(*row[:4]), row[4])


async def set_overrides(session: AsyncSession, user_id: str, overrides: Overrides) -> None:
    await session.execute(
        update(table(User))
        .where(U.id == user_id)
        .values(
            limit_per_transaction=overrides.per_transaction,
            limit_daily=overrides.daily,
            limit_nighttime=overrides.nighttime,
            night_starts=overrides.night_starts,
        )
    )
