"""What a wallet sent in a period, on both databases: only outgoing payments that did not give
the money back, inside the window's bounds."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.limits import repository
from pixwave.limits.policy import windows
from pixwave.payments import service as transactions
from pixwave.payments.status import TransactionStatus as S
from pixwave.payments.status import TransactionType as T
from pixwave.resources import Resources
from tests.factories import create_actor
from tests.limits.support import BRT, brt


@pytest.mark.corrupts_ledger  # bare rows without postings: only the sums are under test
async def test_spent_counts_outgoing_payments_in_each_window(
    any_resources: Resources, session: AsyncSession
) -> None:
    ana = await create_actor(any_resources)
    bia = await create_actor(any_resources)
    rows = [
        (T.CASH_OUT, S.SUCCEEDED, 1, brt(7, 9)),  # today, by day
        (T.CASH_OUT, S.PENDING, 10, brt(7, 20, 30)),  # tonight
        (T.CASH_OUT, S.NEEDS_REVIEW, 100, brt(7, 21)),  # tonight: it may have left
        (T.TRANSFER, S.SUCCEEDED, 1_000, brt(7, 22)),  # tonight
        (T.CASH_OUT, S.FAILED, 10_000, brt(7, 22)),  # gave it back
        (T.CASH_OUT, S.CANCELLED, 20_000, brt(7, 22)),  # gave it back
        (T.CASH_IN, S.SUCCEEDED, 40_000, brt(7, 22)),  # money in
        (T.REFUND, S.SUCCEEDED, 80_000, brt(7, 22)),  # not the user's payment
        (T.CASH_OUT, S.SUCCEEDED, 160_000, brt(6, 23)),  # yesterday
        (T.CASH_OUT, S.SUCCEEDED, 320_000, brt(8, 7)),  # tomorrow morning
    ]
    for type_, status, amount, at in rows:
        await transactions.create(
            session,
            type_=type_,
            status=status,
            amount=amount,
            user_id=ana.user.id,
            wallet_id=ana.wallet_id,
            created_at=at,
        )
    # Bia's payments are hers.
    await transactions.create(
        session,
        type_=T.TRANSFER,
        status=S.SUCCEEDED,
        amount=640_000,
        user_id=bia.user.id,
        wallet_id=bia.wallet_id,
        created_at=brt(7, 22),
    )
    await session.commit()

    at_23 = windows(brt(7, 23), BRT, time(20), time(6))
    spent = await repository.spent(session, ana.wallet_id, at_23)
    assert (spent.today, spent.tonight) == (1_111, 1_110)

    by_day = windows(brt(7, 12), BRT, time(20), time(6))
    assert (await repository.spent(session, ana.wallet_id, by_day)).today == 1_111

    # At 00:30 the night began yesterday at 20:00; the day began at midnight.
    after_midnight = windows(brt(8, 0, 30), BRT, time(20), time(6))
    spent = await repository.spent(session, ana.wallet_id, after_midnight)
    assert (spent.today, spent.tonight) == (320_000, 1_110)
