"""Receive a gateway's notification: authenticate, store each event once, hand it to a job.

The answer is fast and says nothing about the payment: the provider only needs to know we
have it. Duplicates (the provider retries) hit the unique (gateway, event_id) and change
nothing; out-of-order deliveries do not matter because the handler does not trust the
notification's content — it asks the gateway for the resource's current state. (The one
exception is an operator's opt-in: a received Pix notified over a scheme the operator trusts
may be credited from the notification when it matches the charge; see ``TRUSTED_PAYMENT``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import structlog

from pixwave.db import utcnow
from pixwave.exceptions import NotFound
from pixwave.gateways.base import InboundWebhook, WebhookEvent
from pixwave.gateways.errors import WebhookRejected
from pixwave.inbox import repository
from pixwave.kit.ids import new_id
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import kick_after_commit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from pixwave.resources import Resources

log = structlog.get_logger("pixwave.inbox")

HANDLE = "inbox.handle"

#: A resource id longer than the columns it is matched against (provider ids, txids) cannot
#: name one of our payments; it is refused, never cut to fit.
MAX_RESOURCE_ID: Final = 64


class GatewayNotConfigured(NotFound):
    code = "gateway_not_found"
    title = "No such gateway is configured"


async def receive(
    resources: Resources, gateway_name: str, request: InboundWebhook, *, path: str = ""
) -> int:
    """Store the notification's events; return how many were new. ``path`` is what follows
    ``/webhooks/<gateway>`` in the URL: one of the paths the gateway's family uses."""
    gateway = resources.gateways.get(gateway_name)
    spec = resources.specs.get(gateway_name)
    paths = ("",) if spec is None else spec.webhook_paths
    if gateway is None or path not in paths:
        raise GatewayNotConfigured(f"gateway {gateway_name} is not configured")
    events = gateway.verify_webhook(request)  # WebhookRejected (401) before anything is stored
    for event in events:
        _check_ids(event)
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id("evt"),
            "gateway": gateway_name,
            "event_id": event.event_id,
            "kind": event.kind.value,
            "resource_id": event.resource_id,
            "data": dict(event.data),
            "received_at": now,
        }
        for event in events
    ]
    async with resources.sessionmaker() as session:
        new = await _store(resources, session, rows)
    log.info("inbox.received", gateway=gateway_name, events=len(events), new=new)
    return new


async def _store(resources: Resources, session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Store the events not stored yet, each with its job enqueued after the commit; how many
    were new.

    Optimistic, like idempotency keys (ADR 7): nearly every notification is new, so all its
    events go in one round trip and the COMMIT. Only a redelivery rolls that back (its queued
    jobs with it); then each event goes in a savepoint of its own. A lone event that was
    refused is the redelivery itself: nothing is left to store.
    """
    for row in rows:
        kick_after_commit(session, resources.jobs, HANDLE, row["id"])
    if await repository.store_all(session, rows):
        return len(rows)
    if len(rows) == 1:
        return 0
    new = 0
    for row in rows:
        if await repository.store(session, row):
            new += 1
            kick_after_commit(session, resources.jobs, HANDLE, row["id"])
    await flush_and_commit(session)
    return new


def _check_ids(event: WebhookEvent) -> None:
    """Refuse (the whole notification, before anything is stored) ids we would have to cut."""
    if not 0 < len(event.resource_id) <= MAX_RESOURCE_ID:
        raise WebhookRejected(
            "invalid_body",
            f"resource id of {len(event.resource_id)} characters: ours are 1 to "
            f"{MAX_RESOURCE_ID}, so it names no payment of this deployment",
        )
