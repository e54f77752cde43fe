"""Helpers for the webhook tests: endpoints, published events, a recording job queue, a clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from pixwave.app import create_app
from pixwave.db import table, utcnow
from pixwave.notifications import outbox
from pixwave.notifications.models import OutboxEvent
from pixwave.notifications.webhooks import (
    service,
    tasks,  # noqa: F401 - importing registers the jobs
)
from pixwave.notifications.webhooks.models import WebhookDelivery, WebhookEndpoint
from pixwave.notifications.webhooks.schemas import WebhookEndpointCreate, WebhookEndpointCreated
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from pixwave.worker.jobs import JobQueue

EVENTS = table(OutboxEvent)
DELIVERIES = table(WebhookDelivery)
ENDPOINTS = table(WebhookEndpoint)
DELIVER = service.DELIVER


@dataclass
class Kicks:
    """A job queue that records what would have been enqueued."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    async def record(self, name: str, argument: str) -> None:
        self.calls.append((name, argument))

    @property
    def queue(self) -> JobQueue:
        return JobQueue(self.record)

    @classmethod
    def on(cls, resources: Resources, monkeypatch: pytest.MonkeyPatch) -> Kicks:
        """Record, instead of enqueueing, what ``resources`` would enqueue (for the test)."""
        recorded = cls()
        monkeypatch.setattr(resources, "jobs", recorded.queue)
        return recorded

    def of(self, name: str) -> list[str]:
        return [argument for called, argument in self.calls if called == name]


@dataclass
class Clock:
    """An injected clock the test moves forward by hand."""

    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def create_endpoint(
    resources: Resources, *, url: str, event_types: list[str] | None = None
) -> WebhookEndpointCreated:
    body = WebhookEndpointCreate(url=url, event_types=event_types or [])
    async with resources.sessionmaker() as session:
        created = await service.create_endpoint(session, body, allow_private=True)
        await flush_and_commit(session)
    return created


async def publish(
    resources: Resources,
    queue: JobQueue,
    *,
    event_type: str = "transaction.succeeded",
    aggregate_id: str = "txn_01TEST",
    payload: dict[str, Any] | None = None,
) -> tuple[str, int]:
    """Append an event and publish it the way the relay does: mark it and fan it out in one
    transaction. Returns the event id and the number of deliveries."""
    async with resources.sessionmaker() as session:
        event_id = await outbox.append(
            session,
            event_type=event_type,
            aggregate_type=event_type.split(".", 1)[0],
            aggregate_id=aggregate_id,
            payload=payload or {"amount": 1500, "status": "succeeded"},
        )
        await flush_and_commit(session)
    async with resources.sessionmaker() as session:
        row = (await session.execute(select(EVENTS).where(EVENTS.c.id == event_id))).one()
        await session.execute(
            update(EVENTS).where(EVENTS.c.id == event_id).values(published_at=utcnow())
        )
        count = await service.fan_out(session, queue, [dict(row._mapping)])
        await flush_and_commit(session)
    return event_id, count


async def append_unpublished(resources: Resources, *, event_type: str) -> str:
    async with resources.sessionmaker() as session:
        event_id = await outbox.append(
            session,
            event_type=event_type,
            aggregate_type="transaction",
            aggregate_id="txn_01UNPUBLISHED",
            payload={},
        )
        await flush_and_commit(session)
    return event_id


async def delivery(resources: Resources, delivery_id: str) -> dict[str, Any]:
    async with resources.sessionmaker() as session:
        row = (
            await session.execute(select(DELIVERIES).where(DELIVERIES.c.id == delivery_id))
        ).one()
    return dict(row._mapping)


async def endpoint_row(resources: Resources, endpoint_id: str) -> dict[str, Any]:
    async with resources.sessionmaker() as session:
        row = (await session.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))).one()
    return dict(row._mapping)


async def events_of_type(resources: Resources, event_type: str) -> list[dict[str, Any]]:
    async with resources.sessionmaker() as session:
        rows = await session.execute(select(EVENTS).where(EVENTS.c.event_type == event_type))
    return [dict(row._mapping) for row in rows]


def app_with_webhooks(resources: Resources) -> FastAPI:
    """The app as served (it includes the webhook endpoints) on the test's resources."""
    return create_app(resources.settings, resources)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pixwave.test")
