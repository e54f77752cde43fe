"""Reconciliation by hand: ask the gateways about every unfinished payment, now.

The periodic sweep (`payments.tasks.sweep`) does this continuously for payments that are due;
`pixwave reconcile` does it for all of them at once, inline, and reports where each ended.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from pixwave.config import Settings
from pixwave.payments.repository import TABLE
from pixwave.payments.status import UNFINISHED


async def reconcile_all(settings: Settings) -> dict[str, Any]:
    from pixwave.resources import Resources
    from pixwave.sandbox.embedded import internal_base_url

    resources = Resources.build(settings, sandbox_base_url=internal_base_url(settings))
    try:
        async with resources.sessionmaker() as session:
            ids = [
                str(i)
                for i in await session.scalars(
                    select(TABLE.c.id).where(TABLE.c.status.in_(UNFINISHED)).order_by(TABLE.c.id)
                )
            ]
        for transaction_id in ids:
            await resources.payments.advance(transaction_id, poke=True)
        after: Counter[str] = Counter()
        async with resources.sessionmaker() as session:
            for status in (
                await session.scalars(select(TABLE.c.status).where(TABLE.c.id.in_(ids)))
                if ids
                else []
            ):
                after[str(status)] += 1
        return {"examined": len(ids), "after": dict(after)}
    finally:
        await resources.close()
