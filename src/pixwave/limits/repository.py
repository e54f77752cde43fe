"""Reading and writing a user's limits, and summing what their wallet sent in a period."""

from __future__ import annotations

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


async def lock_user(session: AsyncSession, user_id: str) -> None:
    """Serialise this user's payments until the unit of work ends, so two at once cannot both
    fit in what remains. One user row, always taken before any ledger account: no cycles."""
    await session.execute(select(U.id).where(U.id == user_id).with_for_update())


async def spent(session: AsyncSession, wallet_id: str, windows: Windows) -> Spent:
    """What the wallet sent in today's window and, at night, in this night's."""
    day = windows.day
    today = func.sum(case(((T.created_at >= day.starts) & (T.created_at < day.ends), T.amount)))
    tonight: Any = literal(0)
    if windows.night is not None:
        night = windows.night
        tonight = func.sum(
            case(((T.created_at >= night.starts) & (T.created_at < night.ends), T.amount))
        )
    row = (
        await session.execute(
            select(today, tonight).where(
                T.wallet_id == wallet_id,
                T.created_at >= windows.since,
                T.type.in_(_OUTGOING),
                T.status.not_in(_GAVE_BACK),
            )
        )
    ).one()
    return Spent(today=int(row[0] or 0), tonight=int(row[1] or 0))


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
