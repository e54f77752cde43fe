"""Webhook rules: registering endpoints, fanning events out, settling attempts, redelivering.

A delivery is one event owed to one endpoint. Its attempts follow ``WEBHOOK_RETRY_SCHEDULE``
(seconds between attempts after the first); each attempt is **claimed** first with a
compare-and-set on (status, attempts, series), committed before the request is sent, so two
workers — the delivery job and the retry tick, or two ticks — never send the same attempt.
A delivery that exhausts the schedule fails; if nothing succeeded on its endpoint since that
delivery was queued, the endpoint is disabled and ``alert.webhook_endpoint_disabled`` goes out.

Services never commit: the tasks and the request edge do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.db import utcnow
from pixwave.kit.ids import new_id
from pixwave.kit.pagination import check_cursor
from pixwave.notifications import outbox
from pixwave.notifications.events import envelope
from pixwave.notifications.webhooks import repository, signing, urls
from pixwave.notifications.webhooks.errors import (
    EventNotFound,
    EventNotPublished,
    WebhookEndpointDisabled,
    WebhookEndpointNotFound,
)
from pixwave.notifications.webhooks.repository import ENABLED, FAILED, PENDING, SUCCEEDED
from pixwave.notifications.webhooks.schemas import (
    EventDetail,
    EventRead,
    Redelivery,
    WebhookAttemptRead,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    subscribed,
)
from pixwave.notifications.webhooks.sender import Outcome
from pixwave.observability.metrics import WEBHOOK_DELIVERY_ATTEMPTS
from pixwave.worker.jobs import JobQueue, kick_after_commit

log = structlog.get_logger("pixwave.webhooks")

DELIVER: Final = "notifications.webhooks.deliver"
RETRY: Final = "notifications.webhooks.retry"
ENDPOINT_DISABLED_ALERT: Final = "alert.webhook_endpoint_disabled"


# --- endpoints ------------------------------------------------------------------------------


async def create_endpoint(
    session: AsyncSession,
    body: WebhookEndpointCreate,
    *,
    allow_private: bool,
    resolver: urls.Resolver = urls.system_resolve,
) -> WebhookEndpointCreated:
    """Register an endpoint; its secret is returned here and, until a rotation, never again."""
    await urls.check(body.url, allow_private=allow_private, resolver=resolver)
    now = utcnow()
    secret = signing.new_secret()
    values: dict[str, Any] = {
        "id": new_id("whe"),
        "url": body.url,
        "description": body.description,
        "event_types": list(dict.fromkeys(body.event_types)),
        "secret": secret,
        "status": ENABLED,
        "created_at": now,
        "updated_at": now,
    }
    await repository.insert_endpoint(session, values)
    public = {k: v for k, v in values.items() if k != "secret"}
    return WebhookEndpointCreated(**public, secret=secret)


async def list_endpoints(
    session: AsyncSession, *, limit: int, starting_after: str | None
) -> list[WebhookEndpointRead]:
    if starting_after is not None:
        found = await repository.get_endpoint(session, starting_after) is not None
        check_cursor(found, starting_after)
    rows = await repository.list_endpoints(session, limit=limit, starting_after=starting_after)
    return [WebhookEndpointRead(**row) for row in rows]


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpointRead:
    row = await repository.get_endpoint(session, endpoint_id)
    if row is None:
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
    return WebhookEndpointRead(**row)


async def delete_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpointRead:
    """Remove the endpoint with its deliveries and their attempts (the events stay)."""
    endpoint = await get_endpoint(session, endpoint_id)
    if not await repository.delete_endpoint(session, endpoint_id):
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
    return endpoint


async def rotate_secret(session: AsyncSession, endpoint_id: str) -> WebhookEndpointCreated:
    """A new secret, shown once; the previous one keeps signing beside it for
    ``ROTATION_OVERLAP``, so receivers can switch without missing a delivery. A secret older
    than the previous one stops signing at once."""
    now = utcnow()
    secret = signing.new_secret()
    if not await repository.rotate_secret(
        session, endpoint_id, secret, now + signing.ROTATION_OVERLAP, now
    ):
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
    endpoint = await get_endpoint(session, endpoint_id)
    return WebhookEndpointCreated(**endpoint.model_dump(), secret=secret)


async def enable_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpointRead:
    """Enable a disabled endpoint: it receives new events again. What failed while it was
    down is not re-sent on its own: redeliver those events."""
    if not await repository.enable_endpoint(session, endpoint_id, utcnow()):
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
    return await get_endpoint(session, endpoint_id)


# --- events ---------------------------------------------------------------------------------


def _event_read(row: Mapping[str, Any]) -> EventRead:
    return EventRead(
        id=row["id"],
        type=row["event_type"],
        aggregate_type=row["aggregate_type"],
        aggregate_id=row["aggregate_id"],
        data=row["payload"],
        created_at=row["created_at"],
        published_at=row["published_at"],
    )


async def list_events(
    session: AsyncSession,
    *,
    limit: int,
    starting_after: str | None,
    event_type: str | None = None,
    aggregate_id: str | None = None,
) -> list[EventRead]:
    if starting_after is not None:
        check_cursor(await repository.has_event(session, starting_after), starting_after)
    rows = await repository.list_events(
        session,
        limit=limit,
        starting_after=starting_after,
        event_type=event_type,
        aggregate_id=aggregate_id,
    )
    return [_event_read(row) for row in rows]


def _delivery_read(
    delivery: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]]
) -> WebhookDeliveryRead:
    return WebhookDeliveryRead(
        id=delivery["id"],
        endpoint_id=delivery["endpoint_id"],
        status=delivery["status"],
        series=delivery["series"],
        attempt_count=delivery["attempts"],
        next_attempt_at=delivery["next_attempt_at"],
        queued_at=delivery["queued_at"],
        attempts=[WebhookAttemptRead(**attempt) for attempt in attempts],
    )


async def get_event(session: AsyncSession, event_id: str) -> EventDetail:
    """The event, and every delivery of it with every attempt."""
    row = await repository.get_event(session, event_id)
    if row is None:
        raise EventNotFound(f"event {event_id} does not exist")
    deliveries = await repository.deliveries_with_attempts(session, event_id)
    return EventDetail(
        **_event_read(row).model_dump(),
        deliveries=[_delivery_read(d, attempts) for d, attempts in deliveries],
    )


async def redeliver(
    session: AsyncSession, queue: JobQueue, event_id: str, endpoint_id: str | None
) -> Redelivery:
    """Queue a new series of attempts of a published event: to one endpoint (enabled; it need
    not be subscribed to the type), or to every enabled endpoint subscribed to it.

    The (event, endpoint) row is reset rather than duplicated; its earlier attempts stay in
    the log under their series number. Receivers see the same ``webhook-id`` again.
    """
    event = await repository.get_event(session, event_id)
    if event is None:
        raise EventNotFound(f"event {event_id} does not exist")
    if event["published_at"] is None:
        raise EventNotPublished(f"event {event_id} is not published yet")
    if endpoint_id is not None:
        endpoint = await repository.get_endpoint(session, endpoint_id)
        if endpoint is None:
            raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
        if endpoint["status"] != ENABLED:
            raise WebhookEndpointDisabled(f"webhook endpoint {endpoint_id} is disabled")
        targets = [endpoint_id]
    else:
        targets = [
            found
            for found, filters in await repository.enabled_endpoints(session)
            if subscribed(filters, event["event_type"])
        ]
    now = utcnow()
    existing = await repository.deliveries_of(session, event_id, targets)
    fresh = [_new_delivery(event_id, target, now) for target in targets if target not in existing]
    for delivery_id in existing.values():
        await repository.restart_delivery(session, delivery_id, now)
    await repository.insert_deliveries(session, fresh)
    for delivery_id in [*existing.values(), *(row["id"] for row in fresh)]:
        kick_after_commit(session, queue, DELIVER, delivery_id)
    queued = set(targets)
    return Redelivery(
        event_id=event_id,
        deliveries=[
            _delivery_read(d, attempts)
            for d, attempts in await repository.deliveries_with_attempts(session, event_id)
            if d["endpoint_id"] in queued
        ],
    )


# --- fan-out --------------------------------------------------------------------------------


def _new_delivery(event_id: str, endpoint_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("whd"),
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "status": PENDING,
        "attempts": 0,
        "series": 1,
        "next_attempt_at": now,
        "queued_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def fan_out(
    session: AsyncSession, queue: JobQueue, events: Sequence[Mapping[str, Any]]
) -> int:
    """Owe each event to every enabled endpoint subscribed to its type; return how many
    deliveries that made.

    Called by the outbox relay inside its transaction, with the rows it is marking published
    (id, event_type, aggregate_type, aggregate_id, payload, created_at): the deliveries commit
    with the "published" mark, and their jobs are kicked after that commit. With no endpoint
    this costs one indexed query. Endpoints are read fresh each time, never cached: a cached
    one could have been deleted (the insert would then break the relay's transaction) or
    disabled meanwhile.
    """
    if not events:
        return 0
    endpoints = await repository.enabled_endpoints(session)
    if not endpoints:
        return 0
    now = utcnow()
    rows = [
        _new_delivery(str(event["id"]), endpoint_id, now)
        for event in events
        for endpoint_id, filters in endpoints
        if subscribed(filters, str(event["event_type"]))
    ]
    await repository.insert_deliveries(session, rows)
    for row in rows:
        kick_after_commit(session, queue, DELIVER, row["id"])
    return len(rows)


# --- attempts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """An attempt this worker holds: what to send, and the keys to settle it with."""

    delivery_id: str
    event_id: str
    endpoint_id: str
    #: This attempt's number in its series (the claim's new ``attempts``).
    number: int
    series: int
    queued_at: datetime
    endpoint_enabled: bool
    url: str
    keys: list[str]
    body: bytes


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def event_body(row: Mapping[str, Any]) -> bytes:
    """What receivers get: the event's envelope (``id``, ``type``, ``timestamp``,
    ``aggregate``, ``data``), the same as SNS subscribers."""
    return orjson.dumps(
        envelope(
            row["event_id"],
            row["event_type"],
            row["event_created_at"],
            row["aggregate_type"],
            row["aggregate_id"],
            row["payload"],
        )
    )


def lease(timeout_seconds: float) -> timedelta:
    """How long a claimed attempt stays hidden from the retry tick: the send's timeout plus a
    margin for settling it. Past it, a sender that died is assumed dead."""
    return timedelta(seconds=timeout_seconds + 30)


def _claimed(row: Mapping[str, Any], number: int, series: int, now: datetime) -> Claimed:
    return Claimed(
        delivery_id=row["id"],
        event_id=row["event_id"],
        endpoint_id=row["endpoint_id"],
        number=number,
        series=series,
        queued_at=row["queued_at"],
        endpoint_enabled=row["endpoint_status"] == ENABLED,
        url=row["url"],
        keys=signing.live_secrets(
            row["secret"], row["previous_secret"], row["previous_secret_expires_at"], now
        ),
        body=event_body(row),
    )


async def claim_one(
    session: AsyncSession, delivery_id: str, now: datetime, hold: timedelta
) -> Claimed | None:
    """Claim the delivery's next attempt if it is due; None when it is not (settled, not due
    yet, or claimed by someone else)."""
    rows = await repository.for_sending(session, [delivery_id])
    if not rows:
        return None
    row = rows[0]
    if row["status"] != PENDING or row["next_attempt_at"] is None or row["next_attempt_at"] > now:
        return None
    taken = await repository.claim(
        session,
        delivery_id,
        attempts=row["attempts"],
        series=row["series"],
        now=now,
        lease_until=now + hold,
    )
    return _claimed(row, row["attempts"] + 1, row["series"], now) if taken else None


async def claim_due(
    session: AsyncSession, now: datetime, hold: timedelta, *, limit: int, skip_locked: bool
) -> list[Claimed]:
    """Claim the next attempt of up to ``limit`` due deliveries, oldest first."""
    keys: dict[str, tuple[int, int]] = {}
    for row in await repository.due(session, now, limit, skip_locked=skip_locked):
        if await repository.claim(
            session,
            row["id"],
            attempts=row["attempts"],
            series=row["series"],
            now=now,
            lease_until=now + hold,
        ):
            keys[row["id"]] = (row["attempts"] + 1, row["series"])
    rows = await repository.for_sending(session, list(keys))
    return [_claimed(row, *keys[row["id"]], now) for row in rows]


async def give_up_disabled(session: AsyncSession, claimed: Claimed, now: datetime) -> None:
    """The endpoint was disabled after the delivery was queued: nothing is sent."""
    await repository.finish(
        session,
        claimed.delivery_id,
        attempts=claimed.number,
        series=claimed.series,
        status=FAILED,
        next_attempt_at=None,
        now=now,
    )


async def record(
    session: AsyncSession,
    claimed: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    delays: Sequence[float],
) -> None:
    """Settle a claimed attempt: log it, move the delivery on the schedule, track the
    endpoint's health, and disable it when a delivery exhausts the schedule with nothing
    delivered to it since that delivery was queued.

    The endpoint row is written first, everywhere, so two settlements (one disabling the
    endpoint and failing its other deliveries) take their locks in the same order.
    """
    WEBHOOK_DELIVERY_ATTEMPTS.labels(outcome=outcome.outcome).inc()
    context = {
        "event_id": claimed.event_id,
        "endpoint_id": claimed.endpoint_id,
        "delivery_id": claimed.delivery_id,
        "attempt": claimed.number,
        "series": claimed.series,
        "status": outcome.status_code,
        "duration_ms": outcome.duration_ms,
    }
    if outcome.succeeded:
        await repository.endpoint_succeeded(session, claimed.endpoint_id, now)
        log.info("webhook.delivered", **context)
    else:
        await repository.endpoint_failed(session, claimed.endpoint_id, now)
        log.warning("webhook.failed", **context, error=outcome.error)
    await repository.insert_attempt(
        session,
        {
            "id": new_id("wha"),
            "delivery_id": claimed.delivery_id,
            "series": claimed.series,
            "number": claimed.number,
            "outcome": outcome.outcome,
            "status_code": outcome.status_code,
            "duration_ms": outcome.duration_ms,
            "error": outcome.error,
            "response_excerpt": outcome.response_excerpt,
            "attempted_at": now,
        },
    )
    exhausted = not outcome.succeeded and claimed.number > len(delays)
    if outcome.succeeded:
        status, next_attempt_at = SUCCEEDED, None
    elif exhausted:
        status, next_attempt_at = FAILED, None
    else:
        status, next_attempt_at = PENDING, now + timedelta(seconds=delays[claimed.number - 1])
    settled = await repository.finish(
        session,
        claimed.delivery_id,
        attempts=claimed.number,
        series=claimed.series,
        status=status,
        next_attempt_at=next_attempt_at,
        now=now,
    )
    if settled and exhausted:
        log.error("webhook.delivery_failed", **context)
        await _disable_if_failing(session, claimed, now)


async def _disable_if_failing(session: AsyncSession, claimed: Claimed, now: datetime) -> None:
    reason = (
        f"delivery {claimed.delivery_id} (event {claimed.event_id}) exhausted its retries and "
        "nothing was delivered to this endpoint since it was queued"
    )
    endpoint = await repository.disable_if_failing(
        session, claimed.endpoint_id, since=claimed.queued_at, reason=reason, now=now
    )
    if endpoint is None:
        return
    abandoned = await repository.fail_pending_of_endpoint(session, claimed.endpoint_id, now)
    await outbox.append(
        session,
        event_type=ENDPOINT_DISABLED_ALERT,
        aggregate_type="webhook_endpoint",
        aggregate_id=claimed.endpoint_id,
        payload={
            "endpoint_id": claimed.endpoint_id,
            # Scheme and host only: receivers put tokens in paths (Slack's hooks) and queries,
            # and the alert travels to SNS and to every endpoint that takes alerts.
            "url": _origin(str(endpoint["url"])),
            "reason": reason,
            "failing_since": _iso(endpoint["failing_since"]),
            "disabled_at": now.isoformat(),
            "pending_deliveries_failed": abandoned,
        },
    )
    log.error(
        "webhook.endpoint_disabled",
        endpoint_id=claimed.endpoint_id,
        event_id=claimed.event_id,
        failing_since=_iso(endpoint["failing_since"]),
        pending_deliveries_failed=abandoned,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
