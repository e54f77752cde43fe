"""Reading and writing a user's limits, and summing what their wallet sent in a period."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.models import User
from pixwave.db import table
from pixwave.ledger.models import AccountKind, LedgerAccount
from pixwave.limits.policy import Overrides, Spent, Window, Windows
from pixwave.payments.models import Transaction
from pixwave.payments.status import TransactionStatus, TransactionType

U = table(User).c
T = table(Transaction).c
A = table(LedgerAccount).c

#: Money that left, or is on its way out: a failed or cancelled withdrawal gave it back.
_OUTGOING = (TransactionType.CASH_OUT, TransactionType.TRANSFER)
_GAVE_BACK = (TransactionStatus.FAILED, TransactionStatus.CANCELLED)


def _sum_of(starts: str, ends: str) -> Any:
    sent = case(((T.created_at >= bindparam(starts)) & (T.created_at < bindparam(ends)), T.amount))
    return func.coalesce(func.sum(sent), 0)


def _total(starts: str, ends: str, *, correlated: bool) -> Any:
    """What the wallet sent in ``[starts, ends)``, as a scalar subquery; correlated with the
    user's row when locking, so it runs after that row is read (and locked)."""
    statement = select(_sum_of(starts, ends)).where(
        T.wallet_id == bindparam("wallet_id"),
        T.created_at >= bindparam("since"),
        T.type.in_(_OUTGOING),
        T.status.not_in(_GAVE_BACK),
    )
    if correlated:
        statement = statement.where(T.user_id == U.id)
    return statement.scalar_subquery()


def _both(*, correlated: bool) -> tuple[Any, Any]:
    return (
        _total("day_starts", "day_ends", correlated=correlated),
        _total("night_starts", "night_ends", correlated=correlated),
    )


# Built once: a statement built per call cost more CPU than its round trip (measured).
_LOCK_AND_SUM = (
    select(*_both(correlated=True)).where(U.id == bindparam("user_id")).with_for_update()
)
_SUM = select(*_both(correlated=False))


def _params(wallet_id: str, windows: Windows) -> dict[str, Any]:
    return {"wallet_id": wallet_id, **_window_params(windows)}


def _window_params(windows: Windows) -> dict[str, Any]:
    # By day the night's window is empty: one statement serves both.
    night = windows.night or Window(windows.day.starts, windows.day.starts)
    return {
        "since": windows.since,
        "day_starts": windows.day.starts,
        "day_ends": windows.day.ends,
        "night_starts": night.starts,
        "night_ends": night.ends,
    }


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
    params = {**_params(wallet_id, windows), "user_id": user_id}
    row = (await session.execute(_LOCK_AND_SUM, params)).one_or_none()
    return Spent(0, 0) if row is None else Spent(today=int(row[0]), tonight=int(row[1]))


_LOCK_USERS = (
    select(U.id)
    .where(U.id.in_(bindparam("user_ids", expanding=True)))
    .order_by(U.id)
    .with_for_update()
)


_SUM_BY_WALLET = (
    select(T.wallet_id, _sum_of("day_starts", "day_ends"), _sum_of("night_starts", "night_ends"))
    .where(
        T.wallet_id.in_(bindparam("wallet_ids", expanding=True)),
        T.created_at >= bindparam("since"),
        T.type.in_(_OUTGOING),
        T.status.not_in(_GAVE_BACK),
    )
    .group_by(T.wallet_id)
)


async def lock_users(session: AsyncSession, user_ids: Sequence[str]) -> None:
    """Lock users' rows in id order (a group commit's payers; see `lock_and_sum`)."""
    await session.execute(_LOCK_USERS, {"user_ids": sorted(user_ids)})


async def sum_many(
    session: AsyncSession, wallets: Mapping[str, str], windows: Windows
) -> dict[str, Spent]:
    """What each wallet (by user id) sent in the periods, in one statement. Plain reads: the
    caller locked the users' rows first, in its transaction's first statement, so the snapshot
    these read is taken after every lock was granted (see `lock_and_sum`)."""
    params = {**_window_params(windows), "wallet_ids": list(wallets.values())}
    rows = await session.execute(_SUM_BY_WALLET, params)
    by_wallet = {row[0]: Spent(today=int(row[1]), tonight=int(row[2])) for row in rows}
    return {user: by_wallet.get(wallet, Spent(0, 0)) for user, wallet in wallets.items()}


async def spent(session: AsyncSession, wallet_id: str, windows: Windows) -> Spent:
    """What the wallet sent in each period, without locking (to show, not to judge)."""
    row = (await session.execute(_SUM, _params(wallet_id, windows))).one()
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
