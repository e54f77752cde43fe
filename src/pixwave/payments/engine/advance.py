"""`Engine.advance(id)`: the one entry point — take the lease, run the step of the
transaction's flow, let go, and run again when asked to.

A second runner finds the lease taken and leaves a "look again" note instead of waiting; the
owner reads it as it lets go. A step the database rolled back (deadlock, lock wait timeout) is
simply run again: it re-reads the row, so the retry is as safe as the first run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from pixwave.db import is_transient, utcnow
from pixwave.gateways.base import PixGateway
from pixwave.gateways.router import Router
from pixwave.payments.engine.batch import Notified, Outcomes, Settled, advance_many
from pixwave.payments.engine.flows import move
from pixwave.payments.engine.run import Collaborators, Invalidate, Run
from pixwave.payments.engine.settings import EngineSettings
from pixwave.payments.lease import Leases
from pixwave.payments.status import TransactionStatus

log = structlog.get_logger("pixwave.payments")
S = TransactionStatus

#: Runs of one advance() that may end in a deadlock or lock timeout before it gives up.
TRANSIENT_RETRIES = 3
#: Looks one advance() takes at most (notes left meanwhile, steps run again); the sweep
#: brings the payment back for more.
MAX_LOOKS = 5


class Engine:
    """One per process, built by the composition root (``pixwave.bootstrap``) from the few
    collaborators it declares; holds nothing else."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateways: Mapping[str, PixGateway],
        router: Router,
        leases: Leases,
        settings: EngineSettings,
        webhook_url: Callable[[str], str | None] = lambda _gateway: None,
        invalidate: Invalidate | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.leases = leases
        self.settings = settings
        self.use = Collaborators(
            sessionmaker=sessionmaker,
            gateways=gateways,
            router=router,
            leases=leases,
            settings=settings,
            webhook_url=webhook_url,
            invalidate=invalidate,
            clock=clock,
            monotonic=monotonic,
            sleep=sleep,
            rng=rng or random.Random(),  # noqa: S311 - backoff jitter
        )

    async def advance(self, transaction_id: str, *, poke: bool = False) -> None:
        """Move the transaction on. If another worker owns it right now, ``poke`` leaves it a
        note to take one more look when it is done (a webhook arriving mid-step must not wait
        for the next poll)."""
        ttl = self.settings.lease_seconds
        transient_failures = 0
        for _ in range(MAX_LOOKS):
            token = await self.leases.enter(transaction_id, ttl, note=poke)
            if token is None:
                return  # the owner will see the note as it lets go
            leased_at = self.use.monotonic()  # the lease's age counts from here
            run_again = False
            try:
                await step(self.use, transaction_id, token, leased_at)
            except DBAPIError as exc:
                # A deadlock or lock timeout rolled the step's write back; the step is safe to
                # run again (it re-reads the row), so do that now rather than at the next poll.
                transient_failures += 1
                if not is_transient(exc) or transient_failures >= TRANSIENT_RETRIES:
                    raise
                log.warning(
                    "payments.step_retried", transaction_id=transaction_id, error=str(exc.orig)
                )
                run_again = True
            finally:
                noted = await self.leases.leave(transaction_id, token)
            if not (noted or run_again):
                return

    async def advance_many(
        self,
        transaction_ids: Sequence[str],
        *,
        poke: bool = False,
        notified: Mapping[str, Notified] | None = None,
        settled: Settled | None = None,
    ) -> Outcomes:
        """:meth:`advance` for each, sharing the work they have in common: one read, the
        gateway reads at once, the credits in one COMMIT (see `batch`). Each id's outcome is
        None, or what :meth:`advance` would have raised for it. ``notified``: deposits paid
        as a trusted notification says (credited from it when it matches the charge).
        ``settled`` hears of each payment as soon as its own look is over (see `batch`)."""
        return await advance_many(
            self, transaction_ids, poke=poke, notified=notified, settled=settled
        )


async def step(use: Collaborators, transaction_id: str, token: str, leased_at: float) -> None:
    """One look at the transaction, with its lease held (since ``leased_at``, on the
    monotonic clock): its flow moves it as far as it can."""
    run = await Run.start(use, transaction_id, token, leased_at)
    if run is not None:
        await move(run)
