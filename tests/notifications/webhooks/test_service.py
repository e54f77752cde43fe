"""Fan-out, subscriptions and the attempt claim."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError

from pixwave.notifications.webhooks import repository, service, tasks
from pixwave.notifications.webhooks.schemas import subscribed
from pixwave.resources import Resources
from pixwave.unit_of_work import flush_and_commit
from tests.notifications.webhooks.support import (
    DELIVER,
    DELIVERIES,
    ENDPOINTS,
    EVENTS,
    Clock,
    Kicks,
    create_endpoint,
    delivery,
    publish,
)


@contextmanager
def counting_statements(resources: Resources) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(resources.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(resources.engine.sync_engine, "before_cursor_execute", count)


async def _deliveries(resources: Resources) -> int:
    async with resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(DELIVERIES)) or 0)


class TestSubscribed:
    @pytest.mark.parametrize(
        ("filters", "event_type", "expected"),
        [
            ([], "transaction.succeeded", True),
            ([], "alert.outbox_lagging", True),
            (["transaction.*"], "transaction.succeeded", True),
            (["transaction.*"], "transactions.succeeded", False),
            (["transaction.*"], "alert.webhook_endpoint_disabled", False),
            (["alert.*"], "alert.webhook_endpoint_disabled", True),
            (["transaction.succeeded"], "transaction.succeeded", True),
            (["transaction.succeeded"], "transaction.succeeded_late", False),
            (["transaction.failed", "alert.*"], "transaction.failed", True),
        ],
    )
    def test_exact_types_and_prefixes(
        self, filters: list[str], event_type: str, expected: bool
    ) -> None:
        """Exact types match whole; `family.*` matches the family; nothing: every event."""
        assert subscribed(filters, event_type) is expected


class TestFanOut:
    async def test_no_endpoint_inserts_nothing_with_one_query(
        self, any_resources: Resources
    ) -> None:
        """The relay's hot path pays one query when nobody listens, and queues nothing."""
        kicks = Kicks()
        events: list[dict[str, Any]] = [
            {
                "id": "evt_1",
                "event_type": "transaction.succeeded",
                "aggregate_type": "transaction",
                "aggregate_id": "txn_1",
                "payload": {},
                "created_at": None,
            },
        ]
        async with any_resources.sessionmaker() as session:
            with counting_statements(any_resources) as statements:
                assert await service.fan_out(session, kicks.queue, events) == 0
            await flush_and_commit(session)
        assert [s for s in statements if s != "BEGIN"] == [statements[-1]]
        assert statements[-1].startswith("SELECT webhook_endpoints.id")
        assert await _deliveries(any_resources) == 0
        assert kicks.calls == []

    async def test_one_delivery_per_subscribed_enabled_endpoint(
        self, any_resources: Resources
    ) -> None:
        """Each event goes to the enabled endpoints whose filters match it, a job each."""
        everything = await create_endpoint(any_resources, url="https://a.example.com/h")
        payments = await create_endpoint(
            any_resources, url="https://b.example.com/h", event_types=["transaction.*"]
        )
        alerts = await create_endpoint(
            any_resources, url="https://c.example.com/h", event_types=["alert.*"]
        )
        disabled = await create_endpoint(any_resources, url="https://d.example.com/h")
        async with any_resources.sessionmaker() as session:
            await session.execute(
                update(ENDPOINTS).where(ENDPOINTS.c.id == disabled.id).values(status="disabled")
            )
            await flush_and_commit(session)
        kicks = Kicks()
        event_id, count = await publish(any_resources, kicks.queue)
        assert count == 2
        async with any_resources.sessionmaker() as session:
            rows = (
                await session.execute(select(DELIVERIES).where(DELIVERIES.c.event_id == event_id))
            ).all()
        assert {row.endpoint_id for row in rows} == {everything.id, payments.id}
        assert {row.status for row in rows} == {"pending"}
        assert sorted(kicks.of(DELIVER)) == sorted(row.id for row in rows)
        assert alerts.id not in {row.endpoint_id for row in rows}

    async def test_nothing_is_queued_when_the_relay_rolls_back(
        self, any_resources: Resources
    ) -> None:
        """Jobs are kicked after the relay's commit only; a rollback leaves no delivery."""
        await create_endpoint(any_resources, url="https://a.example.com/h")
        kicks = Kicks()
        async with any_resources.sessionmaker() as session:
            events: list[dict[str, Any]] = [
                {
                    "id": "evt_missing",
                    "event_type": "alert.x",
                    "aggregate_type": "alert",
                    "aggregate_id": "x",
                    "payload": {},
                    "created_at": None,
                },
            ]
            # The event row does not exist: on MariaDB INSERT IGNORE skips the orphan, on
            # SQLite the foreign key refuses it; either way the relay rolls back.
            with contextlib.suppress(IntegrityError):
                await service.fan_out(session, kicks.queue, events)
            await session.rollback()
        assert kicks.calls == []
        assert await _deliveries(any_resources) == 0

    async def test_an_event_fanned_out_twice_keeps_one_delivery(
        self, any_resources: Resources
    ) -> None:
        """At-least-once relays may repeat a batch: the (event, endpoint) row stays unique."""
        await create_endpoint(any_resources, url="https://a.example.com/h")
        kicks = Kicks()
        event_id, _ = await publish(any_resources, kicks.queue)
        async with any_resources.sessionmaker() as session:
            row = (await session.execute(select(EVENTS).where(EVENTS.c.id == event_id))).one()
            await service.fan_out(session, kicks.queue, [dict(row._mapping)])
            await flush_and_commit(session)
        assert await _deliveries(any_resources) == 1


class TestClaim:
    async def test_a_claim_is_taken_once(self, any_resources: Resources) -> None:
        """The compare-and-set on (attempts, series) lets only the first claimer through."""
        await create_endpoint(any_resources, url="https://a.example.com/h")
        kicks = Kicks()
        await publish(any_resources, kicks.queue)
        (delivery_id,) = kicks.of(DELIVER)
        row = await delivery(any_resources, delivery_id)
        clock = Clock()
        async with any_resources.sessionmaker() as session:
            first = await repository.claim(
                session,
                delivery_id,
                attempts=0,
                series=1,
                now=clock(),
                lease_until=clock.now,
            )
            second = await repository.claim(
                session,
                delivery_id,
                attempts=0,
                series=1,
                now=clock(),
                lease_until=clock.now,
            )
            await flush_and_commit(session)
        assert (first, second) == (True, False)
        assert (await delivery(any_resources, delivery_id))["attempts"] == row["attempts"] + 1

    async def test_concurrent_deliveries_send_once(
        self, any_resources: Resources, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The delivery job twice and the retry tick at once: one request leaves."""
        await create_endpoint(any_resources, url="https://a.example.com/h")
        kicks = Kicks()
        await publish(any_resources, kicks.queue)
        (delivery_id,) = kicks.of(DELIVER)
        sent: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return httpx.Response(204)

        transport = httpx.MockTransport(answer)
        clock = Clock()
        results = await asyncio.gather(
            tasks.deliver_once(any_resources, delivery_id, clock=clock, transport=transport),
            tasks.deliver_once(any_resources, delivery_id, clock=clock, transport=transport),
            tasks.retry_once(any_resources, clock=clock, transport=transport),
        )
        assert len(sent) == 1
        assert sum(int(result) for result in results) == 1
        assert (await delivery(any_resources, delivery_id))["status"] == "succeeded"
