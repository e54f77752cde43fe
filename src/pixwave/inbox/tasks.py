"""The inbox job: find the payment a notification is about and let the engine look."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from pixwave.db import utcnow
from pixwave.inbox import repository
from pixwave.inbox.service import HANDLE
from pixwave.notifications import outbox
from pixwave.payments import repository as payments
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import job, periodic

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.inbox")

RETRY = "inbox.retry"
#: Most events one retry tick hands out.
RETRY_BATCH = 200
#: Unhandled for longer than this, an event is left for a human: it stays in the table,
#: flagged ``abandoned_at``, and one ``alert.inbox_event_unhandled`` event goes out.
GIVE_UP_AFTER = timedelta(days=1)
ABANDONED_ALERT = "alert.inbox_event_unhandled"


@job(HANDLE)
async def handle(resources: JobContext, event_row_id: str) -> None:
    async with resources.sessionmaker() as session:
        found = await repository.get_with_payment(session, event_row_id)
        if found is None or found[0]["processed_at"] is not None:
            return
        event, transaction_id = found
        spec = resources.specs.get(event["gateway"])
        if transaction_id is None and spec is not None:
            # A provider id that is our reference in its own spelling (a txid, say).
            candidate = spec.transaction_id(event["resource_id"])
            # Only a payment of that gateway: one gateway's notification never pokes another's.
            if candidate is not None and await payments.exists(
                session, candidate, gateway=event["gateway"]
            ):
                transaction_id = candidate
    if transaction_id is None:
        log.warning(
            "inbox.unmatched",
            gateway=event["gateway"],
            kind=event["kind"],
            resource_id=event["resource_id"],
        )
    else:
        await resources.payments.advance(transaction_id, poke=True)
    async with resources.sessionmaker() as session:
        repository.mark_processed(session, event_row_id)
        await flush_and_commit(session)


async def retry_once(resources: JobContext) -> int:
    """Hand every event whose job did not finish (it raised, or its worker died before the
    message was redelivered) to a job again; return how many.

    Handling is idempotent, so an event whose first job is merely slow is harmless to repeat;
    only events older than one interval are taken, so a queued job normally finishes first.
    Without this a payment whose notification was dropped would wait for its next poll.
    """
    now = utcnow()
    wait = timedelta(seconds=resources.settings.inbox_retry_seconds)
    async with resources.sessionmaker() as session:
        ids = await repository.unprocessed(session, now - wait, now - GIVE_UP_AFTER, RETRY_BATCH)
    for event_row_id in ids:
        await resources.jobs.kick(HANDLE, event_row_id)
    if ids:
        log.warning("inbox.retried", events=len(ids))
    await abandon_overdue(resources, now)
    return len(ids)


async def abandon_overdue(resources: JobContext, now: datetime) -> int:
    """Stop retrying events unhandled for GIVE_UP_AFTER and tell a human, once per event.

    Such an event's payment is not stuck with it — the sweep and polling resolve payments on
    their own — but a notification no job could handle for a day is a defect to look at.
    """
    async with resources.sessionmaker() as session:
        events = await repository.abandon_overdue(session, now - GIVE_UP_AFTER, RETRY_BATCH)
        for event in events:
            await outbox.append(
                session,
                event_type=ABANDONED_ALERT,
                aggregate_type="inbox_event",
                aggregate_id=event["id"],
                payload={**event, "received_at": event["received_at"].isoformat()},
            )
        await flush_and_commit(session)
    for event in events:
        log.error(
            "inbox.abandoned",
            inbox_event_id=event["id"],
            gateway=event["gateway"],
            kind=event["kind"],
            resource_id=event["resource_id"],
        )
    return len(events)


@periodic(RETRY, interval_setting="inbox_retry_seconds")
async def retry(resources: JobContext) -> None:
    await retry_once(resources)
