"""Webhook jobs: deliver one delivery now, and the tick that retries whatever is due.

Each attempt is claimed and committed first, sent with no transaction open (a slow receiver
must not hold a database connection), then settled in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

import httpx
import structlog

from pixwave.db import utcnow
from pixwave.notifications.webhooks import sender, service, urls
from pixwave.notifications.webhooks.service import DELIVER, RETRY, Claimed
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import job, periodic

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.webhooks")

Clock = Callable[[], datetime]

#: Most deliveries one retry tick claims.
RETRY_BATCH: Final = 100
#: Most requests one tick has in flight at once.
RETRY_CONCURRENCY: Final = 10


@job(DELIVER)
async def deliver(resources: JobContext, delivery_id: str) -> None:
    await deliver_once(resources, delivery_id)


@periodic(RETRY, interval_setting="outbox_relay_interval_seconds")
async def retry(resources: JobContext) -> None:
    await retry_once(resources)


async def deliver_once(
    resources: JobContext,
    delivery_id: str,
    *,
    clock: Clock = utcnow,
    resolver: urls.Resolver = urls.system_resolve,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bool:
    """Make the delivery's next attempt if it is due and nobody else holds it; True if one
    was made. A duplicate message, or a delivery the retry tick took first, does nothing."""
    hold = service.lease(resources.settings.webhook_timeout_seconds)
    async with resources.sessionmaker() as session:
        claimed = await service.claim_one(session, delivery_id, clock(), hold)
        await flush_and_commit(session)
    if claimed is None:
        return False
    await _attempt(resources, claimed, clock=clock, resolver=resolver, transport=transport)
    return True


async def retry_once(
    resources: JobContext,
    *,
    clock: Clock = utcnow,
    resolver: urls.Resolver = urls.system_resolve,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Claim and attempt every due delivery (up to RETRY_BATCH); return how many.

    This is both the retry schedule and the safety net: a delivery whose job was lost, or
    whose sender died mid-attempt (its claim's lease ran out), is due here too.
    """
    # Claims wait their turn behind RETRY_CONCURRENCY sends: each holds its row long enough
    # for the whole tick, or a later tick would claim it again and send it twice.
    rounds = math.ceil(RETRY_BATCH / RETRY_CONCURRENCY)
    hold = service.lease(resources.settings.webhook_timeout_seconds) * rounds
    async with resources.sessionmaker() as session:
        claimed = await service.claim_due(
            session,
            clock(),
            hold,
            limit=RETRY_BATCH,
            skip_locked=resources.engine.dialect.name == "mysql",
        )
        await flush_and_commit(session)
    gate = asyncio.Semaphore(RETRY_CONCURRENCY)

    async def one(attempt: Claimed) -> None:
        async with gate:
            try:
                await _attempt(
                    resources, attempt, clock=clock, resolver=resolver, transport=transport
                )
            except Exception as exc:  # the lease runs out and a later tick retries it
                log.exception(
                    "webhook.settle_failed", delivery_id=attempt.delivery_id, error=repr(exc)
                )

    await asyncio.gather(*(one(attempt) for attempt in claimed))
    return len(claimed)


async def _attempt(
    resources: JobContext,
    claimed: Claimed,
    *,
    clock: Clock,
    resolver: urls.Resolver,
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    settings = resources.settings
    if not claimed.endpoint_enabled:
        async with resources.sessionmaker() as session:
            await service.give_up_disabled(session, claimed, clock())
            await flush_and_commit(session)
        return
    outcome = await sender.send(
        url=claimed.url,
        msg_id=claimed.event_id,
        body=claimed.body,
        keys=claimed.keys,
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=resources.private_webhook_urls,
        resolver=resolver,
        transport=transport,
    )
    async with resources.sessionmaker() as session:
        await service.record(
            session, claimed, outcome, now=clock(), delays=settings.webhook_retry_delays
        )
        await flush_and_commit(session)
