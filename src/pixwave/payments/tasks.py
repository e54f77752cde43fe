"""Payment jobs: move one transaction on; sweep for every transaction that is due."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from pixwave.db import utcnow
from pixwave.payments import repository
from pixwave.worker.jobs import job, periodic

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.payments")

ADVANCE = "payments.advance"
SWEEP = "payments.sweep"
#: Most rows one sweep hands out; the next tick takes the rest.
SWEEP_BATCH = 500


@job(ADVANCE)
async def advance(resources: JobContext, transaction_id: str) -> None:
    await resources.payments.advance(transaction_id, poke=True)


async def sweep_once(resources: JobContext) -> int:
    """Hand every due transaction to the workers; return how many.

    Rows are claimed first (their next look pushed one lease ahead), so overlapping sweeps and
    a slow queue never multiply the jobs; a job that is lost only delays the payment by a lease.
    """
    now = utcnow()
    lease = timedelta(seconds=resources.settings.payment_lease_seconds)
    async with resources.sessionmaker() as session:
        ids = await repository.due(session, now, SWEEP_BATCH)
        if not ids:
            return 0
        await repository.claim(session, ids, now, now + lease)
        await session.commit()
    for transaction_id in ids:
        await resources.jobs.kick(ADVANCE, transaction_id)
    log.info("payments.sweep", redriven=len(ids))
    return len(ids)


@periodic(SWEEP, interval_setting="sweep_interval_seconds")
async def sweep(resources: JobContext) -> None:
    await sweep_once(resources)
