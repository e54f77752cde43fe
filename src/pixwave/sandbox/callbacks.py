"""Outbound webhooks from a simulator, retried on the provider's own schedule.

Each simulator declares its provider's schedule (``Simulator.webhook_schedule``: some retry
every 15 minutes and space out, others double from 5 minutes up to days). ``time_scale``
multiplies every wait so a test can run the whole schedule in a second (0.0001 turns 15
minutes into 90 ms). Each attempt calls ``headers`` anew, so a signature carries that
attempt's timestamp, as the real providers do.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

log = structlog.get_logger("pixwave.sandbox.webhooks")


@dataclass(slots=True)
class Attempt:
    at: datetime
    status: int | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "status": self.status, "error": self.error}


@dataclass(slots=True)
class Delivery:
    id: int
    url: str
    body: bytes
    topic: str
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    abandoned: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "topic": self.topic,
            "body": self.body.decode(),
            "delivered": self.delivered,
            "abandoned": self.abandoned,
            "attempts": [a.as_dict() for a in self.attempts],
        }


#: Deliveries sent at once per simulator; the rest wait their turn.
MAX_IN_FLIGHT = 16


class WebhookDispatcher:
    """Sends each webhook until a 2xx arrives or the schedule runs out."""

    def __init__(
        self,
        *,
        schedule: Sequence[float],
        timeout: float,
        time_scale: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.schedule = tuple(schedule)
        self.timeout = timeout
        self.time_scale = time_scale
        self.deliveries: dict[int, Delivery] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None  # made on first use, in the running loop
        #: Providers deliver with bounded concurrency; so do we. Waiting here costs nothing,
        #: while hundreds of requests queued inside httpx's pool made every completion scan
        #: them all (most of a busy simulator's CPU, measured with py-spy).
        self.max_in_flight = max_in_flight
        self._sending: asyncio.Semaphore | None = None  # like the client: in the running loop

    def submit(
        self,
        url: str,
        body: bytes,
        *,
        topic: str,
        headers: Callable[[], Mapping[str, str]] = dict,
    ) -> Delivery:
        delivery = Delivery(next(self._ids), url, body, topic)
        self.deliveries[delivery.id] = delivery
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, delivery: Delivery, headers: Callable[[], Mapping[str, str]]) -> None:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight
            )
            self._client = httpx.AsyncClient(
                timeout=self.timeout, transport=self._transport, limits=limits
            )
            self._sending = asyncio.Semaphore(self.max_in_flight)
        client, sending = self._client, self._sending
        assert sending is not None
        waits = (0.0, *self.schedule)
        for wait in waits:
            if wait:
                await asyncio.sleep(wait * self.time_scale)
            async with sending:
                attempt = Attempt(datetime.now(UTC), None)
                delivery.attempts.append(attempt)
                try:
                    response = await client.post(
                        delivery.url,
                        content=delivery.body,
                        headers={"content-type": "application/json", **headers()},
                    )
                except httpx.HTTPError as exc:
                    attempt.error = f"{type(exc).__name__}: {exc}"
                    response = None
            if response is not None:
                attempt.status = response.status_code
                if response.is_success:
                    delivery.delivered = True
                    log.info("sandbox.webhook.delivered", url=delivery.url, topic=delivery.topic)
                    return
            log.info(
                "sandbox.webhook.failed",
                url=delivery.url,
                topic=delivery.topic,
                attempt=len(delivery.attempts),
                status=attempt.status,
                error=attempt.error,
            )
        delivery.abandoned = True

    async def drain(self, within: float = 5.0) -> None:
        """Wait for the deliveries in flight (tests and clean shutdowns)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.deliveries.clear()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._sending = None
