"""/v1/webhook-endpoints and /v1/events: operators register receivers and inspect what was
sent to them (admin only; see docs/webhooks.md).

As everywhere, each route lists the errors its service call raises in `responses=problems(...)`
and the route class adds authentication, idempotency and validation answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pixwave.accounts.auth import AdminPrincipal
from pixwave.exceptions import InvalidText
from pixwave.kit.idempotency import Idempotent
from pixwave.kit.pagination import InvalidCursor, Limit, Page, StartingAfter, page_of
from pixwave.kit.problems import PixWaveRoute, problems
from pixwave.notifications.webhooks import service
from pixwave.notifications.webhooks.errors import (
    EventNotFound,
    EventNotPublished,
    WebhookEndpointDisabled,
    WebhookEndpointNotFound,
)
from pixwave.notifications.webhooks.schemas import (
    EventDetail,
    EventRead,
    EventRedeliver,
    NoBody,
    Redelivery,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
)
from pixwave.notifications.webhooks.urls import WebhookUrlNotAllowed
from pixwave.resources import ReadSession, Resources
from pixwave.unit_of_work import flush_and_commit

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=PixWaveRoute)


def _without_secret(created: BaseModel) -> BaseModel:
    """What the idempotency table keeps: a replay must not show the secret again."""
    return created.model_copy(update={"secret": None})


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=WebhookEndpointCreated,
    responses=problems(WebhookUrlNotAllowed, InvalidText),
)
async def create_endpoint(
    body: WebhookEndpointCreate, request: Request, _admin: AdminPrincipal, call: Idempotent
) -> Response:
    """Register a URL to receive events (admin only). The signing secret is in this response
    only. The URL must lead to public addresses (`webhook_url_not_allowed` otherwise)."""
    resources: Resources = request.app.state.resources
    allow_private = resources.private_webhook_urls

    async def work(session: AsyncSession) -> WebhookEndpointCreated:
        return await service.create_endpoint(session, body, allow_private=allow_private)

    return await call.run(body, work, redact=_without_secret)


@router.get(
    "/webhook-endpoints",
    response_model=Page[WebhookEndpointRead],
    responses=problems(InvalidCursor),
)
async def list_endpoints(
    session: ReadSession,
    _admin: AdminPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Page[WebhookEndpointRead]:
    """Webhook endpoints, newest first (admin only); never their secrets."""
    items = await service.list_endpoints(session, limit=limit + 1, starting_after=starting_after)
    return page_of(items, limit)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointRead,
    responses=problems(WebhookEndpointNotFound),
)
async def get_endpoint(
    endpoint_id: str, session: ReadSession, _admin: AdminPrincipal
) -> WebhookEndpointRead:
    """One webhook endpoint with its health (admin only)."""
    return await service.get_endpoint(session, endpoint_id)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointRead,
    responses=problems(WebhookEndpointNotFound),
)
async def delete_endpoint(
    endpoint_id: str, request: Request, _admin: AdminPrincipal
) -> WebhookEndpointRead:
    """Remove an endpoint (admin only): nothing more is sent to it, and its delivery log goes
    with it. Deleting it again answers 404."""
    resources: Resources = request.app.state.resources
    async with resources.sessionmaker() as session:
        deleted = await service.delete_endpoint(session, endpoint_id)
        await flush_and_commit(session)
    return deleted


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpointCreated,
    responses=problems(WebhookEndpointNotFound),
)
async def rotate_secret(endpoint_id: str, _admin: AdminPrincipal, call: Idempotent) -> Response:
    """A new signing secret, shown in this response only (admin only). For 24 hours the
    previous secret signs too: `webhook-signature` carries both signatures."""

    async def work(session: AsyncSession) -> WebhookEndpointCreated:
        return await service.rotate_secret(session, endpoint_id)

    return await call.run(NoBody(), work, status_code=200, redact=_without_secret)


@router.post(
    "/webhook-endpoints/{endpoint_id}/enable",
    response_model=WebhookEndpointRead,
    responses=problems(WebhookEndpointNotFound),
)
async def enable_endpoint(endpoint_id: str, _admin: AdminPrincipal, call: Idempotent) -> Response:
    """Enable an endpoint again after it was disabled (admin only). Events that failed while
    it was disabled are not re-sent on their own: redeliver them."""

    async def work(session: AsyncSession) -> WebhookEndpointRead:
        return await service.enable_endpoint(session, endpoint_id)

    return await call.run(NoBody(), work, status_code=200)


@router.get("/events", response_model=Page[EventRead], responses=problems(InvalidCursor))
async def list_events(
    session: ReadSession,
    _admin: AdminPrincipal,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    type: Annotated[
        str | None,
        Query(max_length=64, description="Only this type, or a prefix: `transaction.*`."),
    ] = None,
    aggregate_id: Annotated[
        str | None,
        Query(max_length=40, description="Only events about this object (any id)."),
    ] = None,
    transaction_id: Annotated[
        str | None,
        Query(max_length=40, description="Only events about this transaction."),
    ] = None,
) -> Page[EventRead]:
    """Events PixWave emitted, newest first (admin only)."""
    items = await service.list_events(
        session,
        limit=limit + 1,
        starting_after=starting_after,
        event_type=type,
        aggregate_id=transaction_id or aggregate_id,
    )
    return page_of(items, limit)


@router.get("/events/{event_id}", response_model=EventDetail, responses=problems(EventNotFound))
async def get_event(event_id: str, session: ReadSession, _admin: AdminPrincipal) -> EventDetail:
    """An event with its payload, and its delivery to each endpoint with every attempt:
    when, the status answered, how long it took, the error and the start of the answer."""
    return await service.get_event(session, event_id)


@router.post(
    "/events/{event_id}/redeliver",
    status_code=202,
    response_model=Redelivery,
    responses=problems(
        EventNotFound, EventNotPublished, WebhookEndpointNotFound, WebhookEndpointDisabled
    ),
)
async def redeliver_event(
    event_id: str,
    request: Request,
    _admin: AdminPrincipal,
    call: Idempotent,
    body: EventRedeliver | None = None,
) -> Response:
    """Send an event again (admin only): to `endpoint_id`, or to every enabled endpoint
    subscribed to its type. Each delivery starts a new series of attempts; receivers see the
    same `webhook-id`, which is how they tell a redelivery from a new event."""
    resources: Resources = request.app.state.resources
    payload = body or EventRedeliver()

    async def work(session: AsyncSession) -> Redelivery:
        return await service.redeliver(session, resources.jobs, event_id, payload.endpoint_id)

    return await call.run(payload, work, status_code=202)
