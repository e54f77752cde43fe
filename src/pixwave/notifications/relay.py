"""The outbox relay: every committed event leaves PixWave at least once, in order per aggregate.

One relay runs at a time (a lock), so one transaction's events are published in the order they
were written (``created_at``, then id). A round reads the oldest unpublished events, publishes
them to SNS (when configured), then — in one database transaction — marks them published and
creates their operator webhook deliveries. A crash between publishing and marking republishes
the same events with the same ids on the next round: duplicates, never losses; subscribers
de-duplicate by id. A failure stops only the events of that aggregate (later ones wait behind
it); the others go on. Events that wait too long raise ``alert.outbox_lagging``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, exists, func, select, update

from pixwave.db import table, utcnow
from pixwave.notifications import outbox
from pixwave.notifications.models import OutboxEvent
from pixwave.notifications.webhooks import service as webhooks
from pixwave.notifications.webhooks.models import WebhookDelivery
from pixwave.observability.metrics import OUTBOX_LAG_SECONDS, OUTBOX_PUBLISHED
from pixwave.unit_of_work import flush_and_commit

if TYPE_CHECKING:
    from pixwave.worker.context import JobContext

log = structlog.get_logger("pixwave.notifications")

LOCK = "outbox:relay"
#: The relay's lock outlives a round by far; it is extended between batches.
LOCK_SECONDS = 60.0
LAG_ALERT = "alert.outbox_lagging"
#: While events keep lagging, the alert is repeated at most this often (across processes).
LAG_ALERT_EVERY_SECONDS = 3600.0
#: Longest a round publishes before it records what went out (well within the lock).
PUBLISH_SECONDS = LOCK_SECONDS / 2
#: Aggregates published concurrently in one round (each one's events stay sequential).
CONCURRENCY = 16
PURGE_BATCH = 1000

_EVENTS = table(OutboxEvent)
_DELIVERIES = table(WebhookDelivery)
_COLUMNS = (
    _EVENTS.c.id,
    _EVENTS.c.event_type,
    _EVENTS.c.aggregate_type,
    _EVENTS.c.aggregate_id,
    _EVENTS.c.payload,
    _EVENTS.c.created_at,
)


@dataclass(frozen=True, slots=True)
class RelayRound:
    published: int
    failed: int
    lag_seconds: float


async def relay(resources: JobContext) -> RelayRound:
    """Publish what is waiting, batch after batch, while the lock is ours and nothing fails."""
    token = await resources.locks.acquire(LOCK, LOCK_SECONDS)
    if token is None:
        return RelayRound(0, 0, 0.0)  # another process is relaying
    published = failed = 0
    try:
        limit = resources.settings.outbox_relay_batch
        while True:
            async with resources.sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(*_COLUMNS)
                        .where(_EVENTS.c.published_at.is_(None))
                        .order_by(_EVENTS.c.created_at, _EVENTS.c.id)
                        .limit(limit)
                    )
                ).all()
            batch = [dict(row._mapping) for row in rows]
            if not batch:
                break
            sent = await _publish(resources, batch)
            await _mark(resources, sent)
            published += len(sent)
            failed += len(batch) - len(sent)
            if len(sent) < len(batch) or len(batch) < limit:
                break
            if not await resources.locks.extend(LOCK, token, LOCK_SECONDS):
                break
        lag = await _watch_lag(resources)
    finally:
        await resources.locks.release(LOCK, token)
    return RelayRound(published, failed, lag)


async def _publish(resources: JobContext, batch: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Publish to SNS, aggregate by aggregate; return the events that went out, in order."""
    sns = resources.sns
    if sns is None:
        return list(batch)
    by_aggregate: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in batch:
        by_aggregate.setdefault((event["aggregate_type"], event["aggregate_id"]), []).append(event)
    sent: set[str] = set()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def publish_in_order(events: list[dict[str, Any]]) -> None:
        async with gate:
            for event in events:
                try:
                    await sns.publish(event)
                except Exception as exc:  # the rest of this aggregate waits for the next round
                    log.warning(
                        "outbox.publish_failed",
                        event_id=event["id"],
                        event_type=event["event_type"],
                        error=repr(exc),
                    )
                    return
                sent.add(event["id"])
                OUTBOX_PUBLISHED.labels("sns", event["event_type"]).inc()

    # Within the lock's lifetime, or a second relay could take the lock and publish the same
    # events alongside (out of order). What is cut off waits for the next round; an event cut
    # off after SNS took it goes out again, with its id.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(PUBLISH_SECONDS):
            await asyncio.gather(*(publish_in_order(events) for events in by_aggregate.values()))
    return [event for event in batch if event["id"] in sent]


async def _mark(resources: JobContext, events: Sequence[dict[str, Any]]) -> None:
    """Mark published and create webhook deliveries, in one commit."""
    if not events:
        return
    async with resources.sessionmaker() as session:
        marked = await session.execute(
            update(_EVENTS)
            .where(_EVENTS.c.id.in_([event["id"] for event in events]))
            .where(_EVENTS.c.published_at.is_(None))
            .values(published_at=utcnow())
        )
        # Nothing marked: another relay recorded them (and fanned them out) first.
        deliveries = (
            await webhooks.fan_out(session, resources.jobs, events)
            if marked.rowcount  # type: ignore[attr-defined]
            else 0
        )
        await flush_and_commit(session)
    for event in events:
        OUTBOX_PUBLISHED.labels("log", event["event_type"]).inc()
        log.info(
            "event.published",
            event_id=event["id"],
            event_type=event["event_type"],
            aggregate_type=event["aggregate_type"],
            aggregate_id=event["aggregate_id"],
        )
    if deliveries:
        OUTBOX_PUBLISHED.labels("webhooks", "*").inc(deliveries)


async def _watch_lag(resources: JobContext) -> float:
    """Export the age of the oldest waiting event; alert when it passes the threshold."""
    async with resources.sessionmaker() as session:
        oldest: datetime | None = await session.scalar(
            select(func.min(_EVENTS.c.created_at)).where(_EVENTS.c.published_at.is_(None))
        )
    if oldest is None:
        OUTBOX_LAG_SECONDS.set(0)
        return 0.0
    if oldest.tzinfo is None:  # SQLite's MIN() loses the column type's conversion
        oldest = oldest.replace(tzinfo=UTC)
    lag = max((utcnow() - oldest).total_seconds(), 0.0)
    OUTBOX_LAG_SECONDS.set(lag)
    if lag >= resources.settings.outbox_lag_alert_seconds and await resources.locks.acquire(
        "outbox:lag-alerted", LAG_ALERT_EVERY_SECONDS
    ):
        # Once an hour while it lasts, like the alert (the gauge shows it every round).
        log.error("outbox.lagging", lag_seconds=round(lag, 1))
        async with resources.sessionmaker() as session:
            await outbox.append(
                session,
                event_type=LAG_ALERT,
                aggregate_type="outbox",
                aggregate_id="relay",
                payload={"lag_seconds": int(lag), "oldest_event_at": oldest.isoformat()},
            )
            await flush_and_commit(session)
    return lag


async def purge(resources: JobContext, now: datetime | None = None) -> int:
    """Delete events published longer ago than the retention, once no delivery is pending.

    Their webhook deliveries and attempts go with them (foreign keys cascade)."""
    cutoff = (now or utcnow()) - timedelta(hours=resources.settings.outbox_retention_hours)
    pending = exists().where(
        _DELIVERIES.c.event_id == _EVENTS.c.id, _DELIVERIES.c.status == "pending"
    )
    purged = 0
    while True:
        async with resources.sessionmaker() as session:
            ids = list(
                (
                    await session.execute(
                        select(_EVENTS.c.id)
                        .where(_EVENTS.c.published_at < cutoff, ~pending)
                        .limit(PURGE_BATCH)
                    )
                ).scalars()
            )
            if ids:
                await session.execute(delete(_EVENTS).where(_EVENTS.c.id.in_(ids)))
                await session.commit()
        purged += len(ids)
        if len(ids) < PURGE_BATCH:
            break
    if purged:
        log.info("outbox.purged", events=purged)
    return purged
