"""Every query on webhook endpoints, deliveries, attempts — and the events they carry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import table
from pixwave.notifications.models import OutboxEvent
from pixwave.notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from pixwave.notifications.webhooks.schemas import DeliveryStatus, EndpointStatus

ENDPOINTS = table(WebhookEndpoint)
DELIVERIES = table(WebhookDelivery)
ATTEMPTS = table(WebhookAttempt)
EVENTS = table(OutboxEvent)
E = ENDPOINTS.c
D = DELIVERIES.c
A = ATTEMPTS.c
O = EVENTS.c  # noqa: E741 - O for outbox, like E, D and A

PENDING, SUCCEEDED, FAILED = (str(s) for s in DeliveryStatus)
ENABLED, DISABLED = str(EndpointStatus.ENABLED), str(EndpointStatus.DISABLED)

#: An endpoint's public fields: never its secrets.
_ENDPOINT_FIELDS = (
    E.id, E.url, E.description, E.event_types, E.status, E.disabled_reason, E.disabled_at,
    E.failing_since, E.last_succeeded_at, E.previous_secret_expires_at, E.created_at,
    E.updated_at,
)  # fmt: skip

#: What an attempt needs to send: the delivery, where to, the secrets and the event.
_FOR_SENDING = (
    select(
        D.id,
        D.event_id,
        D.endpoint_id,
        D.status,
        D.attempts,
        D.series,
        D.next_attempt_at,
        D.queued_at,
        E.url,
        E.secret,
        E.previous_secret,
        E.previous_secret_expires_at,
        E.status.label("endpoint_status"),
        O.event_type,
        O.aggregate_type,
        O.aggregate_id,
        O.payload,
        O.created_at.label("event_created_at"),
    )
    .join(ENDPOINTS, E.id == D.endpoint_id)
    .join(EVENTS, O.id == D.event_id)
)


def _ignoring_duplicates(statement: Any) -> Any:
    """An INSERT that skips rows whose unique key exists (at-least-once callers)."""
    return statement.prefix_with("IGNORE", dialect="mysql").prefix_with(
        "OR IGNORE", dialect="sqlite"
    )


# --- endpoints ------------------------------------------------------------------------------


async def insert_endpoint(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(ENDPOINTS).values(**values))


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(select(*_ENDPOINT_FIELDS).where(E.id == endpoint_id))
    ).one_or_none()
    return None if row is None else dict(row._mapping)


async def list_endpoints(
    session: AsyncSession, *, limit: int, starting_after: str | None
) -> list[dict[str, Any]]:
    statement = select(*_ENDPOINT_FIELDS).order_by(E.id.desc()).limit(limit)
    if starting_after:
        statement = statement.where(E.id < starting_after)
    return [dict(r._mapping) for r in await session.execute(statement)]


async def delete_endpoint(session: AsyncSession, endpoint_id: str) -> bool:
    result = await session.execute(delete(ENDPOINTS).where(E.id == endpoint_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def rotate_secret(
    session: AsyncSession, endpoint_id: str, secret: str, overlap_until: datetime, now: datetime
) -> bool:
    """The current secret becomes the previous one. The SET order matters on MySQL, which
    assigns left to right: ``previous_secret`` must read ``secret`` before it changes."""
    result = await session.execute(
        update(ENDPOINTS)
        .where(E.id == endpoint_id)
        .ordered_values(
            (E.previous_secret, E.secret),
            (E.secret, secret),
            (E.previous_secret_expires_at, overlap_until),
            (E.updated_at, now),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def enable_endpoint(session: AsyncSession, endpoint_id: str, now: datetime) -> bool:
    """Enabled again, with a clean bill of health (a past failing spell must not count)."""
    result = await session.execute(
        update(ENDPOINTS)
        .where(E.id == endpoint_id)
        .values(
            status=ENABLED,
            disabled_reason=None,
            disabled_at=None,
            failing_since=None,
            updated_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def enabled_endpoints(session: AsyncSession) -> list[tuple[str, list[str]]]:
    """(id, event type filters) of every enabled endpoint: the fan-out's one query."""
    rows = await session.execute(select(E.id, E.event_types).where(E.status == ENABLED))
    return [(str(row.id), list(row.event_types or [])) for row in rows]


async def endpoint_succeeded(session: AsyncSession, endpoint_id: str, now: datetime) -> None:
    await session.execute(
        update(ENDPOINTS)
        .where(E.id == endpoint_id)
        .values(failing_since=None, last_succeeded_at=now)
    )


async def endpoint_failed(session: AsyncSession, endpoint_id: str, now: datetime) -> None:
    """Start the failing spell, unless one is already running."""
    await session.execute(
        update(ENDPOINTS)
        .where(E.id == endpoint_id, E.failing_since.is_(None))
        .values(failing_since=now)
    )


async def disable_if_failing(
    session: AsyncSession, endpoint_id: str, *, since: datetime, reason: str, now: datetime
) -> dict[str, Any] | None:
    """Disable the endpoint if it is failing and nothing succeeded on it since ``since``;
    the endpoint when this call disabled it (so only one caller announces it)."""
    result = await session.execute(
        update(ENDPOINTS)
        .where(
            E.id == endpoint_id,
            E.status == ENABLED,
            E.failing_since.is_not(None),
            or_(E.last_succeeded_at.is_(None), E.last_succeeded_at < since),
        )
        .values(status=DISABLED, disabled_reason=reason, disabled_at=now, updated_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await get_endpoint(session, endpoint_id)


# --- deliveries -----------------------------------------------------------------------------


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One executemany; a (event, endpoint) pair that already has its row is skipped."""
    if rows:
        await session.execute(_ignoring_duplicates(insert(DELIVERIES)), list(rows))


async def deliveries_of(
    session: AsyncSession, event_id: str, endpoint_ids: Sequence[str]
) -> dict[str, str]:
    """endpoint id → delivery id, for the pairs of this event that have a row."""
    rows = await session.execute(
        select(D.endpoint_id, D.id).where(D.event_id == event_id, D.endpoint_id.in_(endpoint_ids))
    )
    return {str(row.endpoint_id): str(row.id) for row in rows}


async def restart_delivery(session: AsyncSession, delivery_id: str, now: datetime) -> None:
    """A new series: due now, from the schedule's start. A claim in flight for the old series
    no longer matches (its CAS compares ``series``), so it cannot finish the new one."""
    await session.execute(
        update(DELIVERIES)
        .where(D.id == delivery_id)
        .values(
            status=PENDING,
            attempts=0,
            series=D.series + 1,
            next_attempt_at=now,
            queued_at=now,
            updated_at=now,
        )
    )


async def due(
    session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool
) -> list[dict[str, Any]]:
    """Pending deliveries due by ``now``, oldest first (with their CAS keys). On MariaDB the
    rows are locked SKIP LOCKED until the caller commits its claims, so two workers ticking
    at once take different rows instead of racing for the same ones."""
    statement = (
        select(D.id, D.attempts, D.series)
        .where(D.status == PENDING, D.next_attempt_at <= now)
        .order_by(D.next_attempt_at)
        .limit(limit)
    )
    if skip_locked:
        statement = statement.with_for_update(skip_locked=True)
    return [dict(r._mapping) for r in await session.execute(statement)]


async def for_sending(session: AsyncSession, delivery_ids: Sequence[str]) -> list[dict[str, Any]]:
    if not delivery_ids:
        return []
    rows = await session.execute(_FOR_SENDING.where(D.id.in_(delivery_ids)))
    return [dict(r._mapping) for r in rows]


async def claim(
    session: AsyncSession,
    delivery_id: str,
    *,
    attempts: int,
    series: int,
    now: datetime,
    lease_until: datetime,
) -> bool:
    """Compare-and-set: take the next attempt if nobody took it since ``attempts`` was read.

    Moving ``next_attempt_at`` past the send's timeout hides the row from the retry tick while
    it is sent, and makes it due again if the sender dies.
    """
    result = await session.execute(
        update(DELIVERIES)
        .where(
            D.id == delivery_id,
            D.status == PENDING,
            D.attempts == attempts,
            D.series == series,
            D.next_attempt_at <= now,
        )
        .values(attempts=attempts + 1, next_attempt_at=lease_until, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def finish(
    session: AsyncSession,
    delivery_id: str,
    *,
    attempts: int,
    series: int,
    status: str,
    next_attempt_at: datetime | None,
    now: datetime,
) -> bool:
    """Settle the claimed attempt; False when the delivery moved on meanwhile (redelivered,
    or settled by someone else)."""
    result = await session.execute(
        update(DELIVERIES)
        .where(
            D.id == delivery_id,
            D.status == PENDING,
            D.attempts == attempts,
            D.series == series,
        )
        .values(status=status, next_attempt_at=next_attempt_at, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail_pending_of_endpoint(session: AsyncSession, endpoint_id: str, now: datetime) -> int:
    """A disabled endpoint is owed nothing more: its pending deliveries fail (redeliver them
    once it is enabled again)."""
    result = await session.execute(
        update(DELIVERIES)
        .where(D.endpoint_id == endpoint_id, D.status == PENDING)
        .values(status=FAILED, next_attempt_at=None, updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def insert_attempt(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(ATTEMPTS).values(**values))


async def deliveries_with_attempts(
    session: AsyncSession, event_id: str
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """An event's deliveries (by endpoint) with every attempt, oldest first: two queries."""
    deliveries = [
        dict(r._mapping)
        for r in await session.execute(
            select(DELIVERIES).where(D.event_id == event_id).order_by(D.id)
        )
    ]
    if not deliveries:
        return []
    attempts: dict[str, list[dict[str, Any]]] = {d["id"]: [] for d in deliveries}
    rows = await session.execute(
        select(ATTEMPTS).where(A.delivery_id.in_(list(attempts))).order_by(A.id)
    )
    for row in rows:
        attempts[row.delivery_id].append(dict(row._mapping))
    return [(d, attempts[d["id"]]) for d in deliveries]


# --- events ---------------------------------------------------------------------------------


async def get_event(session: AsyncSession, event_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(EVENTS).where(O.id == event_id))).one_or_none()
    return None if row is None else dict(row._mapping)


async def has_event(session: AsyncSession, event_id: str) -> bool:
    return (await session.scalar(select(O.id).where(O.id == event_id))) is not None


async def list_events(
    session: AsyncSession,
    *,
    limit: int,
    starting_after: str | None,
    event_type: str | None,
    aggregate_id: str | None,
) -> list[dict[str, Any]]:
    """Events newest first; ``event_type`` is exact, or a prefix when it ends in ``.*``."""
    conditions = []
    if starting_after:
        conditions.append(O.id < starting_after)
    if event_type:
        if event_type.endswith(".*"):
            conditions.append(O.event_type.startswith(event_type[:-1], autoescape=True))
        else:
            conditions.append(O.event_type == event_type)
    if aggregate_id:
        conditions.append(O.aggregate_id == aggregate_id)
    statement = select(EVENTS).order_by(O.id.desc()).limit(limit)
    if conditions:
        statement = statement.where(and_(*conditions))
    return [dict(r._mapping) for r in await session.execute(statement)]
