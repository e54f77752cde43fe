"""The inbox job: find the payment a notification is about and let the engine look."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from pixwave.db import utcnow
from pixwave.gateways.base import TRUSTED_PAYMENT, WebhookKind
from pixwave.inbox import repository
from pixwave.inbox.service import HANDLE
from pixwave.kit.batching import Batcher, Settle
from pixwave.notifications import outbox
from pixwave.payments import repository as payments
from pixwave.payments.engine.batch import Notified
from pixwave.payments.tasks import engine_batcher
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import job, periodic

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

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
    """Let the engine look at the payment the notification is about, then mark it handled.

    With ``ENGINE_BATCH`` (the default) the event joins the worker's next batch (see
    :func:`drain`); the job still finishes only once its event is handled, so a worker that
    dies first leaves the message to be delivered again."""
    batch = resources.inbox_batch
    if batch is not None:
        await batch.submit(event_row_id)
        return
    payment_of, told = await _pending(resources, [event_row_id])
    if event_row_id not in payment_of:  # gone, or handled already
        return
    transaction_id = payment_of[event_row_id]
    if transaction_id in told:
        moved = await resources.payments.advance_many([transaction_id], poke=True, notified=told)
        if (error := moved[transaction_id]) is not None:
            raise error
    elif transaction_id is not None:
        await resources.payments.advance(transaction_id, poke=True)
    await _mark_handled(resources, [event_row_id])


async def drain(resources: JobContext, event_row_ids: list[str]) -> list[BaseException | None]:
    """Handle many events at once: one read of the events and their payments, the payments
    moved together (`Engine.advance_many`: the paid deposits credited in one COMMIT), one
    write marking the events handled. Each event's outcome is its payment's: an event whose
    payment raised stays unhandled, for its job's retry (or the retry tick)."""
    payment_of, told = await _pending(resources, event_row_ids)
    moved = await resources.payments.advance_many(
        [t for t in payment_of.values() if t is not None], poke=True, notified=told
    )
    await _mark_handled(
        resources, [e for e, t in payment_of.items() if t is None or moved[t] is None]
    )
    return [moved[t] if (t := payment_of.get(e)) else None for e in event_row_ids]


async def _pending(
    resources: JobContext, event_row_ids: list[str]
) -> tuple[dict[str, str | None], dict[str, Notified]]:
    """The events not handled yet, each with the payment it is about (None: none of ours), and
    what trusted notifications state of their payments, in one read."""
    payment_of: dict[str, str | None] = {}
    told: dict[str, Notified] = {}
    async with resources.sessionmaker() as session:
        found = await repository.get_many_with_payment(session, event_row_ids)
        for event_row_id, (event, transaction_id) in found.items():
            if event["processed_at"] is None:
                payment = await _payment_of(resources, session, event, transaction_id)
                payment_of[event_row_id] = payment
                if payment is not None and (paid := notified(event)) is not None:
                    told[payment] = paid
    return payment_of, told


async def _mark_handled(resources: JobContext, event_row_ids: list[str]) -> None:
    if event_row_ids:
        async with resources.sessionmaker() as session:
            for event_row_id in event_row_ids:
                repository.mark_processed(session, event_row_id)
            await flush_and_commit(session)


def notified(event: dict[str, Any]) -> Notified | None:
    """The received Pix a trusted notification states (see ``TRUSTED_PAYMENT``); None for
    every other event — those are read back from their gateway."""
    data = event["data"] or {}
    if event["kind"] != WebhookKind.CHARGE or not data.get(TRUSTED_PAYMENT):
        return None
    try:
        amount = int(data["amount"])
    except (KeyError, TypeError, ValueError):
        return None
    return Notified(event["resource_id"], amount, data.get("end_to_end_id"))


def inbox_batcher(resources: JobContext) -> Batcher[str, None] | None:
    """The process's batch of inbox events (``ENGINE_BATCH``); None handles each alone."""

    async def run(event_row_ids: list[str], _settle: Settle[None]) -> list[BaseException | None]:
        # An event is marked handled with the others, after every payment's look: its job
        # ends then too.
        return await drain(resources, event_row_ids)

    return engine_batcher(resources.settings, "inbox", run)


async def _payment_of(
    resources: JobContext,
    session: AsyncSession,
    event: dict[str, Any],
    transaction_id: str | None,
) -> str | None:
    """The payment the event is about (matched by the query, or by a provider id that is our
    reference in its own spelling); None, logged, when it names none of ours."""
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
    return transaction_id


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
