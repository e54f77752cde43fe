"""Payment jobs: move one transaction on; sweep for every transaction that is due."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from pixwave.db import utcnow
from pixwave.kit.batching import Batcher, RunBatch, Settle
from pixwave.payments import repository
from pixwave.worker.jobs import job, periodic

if TYPE_CHECKING:
    from pixwave.config import Settings
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.payments")

ADVANCE = "payments.advance"
SWEEP = "payments.sweep"
#: Most rows one sweep hands out; the next tick takes the rest.
SWEEP_BATCH = 500


@job(ADVANCE)
async def advance(resources: JobContext, transaction_id: str) -> None:
    """Move the payment on — with ``ENGINE_BATCH``, together with the others this process
    holds jobs for (`Engine.advance_many`); the job ends when its payment's look does."""
    batch = resources.advance_batch
    if batch is None:
        await resources.payments.advance(transaction_id, poke=True)
    else:
        await batch.submit(transaction_id)


def advance_batcher(resources: JobContext) -> Batcher[str, None] | None:
    """The process's batch of payment looks (``ENGINE_BATCH``); None moves each alone."""

    async def run(transaction_ids: list[str], settle: Settle[None]) -> list[BaseException | None]:
        jobs: dict[str, list[int]] = {}
        for index, transaction_id in enumerate(transaction_ids):
            jobs.setdefault(transaction_id, []).append(index)

        def settled(transaction_id: str, outcome: BaseException | None) -> None:
            for index in jobs.get(transaction_id, ()):
                settle(index, outcome)

        moved = await resources.payments.advance_many(transaction_ids, poke=True, settled=settled)
        return [moved[t] for t in transaction_ids]

    return engine_batcher(resources.settings, "advance", run)


def engine_batcher(
    settings: Settings, name: str, run: RunBatch[str, None]
) -> Batcher[str, None] | None:
    """A batcher of the engine's work named ``name``, as ``ENGINE_BATCH_*`` say."""
    if not settings.engine_batch:
        return None
    return Batcher(
        name,
        run,
        window_seconds=settings.engine_batch_window_ms / 1000,
        max_size=settings.engine_batch_max_size,
    )


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
