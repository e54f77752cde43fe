"""Reconciliation by hand: ask the gateways about every unfinished payment, now.

The periodic sweep (`payments.tasks.sweep`) does this continuously for payments that are due;
`pixwave reconcile` does it for all of them at once, inline, and reports where each ended.

It runs with the configuration of the server it serves: on the embedded default the simulated
gateways live inside the running `pixwave up`, so their address is read from the file that
process keeps (``ServedAddress``) rather than from this shell's PORT. And it asks every gateway
first: a payment whose gateway cannot be reached is left alone — a failure to connect is not
news about the payment and must not be written into its history — and the command says which
gateway it could not reach and exits non-zero.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from pixwave.bootstrap import build_resources
from pixwave.config import Settings
from pixwave.gateways.health import UP_OUTCOMES
from pixwave.payments.repository import TABLE
from pixwave.payments.status import UNFINISHED


async def reconcile_all(settings: Settings) -> dict[str, Any]:
    """``{"examined", "after": {status: n}, "unreachable": {gateway: outcome},
    "skipped": {gateway: n}, "simulators_at": url | None}``."""
    from pixwave.gateways.registry import simulated_gateways
    from pixwave.sandbox.embedded import ServedAddress, internal_base_url

    served = ServedAddress.running(settings) if simulated_gateways(settings) else None
    if served is not None:
        settings = served.settings(settings)
    base_url = internal_base_url(settings)
    resources = build_resources(settings, sandbox_base_url=base_url)
    try:
        unreachable = {
            name: str(outcome)
            for name in resources.gateways
            if (outcome := await resources.router.reachable(name)) not in UP_OUTCOMES
        }
        async with resources.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(TABLE.c.id, TABLE.c.gateway)
                    .where(TABLE.c.status.in_(UNFINISHED))
                    .order_by(TABLE.c.id)
                )
            ).all()
        # A payment not yet routed could be routed to an unreachable gateway: it waits too.
        blocked = set(unreachable) | ({None} if unreachable else set())
        ids = [str(row.id) for row in rows if row.gateway not in blocked]
        skipped = Counter(str(row.gateway) for row in rows if row.gateway in blocked)
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
        return {
            "examined": len(ids),
            "after": dict(after),
            "unreachable": unreachable,
            "skipped": dict(skipped),
            "simulators_at": base_url if resources.simulated else None,
        }
    finally:
        await resources.close()
